/*
 * watch - dwatch's supervision of one server: spawn, stderr ring, exit, back-off, give-up,
 * hang detection by ping, .ded files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dwatch.h"
#include "file.h"
#include "log.h"
#include "xmem.h"

#define DW_EOF_WAIT_MS 500   /* after an exit, wait this long for the rest of its stderr */
#define DW_START_PING_MS 200 /* ping this often while a server starts */

static const char *const dw_state_names[] = {
#define DW_NAME(name, text) [DW_##name] = text,
    DW_STATES(DW_NAME)
#undef DW_NAME
};

static void dw_after_exit(struct dw_server *s);
static void dw_timer_cb(uv_timer_t *t);

/* dw_state_name - the state's name for logs and status. */
const char *
dw_state_name(enum dw_state s)
{
    return dw_state_names[s];
}

/* dw_enter_state - the one place a server changes state. */
void
dw_enter_state(struct dw_server *s, enum dw_state to)
{
    if (s->state != to)
        log_debug("%s: %s -> %s", s->name, dw_state_names[s->state], dw_state_names[to]);
    s->state = to;
}

/* dw_ctl_path - work_path/NAME.ctl. */
char *
dw_ctl_path(const struct dwatch *dw, const char *name)
{
    return xasprintf("%s/%s.ctl", dw->cf->work_path, name);
}

/* dw_backoff_ms - 1 s doubling per death in the window, capped. */
uint64_t
dw_backoff_ms(size_t ndeaths, long backoff_max_s)
{
    uint64_t cap = (uint64_t)backoff_max_s * 1000;
    uint64_t d = 1000;

    for (size_t i = 1; i < ndeaths && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

/* dw_deaths_in_window - forget deaths older than the window; count the rest. */
size_t
dw_deaths_in_window(struct dw_server *s, uint64_t now, uint64_t window_ms)
{
    size_t keep = 0;

    for (size_t i = 0; i < s->ndeaths; i++)
        if (now - s->deaths[i] < window_ms)
            s->deaths[keep++] = s->deaths[i];
    s->ndeaths = keep;
    return keep;
}

/* dw_record_death - remember when it died (the oldest goes when full). */
static void
dw_record_death(struct dw_server *s, uint64_t now)
{
    if (s->ndeaths == DW_DEATHS_MAX) {
        memmove(s->deaths, s->deaths + 1, (DW_DEATHS_MAX - 1) * sizeof(s->deaths[0]));
        s->ndeaths--;
    }
    s->deaths[s->ndeaths++] = now;
    s->deaths_total++;
}

/* dw_ring_init - room for cap lines. */
void
dw_ring_init(struct dw_ring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap ? cap : 1;
    r->lines = xcalloc(r->cap, sizeof(char *));
}

/* dw_ring_free - release the lines. */
void
dw_ring_free(struct dw_ring *r)
{
    for (size_t i = 0; i < r->cap; i++)
        free(r->lines[i]);
    free(r->lines);
    memset(r, 0, sizeof(*r));
}

/* dw_ring_push - one line in; the oldest goes when full. */
static void
dw_ring_push(struct dw_ring *r, const char *line, size_t len)
{
    size_t slot = (r->head + r->n) % r->cap;

    if (r->n == r->cap) {
        slot = r->head;
        r->head = (r->head + 1) % r->cap;
    } else {
        r->n++;
    }
    free(r->lines[slot]);
    r->lines[slot] = xstrndup(line, len);
}

/* dw_ring_feed - split bytes into lines. */
void
dw_ring_feed(struct dw_ring *r, const char *p, size_t n, void (*out)(void *arg, const char *line),
             void *arg)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (r->partlen < DW_LINE_MAX)
                r->part[r->partlen++] = p[i] == '\0' ? '?' : p[i];
            continue;
        }
        r->part[r->partlen] = '\0';
        dw_ring_push(r, r->part, r->partlen);
        if (out != NULL)
            out(arg, r->part);
        r->partlen = 0;
    }
}

