/*
 * ctl - the control socket's server side on libuv (the clients are in ctl_client.c).
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "xmem.h"

#define CTL_FLUSH_AT 16384      /* queued output bytes that trigger a write */
#define CTL_CLOSE_GRACE_MS 5000 /* ctl_server_close waits this long for answers */
#define CTL_DISCARD_MS 500      /* a refused client gets this long to go away */

struct ctl_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    struct ctl_server *srv;
    struct ctl_conn *prev, *next;
    uid_t uid;
    int handles;     /* open uv handles (pipe, timer) */
    int writes;      /* uv_write requests in flight */
    bool closing;    /* uv_close called */
    bool eof;        /* the client shut its side */
    bool last;       /* close once the output is written */
    bool processing; /* inside ctl_conn_process */
    bool reading;
    bool discard;        /* refused: read and drop input until EOF, so the close is clean */
    struct ctl_req *req; /* the request being answered, or NULL */
    char in[CTL_LINE_MAX + 1];
    size_t inlen;
    char *out;
    size_t outlen, outsize;
};

struct ctl_req {
    struct ctl_conn *c; /* NULL once the client or the server went away */
    uid_t uid;
};

struct ctl_server {
    uv_loop_t *loop;
    uv_pipe_t pipe;
    bool listening; /* the listening handle is open */
    bool closing;
    char *path;
    dev_t dev;
    ino_t ino;
    const struct ctl_cmd *cmds;
    size_t ncmds;
    void *arg;
    struct ctl_conn *conns;
    int nconns;
    int per_uid;
    uint64_t idle_ms;
};

struct ctl_write {
    uv_write_t w;
    struct ctl_conn *c;
    char data[];
};

static void ctl_conn_process(struct ctl_conn *c);
static void ctl_conn_close(struct ctl_conn *c);
static void ctl_conn_read(struct ctl_conn *c);
static void ctl_timer_cb(uv_timer_t *t);

/* ctl_split - split line in place into words. */
int
ctl_split(char *line, char **argv, int max)
{
    int n = 0;
    char *p = line;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return n;
        if (n == max)
            return -1;
        argv[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '\0')
            *p++ = '\0';
    }
}

/* ctl_server_maybe_free - free the server once it is closing and every handle is gone. */
static void
ctl_server_maybe_free(struct ctl_server *s)
{
    if (!s->closing || s->listening || s->nconns > 0)
        return;
    free(s->path);
    free(s);
}

/* ctl_conn_handle_closed - one of a connection's handles closed; free it after the last. */
static void
ctl_conn_handle_closed(uv_handle_t *h)
{
    struct ctl_conn *c = h->data;
    struct ctl_server *s = c->srv;

    if (--c->handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->out);
    free(c);
    ctl_server_maybe_free(s);
}

/* ctl_conn_close - close at once; a request in progress is detached (its answer is dropped). */
static void
ctl_conn_close(struct ctl_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->req != NULL) {
        c->req->c = NULL;
        c->req = NULL;
    }
    uv_close((uv_handle_t *)&c->pipe, ctl_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, ctl_conn_handle_closed);
}

/* ctl_write_cb - a write finished; close when that was the last output of a closing conn. */
static void
ctl_write_cb(uv_write_t *w, int status)
{
    struct ctl_write *cw = (struct ctl_write *)w;
    struct ctl_conn *c = cw->c;

    free(cw);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        ctl_conn_close(c);
        return;
    }
    if (c->last && !c->discard && c->writes == 0 && c->outlen == 0 && c->req == NULL)
        ctl_conn_close(c);
}

/* ctl_flush - hand the queued output to libuv. */
static void
ctl_flush(struct ctl_conn *c)
{
    struct ctl_write *cw;
    uv_buf_t b;

    if (c->closing || c->outlen == 0)
        return;
    cw = xmalloc(sizeof(*cw) + c->outlen);
    cw->c = c;
    memcpy(cw->data, c->out, c->outlen);
    b = uv_buf_init(cw->data, (unsigned)c->outlen);
    c->outlen = 0;
    if (uv_write(&cw->w, (uv_stream_t *)&c->pipe, &b, 1, ctl_write_cb) < 0) {
        free(cw);
        ctl_conn_close(c);
        return;
    }
    c->writes++;
}

