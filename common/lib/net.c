/*
 * net - connections (the contract is in net.h; listeners are in net_server.c, outbound
 * connects in net_client.c, the TLS layer in net_tls.c).
 *
 * A connection owns three handles (tcp, idle timer, deferred-work idle); it is freed
 * after the last close callback has run and NET_EV_CLOSED has been delivered.
 *
 * Connection states: OPEN (normal I/O), CLOSING (net_close: output flushed, uv_shutdown
 * pending), LINGER (our FIN is out; input is read and discarded until the peer's FIN or
 * a short timer, so an unread byte does not turn the close into a reset that could
 * destroy our last reply), DEAD (uv_close issued). Only OPEN connections get events,
 * except NET_EV_CLOSED.
 *
 * Under TLS, socket input goes to net_tls_input and output to net_tls_write; what the
 * TLS layer produces comes back here as plaintext input (buffer, NET_EV_DATA) and as
 * write requests (net_wreq_new, net_wreq_send).
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net_int.h"
#include "xmem.h"

#define NET_INBUF_DEFAULT (64 * 1024) /* input buffer cap */
#define NET_STAGE_KEEP (64 * 1024)    /* a bigger staging area is freed after use */
#define NET_CLOSE_MS 30000            /* longest wait for net_close to flush */
#define NET_LINGER_MS 2000            /* longest wait for the peer's FIN after ours */
#define NET_CONN_HANDLES 3            /* tcp, timer, defer */

#define NET_CONTAINER(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static void net_conn_close_cb(uv_handle_t *h);
static void net_defer_cb(uv_idle_t *h);
static void net_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void net_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b);

/* ---- connection life cycle ---- */

/* net_set_error - remember why the connection failed (net_error). */
void
net_set_error(struct net_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* net_defer - run net_defer_cb on the next loop iteration. */
void
net_defer(struct net_conn *c)
{
    if (c->state != NET_CS_DEAD)
        uv_idle_start(&c->defer, net_defer_cb);
}

/* net_local_update - our address on the connection, as the socket has it now. */
void
net_local_update(struct net_conn *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        net_addr_format(&ss, c->local_ip, sizeof(c->local_ip), &c->local_port);
}

/* net_conn_new - wrap a socket in a connection that counts toward no cap; NULL (socket
 * closed, err filled) on failure. */
struct net_conn *
net_conn_new(struct net_server *s, int fd, const char *ip, int port, char *err, size_t errlen)
{
    struct net_conn *c = xcalloc(1, sizeof(*c));
    int rc;

    c->srv = s;
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", ip);
    c->peer_port = port;
    buf_init(&c->in, NET_INBUF_DEFAULT);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    uv_idle_init(s->loop, &c->defer);
    c->tcp.data = c->timer.data = c->defer.data = c->shut.data = c;
    c->handles = NET_CONN_HANDLES;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;

    rc = uv_tcp_open(&c->tcp, fd);
    if (rc < 0) {
        snprintf(err, errlen, "uv_tcp_open: %s", uv_strerror(rc));
        close(fd);
        net_abort(c);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    net_local_update(c);
    return c;
}

/* net_conn_count - an accepted connection counts: now, peak, total, max_per_ip. */
static void
net_conn_count(struct net_conn *c)
{
    struct net_server *s = c->srv;

    s->total++;
    if (++s->now > s->peak)
        s->peak = s->now;
    c->ipe = net_ip_hold(s, c->peer_ip);
    c->ip_next = c->ipe->conns;
    if (c->ip_next != NULL)
        c->ip_next->ip_prev = c;
    c->ipe->conns = c;
}

/* net_conn_uncount - the connection is over (peer gone or closed by us): give its slot
 * back at once, so a client that reconnects right away is not refused because the old
 * socket's close has not finished yet. */
static void
net_conn_uncount(struct net_conn *c)
{
    struct net_ipent *e = c->ipe;

    if (e == NULL)
        return;
    if (c->ip_prev != NULL)
        c->ip_prev->ip_next = c->ip_next;
    else
        e->conns = c->ip_next;
    if (c->ip_next != NULL)
        c->ip_next->ip_prev = c->ip_prev;
    c->ipe = NULL;
    c->ip_prev = c->ip_next = NULL;
    c->srv->now--;
    net_ip_release(c->srv, e);
}

/* net_conn_free - the last step: unlink, uncount, release. */
static void
net_conn_free(struct net_conn *c)
{
    struct net_server *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    net_conn_uncount(c);
    buf_free(&c->in);
    free(c->stage);
    SSL_free(c->ssl);
    free(c);
    net_server_maybe_free(s);
}

/* net_conn_accept - a new connection: implicit TLS if asked, then the accept callback. */
void
net_conn_accept(struct net_server *s, int fd, const char *ip, int port, SSL_CTX *tls,
                net_accept_cb cb, void *arg)
{
    char err[128];
    struct net_conn *c = net_conn_new(s, fd, ip, port, err, sizeof(err));

    if (c == NULL) {
        log_warn("connection from %s: %s", ip, err);
        return;
    }
    net_conn_count(c);
    if (tls != NULL && net_tls_begin(c, tls) < 0) {
        log_warn("TLS set-up for %s failed: %s", ip, c->error);
        net_abort(c);
        return;
    }
    c->refs++;
    cb(c, arg);
    if (c->cb == NULL && c->state == NET_CS_OPEN) {
        log_error("net: the accept callback set no event callback");
        net_abort(c);
    }
    net_update_read(c);
    net_unref(c);
}

/* net_conn_recount_ip - before refusing ip for max_per_ip: a connection from ip whose
 * peer has already closed or reset (FIN or RST waiting unread) stops counting now, so a
 * client that closed and reconnected at once is not refused for its own old socket.
 * Returns the connections from ip that still count. */
long
net_conn_recount_ip(struct net_ipent *e)
{
    struct net_conn *c = e->conns, *next;
    long n = 0;

    /* e is freed with its last connection; then next is NULL and e is not touched */
    for (; c != NULL; c = next) {
        uv_os_fd_t fd;
        char b;

        next = c->ip_next;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                net_conn_uncount(c);
                continue;
            }
        }
        n++;
    }
    return n;
}