/* dw_ring_flush - keep an unterminated last line. */
void
dw_ring_flush(struct dw_ring *r)
{
    if (r->partlen > 0) {
        dw_ring_push(r, r->part, r->partlen);
        r->partlen = 0;
    }
}

/* dw_ring_text - the lines, oldest first. */
char *
dw_ring_text(const struct dw_ring *r)
{
    size_t len = 1;
    char *t, *p;

    for (size_t i = 0; i < r->n; i++)
        len += strlen(r->lines[(r->head + i) % r->cap]) + 1;
    t = p = xmalloc(len);
    for (size_t i = 0; i < r->n; i++) {
        const char *l = r->lines[(r->head + i) % r->cap];
        size_t n = strlen(l);
        memcpy(p, l, n);
        p[n] = '\n';
        p += n + 1;
    }
    *p = '\0';
    return t;
}

/* dw_server_new - a server entry (not started). */
struct dw_server *
dw_server_new(struct dwatch *dw, const char *name)
{
    struct dw_server *s = xcalloc(1, sizeof(*s));
    struct dw_server **tail = &dw->servers;

    s->dw = dw;
    s->name = xstrdup(name);
    s->exe = xasprintf("%s/%s", dw->bindir, name);
    s->state = DW_STOPPED;
    dw_ring_init(&s->ring, (size_t)dw->cf->dwatch_ded_lines);
    uv_timer_init(dw->loop, &s->timer);
    s->timer.data = s;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = s;
    return s;
}

/* dw_server_find - by name. */
struct dw_server *
dw_server_find(struct dwatch *dw, const char *name)
{
    for (struct dw_server *s = dw->servers; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* dw_relay - a line the server wrote to stderr: ours in the foreground (as it is, or
 * with its level as a journal priority when our stderr is the journal), else the log. */
static void
dw_relay(void *arg, const char *line)
{
    struct dw_server *s = arg;

    if (s->dw->foreground && !log_journal()) {
        char *l = xasprintf("%s\n", line);
        (void)file_write_all(STDERR_FILENO, l, strlen(l));
        free(l);
        return;
    }
    /* a server's own log line "TIME PROG[PID]: LEVEL: TEXT": keep its level, drop its time */
    const char *sp = strchr(line, ' ');
    if (sp != NULL && sp - line >= 19 && line[4] == '-' && line[10] == 'T') {
        const char *prog = sp + 1, *colon = strstr(prog, ": ");
        for (int l = LOGLVL_ERROR; colon != NULL && l <= LOGLVL_DEBUG; l++) {
            size_t n = strlen(log_level_name(l));
            if (strncmp(colon + 2, log_level_name(l), n) == 0 && colon[2 + n] == ':') {
                const char *text = colon + 2 + n + 1 + (colon[3 + n] == ' ');
                int plen = (int)(colon - prog);
                switch (l) {
                case LOGLVL_ERROR:
                    log_error("%.*s: %s", plen, prog, text);
                    break;
                case LOGLVL_WARN:
                    log_warn("%.*s: %s", plen, prog, text);
                    break;
                case LOGLVL_INFO:
                    log_info("%.*s: %s", plen, prog, text);
                    break;
                default: /* the server chose to log it: not filtered again by our level */
                    log_info("%.*s: debug: %s", plen, prog, text);
                    break;
                }
                return;
            }
        }
    }
    log_warn("%s[%ld]: %s", s->name, (long)s->pid, line); /* not a log line: a crash? */
}

/* dw_err_alloc - read buffer for the stderr pipe. */
static void
dw_err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char buf[8192]; /* one loop thread; consumed before the next read */

    (void)h;
    (void)suggested;
    *b = uv_buf_init(buf, sizeof(buf));
}

/* dw_free_handle - handles allocated for one run. */
static void
dw_free_handle(uv_handle_t *h)
{
    free(h);
}

/* dw_err_read - stderr bytes or its end. */
static void
dw_err_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct dw_server *s = st->data;

    if (nread > 0) {
        dw_ring_feed(&s->ring, b->base, (size_t)nread, dw_relay, s);
        return;
    }
    if (nread == 0)
        return;
    dw_ring_flush(&s->ring);
    uv_close((uv_handle_t *)s->err, dw_free_handle);
    s->err = NULL;
    s->err_eof = true;
    if (s->exit_pending && s->proc == NULL) {
        uv_timer_stop(&s->timer);
        dw_after_exit(s);
    }
}

