/*
 * server_ctl - a daemon's control socket: the commands every server answers (status,
 * stats, reload, shutdown, debug, log_level, config) followed by the daemon's own, and
 * the live reload. See server.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "server.h"
#include "server_mgr.h"
#include "xmem.h"

/* server_ctl_status - who and how we are. */
static void
server_ctl_status(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;
    long now = 0, peak = 0, total = 0;
    char loaded[64];
    struct tm tm;

    net_server_counts(srv->net, &now, &peak, &total);
    localtime_r(&srv->cf->loaded, &tm);
    strftime(loaded, sizeof(loaded), "%Y-%m-%dT%H:%M:%S%z", &tm);
    ctl_line(r, "pid %ld", (long)getpid());
    ctl_line(r, "version %s", DMAIL_VERSION);
    ctl_line(r, "uptime %lds", (long)(time(NULL) - srv->started));
    ctl_line(r, "config %s", srv->cf->path);
    ctl_line(r, "loaded %s (reloads %ld)", loaded, srv->reloads);
    ctl_line(r, "hostname %s", srv->hostname);
    ctl_line(r, "connections now=%ld peak=%ld total=%ld", now, peak, total);
    ctl_line(r, "sessions %ld", srv->nsessions);
    if (srv->proto->status != NULL)
        srv->proto->status(srv, r);
    ctl_line(r, "users %zu", srv->db != NULL ? auth_db_count(srv->db) : (size_t)0);
    ctl_line(r, "log_level %s", log_level_name(log_get_level()));
    ctl_line(r, "accepting %s", srv->suspended ? "suspended" : "yes");
    ctl_ok(r, "%s %s", srv->proto->name,
           srv->stopping    ? "stopping"
           : srv->suspended ? "running, accepting suspended"
                            : "running");
}

/* server_suspend_accept - no new connections (or again). */
void
server_suspend_accept(struct server *srv, bool on)
{
    if (srv->suspended == on || srv->stopping)
        return;
    srv->suspended = on;
    net_server_suspend(srv->net, on);
    if (on)
        log_info("accepting suspended: new connections wait, %ld session%s go on", srv->nsessions,
                 srv->nsessions == 1 ? "" : "s");
    else
        log_info("accepting resumed");
}

/* server_ctl_showchans - DMail's showchans: every session now. */
static void
server_ctl_showchans(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;
    uint64_t now = uv_now(srv->loop);
    long n = 0;

    for (struct sess *s = srv->sessions; s != NULL; s = s->next) {
        const char *user = srv->proto->sess_user != NULL ? srv->proto->sess_user(s) : NULL;
        const struct server_port *pt =
            s->port >= 0 && s->port < SERVER_PORTS_MAX ? &srv->ports[s->port] : NULL;
        char esc[128];
        ctl_line(r, "%016llx %s port=%d listener=%s state=%s user=%s tls=%s age=%llus",
                 (unsigned long long)s->sid, s->ip, s->conn != NULL ? net_peer_port(s->conn) : 0,
                 pt != NULL && pt->def != NULL ? pt->def->name : "?", sess_state_name(s),
                 user != NULL && user[0] ? log_escape(esc, sizeof(esc), user, strlen(user), 100)
                                         : "-",
                 s->conn != NULL && net_is_tls(s->conn) ? "yes" : "no",
                 (unsigned long long)((now - s->born_ms) / 1000));
        n++;
    }
    ctl_ok(r, "%ld session%s%s", n, n == 1 ? "" : "s",
           srv->suspended ? " (accepting suspended)" : "");
}

/* server_ctl_stats - the counters, plain or Prometheus. */
static void
server_ctl_stats(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;
    const char *name = srv->proto->name, *proto = srv->proto->protocol;
    long now = 0, peak = 0, total = 0;
    char help[4][96];
    bool prom;

    if (!ctl_stats_args(r, argc, argv, &prom))
        return;
    net_server_counts(srv->net, &now, &peak, &total);
    snprintf(help[0], sizeof(help[0]), "Seconds since %s started.", name);
    snprintf(help[1], sizeof(help[1]), "%s connections open now.", proto);
    snprintf(help[2], sizeof(help[2]), "Most %s connections open at once.", proto);
    snprintf(help[3], sizeof(help[3]), "%s connections accepted.", proto);
    ctl_stat(r, prom, name, "uptime_seconds", "gauge", help[0], NULL,
             (unsigned long long)(time(NULL) - srv->started));
    ctl_stat(r, prom, name, "connections", "gauge", help[1], NULL, (unsigned long long)now);
    ctl_stat(r, prom, name, "connections_peak", "gauge", help[2], NULL, (unsigned long long)peak);
    ctl_stat(r, prom, name, "connections_total", "counter", help[3], NULL,
             (unsigned long long)total);
    if (srv->proto->stats != NULL)
        srv->proto->stats(srv, r, prom);
    ctl_ok(r, "%s%s", prom ? "" : name, prom ? "" : " counters since start");
}

/* server_ctl_debug - the log level, live. */
static void
server_ctl_debug(struct ctl_req *r, int argc, char **argv, void *arg)
{
    ctl_answer_debug(r, argv[1]);
}

/* server_ctl_config - one setting in force. */
static void
server_ctl_config(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;

    ctl_answer_config(r, srv->cf, argv[1]);
}

/* server_ctl_reload - reload. */
static void
server_ctl_reload(struct ctl_req *r, int argc, char **argv, void *arg)
{
    server_reload(arg, r);
}

