/*
 * outq - dsmtp's outbound delivery: the recipients of other domains in the queue go to
 * their MX (or the smarthost) over SMTP, on the loop, with no process or thread per
 * delivery.
 *
 * Contract:
 * - Owns: struct outq, its destinations (one per recipient domain going by MX, one per
 *   smarthost or gateway spec), their DNS lookups, password reads and SMTP client
 *   connections (smtpc.h), and the set of queue files it is working on ("claimed"). Runs
 *   on the loop; reading and rewriting queue files, writing bounces and reading the
 *   smarthost_auth password file run on the thread pool.
 * - Hand-over: the queue runner's scan (pool) asks outq_claimed before it touches a
 *   file, and hands each file with remote recipients due to outq_take (thread-safe: a
 *   mutex guards the claims); the scan's end calls outq_kick on the loop, which starts
 *   the destinations. A claimed file is not touched by the scan until outq has written
 *   its results back and released it.
 * - Route (nexthop.h): the recipient domain's gateway line, else the smarthost, else
 *   the domain's MX in preference order (dns.h: equal preferences shuffled, implicit MX)
 *   at remote_smtp_port. Recipients whose routes name the same spec share a destination.
 *   A smarthost/gateway HOST is looked up as MX, [HOST] as addresses only; any DNS
 *   failure of it defers (4.4.3). By MX, null MX (RFC 7505) fails 5.1.10, a domain that
 *   does not exist 5.1.2, a DNS failure defers (4.4.3). An MX named like our hostname is
 *   dropped with every MX not better than it (a backup MX, a relay_to domain); when that
 *   leaves none the recipients fail 5.4.6 "loops back to myself". Each address is tried in turn
 *   until one gives a ready session; an opportunistic STARTTLS that fails is retried once
 *   in plaintext on the same address.
 * - Smarthost/gateway sessions: smarthost_tls require is SMTPC_TLS_REQUIRE (no STARTTLS
 *   or a failed handshake: 4.7.4, no plaintext retry; the certificate is not verified);
 *   may as by MX. smarthost_auth USER FILE: FILE's first line (CR/LF excluded, at most
 *   4096 bytes read) is read on the pool each time such a destination starts; a file
 *   that cannot be read (or an empty first line) defers its recipients 4.3.5 and logs an
 *   error naming the file. The password lives only in the destination and smtpc (zeroed
 *   when freed), never in a log line or reply text.
 * - A server refusing the session with 5xx (greeting, EHLO, AUTH: 535) defers with 451
 *   and its status in class 4 (5.7.8 -> 4.7.8), its own reply kept in the text.
 * - Delivery: up to smtp_out_per_domain connections per destination (domain or
 *   smarthost), each carrying its messages one after the other (connection reuse; a
 *   message joins a connection not started yet, else opens one while the destination has
 *   fewer, else waits behind the least busy one), up to smtp_out_rcpt_max recipients per
 *   transaction (a message for more goes in several); at most
 *   smtp_out_max connections in all. A destination none of whose addresses answered is
 *   dead for queue_retry: what comes for it meanwhile is deferred without a connect.
 * - A message with a UTF-8 sender or recipient asks for SMTPUTF8; a next hop without it
 *   fails those recipients 5.6.7 (smtpc.h), reported to the sender.
 * - Results: 2xx done; 5xx failed and reported (bounce.h); anything else deferred with
 *   the reply as last error and the usual back-off (deliver_next_try). One log line per
 *   recipient: "outq id=ID to=<a> relay=HOST[IP]:PORT delay=S dsn=X.Y.Z
 *   status=sent|deferred|bounced reply=\"...\"".
 * - DSN (RFC 3461): the queue file's RET and ENVID and each recipient's NOTIFY and ORCPT
 *   go to smtpc, which sends them when the server offers DSN. A recipient accepted (2xx)
 *   whose NOTIFY asks for SUCCESS gets a "relayed" report from us only when that server
 *   did not offer DSN (else the report is the next hop's); reports name the server as
 *   Remote-MTA.
 */
#ifndef DSMTP_OUTQ_H
#define DSMTP_OUTQ_H

#include <stdbool.h>
#include <stddef.h>

#include "qfile.h"
#include "smtpd.h"

struct outq;

/* outq_new - the delivery side (a DNS resolver from dns_host, a TLS client context). */
struct outq *outq_new(struct smtpd *d);
/* outq_stop - close every connection and lookup; results not yet written are lost for
 * this run (the recipients stay pending in their files). Scans get nothing more. */
void outq_stop(struct outq *oq);
/* outq_free - after the loop has ended (no scan can run any more); *oq becomes NULL. */
void outq_free(struct outq **oq);

/* outq_claimed - thread-safe: outq is working on queue file id. */
bool outq_claimed(struct outq *oq, const char *id);
/* outq_take - thread-safe, from the scan: the recipients idx[0..n) of q (read from path)
 * are due and remote: outq takes a copy and claims the file. false (nothing taken) when
 * outq holds queue_active_max files or 64 MiB of text already (the scan then leaves them;
 * a scan is kicked once half the room is free again). */
bool outq_take(struct outq *oq, const char *path, const struct qfile *q, const size_t *idx,
               size_t n);
/* outq_offer - thread-safe, from whoever just wrote the queue file at path (q as written,
 * cf its configuration): when q is not held and every recipient that is due is of
 * another domain, they go to outq_take now rather than at the next scan. true when so
 * offered (outq_kick on the loop then starts them; a file outq had no room for is taken
 * by the scan made when room frees up); false when the scan is needed (a local recipient
 * due, or nothing due). A file already claimed is not taken twice. */
struct conf;
bool outq_offer(struct outq *oq, const struct conf *cf, const char *path, const struct qfile *q);

/* outq_kick - loop: start what outq_take gave. */
void outq_kick(struct outq *oq);

/* outq_suspend - loop: on (tellsmtp suspend): nothing new is taken or started; each
 * running session finishes its transaction, and what waited goes back to the queue
 * untouched (no attempt counted). off (resume): dead marks are forgotten and a scan is
 * made now. Lasts until resume or a restart. */
void outq_suspend(struct outq *oq, bool on);
bool outq_suspended(struct outq *oq);

/* A delivery in progress (showsend). */
struct outq_view {
    const char *dest;         /* the domain, or the smarthost/gateway spec */
    const char *relay;        /* HOST[IP]:PORT connected to, or NULL */
    const char *state;        /* "resolving" "connecting" "sending" */
    const char *tls;          /* the session's TLS ("" none) */
    long age;                 /* seconds since the destination started */
    unsigned long long bytes; /* message text sent or being sent */
    int messages;             /* transactions started on the session */
    size_t waiting;           /* messages waiting behind */
};
/* outq_show - loop: fn for each running destination. */
void outq_show(struct outq *oq, void (*fn)(void *arg, const struct outq_view *v), void *arg);

/* outq_tlsrpt_send - start the TLS reports (tlsrpt_send) of the sessions counted so far;
 * the number of domains. */
size_t outq_tlsrpt_send(struct outq *oq);

#endif
