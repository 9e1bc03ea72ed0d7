/*
 * outq_dest - one destination of outbound delivery: its route (MX through c-ares, or a
 * smarthost/gateway spec, nexthop.h), the password file of smarthost_auth (read on the
 * pool), the addresses tried in turn, one SMTP client session (smtpc.h) carrying its
 * messages one after the other, and the dead marks of destinations none of whose
 * addresses answered. See outq.h and outq_int.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "file.h"
#include "log.h"
#include "nexthop.h"
#include "outq_int.h"
#include "xheader.h"
#include "xmem.h"

static void outq_dest_next_host(struct outq_dest *t);
static void outq_dest_next_addr(struct outq_dest *t);
static void outq_dest_send(struct outq_dest *t);

/* outq_dest_done - the destination is done: unlink, free, start others. */
static void
outq_dest_done(struct outq_dest *t)
{
    struct outq *oq = t->oq;

    for (struct outq_dest **pp = &oq->dests; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (t->q != NULL)
        dns_cancel(t->q);
    if (t->sr != NULL)
        mtasts_cancel(t->sr);
    if (t->pj != NULL)
        t->pj->t = NULL; /* the read ends on its own */
    if (t->sj != NULL)
        outq_sign_orphan(t->sj);
    if (t->c != NULL) {
        smtpc_close(t->c);
        oq->conns--;
    }
    if (t->pass != NULL) {
        explicit_bzero(t->pass, strlen(t->pass));
        free(t->pass);
    }
    free(t->user);
    for (size_t i = 0; i < t->nhosts; i++)
        free(t->hosts[i]);
    for (size_t i = 0; i < t->naddrs; i++)
        free(t->addrs[i]);
    free(t->hosts);
    free(t->addrs);
    dane_free(&t->dane);
    free(t->key);
    free(t);
    if (!oq->stopping)
        outq_start_dests(oq);
}

/* outq_dest_all - every waiting message gets r; the destination ends. */
void
outq_dest_all(struct outq_dest *t, const struct smtpc_reply *r)
{
    struct outq_msg *m;

    while ((m = t->msgs) != NULL) {
        t->msgs = m->next;
        t->nmsgs--;
        outq_msg_finish(m, r, t->relay, false);
    }
    t->last = NULL;
    outq_dest_done(t);
}

/* outq_dest_dead_find - the destination is marked dead now; its reason. */
static const struct smtpc_reply *
outq_dest_dead_find(struct outq *oq, const char *key, time_t now)
{
    for (struct outq_dead **pp = &oq->dead, *x; (x = *pp) != NULL;) {
        if (x->until <= now) {
            *pp = x->next;
            free(x->key);
            free(x);
            continue;
        }
        if (strcasecmp(x->key, key) == 0)
            return &x->why;
        pp = &x->next;
    }
    return NULL;
}

/* outq_dest_dead_mark - no address of the destination answered: dead for queue_retry. */
static void
outq_dest_dead_mark(struct outq *oq, const char *key, const struct smtpc_reply *why)
{
    struct outq_dead *x;

    if (outq_dest_dead_find(oq, key, time(NULL)) != NULL)
        return; /* another session to it found it first */
    x = xcalloc(1, sizeof(*x));

    x->key = xstrdup(key);
    x->until = time(NULL) + oq->d->srv.cf->queue_retry;
    x->why = *why;
    x->next = oq->dead;
    oq->dead = x;
}

/* outq_dest_sent - a transaction ended. */
static void
outq_dest_sent(struct smtpc *c, void *arg, struct smtpc_msg *sm, bool broken)
{
    struct outq_msg *m = arg;
    struct outq_dest *t = NULL;

    for (t = m->f->oq->dests; t != NULL && t->c != c; t = t->next)
        ;
    outq_msg_finish(m, NULL, t != NULL ? t->relay : NULL, t != NULL && t->dsn);
    if (t == NULL)
        return;
    if (broken) {
        struct smtpc_reply r;
        outq_reply_set(&r, 451, "4.4.2", "%s: connection lost before this message", t->relay);
        outq_dest_all(t, &r);
        return;
    }
    outq_dest_send(t);
}

/* outq_dest_send - the next message over the open session, or the end. */
static void
outq_dest_send(struct outq_dest *t)
{
    struct outq_msg *m = t->msgs;
    struct smtpc_reply none = {0};

    if (m == NULL) {
        outq_dest_done(t);
        return;
    }
    if (t->oq->suspended) { /* the rest waits in the queue, untouched */
        outq_dest_all(t, &none);
        return;
    }
    t->msgs = m->next;
    t->nmsgs--;
    if (t->msgs == NULL)
        t->last = NULL;
    if (m->m.requiretls && !t->tls_verified) { /* RFC 8689 4.2.1: not over this session */
        struct smtpc_reply r;
        outq_reply_set(&r, 550, "5.7.30",
                       "REQUIRETLS: %s: TLS policy %s gives no verified TLS (verify or secure "
                       "needed)",
                       t->relay, tlspol_level_name(t->pol.level));
        outq_msg_finish(m, &r, t->relay, false);
        outq_dest_send(t);
        return;
    }
    if (m->n == 1 && m->head == NULL && m->f->xheader[m->idx[0]] != NULL) {
        size_t hl = 0; /* XVERP: the copy of one recipient, with its own fields */
        m->head = xheader_decode(m->f->xheader[m->idx[0]], &hl);
        m->m.head = m->head;
        m->m.head_len = m->head != NULL ? hl : 0;
        if (outq_sign_start(t, m))
            return;
    }
    outq_dest_transmit(t, m);
}

/* outq_dest_transmit - see outq_int.h. */
void
outq_dest_transmit(struct outq_dest *t, struct outq_msg *m)
{
    if (t->carried++ > 0)
        t->oq->d->stats.out_reused++;
    t->bytes += m->m.len + m->m.head_len;
    if (smtpc_send(t->c, &m->m, outq_dest_sent, m) < 0) {
        struct smtpc_reply r;
        outq_reply_set(&r, 451, "4.4.2", "%s: session not usable", t->relay);
        outq_msg_finish(m, &r, t->relay, false);
        outq_dest_all(t, &r);
    }
}

/* outq_dest_rpt - count a session for TLS-RPT under the policy that applied to it: the
 * host's TLSA records (DANE wins), else the domain's MTA-STS policy. */
static void
outq_dest_rpt(struct outq_dest *t, const char *result)
{
    if (!t->oq->d->srv.cf->tls_rpt)
        return;
    if (t->dane != NULL)
        tlsrpt_result(t->oq->rpt, t->key, "tlsa", t->host,
                      result != NULL && strcmp(result, "certificate-not-trusted") == 0
                          ? "validation-failure"
                          : result);
    else if (t->sts != MTASTS_NONE)
        tlsrpt_result(t->oq->rpt, t->key, "sts", t->host, result);
}

/* outq_dest_ready - the session is up, or failed. */
static void
outq_dest_ready(struct smtpc *c, void *arg, const struct smtpc_info *info)
{
    struct outq_dest *t = arg;
    struct outq *oq = t->oq;

    if (info->reply.code / 100 == 2) {
        t->answered = true;
        t->dsn = info->dsn;
        oq->d->stats.out_conns++;
        oq->d->stats.out_tls += info->tls;
        snprintf(t->tls, sizeof(t->tls), "%s", info->tls ? info->tls_desc : "");
        outq_dest_rpt(t, info->tls_verified ? NULL
                         : info->tls        ? "certificate-not-trusted"
                                            : "starttls-not-supported");
        if (t->sts == MTASTS_TESTING && !info->tls_verified) /* RFC 8461 5: report only */
            log_warn("mta-sts domain=%s mode=testing relay=%s: %s: delivered anyway", t->key,
                     t->relay, info->tls ? "certificate not verified" : "no TLS");
        t->tls_verified = info->tls && info->tls_verified &&
                          (t->pol.level == TLSPOL_VERIFY || t->pol.level == TLSPOL_SECURE ||
                           t->sts == MTASTS_ENFORCE || t->dane != NULL);
        /* as Postfix's "Verified/Untrusted TLS connection established", also without TLS */
        if (info->tls)
            log_info("outq relay=%s tls=\"%s\"%s auth=%s", t->relay, info->tls_desc,
                     info->tls_verified ? " verified" : "", info->tls_auth);
        else
            log_info("outq relay=%s tls=none auth=none", t->relay);
        outq_dest_send(t);
        return;
    }
    t->err = info->reply;
    if (strcmp(info->reply.status, "4.7.4") == 0)
        outq_dest_rpt(t, "starttls-not-supported");
    else if (strcmp(info->reply.status, "4.7.5") == 0)
        outq_dest_rpt(t, "certificate-not-trusted");
    if (info->reply.code / 100 == 5) { /* a server refusing the session: retried later, */
        t->err.code = 451;             /* its own reply kept in the text */
        t->err.status[0] = '4';
        snprintf(t->err.text, sizeof(t->err.text), "%.200s: %.20s: %d %.15s %.250s", t->relay,
                 info->stage, info->reply.code, info->reply.status, info->reply.text);
    } else {
        snprintf(t->err.text, sizeof(t->err.text), "%.200s: %.20s: %.250s", t->relay, info->stage,
                 info->reply.text);
    }
    smtpc_close(c);
    t->c = NULL;
    oq->conns--;
    if (strcmp(info->stage, "connect") != 0)
        t->answered = true;
    if (strcmp(info->stage, "starttls") == 0 && !t->plain && !t->require && t->dane == NULL &&
        !t->dane_encrypt) {
        t->plain = true; /* opportunistic TLS failed: once more in plaintext */
        t->ai--;
    }
    outq_dest_next_addr(t);
}

/* outq_dest_next_addr - try the next address of the current host. */
static void
outq_dest_next_addr(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    struct smtpc_opts o = {0};
    char err[200];
    const char *ip;

    if (t->ai >= t->naddrs) {
        outq_dest_next_host(t);
        return;
    }
    ip = t->addrs[t->ai++];
    snprintf(t->relay, sizeof(t->relay), "%s[%s]:%d", t->host, ip, t->port);
    o.helo = oq->d->srv.hostname;
    o.tls = t->plain ? NULL : oq->tls;
    o.tls_policy = tlspol_smtpc(&t->pol, t->host, t->pol_domain, &o.tls_name);
    if (!t->require && t->dane == NULL && !t->dane_encrypt && (t->plain || oq->tls == NULL))
        o.tls_policy = SMTPC_TLS_NONE;
    /* mandatory without a client context: smtpc fails 4.7.4, nothing goes in plaintext */
    if (t->sts == MTASTS_ENFORCE && oq->tls != NULL) { /* PKIX, the MX host's name */
        o.tls_policy = SMTPC_TLS_VERIFY;
        o.tls_name = t->host;
    }
    if (t->dane != NULL) { /* DANE wins over MTA-STS (RFC 8461 2) and the policy's level */
        o.dane = t->dane;
        o.tls_name = t->host;
    } else if (t->dane_encrypt && o.tls_policy != SMTPC_TLS_VERIFY) {
        o.tls_policy = SMTPC_TLS_REQUIRE; /* RFC 7672 2.2: TLSA, none usable: TLS all the same */
    }
    o.auth_user = t->pass != NULL ? t->user : NULL;
    o.auth_pass = t->pass;
    o.timeout_ms = OUTQ_REPLY_MS;
    o.data_timeout_ms = OUTQ_DATA_MS;
    t->c = smtpc_open(oq->d->srv.net, ip, t->port, &o, outq_dest_ready, t, err, sizeof(err));
    if (t->c == NULL) {
        outq_reply_set(&t->err, 451, "4.4.1", "%s: %s", t->relay, err);
        outq_dest_next_addr(t);
        return;
    }
    oq->conns++;
}

/* outq_dest_skip_host - the current host is not to be used: why (4.7.5), its addresses
 * forgotten, the next host. */
static void
outq_dest_skip_host(struct outq_dest *t, const char *why)
{
    outq_reply_set(&t->err, 451, "4.7.5", "%s: %s", t->host, why);
    log_warn("outq %s: %s", t->key, t->err.text);
    t->ai = t->naddrs;
    outq_dest_next_addr(t);
}

/* outq_dest_tlsa_result - the current host's TLSA records: DANE with the usable ones
 * (RFC 7672 2.2); a failed lookup skips the host; none (secure or not): no DANE. */
static void
outq_dest_tlsa_result(struct dns_result *r, void *arg)
{
    struct outq_dest *t = arg;
    const struct conf *cf = t->oq->d->srv.cf;
    bool present = false;
    char what[300];

    t->q = NULL;
    if (r->status == DNS_TEMPFAIL) {
        snprintf(what, sizeof(what), "TLSA lookup of %s failed (%s): host skipped", r->name,
                 r->why);
        dns_result_free(&r);
        if (cf->tls_rpt)
            tlsrpt_result(t->oq->rpt, t->key, "tlsa", t->host, "dnssec-invalid");
        outq_dest_skip_host(t, what);
        return;
    }
    if (!t->tlsa_orig && t->canon[0] != '\0' && r->secure &&
        (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA)) {
        dns_result_free(&r); /* RFC 7672 2.2.3: none at the alias's target: its own name */
        t->tlsa_orig = true;
        snprintf(what, sizeof(what), "_%d._tcp.%s", t->port, t->host);
        t->q = dns_tlsa(t->oq->d->dns, what, outq_dest_tlsa_result, t);
        return;
    }
    if (r->secure && r->status == DNS_OK)
        t->dane = dane_from(r, t->canon[0] != '\0' && !t->tlsa_orig ? t->canon : t->host, &present);
    if (t->dane != NULL && t->canon[0] != '\0') /* both names identify the server */
        snprintf(t->dane->alt, sizeof(t->dane->alt), "%s", t->tlsa_orig ? t->canon : t->host);
    t->dane_encrypt = t->dane == NULL && present;
    log_debug("outq %s: host %s: TLSA %s%s: %zu usable", t->key, t->host, r->why,
              r->secure ? " (DNSSEC)" : " (insecure: not used)", t->dane ? t->dane->n : 0);
    dns_result_free(&r);
    if (t->dane == NULL && t->pol.level == TLSPOL_DANE_ONLY) {
        if (cf->tls_rpt)
            tlsrpt_result(t->oq->rpt, t->key, "tlsa", t->host, "dane-required");
        outq_dest_skip_host(t, "TLS policy dane-only: no usable TLSA records");
        return;
    }
    outq_dest_next_addr(t);
}

/* outq_dest_dane_lookup - DANE applies to the current host: look up its TLSA records when
 * its MX and addresses are DNSSEC-validated (RFC 7672 2.2.1, 2.2.2); 0 if started or the
 * host was skipped (dane-only), -1 when it goes on without DANE. */
static int
outq_dest_dane_lookup(struct outq_dest *t, bool addr_secure)
{
    char name[300];

    dane_free(&t->dane);
    t->dane_encrypt = false;
    if (!t->dane_on)
        return -1;
    if (t->mx_secure && addr_secure) { /* an alias's target first (RFC 7672 2.2.3) */
        t->tlsa_orig = false;
        snprintf(name, sizeof(name), "_%d._tcp.%s", t->port,
                 t->canon[0] != '\0' ? t->canon : t->host);
        t->q = dns_tlsa(t->oq->d->dns, name, outq_dest_tlsa_result, t);
        return 0;
    }
    if (t->pol.level != TLSPOL_DANE_ONLY)
        return -1;
    if (t->oq->d->srv.cf->tls_rpt)
        tlsrpt_result(t->oq->rpt, t->key, "tlsa", t->host, "dane-required");
    outq_dest_skip_host(t, t->mx_secure
                               ? "TLS policy dane-only: its address is not DNSSEC-validated"
                               : "TLS policy dane-only: the MX record is not DNSSEC-validated");
    return 0;
}

/* outq_dest_addr_result - the addresses of the current host. */
static void
outq_dest_addr_result(struct dns_result *r, void *arg)
{
    struct outq_dest *t = arg;
    bool secure = r->secure;

    t->q = NULL;
    snprintf(t->canon, sizeof(t->canon), "%s",
             r->status == DNS_OK && r->cname != NULL ? r->cname : "");
    for (size_t i = 0; i < t->naddrs; i++)
        free(t->addrs[i]);
    free(t->addrs);
    t->addrs = NULL;
    t->naddrs = t->ai = 0;
    if (r->status == DNS_OK && r->n > 0) {
        t->addrs = xcalloc(r->n, sizeof(*t->addrs));
        for (size_t i = 0; i < r->n; i++)
            t->addrs[t->naddrs++] = xstrdup(r->addr[i].text);
    } else {
        outq_reply_set(&t->err, 451, "4.4.3", "host %s: %s", t->host, r->why);
    }
    dns_result_free(&r);
    t->plain = false;
    if (t->naddrs > 0 && outq_dest_dane_lookup(t, secure) == 0)
        return;
    outq_dest_next_addr(t);
}

/* outq_dest_is_ip - a numeric address. */
static bool
outq_dest_is_ip(const char *s)
{
    unsigned char b[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* outq_dest_next_host - the next host of the route, or the end of it. */
static void
outq_dest_next_host(struct outq_dest *t)
{
    struct outq *oq = t->oq;

    if (t->hi >= t->nhosts) {
        if (t->err.code == 0)
            outq_reply_set(&t->err, 451, "4.4.1", "no host of %s answered",
                           t->spec != NULL ? t->spec : t->key);
        if (t->err.code / 100 != 4 && t->err.code / 100 != 5)
            t->err.code = 451;
        if (t->err.code / 100 == 5) { /* a server refused the session itself */
            t->err.code = 451;
            snprintf(t->err.status, sizeof(t->err.status), "4.4.1");
        }
        if (!t->answered)
            outq_dest_dead_mark(oq, t->key, &t->err);
        outq_dest_all(t, &t->err);
        return;
    }
    snprintf(t->host, sizeof(t->host), "%s", t->hosts[t->hi++]);
    if (outq_dest_is_ip(t->host)) {
        for (size_t i = 0; i < t->naddrs; i++)
            free(t->addrs[i]);
        free(t->addrs);
        t->addrs = xcalloc(1, sizeof(*t->addrs));
        t->addrs[0] = xstrdup(t->host);
        t->naddrs = 1;
        t->ai = 0;
        t->plain = false;
        t->canon[0] = '\0';
        if (outq_dest_dane_lookup(t, false) == 0) /* an address has no TLSA records */
            return;
        outq_dest_next_addr(t);
        return;
    }
    t->q = dns_addr(oq->d->dns, t->host, outq_dest_addr_result, t);
}

/* outq_dest_mx_before_self - how many of the exchangers (in preference order) come
 * before this host: an MX named like our hostname (a backup MX, a relay_to domain) and
 * every one not better than it are dropped, as Postfix does, so that mail does not loop
 * back here. */
static size_t
outq_dest_mx_before_self(const struct outq *oq, const struct dns_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->mx[i].host, oq->d->srv.hostname) != 0)
            continue;
        while (i > 0 && r->mx[i - 1].pref >= r->mx[i].pref)
            i--;
        return i;
    }
    return r->n;
}