/* ctl_put - queue bytes of output. */
static void
ctl_put(struct ctl_conn *c, const char *p, size_t n)
{
    if (c->closing || n == 0)
        return;
    if (c->outlen + n > c->outsize) {
        size_t sz = c->outsize ? c->outsize : 1024;
        while (sz < c->outlen + n)
            sz *= 2;
        c->out = xrealloc(c->out, sz);
        c->outsize = sz;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

/* ctl_put_line - one line: control characters become '?', then a newline. */
static void
ctl_put_line(struct ctl_conn *c, const char *prefix, char *text)
{
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    ctl_put(c, prefix, strlen(prefix));
    ctl_put(c, text, strlen(text));
    ctl_put(c, "\n", 1);
}

/* ctl_vformat - format into a malloc'd string. */
__attribute__((format(printf, 1, 0))) static char *
ctl_vformat(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0)
        log_fatal("out of memory");
    return s;
}

/* ctl_line - one data line, escaped so it cannot look like a status line. */
void
ctl_line(struct ctl_req *r, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (r->c == NULL)
        return;
    va_start(ap, fmt);
    s = ctl_vformat(fmt, ap);
    va_end(ap);
    bool esc = strncmp(s, "OK", 2) == 0 || strncmp(s, "ERR", 3) == 0 || s[0] == '\\';
    ctl_put_line(r->c, esc ? "\\" : "", s);
    free(s);
    if (r->c->outlen >= CTL_FLUSH_AT)
        ctl_flush(r->c);
}

/* ctl_finish - the status line, then the next request (or the close). */
__attribute__((format(printf, 3, 0))) static void
ctl_finish(struct ctl_req *r, const char *status, const char *fmt, va_list ap)
{
    struct ctl_conn *c = r->c;
    char t[8], *s;

    free(r);
    if (c == NULL)
        return;
    c->req = NULL;
    snprintf(t, sizeof(t), "%.*s", (int)strcspn(status, " "), status);
    s = ctl_vformat(fmt, ap);
    ctl_put_line(c, s[0] != '\0' ? status : "", s[0] != '\0' ? s : t);
    free(s);
    ctl_flush(c);
    if (!c->processing)
        ctl_conn_process(c);
}

/* ctl_ok - OK status line; frees r. */
void
ctl_ok(struct ctl_req *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ctl_finish(r, "OK ", fmt, ap);
    va_end(ap);
}

/* ctl_err - ERR status line; frees r. */
void
ctl_err(struct ctl_req *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ctl_finish(r, "ERR ", fmt, ap);
    va_end(ap);
}

/* ctl_gone - whether the answer still has nowhere to go: the connection is closed, or
 * the client closed both directions (POLLHUP; a half-close still waits for the answer). */
bool
ctl_gone(const struct ctl_req *r)
{
    uv_os_fd_t fd;
    struct pollfd pfd;

    if (r->c == NULL || r->c->closing)
        return true;
    if (uv_fileno((const uv_handle_t *)&r->c->pipe, &fd) < 0)
        return true;
    pfd.fd = fd;
    pfd.events = 0;
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

/* ctl_uid - the client's uid. */
uid_t
ctl_uid(const struct ctl_req *r)
{
    return r->uid;
}

/* ctl_refuse - a status line, then close once the client has gone (or after a moment):
 * closing while its input is unread would reset the connection and lose the line. */
static void
ctl_refuse(struct ctl_conn *c, const char *text)
{
    char *t = xstrdup(text);

    ctl_put_line(c, "ERR ", t);
    free(t);
    c->last = true;
    c->discard = true;
    c->inlen = 0;
    ctl_flush(c);
    if (c->closing)
        return;
    if (c->eof) {
        if (c->writes == 0)
            ctl_conn_close(c);
        else
            c->discard = false; /* the write callback closes */
        return;
    }
    if (!c->reading)
        ctl_conn_read(c);
    uv_timer_start(&c->timer, ctl_timer_cb, CTL_DISCARD_MS, 0);
}

/* ctl_builtin_help - list the table (and the built-ins). */
static void
ctl_builtin_help(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct ctl_server *s = arg;

    for (size_t i = 0; i < s->ncmds; i++) {
        const struct ctl_cmd *cmd = &s->cmds[i];
        ctl_line(r, "%s%s%s - %s", cmd->name, cmd->usage[0] ? " " : "", cmd->usage, cmd->help);
    }
    ctl_line(r, "help - this list");
    ctl_line(r, "ping - check that the server answers");
    ctl_ok(r, "%zu commands", s->ncmds + 2);
}

/* ctl_builtin_ping - the liveness check dwatch uses. */
static void
ctl_builtin_ping(struct ctl_req *r, int argc, char **argv, void *arg)
{
    ctl_ok(r, "pong");
}

static const struct ctl_cmd ctl_builtins[] = {
    {"help", "", 0, 0, ctl_builtin_help, "this list"},
    {"ping", "", 0, 0, ctl_builtin_ping, "check that the server answers"},
};

/* ctl_find - the table row for name (case-insensitive, whole word); builtin says whose. */
static const struct ctl_cmd *
ctl_find(const struct ctl_server *s, const char *name, bool *builtin)
{
    *builtin = false;
    for (size_t i = 0; i < s->ncmds; i++)
        if (strcasecmp(s->cmds[i].name, name) == 0)
            return &s->cmds[i];
    *builtin = true;
    for (size_t i = 0; i < sizeof(ctl_builtins) / sizeof(ctl_builtins[0]); i++)
        if (strcasecmp(ctl_builtins[i].name, name) == 0)
            return &ctl_builtins[i];
    return NULL;
}

/* ctl_dispatch - one request line. */
static void
ctl_dispatch(struct ctl_conn *c, char *line)
{
    struct ctl_server *s = c->srv;
    char *argv[CTL_ARGS_MAX + 1];
    const struct ctl_cmd *cmd;
    struct ctl_req *r;
    bool builtin;
    int argc = ctl_split(line, argv, CTL_ARGS_MAX);

    r = xcalloc(1, sizeof(*r));
    r->c = c;
    r->uid = c->uid;
    c->req = r;
    if (argc < 0) {
        ctl_err(r, "too many words (at most %d)", CTL_ARGS_MAX);
        return;
    }
    if (argc == 0) {
        ctl_err(r, "empty request; try help");
        return;
    }
    argv[argc] = NULL;
    cmd = ctl_find(s, argv[0], &builtin);
    if (cmd == NULL) {
        char name[64];
        ctl_err(r, "unknown command %s; try help",
                log_escape(name, sizeof(name), argv[0], strlen(argv[0]), 32));
        return;
    }
    if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
        ctl_err(r, "usage: %s%s%s", cmd->name, cmd->usage[0] ? " " : "", cmd->usage);
        return;
    }
    log_debug("ctl: uid %ld: %s", (long)c->uid, cmd->name);
    cmd->fn(r, argc, argv, builtin ? (void *)s : s->arg);
}

/* ctl_conn_process - answer the buffered requests one at a time, then read again. */
static void
ctl_conn_process(struct ctl_conn *c)
{
    c->processing = true;
    while (!c->closing && c->req == NULL) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - c->in);
        char line[CTL_LINE_MAX + 1];
        memcpy(line, c->in, n);
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        c->inlen -= n + 1;
        memmove(c->in, nl + 1, c->inlen);
        if (c->srv->closing) {
            ctl_refuse(c, "shutting down");
            break;
        }
        ctl_dispatch(c, line);
    }
    c->processing = false;
    if (c->closing || c->req != NULL)
        return;
    if (c->srv->closing || c->last) {
        c->last = true;
        if (c->writes == 0)
            ctl_conn_close(c);
        return;
    }
    if (c->inlen >= CTL_LINE_MAX) {
        ctl_refuse(c, "request line too long");
        return;
    }
    if (c->eof) {
        c->last = true;
        if (c->writes == 0)
            ctl_conn_close(c);
        return;
    }
    if (!c->reading)
        ctl_conn_read(c);
}

