/*
 * chunk - the BDAT command of CHUNKING (RFC 3030): a message sent as counted chunks of raw
 * octets instead of DATA's dot-terminated text.
 *
 * Contract:
 * - Owns: nothing; works on s->chunk (the chunk being read) and s->tx (the message, whose
 *   scanner data.c runs in chunked mode).
 * - Blocks on: nothing. Octets are taken as they arrive; the last chunk goes to delivery
 *   exactly as the end of DATA does (command_data_end: size, hops, Received:, fsync
 *   before the 250).
 * - Every BDAT whose syntax parses has its octets read, whatever its reply, so the session
 *   stays in sync; the reply is sent after the chunk's last octet. A syntax error (the
 *   octets cannot be found) is 521 5.5.4 and the session is closed, as Postfix does.
 * - Replies (texts as Postfix's): a chunk taken "250 2.0.0 N octets received"; the LAST
 *   chunk the delivery reply of DATA; before MAIL 503 5.5.1; without recipients 554 5.5.1;
 *   an empty chunk that is not LAST 551 5.7.1; past max_msg_size 552 5.3.4; bad content
 *   (bare CR/LF, NUL, line too long) as after DATA. After a refused chunk the transaction
 *   is failed: its later chunks are read and dropped (551 5.0.0, not counted in the error
 *   budget: a pipelining client may have sent them before it saw the refusal) up to LAST,
 *   which ends it; RSET, EHLO or QUIT end it too. MAIL, RCPT and DATA between chunks are
 *   503 5.5.1.
 * - The message lives in memory (bounded by max_msg_size) until LAST: a client that goes
 *   away mid-transaction leaves nothing behind.
 */
#ifndef DSMTP_CHUNK_H
#define DSMTP_CHUNK_H

#include "session.h"

/* chunk_check - the command table's check step: syntax and state; on a refusal the reply
 * is written and the chunk is read to be dropped. */
int chunk_check(struct smtp_session *s, const char *args);
/* chunk_proceed - the chunk will go into the message. */
void chunk_proceed(struct smtp_session *s, const char *args);
/* chunk_begin - after the command line (s->chunk.pending): start reading the octets, or
 * end the chunk now when it is empty. */
enum sess_in chunk_begin(struct smtp_session *s);
/* chunk_input - octets of the chunk from the connection's input. */
enum sess_in chunk_input(struct smtp_session *s);

#endif
