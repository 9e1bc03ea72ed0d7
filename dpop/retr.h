/*
 * retr - RETR and TOP: a message sent from the mailbox file to the client.
 *
 * Contract:
 * - Owns: struct retr while a big message is being streamed (one per session at most) and
 *   struct retr_ahead, the session's read-ahead window (at most one per session).
 * - Blocks on: nothing on the loop. The mailbox is only read on the thread pool.
 * - Read-ahead: a RETR/TOP of a message that is not in memory reads, in one pool job, that
 *   message and the ones after it, whole, up to RETR_WINDOW raw bytes (at most
 *   RETR_WINDOW_MSGS messages), into the session's window (dropview_read_msgs: one pread
 *   for an mbox, one per file for a maildir); the command waits for it like any pool job.
 *   Once the mbox is open, the next window is first tried on the loop with
 *   dropview_read_msgs_cached (RWF_NOWAIT: bytes already in the page cache or nothing, so
 *   the loop never waits for the disk); only when that cannot serve does the pool read. A message
 * held whole in the window is converted on the loop (dropview_conv: CRLF, mboxrd unquoted,
 * dot-stuffed, Status: line, TOP's line limit) and answered at once: status line, text and "." in
 * one write. The window belongs to the session's view (the snapshot taken at login) and only holds
 * bytes of messages of that snapshot, read through dropview_read like the streamed path; an mbox
 * only grows behind a snapshot (drop_deliver appends, a commit replaces the file by rename and the
 * open descriptor keeps the old one), so held bytes are the ones a later read would return. The
 * window is freed when it has not been used for RETR_IDLE_MS (the session timer, free in
 * TRANSACTION), when the session ends, or when a read finds nothing to hold; an idle session holds
 * no window. At most RETR_WINDOWS_MAX windows exist in the daemon; beyond that messages are
 * streamed.
 * - Streaming: a message that does not fit in a window (or when no window is available)
 *   is streamed: each chunk (RETR_CHUNK raw bytes) is read and converted on the thread
 *   pool; the loop only writes the result. A new chunk is read only while the
 *   connection's output queue is under the session's high-water mark; otherwise the next
 *   one starts on NET_EV_DRAIN. So a message is never held in memory whole: at most one raw
 *   and one converted chunk per session.
 * - The status line "+OK" goes out before the text; if the file cannot be read after that
 *   (it was replaced, an I/O error), the connection is aborted rather than ended with ".",
 *   so the client cannot take a cut message for a whole one. A client that leaves
 *   mid-message stops the stream at the next chunk.
 */
#ifndef DPOP_RETR_H
#define DPOP_RETR_H

#include <stdbool.h>

#include "session.h"

#define RETR_CHUNK (32 * 1024)
#define RETR_WINDOW (128 * 1024) /* raw bytes one read-ahead holds at most */
#define RETR_WINDOW_MSGS 512     /* messages one read-ahead holds at most */
#define RETR_IDLE_MS 1000        /* a window unused this long is freed */
#define RETR_WINDOWS_MAX 256     /* windows in the daemon at once (32 MiB) */

void retr_retr(struct pop_session *s, const struct pop3_cmd *c);
void retr_top(struct pop_session *s, const struct pop3_cmd *c);
/* retr_busy - a chunk is being read on the pool. */
bool retr_busy(const struct pop_session *s);
/* retr_drop - free the session's read-ahead window unless a pool job is filling it (then
 * the job's completion frees it once the session is gone). */
void retr_drop(struct pop_session *s);

#endif