/* dw_cancel_ping - drop a ping in flight. */
static void
dw_cancel_ping(struct dw_server *s)
{
    if (s->ping != NULL) {
        ctl_async_cancel(s->ping);
        s->ping = NULL;
    }
}

/* dw_exit_cb - the process ended; finish once its stderr is drained too. */
static void
dw_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct dw_server *s = p->data;

    s->exited = true;
    s->exit_pending = true;
    s->exit_status = status;
    s->exit_signal = sig;
    if (sig != 0)
        snprintf(s->last_exit, sizeof(s->last_exit), "signal %d", sig);
    else
        snprintf(s->last_exit, sizeof(s->last_exit), "exit %ld", (long)status);
    uv_close((uv_handle_t *)p, dw_free_handle);
    s->proc = NULL;
    dw_cancel_ping(s);
    if (s->err_eof) {
        uv_timer_stop(&s->timer);
        dw_after_exit(s);
    } else {
        uv_timer_start(&s->timer, dw_timer_cb, DW_EOF_WAIT_MS, 0);
    }
}

/* dw_start - spawn NAME -f -c CONF with stderr on a pipe. */
int
dw_start(struct dw_server *s)
{
    struct dwatch *dw = s->dw;
    uv_process_options_t o;
    uv_stdio_container_t io[3];
    char *args[] = {s->exe, "-f", "-c", dw->conf_path, NULL};
    int rc;

    if (s->proc != NULL)
        return 0;
    uv_timer_stop(&s->timer);
    s->exited = s->err_eof = s->exit_pending = s->hung = s->answered = s->warned_nosock = false;
    s->restart = false;
    dw_ring_free(&s->ring);
    dw_ring_init(&s->ring, (size_t)dw->cf->dwatch_ded_lines);
    s->err = xcalloc(1, sizeof(*s->err));
    uv_pipe_init(dw->loop, s->err, 0);
    s->err->data = s;
    s->proc = xcalloc(1, sizeof(*s->proc));
    s->proc->data = s;
    memset(&o, 0, sizeof(o));
    memset(io, 0, sizeof(io));
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_IGNORE;
    io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[2].data.stream = (uv_stream_t *)s->err;
    o.file = s->exe;
    o.args = args;
    o.stdio = io;
    o.stdio_count = 3;
    o.exit_cb = dw_exit_cb;
    rc = uv_spawn(dw->loop, s->proc, &o);
    if (rc < 0) {
        log_error("%s: cannot start %s: %s", s->name, s->exe, uv_strerror(rc));
        uv_close((uv_handle_t *)s->proc, dw_free_handle);
        uv_close((uv_handle_t *)s->err, dw_free_handle);
        s->proc = NULL;
        s->err = NULL;
        /* a failed start is a death: back-off and give-up apply */
        snprintf(s->last_exit, sizeof(s->last_exit), "spawn: %s", uv_err_name(rc));
        s->exited = s->err_eof = s->exit_pending = true;
        s->exit_status = 127;
        s->exit_signal = 0;
        uv_timer_start(&s->timer, dw_timer_cb, 0, 0);
        dw_enter_state(s, DW_STARTING);
        return rc;
    }
    s->pid = s->proc->pid;
    s->started = time(NULL);
    s->started_ms = uv_now(dw->loop);
    uv_read_start((uv_stream_t *)s->err, dw_err_alloc, dw_err_read);
    log_info("%s: started, pid %ld", s->name, (long)s->pid);
    dw_enter_state(s, DW_STARTING);
    uv_timer_start(&s->timer, dw_timer_cb, DW_START_PING_MS, DW_START_PING_MS);
    return 0;
}

