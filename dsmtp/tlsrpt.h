/*
 * tlsrpt - SMTP TLS reporting for outbound delivery (RFC 8460): per day and policy
 * domain, the sessions that met the domain's TLS policy and those that failed, by
 * result type; sent as JSON reports by mail to the rua address of the domain's
 * _smtp._tls TXT record.
 *
 * Contract:
 * - Owns: struct tlsrpt, the counters (in memory, saved to a file on the thread pool
 *   after each change and read at start, so a restart keeps the day), the report jobs.
 *   Runs on the loop.
 * - tlsrpt_result counts one session: result NULL is a success, else an RFC 8460 4.3
 *   result type ("certificate-not-trusted", "starttls-not-supported", "validation-failure",
 *   "sts-policy-fetch-error", "dane-required"...). policy_type "sts", "tlsa" or
 *   "no-policy-found". Cheap; callers count only when tls_rpt is on.
 * - tlsrpt_send starts the reports of every domain counted: the TXT record
 *   _smtp._tls.DOMAIN (one "v=TLSRPTv1;" record; its first rua mailto: address and its
 *   first https: URL, either or both) is looked up; with one, for mailto: a
 *   multipart/report message (report-type=tlsrpt, the JSON as application/tlsrpt+json)
 *   per day goes into the queue from cf's tls_rpt_from and is delivered as any other; for
 *   https: each day's JSON is POSTed gzip-compressed (application/tlsrpt+gzip,
 *   tlsrpt_post.h) to the URL, its host looked up through c-ares, the POST on the pool, a
 *   failure logged (not retried: the next day's report stands on its own); without a
 *   record the counters are dropped (logged). The counters sent or dropped are forgotten.
 * - The daily send (tlsrpt_schedule, by outq.c) sends the days before the current one,
 *   so a day is reported once, whole.
 *
 * Details:
 * - Days are UTC dates; a report covers 00:00:00Z to 23:59:59Z of its day.
 * - JSON (RFC 8460 4.4): organization-name (the hostname), date-range, contact-info
 *   (tls_rpt_from), report-id, one policies entry per policy type with policy-domain,
 *   summary counts and failure-details (result-type, receiving-mx-hostname,
 *   failed-session-count).
 */
#ifndef DSMTP_TLSRPT_H
#define DSMTP_TLSRPT_H

#include <stddef.h>
#include <uv.h>

#include "conf.h"
#include "dns.h"

struct tlsrpt;
struct outq;

/* tlsrpt_new - the counters, read from path (may be NULL); dns, loop, *jobs borrowed. ca:
 * a PEM file trusted besides the system's CAs for https: rua (read now, before privileges
 * drop; NULL or "": none); timeout_ms: the longest a POST takes. */
struct tlsrpt *tlsrpt_new(uv_loop_t *loop, struct dns *dns, long *jobs, const char *path,
                          const char *ca, long timeout_ms);
/* tlsrpt_schedule - call due(arg) at every end of a period of period seconds (UTC: 86400
 * is each midnight) plus a random delay of up to period/24 (RFC 8460 4.3), until
 * tlsrpt_stop. The timer does not keep the loop alive. */
void tlsrpt_schedule(struct tlsrpt *t, long period, void (*due)(void *arg), void *arg);
/* tlsrpt_stop - no more timer (its handle closed); t may be NULL. */
void tlsrpt_stop(struct tlsrpt *t);
/* tlsrpt_free - after the loop; sets *t to NULL. */
void tlsrpt_free(struct tlsrpt **t);
/* tlsrpt_result - count one session (see above). */
void tlsrpt_result(struct tlsrpt *t, const char *domain, const char *policy_type, const char *mx,
                   const char *result);
/* tlsrpt_send - start the reports (see above) with cf's settings of the days before the
 * UTC date before ("2026-12-04"; NULL: every day counted, today too); the queue files are
 * offered to oq. The number of domains whose reports started. */
size_t tlsrpt_send(struct tlsrpt *t, struct conf *cf, struct outq *oq, const char *before);

#endif
