/*
 * dmarc - posters' DMARC policies through c-ares, cached. See dmarc.h.
 */
#include "dmarc.h"

#include <ctype.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "xmem.h"

#define DMARC_TRIES 2

struct dmarc_entry {
    char *domain;
    enum dmarc_policy policy; /* DMARC_UNKNOWN: wanted, no answer yet */
    bool inflight;
    time_t until; /* the answer is good until then */
};

/* one lookup: _dmarc.DOMAIN, then perhaps _dmarc.ORG */
struct dmarc_req {
    struct dmarc_req *next, **prev; /* dm.reqs: freed by dmarc_stop when dropped */
    char *domain;
    const char *org; /* inside domain (libpsl), or NULL */
    bool at_org;
};

static struct {
    uv_mutex_t lock;
    struct dmarc_entry *v;
    size_t n;
    struct dns *dns;
    psl_ctx_t *psl;
    bool started;
    int pending;
    struct dmarc_req *reqs;
    void (*done)(void);
} dm;

static uv_once_t dmarc_once = UV_ONCE_INIT;

static void
dmarc_init_lock(void)
{
    if (uv_mutex_init(&dm.lock) != 0)
        abort();
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
    static const char *const names[] = {"unknown", "none", "quarantine", "reject", "tempfail"};
    return names[p];
}

void
dmarc_start(uv_loop_t *loop, const struct conf *cf)
{
    char err[300], *servers = xstrdup("");

    uv_once(&dmarc_once, dmarc_init_lock);
    for (size_t i = 0; i < cf->dns_host.n; i++) {
        char *s = xasprintf("%s%s%s", servers, i ? "," : "", cf->dns_host.v[i]);
        free(servers);
        servers = s;
    }
    dm.dns = dns_new(loop, servers, cf->dns_timeout * 1000L, DMARC_TRIES, err, sizeof(err));
    if (dm.dns == NULL)
        log_warn("dlist: DMARC lookups are not possible (%s): posts keep their From under "
                 "dmarc_rewrite auto",
                 err);
    free(servers);
    if (dm.psl == NULL)
        dm.psl = psl_latest(NULL);
    if (dm.psl == NULL)
        dm.psl = (psl_ctx_t *)psl_builtin();
    dm.started = true;
}

void
dmarc_stop(void)
{
    if (dm.dns != NULL)
        dns_free(&dm.dns);
    while (dm.reqs != NULL) {
        struct dmarc_req *q = dm.reqs;
        dm.reqs = q->next;
        free(q->domain);
        free(q);
    }
    dm.done = NULL;
    dm.pending = 0;
    uv_mutex_lock(&dm.lock);
    for (size_t i = 0; i < dm.n; i++)
        if (dm.v[i].inflight) { /* its lookup was dropped: wanted again at the next start */
            dm.v[i].inflight = false;
            dm.v[i].policy = DMARC_UNKNOWN;
        }
    uv_mutex_unlock(&dm.lock);
}

/* dmarc_find - the entry of domain (under the lock), or NULL. */
static struct dmarc_entry *
dmarc_find(const char *domain)
{
    for (size_t i = 0; i < dm.n; i++)
        if (strcasecmp(dm.v[i].domain, domain) == 0)
            return &dm.v[i];
    return NULL;
}

