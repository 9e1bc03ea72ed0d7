/*
 * spf - SPF checks with libspf2 over c-ares, by rounds. See spf.h.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "dns.h"
#include "log.h"
#include "recentpop.h"
#include "session.h"
#include "spf.h"
#include "xmem.h"

#define SPF_WANT_MAX 16   /* records noted in one round */
#define SPF_ROUNDS_MAX 40 /* evaluations of one check */
#define SPF_TEXT_MAX 1400 /* Received-SPF: and comment text kept */

struct spf_want {
    struct spf_check *c;
    char *name;
    ns_type type;
    struct dns_query *q; /* NULL once answered */
};

struct spf_check {
    struct smtp_session *s;
    SPF_dns_server_t miss; /* below the zone: notes what is missing */
    SPF_dns_server_t *zone;
    SPF_server_t *server;
    struct spf_want want[SPF_WANT_MAX];
    int nwant, pending, rounds;
    bool overflow; /* more than SPF_WANT_MAX missing in a round */
    bool running, done;
    uv_timer_t timer; /* dns_timeout for the whole check */
    void (*done_cb)(struct smtp_session *s);
    SPF_result_t result;
    const char *why;  /* why a temperror, for the log */
    char domain[256]; /* checked: the sender's, or the HELO name */
    char from[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8]; /* local@domain, "" for <> */
    char received[SPF_TEXT_MAX]; /* "Received-SPF: ..." without the line end */
    char comment[SPF_TEXT_MAX];  /* libspf2's explanation, for the refusal */
};

/* spf_log_cb - libspf2's warnings and notes go to the debug log. */
static void
spf_log_cb(const char *file, int line, const char *msg)
{
    char esc[600];

    if (log_get_level() >= LOGLVL_DEBUG && msg != NULL)
        log_debug("libspf2: %s", log_escape(esc, sizeof(esc), msg, strlen(msg), 400));
}

/* spf_result_name - RFC 8601 / RFC 7208 names. */
static const char *
spf_result_name(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return "pass";
    case SPF_RESULT_FAIL:
        return "fail";
    case SPF_RESULT_SOFTFAIL:
        return "softfail";
    case SPF_RESULT_NEUTRAL:
        return "neutral";
    case SPF_RESULT_NONE:
        return "none";
    case SPF_RESULT_PERMERROR:
        return "permerror";
    default:
        return "temperror";
    }
}

/* spf_clean - text from DNS or libspf2 made printable ASCII on one line, without the
 * characters that would end a header comment. */
static void
spf_clean(char *dst, size_t len, const char *src)
{
    size_t i;

    for (i = 0; src != NULL && src[i] != '\0' && i + 1 < len; i++)
        dst[i] = src[i] >= 32 && src[i] < 127 ? src[i] : '?';
    dst[i] = '\0';
}

/* spf_fold - fold a Received-SPF: field before its key=value pairs (after the comment),
 * so no line of it gets near RFC 5322's 998 octets. */
static void
spf_fold(char *f, size_t size)
{
    static const char *const keys[] = {" client-ip=", " envelope-from=", " helo="};
    char *start = strrchr(f, ')');

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *k = strstr(start != NULL ? start : f, keys[i]);
        size_t len = strlen(f);
        if (k == NULL || len + 2 >= size)
            continue;
        memmove(k + 2, k + 1, len - (size_t)(k + 1 - f) + 1); /* " x" -> "\n\tx" */
        k[0] = '\n';
        k[1] = '\t';
    }
}

/* spf_miss_lookup - the layer under the zone: a record not known yet is noted, and
 * libspf2 hears "try again" (the round's result is not used). */
static SPF_dns_rr_t *
spf_miss_lookup(SPF_dns_server_t *server, const char *domain, ns_type type, int should_cache)
{
    struct spf_check *c = server->hook;
    int i;

    for (i = 0; i < c->nwant; i++)
        if (c->want[i].type == type && strcasecmp(c->want[i].name, domain) == 0)
            break;
    if (i == c->nwant) {
        if (c->nwant < SPF_WANT_MAX) {
            c->want[c->nwant].c = c;
            c->want[c->nwant].name = xstrdup(domain);
            c->want[c->nwant].type = type;
            c->want[c->nwant++].q = NULL;
        } else {
            c->overflow = true;
        }
    }
    return SPF_dns_rr_new_init(server, domain, type, 0, TRY_AGAIN);
}

/* spf_herrno - the resolver's status as libspf2 knows it. */
static int
spf_herrno(enum dns_status st)
{
    switch (st) {
    case DNS_OK:
        return NETDB_SUCCESS;
    case DNS_NXDOMAIN:
        return HOST_NOT_FOUND;
    case DNS_TEMPFAIL:
        return TRY_AGAIN;
    default: /* no data; an implicit or null MX: no MX records */
        return NO_DATA;
    }
}