/* A .ded file on its way to disk. */
struct dw_ded {
    uv_work_t w;
    char *path;
    char *text;
    int rc, err;
};

/* dw_ded_work - write it (thread pool). */
static void
dw_ded_work(uv_work_t *w)
{
    struct dw_ded *d = w->data;

    d->rc = file_write_atomic(d->path, d->text, strlen(d->text), 0640);
    d->err = errno;
}

/* dw_ded_done - report a failure, free. */
static void
dw_ded_done(uv_work_t *w, int status)
{
    struct dw_ded *d = w->data;

    if (d->rc < 0) {
        errno = d->err;
        log_warne("cannot write %s", d->path);
    }
    free(d->path);
    free(d->text);
    free(d);
}

/* dw_write_ded - work_path/NAME.ded: why and when it died, and its last stderr lines. */
static void
dw_write_ded(struct dw_server *s)
{
    struct dw_ded *d = xcalloc(1, sizeof(*d));
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    char *lines = dw_ring_text(&s->ring);

    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
    d->path = xasprintf("%s/%s.ded", s->dw->cf->work_path, s->name);
    d->text = xasprintf("# %s pid %ld died %s: %s%s, after %lds; its last %zu lines of stderr:\n%s",
                        s->name, (long)s->pid, when, s->last_exit,
                        s->hung ? " (killed: did not answer a ping)" : "", (long)(now - s->started),
                        s->ring.n, lines);
    free(lines);
    d->w.data = d;
    if (uv_queue_work(s->dw->loop, &d->w, dw_ded_work, dw_ded_done) < 0) {
        free(d->path);
        free(d->text);
        free(d);
    }
}

/* dw_server_closed - the timer is closed: free the server. */
static void
dw_server_closed(uv_handle_t *h)
{
    struct dw_server *s = h->data;

    dw_ring_free(&s->ring);
    free(s->name);
    free(s->exe);
    free(s);
}

/* dw_forget - a removed server has stopped: drop it. */
static void
dw_forget(struct dw_server *s)
{
    struct dw_server **pp = &s->dw->servers;

    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    log_info("%s: no longer watched", s->name);
    uv_close((uv_handle_t *)&s->timer, dw_server_closed);
}

/* dw_after_exit - the process is gone and its stderr read: restart, back off or give up. */
static void
dw_after_exit(struct dw_server *s)
{
    struct dwatch *dw = s->dw;
    uint64_t now = uv_now(dw->loop);
    bool clean = s->exit_signal == 0 && s->exit_status == 0 && !s->hung;

    s->exit_pending = false;
    if (s->err != NULL) {
        uv_close((uv_handle_t *)s->err, dw_free_handle);
        s->err = NULL;
    }
    dw_ring_flush(&s->ring);
    if (dw->stopping || (s->state == DW_STOPPING && !s->restart)) {
        log_info("%s: stopped (%s)", s->name, s->last_exit);
        dw_enter_state(s, DW_STOPPED);
        if (s->removed && !dw->stopping)
            dw_forget(s);
        else if (dw->stopping)
            dw_maybe_finish(dw);
        return;
    }
    if (s->state == DW_STOPPING && s->restart) {
        log_info("%s: stopped for a restart (%s)", s->name, s->last_exit);
        s->restarts++;
        dw_start(s);
        return;
    }
    if (clean) {
        log_info("%s: exited by itself with status 0; not restarted (start it with "
                 "tell%s start)",
                 s->name, strcmp(s->name, "dsmtp") == 0 ? "smtp" : "pop");
        dw_enter_state(s, DW_STOPPED);
        return;
    }
    dw_record_death(s, now);
    dw_write_ded(s);
    size_t n = dw_deaths_in_window(s, now, (uint64_t)dw->cf->dwatch_window * 1000);
    if (n >= (size_t)dw->cf->dwatch_give_up) {
        log_error("%s: died %zu times within %lds (last: %s); giving up -- see %s/%s.ded, "
                  "then tell%s start",
                  s->name, n, dw->cf->dwatch_window, s->last_exit, dw->cf->work_path, s->name,
                  strcmp(s->name, "dsmtp") == 0 ? "smtp" : "pop");
        dw_enter_state(s, DW_FAILED);
        return;
    }
    s->delay_ms = dw_backoff_ms(n, dw->cf->dwatch_backoff_max);
    log_warn("%s: died (%s), death %zu within %lds; restarting in %.1fs", s->name, s->last_exit, n,
             dw->cf->dwatch_window, (double)s->delay_ms / 1000);
    dw_enter_state(s, DW_BACKOFF);
    uv_timer_start(&s->timer, dw_timer_cb, s->delay_ms, 0);
}

