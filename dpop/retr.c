/*
 * retr - RETR/TOP: answered from the session's read-ahead window, or streamed with
 * back-pressure. See retr.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "retr.h"
#include "xmem.h"

#define RETR_PIECE 8192 /* raw bytes converted at a time on the loop */

/* A streamed message (bigger than a window, or no window to be had). */
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

/* The read-ahead window: messages first .. first + n - 1 of view, whole, raw. */
struct retr_ahead {
    uv_work_t work;
    struct pop_session *s;
    struct dropview *view; /* the snapshot the bytes belong to (the session's) */
    size_t first, n;
    bool busy;     /* a pool job is filling it */
    int err;       /* errno when the first message could not be read */
    size_t want;   /* the message the fill was started for */
    long top;      /* and its TOP line count (-1: RETR) */
    uint64_t used; /* uv_now() of the last use */
    struct dropview_span span[RETR_WINDOW_MSGS]; /* message first + k */
    char buf[RETR_WINDOW];
};

static void retr_start(struct pop_session *s, size_t i, long top);

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

/* retr_ahead_free - free the window (not while a job fills it). */
static void
retr_ahead_free(struct pop_session *s)
{
    if (s->ahead == NULL || s->ahead->busy)
        return;
    free(s->ahead);
    s->ahead = NULL;
    s->d->ahead_windows--;
}

/* retr_drop - free what the session holds for RETR that no job is using. */
void
retr_drop(struct pop_session *s)
{
    retr_ahead_free(s);
    if (s->retr != NULL && !s->retr->busy)
        retr_free(s);
}

/* retr_ahead_holds - message i of view is whole in the window. */
static bool
retr_ahead_holds(const struct retr_ahead *a, const struct dropview *view, size_t i)
{
    return a != NULL && !a->busy && a->view == view && i >= a->first && i - a->first < a->n;
}

/* retr_idle_cb - the session timer in TRANSACTION: free a window unused for
 * RETR_IDLE_MS, else look again when it would be. */
static void
retr_idle_cb(uv_timer_t *t)
{
    struct pop_session *s = t->data;
    struct retr_ahead *a = s->ahead;
    uint64_t idle;

    if (a == NULL || s->base.conn == NULL)
        return;
    idle = uv_now(t->loop) - a->used;
    if (a->busy || idle < RETR_IDLE_MS) {
        uv_timer_start(t, retr_idle_cb, a->busy ? RETR_IDLE_MS : RETR_IDLE_MS - idle, 0);
        return;
    }
    retr_ahead_free(s);
}

/* retr_ahead_touch - the window was used now; make sure the idle timer watches it. */
static void
retr_ahead_touch(struct pop_session *s)
{
    uv_handle_t *h = (uv_handle_t *)&s->base.timer;

    s->ahead->used = uv_now(s->d->srv.loop);
    if (s->base.conn != NULL && s->base.timer_fn == NULL && !uv_is_active(h) && !uv_is_closing(h))
        uv_timer_start(&s->base.timer, retr_idle_cb, RETR_IDLE_MS, 0);
}

/* retr_send_held - message i is in the window: the status line, its client form and "."
 * as one write. */
static void
retr_send_held(struct pop_session *s, size_t i, long top)
{
    static char out[2 * RETR_PIECE + 64]; /* the loop thread's; DROPVIEW_CONV_BOUND */
    struct retr_ahead *a = s->ahead;
    size_t n = a->span[i - a->first].len, w;
    const char *p = a->buf + a->span[i - a->first].off;
    struct dropview_conv conv;

    retr_ahead_touch(s);
    if (s->base.conn == NULL)
        return;
    dropview_conv_init(&conv, dropview_format(s->view) == MBOX_FORMAT_MBOX, true,
                       session_status_line(s, i), top);
    net_cork(s->base.conn);
    sess_send_reply(&s->base);
    while (n > 0 && !conv.done) {
        size_t piece = n < RETR_PIECE ? n : RETR_PIECE;
        w = dropview_conv_feed(&conv, p, piece, out);
        sess_write(&s->base, out, w);
        p += piece;
        n -= piece;
    }
    w = dropview_conv_finish(&conv, out);
    memcpy(out + w, ".\r\n", 3);
    sess_write(&s->base, out, w + 3);
    net_uncork(s->base.conn);
}

/* retr_ahead_work - on the pool: read messages first, first + 1, ... whole into the
 * window while they fit. */
static void
retr_ahead_work(uv_work_t *w)
{
    struct retr_ahead *a = w->data;
    long n =
        dropview_read_msgs(a->view, a->first, a->buf, sizeof a->buf, a->span, RETR_WINDOW_MSGS);

    a->err = 0;
    a->n = 0;
    if (n < 0)
        a->err = errno != 0 ? errno : EIO;
    else
        a->n = (size_t)n;
}

/* retr_read_failed - a read of message msg (0-based) failed with err: log it and drop
 * the client (its answer is already partly sent or promised). */
static void
retr_read_failed(struct pop_session *s, size_t msg, int err)
{
    log_sess(LOGLVL_WARN, s->base.sid, "retr user=%s msg=%zu error=%s", s->login, msg + 1,
             strerror(err));
    s->base.close_reason = "mailbox read error";
    net_abort(s->base.conn);
}

/* retr_ahead_after - back on the loop with a filled window: answer the command that
 * started it, or stream that message when it did not fit. */
static void
retr_ahead_after(uv_work_t *w, int status)
{
    struct retr_ahead *a = w->data;
    struct pop_session *s = a->s;

    (void)status;
    a->busy = false;
    s->d->srv.jobs--;
    if (s->base.conn == NULL) {
        retr_ahead_free(s);
    } else if (a->err != 0) {
        size_t msg = a->want;
        int err = a->err;
        retr_ahead_free(s);
        retr_read_failed(s, msg, err);
    } else if (retr_ahead_holds(a, s->view, a->want)) {
        retr_send_held(s, a->want, a->top);
        sess_resume(&s->base);
    } else {
        size_t want = a->want;
        long top = a->top;
        retr_ahead_free(s);
        retr_start(s, want, top);
    }
    sess_release(&s->base);
}

