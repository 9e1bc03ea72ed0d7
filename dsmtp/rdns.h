/*
 * rdns - the client's reverse DNS: its PTR name (lookup_names: logged and put into
 * Received:) and whether that name is forward-confirmed (FCrDNS: one of the name's
 * addresses is the client's), which require_fcrdns demands of clients on the public smtp
 * port that are neither trusted (forward_from_ip) nor authenticated.
 *
 * Contract:
 * - Owns: struct rdns (one per session, s->rdns), its lookups and its deadline timer.
 * - Blocks on: nothing: c-ares on the loop (the shared resolver, d->dns). The lookup
 *   starts when the session opens, so the greeting does not wait; MAIL waits for it when
 *   it has not ended yet. The PTR and the forward lookup together end within dns_timeout
 *   (a temporary failure then).
 * - Only the first PTR name is confirmed (as Postfix does); a name that is not a plain
 *   host name (letters, digits, '-', '_', '.') counts as no name.
 * - rdns_free (the session is gone) cancels the lookups; no callback follows.
 */
#ifndef DSMTP_RDNS_H
#define DSMTP_RDNS_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_session;
struct rdns;

enum rdns_status {
    RDNS_PENDING,     /* the lookups run */
    RDNS_CONFIRMED,   /* a PTR name whose addresses include the client's */
    RDNS_UNCONFIRMED, /* a PTR name, but its addresses do not include the client's */
    RDNS_NONE,        /* no PTR record (or not a host name) */
    RDNS_TEMPFAIL,    /* a lookup failed temporarily or took too long */
};

/* rdns_start - start the lookups for s if lookup_names or require_fcrdns asks for them
 * (s->rdns stays NULL otherwise). */
void rdns_start(struct smtp_session *s);
/* rdns_wait - true when the lookups still run: then done(s) is called when they end
 * (the caller waits, sess_go_async); false: the result is there (or none was asked). */
bool rdns_wait(struct smtp_session *s, void (*done)(struct smtp_session *s));
/* rdns_refuse - whether require_fcrdns refuses s now; if so the reply (450 4.7.25 on a
 * temporary failure, else 550 5.7.25) and the log line are written. */
bool rdns_refuse(struct smtp_session *s);
/* rdns_name - the PTR name (confirmed or not) for Received:, or NULL. */
const char *rdns_name(const struct smtp_session *s);
/* rdns_authres - the lookups' result for Authentication-Results: (RFC 8601 2.7.3),
 * "iprev=pass policy.iprev=192.0.2.7 (host.example)", into buf; the length, 0 when none
 * were made (or it does not fit). */
size_t rdns_authres(const struct smtp_session *s, char *buf, size_t len);
/* rdns_status - where the lookups are (RDNS_NONE when none were asked). */
enum rdns_status rdns_status(const struct smtp_session *s);
/* rdns_free - the session goes: cancel, free; sets s->rdns to NULL. */
void rdns_free(struct smtp_session *s);

#endif
