/*
 * mboxq - per-mailbox delivery queue with group commit. See mboxq.h.
 *
 * Loop side: a chained hash of the mailboxes with work in flight. Each has a FIFO of
 * waiting requests and at most one pool job. The job gets its own array of the requests it
 * took, so the FIFO can grow on the loop while the job writes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "hash.h"
#include "log.h"
#include "mboxq.h"
#include "xmem.h"

#define MBOXQ_BUCKETS 1024 /* power of two; chains stay short: entries live only while busy */

/* One mailbox with work in flight. */
struct mboxq_box {
    struct mboxq_box *hnext; /* hash chain */
    char *path;
    uint32_t hash;
    struct mboxq_req *head, **tail; /* waiting, in arrival order */
    struct mboxq_job *job;          /* the running job, or NULL */
    unsigned pin;                   /* > 0 while requests of b are being answered */
};

/* One pool job: a batch of requests for one mailbox. */
struct mboxq_job {
    uv_work_t work;
    struct mboxq_box *box;
    const struct conf *cf;
    char node[256];
    size_t n;
    struct mboxq_req *reqs[MBOXQ_BATCH_MAX];
    struct drop_item items[MBOXQ_BATCH_MAX];
    char *hdrs[MBOXQ_BATCH_MAX];
};

static struct mboxq_box *mboxq_table[MBOXQ_BUCKETS];
static size_t mboxq_count;
static struct mboxq_stats mboxq_st;

/* mboxq_hash - the hash of a path. */
static uint32_t
mboxq_hash(const char *s)
{
    return (uint32_t)hash_str(s);
}

/* mboxq_find - the entry of path, created when create is set. */
static struct mboxq_box *
mboxq_find(const char *path, bool create)
{
    uint32_t h = mboxq_hash(path);
    struct mboxq_box **slot = &mboxq_table[h & (MBOXQ_BUCKETS - 1)], *b;

    for (b = *slot; b != NULL; b = b->hnext)
        if (b->hash == h && strcmp(b->path, path) == 0)
            return b;
    if (!create)
        return NULL;
    b = xcalloc(1, sizeof(*b));
    b->path = xstrdup(path);
    b->hash = h;
    b->tail = &b->head;
    b->hnext = *slot;
    *slot = b;
    mboxq_count++;
    return b;
}

/* mboxq_remove - forget an idle entry. */
static void
mboxq_remove(struct mboxq_box *b)
{
    struct mboxq_box **slot = &mboxq_table[b->hash & (MBOXQ_BUCKETS - 1)];

    while (*slot != b)
        slot = &(*slot)->hnext;
    *slot = b->hnext;
    mboxq_count--;
    free(b->path);
    free(b);
}

/* mboxq_work - pool: the batch into the mailbox, one lock, one fsync. */
static void
mboxq_work(uv_work_t *w)
{
    struct mboxq_job *j = w->data;
    unsigned long long drop_max;
    int fmt;

    deliver_node(j->cf, j->node, sizeof(j->node));
    for (size_t i = 0; i < j->n; i++) {
        const struct mboxq_req *r = j->reqs[i];
        struct drop_msg *m = &j->items[i].msg;
        j->hdrs[i] = xasprintf("Return-Path: <%s>\n%s", r->sender, r->head != NULL ? r->head : "");
        m->sender = r->sender;
        m->headers = j->hdrs[i];
        m->headers_len = strlen(j->hdrs[i]);
        m->text = r->text;
        m->text_len = r->len;
    }
    fmt = deliver_format(j->cf, j->box->path, &drop_max);
    drop_deliver_many(j->box->path, fmt, j->items, j->n, j->cf->lock_timeout, drop_max, j->node);
    for (size_t i = 0; i < j->n; i++) {
        free(j->hdrs[i]);
        j->hdrs[i] = NULL;
    }
}

static void mboxq_done(uv_work_t *w, int status);