/* server_ctl_shutdown - graceful stop. */
static void
server_ctl_shutdown(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;

    if (srv->stopping) {
        ctl_ok(r, "already stopping");
        return;
    }
    log_info("shutdown asked on the control socket (uid %ld)", (long)ctl_uid(r));
    ctl_ok(r, "stopping: no new connections, %ld session%s finishing", srv->nsessions,
           srv->nsessions == 1 ? "" : "s");
    server_shutdown(srv);
}

/* server_reopen_log - log_file opened again, for logrotate's postrotate. */
void
server_reopen_log(struct server *srv, struct ctl_req *r)
{
    int rc = log_reopen();
    int e = errno;

    (void)srv;
    if (rc > 0) {
        log_info("log file %s reopened%s", log_path(), r != NULL ? "" : " (SIGUSR1)");
        if (r != NULL)
            ctl_ok(r, "log file %s reopened", log_path());
    } else if (rc == 0) {
        log_info("reopen: no log file in use (logging to stderr or syslog)");
        if (r != NULL)
            ctl_ok(r, "no log file to reopen (logging to stderr or syslog)");
    } else {
        log_warn("cannot reopen log file %s: %s; still writing to the old one", log_path(),
                 strerror(e));
        if (r != NULL)
            ctl_err(r, "cannot reopen log file %s: %s", log_path(), strerror(e));
    }
}

/* server_ctl_reopen - reopen log_file. */
static void
server_ctl_reopen(struct ctl_req *r, int argc, char **argv, void *arg)
{
    server_reopen_log(arg, r);
}

static const struct ctl_cmd server_ctl_cmds[] = {
    {"status", "", 0, 0, server_ctl_status, "pid, uptime, config, connections now/peak"},
    {"stats", "[-p]", 0, 1, server_ctl_stats, "counters since start (-p: Prometheus format)"},
    {"reload", "", 0, 0, server_ctl_reload, "re-read dmail.conf and the users file"},
    {"clear_cache_all", "", 0, 0, server_ctl_reload, "the same as reload (DMail's name)"},
    {"shutdown", "", 0, 0, server_ctl_shutdown, "graceful stop"},
    {"debug", "LEVEL", 1, 1, server_ctl_debug, "log level: error warn info debug"},
    {"log_level", "LEVEL", 1, 1, server_ctl_debug, "the same as debug"},
    {"config", "SETTING", 1, 1, server_ctl_config, "a setting's value and origin"},
    {"reopen", "", 0, 0, server_ctl_reopen, "reopen log_file (logrotate's postrotate)"},
    {"showchans", "", 0, 0, server_ctl_showchans,
     "sessions now: id, peer, listener, state, user, age"},
};

#define SERVER_CTL_NCMDS (sizeof(server_ctl_cmds) / sizeof(server_ctl_cmds[0]))

/* server_ctl_open - the socket, with the common commands and the daemon's. */
int
server_ctl_open(struct server *srv, char *err, size_t errlen)
{
    const struct server_proto *p = srv->proto;
    size_t n = SERVER_CTL_NCMDS + p->ncmds;
    char *path = xasprintf("%s/%s.ctl", srv->cf->work_path, p->name);

    srv->cmds = xcalloc(n, sizeof(*srv->cmds));
    memcpy(srv->cmds, server_ctl_cmds, sizeof(server_ctl_cmds));
    if (p->ncmds > 0)
        memcpy(srv->cmds + SERVER_CTL_NCMDS, p->cmds, p->ncmds * sizeof(*p->cmds));
    srv->ctl = ctl_server_new(srv->loop, path, srv->cmds, n, srv, err, errlen);
    free(path);
    if (srv->ctl != NULL)
        log_info("control socket %s", ctl_server_path(srv->ctl));
    return srv->ctl != NULL ? 0 : -1;
}

/* A reload: who asked. */
struct server_reload_req {
    struct server *srv;
    struct ctl_req *r;
};

/* server_reload_done - the loop: put the new snapshots in force, or keep the old. */
static void
server_reload_done(struct ctl_reload *rl, void *arg)
{
    struct server_reload_req *rq = arg;
    struct server *srv = rq->srv;

    srv->reloading = false;
    if (ctl_reload_ok(rl) && !srv->stopping) {
        ctl_reload_apply(rl, &srv->cf, &srv->db, &srv->tls, srv->net);
        server_hostname(srv->cf, srv->hostname, sizeof(srv->hostname));
        server_mgr_reload(srv->mgr);
        srv->reloads++;
    }
    if (rl->extra != NULL)
        SSL_CTX_free(rl->extra);
    rl->extra = NULL;
    ctl_reload_report(rl, rq->r);
    ctl_reload_free(&rl);
    free(rq);
    if (srv->reload_again && !srv->stopping) {
        srv->reload_again = false;
        server_reload(srv, NULL);
    }
}

/* server_reload - start a reload. */
void
server_reload(struct server *srv, struct ctl_req *r)
{
    struct server_reload_req *rq;

    if (srv->reloading) {
        if (r != NULL)
            ctl_err(r, "a reload is running; try again");
        else
            srv->reload_again = true;
        return;
    }
    rq = xcalloc(1, sizeof(*rq));
    rq->srv = srv;
    rq->r = r;
    srv->reloading = true;
    log_info("reloading %s", srv->cf->path);
    if (ctl_reload_start(srv->loop, srv->cf->path, srv->cf, true, ctl_reload_tls,
                         server_reload_done, rq) < 0) {
        srv->reloading = false;
        free(rq);
        if (r != NULL)
            ctl_err(r, "cannot start the reload");
    }
}
