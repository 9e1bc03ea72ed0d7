/*
 * command - the SMTP command table and each command's check and proceed steps
 * (STYLE 9.3), plus the start and end of a message (DATA; BDAT in chunk.c uses them).
 *
 * Contract:
 * - Owns: nothing; works on the struct smtp_session it is given.
 * - Blocks on: nothing. The end of DATA hands the message to deliver.c and the session
 *   waits for its answer.
 * - Every command writes exactly one reply (maybe multi-line) with session_reply, either
 *   before returning or, when it went async (session_go_async), before
 *   session_async_done.
 */
#ifndef DSMTP_COMMAND_H
#define DSMTP_COMMAND_H

#include <stddef.h>

#include "buf.h"
#include "session.h"

/* command_greeting - the 220 banner (or 421 when shutting down). */
void command_greeting(struct smtp_session *s);
/* command_banner - the 220 alone (rbl.c, once the DNSBL answers are in). */
void command_banner(struct smtp_session *s);
/* command_dispatch - one command line (terminator removed, NUL-terminated). */
void command_dispatch(struct smtp_session *s, char *line, size_t len,
                      const struct buf_lineinfo *info);
/* command_lookup_cancel - the session goes away: a RCPT/VRFY lookup still running on the
 * pool (authent_method unix_user) will not answer into it. */
void command_lookup_cancel(struct smtp_session *s);
/* command_data_begin - a message starts (DATA or the first BDAT chunk): tx->id, the
 * Received: header, the scanner (tx->rx). */
void command_data_begin(struct smtp_session *s);
/* command_data_end - the whole message is in (tx->rx.done): refuse it (the transaction
 * ends) or hand it to delivery (the session waits; the reply comes from there). */
void command_data_end(struct smtp_session *s);
/* command_data_refuse - the reply and log line for DATA_ERR_* errors; the transaction is
 * left as it is. */
void command_data_refuse(struct smtp_session *s, int errors);
/* command_data_input - DATA bytes; returns how many were consumed. At the terminator the
 * session leaves SS_DATA and the message goes to delivery. */
size_t command_data_input(struct smtp_session *s, const char *p, size_t n);

#endif
