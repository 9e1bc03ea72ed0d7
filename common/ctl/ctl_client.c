/*
 * ctl_client - the client side of the control protocol: blocking (tell tools) and on a
 * libuv loop (dwatch). See ctl.h.
 */
#include "ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "xmem.h"

/* The answer parser both clients share. */
struct ctl_parse {
    char *buf;
    size_t len, size;
    ctl_line_cb line_cb;
    void *arg;
    int result; /* CTL_R_OK/CTL_R_ERR once the status line came, else 2 */
    char *text; /* the status text */
};

enum { CTL_PARSE_MORE = 2 };

/* ctl_parse_init - an empty parser. */
static void
ctl_parse_init(struct ctl_parse *p, ctl_line_cb line_cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->line_cb = line_cb;
    p->arg = arg;
    p->result = CTL_PARSE_MORE;
}

/* ctl_parse_free - release the parser's memory. */
static void
ctl_parse_free(struct ctl_parse *p)
{
    free(p->buf);
    free(p->text);
    p->buf = p->text = NULL;
}

/* ctl_status_word - the text after "OK"/"ERR" if line is that status line, else NULL. */
static const char *
ctl_status_word(const char *line, const char *word)
{
    size_t n = strlen(word);

    if (strncmp(line, word, n) != 0)
        return NULL;
    if (line[n] == '\0')
        return line + n;
    if (line[n] == ' ')
        return line + n + 1;
    return NULL;
}

/* ctl_parse_lines - take the complete lines out of the buffer; stops at the status line.
 * Returns -1 when a line is longer than CTL_ANSWER_LINE_MAX. */
static int
ctl_parse_lines(struct ctl_parse *p)
{
    size_t off = 0;
    int rc = 0;

    while (p->result == CTL_PARSE_MORE) {
        char *nl = memchr(p->buf + off, '\n', p->len - off);
        if (nl == NULL) {
            if (p->len - off > CTL_ANSWER_LINE_MAX)
                rc = -1;
            break;
        }
        *nl = '\0';
        char *line = p->buf + off;
        size_t n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        off += n + 1;
        const char *t;
        if ((t = ctl_status_word(line, "OK")) != NULL) {
            p->result = CTL_R_OK;
            p->text = xstrdup(t);
        } else if ((t = ctl_status_word(line, "ERR")) != NULL) {
            p->result = CTL_R_ERR;
            p->text = xstrdup(t);
        } else if (p->line_cb != NULL) {
            p->line_cb(p->arg, line[0] == '\\' ? line + 1 : line);
        }
    }
    memmove(p->buf, p->buf + off, p->len - off);
    p->len -= off;
    return rc;
}

/* ctl_parse_room - make room for at least 4 KiB more input; the buffer pointer. */
static char *
ctl_parse_room(struct ctl_parse *p, size_t *room)
{
    if (p->size - p->len < 4096) {
        p->size = p->size ? p->size * 2 : 8192;
        p->buf = xrealloc(p->buf, p->size);
    }
    *room = p->size - p->len - 1;
    return p->buf + p->len;
}

/* ctl_now_ms - monotonic milliseconds. */
static long long
ctl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ctl_wait - poll fd for events until the deadline; 1 ready, 0 timeout, -1 error. */
static int
ctl_wait(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - ctl_now_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        if (left <= 0)
            return 0;
        int n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            continue;
        if (errno != EINTR)
            return -1;
    }
}

/* ctl_connect_reason - a friendly reason for a failed connect. */
static void
ctl_connect_reason(const char *path, int err, char *text, size_t textlen)
{
    switch (err) {
    case ENOENT:
        snprintf(text, textlen, "no control socket %s (is the server running?)", path);
        break;
    case ECONNREFUSED:
        snprintf(text, textlen, "nobody listens on %s (the server is not running)", path);
        break;
    case EACCES:
    case EPERM:
        snprintf(text, textlen, "%s: permission denied (run as root or as the server's user)",
                 path);
        break;
    default:
        snprintf(text, textlen, "%s: %s", path, strerror(err));
    }
}