/* mboxq_take - a job for the first waiting requests of b (b->head is not NULL). */
static struct mboxq_job *
mboxq_take(struct mboxq_box *b)
{
    struct mboxq_job *j = xcalloc(1, sizeof(*j));
    size_t bytes = 0;

    j->box = b;
    j->cf = b->head->cf;
    while (b->head != NULL && j->n < MBOXQ_BATCH_MAX && b->head->cf == j->cf &&
           (j->n == 0 || bytes + b->head->len <= MBOXQ_BATCH_BYTES)) {
        struct mboxq_req *r = b->head;
        b->head = r->next;
        r->next = NULL;
        bytes += r->len;
        j->reqs[j->n++] = r;
    }
    if (b->head == NULL)
        b->tail = &b->head;
    j->work.data = j;
    return j;
}

/* mboxq_finish - report every request of a finished (or never started) job. */
static void
mboxq_finish(struct mboxq_job *j, int status)
{
    for (size_t i = 0; i < j->n; i++) {
        struct mboxq_req *r = j->reqs[i];
        if (status < 0) {
            const char *why = status == UV_ECANCELED ? "cancelled" : "cannot start the job";
            r->result = DROP_TEMP;
            snprintf(r->err, sizeof(r->err), "%s", why);
        } else {
            r->result = j->items[i].res;
            snprintf(r->err, sizeof(r->err), "%s", j->items[i].err);
        }
        r->done(r);
    }
    free(j);
}

/* mboxq_kick - start the next batch of b if none runs; forget b once it is idle (nothing
 * running, waiting, or being answered). */
static void
mboxq_kick(uv_loop_t *loop, struct mboxq_box *b)
{
    while (b->job == NULL && b->head != NULL) {
        struct mboxq_job *j = mboxq_take(b);
        int rc = uv_queue_work(loop, &j->work, mboxq_work, mboxq_done);
        if (rc == 0) {
            b->job = j;
            mboxq_st.batches++;
            mboxq_st.messages += j->n;
            if (j->n > mboxq_st.largest)
                mboxq_st.largest = j->n;
            break;
        }
        b->pin++;
        mboxq_finish(j, rc); /* callbacks may submit more to b: the loop takes them too */
        b->pin--;
    }
    if (b->job == NULL && b->head == NULL && b->pin == 0)
        mboxq_remove(b);
}

/* mboxq_ok - how many requests of a finished job were delivered. */
static size_t
mboxq_ok(const struct mboxq_job *j, int status)
{
    size_t ok = 0;

    for (size_t i = 0; status >= 0 && i < j->n; i++)
        ok += j->items[i].res == DROP_OK;
    return ok;
}

/* mboxq_done - loop: a batch is on disk (or failed); start the next, then answer. */
static void
mboxq_done(uv_work_t *w, int status)
{
    struct mboxq_job *j = w->data;
    struct mboxq_box *b = j->box;
    uv_loop_t *loop = w->loop; /* w goes with j in mboxq_finish */

    log_debug("mboxq mailbox=%s batch=%zu delivered=%zu", b->path, j->n, mboxq_ok(j, status));
    b->job = NULL;
    b->pin++;            /* b stays while its requests are answered (they may submit to it) */
    mboxq_kick(loop, b); /* the next batch writes while this one is answered */
    mboxq_finish(j, status);
    b->pin--;
    mboxq_kick(loop, b);
}

/* mboxq_submit - queue r behind its mailbox's running job, or start one. */
void
mboxq_submit(uv_loop_t *loop, struct mboxq_req *r)
{
    struct mboxq_box *b = mboxq_find(r->mailbox, true);

    r->next = NULL;
    r->result = DROP_TEMP;
    r->err[0] = '\0';
    *b->tail = r;
    b->tail = &r->next;
    if (b->job == NULL)
        mboxq_kick(loop, b);
}

/* mboxq_active - entries with work in flight. */
size_t
mboxq_active(void)
{
    return mboxq_count;
}

/* mboxq_get_stats - copy the counters. */
void
mboxq_get_stats(struct mboxq_stats *st)
{
    *st = mboxq_st;
}
