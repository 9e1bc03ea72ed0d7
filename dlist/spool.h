/*
 * spool - dlist's runner: it notices the list spool's new files at once (uv_fs_event on
 * every spool_dir/dlist/LIST/ROLE/new, plus a scan each dlist_scan_interval as a safety
 * net, and at once after a reload changed the lists), handles each exactly once on the
 * thread pool, and hands what that made (the outbox) to smtpout.
 *
 * Contract:
 * - Owns: struct spool, its timer and watchers, one scan job at a time.
 * - Blocks on: nothing on the loop: a scan (directories, files, members, crypt) is one
 *   thread-pool job; a kick during a scan runs one more scan after it.
 * - Exactly once, by rename (DESIGN 6.2): a file of ROLE/new is renamed into ROLE/cur
 *   (claimed, directory fsynced) before it is read; its mail goes into the outbox
 *   (outbox.h, complete files only) and members changes are saved; then the file is
 *   removed from cur. A scan finding a file in cur (a crash left it) first removes every
 *   outbox file made for it and handles it anew, so its mail exists once. Outbox files are
 *   removed only after dsmtp's 250 (smtpout.h).
 * - Roles: post (post.h), request (request.h), owner (forwarded to the moderators); the
 *   bounces spool is left for the bounce processor.
 * - A message that could not be handled (a file that cannot be written) stays in cur and
 *   is tried again at the next scan; one that cannot be read at all is logged and removed.
 */
#ifndef DLIST_SPOOL_H
#define DLIST_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct ctl_req;

/* spool_start - the runner of srv (proto->start): the first scan, the timer. */
void spool_start(struct server *srv);

/* spool_stop - no more scans or sends (proto->stop). */
void spool_stop(struct server *srv);

/* spool_kick - scan now (or after the running scan). */
void spool_kick(void);

/* spool_admin - `held LIST`, `approve LIST ID`, `reject LIST ID` on the pool, after any
 * running scan (op 'h', 'a', 'r'); answers r. */
void spool_admin(struct server *srv, struct ctl_req *r, char op, const char *list, const char *id);

#endif