/* ctl_call - the blocking client. */
int
ctl_call(const char *path, const char *request, int timeout_ms, ctl_line_cb line_cb, void *arg,
         char *text, size_t textlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    long long deadline = ctl_now_ms() + timeout_ms;
    struct ctl_parse p;
    char *req;
    size_t reqlen, sent = 0;
    int fd, rc, soerr;
    socklen_t sl = sizeof(soerr);

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(text, textlen, "%s: path too long for a Unix socket", path);
        return CTL_R_UNREACHABLE;
    }
    if (strlen(request) + 1 > CTL_LINE_MAX || strchr(request, '\n') != NULL) {
        snprintf(text, textlen, "request too long or not one line");
        return CTL_R_BROKEN;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(text, textlen, "socket: %s", strerror(errno));
        return CTL_R_UNREACHABLE;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        if (errno != EAGAIN && errno != EINPROGRESS) {
            ctl_connect_reason(path, errno, text, textlen);
            close(fd);
            return CTL_R_UNREACHABLE;
        }
        /* the reason: a timeout, getsockopt's own failure or the connect's error */
        soerr = ETIMEDOUT;
        if (ctl_wait(fd, POLLOUT, deadline) > 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr != 0) {
            ctl_connect_reason(path, soerr, text, textlen);
            close(fd);
            return CTL_R_UNREACHABLE;
        }
    }
    req = xasprintf("%s\n", request);
    reqlen = strlen(req);
    while (sent < reqlen) {
        ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR) && ctl_wait(fd, POLLOUT, deadline) > 0)
            continue;
        snprintf(text, textlen, "%s: cannot send the request: %s", path,
                 n < 0 ? strerror(errno) : "closed");
        free(req);
        close(fd);
        return CTL_R_BROKEN;
    }
    free(req);
    ctl_parse_init(&p, line_cb, arg);
    rc = CTL_R_BROKEN;
    for (;;) {
        size_t room;
        char *at = ctl_parse_room(&p, &room);
        ssize_t n = recv(fd, at, room, 0);
        if (n > 0) {
            p.len += (size_t)n;
            if (ctl_parse_lines(&p) < 0) {
                snprintf(text, textlen, "%s: answer line too long", path);
                break;
            }
            if (p.result != CTL_PARSE_MORE) {
                rc = p.result;
                snprintf(text, textlen, "%s", p.text);
                break;
            }
            continue;
        }
        if (n == 0) {
            snprintf(text, textlen, "%s: the server closed the connection before answering", path);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            int w = ctl_wait(fd, POLLIN, deadline);
            if (w > 0)
                continue;
            snprintf(text, textlen, "%s: no answer within %d.%03d s", path, timeout_ms / 1000,
                     timeout_ms % 1000);
            break;
        }
        snprintf(text, textlen, "%s: %s", path, strerror(errno));
        break;
    }
    ctl_parse_free(&p);
    close(fd);
    return rc;
}

/* The asynchronous client. */
struct ctl_async {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_connect_t conn;
    uv_write_t wr;
    int handles;
    bool done;
    bool badpath; /* too long for sun_path: reported by the timer */
    ctl_async_cb cb;
    void *arg;
    char *req;
    char *path;
    struct ctl_parse p;
};

/* ctl_async_closed - free after both handles have closed. */
static void
ctl_async_closed(uv_handle_t *h)
{
    struct ctl_async *a = h->data;

    if (--a->handles > 0)
        return;
    ctl_parse_free(&a->p);
    free(a->req);
    free(a->path);
    free(a);
}

/* ctl_async_end - report once (unless cancelled) and close. */
static void
ctl_async_end(struct ctl_async *a, int result, const char *text)
{
    if (a->done)
        return;
    a->done = true;
    if (a->cb != NULL)
        a->cb(a->arg, result, text);
    uv_close((uv_handle_t *)&a->pipe, ctl_async_closed);
    uv_close((uv_handle_t *)&a->timer, ctl_async_closed);
}

/* ctl_async_alloc - read into the parser's buffer. */
static void
ctl_async_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct ctl_async *a = h->data;
    size_t room;
    char *at = ctl_parse_room(&a->p, &room);

    (void)suggested;
    *b = uv_buf_init(at, (unsigned)room);
}

/* ctl_async_read - answer bytes. */
static void
ctl_async_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct ctl_async *a = st->data;
    char text[512];

    (void)b;
    if (a->done || nread == 0)
        return;
    if (nread < 0) {
        snprintf(text, sizeof(text), "%s: %s", a->path,
                 nread == UV_EOF ? "closed before answering" : uv_strerror((int)nread));
        ctl_async_end(a, CTL_R_BROKEN, text);
        return;
    }
    a->p.len += (size_t)nread;
    if (ctl_parse_lines(&a->p) < 0) {
        snprintf(text, sizeof(text), "%s: answer line too long", a->path);
        ctl_async_end(a, CTL_R_BROKEN, text);
    } else if (a->p.result != CTL_PARSE_MORE) {
        ctl_async_end(a, a->p.result, a->p.text);
    }
}

/* ctl_async_written - the request is out. */
static void
ctl_async_written(uv_write_t *w, int status)
{
    struct ctl_async *a = w->data;
    char text[512];

    if (status < 0 && !a->done) {
        snprintf(text, sizeof(text), "%s: %s", a->path, uv_strerror(status));
        ctl_async_end(a, CTL_R_BROKEN, text);
    }
}

