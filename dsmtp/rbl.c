/*
 * rbl - DNSBL checks at connect and RCPT, with a per-process result cache. See rbl.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "dns.h"
#include "log.h"
#include "lru.h"
#include "rbl.h"
#include "xmem.h"

enum rbl_kind { RBL_BAN, RBL_REJECT, RBL_VANISH };
static const char *const rbl_setting[] = {"rbl_ban", "rbl_reject", "rbl_vanish"};

struct rbl {
    struct lru *cache; /* "zone ip" -> struct rbl_cached */
};

struct rbl_cached {
    bool listed;
    char answer[INET6_ADDRSTRLEN];
};

struct rbl_session;

/* One zone asked about the session's client. */
struct rbl_lookup {
    struct rbl_session *rs;
    struct dns_query *q; /* while the query runs */
    const char *zone;    /* in the session's snapshot */
    enum rbl_kind kind;
    bool listed;
    char answer[INET6_ADDRSTRLEN];
};

struct rbl_session {
    struct smtp_session *s;
    size_t n, pending;
    struct rbl_lookup *look;
};

struct rbl *
rbl_new(void)
{
    struct rbl *r = xcalloc(1, sizeof(*r));

    r->cache = lru_new(RBL_CACHE_MAX, sizeof(struct rbl_cached));
    return r;
}

void
rbl_free(struct rbl **rp)
{
    struct rbl *r = *rp;

    if (r == NULL)
        return;
    *rp = NULL;
    lru_free(&r->cache);
    free(r);
}

/* rbl_name - the reversed address under zone: dns_reverse_name's labels without their
 * in-addr.arpa / ip6.arpa. */
int
rbl_name(const char *ip, const char *zone, char *buf, size_t len)
{
    char rev[DNS_REVERSE_MAX];
    const char *end;
    int n;

    if (dns_reverse_name(ip, rev, sizeof(rev)) < 0)
        return -1;
    end = strstr(rev, ".in-addr.arpa");
    if (end == NULL)
        end = strstr(rev, ".ip6.arpa");
    n = snprintf(buf, len, "%.*s.%s", (int)(end - rev), rev, zone);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* rbl_pair_match - an rbl_except_* list has a "ZONE ENTRY" line (ZONE this zone or "*")
 * whose entry matches value (an address when ip, else a mailbox). The matching line. */
static const char *
rbl_pair_match(const struct conf_list *l, const char *zone, const char *value, bool ip)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *item = l->v[i], *sp = strchr(item, ' ');
        size_t zlen;
        if (sp == NULL)
            continue;
        zlen = (size_t)(sp - item);
        if (!(zlen == 1 && item[0] == '*') &&
            !(strncasecmp(item, zone, zlen) == 0 && zone[zlen] == '\0'))
            continue;
        char *entry = (char *)(sp + 1);
        struct conf_list one = {1, &entry};
        if (ip ? conf_ip_rule(&one, value) != NULL : conf_addr_rule(&one, value) != NULL)
            return item;
    }
    return NULL;
}

/* rbl_listing - the first listing answer of r (127.0.0.0/8, not 127.255.255.x), or NULL. */
static const char *
rbl_listing(const struct dns_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&r->addr[i].sa;
        uint32_t a = ntohl(sin->sin_addr.s_addr);
        if (r->addr[i].family == AF_INET && (a >> 24) == 127 && (a >> 8) != 0x7fffff)
            return r->addr[i].text;
    }
    return NULL;
}

/* rbl_cache_key - "zone ip". */
static void
rbl_cache_key(char *key, size_t len, const char *zone, const char *ip)
{
    snprintf(key, len, "%s %s", zone, ip);
}

/* rbl_log_result - one line per zone asked. */
static void
rbl_log_result(const struct smtp_session *s, const struct rbl_lookup *l, const char *how)
{
    log_sess(LOGLVL_INFO, s->base.sid, "rbl zone=%s setting=%s ip=%s result=%s%s%s source=%s",
             l->zone, rbl_setting[l->kind], s->base.ip, l->listed ? "listed" : "clean",
             l->listed ? " answer=" : "", l->listed ? l->answer : "", how);
}

/* rbl_decide - every answer is in: a listing of an rbl_ban zone refuses the session (554,
 * closed); otherwise the greeting. True when the session waits again (for the content
 * filters' connect stage). */
static bool
rbl_decide(struct smtp_session *s)
{
    struct rbl_session *rs = s->rbl;

    for (size_t i = 0; i < rs->n; i++) {
        const struct rbl_lookup *l = &rs->look[i];
        if (l->kind != RBL_BAN || !l->listed)
            continue;
        log_sess(LOGLVL_INFO, s->base.sid,
                 "banned stage=connect ip=<%s> setting=rbl_ban rule=%s answer=%s", s->base.ip,
                 l->zone, l->answer);
        session_reply(s, 554, "5.7.1", "5.7.1 %s Service unavailable; client [%s] blocked using %s",
                      s->d->srv.hostname, s->base.ip, l->zone);
        sess_close(&s->base, "rbl");
        return false;
    }
    return command_banner(s);
}

