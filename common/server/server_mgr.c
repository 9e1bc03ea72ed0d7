/*
 * server_mgr - the remote manager port: access checks, AUTH on the pool, then a relay to
 * the control socket. See server_mgr.h.
 */
#include "server_mgr.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "dns.h"
#include "log.h"
#include "penalty.h"
#include "server.h"
#include "xmem.h"

#define MGR_LINE_MAX 1024     /* the AUTH line, newline included */
#define MGR_HIGH (256 * 1024) /* relay: stop reading while the other side holds this */
#define MGR_DNS_TRIES 2

enum mgr_state {
    MGR_CHECKING, /* manager_ip_name: the reverse lookup runs */
    MGR_AUTH,     /* waiting for "AUTH password" */
    MGR_VERIFY,   /* the penalty wait or crypt(3) on the pool */
    MGR_RELAY,    /* logged in: bytes to and from the control socket */
    MGR_DONE,     /* closing */
};

struct server_mgr {
    struct server *srv;
    struct net_server *net;
    struct penalty *pen;
    struct dns *dns;
    bool plaintext;
    bool closed;
    struct mgr_conn *conns;
};

struct mgr_conn {
    struct server_mgr *m;
    struct mgr_conn *prev, *next;
    struct net_conn *c; /* the client; NULL once closed */
    struct net_conn *u; /* the control socket; NULL when not (or no more) open */
    struct dns_query *q;
    enum mgr_state state;
    int refs; /* c, u, the pool job, the timer */
    struct linereader lr;
    char ip[64];
    char name[256]; /* the confirmed reverse name (manager_ip_name) */
    uv_timer_t *timer;
    uv_work_t w;
    char *password;
    char *hash;
    bool ok;
};

static void mgr_conn_event(struct net_conn *c, enum net_event ev, void *arg);

/* mgr_unref - one holder less; the last frees. */
static void
mgr_unref(struct mgr_conn *mc)
{
    if (--mc->refs > 0)
        return;
    if (mc->prev != NULL)
        mc->prev->next = mc->next;
    else if (mc->m->conns == mc)
        mc->m->conns = mc->next;
    if (mc->next != NULL)
        mc->next->prev = mc->prev;
    if (mc->password != NULL) {
        OPENSSL_cleanse(mc->password, strlen(mc->password));
        free(mc->password);
    }
    free(mc->hash);
    struct server_mgr *m = mc->m;
    free(mc);
    if (m->closed && m->conns == NULL)
        free(m);
}

/* mgr_is_loopback - 127.0.0.0/8, ::1 or ::ffff:127.x. */
static bool
mgr_is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

/* mgr_name_match - DMail wildcard host-name list ('*' any run, any case; "!" negates). */
static bool
mgr_name_match(const struct conf_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *pat = l->v[i];
        bool neg = pat[0] == '!';
        if (fnmatch(pat + neg, name, FNM_CASEFOLD) == 0)
            return !neg;
    }
    return false;
}

/* mgr_refuse - not allowed: log and close at once. */
static void
mgr_refuse(struct mgr_conn *mc, const char *why)
{
    log_warn("manager: refused ip=%s reason=%s", mc->ip, why);
    mc->state = MGR_DONE;
    if (mc->c != NULL)
        net_abort(mc->c);
}

/* mgr_send - a status line to the client (before the relay). */
static void
mgr_send(struct mgr_conn *mc, const char *line)
{
    if (mc->c != NULL)
        net_printf(mc->c, "%s\n", line);
}

static void mgr_input(struct mgr_conn *mc);

/* mgr_allowed - the address may use the manager port now (no lookup needed). 1 yes,
 * 0 no, -1 a reverse lookup decides. */
static int
mgr_allowed(struct server_mgr *m, const char *ip)
{
    const struct conf *cf = m->srv->cf;

    if (m->plaintext && !mgr_is_loopback(ip))
        return 0;
    if (cf->manager_ip_address.n == 0 && cf->manager_ip_name.n == 0)
        return mgr_is_loopback(ip) ? 1 : 0;
    if (conf_ip_match(&cf->manager_ip_address, ip))
        return 1;
    return cf->manager_ip_name.n > 0 && m->dns != NULL ? -1 : 0;
}