/* spf_zone_add - a record set (or its absence) into the zone. */
static void
spf_zone_add(struct spf_check *c, const char *name, ns_type type, enum dns_status st, char **data,
             size_t n)
{
    int h = spf_herrno(st);

    if (h == NETDB_SUCCESS && n == 0)
        h = NO_DATA;
    if (h != NETDB_SUCCESS) {
        SPF_dns_zone_add_str(c->zone, name, type, h, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++)
        SPF_dns_zone_add_str(c->zone, name, type, NETDB_SUCCESS, data[i]);
}

/* spf_zone_add_addr - the A and AAAA records of one dns_addr answer. */
static void
spf_zone_add_addr(struct spf_check *c, const struct dns_result *r)
{
    for (int fam = 0; fam < 2; fam++) {
        int want = fam ? AF_INET6 : AF_INET;
        char *list[64];
        size_t n = 0;
        for (size_t i = 0; i < r->n && n < 64; i++)
            if (r->addr[i].family == want)
                list[n++] = (char *)r->addr[i].text;
        spf_zone_add(c, r->name, fam ? ns_t_aaaa : ns_t_a, r->status, list, n);
    }
}

static void spf_round(struct spf_check *c);

/* spf_answer - one noted record came: into the zone; the next round when all came. */
static void
spf_answer(struct dns_result *r, void *arg)
{
    struct spf_want *w = arg;
    struct spf_check *c = w->c;

    w->q = NULL;
    switch (r->kind) {
    case DNS_ADDR:
        spf_zone_add_addr(c, r);
        break;
    case DNS_TXT:
        spf_zone_add(c, r->name, ns_t_txt, r->status, r->txt, r->n);
        break;
    case DNS_PTR:
        spf_zone_add(c, r->name, ns_t_ptr, r->status, r->ptr, r->n);
        break;
    case DNS_A: /* never asked here (dns_addr gives both families) */
    case DNS_FCRDNS:
    case DNS_TLSA:
        break;
    case DNS_MX: {
        char *hosts[64];
        size_t n = 0;
        for (size_t i = 0; r->status == DNS_OK && i < r->n && n < 64; i++)
            hosts[n++] = r->mx[i].host;
        spf_zone_add(c, r->name, ns_t_mx, r->status, hosts, n);
        break;
    }
    }
    dns_result_free(&r);
    if (--c->pending == 0)
        spf_round(c);
}

/* spf_end - the check is over: stop, log, wake MAIL. */
static void
spf_end(struct spf_check *c, SPF_result_t result, const char *why)
{
    struct smtp_session *s = c->s;
    void (*done)(struct smtp_session *) = c->done_cb;
    char dom[300];

    c->running = false;
    c->done = true;
    c->done_cb = NULL;
    c->result = result;
    c->why = why;
    uv_timer_stop(&c->timer);
    for (int i = 0; i < c->nwant; i++) {
        if (c->s->d->dns != NULL) /* else dns_free dropped it already */
            dns_cancel(c->want[i].q);
        c->want[i].q = NULL;
        free(c->want[i].name);
    }
    c->nwant = c->pending = 0;
    if (c->received[0] == '\0') /* no evaluation finished: say so ourselves */
        snprintf(c->received, sizeof(c->received),
                 "Received-SPF: %s (%s: %s) client-ip=%s; envelope-from=%s; helo=%s;",
                 spf_result_name(result), s->d->srv.hostname, why ? why : "no result", s->base.ip,
                 c->from, s->helo);
    spf_fold(c->received, sizeof(c->received));
    log_escape(dom, sizeof(dom), c->domain, strlen(c->domain), 256);
    log_sess(LOGLVL_INFO, s->base.sid, "spf result=%s domain=%s rounds=%d%s%s",
             spf_result_name(result), dom, c->rounds, why ? " why=" : "", why ? why : "");
    if (done != NULL)
        done(s);
}

/* spf_evaluate - one round: libspf2 against the zone. true when it needed nothing
 * that is missing (then the result is final). */
static bool
spf_evaluate(struct spf_check *c, SPF_result_t *result)
{
    struct smtp_session *s = c->s;
    SPF_request_t *req = SPF_request_new(c->server);
    SPF_response_t *resp = NULL;
    const char *ip = s->base.ip;
    unsigned char b[16];
    char v4[INET_ADDRSTRLEN];
    bool final;

    if (inet_pton(AF_INET6, ip, b) == 1 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)b)) {
        inet_ntop(AF_INET, b + 12, v4, sizeof(v4));
        ip = v4;
    }
    if (strchr(ip, ':') != NULL)
        SPF_request_set_ipv6_str(req, ip);
    else
        SPF_request_set_ipv4_str(req, ip);
    SPF_request_set_helo_dom(req, s->helo);
    SPF_request_set_env_from(req, c->from);
    c->nwant = 0;
    c->overflow = false;
    c->rounds++;
    SPF_request_query_mailfrom(req, &resp);
    final = c->nwant == 0 && !c->overflow;
    if (final && resp != NULL) {
        *result = SPF_response_result(resp);
        spf_clean(c->received, sizeof(c->received), SPF_response_get_received_spf(resp));
        spf_clean(c->comment, sizeof(c->comment), SPF_response_get_header_comment(resp));
    }
    if (resp != NULL)
        SPF_response_free(resp);
    SPF_request_free(req);
    return final;
}

