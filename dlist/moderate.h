/*
 * moderate - held posts: spool_dir/dlist/LIST/held/ID, the notice to the first moderator,
 * approve and reject (by mail: `approve PASSWORD ID` / `reject PASSWORD ID` to
 * LIST-request; on the command line: `dlist held|approve|reject`), and their expiry.
 *
 * Contract:
 * - Blocks on: the thread pool (files).
 * - A held file is the spooled message as it came (its Return-Path line first) behind one
 *   line "X-Dlist-Held: REASON"; ID is 12 hex digits derived from the spool file's name,
 *   so a message handled again after a crash is held under the same ID, once.
 * - Approve: the post is distributed (post_send) and the held file queued for removal
 *   (work_remove_later: removed once the message that decided is done, so a crash before
 *   that decides again and never loses the post); reject: the file is queued for
 *   removal. An unknown ID is an error.
 * - Expiry: held files older than dlist_held_expire are removed (logged) on each scan.
 */
#ifndef DLIST_MODERATE_H
#define DLIST_MODERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct work;
struct conf;
struct lists_def;

#define MODERATE_ID_LEN 12

/* moderate_hold - keep w's message (see above) and tell the first moderator. */
void moderate_hold(struct work *w, const char *poster, const char *reason);

/* moderate_decide - approve (true) or reject held post id of w's list; 0 done, -1 with
 * the reason in err. */
int moderate_decide(struct work *w, const char *id, bool approve, char *err, size_t len);

/* moderate_list - one line "ID FROM SUBJECT (REASON)" per held post of w's list, through
 * line(arg, text). The number of posts. */
size_t moderate_list(struct work *w, void (*line)(void *arg, const char *text), void *arg);

/* moderate_expire - remove w's list's held posts older than max_age seconds at now. */
void moderate_expire(struct work *w, long max_age, time_t now);

#endif