/* outq_dest_sts_result - the domain's MTA-STS policy (NULL: none): under enforce the MX
 * hosts it does not name are dropped and TLS must verify; under testing a mismatch is
 * only logged. */
static void
outq_dest_sts_result(void *arg, const struct mtasts_policy *p, const char *problem)
{
    struct outq_dest *t = arg;
    size_t kept = 0;

    t->sr = NULL;
    if (problem != NULL && t->oq->d->srv.cf->tls_rpt)
        tlsrpt_result(t->oq->rpt, t->key, p != NULL ? "sts" : "no-policy-found", NULL, problem);
    t->sts = p != NULL ? p->mode : MTASTS_NONE;
    if (t->sts == MTASTS_ENFORCE)
        t->require = true; /* never in plaintext */
    for (size_t i = 0; i < t->nhosts; i++) {
        if (t->sts == MTASTS_NONE || mtasts_mx_match(p, t->hosts[i])) {
            t->hosts[kept++] = t->hosts[i];
            continue;
        }
        log_warn("mta-sts domain=%s mode=%s: MX %s does not match the policy%s", t->key,
                 mtasts_mode_name(t->sts), t->hosts[i],
                 t->sts == MTASTS_ENFORCE ? ": skipped" : "");
        if (t->sts == MTASTS_ENFORCE && t->oq->d->srv.cf->tls_rpt)
            tlsrpt_result(t->oq->rpt, t->key, "sts", t->hosts[i], "validation-failure");
        if (t->sts == MTASTS_ENFORCE)
            free(t->hosts[i]);
        else
            t->hosts[kept++] = t->hosts[i];
    }
    t->nhosts = kept;
    if (kept == 0) {
        struct smtpc_reply e;
        outq_reply_set(&e, 451, "4.7.5", "no MX host of %s matches its MTA-STS policy", t->key);
        outq_dest_all(t, &e);
        return;
    }
    outq_dest_next_host(t);
}

