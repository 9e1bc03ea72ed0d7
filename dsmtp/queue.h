/*
 * queue - the runner for spool_dir/queue: retries local deliveries that failed for now.
 *
 * Contract:
 * - Owns: struct queue, its timer and the scan job.
 * - Blocks on: nothing on the loop. A scan (readdir, reading queue files, deliveries,
 *   rewriting or removing files) runs as one job on the thread pool; only one scan runs
 *   at a time.
 * - Scans run at start-up and every queue_retry seconds (and on queue_kick). A recipient
 *   is retried when its next_try has come: back-off doubles from queue_retry per attempt,
 *   at most max(queue_retry_max, queue_retry). A queue file is rewritten (atomically, qfile_write)
 *   with the new states, and removed when no recipient is pending. After queue_lifetime a
 *   pending recipient is given up and reported to the sender (bounce.h); queue_warn
 *   after arrival one delay notice goes. Remote recipients that are due go to outq.
 *   Unreadable files are moved to spool_dir/corrupt/. Failures, delay notices and, for
 *   NOTIFY=SUCCESS, local deliveries are reported as the recipients' DSN NOTIFY asks
 *   (bounce.h); a forward's destinations inherit NOTIFY and ORCPT. A local recipient's
 *   forward file is read at each try (dotfwd.h); an alias with programs or files runs them
 *   again at each try (its addresses are added to the file only the first time).
 */
#ifndef DSMTP_QUEUE_H
#define DSMTP_QUEUE_H

#include "smtpd.h"

struct queue;

/* queue_new - start the runner (first scan right away). */
struct queue *queue_new(struct smtpd *d);
/* queue_kick - scan soon, and the program deliveries' runner too (ldaq.h). */
void queue_kick(struct queue *q);
/* queue_kick_scan - scan soon (the queue alone). */
void queue_kick_scan(struct queue *q);
/* queue_job - run work(w) on the pool while no scan runs (scans wait for it), then
 * done(w, status) on the loop; for the control socket's queue commands. One job at a
 * time: -1 when one is already waiting or running, or the runner is stopping. */
int queue_job(struct queue *q, uv_work_t *w, uv_work_cb work, uv_after_work_cb done);
/* queue_stop - no more scans; freed when the running one ends. *q becomes NULL. */
void queue_stop(struct queue **q);

/* What queue_process_file did to the recipients it tried, added to these (for stats). */
struct queue_counts {
    unsigned long delivered; /* written into their mailboxes */
    unsigned long failed;    /* failed for good (reported to the sender) */
    unsigned long moved;     /* handed to program delivery (ldaq.h) */
};

/* queue_process_file - blocking: one queue file (path) against cf/db at time now. The
 * recipients of other domains that are due go to oq (outq_take, the file unchanged for
 * them); with oq NULL they are deferred. A due recipient whose alias or forward file names
 * a program is moved into a queue file of its own for ldaq.h (NAME.INDEX.lda), unless the
 * file is one of those (ldaq_is_name): then its programs run here. Results are added to n
 * (may be NULL). Returns the recipients still pending (0: the file was removed), -1 if
 * unreadable. */
struct outq;
int queue_process_file(const struct conf *cf, const struct auth_db *db, const char *path,
                       time_t now, struct outq *oq, struct queue_counts *n);

/* queue_quarantine - blocking: an unreadable queue file moved into spool_dir/corrupt. */
void queue_quarantine(const struct conf *cf, const char *path, const char *name);

#endif