/* ctl_alloc_cb - read into the free part of the request buffer. */
static void
ctl_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct ctl_conn *c = h->data;

    (void)suggested;
    *b = uv_buf_init(c->in + c->inlen, (unsigned)(CTL_LINE_MAX - c->inlen));
}

/* ctl_stop_reading - a request is being answered (or the input ended). */
static void
ctl_stop_reading(struct ctl_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
    if (!c->srv->closing)
        uv_timer_stop(&c->timer);
}

/* ctl_read_cb - request bytes, EOF or an error. */
static void
ctl_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct ctl_conn *c = st->data;

    (void)b;
    if (nread == 0 || c->closing)
        return;
    if (c->discard) {
        if (nread > 0)
            return; /* dropped: it is read into the buffer and never counted */
        if (c->writes == 0)
            ctl_conn_close(c);
        else
            c->discard = false; /* the write callback closes */
        return;
    }
    if (nread == UV_EOF) {
        c->eof = true;
        if (c->inlen > 0 && memchr(c->in, '\n', c->inlen) == NULL && c->inlen < CTL_LINE_MAX)
            c->in[c->inlen++] = '\n'; /* a last request without its newline */
    } else if (nread < 0) {
        ctl_conn_close(c);
        return;
    } else {
        c->inlen += (size_t)nread;
    }
    ctl_stop_reading(c);
    ctl_conn_process(c);
}

/* ctl_timer_cb - idle too long, or the grace period of ctl_server_close is over. */
static void
ctl_timer_cb(uv_timer_t *t)
{
    struct ctl_conn *c = t->data;

    if (c->srv->closing || c->req != NULL || c->discard) {
        ctl_conn_close(c);
        return;
    }
    ctl_stop_reading(c);
    ctl_refuse(c, "idle timeout");
}

/* ctl_conn_read - wait for the next request. */
static void
ctl_conn_read(struct ctl_conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc_cb, ctl_read_cb) < 0) {
        ctl_conn_close(c);
        return;
    }
    c->reading = true;
    if (!c->discard)
        uv_timer_start(&c->timer, ctl_timer_cb, c->srv->idle_ms, 0);
}

