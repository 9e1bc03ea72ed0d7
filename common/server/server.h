/*
 * server - the server core every dmail daemon embeds: start-up, listeners, the user
 * directory, signals, the control socket with its common commands and live reload, the
 * counters, and the stop sequence. A daemon is a struct server_proto (its ports, its
 * session callbacks, its own control commands, its start and stop) plus its protocol.
 *
 * Contract:
 * - Owns: struct server (one per process, usually the first member of the daemon's own
 *   state: struct smtpd begins with `struct server srv`), its loop, snapshots, TLS
 *   context, net server, control socket and signal handles. Sessions (sess.h) link into
 *   srv->sessions.
 * - Order (STYLE 9.10), all in server_main: server_args -> server_load_config -> log ->
 *   the open files limit raised to max_connections + SERVER_FD_SPARE (or the hard limit;
 *   a warning when short) -> TLS keys and listeners (still root) -> server_drop_privileges ->
 * work_path, control socket, users, signals -> proto->start (as run_as: directories, the daemon's
 *   runners) -> the loop.
 * - Blocks on: file reads and writes at start-up only; on the loop nothing (the reload
 *   parses on the pool, ctl_reload.c).
 * - Stop: SIGTERM/SIGINT or "shutdown" -> server_shutdown (no new connections, idle
 *   sessions told, busy ones finish, SERVER_GRACE_MS at most); a second signal, the last
 *   session's end or the grace's end -> server_finish (proto->stop, then every handle
 *   closes and the loop ends; SIGTERM, SIGINT, SIGHUP and SIGUSR1 are ignored from then
 *   on, so no signal cuts the running jobs short); proto->cleanup after the loop.
 *   SIGHUP -> server_reload.
 * - Control socket work_path/NAME.ctl: status, stats, reload, shutdown, debug,
 *   log_level, config, reopen, showchans (the sessions: peer, listener, state, user,
 *   age), then the daemon's own commands (handlers get the struct
 *   server). SIGUSR1 and "reopen" reopen log_file (server_reopen_log) for logrotate.
 * - Slow clients: a timer sweeps the sessions each second (sess_sweep): a command line
 *   or message line not complete within the session's timeout of its start, or a session
 *   older than max_session_time, is ended as an idle one is. While the sessions exceed
 *   stress_connections % of max_connections, stress_timeout replaces longer timeouts
 *   (Postfix's ${stress}); the last reserved_connections slots are kept for trusted
 *   networks and reserved listeners.
 * - Exit codes: 0 ok, 64 usage (EX_USAGE), 78 bad config (EX_CONFIG), 71 OS error.
 *
 * server.c holds the start-up pieces, server_main.c the run and stop, server_ctl.c the
 * control commands and reload.
 */
#ifndef DMAIL_SERVER_H
#define DMAIL_SERVER_H

#include <stdbool.h>
#include <time.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "conf.h"
#include "ctl.h"
#include "net.h"
#include "sess.h"

#define SERVER_GRACE_MS 30000 /* graceful stop: then sessions are cut */
#define SERVER_PORTS_MAX 4
#define SERVER_FD_SPARE 64 /* descriptors besides the sessions' (listeners, files, DNS) */

struct server;
struct auth_db;
struct auth_cache;
struct server_mgr;
struct extauth;

/* One kind of listener of a daemon ("smtp", "submission"...). */
struct server_port_def {
    const char *name;
    size_t conf_port; /* offsetof(struct conf, the port setting); 0 there = off */
    bool implicit_tls;
    bool reserved; /* may take reserved_connections' slots (clients log in here) */
    bool extra;    /* an optional extra (dlist's HTTP endpoint): off is no warning */
};

/* What a daemon fills in. */
struct server_proto {
    const char *name;     /* "dsmtp": log, NAME.ctl, counters */
    const char *summary;  /* --help */
    const char *protocol; /* "SMTP", in counter help texts */
    const char *no_tls;   /* the warning's end without a certificate: "no STARTTLS..." */
    const struct server_port_def *ports;
    size_t nports;
    bool ports_optional; /* no listener at all is allowed (dsmtp still picks up mail) */
    /* offsetof(struct conf, the daemon's DMail host setting: dsmtp_host, dpop_host), 0 =
     * none; when set to an address it replaces listen for this daemon */
    size_t conf_host;
    size_t conf_mgr_port; /* offsetof(struct conf, the manager port setting); 0: none */
    /* refusal - the line sent when the connection caps are reached (CRLF included). */
    void (*refusal)(struct server *srv, char *buf, size_t len);
    const struct sess_ops *sess;
    const struct ctl_cmd *cmds; /* the daemon's own control commands (may be none) */
    size_t ncmds;
    /* privileged - the last step as root (ports bound), just before dropping to run_as:
     * helpers that must keep root (may be NULL; not called when not started as root). */
    void (*privileged)(struct server *srv);
    /* start - as run_as, before the loop: directories, runners. Fatal errors exit. */
    void (*start)(struct server *srv);
    /* status / stats - the daemon's own lines after the common ones (may be NULL). */
    void (*status)(struct server *srv, struct ctl_req *r);
    void (*stats)(struct server *srv, struct ctl_req *r, bool prom);
    /* sess_user - the user a session has logged in as, or NULL (showchans; may be NULL). */
    const char *(*sess_user)(struct sess *s);
    /* stop - server_finish: stop the daemon's runners (may be NULL). */
    void (*stop)(struct server *srv);
    /* cleanup - after the loop: free what start made (may be NULL). */
    void (*cleanup)(struct server *srv);
};

