/*
 * retr - RETR and TOP: a message streamed from the mailbox file to the client.
 *
 * Contract:
 * - Owns: struct retr while a message is being sent (one per session at most).
 * - Blocks on: nothing on the loop. Each chunk (RETR_CHUNK raw bytes) is read and turned
 *   into the client form (CRLF, mboxrd unquoted, dot-stuffed, Status: line, TOP's line
 *   limit; dropview_conv) on the thread pool; the loop only writes the result. A new chunk
 *   is read only while the connection's output queue is under the session's high-water
 *   mark; otherwise the next one starts on NET_EV_DRAIN. So a message is never held in
 *   memory whole: at most one raw and one converted chunk per session.
 * - The status line "+OK" goes out first; if the file cannot be read after that (it was
 *   replaced, an I/O error), the connection is aborted rather than ended with ".", so the
 *   client cannot take a cut message for a whole one. A client that leaves mid-message
 *   stops the stream at the next chunk.
 */
#ifndef DPOP_RETR_H
#define DPOP_RETR_H

#include <stdbool.h>

#include "session.h"

#define RETR_CHUNK (32 * 1024)

void retr_retr(struct pop_session *s, const struct pop3_cmd *c);
void retr_top(struct pop_session *s, const struct pop3_cmd *c);
/* retr_busy - a chunk is being read on the pool. */
bool retr_busy(const struct pop_session *s);

#endif