/* dmarc_add - a new wanted entry (under the lock); the oldest answer goes when full. */
static struct dmarc_entry *
dmarc_add(const char *domain)
{
    struct dmarc_entry *e;

    if (dm.n >= DMARC_CACHE_MAX) {
        size_t old = 0;
        for (size_t i = 1; i < dm.n; i++)
            if (!dm.v[i].inflight && (dm.v[old].inflight || dm.v[i].until < dm.v[old].until))
                old = i;
        free(dm.v[old].domain);
        dm.v[old] = dm.v[--dm.n];
    }
    dm.v = xrealloc(dm.v, (dm.n + 1) * sizeof(*dm.v));
    e = &dm.v[dm.n++];
    memset(e, 0, sizeof(*e));
    e->domain = xstrdup(domain);
    for (char *c = e->domain; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    return e;
}

enum dmarc_policy
dmarc_policy(const char *domain)
{
    struct dmarc_entry *e;
    enum dmarc_policy p;

    uv_once(&dmarc_once, dmarc_init_lock);
    if (!dm.started || dm.dns == NULL)
        return DMARC_TEMPFAIL;
    if (domain == NULL || domain[0] == '\0' || strlen(domain) > 253)
        return DMARC_NONE;
    uv_mutex_lock(&dm.lock);
    e = dmarc_find(domain);
    if (e != NULL && e->policy != DMARC_UNKNOWN && time(NULL) >= e->until && !e->inflight)
        e->policy = DMARC_UNKNOWN; /* stale: wanted again */
    if (e == NULL)
        e = dmarc_add(domain);
    p = e->policy;
    uv_mutex_unlock(&dm.lock);
    return p;
}

int
dmarc_record(const char *txt, bool sub)
{
    int p = -1, sp = -1;
    const char *s = txt;
    bool first = true;

    while (*s != '\0') {
        const char *end = strchr(s, ';'), *eq;
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        char tag[16], val[32];
        size_t tl, vl;

        while (n > 0 && isspace((unsigned char)*s))
            s++, n--;
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        eq = memchr(s, '=', n);
        if (eq != NULL) {
            tl = (size_t)(eq - s);
            while (tl > 0 && isspace((unsigned char)s[tl - 1]))
                tl--;
            vl = n - (size_t)(eq + 1 - s);
            eq++;
            while (vl > 0 && isspace((unsigned char)*eq))
                eq++, vl--;
            snprintf(tag, sizeof(tag), "%.*s", (int)(tl < sizeof(tag) ? tl : 0), s);
            snprintf(val, sizeof(val), "%.*s", (int)(vl < sizeof(val) ? vl : 0), eq);
        } else
            tag[0] = val[0] = '\0';
        if (first) { /* RFC 7489 6.4: v=DMARC1 first, exactly */
            if (strcmp(tag, "v") != 0 || strcmp(val, "DMARC1") != 0)
                return -1;
            first = false;
        } else if (strcasecmp(tag, "p") == 0 || strcasecmp(tag, "sp") == 0) {
            int *to = tag[0] == 'p' || tag[0] == 'P' ? &p : &sp;
            if (strcasecmp(val, "none") == 0)
                *to = DMARC_NONE;
            else if (strcasecmp(val, "quarantine") == 0)
                *to = DMARC_QUARANTINE;
            else if (strcasecmp(val, "reject") == 0)
                *to = DMARC_REJECT;
            else
                *to = -2;
        }
        if (end == NULL)
            break;
        s = end + 1;
    }
    if (first || p < 0)
        return -1;
    if (sub && sp != -1)
        return sp < 0 ? -1 : sp;
    return p;
}

/* dmarc_answer - the policy of one TXT answer: -1 no DMARC record there (go on to the
 * organizational domain), else the policy. */
static int
dmarc_answer(const struct dns_result *r, bool sub)
{
    int found = 0, pol = -1;

    if (r->status == DNS_TEMPFAIL)
        return DMARC_TEMPFAIL;
    if (r->status != DNS_OK)
        return -1;
    for (size_t i = 0; i < r->n; i++)
        if (strncmp(r->txt[i], "v=DMARC1", 8) == 0) {
            found++;
            pol = dmarc_record(r->txt[i], sub);
        }
    if (found != 1)
        return found > 1 ? DMARC_NONE : -1; /* several records: DMARC does not apply */
    return pol < 0 ? DMARC_NONE : pol;
}

static void dmarc_txt_done(struct dns_result *r, void *arg);

/* dmarc_ask - TXT _dmarc.NAME for req. */
static bool
dmarc_ask(struct dmarc_req *q, const char *name)
{
    char *qname = xasprintf("_dmarc.%s", name);
    bool ok = dns_txt(dm.dns, qname, dmarc_txt_done, q) != NULL;

    free(qname);
    return ok;
}

/* dmarc_settle - the answer for q's domain stored; done called after the last one. */
static void
dmarc_settle(struct dmarc_req *q, enum dmarc_policy p)
{
    struct dmarc_entry *e;

    uv_mutex_lock(&dm.lock);
    e = dmarc_find(q->domain);
    if (e != NULL) {
        e->policy = p;
        e->inflight = false;
        e->until = time(NULL) + (p == DMARC_TEMPFAIL ? DMARC_TTL_FAIL_S : DMARC_TTL_S);
    }
    uv_mutex_unlock(&dm.lock);
    log_info("dlist: DMARC policy of %s: %s", q->domain, dmarc_policy_name(p));
    *q->prev = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    free(q->domain);
    free(q);
    if (--dm.pending == 0 && dm.done != NULL) {
        void (*done)(void) = dm.done;
        dm.done = NULL;
        done();
    }
}

/* dmarc_txt_done - loop: one TXT answer of a lookup. */
static void
dmarc_txt_done(struct dns_result *r, void *arg)
{
    struct dmarc_req *q = arg;
    int p = dmarc_answer(r, q->at_org);

    dns_result_free(&r);
    if (p < 0 && !q->at_org && q->org != NULL && strcasecmp(q->org, q->domain) != 0) {
        q->at_org = true;
        if (dmarc_ask(q, q->org))
            return;
        p = DMARC_TEMPFAIL;
    }
    dmarc_settle(q, p < 0 ? DMARC_NONE : (enum dmarc_policy)p);
}

int
dmarc_lookup_wanted(void (*done)(void))
{
    char **want = NULL;
    size_t nwant = 0;
    int started = 0;

    if (dm.dns == NULL)
        return 0;
    uv_mutex_lock(&dm.lock);
    for (size_t i = 0; i < dm.n; i++)
        if (dm.v[i].policy == DMARC_UNKNOWN && !dm.v[i].inflight) {
            dm.v[i].inflight = true;
            want = xrealloc(want, (nwant + 1) * sizeof(*want));
            want[nwant++] = xstrdup(dm.v[i].domain);
        }
    uv_mutex_unlock(&dm.lock);
    dm.done = done;
    for (size_t i = 0; i < nwant; i++) {
        struct dmarc_req *q = xcalloc(1, sizeof(*q));
        q->domain = want[i];
        q->next = dm.reqs;
        q->prev = &dm.reqs;
        if (dm.reqs != NULL)
            dm.reqs->prev = &q->next;
        dm.reqs = q;
        q->org = dm.psl != NULL ? psl_registrable_domain(dm.psl, q->domain) : NULL;
        dm.pending++;
        started++;
        if (!dmarc_ask(q, q->domain))
            dmarc_settle(q, DMARC_TEMPFAIL);
    }
    free(want);
    return started;
}