/* outq_dest_mx_result - the domain's exchangers. */
static void
outq_dest_mx_result(struct dns_result *r, void *arg)
{
    struct outq_dest *t = arg;
    struct smtpc_reply e;

    t->q = NULL;
    switch (r->status) {
    case DNS_OK:
    case DNS_IMPLICIT: {
        size_t n = r->status == DNS_OK ? outq_dest_mx_before_self(t->oq, r) : r->n;
        if (n == 0) {
            outq_reply_set(&e, 554, "5.4.6", "mail for %s loops back to myself (%s is its best MX)",
                           t->spec != NULL ? t->spec : t->key, t->oq->d->srv.hostname);
            dns_result_free(&r);
            outq_dest_all(t, &e);
            return;
        }
        t->hosts = xcalloc(n, sizeof(*t->hosts));
        for (size_t i = 0; i < n; i++)
            t->hosts[t->nhosts++] = xstrdup(r->mx[i].host);
        t->mx_secure = r->secure;
        dns_result_free(&r);
        /* MTA-STS for mail by MX, unless a tls_policy line decides (it wins) */
        if (t->spec == NULL && t->oq->sts != NULL && t->oq->d->srv.cf->mta_sts &&
            strcmp(t->pol.source, "default") == 0 && !t->tls_no) {
            t->sr = mtasts_get(t->oq->sts, t->key, outq_dest_sts_result, t);
            return;
        }
        outq_dest_next_host(t);
        return;
    }
    default:
        if (t->spec == NULL)
            break;
        /* a smarthost or gateway that does not resolve is the admin's to fix: retried */
        outq_reply_set(&e, 451, "4.4.3", "%s: MX of the relay host: %s", t->spec, r->why);
        dns_result_free(&r);
        outq_dest_all(t, &e);
        return;
    }
    switch (r->status) {
    case DNS_NULLMX:
        outq_reply_set(&e, 556, "5.1.10", "%s does not accept mail (null MX)", t->key);
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        outq_reply_set(&e, 550, "5.1.2", "domain %s: %s", t->key, r->why);
        break;
    default:
        outq_reply_set(&e, 451, "4.4.3", "domain %s: DNS %s", t->key, r->why);
        break;
    }
    dns_result_free(&r);
    outq_dest_all(t, &e);
}

