/*
 * mboxq - the per-mailbox delivery queue of dsmtp: local deliveries to one mailbox with
 * group commit.
 *
 * Contract:
 * - Owns: one entry per mailbox that has a delivery running or waiting (loop-side memory,
 *   removed when the mailbox goes idle), and the pool job of each such mailbox. Not the
 *   requests: a request, its strings and its cf stay the caller's and must live until its
 *   done callback has run.
 * - Blocks on: nothing on the loop. mboxq_submit and the callbacks run on the loop thread
 *   (there is one loop per process: the entries are process-wide state). The file work
 *   (drop_deliver_many: locks, write, fsync) runs on the thread pool.
 * - At most one job per mailbox runs at a time in this process. A request for a mailbox
 *   whose job is running waits in memory (no pool thread blocks on the mailbox lock, no
 *   polling). When that job ends, one job takes the waiting requests in arrival order, at
 *   most MBOXQ_BATCH_MAX of them and MBOXQ_BATCH_BYTES of text (always at least one; a
 *   batch also ends where the next request carries another conf snapshot), and appends
 *   them with one lock and one fsync. Other mailboxes run in parallel on the pool.
 * - Each request is appended with a "Return-Path: <sender>" header first, exactly as
 *   deliver_one does, and gets its own result: done(r) is called on the loop only after
 *   the fsync that made it durable (r->result DROP_OK), or with its own failure (DROP_TEMP /
 *   DROP_PERM and a reason in r->err) -- a message that does not fit fails alone.
 */
#ifndef DSMTP_MBOXQ_H
#define DSMTP_MBOXQ_H

#include <stddef.h>
#include <uv.h>

#include "conf.h"
#include "drop.h"

#define MBOXQ_BATCH_MAX 64                    /* messages appended under one lock */
#define MBOXQ_BATCH_BYTES (8UL * 1024 * 1024) /* text bytes of one batch (past the first) */

struct mboxq_req;
typedef void (*mboxq_cb)(struct mboxq_req *r);

/* One message for one mailbox. The caller fills the first block and keeps it alive. */
struct mboxq_req {
    const struct conf *cf; /* mailbox_format, lock_timeout, drop_max, lock_id */
    const char *mailbox;   /* the dropfile path: the queue's key */
    const char *sender;    /* envelope sender for Return-Path and the From line, "" for <> */
    const char *head;      /* the recipient's own header fields (LF-ended), or NULL */
    const char *text;      /* headers + body, LF line ends */
    size_t len;
    mboxq_cb done;
    void *arg;
    /* out, valid in done */
    enum drop_result result;
    char err[200];
    /* private */
    struct mboxq_req *next;
};

/* mboxq_submit - deliver r (at once, or after the mailbox's running job). done(r) is called
 * later on the loop; only if the pool refuses the job (uv_queue_work fails, which libuv
 * does not do for a valid request) is it called, with DROP_TEMP, before this returns. */
void mboxq_submit(uv_loop_t *loop, struct mboxq_req *r);

/* Counters since start (loop side). */
struct mboxq_stats {
    unsigned long long batches;  /* pool jobs run */
    unsigned long long messages; /* requests they carried */
    unsigned long long largest;  /* the most requests in one job */
};

/* mboxq_active - mailboxes with a delivery running or waiting (for tests and status). */
size_t mboxq_active(void);
/* mboxq_get_stats - the counters. */
void mboxq_get_stats(struct mboxq_stats *st);

#endif
