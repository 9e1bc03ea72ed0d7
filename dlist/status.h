/*
 * status - the report a list's first moderator gets every status_interval days (DMail's
 * lists.dat setting): members, digest members, posts distributed since the last report,
 * held posts waiting.
 *
 * Contract:
 * - Owns: work_path/dlist/LIST/status ("since EPOCH\nposts N\n"), written whole
 *   (file_write_atomic). The first scan of a list writes it and starts the period.
 * - Blocks on: everything (files): the thread pool, in dlist's jobs (one at a time:
 *   spool.h), with the members lock of the work held.
 * - status_post counts a distributed post (post.h). status_run (each spool scan) sends the
 *   report into the outbox when the period is over, then starts the next one; a crash in
 *   between may send a report twice, never lose the count. A "day" lasts
 *   dlist_day (a test aid; one day).
 */
#ifndef DLIST_STATUS_H
#define DLIST_STATUS_H

#include <time.h>

struct conf;
struct lists_def;
struct work;

/* status_post - one more post of def since the last report. */
void status_post(const struct conf *cf, const struct lists_def *def);

/* status_run - the report of w's list when it is due at now. */
void status_run(struct work *w, time_t now);

#endif
