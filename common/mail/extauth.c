/*
 * extauth - the pool of authent_process helpers. See extauth.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "extauth.h"
#include "log.h"
#include "xmem.h"

#define EXTAUTH_ARGS_MAX 64
#define EXTAUTH_BACKOFF_MIN 100   /* ms */
#define EXTAUTH_BACKOFF_MAX 30000 /* ms */
#define EXTAUTH_TICK 100          /* ms between deadline checks */

struct extauth_helper;

struct extauth_req {
    struct extauth_req *next;
    struct extauth *x;
    char *line; /* the request, LF included; wiped once written */
    size_t linelen;
    uint64_t deadline;
    extauth_cb cb;
    void *arg;
    bool cancelled;
    enum extauth_kind now; /* answered at once (extauth_soon) with this kind */
};

struct extauth_helper {
    struct extauth *x;
    int idx;
    uv_process_t proc;
    uv_pipe_t in, out; /* its stdin, its stdout */
    uv_timer_t restart;
    int hopen;   /* its process and pipe handles not closed yet */
    bool up;     /* spawned; pipes usable */
    bool exited; /* the process has been reaped */
    struct extauth_req *cur;
    char buf[EXTAUTH_LINE_MAX + 2];
    size_t len;
    uint64_t backoff;
};

/* A lookup asked from another thread (extauth_lookup_off_loop), answered by the pool. */
struct extauth_wait {
    struct extauth_wait *next;
    char user[EXTAUTH_WORD_MAX + 1];
    struct extauth_answer a;
    pthread_cond_t cv;
    bool done;      /* a is the answer */
    bool abandoned; /* the asker gave up waiting: the answer frees it */
};

struct extauth {
    uv_loop_t *loop;
    char *cmd;
    char *argv[EXTAUTH_ARGS_MAX + 1];
    int n;
    uint64_t timeout_ms;
    struct extauth_helper *h;
    struct extauth_req *qhead, *qtail; /* waiting for a helper */
    struct extauth_req *soon;          /* answered on the next iteration */
    uv_timer_t tick, soon_timer;
    uv_async_t async;           /* other threads' lookups are waiting in waits */
    struct extauth_wait *waits; /* under extauth_shared_mu */
    long live;                  /* handles not closed yet */
    bool stopping;
    unsigned long answered, restarts;
};

struct extauth_write {
    uv_write_t w;
    char *line;
    size_t len;
};

static void extauth_spawn(struct extauth_helper *h);
/* the process's pool, for other threads' lookups; guards every pool's waits too */
static pthread_mutex_t extauth_shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct extauth *extauth_shared;
static pthread_t extauth_loop_thread;
static bool extauth_loop_known;
static void extauth_dispatch(struct extauth *x);

/* extauth_maybe_free - the last handle of a stopped pool has closed. */
static void
extauth_maybe_free(struct extauth *x)
{
    if (x->stopping && x->live == 0) {
        free(x->h);
        free(x->cmd);
        free(x);
    }
}

static void
extauth_closed(uv_handle_t *hd)
{
    struct extauth *x = hd->data;

    x->live--;
    extauth_maybe_free(x);
}

/* extauth_req_free - wipe the request line and free. */
static void
extauth_req_free(struct extauth_req *r)
{
    if (r->line != NULL) {
        OPENSSL_cleanse(r->line, r->linelen);
        free(r->line);
    }
    free(r);
}

/* extauth_answer - give r its answer and free it. */
static void
extauth_answer(struct extauth_req *r, const struct extauth_answer *a)
{
    r->x->answered++;
    if (!r->cancelled && r->cb != NULL)
        r->cb(r->arg, a);
    extauth_req_free(r);
}

static void
extauth_answer_kind(struct extauth_req *r, enum extauth_kind k, const char *why)
{
    struct extauth_answer a;

    memset(&a, 0, sizeof a);
    a.kind = k;
    snprintf(a.reason, sizeof a.reason, "%s", why);
    extauth_answer(r, &a);
}

static void
extauth_restart_cb(uv_timer_t *t)
{
    extauth_spawn(t->data);
}

