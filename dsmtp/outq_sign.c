/*
 * outq_sign - DKIM signatures of the copies outbound delivery makes with a recipient's own
 * header fields (XHEADER). See outq_int.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim.h"
#include "log.h"
#include "outq_int.h"
#include "smtpd.h"
#include "xmem.h"

struct outq_sign {
    uv_work_t w;
    struct outq_dest *t; /* NULL once the destination ended meanwhile */
    struct outq_msg *m;
    char dom[256];
    char *sig; /* out: the DKIM-Signature fields, or NULL */
    char err[200];
    unsigned long long ns; /* CPU time spent */
};

/* outq_sign_header_len - the octets of text's header, its empty line included. */
static size_t
outq_sign_header_len(const char *text, size_t len)
{
    const char *p;

    if (len > 0 && text[0] == '\n')
        return 1;
    p = memmem(text, len, "\n\n", 2);
    return p != NULL ? (size_t)(p - text) + 2 : len;
}

/* outq_sign_work - pool: the body hash (once per file), then the copy's signature over
 * its own fields and the message's header. */
static void
outq_sign_work(uv_work_t *w)
{
    struct outq_sign *j = w->data;
    struct outq_file *f = j->m->f;
    struct timespec a, b;
    size_t hl = outq_sign_header_len(f->text, f->len);
    unsigned char bh[DKIM_HASH_LEN];
    bool have;
    char *copy;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    uv_mutex_lock(&f->oq->mu);
    if ((have = f->bh_set))
        memcpy(bh, f->bh, sizeof(bh));
    uv_mutex_unlock(&f->oq->mu);
    if (!have) { /* two copies at once may both hash: the same result */
        struct dkim_body body;
        dkim_body_init(&body, true);
        dkim_body_feed(&body, f->text, f->len);
        dkim_body_final(&body, bh);
        uv_mutex_lock(&f->oq->mu);
        memcpy(f->bh, bh, sizeof(bh));
        f->bh_set = true;
        uv_mutex_unlock(&f->oq->mu);
    }
    copy = xmalloc(j->m->m.head_len + hl + 1);
    memcpy(copy, j->m->m.head, j->m->m.head_len);
    memcpy(copy + j->m->m.head_len, f->text, hl);
    copy[j->m->m.head_len + hl] = '\0';
    j->sig = dkim_sign(f->cf->dkim_sign, j->dom, copy, j->m->m.head_len + hl, bh, time(NULL),
                       j->err, sizeof(j->err));
    free(copy);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    j->ns = (unsigned long long)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
}

/* outq_sign_done - loop: the signature above the copy's fields; the copy goes out (or,
 * when its destination ended meanwhile, waits in the queue for the next try). */
static void
outq_sign_done(uv_work_t *w, int status)
{
    struct outq_sign *j = w->data;
    struct outq_msg *m = j->m;
    struct outq_dest *t = j->t;

    (void)status;
    if (j->sig != NULL) {
        char *head = xasprintf("%s%s", j->sig, m->head);
        free(m->head);
        m->head = head;
        m->m.head = head;
        m->m.head_len = strlen(head);
        if (t != NULL) {
            t->oq->d->stats.dkim_signed++;
            t->oq->d->stats.dkim_sign_ns += j->ns;
        }
    } else
        log_warn("outq id=%s to=<%s> dkim domain=%s result=failed error=\"%s\": sent unsigned",
                 m->f->id, m->rc[0].addr, j->dom, j->err);
    free(j->sig);
    if (t == NULL) {
        struct smtpc_reply r;
        outq_reply_set(&r, 0, "4.3.2", "stopping");
        outq_msg_finish(m, &r, NULL, false);
    } else {
        t->sj = NULL;
        outq_dest_transmit(t, m);
    }
    free(j);
}

void
outq_sign_orphan(struct outq_sign *j)
{
    j->t = NULL;
}

bool
outq_sign_start(struct outq_dest *t, struct outq_msg *m)
{
    struct outq_file *f = m->f;
    struct outq_sign *j;

    if (m->head == NULL || dkim_keys_count(f->cf->dkim_sign) == 0)
        return false;
    j = xcalloc(1, sizeof(*j));
    if (!dkim_from_domain(f->text, f->len, j->dom, sizeof(j->dom)) ||
        !dkim_keys_has(f->cf->dkim_sign, j->dom)) {
        free(j);
        return false;
    }
    j->t = t;
    j->m = m;
    j->w.data = j;
    if (uv_queue_work(t->oq->d->srv.loop, &j->w, outq_sign_work, outq_sign_done) != 0) {
        free(j);
        return false; /* cannot happen; the copy goes unsigned */
    }
    t->sj = j;
    return true;
}