/* rbl_answer - one zone answered (or failed): cache, and when it was the last, decide. */
static void
rbl_answer(struct dns_result *r, void *arg)
{
    struct rbl_lookup *l = arg;
    struct rbl_session *rs = l->rs;
    struct smtp_session *s = rs->s;
    struct rbl *rbl = s->d->rbl;
    uint64_t now = uv_now(s->d->srv.loop);
    const char *hit;
    char key[600];

    l->q = NULL;
    if (r->status == DNS_TEMPFAIL) {
        log_sess(LOGLVL_WARN, s->base.sid,
                 "rbl zone=%s setting=%s ip=%s result=error why=%s action=accept", l->zone,
                 rbl_setting[l->kind], s->base.ip, r->why);
    } else {
        long ttl = RBL_NEG_TTL;
        hit = r->status == DNS_OK ? rbl_listing(r) : NULL;
        if (hit != NULL) {
            l->listed = true;
            snprintf(l->answer, sizeof(l->answer), "%s", hit);
            ttl = r->ttl < 1 ? 1 : (r->ttl > RBL_MAX_TTL ? RBL_MAX_TTL : r->ttl);
        }
        rbl_cache_key(key, sizeof(key), l->zone, s->base.ip);
        struct rbl_cached *c = lru_put(rbl->cache, key, now + (uint64_t)ttl * 1000, now, NULL);
        c->listed = l->listed;
        snprintf(c->answer, sizeof(c->answer), "%s", l->answer);
        rbl_log_result(s, l, "dns");
    }
    dns_result_free(&r);
    if (--rs->pending > 0)
        return;
    if (!rbl_decide(s))
        sess_resume(&s->base);
}

/* rbl_add - one zone of setting kind, unless an rbl_except_ip line exempts the client. */
static void
rbl_add(struct smtp_session *s, struct rbl_session *rs, const char *zone, enum rbl_kind kind)
{
    const char *rule = rbl_pair_match(&s->base.cf->rbl_except_ip, zone, s->base.ip, true);
    struct rbl_lookup *l;

    if (rule != NULL) {
        log_sess(LOGLVL_DEBUG, s->base.sid, "rbl zone=%s ip=%s result=exempt rule=\"%s\"", zone,
                 s->base.ip, rule);
        return;
    }
    l = &rs->look[rs->n++];
    l->rs = rs;
    l->zone = zone;
    l->kind = kind;
}

bool
rbl_connect(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    const struct conf_list *lists[] = {&cf->rbl_ban, &cf->rbl_reject, &cf->rbl_vanish};
    size_t total = cf->rbl_ban.n + cf->rbl_reject.n + cf->rbl_vanish.n;
    uint64_t now = uv_now(s->d->srv.loop);
    struct rbl_session *rs;
    char key[600], name[600];

    if (total == 0 || s->base.port != SMTPD_PORT_SMTP || s->d->dns == NULL ||
        conf_ip_match(&cf->forward_from_ip, s->base.ip) ||
        rbl_name(s->base.ip, "x", name, sizeof(name)) < 0)
        return false;
    rs = xcalloc(1, sizeof(*rs));
    rs->s = s;
    rs->look = xcalloc(total, sizeof(*rs->look));
    s->rbl = rs;
    for (int k = RBL_BAN; k <= RBL_VANISH; k++)
        for (size_t i = 0; i < lists[k]->n; i++)
            rbl_add(s, rs, lists[k]->v[i], (enum rbl_kind)k);
    for (size_t i = 0; i < rs->n; i++) {
        struct rbl_lookup *l = &rs->look[i];
        rbl_cache_key(key, sizeof(key), l->zone, s->base.ip);
        const struct rbl_cached *c = lru_get(s->d->rbl->cache, key, now);
        if (c != NULL) {
            l->listed = c->listed;
            snprintf(l->answer, sizeof(l->answer), "%s", c->answer);
            rbl_log_result(s, l, "cache");
            continue;
        }
        rbl_name(s->base.ip, l->zone, name, sizeof(name));
        rs->pending++;
        l->q = dns_a(s->d->dns, name, rbl_answer, l); /* never answers from inside */
    }
    if (rs->pending == 0) { /* all from the cache: the reply now */
        rbl_decide(s);
        return true;
    }
    sess_go_async(&s->base);
    return true;
}

bool
rbl_rcpt(struct smtp_session *s, const char *rcpt)
{
    const struct rbl_session *rs = s->rbl;

    if (rs == NULL || s->auth_user != NULL)
        return false;
    for (size_t i = 0; i < rs->n; i++) {
        const struct rbl_lookup *l = &rs->look[i];
        const char *rule;
        if (l->kind == RBL_BAN || !l->listed)
            continue;
        if ((rule = rbl_pair_match(&s->base.cf->rbl_except_mail, l->zone, s->tx.sender, false)) !=
                NULL ||
            (rule = rbl_pair_match(&s->base.cf->rbl_except_rcpt, l->zone, rcpt, false)) != NULL) {
            log_sess(LOGLVL_INFO, s->base.sid, "rbl zone=%s result=exempt rule=\"%s\"", l->zone,
                     rule);
            continue;
        }
        log_sess(LOGLVL_INFO, s->base.sid, "rbl-reject stage=rcpt zone=%s setting=%s ip=%s to=<%s>",
                 l->zone, rbl_setting[l->kind], s->base.ip, rcpt);
        session_reply(s, 554, "5.7.1", "<%s>: Service unavailable; client [%s] blocked using %s",
                      rcpt, s->base.ip, l->zone);
        return true;
    }
    return false;
}

void
rbl_session_end(struct smtp_session *s)
{
    struct rbl_session *rs = s->rbl;

    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->look[i].q != NULL && s->d->dns != NULL) /* dns_free dropped them already */
            dns_cancel(rs->look[i].q);
        rs->look[i].q = NULL;
    }
    rs->pending = 0;
}

void
rbl_session_free(struct smtp_session *s)
{
    if (s->rbl == NULL)
        return;
    free(s->rbl->look);
    free(s->rbl);
    s->rbl = NULL;
}