static void
extauth_restart_closed(uv_handle_t *hd)
{
    struct extauth_helper *h = hd->data;

    h->x->live--;
    extauth_maybe_free(h->x);
}

static void
extauth_helper_closed(uv_handle_t *hd)
{
    struct extauth_helper *h = hd->data;
    struct extauth *x = h->x;

    x->live--;
    if (--h->hopen == 0 && !x->stopping) {
        log_info("authent_process helper %d restarts in %llu ms", h->idx,
                 (unsigned long long)h->backoff);
        uv_timer_start(&h->restart, extauth_restart_cb, h->backoff, 0);
        h->backoff = h->backoff * 2 > EXTAUTH_BACKOFF_MAX ? EXTAUTH_BACKOFF_MAX : h->backoff * 2;
        x->restarts++;
    }
    extauth_maybe_free(x);
}

/* extauth_down - the helper is broken or going: its request gets -DEAD, its pipes close,
 * the process is killed (sig) unless reaped; the restart follows the last close. */
static void
extauth_down(struct extauth_helper *h, int sig, const char *why)
{
    struct extauth_req *r = h->cur;

    if (!h->up)
        return;
    h->up = false;
    h->cur = NULL;
    h->len = 0;
    if (why != NULL)
        log_warn("authent_process helper %d: %s", h->idx, why);
    uv_close((uv_handle_t *)&h->in, extauth_helper_closed);
    uv_close((uv_handle_t *)&h->out, extauth_helper_closed);
    if (!h->exited)
        uv_process_kill(&h->proc, sig);
    if (r != NULL)
        extauth_answer_kind(r, EA_DEAD, "authentication helper failed");
}

static void
extauth_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct extauth_helper *h = p->data;
    char why[100];

    h->exited = true;
    if (!h->x->stopping) {
        snprintf(why, sizeof why, "exited (status %lld, signal %d)", (long long)status, sig);
        extauth_down(h, SIGKILL, h->up ? why : NULL);
    }
    uv_close((uv_handle_t *)p, extauth_helper_closed);
}

static void
extauth_alloc(uv_handle_t *hd, size_t sugg, uv_buf_t *b)
{
    struct extauth_helper *h = hd->data;

    (void)sugg;
    b->base = h->buf + h->len;
    b->len = sizeof h->buf - h->len;
}

/* extauth_line - one answer line from h. */
static void
extauth_line(struct extauth_helper *h, const char *line, size_t len)
{
    struct extauth_answer a;
    struct extauth_req *r = h->cur;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (r == NULL) {
        extauth_down(h, SIGKILL, "answered when nothing was asked: killed");
        return;
    }
    switch (extauth_parse(line, len, &a)) {
    case EA_DATA:
        return;
    case EA_BAD:
        extauth_down(h, SIGKILL, "answer is not the authentication protocol: killed");
        return;
    default:
        break;
    }
    h->cur = NULL;
    h->backoff = EXTAUTH_BACKOFF_MIN;
    extauth_answer(r, &a);
}

static void
extauth_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct extauth_helper *h = s->data;
    size_t start = 0;

    (void)b;
    if (nread < 0) {
        extauth_down(h, SIGKILL, "closed its output");
        extauth_dispatch(h->x);
        return;
    }
    h->len += (size_t)nread;
    for (size_t i = 0; i < h->len && h->up; i++) {
        if (h->buf[i] != '\n')
            continue;
        extauth_line(h, h->buf + start, i - start);
        start = i + 1;
    }
    if (!h->up) {
        extauth_dispatch(h->x);
        return;
    }
    memmove(h->buf, h->buf + start, h->len - start);
    h->len -= start;
    if (h->len > EXTAUTH_LINE_MAX)
        extauth_down(h, SIGKILL, "answer line too long: killed");
    extauth_dispatch(h->x);
}

static void
extauth_written(uv_write_t *w, int status)
{
    struct extauth_write *ew = (struct extauth_write *)w;
    struct extauth_helper *h = w->data;

    OPENSSL_cleanse(ew->line, ew->len);
    free(ew->line);
    free(ew);
    if (status < 0 && status != UV_ECANCELED && h->up) {
        extauth_down(h, SIGKILL, "cannot write to it");
        extauth_dispatch(h->x);
    }
}