/* outq_dest_relay_route - a smarthost or gateway: its MX (bare name) or the host itself. */
static void
outq_dest_relay_route(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    struct nexthop nh;
    char why[300];

    if (nexthop_parse(t->spec, &nh, why, sizeof(why)) < 0) { /* checked at load */
        struct smtpc_reply e;
        outq_reply_set(&e, 451, "4.3.5", "relay host %s", why);
        outq_dest_all(t, &e);
        return;
    }
    if (nh.port > 0)
        t->port = nh.port;
    if (nh.mx) {
        t->q = dns_mx(oq->d->dns, nh.host, outq_dest_mx_result, t);
        return;
    }
    t->hosts = xcalloc(1, sizeof(*t->hosts));
    t->hosts[0] = xstrdup(nh.host);
    t->nhosts = 1;
    t->mx_secure = true; /* the admin's own name: its addresses decide (RFC 7672 2.2.1) */
    outq_dest_next_host(t);
}

/* outq_dest_pass_work - pool: the first line of the password file. */
static void
outq_dest_pass_work(uv_work_t *w)
{
    struct outq_pass *pj = w->data;
    char *text = NULL;
    size_t len = 0, n;

    if (file_read_all(pj->path, OUTQ_PASS_MAX, &text, &len) < 0) {
        snprintf(pj->err, sizeof(pj->err), "%s",
                 errno == EFBIG ? "larger than 4096 bytes" : strerror(errno));
        return;
    }
    n = strcspn(text, "\r\n");
    if (n == 0)
        snprintf(pj->err, sizeof(pj->err), "its first line is empty");
    else
        pj->pass = xstrndup(text, n);
    explicit_bzero(text, len);
    free(text);
}