/* net_conn_abort_all - abort every connection of the server. */
void
net_conn_abort_all(struct net_server *s)
{
    struct net_conn *c, *next;

    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        net_abort(c);
    }
}

/* net_emit - deliver one event, if the connection still takes events. */
void
net_emit(struct net_conn *c, enum net_event ev)
{
    if (c->cb == NULL)
        return;
    if (ev == NET_EV_CLOSED) {
        if (c->closed_sent)
            return;
        c->closed_sent = true;
    } else if (c->state != NET_CS_OPEN) {
        return;
    }
    if (ev == NET_EV_DATA)
        c->announce = false;
    c->refs++;
    c->cb(c, ev, c->arg);
    c->refs--;
}

/* net_unref - drop a callback reference; free if the handles closed meanwhile. */
void
net_unref(struct net_conn *c)
{
    if (--c->refs == 0 && c->handles == 0)
        net_conn_free(c);
}

/* net_dispatch - deliver an event, then follow what the protocol did with its input. */
static void
net_dispatch(struct net_conn *c, enum net_event ev)
{
    c->refs++;
    net_emit(c, ev);
    net_update_read(c);
    net_unref(c);
}

/* net_conn_close_cb - one handle closed; after the last, NET_EV_CLOSED and free. */
static void
net_conn_close_cb(uv_handle_t *h)
{
    struct net_conn *c = h->data;

    if (--c->handles > 0)
        return;
    net_emit(c, NET_EV_CLOSED);
    if (c->refs == 0)
        net_conn_free(c);
}

/* net_abort - close at once; queued output is dropped. */
void
net_abort(struct net_conn *c)
{
    if (c->state == NET_CS_DEAD)
        return;
    c->state = NET_CS_DEAD;
    c->reading = false;
    net_conn_uncount(c);
    uv_close((uv_handle_t *)&c->tcp, net_conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, net_conn_close_cb);
    uv_close((uv_handle_t *)&c->defer, net_conn_close_cb);
}

