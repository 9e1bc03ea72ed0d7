/*
 * command - the SMTP command table and each command's check and proceed steps
 * (STYLE 9.3), plus the end of DATA.
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
/* command_dispatch - one command line (terminator removed, NUL-terminated). */
void command_dispatch(struct smtp_session *s, char *line, size_t len,
                      const struct buf_lineinfo *info);
/* command_lookup_cancel - the session goes away: a RCPT/VRFY lookup still running on the
 * pool (authent_method unix_user) will not answer into it. */
void command_lookup_cancel(struct smtp_session *s);
/* command_data_input - DATA bytes; returns how many were consumed. At the terminator the
 * session leaves SS_DATA and the message goes to delivery. */
size_t command_data_input(struct smtp_session *s, const char *p, size_t n);

#endif