/* ctl_async_connected - send the request and read the answer. */
static void
ctl_async_connected(uv_connect_t *cr, int status)
{
    struct ctl_async *a = cr->data;
    char text[512];
    uv_buf_t b;

    if (a->done)
        return;
    if (status < 0) {
        ctl_connect_reason(a->path, -status, text, sizeof(text));
        ctl_async_end(a, CTL_R_UNREACHABLE, text);
        return;
    }
    b = uv_buf_init(a->req, (unsigned)strlen(a->req));
    a->wr.data = a;
    if (uv_write(&a->wr, (uv_stream_t *)&a->pipe, &b, 1, ctl_async_written) < 0 ||
        uv_read_start((uv_stream_t *)&a->pipe, ctl_async_alloc, ctl_async_read) < 0) {
        snprintf(text, sizeof(text), "%s: cannot send the request", a->path);
        ctl_async_end(a, CTL_R_BROKEN, text);
    }
}

/* ctl_async_timeout - no (complete) answer in time. */
static void
ctl_async_timeout(uv_timer_t *t)
{
    struct ctl_async *a = t->data;
    char text[512];

    if (a->badpath) {
        snprintf(text, sizeof(text), "%s: path too long for a Unix socket", a->path);
        ctl_async_end(a, CTL_R_UNREACHABLE, text);
        return;
    }
    snprintf(text, sizeof(text), "%s: no answer in time", a->path);
    ctl_async_end(a, CTL_R_BROKEN, text);
}

/* ctl_call_async - connect, send, parse, all on the loop. */
struct ctl_async *
ctl_call_async(uv_loop_t *loop, const char *path, const char *request, uint64_t timeout_ms,
               ctl_line_cb line_cb, ctl_async_cb cb, void *arg)
{
    struct ctl_async *a = xcalloc(1, sizeof(*a));

    a->cb = cb;
    a->arg = arg;
    a->req = xasprintf("%s\n", request);
    a->path = xstrdup(path);
    ctl_parse_init(&a->p, line_cb, arg);
    a->pipe.data = a;
    a->timer.data = a;
    a->conn.data = a;
    uv_pipe_init(loop, &a->pipe, 0);
    uv_timer_init(loop, &a->timer);
    a->handles = 2;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        a->badpath = true;
        uv_timer_start(&a->timer, ctl_async_timeout, 0, 0);
        return a;
    }
    uv_timer_start(&a->timer, ctl_async_timeout, timeout_ms, 0);
    uv_pipe_connect(&a->conn, &a->pipe, path, ctl_async_connected);
    return a;
}

/* ctl_async_cancel - abandon the call without a callback. */
void
ctl_async_cancel(struct ctl_async *a)
{
    if (a == NULL || a->done)
        return;
    a->cb = NULL;
    ctl_async_end(a, CTL_R_BROKEN, "cancelled");
}

/* The remote client (manager port): a blocking TCP connection, TLS unless plaintext. */
struct ctl_rconn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

