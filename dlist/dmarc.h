/*
 * dmarc - the DMARC policy (RFC 7489) a poster's domain publishes, for dlist's From
 * rewriting (post.h): a post from a domain that says p=reject or p=quarantine goes out
 * From the list, as Mailman 3 does, so that receivers do not refuse it.
 *
 * Contract:
 * - Owns: one resolver on dlist's loop (common/lib/dns.h: dns_host, dns_timeout), the
 *   public suffix list (libpsl: psl_latest, Debian's publicsuffix file when newer than the
 *   built-in one) and a cache of answers behind a mutex.
 * - dmarc_start / dmarc_stop: on the loop (dlist's start and stop).
 * - dmarc_policy: any thread, no I/O. DMARC_UNKNOWN when the domain's policy is not known
 *   yet: the domain is then wanted, and dmarc_lookup_wanted (loop) starts its lookup. A
 *   caller on the pool puts its message aside and handles it again after `done`.
 * - Discovery (RFC 7489 6.6.3): TXT _dmarc.DOMAIN; no DMARC record there -> TXT
 *   _dmarc.ORGANIZATIONAL-DOMAIN (its sp= when given, else p=). A TXT record is a DMARC
 *   record when it begins with v=DMARC1; more than one, none, or a p= that is not none,
 *   quarantine or reject: no policy (DMARC_NONE). A temporary DNS failure (or no
 *   resolver): DMARC_TEMPFAIL; post.h then keeps From, as Mailman 3 does (receivers
 *   cannot look the policy up either), and logs it.
 * - Cache: an answer is kept DMARC_TTL_S seconds, a temporary failure DMARC_TTL_FAIL_S;
 *   at most DMARC_CACHE_MAX domains (the oldest answer goes first).
 * - `done` of dmarc_lookup_wanted is called once on the loop when the lookups it started
 *   have all ended (not at all when it started none).
 */
#ifndef DLIST_DMARC_H
#define DLIST_DMARC_H

#include <stdbool.h>
#include <uv.h>

struct conf;

#define DMARC_TTL_S 3600
#define DMARC_TTL_FAIL_S 300
#define DMARC_CACHE_MAX 4096

enum dmarc_policy {
    DMARC_UNKNOWN,    /* not known yet: wanted */
    DMARC_NONE,       /* no record, or p=none */
    DMARC_QUARANTINE, /* p=quarantine */
    DMARC_REJECT,     /* p=reject */
    DMARC_TEMPFAIL    /* the lookup failed for now */
};

/* dmarc_start - the resolver for cf's dns_host (loop). A failure is logged; every policy is
 * then DMARC_TEMPFAIL. */
void dmarc_start(uv_loop_t *loop, const struct conf *cf);

/* dmarc_stop - pending lookups dropped, the resolver freed (loop). */
void dmarc_stop(void);

/* dmarc_policy - the policy for mail From domain (see the contract). */
enum dmarc_policy dmarc_policy(const char *domain);

/* dmarc_lookup_wanted - start the wanted lookups; the number started (loop). */
int dmarc_lookup_wanted(void (*done)(void));

/* dmarc_record - the policy of one TXT record: p= (or sp= when sub and it has one);
 * -1 when it is not a usable DMARC record. */
int dmarc_record(const char *txt, bool sub);

/* dmarc_policy_name - "none", "quarantine", ... for the log. */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
