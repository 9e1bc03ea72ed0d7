/*
 * net_client - outbound connections (the contract is in net.h; net.c holds the
 * connections themselves).
 *
 * net_connect makes the socket (bound to bind_ip when asked), net.c wraps it like an
 * accepted one (net_conn_new, but no slot in the caps is taken) and libuv connects it
 * (uv_tcp_connect on the opened socket). Until the connect completes the connection is
 * OPEN with c->connecting set: net.c holds its output and reads nothing, and the
 * connection's timer is the connect timeout's. An abort meanwhile (net_abort,
 * net_server_free) closes the handle, which cancels the connect request.
 */
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_int.h"
#include "xmem.h"

/* net_client_connect_cb - the connect completed, failed, or was cancelled by an abort. */
static void
net_client_connect_cb(uv_connect_t *req, int status)
{
    struct net_conn *c = req->data;

    free(req);
    if (c->state == NET_CS_DEAD) /* aborted: UV_ECANCELED, the handles are closing */
        return;
    c->refs++;
    c->connecting = false;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        net_set_error(c, "connect: %s", uv_strerror(status));
        net_emit(c, NET_EV_ERROR);
        net_abort(c);
    } else {
        net_local_update(c);
        net_set_timeout(c, c->timeout_ms); /* the idle timeout asked for meanwhile */
        if (c->cork == 0)
            net_stage_flush(c); /* written before the connect: goes out first */
        net_emit(c, NET_EV_CONNECTED);
        net_update_read(c);
    }
    net_unref(c);
}

/* net_client_timeout - the connect took too long. */
static void
net_client_timeout(uv_timer_t *t)
{
    struct net_conn *c = t->data;

    if (c->state != NET_CS_OPEN || !c->connecting)
        return;
    c->refs++;
    net_set_error(c, "connect: timed out");
    net_emit(c, NET_EV_ERROR);
    net_abort(c);
    net_unref(c);
}

/* net_client_socket - a non-blocking socket for to's family, bound to bind_ip when not
 * NULL; the descriptor, or -1 with err filled. */
static int
net_client_socket(const struct sockaddr_storage *to, const char *bind_ip, char *err, size_t errlen)
{
    struct sockaddr_storage from;
    socklen_t fromlen;
    int fd;

    if (bind_ip != NULL && net_addr_parse(bind_ip, 0, &from, &fromlen) < 0) {
        snprintf(err, errlen, "bind %s: not an IPv4 or IPv6 address", bind_ip);
        return -1;
    }
    if (bind_ip != NULL && from.ss_family != to->ss_family) {
        snprintf(err, errlen, "bind %s: not the address family of the peer", bind_ip);
        return -1;
    }
    fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", uv_strerror(uv_translate_sys_error(errno)));
        return -1;
    }
    if (bind_ip != NULL && bind(fd, (struct sockaddr *)&from, fromlen) < 0) {
        snprintf(err, errlen, "bind %s: %s", bind_ip, uv_strerror(uv_translate_sys_error(errno)));
        close(fd);
        return -1;
    }
    return fd;
}

/* net_connect - start connecting to ip:port (see net.h). */
struct net_conn *
net_connect(struct net_server *s, const char *ip, int port, const char *bind_ip,
            uint64_t timeout_ms, net_event_cb cb, void *arg, char *err, size_t errlen)
{
    struct sockaddr_storage to;
    socklen_t tolen;
    char peer[INET6_ADDRSTRLEN];
    struct net_conn *c;
    uv_connect_t *req;
    int fd, rc, peer_port;

    if (s->freeing || cb == NULL || port <= 0 || port > 65535) {
        snprintf(err, errlen, "connect %s port %d: invalid request", ip, port);
        return NULL;
    }
    if (net_addr_parse(ip, port, &to, &tolen) < 0) {
        snprintf(err, errlen, "connect %s: not an IPv4 or IPv6 address", ip);
        return NULL;
    }
    fd = net_client_socket(&to, bind_ip, err, errlen);
    if (fd < 0)
        return NULL;
    net_addr_format(&to, peer, sizeof(peer), &peer_port);
    c = net_conn_new(s, fd, peer, peer_port, err, errlen);
    if (c == NULL)
        return NULL;
    c->connecting = true;
    req = xmalloc(sizeof(*req));
    req->data = c;
    rc = uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&to, net_client_connect_cb);
    if (rc < 0) {
        free(req);
        snprintf(err, errlen, "connect: %s", uv_strerror(rc));
        net_abort(c); /* no callback set: no event */
        return NULL;
    }
    net_set_cb(c, cb, arg);
    if (timeout_ms > 0) {
        uv_update_time(s->loop); /* from now, not from the start of this loop turn */
        uv_timer_start(&c->timer, net_client_timeout, timeout_ms, 0);
    }
    return c;
}

/* net_client_unix_ready - a Unix socket connected at once: NET_EV_CONNECTED from the
 * loop, never from inside net_connect_unix. */
static void
net_client_unix_ready(uv_timer_t *t)
{
    struct net_conn *c = t->data;

    if (c->state != NET_CS_OPEN || !c->connecting)
        return;
    c->refs++;
    c->connecting = false;
    net_set_timeout(c, c->timeout_ms);
    if (c->cork == 0)
        net_stage_flush(c);
    net_emit(c, NET_EV_CONNECTED);
    net_update_read(c);
    net_unref(c);
}

/* net_connect_unix - connect to a Unix stream socket (see net.h). */
struct net_conn *
net_connect_unix(struct net_server *s, const char *path, net_event_cb cb, void *arg, char *err,
                 size_t errlen)
{
    struct sockaddr_un sun;
    struct net_conn *c;
    int fd;

    memset(&sun, 0, sizeof(sun));
    if (s->freeing || cb == NULL || path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "connect %s: invalid request", path);
        return NULL;
    }
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", uv_strerror(uv_translate_sys_error(errno)));
        return NULL;
    }
    /* a local connect completes or fails at once; EAGAIN is a full backlog */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        snprintf(err, errlen, "connect %s: %s", path, uv_strerror(uv_translate_sys_error(errno)));
        close(fd);
        return NULL;
    }
    c = net_conn_new(s, fd, "unix", 0, err, errlen);
    if (c == NULL)
        return NULL;
    snprintf(c->local_ip, sizeof(c->local_ip), "unix");
    c->connecting = true;
    net_set_cb(c, cb, arg);
    uv_timer_start(&c->timer, net_client_unix_ready, 0, 0);
    return c;
}