/* outq_dest_pass_done - loop: the destination goes on with the password, or is deferred. */
static void
outq_dest_pass_done(uv_work_t *w, int status)
{
    struct outq_pass *pj = w->data;
    struct outq_dest *t = pj->t;

    pj->oq->d->srv.jobs--;
    if (t != NULL) {
        t->pj = NULL;
        if (pj->pass != NULL) {
            t->pass = pj->pass;
            pj->pass = NULL;
            outq_dest_relay_route(t);
        } else {
            struct smtpc_reply e;
            if (pj->err[0] == '\0')
                snprintf(pj->err, sizeof(pj->err), "%s", uv_strerror(status));
            log_error("outq: smarthost_auth: cannot read the password file %s: %s", pj->path,
                      pj->err);
            outq_reply_set(&e, 451, "4.3.5", "smarthost_auth: cannot read the password file %s: %s",
                           pj->path, pj->err);
            outq_dest_all(t, &e);
        }
    }
    if (pj->pass != NULL) {
        explicit_bzero(pj->pass, strlen(pj->pass));
        free(pj->pass);
    }
    free(pj->path);
    free(pj);
}

/* outq_dest_relay_start - a smarthost or gateway: its policies, the password, the route. */
static void
outq_dest_relay_start(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    const struct conf *cf = oq->d->srv.cf;
    const char *auth = cf->smarthost_auth, *sp = strchr(auth, ' ');
    struct outq_pass *pj;

    if (auth[0] == '\0' || sp == NULL) {
        outq_dest_relay_route(t);
        return;
    }
    t->user = xstrndup(auth, (size_t)(sp - auth));
    pj = xcalloc(1, sizeof(*pj));
    pj->oq = oq;
    pj->t = t;
    pj->path = xstrdup(sp + 1);
    pj->w.data = pj;
    oq->d->srv.jobs++;
    if (uv_queue_work(oq->d->srv.loop, &pj->w, outq_dest_pass_work, outq_dest_pass_done) < 0) {
        struct smtpc_reply e;
        oq->d->srv.jobs--;
        free(pj->path);
        free(pj);
        outq_reply_set(&e, 451, "4.3.0", "smarthost_auth: cannot start reading the password");
        outq_dest_all(t, &e);
        return;
    }
    t->pj = pj;
}

