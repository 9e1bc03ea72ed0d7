/*
 * spf - the SPF check (RFC 7208) of MAIL FROM, or of the HELO name when the sender is
 * null, with Debian's libspf2; its result goes into Received-SPF: and
 * Authentication-Results: (RFC 8601) header fields, and spf_reject decides whether a
 * `fail` refuses MAIL (550 5.7.23, RFC 7372).
 *
 * How it stays off the loop's critical path: libspf2 evaluates a policy with synchronous
 * DNS lookups, and its own resolver (res_nquery) blocks and ignores dns_host. So libspf2
 * is given a DNS layer of its own (a libspf2 "zone" over a layer that records misses):
 * the evaluation runs on the loop against what is known; every record it asks for that
 * is not known yet is noted and answered "try again"; if any was missing, the noted names
 * are looked up with c-ares on the loop (the shared resolver, d->dns), their answers are
 * added to the zone, and the evaluation runs again, until it needs nothing more. An
 * evaluation is pure computation (microseconds), libspf2's own limits (10 lookups of
 * mechanisms, 10 MX, 10 PTR names) bound the rounds, and so does SPF_ROUNDS_MAX. No thread
 * is used, nothing blocks, and the whole check ends within dns_timeout: a check still
 * running then is a `temperror`.
 *
 * Contract:
 * - Owns: struct spf_check (s->spf: the check of the session's last MAIL, kept for its
 *   DATA), its libspf2 objects, lookups and deadline timer.
 * - Runs only where spf_check is on, for clients of the public smtp port that are not
 *   trusted (forward_from_ip), authenticated or allowed by POP-before-SMTP.
 * - spf_free (a new MAIL, the session going) cancels the lookups: no callback follows.
 */
#ifndef DSMTP_SPF_H
#define DSMTP_SPF_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_session;
struct spf_check;

/* spf_wait - for the MAIL being handled (s->arg.mail): true while its check runs (it is
 * started if it applies and has not run yet); done(s) follows when it ends. false: the
 * result is there, or no check applies. */
bool spf_wait(struct smtp_session *s, void (*done)(struct smtp_session *s));
/* spf_refuse - whether spf_reject refuses the sender after the check; if so the reply
 * (550 5.7.23) and the log line are written. */
bool spf_refuse(struct smtp_session *s);
/* spf_authres - the check's result for Authentication-Results: (RFC 8601 2.7.2), "spf=pass
 * smtp.mailfrom=user@example.org" (smtp.helo=NAME for <>), into buf; the length, 0 when
 * there was no check (or it does not fit). */
size_t spf_authres(const struct smtp_session *s, char *buf, size_t len);
/* spf_received - the check's Received-SPF: field (folded, LF line ends) into buf; as
 * spf_authres. */
size_t spf_received(const struct smtp_session *s, char *buf, size_t len);
/* spf_free - forget the check (a new MAIL, the session goes); sets s->spf to NULL. */
void spf_free(struct smtp_session *s);

/* spf_strip_authres - remove from the header of a message (text[from..len), LF line ends,
 * the header ends at the first empty line) every Authentication-Results: field whose
 * authserv-id is authserv_id (any case): a forged claim of our own checks (RFC 8601 5).
 * Returns the new length (text is changed in place). */
size_t spf_strip_authres(char *text, size_t len, size_t from, const char *authserv_id);

#endif