/* retr_ahead_get - the session's window, allocated if the daemon's cap allows; NULL
 * when it does not. What it held is forgotten. */
static struct retr_ahead *
retr_ahead_get(struct pop_session *s)
{
    struct retr_ahead *a = s->ahead;

    if (a == NULL) {
        if (s->d->ahead_windows >= RETR_WINDOWS_MAX)
            return NULL;
        a = xmalloc(sizeof *a);
        a->s = s;
        a->busy = false;
        s->ahead = a;
        s->d->ahead_windows++;
    }
    a->n = 0;
    return a;
}

/* retr_ahead_now - fill the window from message i on the loop when that needs no
 * waiting (the mbox is open and the bytes are in the page cache); true when it holds i. */
static bool
retr_ahead_now(struct pop_session *s, size_t i)
{
    struct retr_ahead *a = retr_ahead_get(s);
    long n;

    if (a == NULL)
        return false;
    n = dropview_read_msgs_cached(s->view, i, a->buf, sizeof a->buf, a->span, RETR_WINDOW_MSGS);
    if (n <= 0)
        return false; /* the pool reads it (and reports any error) */
    a->view = s->view;
    a->first = i;
    a->n = (size_t)n;
    return true;
}

/* retr_ahead_fill - read message i and the ones after it on the pool; the command
 * waits. False when no window can be had (stream instead). */
static bool
retr_ahead_fill(struct pop_session *s, size_t i, long top)
{
    struct retr_ahead *a = retr_ahead_get(s);

    if (a == NULL)
        return false;
    a->view = s->view;
    a->first = i;
    a->n = 0;
    a->want = i;
    a->top = top;
    a->err = 0;
    a->used = uv_now(s->d->srv.loop);
    a->busy = true;
    a->work.data = a;
    sess_hold(&s->base);
    s->d->srv.jobs++;
    sess_go_async(&s->base);
    if (uv_queue_work(s->d->srv.loop, &a->work, retr_ahead_work, retr_ahead_after) != 0) {
        a->busy = false;
        s->d->srv.jobs--;
        retr_ahead_free(s);
        s->base.close_reason = "cannot queue a read";
        net_abort(s->base.conn);
        sess_release(&s->base);
    }
    return true;
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
    s->d->srv.jobs--;
    if (s->base.conn == NULL) {
        retr_free(s);
    } else if (r->err != 0) {
        size_t msg = r->msg;
        int err = r->err;
        retr_free(s);
        retr_read_failed(s, msg, err);
    } else {
        session_cont_kick(s);
    }
    sess_release(&s->base);
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
    if (r->eof) {
        net_cork(s->base.conn); /* the last piece and "." in one write */
        sess_write(&s->base, r->out, r->outlen);
        sess_write(&s->base, ".\r\n", 3);
        net_uncork(s->base.conn);
        retr_free(s);
        return true;
    }
    if (r->outlen > 0) {
        sess_write(&s->base, r->out, r->outlen);
        r->outlen = 0;
    }
    r->busy = true;
    r->work.data = r;
    sess_hold(&s->base);
    s->d->srv.jobs++;
    if (uv_queue_work(s->d->srv.loop, &r->work, retr_work, retr_after) != 0) {
        r->busy = false;
        s->d->srv.jobs--;
        sess_release(&s->base);
        r->err = EIO;
        s->base.close_reason = "cannot queue a read";
        net_abort(s->base.conn);
        return true;
    }
    return false;
}

/* retr_start - stream message i (0-based, already checked) with top lines of body (-1:
 * all). */
static void
retr_start(struct pop_session *s, size_t i, long top)
{
    struct retr *r = xcalloc(1, sizeof *r);
    const char *status = session_status_line(s, i);

    r->s = s;
    r->view = s->view;
    r->msg = i;
    dropview_conv_init(&r->conv, dropview_format(s->view) == MBOX_FORMAT_MBOX, true, status, top);
    r->outcap = DROPVIEW_CONV_BOUND(&r->conv, sizeof r->in) + 16;
    r->out = xmalloc(r->outcap);
    s->retr = r;
    session_continue(s, retr_cont);
}

/* retr_send - answer for message i (0-based, already checked): from the window when it
 * holds it, else after reading ahead, else streamed. */
static void
retr_send(struct pop_session *s, size_t i, long top)
{
    const struct dropview_msg *m = dropview_msg(s->view, i);

    if (retr_ahead_holds(s->ahead, s->view, i)) {
        retr_send_held(s, i, top);
        return;
    }
    /* cannot fit in a window: the mbox knows its raw size; a maildir file has at least half
     * as many bytes as its client form (a LF becomes CRLF at most) */
    if (dropview_format(s->view) == MBOX_FORMAT_MBOX ? m->end - m->start > RETR_WINDOW
                                                     : m->size > 2ULL * RETR_WINDOW) {
        retr_start(s, i, top);
        return;
    }
    if (retr_ahead_now(s, i))
        retr_send_held(s, i, top);
    else if (!retr_ahead_fill(s, i, top))
        retr_start(s, i, top);
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
    retr_send(s, c->num - 1, -1);
}

/* retr_top - TOP n lines. */
void
retr_top(struct pop_session *s, const struct pop3_cmd *c)
{
    if (session_msg(s, c->num) == NULL)
        return;
    session_ok(s, "Top of message follows");
    retr_send(s, c->num - 1, (long)c->num2);
}
