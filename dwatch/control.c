/*
 * control - dwatch's control socket (work_path/dwatch.ctl): status, restart/start/stop
 * NAME, reload (its own config, then every server), shutdown; and the reload and
 * shutdown that SIGHUP and SIGTERM trigger.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dwatch.h"
#include "log.h"
#include "xmem.h"

#define DW_STOP_GRACE_MS 40000 /* servers give sessions 30 s */

/* dw_ctl_find - the server named in a request, or an ERR answer. */
static struct dw_server *
dw_ctl_find(struct dwatch *dw, struct ctl_req *r, const char *name)
{
    struct dw_server *s = dw_server_find(dw, name);

    if (s == NULL || s->removed) {
        ctl_err(r, "dwatch does not watch %s (see dwatch_servers and status)", name);
        return NULL;
    }
    if (dw->stopping) {
        ctl_err(r, "dwatch is shutting down");
        return NULL;
    }
    return s;
}

/* dw_cmd_status - one line per server. */
static void
dw_cmd_status(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct dwatch *dw = arg;
    time_t now = time(NULL);
    int n = 0;

    for (struct dw_server *s = dw->servers; s != NULL; s = s->next, n++) {
        char pid[32] = "-", up[32] = "-", last[sizeof(s->last_exit)];
        snprintf(last, sizeof(last), "%s", s->last_exit[0] ? s->last_exit : "-");
        for (char *p = last; *p != '\0'; p++)
            if (*p == ' ')
                *p = '_'; /* one word: "signal_9", "exit_1" */
        if (s->proc != NULL) {
            snprintf(pid, sizeof(pid), "%ld", (long)s->pid);
            snprintf(up, sizeof(up), "%lds", (long)(now - s->started));
        }
        ctl_line(r, "%s state=%s pid=%s uptime=%s restarts=%ld deaths=%ld last_exit=%s%s", s->name,
                 dw_state_name(s->state), pid, up, s->restarts, s->deaths_total, last,
                 s->state == DW_BACKOFF ? " (waiting to restart)" : "");
    }
    ctl_ok(r, "%d server%s, dwatch pid %ld%s", n, n == 1 ? "" : "s", (long)getpid(),
           dw->stopping ? ", shutting down" : "");
}

/* dw_cmd_restart - stop and start again (at once if it is not running). */
static void
dw_cmd_restart(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct dwatch *dw = arg;
    struct dw_server *s = dw_ctl_find(dw, r, argv[1]);

    if (s == NULL)
        return;
    log_info("%s: restart asked (uid %ld)", s->name, (long)ctl_uid(r));
    s->ndeaths = 0;
    dw_stop(s, true, DW_STOP_GRACE_MS);
    ctl_ok(r, "restarting %s", s->name);
}

/* dw_cmd_start - start a stopped or failed server now. */
static void
dw_cmd_start(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct dwatch *dw = arg;
    struct dw_server *s = dw_ctl_find(dw, r, argv[1]);

    if (s == NULL)
        return;
    if (s->proc != NULL && s->state != DW_STOPPING) {
        ctl_ok(r, "%s is already running (pid %ld)", s->name, (long)s->pid);
        return;
    }
    log_info("%s: start asked (uid %ld)", s->name, (long)ctl_uid(r));
    s->ndeaths = 0;
    if (s->proc != NULL || s->exit_pending) {
        dw_stop(s, true, DW_STOP_GRACE_MS); /* stopping: start again when it is gone */
        ctl_ok(r, "%s will start once it has stopped", s->name);
        return;
    }
    if (dw_start(s) < 0) {
        ctl_err(r, "cannot start %s", s->exe);
        return;
    }
    ctl_ok(r, "started %s (pid %ld)", s->name, (long)s->pid);
}

/* dw_cmd_stop - stop and leave it stopped. */
static void
dw_cmd_stop(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct dwatch *dw = arg;
    struct dw_server *s = dw_ctl_find(dw, r, argv[1]);

    if (s == NULL)
        return;
    log_info("%s: stop asked (uid %ld)", s->name, (long)ctl_uid(r));
    if (s->proc == NULL && !s->exit_pending) {
        dw_stop(s, false, DW_STOP_GRACE_MS);
        ctl_ok(r, "%s is stopped", s->name);
        return;
    }
    dw_stop(s, false, DW_STOP_GRACE_MS);
    ctl_ok(r, "stopping %s", s->name);
}

/* dw_cmd_reload - dwatch's own settings, then every server. */
static void
dw_cmd_reload(struct ctl_req *r, int argc, char **argv, void *arg)
{
    dw_reload(arg, r);
}

/* dw_cmd_shutdown - stop every server, then dwatch. */
static void
dw_cmd_shutdown(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct dwatch *dw = arg;

    log_info("shutdown asked (uid %ld)", (long)ctl_uid(r));
    ctl_ok(r, "stopping every server, then dwatch");
    dw_shutdown(dw);
}