/* extauth_send - give r to the idle helper h. */
static void
extauth_send(struct extauth_helper *h, struct extauth_req *r)
{
    struct extauth_write *ew = xcalloc(1, sizeof *ew);
    uv_buf_t b;

    h->cur = r;
    ew->line = r->line;
    ew->len = r->linelen;
    r->line = NULL;
    ew->w.data = h;
    b = uv_buf_init(ew->line, (unsigned)ew->len);
    if (uv_write(&ew->w, (uv_stream_t *)&h->in, &b, 1, extauth_written) < 0) {
        OPENSSL_cleanse(ew->line, ew->len);
        free(ew->line);
        free(ew);
        extauth_down(h, SIGKILL, "cannot write to it");
    }
}

/* extauth_dispatch - hand waiting requests to idle helpers. */
static void
extauth_dispatch(struct extauth *x)
{
    for (int i = 0; i < x->n && x->qhead != NULL; i++) {
        struct extauth_helper *h = &x->h[i];
        struct extauth_req *r;
        if (!h->up || h->cur != NULL)
            continue;
        r = x->qhead;
        x->qhead = r->next;
        if (x->qhead == NULL)
            x->qtail = NULL;
        r->next = NULL;
        if (r->cancelled) { /* nobody waits: no need to ask */
            extauth_req_free(r);
            i--;
            continue;
        }
        extauth_send(h, r);
    }
}

static void
extauth_spawn(struct extauth_helper *h)
{
    struct extauth *x = h->x;
    uv_process_options_t o;
    uv_stdio_container_t io[3];
    int rc;

    if (x->stopping)
        return;
    h->exited = false;
    h->len = 0;
    uv_pipe_init(x->loop, &h->in, 0);
    uv_pipe_init(x->loop, &h->out, 0);
    h->in.data = h->out.data = h->proc.data = h;
    memset(&o, 0, sizeof o);
    memset(io, 0, sizeof io);
    io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    io[0].data.stream = (uv_stream_t *)&h->in;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&h->out;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    o.file = x->argv[0];
    o.args = x->argv;
    o.exit_cb = extauth_exit_cb;
    o.stdio = io;
    o.stdio_count = 3;
    x->live += 3;
    h->hopen = 3;
    rc = uv_spawn(x->loop, &h->proc, &o);
    h->up = true;
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot start %s: %s", x->argv[0], uv_strerror(rc));
        h->exited = true; /* nothing to kill or reap */
        extauth_down(h, 0, why);
        uv_close((uv_handle_t *)&h->proc, extauth_helper_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&h->out, extauth_alloc, extauth_read);
    log_debug("authent_process helper %d started (pid %d)", h->idx, h->proc.pid);
    extauth_dispatch(x);
}

/* extauth_tick - the deadlines: a helper that has not answered in time is killed. */
static void
extauth_tick(uv_timer_t *t)
{
    struct extauth *x = t->data;
    uint64_t now = uv_now(x->loop);
    struct extauth_req **pp = &x->qhead, *late = NULL;

    for (int i = 0; i < x->n; i++) {
        struct extauth_helper *h = &x->h[i];
        if (h->up && h->cur != NULL && now >= h->cur->deadline)
            extauth_down(h, SIGKILL, "no answer within authent_timeout: killed");
    }
    x->qtail = NULL;
    while (*pp != NULL) {
        struct extauth_req *r = *pp;
        if (now >= r->deadline) {
            *pp = r->next;
            r->next = late;
            late = r;
        } else {
            x->qtail = r;
            pp = &r->next;
        }
    }
    while (late != NULL) {
        struct extauth_req *r = late;
        late = r->next;
        extauth_answer_kind(r, EA_DEAD, "no authentication helper answered in time");
    }
    extauth_dispatch(x);
}

static void
extauth_soon_cb(uv_timer_t *t)
{
    struct extauth *x = t->data;

    while (x->soon != NULL) {
        struct extauth_req *r = x->soon;
        x->soon = r->next;
        extauth_answer_kind(r, r->now, "");
    }
}