/* mgr_fcrdns_done - the client's reverse name, forward-confirmed or not. */
static void
mgr_fcrdns_done(struct dns_result *res, void *arg)
{
    struct mgr_conn *mc = arg;
    char why[64];

    mc->q = NULL;
    if (res->status != DNS_OK) {
        snprintf(why, sizeof(why), "no-name(%s)", res->why);
        dns_result_free(&res);
        mgr_refuse(mc, why);
        return;
    }
    snprintf(mc->name, sizeof(mc->name), "%s", res->ptr[0]);
    if (!res->confirmed) {
        dns_result_free(&res);
        mgr_refuse(mc, "name-not-confirmed");
        return;
    }
    dns_result_free(&res);
    if (!mgr_name_match(&mc->m->srv->cf->manager_ip_name, mc->name)) {
        mgr_refuse(mc, "name-not-allowed");
        return;
    }
    log_info("manager: ip=%s name=%s allowed by manager_ip_name", mc->ip, mc->name);
    mc->state = MGR_AUTH;
    mgr_input(mc);
}

/* mgr_accept - a new manager client: allowed addresses only. */
static void
mgr_accept(struct net_conn *c, void *arg)
{
    struct server_mgr *m = arg;
    struct mgr_conn *mc = xcalloc(1, sizeof(*mc));
    int allowed;

    mc->m = m;
    mc->c = c;
    mc->refs = 1;
    mc->next = m->conns;
    if (m->conns != NULL)
        m->conns->prev = mc;
    m->conns = mc;
    snprintf(mc->ip, sizeof(mc->ip), "%s", net_peer_ip(c));
    linereader_init(&mc->lr, MGR_LINE_MAX);
    net_set_cb(c, mgr_conn_event, mc);
    net_set_timeout(c, SERVER_MGR_AUTH_MS);
    allowed = m->closed ? 0 : mgr_allowed(m, mc->ip);
    if (allowed == 0) {
        mgr_refuse(mc, m->plaintext && !mgr_is_loopback(mc->ip) ? "plaintext-loopback-only"
                                                                : "address-not-allowed");
        return;
    }
    if (allowed < 0) {
        mc->q = dns_fcrdns(m->dns, mc->ip, mgr_fcrdns_done, mc);
        if (mc->q == NULL) {
            mgr_refuse(mc, "address-not-allowed");
            return;
        }
        mc->state = MGR_CHECKING;
        return;
    }
    mc->state = MGR_AUTH;
    log_debug("manager: connection ip=%s", mc->ip);
}

/* mgr_work - on the pool: crypt(3). */
static void
mgr_work(uv_work_t *w)
{
    struct mgr_conn *mc = w->data;

    mc->ok = auth_check_hash(mc->password, mc->hash);
}

/* mgr_relay_start - logged in: open the control socket and pass everything on. */
static void
mgr_relay_start(struct mgr_conn *mc)
{
    struct server *srv = mc->m->srv;
    char err[300];

    if (srv->ctl == NULL) {
        mgr_send(mc, "ERR the control socket is not open");
        mc->state = MGR_DONE;
        net_close(mc->c);
        return;
    }
    mc->u = net_connect_unix(mc->m->net, ctl_server_path(srv->ctl), mgr_conn_event, mc, err,
                             sizeof(err));
    if (mc->u == NULL) {
        log_warn("manager: %s", err);
        mgr_send(mc, "ERR cannot reach the control socket");
        mc->state = MGR_DONE;
        net_close(mc->c);
        return;
    }
    mc->refs++;
    mc->state = MGR_RELAY;
    net_set_timeout(mc->c, 0); /* the control socket has its own idle timeout */
    mgr_send(mc, "OK authenticated");
    mgr_input(mc); /* requests sent right behind AUTH */
}

/* mgr_work_done - the verdict, on the loop. */
static void
mgr_work_done(uv_work_t *w, int status)
{
    struct mgr_conn *mc = w->data;
    struct server_mgr *m = mc->m;
    uint64_t now = uv_now(m->srv->loop);

    m->srv->jobs--;
    OPENSSL_cleanse(mc->password, strlen(mc->password));
    free(mc->password);
    mc->password = NULL;
    if (mc->c == NULL || mc->state != MGR_VERIFY || m->closed) {
        mgr_unref(mc);
        return;
    }
    if (status == 0 && mc->ok) {
        penalty_login_ok(m->pen, mc->ip, NULL);
        log_info("manager: login ip=%s%s%s", mc->ip, mc->name[0] ? " name=" : "", mc->name);
        mgr_relay_start(mc);
    } else {
        penalty_login_fail(m->pen, mc->ip, NULL, now);
        log_warn("manager: authentication failed ip=%s", mc->ip);
        mgr_send(mc, "ERR authentication failed");
        mc->state = MGR_DONE;
        net_close(mc->c);
    }
    mgr_unref(mc);
}