/* spf_round - evaluate; look up what was missing, or end. */
static void
spf_round(struct spf_check *c)
{
    SPF_result_t result = SPF_RESULT_INVALID;
    struct dns *dns = c->s->d->dns;

    for (int i = 0; i < c->nwant; i++)
        free(c->want[i].name);
    c->nwant = 0;
    if (spf_evaluate(c, &result)) {
        if (result == SPF_RESULT_INVALID)
            result = SPF_RESULT_TEMPERROR;
        spf_end(c, result, result == SPF_RESULT_TEMPERROR ? "dns-error" : NULL);
        return;
    }
    if (c->rounds >= SPF_ROUNDS_MAX) {
        spf_end(c, SPF_RESULT_PERMERROR, "too-many-lookups");
        return;
    }
    c->pending = c->nwant + 1; /* held while the lookups start */
    for (int i = 0; i < c->nwant; i++) {
        struct spf_want *w = &c->want[i];
        switch (w->type) {
        case ns_t_txt:
            w->q = dns_txt(dns, w->name, spf_answer, w);
            break;
        case ns_t_a:
        case ns_t_aaaa:
            w->q = dns_addr(dns, w->name, spf_answer, w);
            break;
        case ns_t_mx:
            w->q = dns_mx(dns, w->name, spf_answer, w);
            break;
        case ns_t_ptr:
            w->q = dns_ptr(dns, w->name, spf_answer, w);
            break;
        default: /* the obsolete SPF type and the like: no such records */
            SPF_dns_zone_add_str(c->zone, w->name, w->type, NO_DATA, NULL);
            c->pending--;
            break;
        }
    }
    if (--c->pending == 0) /* only records that need no lookup */
        spf_round(c);
}

/* spf_timeout - the check took dns_timeout. */
static void
spf_timeout(uv_timer_t *t)
{
    spf_end(t->data, SPF_RESULT_TEMPERROR, "timeout");
}

/* spf_closed - the timer is closed: the check's memory goes. */
static void
spf_closed(uv_handle_t *h)
{
    free(h->data);
}

/* spf_applies - whether the session's MAIL is checked. */
static bool
spf_applies(const struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;

    return cf->spf_check && s->base.port == SMTPD_PORT_SMTP && s->auth_user == NULL &&
           s->d->dns != NULL && !conf_ip_match(&cf->forward_from_ip, s->base.ip) &&
           !recentpop_allowed(s);
}

bool
spf_wait(struct smtp_session *s, void (*done)(struct smtp_session *s))
{
    static bool quiet;
    struct spf_check *c = s->spf;

    if (c != NULL) {
        if (c->done)
            return false;
        c->done_cb = done;
        return true;
    }
    if (!spf_applies(s))
        return false;
    if (!quiet) {
        SPF_warning_handler = spf_log_cb;
        SPF_info_handler = spf_log_cb;
        SPF_debug_handler = spf_log_cb;
        quiet = true;
    }
    c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->miss.lookup = spf_miss_lookup;
    c->miss.name = "dmail-miss";
    c->miss.hook = c;
    c->zone = SPF_dns_zone_new(&c->miss, "dmail-zone", 0);
    c->server = c->zone != NULL ? SPF_server_new_dns(c->zone, 0) : NULL;
    if (c->server == NULL)
        log_fatal("libspf2: out of memory");
    SPF_server_set_rec_dom(c->server, s->d->srv.hostname);
    if (s->arg.mail.from.local[0] != '\0' || s->arg.mail.from.domain[0] != '\0') {
        snprintf(c->domain, sizeof(c->domain), "%s", s->arg.mail.from.domain);
        snprintf(c->from, sizeof(c->from), "%s@%s", s->arg.mail.from.local,
                 s->arg.mail.from.domain);
    } else {
        snprintf(c->domain, sizeof(c->domain), "%s", s->helo);
    }
    uv_timer_init(s->d->srv.loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, spf_timeout, (uint64_t)s->base.cf->dns_timeout * 1000, 0);
    s->spf = c;
    c->running = true;
    spf_round(c); /* the first round always looks something up: done_cb comes later */
    if (c->done)
        return false;
    c->done_cb = done;
    return true;
}