/* net_timer_cb - idle timeout (OPEN) or the end of a close's patience. */
static void
net_timer_cb(uv_timer_t *t)
{
    struct net_conn *c = t->data;

    switch (c->state) {
    case NET_CS_OPEN:
        net_dispatch(c, NET_EV_TIMEOUT);
        break;
    case NET_CS_CLOSING:
    case NET_CS_LINGER:
        net_abort(c);
        break;
    case NET_CS_DEAD:
        break;
    }
}

/* net_get_timeout - see net.h. */
uint64_t
net_get_timeout(const struct net_conn *c)
{
    return c->timeout_ms;
}

/* net_set_timeout - idle timeout in ms, 0 for none; restarted by every input. While
 * connecting the timer is the connect timeout's: the idle one starts once connected. */
void
net_set_timeout(struct net_conn *c, uint64_t ms)
{
    if (c->state != NET_CS_OPEN)
        return;
    c->timeout_ms = ms;
    if (c->connecting)
        return;
    if (ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, net_timer_cb, ms, 0);
}

/* net_shutdown_cb - our FIN is out: linger for the peer's, unless it came already. */
static void
net_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct net_conn *c = req->data;

    if (c->state == NET_CS_DEAD)
        return;
    if (status < 0 || c->eof) {
        net_abort(c);
        return;
    }
    c->state = NET_CS_LINGER;
    uv_timer_start(&c->timer, net_timer_cb, NET_LINGER_MS, 0);
    net_update_read(c);
}

/* net_close - flush queued output (and TLS close_notify), then close; before an
 * outbound connection is up there is nothing to flush to: net_abort. */
void
net_close(struct net_conn *c)
{
    if (c->state != NET_CS_OPEN)
        return;
    if (c->connecting) {
        net_abort(c);
        return;
    }
    if (c->tls != NET_TLS_HANDSHAKE)
        net_stage_flush(c);
    if (c->tls == NET_TLS_ON)
        net_tls_shutdown(c);
    c->state = NET_CS_CLOSING;
    net_conn_uncount(c);
    net_update_read(c);
    uv_timer_start(&c->timer, net_timer_cb, NET_CLOSE_MS, 0);
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, net_shutdown_cb) < 0)
        net_abort(c);
}

/* ---- output ---- */

/* net_holding - output is held: an outbound connection is not up yet, or a handshake
 * runs. */
static bool
net_holding(const struct net_conn *c)
{
    return c->connecting || c->tls == NET_TLS_HANDSHAKE;
}

/* net_write_cb - a chunk left (or failed): count it, report drain or failure. */
static void
net_write_cb(uv_write_t *req, int status)
{
    struct net_wreq *w = NET_CONTAINER(req, struct net_wreq, req);
    struct net_conn *c = w->c;

    c->pending -= w->len;
    free(w);
    if (c->state == NET_CS_DEAD)
        return;
    c->refs++;
    if (status < 0) {
        net_set_error(c, "write: %s", uv_strerror(status));
        net_emit(c, NET_EV_ERROR);
        net_abort(c);
    } else if (c->pending == 0 && c->stage_len == 0 && c->state == NET_CS_OPEN &&
               c->tls != NET_TLS_HANDSHAKE) {
        net_dispatch(c, NET_EV_DRAIN);
    }
    net_unref(c);
}

/* net_wreq_new - a write request with room for n bytes. */
struct net_wreq *
net_wreq_new(struct net_conn *c, size_t n)
{
    struct net_wreq *w = xmalloc(sizeof(*w) + n);

    w->c = c;
    w->len = n;
    return w;
}

/* net_wreq_send - hand a filled request to libuv. */
void
net_wreq_send(struct net_conn *c, struct net_wreq *w)
{
    uv_buf_t b = uv_buf_init(w->data, (unsigned int)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, net_write_cb);

    if (rc < 0) {
        free(w);
        if (!c->err_pending)
            net_set_error(c, "write: %s", uv_strerror(rc));
        c->err_pending = true;
        net_defer(c);
        return;
    }
    c->pending += w->len;
}

