/*
 * control - dpop's control socket: the tellpop commands and live reload. See control.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "session.h"
#include "server.h"
#include "tls.h"
#include "xmem.h"

/* control_cmd_status - who and how we are. */
static void
control_cmd_status(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;
    long now = 0, peak = 0, total = 0;
    char loaded[64];
    struct tm tm;

    net_server_counts(d->net, &now, &peak, &total);
    localtime_r(&d->cf->loaded, &tm);
    strftime(loaded, sizeof(loaded), "%Y-%m-%dT%H:%M:%S%z", &tm);
    ctl_line(r, "pid %ld", (long)getpid());
    ctl_line(r, "version %s", DMAIL_VERSION);
    ctl_line(r, "uptime %lds", (long)(time(NULL) - d->started));
    ctl_line(r, "config %s", d->cf->path);
    ctl_line(r, "loaded %s (reloads %ld)", loaded, d->reloads);
    ctl_line(r, "hostname %s", d->hostname);
    ctl_line(r, "connections now=%ld peak=%ld total=%ld", now, peak, total);
    ctl_line(r, "sessions %ld", d->nsessions);
    ctl_line(r, "users %zu", d->db != NULL ? auth_db_count(d->db) : (size_t)0);
    ctl_line(r, "log_level %s", log_level_name(log_get_level()));
    ctl_ok(r, "dpop %s", d->stopping ? "stopping" : "running");
}

/* control_cmd_stats - the counters, plain or Prometheus. */
static void
control_cmd_stats(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;
    long now = 0, peak = 0, total = 0;
    bool prom;

    if (!ctl_stats_args(r, argc, argv, &prom))
        return;
    net_server_counts(d->net, &now, &peak, &total);
    ctl_stat(r, prom, "dpop", "uptime_seconds", "gauge", "Seconds since dpop started.", NULL,
             (unsigned long long)(time(NULL) - d->started));
    ctl_stat(r, prom, "dpop", "connections", "gauge", "POP3 connections open now.", NULL,
             (unsigned long long)now);
    ctl_stat(r, prom, "dpop", "connections_peak", "gauge", "Most POP3 connections open at once.",
             NULL, (unsigned long long)peak);
    ctl_stat(r, prom, "dpop", "connections_total", "counter", "POP3 connections accepted.", NULL,
             (unsigned long long)total);
    ctl_stat(r, prom, "dpop", "logins_total", "counter", "Logins, by result.", "result=\"ok\"",
             d->stats.logins_ok);
    ctl_stat(r, prom, "dpop", "logins_total", "counter", NULL, "result=\"failed\"",
             d->stats.logins_failed);
    ctl_stat(r, prom, "dpop", "messages_retrieved_total", "counter", "Messages sent by RETR.", NULL,
             d->stats.retrieved);
    ctl_stat(r, prom, "dpop", "messages_deleted_total", "counter", "Messages deleted at UPDATE.",
             NULL, d->stats.deleted);
    ctl_stat(r, prom, "dpop", "sent_bytes_total", "counter", "Bytes sent to POP3 clients.", NULL,
             d->stats.bytes_out);
    ctl_stat(r, prom, "dpop", "retr_windows", "gauge", "RETR read-ahead windows held now.", NULL,
             (unsigned long long)d->ahead_windows);
    ctl_ok(r, "%s", prom ? "" : "dpop counters since start");
}

/* control_cmd_debug - the log level, live. */
static void
control_cmd_debug(struct ctl_req *r, int argc, char **argv, void *arg)
{
    ctl_answer_debug(r, argv[1]);
}

/* control_cmd_config - one setting in force. */
static void
control_cmd_config(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;

    ctl_answer_config(r, d->cf, argv[1]);
}

/* control_cmd_reload - reload. */
static void
control_cmd_reload(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_reload(arg, r);
}

/* control_cmd_shutdown - graceful stop. */
static void
control_cmd_shutdown(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;

    if (d->stopping) {
        ctl_ok(r, "already stopping");
        return;
    }
    log_info("shutdown asked on the control socket (uid %ld)", (long)ctl_uid(r));
    ctl_ok(r, "stopping: no new connections, %ld session%s finishing", d->nsessions,
           d->nsessions == 1 ? "" : "s");
    if (d->shutdown_cb != NULL)
        d->shutdown_cb(d);
}

/* control_cmd_who - the live sessions. */
static void
control_cmd_who(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;
    int n = 0;

    for (struct pop_session *s = d->sessions; s != NULL; s = s->next) {
        if (s->conn == NULL)
            continue;
        ctl_line(r, "%016llx user=%s ip=%s port=%s state=%s tls=%s retr=%lu dele=%lu",
                 (unsigned long long)s->sid, s->login ? s->login : "-", s->ip,
                 s->port == POPD_PORT_POP3S ? "pop3s" : "pop3", session_state_name(s->state),
                 net_is_tls(s->conn) ? "yes" : "no", s->nretr, s->ndele);
        n++;
    }
    ctl_ok(r, "%d session%s", n, n == 1 ? "" : "s");
}

