/*
 * outq - dsmtp's outbound delivery: the recipients of other domains in the queue go to
 * their MX (or the smarthost) over SMTP, on the loop, with no process or thread per
 * delivery.
 *
 * Contract:
 * - Owns: struct outq, its destinations (one per recipient domain, or one for the
 *   smarthost), their DNS lookups and SMTP client connections (smtpc.h), and the set of
 *   queue files it is working on ("claimed"). Runs on the loop; reading and rewriting
 *   queue files, and writing bounces, run on the thread pool.
 * - Hand-over: the queue runner's scan (pool) asks outq_claimed before it touches a
 *   file, and hands each file with remote recipients due to outq_take (thread-safe: a
 *   mutex guards the claims); the scan's end calls outq_kick on the loop, which starts
 *   the destinations. A claimed file is not touched by the scan until outq has written
 *   its results back and released it.
 * - Route: smarthost HOST[:PORT] (a [HOST] skips the MX lookup) for every domain, else
 *   MX in preference order (dns.h: equal preferences shuffled, implicit MX) at
 *   remote_smtp_port. An MX named like our hostname is dropped with every MX not better
 *   than it (a backup MX, a relay_to domain); when that leaves none the recipients fail
 *   5.4.6 "loops back to myself". Null MX (RFC 7505) fails 5.1.10, a domain that does not exist
 *   5.1.2; a DNS failure defers (4.4.3). Each address is tried in turn until one gives a
 *   ready session; an opportunistic STARTTLS that fails is retried once in plaintext on
 *   the same address.
 * - Delivery: one connection per destination at a time, its messages sent one after the
 *   other over it (connection reuse), several recipients per transaction; at most
 *   smtp_out_max connections in all. A destination none of whose addresses answered is
 *   dead for queue_retry: what comes for it meanwhile is deferred without a connect.
 * - Results: 2xx done; 5xx failed and reported (bounce.h); anything else deferred with
 *   the reply as last error and the usual back-off (deliver_next_try). One log line per
 *   recipient: "outq id=ID to=<a> relay=HOST[IP]:PORT delay=S dsn=X.Y.Z
 *   status=sent|deferred|bounced reply=\"...\"".
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
 * outq has as much waiting as it holds (the scan then leaves them for the next one). */
bool outq_take(struct outq *oq, const char *path, const struct qfile *q, const size_t *idx,
               size_t n);
/* outq_kick - loop: start what outq_take gave. */
void outq_kick(struct outq *oq);

#endif