/* extauth_wait_free - a finished wait. */
static void
extauth_wait_free(struct extauth_wait *w)
{
    pthread_cond_destroy(&w->cv);
    OPENSSL_cleanse(w->user, sizeof w->user);
    free(w);
}

/* extauth_wait_answer - the loop: the pool's answer to another thread's lookup. */
static void
extauth_wait_answer(void *arg, const struct extauth_answer *a)
{
    struct extauth_wait *w = arg;

    pthread_mutex_lock(&extauth_shared_mu);
    if (w->abandoned) {
        pthread_mutex_unlock(&extauth_shared_mu);
        extauth_wait_free(w);
        return;
    }
    w->a = *a;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&extauth_shared_mu);
}

/* extauth_async_cb - the loop: other threads' lookups into the queue (EA_DEAD once the
 * pool stops). */
static void
extauth_async_cb(uv_async_t *as)
{
    struct extauth *x = as->data;
    struct extauth_wait *list;

    pthread_mutex_lock(&extauth_shared_mu);
    list = x->waits;
    x->waits = NULL;
    pthread_mutex_unlock(&extauth_shared_mu);
    while (list != NULL) {
        struct extauth_wait *w = list;
        list = w->next;
        if (x->stopping) {
            struct extauth_answer a = {.kind = EA_DEAD};
            snprintf(a.reason, sizeof a.reason, "stopping");
            extauth_wait_answer(w, &a);
        } else {
            extauth_lookup(x, w->user, extauth_wait_answer, w);
        }
    }
}

struct extauth *
extauth_new(uv_loop_t *loop, const char *cmdline, int n, long timeout_s, char *err, size_t errlen)
{
    struct extauth *x;
    int argc = 0;
    char *save = NULL;

    if (cmdline == NULL || n < 1) {
        snprintf(err, errlen, "authent_process is not set");
        return NULL;
    }
    x = xcalloc(1, sizeof *x);
    x->cmd = xstrdup(cmdline);
    for (char *w = strtok_r(x->cmd, " \t", &save); w != NULL && argc < EXTAUTH_ARGS_MAX;
         w = strtok_r(NULL, " \t", &save))
        x->argv[argc++] = w;
    if (argc == 0) {
        snprintf(err, errlen, "authent_process is not set");
        free(x->cmd);
        free(x);
        return NULL;
    }
    x->loop = loop;
    extauth_loop_thread = pthread_self();
    extauth_loop_known = true;
    x->n = n;
    x->timeout_ms = (uint64_t)timeout_s * 1000;
    x->h = xcalloc((size_t)n, sizeof *x->h);
    uv_timer_init(loop, &x->tick);
    uv_timer_init(loop, &x->soon_timer);
    uv_async_init(loop, &x->async, extauth_async_cb);
    uv_unref((uv_handle_t *)&x->async);
    x->tick.data = x->soon_timer.data = x->async.data = x;
    x->live = 3;
    uv_timer_start(&x->tick, extauth_tick, EXTAUTH_TICK, EXTAUTH_TICK);
    uv_unref((uv_handle_t *)&x->tick);
    for (int i = 0; i < n; i++) {
        struct extauth_helper *h = &x->h[i];
        h->x = x;
        h->idx = i;
        h->backoff = EXTAUTH_BACKOFF_MIN;
        uv_timer_init(loop, &h->restart);
        h->restart.data = h;
        x->live++;
        extauth_spawn(h);
    }
    pthread_mutex_lock(&extauth_shared_mu);
    extauth_shared = x;
    pthread_mutex_unlock(&extauth_shared_mu);
    log_info("authent_process %s: %d helpers, timeout %ld s", x->argv[0], n, timeout_s);
    return x;
}

/* extauth_submit - queue r, or answer kind at once (next iteration) when line is NULL. */
static struct extauth_req *
extauth_submit(struct extauth *x, char *line, int len, extauth_cb cb, void *arg)
{
    struct extauth_req *r = xcalloc(1, sizeof *r);

    r->x = x;
    r->cb = cb;
    r->arg = arg;
    r->deadline = uv_now(x->loop) + x->timeout_ms;
    if (len < 0 || x->stopping) {
        r->now = len < 0 ? EA_ERR : EA_DEAD;
        r->next = x->soon;
        x->soon = r;
        uv_timer_start(&x->soon_timer, extauth_soon_cb, 0, 0);
        return r;
    }
    r->line = xmemdup(line, (size_t)len);
    r->linelen = (size_t)len;
    if (x->qtail != NULL)
        x->qtail->next = r;
    else
        x->qhead = r;
    x->qtail = r;
    extauth_dispatch(x);
    return r;
}