/* dw_ping_cb - the answer to a health ping. */
static void
dw_ping_cb(void *arg, int result, const char *text)
{
    struct dw_server *s = arg;
    struct dwatch *dw = s->dw;
    uint64_t grace = (uint64_t)(dw->cf->dwatch_interval + dw->cf->dwatch_timeout) * 3000;

    s->ping = NULL;
    if (s->proc == NULL || s->state == DW_STOPPING)
        return;
    switch (result) {
    case CTL_R_OK:
    case CTL_R_ERR: /* it answered */
        s->answered = true;
        if (s->state == DW_STARTING) {
            log_info("%s: up (pid %ld)", s->name, (long)s->pid);
            dw_enter_state(s, DW_RUNNING);
            uv_timer_stop(&s->timer);
            dw_notify_check(dw);
        }
        break;
    case CTL_R_UNREACHABLE:
        if (!s->warned_nosock && uv_now(dw->loop) - s->started_ms > grace) {
            log_warn("%s: no control socket after %lus (%s); hang detection is off for it", s->name,
                     (unsigned long)(grace / 1000), text);
            s->warned_nosock = true;
        }
        break;
    default:
        log_warn("%s: pid %ld did not answer a ping within %lds (%s); killing it", s->name,
                 (long)s->pid, dw->cf->dwatch_timeout, text);
        s->hung = true;
        uv_timer_stop(&s->timer);
        uv_process_kill(s->proc, SIGKILL);
        break;
    }
}

/* dw_ping - ask the server whether it is alive (at most one ping in flight). */
static void
dw_ping(struct dw_server *s)
{
    char *path;

    if (s->ping != NULL || s->proc == NULL || s->hung)
        return;
    path = dw_ctl_path(s->dw, s->name);
    s->ping = ctl_call_async(s->dw->loop, path, "ping", (uint64_t)s->dw->cf->dwatch_timeout * 1000,
                             NULL, dw_ping_cb, s);
    free(path);
}

/* dw_timer_cb - the per-server timer: end of an exit, back-off, start-up ping, stop. */
static void
dw_timer_cb(uv_timer_t *t)
{
    struct dw_server *s = t->data;

    if (s->exit_pending) {
        uv_timer_stop(t);
        dw_after_exit(s);
        return;
    }
    switch (s->state) {
    case DW_BACKOFF:
        s->restarts++;
        dw_start(s);
        break;
    case DW_STARTING:
        /* quick pings until it answers; after the grace only the health rounds ping */
        if (uv_now(s->dw->loop) - s->started_ms >
            (uint64_t)(s->dw->cf->dwatch_interval + s->dw->cf->dwatch_timeout) * 3000)
            uv_timer_stop(t);
        else
            dw_ping(s);
        break;
    case DW_STOPPING:
        if (s->proc != NULL) {
            log_warn("%s: pid %ld did not stop in time; SIGKILL", s->name, (long)s->pid);
            uv_process_kill(s->proc, SIGKILL);
        }
        break;
    default:
        break;
    }
}

