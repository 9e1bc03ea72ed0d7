/*
 * ldaq - the runner of program deliveries: a recipient whose alias or forward file names a
 * program (`|command`, lda.h) is not delivered while its client waits. It goes into a queue
 * file of its own, spool_dir/queue/NAME.lda (deliver.c after the message's 250 is due, or
 * the queue scan when such a recipient is in another queue file), and this runner delivers
 * each such file on the thread pool, at most command_concurrency of them at once (Postfix's
 * local_destination_concurrency_limit), as queue_process_file does everything else: its
 * forward copies, its programs, its mailbox; retries on the queue's schedule, reports.
 *
 * Contract:
 * - Owns: struct ldaq, its timer, its directory scans (one at a time) and its jobs (a file
 *   is never run by two jobs; the queue scan leaves *.lda files to it: ldaq_is_name).
 * - Blocks on: nothing on the loop: the scan (readdir) and each file run on the pool.
 * - ldaq_kick: a scan soon (queue_kick calls it: the files of a message just accepted run
 *   at once); every queue_retry seconds otherwise. ldaq_stop: no new job; freed when the
 *   running ones end.
 */
#ifndef DSMTP_LDAQ_H
#define DSMTP_LDAQ_H

#include <stdbool.h>

#include "smtpd.h"

/* The name of a queue file of program deliveries ends with this. */
#define LDAQ_SUFFIX ".lda"

struct ldaq;

/* ldaq_new - the runner of d; first scan at once. */
struct ldaq *ldaq_new(struct smtpd *d);
/* ldaq_kick - a scan soon. */
void ldaq_kick(struct ldaq *q);
/* ldaq_stop - no more scans or jobs; *q becomes NULL. */
void ldaq_stop(struct ldaq **q);
/* ldaq_is_name - name is a program-delivery queue file. */
bool ldaq_is_name(const char *name);

#endif