/* ctl_rconn_send - all of p; 0 or -1. */
static int
ctl_rconn_send(struct ctl_rconn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = c->ssl != NULL ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (c->ssl == NULL && w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ctl_rconn_answer - read one answer (data lines, then the status line) into p. */
static int
ctl_rconn_answer(struct ctl_rconn *c, struct ctl_parse *p, const char *who, char *text,
                 size_t textlen)
{
    while (p->result == CTL_PARSE_MORE) {
        size_t room;
        char *at = ctl_parse_room(p, &room);
        ssize_t n = c->ssl != NULL ? SSL_read(c->ssl, at, (int)room) : recv(c->fd, at, room, 0);
        if (n > 0) {
            p->len += (size_t)n;
            if (ctl_parse_lines(p) < 0) {
                snprintf(text, textlen, "%s: answer line too long", who);
                return CTL_R_BROKEN;
            }
            continue;
        }
        if (c->ssl == NULL && n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (c->ssl != NULL && SSL_get_error(c->ssl, (int)n) == SSL_ERROR_ZERO_RETURN))
            snprintf(text, textlen, "%s: the server closed the connection before answering", who);
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            snprintf(text, textlen, "%s: no answer in time", who);
        else
            snprintf(text, textlen, "%s: connection lost", who);
        return CTL_R_BROKEN;
    }
    snprintf(text, textlen, "%s", p->text);
    return p->result;
}

/* ctl_rconn_open - connect (and handshake); CTL_R_OK or CTL_R_UNREACHABLE with text. */
static int
ctl_rconn_open(struct ctl_rconn *c, const struct ctl_remote *rm, int timeout_ms, const char *who,
               char *text, size_t textlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL, *a;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int gai, err = 0;

    c->fd = -1;
    gai = getaddrinfo(rm->host, rm->port, &hints, &ai);
    if (gai != 0) {
        snprintf(text, textlen, "%s: %s", who, gai_strerror(gai));
        return CTL_R_UNREACHABLE;
    }
    for (a = ai; a != NULL && c->fd < 0; a = a->ai_next) {
        long long deadline = ctl_now_ms() + timeout_ms;
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int soerr = ETIMEDOUT;
        socklen_t sl = sizeof(soerr);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                err = errno;
                close(fd);
                continue;
            }
            if (ctl_wait(fd, POLLOUT, deadline) > 0 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            if (soerr != 0) {
                err = soerr;
                close(fd);
                continue;
            }
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        c->fd = fd;
    }
    freeaddrinfo(ai);
    if (c->fd < 0) {
        snprintf(text, textlen, "%s: %s", who, strerror(err ? err : ECONNREFUSED));
        return CTL_R_UNREACHABLE;
    }
    if (!rm->tls)
        return CTL_R_OK;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL)
        goto tls_fail;
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    if (rm->verify) {
        if ((rm->cafile != NULL ? SSL_CTX_load_verify_locations(c->ctx, rm->cafile, NULL)
                                : SSL_CTX_set_default_verify_paths(c->ctx)) != 1) {
            snprintf(text, textlen, "%s: cannot load the CA file %s", who,
                     rm->cafile ? rm->cafile : "(system store)");
            return CTL_R_UNREACHABLE;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        goto tls_fail;
    if (rm->verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        struct in6_addr ip;
        bool literal =
            inet_pton(AF_INET, rm->host, &ip) == 1 || inet_pton(AF_INET6, rm->host, &ip) == 1;
        if (literal)
            X509_VERIFY_PARAM_set1_ip_asc(vp, rm->host);
        else {
            SSL_set_tlsext_host_name(c->ssl, rm->host);
            X509_VERIFY_PARAM_set1_host(vp, rm->host, 0);
        }
    }
    if (SSL_connect(c->ssl) != 1) {
        long v = SSL_get_verify_result(c->ssl);
        if (rm->verify && v != X509_V_OK)
            snprintf(text, textlen,
                     "%s: the server's certificate does not verify: %s (-k skips "
                     "the check, -C FILE names the CA)",
                     who, X509_verify_cert_error_string(v));
        else
            snprintf(text, textlen, "%s: TLS handshake failed (is it the manager port?)", who);
        return CTL_R_UNREACHABLE;
    }
    return CTL_R_OK;
tls_fail:
    snprintf(text, textlen, "%s: cannot set up TLS", who);
    return CTL_R_UNREACHABLE;
}

/* ctl_rconn_close - shut TLS down and close. */
static void
ctl_rconn_close(struct ctl_rconn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
}

/* ctl_call_remote - see ctl.h. */
int
ctl_call_remote(const struct ctl_remote *rm, const char *request, int timeout_ms,
                ctl_line_cb line_cb, void *arg, char *text, size_t textlen)
{
    struct ctl_rconn c = {.fd = -1};
    struct ctl_parse p;
    char who[300];
    char *line;
    int rc;

    snprintf(who, sizeof(who), "%s port %s", rm->host, rm->port);
    if (strlen(request) + 1 > CTL_LINE_MAX || strchr(request, '\n') != NULL ||
        strlen(rm->password) + 6 > CTL_LINE_MAX || strpbrk(rm->password, "\r\n") != NULL) {
        snprintf(text, textlen, "request or password too long or not one line");
        return CTL_R_BROKEN;
    }
    rc = ctl_rconn_open(&c, rm, timeout_ms, who, text, textlen);
    if (rc != CTL_R_OK) {
        ctl_rconn_close(&c);
        return rc;
    }
    line = xasprintf("AUTH %s\n", rm->password);
    rc = ctl_rconn_send(&c, line, strlen(line));
    OPENSSL_cleanse(line, strlen(line));
    free(line);
    ctl_parse_init(&p, NULL, NULL);
    if (rc == 0)
        rc = ctl_rconn_answer(&c, &p, who, text, textlen);
    else
        rc = CTL_R_BROKEN, snprintf(text, textlen, "%s: cannot send", who);
    ctl_parse_free(&p);
    if (rc == CTL_R_ERR)
        rc = CTL_R_UNREACHABLE; /* "authentication failed", "too many failed logins" */
    if (rc == CTL_R_OK) {
        line = xasprintf("%s\n", request);
        ctl_parse_init(&p, line_cb, arg);
        if (ctl_rconn_send(&c, line, strlen(line)) == 0)
            rc = ctl_rconn_answer(&c, &p, who, text, textlen);
        else
            rc = CTL_R_BROKEN, snprintf(text, textlen, "%s: cannot send the request", who);
        ctl_parse_free(&p);
        free(line);
    }
    ctl_rconn_close(&c);
    return rc;
}
