/*
 * command - the POP3 command table and the commands that need no thread pool (STAT, LIST,
 * UIDL, DELE, NOOP, RSET, QUIT, CAPA, STLS); the greeting.
 *
 * Contract:
 * - command_dispatch parses one line, checks that the command may run in the session's
 *   state (and TLS/plaintext rules), and runs it; the command writes its reply through
 *   session_ok/session_err or goes async. Blocks on nothing.
 */
#ifndef DPOP_COMMAND_H
#define DPOP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

/* command_greeting - "+OK ..." with the APOP timestamp when APOP is on. */
void command_greeting(struct pop_session *s);
/* command_dispatch - one command line (NUL-terminated, CRLF removed). */
void command_dispatch(struct pop_session *s, char *line, size_t len);
/* command_plaintext_ok - USER/PASS and AUTH PLAIN/LOGIN are allowed on this connection. */
bool command_plaintext_ok(const struct pop_session *s);

#endif