bool
spf_refuse(struct smtp_session *s)
{
    struct spf_check *c = s->spf;
    int level = s->base.cf->spf_reject; /* none, fail, softfail */
    char dom[300];

    if (c == NULL || !c->done)
        return false;
    if (!(c->result == SPF_RESULT_FAIL && level >= 1) &&
        !(c->result == SPF_RESULT_SOFTFAIL && level >= 2))
        return false;
    log_escape(dom, sizeof(dom), c->domain, strlen(c->domain), 256);
    log_sess(LOGLVL_INFO, s->base.sid, "refused reason=spf result=%s domain=%s",
             spf_result_name(c->result), dom);
    session_reply(s, 550, "5.7.23", "SPF %s: %s", spf_result_name(c->result),
                  c->comment[0] ? c->comment : "sender not permitted from this address");
    return true;
}

size_t
spf_authres(const struct smtp_session *s, char *buf, size_t len)
{
    const struct spf_check *c = s->spf;
    int n;

    if (c == NULL || !c->done)
        return 0;
    if (s->tx.sender[0] != '\0')
        n = snprintf(buf, len, "spf=%s smtp.mailfrom=%s", spf_result_name(c->result), s->tx.sender);
    else
        n = snprintf(buf, len, "spf=%s smtp.helo=%s", spf_result_name(c->result), s->helo);
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

size_t
spf_received(const struct smtp_session *s, char *buf, size_t len)
{
    const struct spf_check *c = s->spf;
    int n;

    if (c == NULL || !c->done)
        return 0;
    n = snprintf(buf, len, "%s\n", c->received);
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

void
spf_free(struct smtp_session *s)
{
    struct spf_check *c = s->spf;

    if (c == NULL)
        return;
    s->spf = NULL;
    for (int i = 0; i < c->nwant; i++) {
        if (c->s->d->dns != NULL) /* else dns_free dropped it already */
            dns_cancel(c->want[i].q);
        free(c->want[i].name);
    }
    SPF_server_free(c->server);
    SPF_dns_free(c->zone);
    uv_close((uv_handle_t *)&c->timer, spf_closed);
}

/* spf_field_is - whether the header field at p (a line) is name, and where its value
 * starts. */
static const char *
spf_field_is(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0)
        return NULL;
    p += n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && *p == ':' ? p + 1 : NULL;
}

/* spf_authserv_is - whether an Authentication-Results: value (up to end, folded lines
 * included) begins with authserv-id id (after white space and comments). */
static bool
spf_authserv_is(const char *v, const char *end, const char *id)
{
    size_t n = strlen(id), k;

    for (;;) {
        while (v < end && isspace((unsigned char)*v))
            v++;
        if (v < end && *v == '(') { /* a comment, maybe nested */
            int depth = 0;
            for (; v < end; v++) {
                if (*v == '\\' && v + 1 < end)
                    v++;
                else if (*v == '(')
                    depth++;
                else if (*v == ')' && --depth == 0) {
                    v++;
                    break;
                }
            }
            continue;
        }
        break;
    }
    if (v < end && *v == '"') { /* a quoted-string id */
        v++;
        for (k = 0; v + k < end && v[k] != '"'; k++)
            ;
        return k == n && strncasecmp(v, id, n) == 0;
    }
    for (k = 0; v + k < end && !isspace((unsigned char)v[k]) && v[k] != ';' && v[k] != '('; k++)
        ;
    return k == n && strncasecmp(v, id, n) == 0;
}

size_t
spf_strip_authres(char *text, size_t len, size_t from, const char *authserv_id)
{
    size_t i = from;

    while (i < len && text[i] != '\n') {
        size_t end = i;
        const char *v;
        /* the field: its line and the folded lines after it */
        do {
            const char *nl = memchr(text + end, '\n', len - end);
            end = nl ? (size_t)(nl - text) + 1 : len;
        } while (end < len && (text[end] == ' ' || text[end] == '\t'));
        v = spf_field_is(text + i, text + end, "Authentication-Results");
        if (v != NULL && spf_authserv_is(v, text + end, authserv_id)) {
            memmove(text + i, text + end, len - end);
            len -= end - i;
            continue;
        }
        i = end;
    }
    return len;
}
