/*
 * ldaspawn - uv_spawn on the loop for deliveries on the pool. See ldaspawn.h.
 */
#include "ldaspawn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "xmem.h"

#define LDASPAWN_SETPRIV "/usr/bin/setpriv"
#define LDASPAWN_WRAP_MAX 8 /* words put before the program's argv */

struct ldaspawn {
    struct ldaspawn *next;
    uv_process_t proc;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    char **args;
    uv_mutex_t mu;
    uv_cond_t cv;
    bool started, done;
    int rc; /* uv_spawn's */
    pid_t pid;
    int64_t exit_status;
    int term_signal;
};

static struct {
    uv_loop_t *loop;
    uv_async_t async;
    uv_mutex_t mu;
    struct ldaspawn *head; /* waiting for the loop */
    bool on, setpriv;
} ls;

static uv_once_t ldaspawn_once = UV_ONCE_INIT;

static void
ldaspawn_init_lock(void)
{
    if (uv_mutex_init(&ls.mu) != 0)
        abort();
}

/* ldaspawn_signal - under s->mu: a state change for the waiting thread. */
static void
ldaspawn_signal(struct ldaspawn *s, bool started, bool done)
{
    uv_mutex_lock(&s->mu);
    s->started |= started;
    s->done |= done;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
}

static void
ldaspawn_closed(uv_handle_t *h)
{
    ldaspawn_signal(h->data, false, true);
}

/* ldaspawn_exit - loop: the process ended. */
static void
ldaspawn_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct ldaspawn *s = p->data;

    s->exit_status = exit_status;
    s->term_signal = term_signal;
    uv_close((uv_handle_t *)p, ldaspawn_closed);
}

/* ldaspawn_go - loop: spawn every waiting request. */
static void
ldaspawn_go(uv_async_t *a)
{
    struct ldaspawn *s;

    (void)a;
    uv_mutex_lock(&ls.mu);
    s = ls.head;
    ls.head = NULL;
    uv_mutex_unlock(&ls.mu);
    while (s != NULL) {
        struct ldaspawn *next = s->next;
        s->proc.data = s;
        s->rc = uv_spawn(ls.loop, &s->proc, &s->opt);
        if (s->rc == 0)
            s->pid = s->proc.pid;
        if (s->rc == 0)
            log_debug("lda: uv_spawn pid=%ld", (long)s->pid);
        else
            log_warn("lda: uv_spawn failed: %s", uv_strerror(s->rc));
        if (s->rc != 0) /* libuv: the handle is to be closed even so; done when it is */
            uv_close((uv_handle_t *)&s->proc, ldaspawn_closed);
        ldaspawn_signal(s, true, false);
        s = next;
    }
}

void
ldaspawn_start(uv_loop_t *loop)
{
    uv_once(&ldaspawn_once, ldaspawn_init_lock);
    ls.loop = loop;
    if (uv_async_init(loop, &ls.async, ldaspawn_go) != 0)
        return;
    uv_unref((uv_handle_t *)&ls.async);
    ls.setpriv = access(LDASPAWN_SETPRIV, X_OK) == 0;
    ls.on = true;
}

void
ldaspawn_stop(void)
{
    if (!ls.on)
        return;
    uv_mutex_lock(&ls.mu);
    ls.on = false;
    uv_mutex_unlock(&ls.mu);
    ldaspawn_go(&ls.async); /* a request that came meanwhile still starts and is reaped */
    uv_close((uv_handle_t *)&ls.async, NULL);
}

bool
ldaspawn_on(void)
{
    return ls.on;
}

struct ldaspawn *
ldaspawn_run(char *const argv[], char *const env[], const char *cwd, int in, int out, char *err,
             size_t errlen)
{
    struct ldaspawn *s = xcalloc(1, sizeof(*s));
    size_t n = 0, argc = 0;
    bool on;

    while (argv[argc] != NULL)
        argc++;
    s->args = xcalloc(argc + LDASPAWN_WRAP_MAX + 1, sizeof(*s->args));
    if (ls.setpriv) {
        s->args[n++] = LDASPAWN_SETPRIV;
        s->args[n++] = "--pdeathsig";
        s->args[n++] = "KILL";
        s->args[n++] = "--";
    }
    s->args[n++] = "/bin/sh";
    s->args[n++] = "-c";
    s->args[n++] = "umask 077 && exec \"$@\"";
    s->args[n++] = "sh";
    for (size_t i = 0; i < argc; i++)
        s->args[n++] = argv[i];
    s->opt.file = s->args[0];
    s->opt.args = s->args;
    s->opt.env = (char **)env;
    s->opt.cwd = cwd;
    s->opt.flags = UV_PROCESS_DETACHED; /* setsid: its own process group */
    s->opt.exit_cb = ldaspawn_exit;
    s->opt.stdio_count = 3;
    s->opt.stdio = s->stdio;
    s->stdio[0].flags = UV_INHERIT_FD;
    s->stdio[0].data.fd = in;
    s->stdio[1].flags = s->stdio[2].flags = UV_INHERIT_FD;
    s->stdio[1].data.fd = s->stdio[2].data.fd = out;
    if (uv_mutex_init(&s->mu) != 0 || uv_cond_init(&s->cv) != 0)
        abort();
    uv_mutex_lock(&ls.mu);
    on = ls.on;
    if (on) {
        s->next = ls.head;
        ls.head = s;
    }
    uv_mutex_unlock(&ls.mu);
    if (on)
        uv_async_send(&ls.async);
    uv_mutex_lock(&s->mu);
    while (on && !s->started)
        uv_cond_wait(&s->cv, &s->mu);
    uv_mutex_unlock(&s->mu);
    if (!on || s->rc != 0) {
        snprintf(err, errlen, "cannot run the command: %s",
                 on ? uv_strerror(s->rc) : "dsmtp is stopping");
        uv_mutex_lock(&s->mu);
        while (on && !s->done)
            uv_cond_wait(&s->cv, &s->mu);
        uv_mutex_unlock(&s->mu);
        uv_cond_destroy(&s->cv);
        uv_mutex_destroy(&s->mu);
        free(s->args);
        free(s);
        return NULL;
    }
    return s;
}

pid_t
ldaspawn_pid(const struct ldaspawn *s)
{
    return s->pid;
}

int
ldaspawn_wait(struct ldaspawn *s, long long deadline_ms, long long (*now_ms)(void), int *status)
{
    bool killed = false;

    uv_mutex_lock(&s->mu);
    while (!s->done) {
        long long left = deadline_ms - now_ms();
        if (left <= 0 && !killed) {
            kill(-s->pid, SIGKILL); /* its whole session's group */
            kill(s->pid, SIGKILL);
            killed = true;
        }
        if (killed)
            uv_cond_wait(&s->cv, &s->mu);
        else if (uv_cond_timedwait(&s->cv, &s->mu,
                                   (uint64_t)(left > 1000 ? 1000 : left) * 1000000u) != 0)
            continue;
    }
    uv_mutex_unlock(&s->mu);
    *status = s->term_signal != 0 ? s->term_signal /* WIFSIGNALED, WTERMSIG */
                                  : (int)((s->exit_status & 0xff) << 8);
    uv_cond_destroy(&s->cv);
    uv_mutex_destroy(&s->mu);
    free(s->args);
    free(s);
    return killed ? -1 : 0;
}