/* ctl_count_uid - open connections of uid (not counting c). */
static int
ctl_count_uid(const struct ctl_server *s, uid_t uid, const struct ctl_conn *c)
{
    int n = 0;

    for (const struct ctl_conn *o = s->conns; o != NULL; o = o->next)
        if (o != c && !o->closing && !o->last && o->uid == uid)
            n++;
    return n;
}

/* ctl_accept_cb - a new client: check who it is and how many it has open. */
static void
ctl_accept_cb(uv_stream_t *ls, int status)
{
    struct ctl_server *s = ls->data;
    struct ctl_conn *c;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    uv_os_fd_t fd;

    if (status < 0 || s->closing)
        return;
    c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->pipe.data = c;
    c->timer.data = c;
    uv_pipe_init(s->loop, &c->pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->handles = 2;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->pipe) < 0) {
        ctl_conn_close(c);
        return;
    }
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        log_warne("ctl %s: cannot read the peer's credentials", s->path);
        ctl_refuse(c, "permission denied: unknown peer");
        return;
    }
    c->uid = cred.uid;
    if (cred.uid != 0 && cred.uid != geteuid()) {
        log_warn("ctl %s: refused uid %ld (pid %ld): only root and uid %ld may use it", s->path,
                 (long)cred.uid, (long)cred.pid, (long)geteuid());
        ctl_refuse(c, "permission denied: only root and the server's own user may use this socket");
        return;
    }
    if (s->nconns > CTL_CONNS_MAX || ctl_count_uid(s, cred.uid, c) >= s->per_uid) {
        log_warn("ctl %s: too many control connections of uid %ld", s->path, (long)cred.uid);
        ctl_refuse(c, "too many control connections");
        return;
    }
    ctl_conn_read(c);
}

/* ctl_probe - whether a server answers on path (a live socket). */
static bool
ctl_probe(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool live;

    if (fd < 0)
        return false;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN;
    close(fd);
    return live;
}

/* ctl_listen_closed - the listening handle is gone. */
static void
ctl_listen_closed(uv_handle_t *h)
{
    struct ctl_server *s = h->data;

    s->listening = false;
    ctl_server_maybe_free(s);
}

/* ctl_server_new - create the socket (see ctl.h) and listen. */
struct ctl_server *
ctl_server_new(uv_loop_t *loop, const char *path, const struct ctl_cmd *cmds, size_t ncmds,
               void *arg, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct ctl_server *s;
    struct stat st;
    mode_t old;
    int rc;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket %s: path too long (at most %zu bytes)", path,
                 sizeof(sun.sun_path) - 1);
        return NULL;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
            return NULL;
        }
        if (ctl_probe(path)) {
            snprintf(err, errlen, "control socket %s: another process is listening there", path);
            return NULL;
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                     strerror(errno));
            return NULL;
        }
    }
    signal(SIGPIPE, SIG_IGN); /* a client that went away must not kill the server */
    s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->path = xstrdup(path);
    s->cmds = cmds;
    s->ncmds = ncmds;
    s->arg = arg;
    s->per_uid = CTL_PER_UID_DEFAULT;
    s->idle_ms = CTL_IDLE_MS;
    s->pipe.data = s;
    uv_pipe_init(loop, &s->pipe, 0);
    s->listening = true;
    old = umask(077);
    rc = uv_pipe_bind(&s->pipe, path);
    umask(old);
    if (rc == 0 && chmod(path, 0600) < 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0 && lstat(path, &st) < 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->pipe, 16, ctl_accept_cb);
    if (rc < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->pipe, ctl_listen_closed);
        return NULL;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    return s;
}

/* ctl_server_set_limits - per-uid cap and idle time. */
void
ctl_server_set_limits(struct ctl_server *s, int per_uid, uint64_t idle_ms)
{
    s->per_uid = per_uid < 1 ? 1 : per_uid;
    s->idle_ms = idle_ms;
}

/* ctl_server_path - the socket's path. */
const char *
ctl_server_path(const struct ctl_server *s)
{
    return s->path;
}

/* ctl_server_close - stop listening; let answers in progress finish for a while. */
void
ctl_server_close(struct ctl_server **sp)
{
    struct ctl_server *s = *sp;
    struct ctl_conn *c, *next;
    struct stat st;

    if (s == NULL)
        return;
    *sp = NULL;
    s->closing = true;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(s->path);
    uv_close((uv_handle_t *)&s->pipe, ctl_listen_closed);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        ctl_stop_reading(c);
        c->last = true;
        if (c->req == NULL && c->writes == 0)
            ctl_conn_close(c);
        else
            uv_timer_start(&c->timer, ctl_timer_cb, CTL_CLOSE_GRACE_MS, 0);
    }
}
