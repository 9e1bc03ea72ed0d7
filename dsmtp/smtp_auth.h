/*
 * smtp_auth - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms.
 *
 * Contract:
 * - Owns: the session's struct smtp_auth_state while an exchange runs.
 * - Blocks on: nothing; passwords are checked by auth_verify on the thread pool.
 * - AUTH is offered and accepted only over TLS unless auth_plaintext is true (538 5.7.11
 *   otherwise), only after EHLO, once per session and outside a mail transaction (503).
 *   "*" cancels (501). A failure answers 535 5.7.8 after auth_fail_delay, by timer.
 * - Credentials are never logged, and the decoded buffers are wiped after use.
 */
#ifndef DSMTP_SMTP_AUTH_H
#define DSMTP_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

/* smtp_auth_offered - EHLO should list AUTH. */
bool smtp_auth_offered(const struct smtp_session *s);
/* smtp_auth_check - state and syntax of "AUTH args"; -1 when a reply was written. */
int smtp_auth_check(struct smtp_session *s, const char *args);
/* smtp_auth_proceed - start the exchange. */
void smtp_auth_proceed(struct smtp_session *s, const char *args);
/* smtp_auth_input - a client line during the exchange (state SS_AUTH). */
void smtp_auth_input(struct smtp_session *s, char *line, size_t len);
/* smtp_auth_cancel - the session goes away: stop waiting for the pool, free the state. */
void smtp_auth_cancel(struct smtp_session *s);

#endif