struct extauth_req *
extauth_check(struct extauth *x, const char *user, const char *password, const char *ip,
              extauth_cb cb, void *arg)
{
    char line[3 * EXTAUTH_WORD_MAX + 100];
    int n = extauth_format_check(line, sizeof line, user, password, ip);
    struct extauth_req *r = extauth_submit(x, line, n, cb, arg);

    OPENSSL_cleanse(line, sizeof line);
    return r;
}

struct extauth_req *
extauth_lookup(struct extauth *x, const char *user, extauth_cb cb, void *arg)
{
    char line[EXTAUTH_WORD_MAX + 20];
    int n = extauth_format_lookup(line, sizeof line, user);

    return extauth_submit(x, line, n, cb, arg);
}

void
extauth_cancel(struct extauth_req *req)
{
    if (req != NULL)
        req->cancelled = true;
}

void
extauth_stats(const struct extauth *x, int *running, unsigned long *answered,
              unsigned long *restarts)
{
    int up = 0;

    for (int i = 0; i < x->n; i++)
        up += x->h[i].up;
    *running = up;
    *answered = x->answered;
    *restarts = x->restarts;
}

void
extauth_stop(struct extauth **xp)
{
    struct extauth *x = *xp;

    if (x == NULL)
        return;
    *xp = NULL;
    x->stopping = true;
    pthread_mutex_lock(&extauth_shared_mu);
    if (extauth_shared == x)
        extauth_shared = NULL;
    pthread_mutex_unlock(&extauth_shared_mu);
    extauth_async_cb(&x->async); /* other threads waiting: EA_DEAD (stopping) */
    extauth_soon_cb(&x->soon_timer);
    while (x->qhead != NULL) {
        struct extauth_req *r = x->qhead;
        x->qhead = r->next;
        extauth_answer_kind(r, EA_DEAD, "stopping");
    }
    x->qtail = NULL;
    for (int i = 0; i < x->n; i++) {
        struct extauth_helper *h = &x->h[i];
        if (h->up) {
            uv_buf_t b = uv_buf_init((char *)"exit\n", 5);
            uv_try_write((uv_stream_t *)&h->in, &b, 1);
        }
        extauth_down(h, SIGTERM, NULL);
        uv_close((uv_handle_t *)&h->restart, extauth_restart_closed);
    }
    uv_close((uv_handle_t *)&x->tick, extauth_closed);
    uv_close((uv_handle_t *)&x->soon_timer, extauth_closed);
    uv_close((uv_handle_t *)&x->async, extauth_closed);
}

