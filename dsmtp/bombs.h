/*
 * bombs - mail-bomb detection (DMail's bomb_* settings): a counter per (envelope sender,
 * recipient) pair, raised by one for each message accepted for the pair and lowered by
 * bomb_dec every bomb_interval. A message that takes a counter above bomb_max (and is
 * not exempted by bomb_exception_from / _ip / _to) is held: written, fsynced, into
 * bomb_dir as a queue file (dmail-queue(5)) instead of being delivered; the client gets
 * 250 as for any accepted message. The administrator lists, releases (into the queue,
 * then delivered as usual) or deletes held messages with tellsmtp bombs, bomb-release
 * and bomb-delete. Nothing is lost: a held message is on disk before the 250. A held
 * message is held as it would have gone out: DKIM-signed already (dkim_sign.h) when its
 * sender's mail is signed, so a release sends it signed.
 *
 * Contract:
 * - Owns: struct bombs (one per process, in struct smtpd): the counters, at most
 *   bomb_entries pairs (read at start), the least recently seen forgotten first; and each
 *   hold job until it ends.
 * - Blocks on: nothing on the loop: the hold, the listing, release and delete run on the
 *   thread pool (uv_queue_work), the session waiting for its hold as for a delivery.
 * - bomb_max 0 turns the detection off.
 */
#ifndef DSMTP_BOMBS_H
#define DSMTP_BOMBS_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

struct bombs;
struct ctl_req;

struct bombs *bombs_new(size_t entries);
void bombs_free(struct bombs **b);

/* bombs_check - at the end of DATA: count the message for each of its (sender,
 * recipient) pairs; true when it is a suspected bomb and must be held. */
bool bombs_check(struct smtp_session *s);
/* bombs_hold - hold the message (text, len: taken over) in bomb_dir, why ("bomb",
 * "quarantine": a content filter's SMFIR_QUARANTINE) logged; the session waits
 * (sess_go_async) and gets 250 (or 452 when it could not be written) afterwards. */
void bombs_hold(struct smtp_session *s, char *text, size_t len, const char *why);
/* bombs_cancel - the session is gone: a hold still running finishes without it. */
void bombs_cancel(struct smtp_session *s);

/* bombs_dir - the directory of held messages: bomb_dir, or spool_dir/bomb. Free it. */
char *bombs_dir(const struct conf *cf);

/* Control socket commands (control.c). */
void bombs_ctl_list(struct ctl_req *r, int argc, char **argv, void *arg);
void bombs_ctl_release(struct ctl_req *r, int argc, char **argv, void *arg);
void bombs_ctl_delete(struct ctl_req *r, int argc, char **argv, void *arg);

#endif