/* mgr_verify - the penalty wait is over: crypt(3) on the pool. */
static void
mgr_verify(struct mgr_conn *mc)
{
    mc->w.data = mc;
    mc->hash = xstrdup(mc->m->srv->cf->manager_password);
    if (uv_queue_work(mc->m->srv->loop, &mc->w, mgr_work, mgr_work_done) < 0) {
        mgr_send(mc, "ERR cannot check the password now");
        mc->state = MGR_DONE;
        net_close(mc->c);
        return;
    }
    mc->refs++;
    mc->m->srv->jobs++;
}

/* mgr_timer_closed - the penalty timer is gone. */
static void
mgr_timer_closed(uv_handle_t *h)
{
    struct mgr_conn *mc = h->data;

    free(h);
    mgr_unref(mc);
}

/* mgr_timer_cb - the penalty wait is over. */
static void
mgr_timer_cb(uv_timer_t *t)
{
    struct mgr_conn *mc = t->data;

    uv_close((uv_handle_t *)t, mgr_timer_closed);
    mc->timer = NULL;
    if (mc->c != NULL && mc->state == MGR_VERIFY)
        mgr_verify(mc);
}

/* mgr_auth - the first line: "AUTH password". */
static void
mgr_auth(struct mgr_conn *mc, char *line, size_t len)
{
    const struct conf *cf = mc->m->srv->cf;
    uint64_t now = uv_now(mc->m->srv->loop), wait;

    if (len < 6 || strncasecmp(line, "AUTH ", 5) != 0 || line[5] == '\0') {
        mgr_send(mc, "ERR authenticate first: AUTH PASSWORD");
        mc->state = MGR_DONE;
        net_close(mc->c);
        return;
    }
    if (penalty_login_blocked(mc->m->pen, mc->ip, now, (unsigned)cf->login_fail_max)) {
        log_warn("manager: login refused ip=%s reason=too-many-failures", mc->ip);
        mgr_send(mc, "ERR too many failed logins from your address, try later");
        mc->state = MGR_DONE;
        net_close(mc->c);
        return;
    }
    mc->state = MGR_VERIFY;
    mc->password = xstrdup(line + 5);
    OPENSSL_cleanse(line, len);
    wait = penalty_login_wait(mc->m->pen, mc->ip, NULL, now, (uint64_t)cf->auth_fail_delay * 1000,
                              (uint64_t)cf->login_penalty_max * 1000);
    if (wait == 0) {
        mgr_verify(mc);
        return;
    }
    log_debug("manager: login penalty ip=%s ms=%llu", mc->ip, (unsigned long long)wait);
    mc->timer = xcalloc(1, sizeof(*mc->timer));
    uv_timer_init(mc->m->srv->loop, mc->timer);
    mc->timer->data = mc;
    mc->refs++;
    uv_timer_start(mc->timer, mgr_timer_cb, wait, 0);
}

/* mgr_pass - move what one side sent to the other; pause it while the other is full. */
static void
mgr_pass(struct net_conn *from, struct net_conn *to)
{
    struct buf *b = net_inbuf(from);

    if (b->len > 0) {
        net_write(to, buf_peek(b), b->len);
        buf_consume(b, b->len);
    }
    if (net_pending(to) > MGR_HIGH)
        net_pause_read(from);
}

/* mgr_input - the client's input in the current state. */
static void
mgr_input(struct mgr_conn *mc)
{
    char *line;
    size_t len;

    if (mc->c == NULL)
        return;
    if (mc->state == MGR_RELAY && mc->u != NULL) {
        mgr_pass(mc->c, mc->u);
        return;
    }
    if (mc->state != MGR_AUTH)
        return;
    switch (buf_getline(net_inbuf(mc->c), &mc->lr, &line, &len, NULL)) {
    case BUF_LINE:
        mgr_auth(mc, line, len);
        break;
    case BUF_TOOLONG:
        mgr_send(mc, "ERR request line too long");
        mc->state = MGR_DONE;
        net_close(mc->c);
        break;
    case BUF_NONE:
        break;
    }
}

/* mgr_conn_event - events of both connections of a manager client. */
static void
mgr_conn_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct mgr_conn *mc = arg;
    bool client = c == mc->c;

    switch (ev) {
    case NET_EV_DATA:
        if (client)
            mgr_input(mc);
        else if (mc->c != NULL)
            mgr_pass(c, mc->c);
        break;
    case NET_EV_DRAIN:
        if (client && mc->u != NULL)
            net_resume_read(mc->u);
        else if (!client && mc->c != NULL)
            net_resume_read(mc->c);
        break;
    case NET_EV_TIMEOUT:
        if (client) {
            mgr_send(mc, "ERR idle timeout");
            mc->state = MGR_DONE;
            net_close(c);
        }
        break;
    case NET_EV_ERROR:
        if (client)
            log_debug("manager: ip=%s: %s", mc->ip, net_error(c));
        else
            log_warn("manager: control socket: %s", net_error(c));
        break;
    case NET_EV_CLOSED:
        if (client) {
            mc->c = NULL;
            if (mc->q != NULL)
                dns_cancel(mc->q);
            mc->q = NULL;
            if (mc->timer != NULL) {
                uv_timer_stop(mc->timer);
                uv_close((uv_handle_t *)mc->timer, mgr_timer_closed);
                mc->timer = NULL;
            }
            if (mc->u != NULL)
                net_close(mc->u);
        } else {
            mc->u = NULL;
            if (mc->c != NULL)
                net_close(mc->c); /* the control socket ended the exchange */
        }
        mgr_unref(mc);
        break;
    default:
        break;
    }
}

