/*
 * mtasts - MTA-STS for outbound delivery (RFC 8461): the _mta-sts TXT record, the policy
 * fetched over HTTPS, its cache, and the matching of MX hosts against it.
 *
 * Contract:
 * - Owns: struct mtasts (the per-domain policy cache, in memory and in a file so that a
 *   restart keeps it) and its lookups. Runs
 *   on the loop; the HTTPS fetch (libcurl, blocking) runs on libuv's thread pool, its
 *   host name resolved through c-ares beforehand (handed to curl, which resolves nothing).
 * - mtasts_get calls cb exactly once, from the loop (never from inside mtasts_get), with
 *   the domain's policy or NULL (no policy: deliver as without MTA-STS). Not after
 *   mtasts_cancel. The policy given lives until the callback returns.
 * - Lookup (RFC 8461 3.3, 5.1): the TXT record _mta-sts.DOMAIN must be exactly one
 *   "v=STSv1; id=..." record. A cached, unexpired policy with the same id is used as is;
 *   a different id (or none cached, or expired) fetches
 *   https://mta-sts.DOMAIN[:port]/.well-known/mta-sts.txt (no redirects, 64 KiB at most,
 *   a timeout, PKIX-verified against the system's CAs or the ca file). A failed lookup or
 *   fetch falls back on the cached policy while it has not expired, else no policy.
 * - Parsing is strict (mtasts_parse): version STSv1 first, mode enforce|testing|none,
 *   max_age 0..31557600, at least one mx in enforce/testing mode; anything else refuses
 *   the whole policy (logged), which counts as no policy.
 *
 * Details:
 * - port and ca are for tests (mta_sts_port, mta_sts_ca): 443 and "" in production.
 * - An mx pattern "*.example.net" matches one label left of example.net, not the bare
 *   name (RFC 8461 4.1); comparison ignores case and a final dot.
 */
#ifndef DSMTP_MTASTS_H
#define DSMTP_MTASTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#include "dns.h"

#define MTASTS_BODY_MAX (64 * 1024) /* a policy's size limit */
#define MTASTS_MAX_AGE 31557600L    /* RFC 8461 3.2 */
#define MTASTS_MX_MAX 32            /* mx lines kept */

enum mtasts_mode { MTASTS_NONE, MTASTS_TESTING, MTASTS_ENFORCE };

struct mtasts_policy {
    enum mtasts_mode mode;
    long max_age;
    char *mx[MTASTS_MX_MAX];
    size_t nmx;
    char id[33];    /* the TXT record's id it was fetched under */
    time_t expires; /* fetched + max_age */
};

struct mtasts;
struct mtasts_req;

/* problem: NULL, or the TLS-RPT result type of a record whose policy could not be had
 * ("sts-policy-fetch-error", "sts-policy-invalid"), p then being the cached one or NULL. */
typedef void (*mtasts_cb)(void *arg, const struct mtasts_policy *p, const char *problem);

/* mtasts_new - the cache; dns, loop and *jobs (the server's count of pool jobs) are
 * borrowed. port: the HTTPS port (443); ca: a CA file trusted instead of the system's,
 * or "" / NULL; timeout_ms: the fetch's limit; path: the cache's file (read here, written
 * on the pool after each fetch), or NULL. */
struct mtasts *mtasts_new(uv_loop_t *loop, struct dns *dns, long *jobs, int port, const char *ca,
                          long timeout_ms, const char *path);
/* mtasts_free - after every request ended or was cancelled; sets *s to NULL. */
void mtasts_free(struct mtasts **s);
/* mtasts_get - the policy of domain (see above). */
struct mtasts_req *mtasts_get(struct mtasts *s, const char *domain, mtasts_cb cb, void *arg);
/* mtasts_cancel - no callback; the request's memory goes when its work ends. */
void mtasts_cancel(struct mtasts_req *r);
/* mtasts_fetches - policies fetched over HTTPS so far (for tests and stats). */
unsigned long mtasts_fetches(const struct mtasts *s);

/* mtasts_parse - a policy's text into p (p->mx strdup'ed: mtasts_policy_clear); 0, or
 * -1 with err ("line 2: unknown mode 'x'"). */
int mtasts_parse(const char *text, size_t len, struct mtasts_policy *p, char *err, size_t errlen);
/* mtasts_policy_clear - free p's mx patterns. */
void mtasts_policy_clear(struct mtasts_policy *p);
/* mtasts_txt_id - the id of a "v=STSv1; id=..." TXT record into id (33 bytes); 0, or -1
 * when the record is not an STSv1 record or its id is malformed. */
int mtasts_txt_id(const char *txt, char *id, size_t idlen);
/* mtasts_mx_match - host matches one of p's mx patterns. */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);
/* mtasts_mode_name - "enforce", "testing", "none". */
const char *mtasts_mode_name(enum mtasts_mode m);

#endif