static const struct ctl_cmd dw_cmds[] = {
    {"status", "", 0, 0, dw_cmd_status, "every server: state, pid, uptime, restarts, deaths"},
    {"restart", "NAME", 1, 1, dw_cmd_restart, "stop NAME and start it again"},
    {"start", "NAME", 1, 1, dw_cmd_start, "start NAME (also after it failed)"},
    {"stop", "NAME", 1, 1, dw_cmd_stop, "stop NAME and keep it stopped"},
    {"reload", "", 0, 0, dw_cmd_reload, "re-read dmail.conf, then reload every server"},
    {"shutdown", "", 0, 0, dw_cmd_shutdown, "stop every server, then dwatch"},
};

/* dw_control_open - listen on work_path/dwatch.ctl. */
int
dw_control_open(struct dwatch *dw, char *err, size_t errlen)
{
    char *path = dw_ctl_path(dw, "dwatch");

    dw->ctl = ctl_server_new(dw->loop, path, dw_cmds, sizeof(dw_cmds) / sizeof(dw_cmds[0]), dw, err,
                             errlen);
    free(path);
    return dw->ctl != NULL ? 0 : -1;
}

/* A reload in progress. */
struct dw_reload {
    uv_work_t w;
    struct dwatch *dw;
    struct ctl_req *r; /* NULL for SIGHUP */
    char *path;
    struct conf *cf;
    struct conf_diag diag;
    int pending, failed;
};

/* One server's part of a reload. */
struct dw_reload_one {
    struct dw_reload *rl;
    char name[65];
};

/* dw_reload_end - all answers are in. */
static void
dw_reload_end(struct dw_reload *rl)
{
    if (rl->r != NULL) {
        if (rl->failed)
            ctl_err(rl->r, "%d server%s refused the reload or did not answer", rl->failed,
                    rl->failed == 1 ? "" : "s");
        else
            ctl_ok(rl->r, "reloaded");
    }
    free(rl);
}

/* dw_reload_line - a server's data line (its file:line errors). */
static void
dw_reload_line(void *arg, const char *line)
{
    struct dw_reload_one *o = arg;

    if (o->rl->r != NULL)
        ctl_line(o->rl->r, "%s: %s", o->name, line);
    else
        log_warn("%s: reload: %s", o->name, line);
}

/* dw_reload_answer - one server answered. */
static void
dw_reload_answer(void *arg, int result, const char *text)
{
    struct dw_reload_one *o = arg;
    struct dw_reload *rl = o->rl;

    if (result != CTL_R_OK)
        rl->failed++;
    if (rl->r != NULL)
        ctl_line(rl->r, "%s: %s %s", o->name, result == CTL_R_OK ? "OK" : "ERR", text);
    if (result == CTL_R_OK)
        log_info("%s: reload: %s", o->name, text);
    else
        log_warn("%s: reload failed: %s", o->name, text);
    free(o);
    if (--rl->pending == 0)
        dw_reload_end(rl);
}

/* dw_reload_work - parse the config (thread pool). */
static void
dw_reload_work(uv_work_t *w)
{
    struct dw_reload *rl = w->data;

    rl->cf = conf_load(rl->path, &rl->diag);
}

/* dw_health_cb - the interval timer. */
static void
dw_health_cb(uv_timer_t *t)
{
    dw_health_round(t->data);
}

/* dw_reload_done - swap the snapshot, adjust, then reload every running server. */
static void
dw_reload_done(uv_work_t *w, int status)
{
    struct dw_reload *rl = w->data;
    struct dwatch *dw = rl->dw;

    free(rl->path);
    for (size_t i = 0; i < rl->diag.n; i++) {
        log_warn("%s", rl->diag.msgs[i]);
        if (rl->r != NULL)
            ctl_line(rl->r, "%s", rl->diag.msgs[i]);
    }
    if (rl->cf == NULL || dw->stopping) {
        if (rl->r != NULL)
            ctl_err(rl->r, "%s; the old configuration stays",
                    dw->stopping ? "shutting down" : "the configuration has errors");
        log_error("reload: %s has errors; the old configuration stays", dw->conf_path);
        conf_diag_free(&rl->diag);
        conf_unref(&rl->cf);
        free(rl);
        return;
    }
    conf_diag_free(&rl->diag);
    conf_unref(&dw->cf);
    dw->cf = rl->cf;
    rl->cf = NULL;
    log_set_level(dw->cf->log_level);
    uv_timer_start(&dw->health, dw_health_cb, (uint64_t)dw->cf->dwatch_interval * 1000,
                   (uint64_t)dw->cf->dwatch_interval * 1000);
    log_info("reload: %s loaded", dw->conf_path);
    dw_apply_servers(dw); /* first: removed servers are not asked to reload */
    rl->pending = 1;      /* held until every call is made */
    for (struct dw_server *s = dw->servers; s != NULL; s = s->next) {
        /* a server still starting reads the file itself */
        if (s->proc == NULL || s->removed || s->state != DW_RUNNING)
            continue;
        struct dw_reload_one *o = xcalloc(1, sizeof(*o));
        char *path = dw_ctl_path(dw, s->name);
        o->rl = rl;
        snprintf(o->name, sizeof(o->name), "%s", s->name);
        rl->pending++;
        ctl_call_async(dw->loop, path, "reload", 120000, dw_reload_line, dw_reload_answer, o);
        free(path);
    }
    if (--rl->pending == 0)
        dw_reload_end(rl);
}

