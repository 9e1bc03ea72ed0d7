/*
 * rbl - DNS blocklists (DNSBL): rbl_ban, rbl_reject, rbl_vanish and the three
 * rbl_except_* settings. On connect to the public SMTP port, every zone is asked about
 * the client in parallel (A records of the reversed address under the zone: IPv4 by
 * octets, IPv6 by nibbles, RFC 5782); the greeting waits for the answers. A zone of
 * rbl_ban that lists the client: 554 5.7.1 instead of the greeting, and the connection is
 * closed. A zone of rbl_reject (or rbl_vanish: dmail never accepts and discards) that
 * lists it: 554 5.7.1 on each RCPT, unless rbl_except_mail matches the sender or
 * rbl_except_rcpt the recipient.
 *
 * Contract:
 * - Owns: struct rbl (one per process, in struct smtpd: the result cache, at most
 *   RBL_CACHE_MAX entries keyed by zone and address, each kept for its record's TTL, a
 *   "not listed" answer for RBL_NEG_TTL seconds) and each session's struct rbl_session.
 * - Blocks on: nothing: the lookups are c-ares queries on the loop (struct smtpd.dns);
 *   only the session that asked waits, at most dns_timeout.
 * - Not checked: the submission and smtps ports, forward_from_ip clients, zones an
 *   rbl_except_ip line exempts the client from; at RCPT, authenticated sessions.
 * - Fails open: a zone that does not answer in time or answers SERVFAIL counts as "not
 *   listed" for this session (logged, not cached).
 * - Only answers in 127.0.0.0/8 are listings (RFC 5782 2.3), 127.255.255.x excepted (the
 *   error codes some lists return, e.g. to queries through public resolvers).
 */
#ifndef DSMTP_RBL_H
#define DSMTP_RBL_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

#define RBL_CACHE_MAX 65536
#define RBL_NEG_TTL 60
#define RBL_MAX_TTL 86400

struct rbl;

struct rbl *rbl_new(void);
void rbl_free(struct rbl **r);

/* rbl_connect - at the greeting: start the lookups the session needs. false: no zone
 * applies, the caller greets. true: rbl greets: at once when every answer was in the
 * cache, else the session waits (sess_go_async) and rbl writes the greeting
 * (command_banner), or the 554 of a rbl_ban listing and closes, when the answers are in,
 * then resumes it. */
bool rbl_connect(struct smtp_session *s);
/* rbl_rcpt - a zone of rbl_reject/rbl_vanish lists the client and no exception applies
 * to this sender and recipient: 554 written, true. */
bool rbl_rcpt(struct smtp_session *s, const char *rcpt);
/* rbl_session_end - the session is gone: drop lookups still running. */
void rbl_session_end(struct smtp_session *s);
/* rbl_session_free - free the session's results (after rbl_session_end). */
void rbl_session_free(struct smtp_session *s);

/* rbl_name - the query name of ip under zone into buf: "2.0.0.127.zone" or the 32
 * reversed nibbles of an IPv6 address; ::ffff:a.b.c.d is IPv4. -1 if ip is not an address
 * or buf too small. */
int rbl_name(const char *ip, const char *zone, char *buf, size_t len);

#endif
