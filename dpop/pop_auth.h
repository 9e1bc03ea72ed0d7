/*
 * pop_auth - logging in: USER/PASS, APOP, AUTH PLAIN and LOGIN (RFC 1939, 5034, 4616),
 * the failed-login penalty, then opening the mailbox.
 *
 * Contract:
 * - USER/PASS and AUTH PLAIN/LOGIN need TLS unless auth_plaintext; APOP needs apop_enable
 *   and an apop=SECRET option on the user's line of the users file.
 * - Every attempt first waits out the penalty of its client address and of its login name
 *   (penalty.h) on the session timer; a password is checked on the thread pool
 *   (auth_verify); a failure is answered "-ERR [AUTH]" after auth_fail_delay. The password
 *   is kept only until it has been checked, then wiped. Nothing here logs a secret.
 * - Success: the mailbox is claimed ([IN-USE] if another session has it) and opened on the
 *   pool (mailbox.c); "+OK" comes when the snapshot is ready. With forward_user on, the
 *   client's address is then noted for POP-before-SMTP (popauth_note, on the pool).
 */
#ifndef DPOP_POP_AUTH_H
#define DPOP_POP_AUTH_H

#include <stddef.h>

#include "session.h"

void pop_auth_user(struct pop_session *s, const struct pop3_cmd *c);
void pop_auth_pass(struct pop_session *s, const struct pop3_cmd *c);
void pop_auth_apop(struct pop_session *s, const struct pop3_cmd *c);
void pop_auth_auth(struct pop_session *s, const struct pop3_cmd *c);
/* pop_auth_sasl_line - a client response inside AUTH. */
void pop_auth_sasl_line(struct pop_session *s, char *line, size_t len);
/* pop_auth_sasl_abort - end the SASL exchange with -ERR (line too long). */
void pop_auth_sasl_abort(struct pop_session *s, const char *why);
/* pop_auth_cancel - the connection is gone: drop a pending password check. */
void pop_auth_cancel(struct pop_session *s);
/* pop_auth_clear_pending - wipe and free a login waiting for its check. */
void pop_auth_clear_pending(struct pop_session *s);

/* pop_auth_b64decode - strict base64 (padding required, no blanks) into out; "=" is the
 * empty string. Returns the length, or -1 if invalid or longer than outlen - 1 (out is
 * NUL-terminated). */
long pop_auth_b64decode(const char *in, size_t inlen, char *out, size_t outlen);

/* pop_auth_apop_digest - MD5(timestamp secret) as 32 lower-case hex digits into out[33]. */
void pop_auth_apop_digest(const char *timestamp, const char *secret, char *out);

/* pop_auth_apop_secret - the value of the apop= option in options (comma-separated
 * key=value), copied into out; -1 if there is none. */
int pop_auth_apop_secret(const char *options, char *out, size_t outlen);

#endif