/* mgr_dns_open - the resolver for manager_ip_name's reverse lookups (dns_host). */
static int
mgr_dns_open(struct server_mgr *m, char *err, size_t errlen)
{
    const struct conf *cf = m->srv->cf;
    char *servers = xstrdup("");

    for (size_t i = 0; i < cf->dns_host.n; i++) {
        char *s = xasprintf("%s%s%s", servers, i ? "," : "", cf->dns_host.v[i]);
        free(servers);
        servers = s;
    }
    m->dns = dns_new(m->srv->loop, servers, cf->dns_timeout * 1000L, MGR_DNS_TRIES, err, errlen);
    free(servers);
    return m->dns != NULL ? 0 : -1;
}

struct server_mgr *
server_mgr_open(struct server *srv)
{
    const struct conf *cf = srv->cf;
    const struct server_proto *p = srv->proto;
    struct net_limits lim = {SERVER_MGR_CONNS_MAX, SERVER_MGR_PER_IP, 0};
    static const char *const loop_addrs[] = {"127.0.0.1", "::1"};
    struct server_mgr *m;
    char err[300];
    long port;
    int ok = 0;

    if (p->conf_mgr_port == 0)
        return NULL;
    port = *(const long *)((const char *)cf + p->conf_mgr_port);
    if (port == 0)
        return NULL;
    if (srv->tls == NULL && !cf->manager_plaintext_loopback)
        log_fatal("manager port %ld: no tls_cert/tls_key, and the manager password must not "
                  "travel in plaintext (manager_plaintext_loopback = true allows it on "
                  "127.0.0.1 and ::1 only)",
                  port);
    /* a manager_password that is not a crypt(3) hash is a config error (conf.c) */
    m = xcalloc(1, sizeof(*m));
    m->srv = srv;
    m->plaintext = srv->tls == NULL;
    m->pen = penalty_new();
    m->net = net_server_new(srv->loop, &lim);
    if (cf->manager_ip_name.n > 0 && mgr_dns_open(m, err, sizeof(err)) < 0)
        log_fatal("manager_ip_name: DNS: %s", err);
    size_t naddr = m->plaintext ? 2 : cf->listen.n;
    for (size_t a = 0; a < naddr; a++) {
        const char *addr = m->plaintext ? loop_addrs[a] : cf->listen.v[a];
        if (net_listen(m->net, addr, (int)port, srv->tls, "", mgr_accept, m, err, sizeof(err)) <
            0) {
            log_warn("manager listener %s port %ld: %s", addr, port, err);
            continue;
        }
        log_info("manager port listening on %s port %ld (%s)", addr, port,
                 m->plaintext ? "plaintext, loopback only" : "TLS");
        ok++;
    }
    if (ok == 0)
        log_fatal("manager port %ld: no listener could be opened", port);
    return m;
}

void
server_mgr_reload(struct server_mgr *m)
{
    char err[300];

    if (m == NULL)
        return;
    if (!m->plaintext && m->srv->tls != NULL)
        net_server_set_tls(m->net, m->srv->tls);
    /* manager_ip_name is read per connection; a reload that sets it first needs the
     * resolver (each connection's reverse lookup is a fresh query: nothing is cached) */
    if (m->srv->cf->manager_ip_name.n > 0 && m->dns == NULL &&
        mgr_dns_open(m, err, sizeof(err)) < 0)
        log_warn("manager_ip_name: DNS: %s; names are not checked until it works", err);
}

void
server_mgr_close(struct server_mgr **mp)
{
    struct server_mgr *m = *mp;

    if (m == NULL)
        return;
    *mp = NULL;
    m->closed = true;
    for (struct mgr_conn *mc = m->conns; mc != NULL; mc = mc->next)
        if (mc->q != NULL) {
            dns_cancel(mc->q);
            mc->q = NULL;
        }
    dns_free(&m->dns);
    net_server_free(&m->net);
    penalty_free(&m->pen);
    if (m->conns == NULL)
        free(m); /* else the last connection's end frees it (mgr_unref) */
}
