/*
 * net_server - the server half of net (contract in net.h): listeners, accepting, the
 * connection caps and the per-IP table.
 *
 * Listening sockets are made here (socket, bind, listen) and watched by a uv_poll_t, so
 * that accepting can stop at EMFILE without dropping the kernel's backlog: the poll is
 * stopped and a one-second timer starts it again. Each accepted socket is admitted or
 * refused here and then handed to net.c (net_conn_accept).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "net.h"
#include "net_int.h"
#include "xmem.h"

#define NET_BACKLOG 511
#define NET_ACCEPT_BATCH 64 /* accepts per wake-up, for fairness */
#define NET_RETRY_MS 1000   /* accept pause after EMFILE */
#define NET_IPT_MIN 256     /* buckets of the per-IP table */

struct net_listener {
    struct net_server *srv;
    struct net_listener *next;
    uv_poll_t poll;
    uv_timer_t retry;
    int fd;
    int handles;
    int port;
    bool closing;
    bool reserved;      /* may take the reserved slots */
    int paused;         /* the errno accepting paused on (logged once), 0: accepting */
    uint64_t paused_ms; /* loop time of the first pause */
    SSL_CTX *tls;
    char *refuse;
    net_accept_cb cb;
    void *arg;
    char name[INET6_ADDRSTRLEN + 16];
};

/* ---- per-IP connection counts ---- */

/* net_ip_hash - the hash of an address string. */
static size_t
net_ip_hash(const char *ip)
{
    return (size_t)hash_str(ip);
}

/* net_ip_find - the bucket slot holding ip, or the empty slot at the end of its chain. */
static struct net_ipent **
net_ip_find(struct net_server *s, const char *ip)
{
    struct net_ipent **pp = &s->ipt[net_ip_hash(ip) & (s->ipt_size - 1)];

    while (*pp != NULL && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* net_ip_grow - double the table when chains get long. */
static void
net_ip_grow(struct net_server *s)
{
    size_t nsize = s->ipt_size * 2;
    struct net_ipent **nt = xcalloc(nsize, sizeof(*nt));

    for (size_t i = 0; i < s->ipt_size; i++) {
        struct net_ipent *e = s->ipt[i], *next;
        for (; e != NULL; e = next) {
            size_t b = net_ip_hash(e->ip) & (nsize - 1);
            next = e->next;
            e->next = nt[b];
            nt[b] = e;
        }
    }
    free(s->ipt);
    s->ipt = nt;
    s->ipt_size = nsize;
}

/* net_ip_lookup - the entry of ip, NULL when no connection from it counts. */
struct net_ipent *
net_ip_lookup(struct net_server *s, const char *ip)
{
    return *net_ip_find(s, ip);
}

/* net_ip_hold - count one connection more for ip; its entry. */
struct net_ipent *
net_ip_hold(struct net_server *s, const char *ip)
{
    struct net_ipent **pp = net_ip_find(s, ip);
    struct net_ipent *e = *pp;

    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        snprintf(e->ip, sizeof(e->ip), "%s", ip);
        *pp = e;
        if (++s->ipt_count > s->ipt_size * 2)
            net_ip_grow(s);
    }
    e->n++;
    return e;
}

/* net_ip_release - count one connection less; the entry goes with the last. */
void
net_ip_release(struct net_server *s, struct net_ipent *e)
{
    if (--e->n > 0)
        return;
    struct net_ipent **pp = net_ip_find(s, e->ip);
    *pp = e->next;
    free(e);
    s->ipt_count--;
}

/* ---- addresses ---- */

/* net_addr_parse - ss and its length for a numeric IPv4 or IPv6 address and a port; 0,
 * or -1 when addr is neither. */
int
net_addr_parse(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)ss) == 0) {
        *sl = sizeof(struct sockaddr_in);
        return 0;
    }
    if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)ss) == 0) {
        *sl = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

/* net_addr_format - numeric address and port of ss; IPv4-mapped IPv6 shown as IPv4. */
void
net_addr_format(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->sin6_port);
    } else {
        snprintf(ip, iplen, "unknown");
        *port = 0;
    }
}

/* ---- server and listeners ---- */

/* net_server_new - a server with no listeners yet. Process-wide: ignores SIGPIPE (a write
 * to a reset socket must come back as an error, not kill the process) and puts
 * /dev/null on any of descriptors 0-2 that is closed. */
struct net_server *
net_server_new(uv_loop_t *loop, const struct net_limits *lim)
{
    struct net_server *s = xcalloc(1, sizeof(*s));

    signal(SIGPIPE, SIG_IGN);
    /* a socket must never land on 0-2: stray stdio would reach a client, and libuv
     * refuses to close such a descriptor */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (n > 2)
                close(n);
        }
    }
    s->loop = loop;
    if (lim != NULL)
        s->lim = *lim;
    s->ipt_size = NET_IPT_MIN;
    s->ipt = xcalloc(s->ipt_size, sizeof(*s->ipt));
    return s;
}

/* net_server_set_limits - new caps; they apply to the next accepts. */
void
net_server_set_limits(struct net_server *s, const struct net_limits *lim)
{
    s->lim = *lim;
}