/* net_send - plaintext bytes to the wire (net_tls_write encrypts them when TLS is on). */
static void
net_send(struct net_conn *c, const char *p, size_t n)
{
    struct net_wreq *w;

    if (c->tls == NET_TLS_ON) {
        net_tls_write(c, p, n);
        return;
    }
    if (c->pending == 0 && n <= NET_DIRECT_MAX) { /* no request, no POLLOUT toggling */
        uv_buf_t b = uv_buf_init((char *)p, (unsigned int)n);
        int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        }
        if (n == 0)
            return;
    }
    w = net_wreq_new(c, n);
    memcpy(w->data, p, n);
    net_wreq_send(c, w);
}

/* net_stage_add - hold output while corked or while a handshake runs. */
static void
net_stage_add(struct net_conn *c, const void *p, size_t n)
{
    if (c->stage_len + n > c->stage_size) {
        size_t nsize = c->stage_size ? c->stage_size : 1024;
        while (nsize < c->stage_len + n)
            nsize *= 2;
        c->stage = xrealloc(c->stage, nsize);
        c->stage_size = nsize;
    }
    memcpy(c->stage + c->stage_len, p, n);
    c->stage_len += n;
}

/* net_stage_flush - send the held output as one piece. */
void
net_stage_flush(struct net_conn *c)
{
    size_t n = c->stage_len;

    if (n == 0)
        return;
    c->stage_len = 0;
    net_send(c, c->stage, n);
    if (c->stage_size > NET_STAGE_KEEP) {
        free(c->stage);
        c->stage = NULL;
        c->stage_size = 0;
    }
}

/* net_write - queue n bytes; never fails for lack of space. */
void
net_write(struct net_conn *c, const void *p, size_t n)
{
    if (c->state != NET_CS_OPEN || n == 0)
        return;
    if (c->cork > 0 || net_holding(c))
        net_stage_add(c, p, n);
    else
        net_send(c, p, n);
}

/* net_printf - queue formatted text. */
void
net_printf(struct net_conn *c, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        net_write(c, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    net_write(c, big, (size_t)n);
    free(big);
}

/* net_pending - output bytes not yet handed to the kernel (held ones included). */
size_t
net_pending(const struct net_conn *c)
{
    return c->pending + c->stage_len;
}

/* net_cork - hold writes until the matching net_uncork. */
void
net_cork(struct net_conn *c)
{
    c->cork++;
}

/* net_uncork - end one cork; the last one sends what was held. */
void
net_uncork(struct net_conn *c)
{
    if (c->cork == 0 || --c->cork > 0)
        return;
    if (c->state == NET_CS_OPEN && !net_holding(c))
        net_stage_flush(c);
}

/* ---- input ---- */

/* net_update_read - read from the socket exactly when input is wanted and fits. */
void
net_update_read(struct net_conn *c)
{
    bool want = false;

    switch (c->state) {
    case NET_CS_OPEN:
        if (c->eof || c->connecting)
            want = false;
        else if (c->tls == NET_TLS_HANDSHAKE)
            want = true;
        else
            want = !c->paused && buf_room(&c->in) > 0;
        if (c->tls == NET_TLS_ON && c->tls_more && !c->paused && buf_room(&c->in) > 0)
            net_defer(c);
        break;
    case NET_CS_LINGER:
        want = !c->eof;
        break;
    case NET_CS_CLOSING:
    case NET_CS_DEAD:
        want = false;
        break;
    }
    if (want == c->reading)
        return;
    if (!want) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, net_alloc_cb, net_read_cb) == 0)
        c->reading = true;
}

/* net_alloc_cb - reads land in the server's buffer; plaintext never more than fits. */
static void
net_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct net_conn *c = h->data;
    size_t n = NET_READ_CHUNK;

    if (c->state == NET_CS_OPEN && c->ssl == NULL) {
        size_t room = buf_room(&c->in);
        if (room < n)
            n = room;
    }
    b->base = c->srv->rbuf;
    b->len = n;
}

/* net_input_end - the peer closed its side (UV_EOF) or the read failed. */
void
net_input_end(struct net_conn *c, int err)
{
    c->eof = true;
    c->reading = false;
    net_conn_uncount(c);
    if (err == UV_EOF) {
        net_emit(c, NET_EV_EOF);
        net_close(c);
    } else {
        net_set_error(c, "read: %s", uv_strerror(err));
        net_emit(c, NET_EV_ERROR);
        net_abort(c);
    }
}