/* outq_dest_policy - the destination's TLS policy (tls_policy.h): by its domain, or the
 * host of its smarthost/gateway spec. */
static void
outq_dest_policy(struct outq_dest *t)
{
    const struct conf *cf = t->oq->d->srv.cf;
    struct nexthop nh;
    char why[200];

    snprintf(t->pol_domain, sizeof(t->pol_domain), "%s", t->key);
    if (t->spec != NULL && nexthop_parse(t->spec, &nh, why, sizeof(why)) == 0)
        snprintf(t->pol_domain, sizeof(t->pol_domain), "%s", nh.host);
    tlspol_for(cf, t->pol_domain, t->spec != NULL, &t->pol);
    t->require = tlspol_mandatory(&t->pol);
    log_debug("outq %s: tls_policy=%s%s%s source=%s", t->key, tlspol_level_name(t->pol.level),
              t->pol.match[0] != '\0' ? " match=" : "", t->pol.match, t->pol.source);
}

/* outq_dest_start - resolve and connect. */
void
outq_dest_start(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    const struct conf *cf = oq->d->srv.cf;
    const struct smtpc_reply *dead = outq_dest_dead_find(oq, t->key, time(NULL));

    t->running = true;
    t->since = time(NULL);
    if (dead != NULL) {
        struct smtpc_reply r = *dead;
        outq_dest_all(t, &r);
        return;
    }
    t->port = (int)cf->remote_smtp_port;
    outq_dest_policy(t);
    t->dane_on = tlspol_dane(cf, &t->pol);
    if (t->tls_no) { /* RFC 8689 4.3: sent whatever DANE or MTA-STS say, TLS if it can */
        t->dane_on = false;
        if (t->pol.level == TLSPOL_DANE || t->pol.level == TLSPOL_DANE_ONLY) {
            t->pol.level = TLSPOL_MAY;
            t->require = false;
        }
        log_info("outq %s: TLS-Required: No: DANE and MTA-STS not applied", t->key);
    }
    if (t->spec != NULL) {
        outq_dest_relay_start(t);
        return;
    }
    t->q = dns_mx(oq->d->dns, t->key, outq_dest_mx_result, t);
}