/* A listener kind as opened: what sess_accept gets. */
struct server_port {
    struct server *srv;
    const struct server_port_def *def;
};

struct server {
    const struct server_proto *proto;
    uv_loop_t *loop;
    struct conf *cf;    /* the snapshots new sessions and jobs take references from */
    struct auth_db *db; /* the user directory */
    struct auth_cache *cache;
    struct extauth *ext; /* authent_method external: the helpers (extauth.h), else NULL */
    SSL_CTX *tls;        /* NULL: no STARTTLS/STLS, no implicit-TLS listener */
    struct net_server *net;
    struct server_port ports[SERVER_PORTS_MAX];
    char hostname[256];
    struct sess *sessions; /* every live session */
    long nsessions;
    long jobs; /* thread-pool jobs that must end before the loop can (status, stop log) */
    unsigned long long bytes_out; /* reply and body bytes sent to clients */
    struct ctl_server *ctl;
    struct server_mgr *mgr; /* the manager port (server_mgr.h), or NULL */
    struct ctl_cmd *cmds;   /* the common commands and the daemon's */
    time_t started;
    long reloads;
    bool stopping, finished;
    bool suspended;    /* server_suspend_accept: new connections wait in the backlog */
    bool reloading;    /* a reload job runs */
    bool reload_again; /* SIGHUP during a reload: once more after it */
    uv_signal_t sig[5];
    uv_timer_t grace;
    uv_timer_t sweep; /* each second: deadlines and stress (sess_sweep) */
    bool stressed;    /* sessions above stress_connections % of max_connections */
    /* min_space (space.c): the last free-space check found too little; a check runs */
    bool space_low, space_running;
    uint64_t space_next_ms;
};

struct server_opts {
    const char *prog;      /* "dsmtp" */
    const char *conf_path; /* resolved through conf_default_path */
    bool foreground;       /* -f: stay in the foreground, log to stderr */
    bool test_only;        /* -t: check the config and exit */
};

/* server_args - parse NAME [-c FILE | -i FILE] [-f] [-t] [--help] [--version]. Prints
 * usage and exits 64 on a bad flag; --help / --version print and exit 0. Flags may be
 * grouped (-ft, -fc FILE, -cFILE). Also calls log_init(prog, foreground). */
void server_args(int argc, char **argv, const char *prog, const char *summary,
                 struct server_opts *o);

/* server_load_config - load o->conf_path, print every diagnostic to stderr (and a count
 * line "PROG: PATH: N errors, M warnings" when there were any); with -t exit 0 (clean or
 * warnings only) or 78 (errors); otherwise return the snapshot, or exit 78 on errors.
 * Also sets the log level from log_level. */
struct conf *server_load_config(const struct server_opts *o);

/* server_drop_privileges - if running as root: look up run_as, initgroups, setresgid,
 * setresuid, and verify root cannot be regained. Refuses to go on as root (run_as "root",
 * or any uid 0 account, is an error). Not root: nothing to do. Returns 0, or -1 with err
 * filled on any failure; the caller must then treat it as fatal (log_fatal). */
int server_drop_privileges(const char *run_as, char *err, size_t errlen);

/* server_hostname - the name a server greets with into buf: the hostname setting, else
 * the system's name, else main_domain. */
void server_hostname(const struct conf *cf, char *buf, size_t len);

/* server_pidfile - write the pid to path (atomically); 0 or -1. */
int server_pidfile(const char *path);

/* server_main - the whole life of a daemon (see Order and Stop); returns its exit code.
 * srv must be zeroed; it lives until main returns. */
int server_main(struct server *srv, const struct server_proto *proto, int argc, char **argv);
/* server_shutdown - graceful stop (once). */
void server_shutdown(struct server *srv);
/* server_finish - stop now: proto->stop, then close every handle (once). */
void server_finish(struct server *srv);
/* server_reopen_log - SIGUSR1 (r NULL) or "reopen": log_file opened again (log_reopen) and
 * the outcome logged, and answered on r. Logging to stderr (-f) or syslog: nothing to do. */
void server_reopen_log(struct server *srv, struct ctl_req *r);
/* server_reload - reload dmail.conf and the users on the pool and put them in force if
 * clean; r is the asking control client or NULL (SIGHUP: a reload asked while one runs
 * is done once more after it). */
void server_reload(struct server *srv, struct ctl_req *r);
/* server_suspend_accept - suspend (on) or resume accepting new connections on the
 * daemon's listeners (not the manager port): open sessions go on, new clients wait in the
 * kernel's backlog; logged, and shown by status and showchans. */
void server_suspend_accept(struct server *srv, bool on);
/* server_ctl_open - the control socket (after the privilege drop); 0 or -1 with err. */
int server_ctl_open(struct server *srv, char *err, size_t errlen);

#endif