/* extauth_under - path lies strictly under root (a directory). */
static bool
extauth_under(const char *path, const char *root)
{
    size_t n;

    if (root == NULL || root[0] != '/')
        return false;
    n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    return strncmp(path, root, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

bool
extauth_drop_allowed(const struct conf *cf, const char *path)
{
    if (path == NULL || path[0] != '/' || strstr(path, "/../") != NULL ||
        strstr(path, "/./") != NULL || strstr(path, "//") != NULL)
        return false;
    size_t n = strlen(path);
    if (path[n - 1] == '/' || (n >= 3 && strcmp(path + n - 3, "/..") == 0) ||
        (n >= 2 && strcmp(path + n - 2, "/.") == 0))
        return false;
    return extauth_under(path, cf->drop_path) || extauth_under(path, cf->mail_spool);
}

bool
extauth_on_loop(void)
{
    return extauth_loop_known && pthread_equal(pthread_self(), extauth_loop_thread);
}

/* extauth_sync_read - the final answer line from fd within deadline_ms (monotonic). */
static enum extauth_kind
extauth_sync_read(int fd, uint64_t deadline_ms, struct extauth_answer *a)
{
    char buf[EXTAUTH_LINE_MAX + 2];
    size_t len = 0;

    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            size_t n = (size_t)(nl - buf);
            enum extauth_kind k = extauth_parse(buf, n > 0 && buf[n - 1] == '\r' ? n - 1 : n, a);
            if (k != EA_DATA)
                return k == EA_BAD ? EA_DEAD : k;
            memmove(buf, nl + 1, len - n - 1);
            len -= n + 1;
        }
        uint64_t now = uv_hrtime() / 1000000;
        if (now >= deadline_ms || len >= sizeof buf)
            return EA_DEAD;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline_ms - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return EA_DEAD;
        ssize_t got = read(fd, buf + len, sizeof buf - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return EA_DEAD;
        len += (size_t)got;
    }
}

enum extauth_kind
extauth_lookup_sync(const char *cmdline, long timeout_s, const char *user, struct extauth_answer *a)
{
    char line[EXTAUTH_WORD_MAX + 30], *cmd, *argv[EXTAUTH_ARGS_MAX + 1], *save = NULL;
    int argc = 0, in[2], out[2], n;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    enum extauth_kind k = EA_DEAD;

    memset(a, 0, sizeof *a);
    a->kind = EA_DEAD;
    n = extauth_format_lookup(line, sizeof line - 6, user);
    if (n < 0)
        return a->kind = EA_ERR;
    memcpy(line + n, "exit\n", 5);
    n += 5;
    if (cmdline == NULL || extauth_on_loop())
        return EA_DEAD;
    cmd = xstrdup(cmdline);
    for (char *w = strtok_r(cmd, " \t", &save); w != NULL && argc < EXTAUTH_ARGS_MAX;
         w = strtok_r(NULL, " \t", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    if (argc == 0 || pipe2(in, O_CLOEXEC) < 0) {
        free(cmd);
        return EA_DEAD;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        free(cmd);
        return EA_DEAD;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) == 0) {
        close(in[0]);
        close(out[1]);
        if (write(in[1], line, (size_t)n) == n)
            k = extauth_sync_read(out[0], uv_hrtime() / 1000000 + (uint64_t)timeout_s * 1000, a);
        close(in[1]);
        close(out[0]);
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    } else {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
    }
    posix_spawn_file_actions_destroy(&fa);
    free(cmd);
    a->kind = k;
    return k;
}

/* extauth_lookup_pool - `lookup user` by the process's pool, from another thread: queued
 * to the loop, waited for up to timeout_s and a second. -1 when the process has no pool. */
static int
extauth_lookup_pool(long timeout_s, const char *user, struct extauth_answer *a)
{
    struct extauth_wait *w;
    struct timespec until;
    pthread_condattr_t ca;
    struct extauth *x;

    if (strlen(user) >= sizeof w->user)
        return -1;
    w = xcalloc(1, sizeof *w);
    snprintf(w->user, sizeof w->user, "%s", user);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_s + 1; /* the pool answers (EA_DEAD at worst) within timeout_s */
    pthread_mutex_lock(&extauth_shared_mu);
    x = extauth_shared;
    if (x == NULL) {
        pthread_mutex_unlock(&extauth_shared_mu);
        extauth_wait_free(w);
        return -1;
    }
    w->next = x->waits;
    x->waits = w;
    uv_async_send(&x->async);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &extauth_shared_mu, &until) == ETIMEDOUT)
            break;
    if (!w->done) {
        w->abandoned = true; /* its answer frees it */
        pthread_mutex_unlock(&extauth_shared_mu);
        memset(a, 0, sizeof *a);
        a->kind = EA_DEAD;
        return 0;
    }
    pthread_mutex_unlock(&extauth_shared_mu);
    *a = w->a;
    extauth_wait_free(w);
    return 0;
}

enum extauth_kind
extauth_lookup_off_loop(const char *cmdline, long timeout_s, const char *user,
                        struct extauth_answer *a)
{
    if (extauth_on_loop()) {
        memset(a, 0, sizeof *a);
        return a->kind = EA_DEAD;
    }
    if (extauth_lookup_pool(timeout_s, user, a) == 0)
        return a->kind;
    return extauth_lookup_sync(cmdline, timeout_s, user, a);
}