/* outq_dest_get - where a message for key waits: once key has smtp_out_per_domain
 * destinations (each is one session), the one with the fewest waiting (its session carries
 * it next: reuse); before that a destination of key not started yet while it holds fewer
 * than OUTQ_DEST_BATCH, else a new one — so a list's post to 10,000 members at one relay
 * goes out over smtp_out_per_domain sessions at once, not one after the other. */
struct outq_dest *
outq_dest_get(struct outq *oq, const char *key, bool tls_no)
{
    struct outq_dest *t, *best = NULL, *idle = NULL;
    long n = 0;

    for (t = oq->dests; t != NULL; t = t->next) {
        if (strcasecmp(t->key, key) != 0 || t->tls_no != tls_no)
            continue;
        n++;
        if (!t->running && idle == NULL)
            idle = t;
        if (best == NULL || t->nmsgs < best->nmsgs)
            best = t;
    }
    if (best != NULL && n >= oq->d->srv.cf->smtp_out_per_domain)
        return best;
    if (idle != NULL && idle->nmsgs < OUTQ_DEST_BATCH)
        return idle;
    t = xcalloc(1, sizeof(*t));
    t->oq = oq;
    t->key = xstrdup(key);
    t->tls_no = tls_no;
    if (strncmp(key, OUTQ_RELAY, strlen(OUTQ_RELAY)) == 0)
        t->spec = t->key + strlen(OUTQ_RELAY);
    t->next = oq->dests;
    oq->dests = t;
    return t;
}

/* outq_dest_dead_clear - resume: every destination is worth a try again. */
void
outq_dest_dead_clear(struct outq *oq)
{
    while (oq->dead != NULL) {
        struct outq_dead *x = oq->dead;
        oq->dead = x->next;
        free(x->key);
        free(x);
    }
}
