/*
 * vbounce - bounce processing for a list (issue 13; Mailman 3 is the model): what comes to
 * LIST-bounces (dsmtp's spool, role bounces) names a subscriber, scores it, and a
 * subscriber who keeps bouncing is disabled (no posts), warned, then removed.
 *
 * Contract:
 * - Who bounced: the VERP address the bounce was sent to (its To:, LIST-bounces+user=
 *   domain@...: dsmtp writes it under XVERP), else the Final-Recipient / Original-Recipient
 *   of an RFC 3464 report, else any member's address in the text of the first part (the
 *   older MTAs' plain bounces); it must be a member. A report whose Action is delayed,
 *   relayed, delivered or expanded only is not a bounce (logged, nothing counted). Mail
 *   that names no member goes to the moderators with a null sender (never bounces back).
 * - Score: a failure with a 5.x.x status (or no report) counts 1, a 4.x.x one 0.5; at most
 *   once a day; a score whose last bounce is bounce_stale_days old starts again from 0.
 *   At bounce_score_threshold the member is disabled: no more posts, a notice to the member
 *   (how to come back: `enable` to LIST-request) and to the moderators; then a warning each
 *   bounce_warn_interval days, and after bounce_warnings of them, removed (moderators
 *   told). `enable` to LIST-request (request.h) clears the record.
 * - State: work_path/dlist/LIST/bounces ("ADDR SCORE10 DAY DISABLED WARNINGS LASTWARN"
 *   lines), written whole (file_write_atomic), under the members lock of the work.
 * - Blocks on: files: the thread pool only (dlist's jobs). A "day" lasts dlist_day.
 */
#ifndef DLIST_VBOUNCE_H
#define DLIST_VBOUNCE_H

#include <stdbool.h>
#include <time.h>

struct members;
struct work;

/* vbounce_handle - one message to LIST-bounces (w's message). */
void vbounce_handle(struct work *w);

/* vbounce_run - the warnings and removals that are due at now (each spool scan). */
void vbounce_run(struct work *w, time_t now);

/* vbounce_disabled - the disabled members of w's list into *m (made empty first). */
void vbounce_disabled(struct work *w, struct members *m);

/* vbounce_enable - addr's record cleared: true when it had one. */
bool vbounce_enable(struct work *w, const char *addr);

#endif