/* dw_stop - SIGTERM now, SIGKILL after grace_ms; restart: start it again afterwards. */
void
dw_stop(struct dw_server *s, bool restart, uint64_t grace_ms)
{
    if (s->exit_pending) { /* dw_after_exit decides, seeing STOPPING */
        s->restart = restart;
        dw_enter_state(s, DW_STOPPING);
        return;
    }
    if (s->proc == NULL) {
        uv_timer_stop(&s->timer);
        if (restart) {
            s->ndeaths = 0;
            s->restarts++;
            dw_start(s);
        } else {
            dw_enter_state(s, DW_STOPPED);
            if (s->removed)
                dw_forget(s);
        }
        return;
    }
    dw_cancel_ping(s);
    s->restart = restart;
    dw_enter_state(s, DW_STOPPING);
    uv_process_kill(s->proc, SIGTERM);
    uv_timer_start(&s->timer, dw_timer_cb, grace_ms, 0);
}

/* dw_health_round - ping every running server. */
void
dw_health_round(struct dwatch *dw)
{
    for (struct dw_server *s = dw->servers; s != NULL; s = s->next)
        if (s->state == DW_RUNNING || s->state == DW_STARTING)
            dw_ping(s);
}

/* dw_name_ok - a program name: letters, digits, '-' and '_' only. */
static bool
dw_name_ok(const char *n)
{
    if (*n == '\0' || strlen(n) > 64)
        return false;
    for (; *n != '\0'; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '-' || *n == '_'))
            return false;
    return true;
}

/* dw_adds_dlist - lists are configured (dlist_path holds a lists.dat) and dwatch_servers
 * does not name dlist: dwatch runs it too. */
static bool
dw_adds_dlist(const struct dwatch *dw)
{
    return dw->cf->lists != NULL && !conf_list_has(&dw->cf->dwatch_servers, "dlist");
}

/* dw_apply_one - name wanted: started if new, kept if on its way out. */
static void
dw_apply_one(struct dwatch *dw, const char *name)
{
    struct dw_server *s;

    if (!dw_name_ok(name)) {
        log_error("dwatch_servers: '%s' is not a program name; ignored", name);
        return;
    }
    s = dw_server_find(dw, name);
    if (s != NULL && s->removed && s->state != DW_STOPPED) {
        s->removed = false; /* back in the list before it stopped */
        return;
    }
    if (s == NULL) {
        s = dw_server_new(dw, name);
        dw_start(s);
    }
}

/* dw_apply_servers - start new names, stop removed ones (dwatch_servers, and dlist when
 * lists are configured). */
void
dw_apply_servers(struct dwatch *dw)
{
    const struct conf_list *l = &dw->cf->dwatch_servers;
    bool dlist = dw_adds_dlist(dw);
    struct dw_server *s, *next;

    for (s = dw->servers; s != NULL; s = next) {
        next = s->next;
        if (!conf_list_has(l, s->name) && !(dlist && strcmp(s->name, "dlist") == 0) &&
            !s->removed) {
            s->removed = true;
            dw_stop(s, false, 40000);
        }
    }
    for (size_t i = 0; i < l->n; i++)
        dw_apply_one(dw, l->v[i]);
    if (dlist)
        dw_apply_one(dw, "dlist");
}

/* dw_all_healthy - every server that should run answered its last ping. */
bool
dw_all_healthy(const struct dwatch *dw)
{
    for (const struct dw_server *s = dw->servers; s != NULL; s = s->next)
        if (!s->removed && s->state != DW_STOPPED && s->state != DW_RUNNING)
            return false;
    return true;
}

/* dw_all_down - no process left. */
bool
dw_all_down(const struct dwatch *dw)
{
    for (const struct dw_server *s = dw->servers; s != NULL; s = s->next)
        if (s->proc != NULL || s->exit_pending)
            return false;
    return true;
}

/* dw_server_free_all - at exit: close every server's timer (processes are gone). */
void
dw_server_free_all(struct dwatch *dw)
{
    struct dw_server *s, *next;

    for (s = dw->servers; s != NULL; s = next) {
        next = s->next;
        dw_cancel_ping(s);
        if (s->err != NULL) {
            uv_close((uv_handle_t *)s->err, dw_free_handle);
            s->err = NULL;
        }
        uv_close((uv_handle_t *)&s->timer, dw_server_closed);
    }
    dw->servers = NULL;
}