/* dw_reload - start a reload (r may be NULL: SIGHUP). */
void
dw_reload(struct dwatch *dw, struct ctl_req *r)
{
    struct dw_reload *rl = xcalloc(1, sizeof(*rl));

    rl->dw = dw;
    rl->r = r;
    rl->path = xstrdup(dw->conf_path);
    rl->w.data = rl;
    if (uv_queue_work(dw->loop, &rl->w, dw_reload_work, dw_reload_done) < 0) {
        if (r != NULL)
            ctl_err(r, "cannot queue the reload");
        free(rl->path);
        free(rl);
    }
}

/* dw_shutdown_answer - a server answered "shutdown"; without an OK it gets SIGTERM,
 * unless its control socket is closed after it had answered pings: then it is stopping
 * already (Ctrl-C on a terminal signals dwatch and its servers alike; a server closes the
 * socket as it finishes), and a SIGTERM would cut its finish short. dw_final_cb is the
 * guard if it never exits. */
static void
dw_shutdown_answer(void *arg, int result, const char *text)
{
    struct dw_server *s = arg;

    s->ping = NULL;
    if (result == CTL_R_OK || s->proc == NULL)
        return;
    if (result == CTL_R_UNREACHABLE && s->answered) {
        log_info("%s: stopping already (its control socket is closed); waiting for pid %ld",
                 s->name, (long)s->pid);
        return;
    }
    if (result == CTL_R_UNREACHABLE)
        log_info("%s: no control socket yet (still starting); SIGTERM", s->name);
    else if (s->answered)
        log_info("%s: no answer to shutdown (%s): finishing already, or hung; SIGTERM (a "
                 "finishing server ignores it)",
                 s->name, text);
    else
        log_info("%s: no answer to shutdown (%s); SIGTERM", s->name, text);
    uv_process_kill(s->proc, SIGTERM);
}

/* dw_final_cb - the servers did not all stop in time. */
static void
dw_final_cb(uv_timer_t *t)
{
    struct dwatch *dw = t->data;

    for (struct dw_server *s = dw->servers; s != NULL; s = s->next)
        if (s->proc != NULL) {
            log_warn("%s: pid %ld still running; SIGKILL", s->name, (long)s->pid);
            uv_process_kill(s->proc, SIGKILL);
        }
}

/* dw_shutdown - ask every server to shut down, SIGKILL stragglers, then finish. */
void
dw_shutdown(struct dwatch *dw)
{
    if (dw->stopping)
        return;
    dw->stopping = true;
    dw_notify("STOPPING=1");
    log_info("stopping every server");
    for (struct dw_server *s = dw->servers; s != NULL; s = s->next) {
        uv_timer_stop(&s->timer);
        if (s->ping != NULL) {
            ctl_async_cancel(s->ping);
            s->ping = NULL;
        }
        if (s->proc == NULL && !s->exit_pending) {
            dw_enter_state(s, DW_STOPPED);
            continue;
        }
        dw_enter_state(s, DW_STOPPING);
        if (s->proc != NULL) {
            char *path = dw_ctl_path(dw, s->name);
            s->ping = ctl_call_async(dw->loop, path, "shutdown", 3000, NULL, dw_shutdown_answer, s);
            free(path);
        }
    }
    uv_timer_start(&dw->final, dw_final_cb, DW_STOP_GRACE_MS, 0);
    dw_maybe_finish(dw);
}

/* dw_noop_close - static handles. */
static void
dw_noop_close(uv_handle_t *h)
{
    (void)h;
}

/* dw_maybe_finish - once every server is down: close everything; the loop ends. */
void
dw_maybe_finish(struct dwatch *dw)
{
    if (!dw->stopping || !dw_all_down(dw) || uv_is_closing((uv_handle_t *)&dw->final))
        return;
    log_info("every server has stopped");
    ctl_server_close(&dw->ctl);
    uv_close((uv_handle_t *)&dw->health, dw_noop_close);
    uv_close((uv_handle_t *)&dw->watchdog, dw_noop_close);
    uv_close((uv_handle_t *)&dw->final, dw_noop_close);
    for (size_t i = 0; i < sizeof(dw->sigs) / sizeof(dw->sigs[0]); i++)
        uv_close((uv_handle_t *)&dw->sigs[i], dw_noop_close);
    dw_server_free_all(dw);
}