/* control_login_is - whether a session's login names user ("bob" matches "bob@dom"). */
static bool
control_login_is(const char *login, const char *user)
{
    size_t n;

    if (login == NULL)
        return false;
    if (strcasecmp(login, user) == 0)
        return true;
    n = strcspn(login, "@");
    return strchr(user, '@') == NULL && login[n] == '@' && strlen(user) == n &&
           strncasecmp(login, user, n) == 0;
}

/* control_cmd_kick - end USER's sessions without UPDATE. */
static void
control_cmd_kick(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct popd *d = arg;
    int kicked = 0, updating = 0;
    struct pop_session *s, *next;

    for (s = d->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->conn == NULL || s->state == SS_QUIT || !control_login_is(s->login, argv[1]))
            continue;
        if (s->state == SS_UPDATE) {
            updating++;
            continue;
        }
        log_sess(LOGLVL_INFO, s->sid, "kicked by the control socket (uid %ld)", (long)ctl_uid(r));
        kicked++;
        if (s->wait == SW_NONE && !s->in_process) {
            session_err(s, false, "SYS/PERM", "Disconnected by the administrator");
            session_close(s, "kicked");
        } else {
            s->close_reason = "kicked";
            net_abort(s->conn); /* mid-answer: no status line into the stream */
        }
    }
    if (kicked == 0 && updating == 0) {
        ctl_err(r, "no session of %.100s", argv[1]);
        return;
    }
    ctl_ok(r, "%d session%s of %s ended (nothing deleted)%s", kicked, kicked == 1 ? "" : "s",
           argv[1], updating ? "; one is committing its deletions and finishes" : "");
}

static const struct ctl_cmd control_cmds[] = {
    {"status", "", 0, 0, control_cmd_status, "pid, uptime, config, connections now/peak"},
    {"stats", "[-p]", 0, 1, control_cmd_stats, "counters since start (-p: Prometheus format)"},
    {"reload", "", 0, 0, control_cmd_reload, "re-read dmail.conf and the users file"},
    {"shutdown", "", 0, 0, control_cmd_shutdown, "graceful stop"},
    {"debug", "LEVEL", 1, 1, control_cmd_debug, "log level: error warn info debug"},
    {"log_level", "LEVEL", 1, 1, control_cmd_debug, "the same as debug"},
    {"config", "SETTING", 1, 1, control_cmd_config, "a setting's value and origin"},
    {"who", "", 0, 0, control_cmd_who, "live sessions"},
    {"kick", "USER", 1, 1, control_cmd_kick, "end USER's sessions (nothing is deleted)"},
};

/* control_open - the socket. */
int
control_open(struct popd *d, char *err, size_t errlen)
{
    char *path = xasprintf("%s/dpop.ctl", d->cf->work_path);

    d->ctl = ctl_server_new(d->loop, path, control_cmds,
                            sizeof(control_cmds) / sizeof(control_cmds[0]), d, err, errlen);
    free(path);
    if (d->ctl != NULL)
        log_info("control socket %s", ctl_server_path(d->ctl));
    return d->ctl != NULL ? 0 : -1;
}

/* control_close - no more control connections. */
void
control_close(struct popd *d)
{
    ctl_server_close(&d->ctl);
}

/* A reload of dpop: who asked. */
struct control_reload {
    struct popd *d;
    struct ctl_req *r;
};

/* control_reload_done - the loop: put the new snapshots in force, or keep the old. */
static void
control_reload_done(struct ctl_reload *rl, void *arg)
{
    struct control_reload *cr = arg;
    struct popd *d = cr->d;

    d->reloading = false;
    if (ctl_reload_ok(rl) && !d->stopping) {
        ctl_reload_apply(rl, &d->cf, &d->db, &d->tls, d->net);
        server_hostname(d->cf, d->hostname, sizeof(d->hostname));
        d->reloads++;
    }
    if (rl->extra != NULL)
        SSL_CTX_free(rl->extra);
    rl->extra = NULL;
    ctl_reload_report(rl, cr->r);
    ctl_reload_free(&rl);
    free(cr);
    if (d->reload_again && !d->stopping) {
        d->reload_again = false;
        control_reload(d, NULL);
    }
}

/* control_reload - start a reload. */
void
control_reload(struct popd *d, struct ctl_req *r)
{
    struct control_reload *cr;

    if (d->reloading) {
        if (r != NULL)
            ctl_err(r, "a reload is running; try again");
        else
            d->reload_again = true;
        return;
    }
    cr = xcalloc(1, sizeof(*cr));
    cr->d = d;
    cr->r = r;
    d->reloading = true;
    log_info("reloading %s", d->cf->path);
    if (ctl_reload_start(d->loop, d->cf->path, d->cf, true, ctl_reload_tls, control_reload_done,
                         cr) < 0) {
        d->reloading = false;
        free(cr);
        if (r != NULL)
            ctl_err(r, "cannot start the reload");
    }
}
