/*
 * popauth - POP-before-SMTP (DMail's forward_user): dpop notes the address of every
 * client that logged in, and dsmtp lets a client relay from an address noted within
 * forward_user_window. The two processes share one small file, so it needs no database
 * server, survives restarts of both, and another node could share it over NFS.
 *
 * Contract:
 * - The file: work_dir/popauth, text, one "ADDRESS UNIX-TIME" line per address (the last
 *   login from it), oldest first, at most POPAUTH_MAX lines; addresses in the form
 *   inet_ntop gives, IPv4-mapped IPv6 as IPv4. A line that does not parse is skipped.
 * - Writers (popauth_record) take an flock on work_dir/popauth.lock, read the file, drop
 *   the addresses older than the window and the oldest beyond POPAUTH_MAX, and replace it
 *   atomically (popauth.tmp, rename): a reader sees the old file or the new, never a mix.
 *   It is not fsynced: a machine crash may forget recent logins (they log in again).
 * - Readers (popauth_recent) read without a lock, at most POPAUTH_MAX lines.
 * - Blocks on: file I/O and the lock: call both on the thread pool, never on the loop.
 *   popauth_note queues popauth_record on the pool itself.
 */
#ifndef DMAIL_POPAUTH_H
#define DMAIL_POPAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#include "conf.h"

#define POPAUTH_MAX 10000 /* addresses kept */

/* popauth_record - note that ip logged in at now (work_dir's file, entries older than
 * window seconds dropped). 0, or -1 with errno set. */
int popauth_record(const char *work_dir, const char *ip, time_t now, long window);
/* popauth_recent - 1 if ip logged in within window seconds before now, 0 if not (or no
 * file), -1 on a read error. */
int popauth_recent(const char *work_dir, const char *ip, time_t now, long window);
/* popauth_note - popauth_record(cf's work_dir, ip, now, cf's forward_user_window) on the
 * pool of loop, if forward_user is on; the job keeps its own reference to cf. */
void popauth_note(uv_loop_t *loop, struct conf *cf, const char *ip);

#endif