/* net_server_set_trusted - who is exempt from max_per_ip. */
void
net_server_set_trusted(struct net_server *s, bool (*trusted)(void *arg, const char *ip), void *arg)
{
    s->trusted = trusted;
    s->trusted_arg = arg;
}

/* net_server_set_tls - a new context for the implicit-TLS listeners, see net.h. */
void
net_server_set_tls(struct net_server *s, SSL_CTX *tls)
{
    if (tls == NULL)
        return;
    for (struct net_listener *l = s->listeners; l != NULL; l = l->next) {
        if (l->tls == NULL || l->tls == tls)
            continue;
        SSL_CTX_up_ref(tls);
        SSL_CTX_free(l->tls);
        l->tls = tls;
    }
}

/* net_server_counts - connections open now, the peak, and the total accepted. */
void
net_server_counts(const struct net_server *s, long *now, long *peak, long *total)
{
    if (now != NULL)
        *now = s->now;
    if (peak != NULL)
        *peak = s->peak;
    if (total != NULL)
        *total = s->total;
}

/* net_server_maybe_free - free a server being freed once nothing of it is open. */
void
net_server_maybe_free(struct net_server *s)
{
    if (!s->freeing || s->conns != NULL || s->listeners != NULL)
        return;
    for (size_t i = 0; i < s->ipt_size; i++) {
        struct net_ipent *e = s->ipt[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(s->ipt);
    free(s);
}

/* net_listener_close_cb - one handle of a listener closed; free it after both. */
static void
net_listener_close_cb(uv_handle_t *h)
{
    struct net_listener *l = h->data;
    struct net_server *s = l->srv;

    if (--l->handles > 0)
        return;
    close(l->fd);
    for (struct net_listener **pp = &s->listeners; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    SSL_CTX_free(l->tls);
    free(l->refuse);
    free(l);
    net_server_maybe_free(s);
}

/* net_server_stop_listening - close every listener; open connections go on. */
void
net_server_stop_listening(struct net_server *s)
{
    for (struct net_listener *l = s->listeners; l != NULL; l = l->next) {
        if (l->closing)
            continue;
        l->closing = true;
        uv_poll_stop(&l->poll);
        uv_timer_stop(&l->retry);
        uv_close((uv_handle_t *)&l->poll, net_listener_close_cb);
        uv_close((uv_handle_t *)&l->retry, net_listener_close_cb);
    }
}

static void net_listener_io(uv_poll_t *p, int status, int events);

/* net_server_suspend - stop or restart watching the listeners (see net.h). */
void
net_server_suspend(struct net_server *s, bool on)
{
    if (s->suspended == on)
        return;
    s->suspended = on;
    for (struct net_listener *l = s->listeners; l != NULL; l = l->next) {
        if (l->closing)
            continue;
        if (on) {
            uv_poll_stop(&l->poll);
            uv_timer_stop(&l->retry);
        } else {
            uv_poll_start(&l->poll, UV_READABLE, net_listener_io);
        }
    }
}

/* net_server_free - stop listening, abort every connection, free when all are closed. */
void
net_server_free(struct net_server **sp)
{
    struct net_server *s = *sp;

    if (s == NULL)
        return;
    *sp = NULL;
    s->freeing = true;
    net_server_stop_listening(s);
    net_conn_abort_all(s);
    net_server_maybe_free(s);
}

/* net_listener_port - the port listener number idx (in net_listen order) is bound to. */
int
net_listener_port(const struct net_server *s, int idx)
{
    const struct net_listener *l = s->listeners;

    for (; l != NULL && idx > 0; idx--)
        l = l->next;
    return l != NULL && idx == 0 ? l->port : -1;
}

/* net_listener_set_reserved - see net.h. */
void
net_listener_set_reserved(struct net_server *s, int idx, bool on)
{
    struct net_listener *l = s->listeners;

    for (; l != NULL && idx > 0; idx--)
        l = l->next;
    if (l != NULL)
        l->reserved = on;
}

/* net_listener_retry - the accept pause is over: watch the socket again. */
static void
net_listener_retry(uv_timer_t *t)
{
    struct net_listener *l = t->data;

    if (!l->closing && !l->srv->suspended)
        uv_poll_start(&l->poll, UV_READABLE, net_listener_io);
}

/* net_listener_pause - stop accepting for NET_RETRY_MS after err (EMFILE...); logged
 * once, not at every retry that meets it again. */
static void
net_listener_pause(struct net_listener *l, int err)
{
    if (l->paused != err) {
        log_warn("accept on %s: %s; new connections wait in the backlog (retried every %d ms; "
                 "the sessions open are served)",
                 l->name, strerror(err), NET_RETRY_MS);
        if (l->paused == 0)
            l->paused_ms = uv_now(l->srv->loop);
        l->paused = err;
    }
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->retry, net_listener_retry, NET_RETRY_MS, 0);
}

/* net_refuse - the caps are reached: send the refusal line (plaintext listeners only)
 * and close. The socket is fresh, so the short line fits its send buffer. */
static void
net_refuse(struct net_listener *l, int fd, const char *ip, const char *why)
{
    char junk[512];

    log_info("refused connection from %s on %s: %s", ip, l->name, why);
    if (l->refuse != NULL && l->tls == NULL) {
        if (send(fd, l->refuse, strlen(l->refuse), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            log_debug("refusal to %s: %s", ip, strerror(errno));
    }
    shutdown(fd, SHUT_WR);
    /* what the client already sent would make close() send a reset */
    for (int i = 0; i < 8 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

/* net_accept_fd - admit or refuse one accepted socket. */
static void
net_accept_fd(struct net_listener *l, int fd, const struct sockaddr_storage *ss)
{
    struct net_server *s = l->srv;
    struct net_ipent *e;
    char ip[INET6_ADDRSTRLEN];
    int port;

    net_addr_format(ss, ip, sizeof(ip), &port);
    if (s->lim.max_connections > 0 && s->now >= s->lim.max_connections) {
        net_refuse(l, fd, ip, "max_connections reached");
        return;
    }
    /* the last reserved slots (at most a fifth): trusted networks and reserved listeners */
    long reserved =
        s->lim.reserved < s->lim.max_connections / 5 ? s->lim.reserved : s->lim.max_connections / 5;
    if (s->lim.max_connections > 0 && reserved > 0 && s->now >= s->lim.max_connections - reserved &&
        !l->reserved && (s->trusted == NULL || !s->trusted(s->trusted_arg, ip))) {
        net_refuse(l, fd, ip, "max_connections reached (the rest is reserved)");
        return;
    }
    if (s->lim.max_per_ip > 0 && (e = net_ip_lookup(s, ip)) != NULL && e->n >= s->lim.max_per_ip &&
        net_conn_recount_ip(e) >= s->lim.max_per_ip &&
        (s->trusted == NULL || !s->trusted(s->trusted_arg, ip))) {
        net_refuse(l, fd, ip, "max_per_ip reached");
        return;
    }
    net_conn_accept(s, fd, ip, port, l->tls, l->cb, l->arg);
}

/* net_listener_io - the listening socket is readable: accept a batch. */
static void
net_listener_io(uv_poll_t *p, int status, int events)
{
    struct net_listener *l = p->data;

    if (status < 0) {
        log_warn("listener %s: %s", l->name, uv_strerror(status));
        net_listener_pause(l, -status);
        return;
    }
    for (int i = 0; i < NET_ACCEPT_BATCH && !l->closing; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            if (l->paused != 0) {
                log_info("accept on %s: accepting again after %.1f s", l->name,
                         (double)(uv_now(l->srv->loop) - l->paused_ms) / 1000);
                l->paused = 0;
            }
            net_accept_fd(l, fd, &ss);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            continue; /* that client's problem, not ours */
        default:
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: never spin on it */
            net_listener_pause(l, errno);
            return;
        }
    }
}

/* net_listen - open a listener on addr:port (see net.h). */
int
net_listen(struct net_server *s, const char *addr, int port, SSL_CTX *tls, const char *refuse,
           net_accept_cb cb, void *arg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct net_listener *l, **pp;
    int fd, one = 1, rc;
    const char *step;
    char bound[INET6_ADDRSTRLEN];

    if (s->freeing || cb == NULL || port < 0 || port > 65535) {
        snprintf(err, errlen, "invalid listener");
        return UV_EINVAL;
    }
    if (net_addr_parse(addr, port, &ss, &sl) < 0) {
        snprintf(err, errlen, "%s: not an IPv4 or IPv6 address", addr);
        return UV_EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        step = "socket";
        goto fail;
    }
    step = "setsockopt";
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    /* "::" must not take the IPv4 port too, so that "0.0.0.0" can bind it */
    if (ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    step = "bind";
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        goto fail;
    step = "listen";
    if (listen(fd, NET_BACKLOG) < 0)
        goto fail;
    step = "getsockname";
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        goto fail;

    l = xcalloc(1, sizeof(*l));
    l->srv = s;
    l->fd = fd;
    net_addr_format(&ss, bound, sizeof(bound), &l->port);
    snprintf(l->name, sizeof(l->name), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", addr,
             l->port);
    rc = uv_poll_init(s->loop, &l->poll, fd);
    if (rc < 0) {
        snprintf(err, errlen, "uv_poll_init: %s", uv_strerror(rc));
        close(fd);
        free(l);
        return rc;
    }
    uv_timer_init(s->loop, &l->retry);
    l->poll.data = l->retry.data = l;
    l->handles = 2;
    if (tls != NULL) {
        SSL_CTX_up_ref(tls);
        l->tls = tls;
    }
    l->refuse = refuse != NULL ? xstrdup(refuse) : NULL;
    l->cb = cb;
    l->arg = arg;
    for (pp = &s->listeners; *pp != NULL; pp = &(*pp)->next)
        ;
    *pp = l;
    uv_poll_start(&l->poll, UV_READABLE, net_listener_io);
    return 0;

fail:
    rc = uv_translate_sys_error(errno);
    snprintf(err, errlen, "%s: %s", step, uv_strerror(rc));
    if (fd >= 0)
        close(fd);
    return rc;
}
