/*
 * retr - RETR/TOP streaming with back-pressure. See retr.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "retr.h"
#include "xmem.h"

struct retr {
    uv_work_t work;
    struct pop_session *s;
    struct dropview *view; /* the session's, used by one thread at a time */
    size_t msg;
    unsigned long long pos; /* raw bytes read so far */
    struct dropview_conv conv;
    bool busy; /* a chunk is being read */
    bool eof;  /* the conversion is complete (the last chunk is in out) */
    int err;   /* errno of a failed read */
    char in[RETR_CHUNK];
    char *out;
    size_t outlen, outcap;
};

/* retr_busy - a chunk is being read on the pool. */
bool
retr_busy(const struct pop_session *s)
{
    return s->retr != NULL && s->retr->busy;
}

/* retr_free - done with the stream. */
static void
retr_free(struct pop_session *s)
{
    struct retr *r = s->retr;

    if (r == NULL)
        return;
    free(r->out);
    free(r);
    s->retr = NULL;
}

/* retr_work - on the pool: read one chunk and convert it. */
static void
retr_work(uv_work_t *w)
{
    struct retr *r = w->data;
    long n = dropview_read(r->view, r->msg, r->pos, r->in, sizeof r->in);

    r->outlen = 0;
    if (n < 0) {
        r->err = errno != 0 ? errno : EIO;
        return;
    }
    r->pos += (unsigned long long)n;
    r->outlen = dropview_conv_feed(&r->conv, r->in, (size_t)n, r->out);
    if (n == 0 || r->conv.done) {
        r->outlen += dropview_conv_finish(&r->conv, r->out + r->outlen);
        r->eof = true;
    }
}

/* retr_after - back on the loop with a chunk (or an error). */
static void
retr_after(uv_work_t *w, int status)
{
    struct retr *r = w->data;
    struct pop_session *s = r->s;

    (void)status;
    r->busy = false;
    s->d->jobs--;
    if (s->conn == NULL) {
        retr_free(s);
    } else if (r->err != 0) {
        log_sess(LOGLVL_WARN, s->sid, "retr user=%s msg=%zu error=%s", s->login, r->msg + 1,
                 strerror(r->err));
        retr_free(s);
        s->close_reason = "mailbox read error";
        net_abort(s->conn);
    } else {
        session_cont_kick(s);
    }
    session_release(s);
}

/* retr_cont - the session's continuation: write what was read, start the next read, or
 * end with "." (true). */
static bool
retr_cont(struct pop_session *s)
{
    struct retr *r = s->retr;

    if (r == NULL)
        return true;
    if (r->busy)
        return false;
    if (r->outlen > 0) {
        session_write(s, r->out, r->outlen);
        r->outlen = 0;
    }
    if (r->eof) {
        session_write(s, ".\r\n", 3);
        retr_free(s);
        return true;
    }
    r->busy = true;
    r->work.data = r;
    session_hold(s);
    s->d->jobs++;
    if (uv_queue_work(s->d->loop, &r->work, retr_work, retr_after) != 0) {
        r->busy = false;
        s->d->jobs--;
        session_release(s);
        r->err = EIO;
        s->close_reason = "cannot queue a read";
        net_abort(s->conn);
        return true;
    }
    return false;
}

/* retr_start - stream message n (already checked) with top lines of body (-1: all). */
static void
retr_start(struct pop_session *s, unsigned long n, long top)
{
    struct retr *r = xcalloc(1, sizeof *r);
    const char *status = session_status_line(s, n - 1);

    r->s = s;
    r->view = s->view;
    r->msg = n - 1;
    dropview_conv_init(&r->conv, dropview_format(s->view) == MBOX_FORMAT_MBOX, true, status, top);
    r->outcap = DROPVIEW_CONV_BOUND(&r->conv, sizeof r->in) + 16;
    r->out = xmalloc(r->outcap);
    s->retr = r;
    session_continue(s, retr_cont);
}

/* retr_retr - RETR n. */
void
retr_retr(struct pop_session *s, const struct pop3_cmd *c)
{
    if (session_msg(s, c->num) == NULL)
        return;
    s->seen[c->num - 1] = 1;
    s->nretr++;
    s->d->stats.retrieved++;
    session_ok(s, "%llu octets", session_msg_size(s, c->num - 1));
    retr_start(s, c->num, -1);
}

/* retr_top - TOP n lines. */
void
retr_top(struct pop_session *s, const struct pop3_cmd *c)
{
    if (session_msg(s, c->num) == NULL)
        return;
    session_ok(s, "Top of message follows");
    retr_start(s, c->num, (long)c->num2);
}