/* net_read_cb - bytes from the socket: to the input buffer or the TLS layer. */
static void
net_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b)
{
    struct net_conn *c = h->data;

    if (nread == 0)
        return;
    c->refs++;
    if (c->state == NET_CS_LINGER) {
        if (nread < 0) { /* the peer's FIN (or a reset): done */
            c->eof = true;
            net_abort(c);
        }
    } else if (c->state != NET_CS_OPEN || nread == UV_ENOBUFS) {
        /* input after net_close, or no room: nothing to do */
    } else if (nread < 0) {
        net_input_end(c, (int)nread);
    } else {
        if (c->timeout_ms > 0)
            uv_timer_start(&c->timer, net_timer_cb, c->timeout_ms, 0);
        if (c->ssl != NULL) {
            net_tls_input(c, b->base, (size_t)nread);
        } else if (buf_append(&c->in, b->base, (size_t)nread) == 0) {
            net_emit(c, NET_EV_DATA);
        } else { /* cannot happen: net_alloc_cb asked for no more than the room */
            log_error("net: input from %s overflows its buffer", c->peer_ip);
            net_abort(c);
        }
    }
    net_update_read(c);
    net_unref(c);
}

/* net_defer_cb - work that must not run inside the caller's stack: a failure to
 * report, a handshake to start (client TLS sends first), plaintext the TLS layer still
 * holds, input to announce after a resume. */
static void
net_defer_cb(uv_idle_t *h)
{
    struct net_conn *c = h->data;

    uv_idle_stop(h);
    if (c->state == NET_CS_DEAD)
        return;
    c->refs++;
    if (c->err_pending) {
        c->err_pending = false;
        net_emit(c, NET_EV_ERROR);
        net_abort(c);
    } else if (c->state == NET_CS_OPEN) {
        if (c->tls == NET_TLS_HANDSHAKE || (c->tls == NET_TLS_ON && c->tls_more && !c->paused))
            net_tls_read(c);
        if (c->state == NET_CS_OPEN && c->announce && !c->paused && c->in.len > 0)
            net_emit(c, NET_EV_DATA);
    }
    net_update_read(c);
    net_unref(c);
}

/* net_pause_read - deliver no more input until net_resume_read. */
void
net_pause_read(struct net_conn *c)
{
    c->paused = true;
    net_update_read(c);
}

/* net_resume_read - read again; input left in the buffer during a pause is announced
 * once more (NET_EV_DATA from the loop, not from inside this call). */
void
net_resume_read(struct net_conn *c)
{
    if (c->state != NET_CS_OPEN)
        return;
    if (c->paused) {
        c->paused = false;
        if (c->in.len > 0) {
            c->announce = true;
            net_defer(c);
        }
    }
    net_update_read(c);
}

/* net_set_inbuf_cap - bound the input buffer (bytes already held are kept). */
void
net_set_inbuf_cap(struct net_conn *c, size_t cap)
{
    c->in.cap = cap;
    net_update_read(c);
}

/* ---- accessors ---- */

/* net_set_cb - where the connection's events go. */
void
net_set_cb(struct net_conn *c, net_event_cb cb, void *arg)
{
    c->cb = cb;
    c->arg = arg;
}

/* net_inbuf - the input buffer. */
struct buf *
net_inbuf(struct net_conn *c)
{
    return &c->in;
}

/* net_error - why the connection failed, "" if it did not. */
const char *
net_error(const struct net_conn *c)
{
    return c->error;
}

/* net_peer_ip - the client's address. */
const char *
net_peer_ip(const struct net_conn *c)
{
    return c->peer_ip;
}

/* net_peer_port - the client's port. */
int
net_peer_port(const struct net_conn *c)
{
    return c->peer_port;
}

/* net_local_ip - our address on this connection. */
const char *
net_local_ip(const struct net_conn *c)
{
    return c->local_ip;
}

/* net_local_port - our port on this connection. */
int
net_local_port(const struct net_conn *c)
{
    return c->local_port;
}

/* net_loop - the loop the connection runs on. */
uv_loop_t *
net_loop(const struct net_conn *c)
{
    return c->srv->loop;
}
