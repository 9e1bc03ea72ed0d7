/*
 * spill - the middle of a large message in a file while it arrives, so that a session in
 * DATA (or BDAT) holds tens of KB of it whatever its size (data.h "Spilling"): the
 * octets past the kept head go to spool_dir/spill/ID in chunks, written on the thread
 * pool, and come back into memory once, at the end of the message, to be filtered and
 * delivered.
 *
 * Contract:
 * - Owns: the spill file of the session's transaction (removed when the message is
 *   loaded, or when the transaction or the session ends without it) and the job in
 *   flight (at most one per session).
 * - Blocks on: nothing on the loop: open/write/read/unlink run on the pool. While a chunk
 *   is written the session reads no input (sess_wait_cont): a client cannot run ahead of
 *   the disk.
 * - A write that fails (disk full) marks the message DATA_ERR_DISK: it is read to its end
 *   and refused with 452 4.3.1; nothing of it is delivered.
 * - dsmtp removes what is left in spool_dir/spill/ at start (messages never answered).
 */
#ifndef DSMTP_SPILL_H
#define DSMTP_SPILL_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_session;

/* spill_maybe - after feeding the scanner: write the part due, if any; true when the
 * session now waits for the write (it goes on by itself afterwards). */
bool spill_maybe(struct smtp_session *s);
/* spill_load - the message ended and part of it is in the spill file: read it back on
 * the pool; done(s, text, len) then gets the whole message (text NULL: it could not be
 * read, the reply is up to done). head (taken over) is the scanner's buffer. */
void spill_load(struct smtp_session *s, char *head, size_t head_len,
                void (*done)(struct smtp_session *s, char *text, size_t len));
/* spill_drop - the transaction ends without the message: its spill file goes. */
void spill_drop(struct smtp_session *s);
/* spill_cancel - the session is gone: a job in flight finishes without it. */
void spill_cancel(struct smtp_session *s);
/* spill_clean - at start: remove every file of spool_dir/spill/ (creating it). */
void spill_clean(const char *spool_dir);

#endif
