/*
 * server_main - a daemon's life: start-up in order, listeners, the user directory,
 * signals, graceful stop and finish. See server.h.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "auth.h"
#include "extauth.h"
#include "file.h"
#include "log.h"
#include "server.h"
#include "space.h"
#include "server_mgr.h"
#include "tls.h"
#include "xmem.h"

#define SERVER_EX_CONFIG 78

/* server_tls - the server context, or NULL (with a warning) when no certificate is set. */
static void
server_tls(struct server *srv)
{
    const struct conf *cf = srv->cf;
    char err[300];

    bool serves = false;

    for (size_t i = 0; i < srv->proto->nports; i++) {
        const struct server_port_def *def = &srv->proto->ports[i];
        serves |= !def->extra || *(const long *)((const char *)cf + def->conf_port) != 0;
    }
    if (!serves)
        return; /* no listener (dlist without its HTTP endpoint) serves no TLS */
    if (cf->tls_cert == NULL || cf->tls_cert[0] == '\0' || cf->tls_key == NULL ||
        cf->tls_key[0] == '\0') {
        log_warn("tls_cert/tls_key not set: %s", srv->proto->no_tls);
        return;
    }
    struct tls_policy pol;

    conf_tls_policy(cf, &pol);
    srv->tls = tls_server_ctx(cf->tls_cert, cf->tls_key, &pol, err, sizeof(err));
    if (srv->tls == NULL)
        log_fatal("%s", err);
}

/* server_listen - every listen address (or the daemon's host setting) x every configured
 * port of the daemon. */
static void
server_listen(struct server *srv)
{
    const struct server_proto *p = srv->proto;
    char refuse[300], err[300];
    int total = 0, idx = 0;  /* idx: net_listen order of the listeners opened */
    bool main_kinds = false; /* a listener kind that is not an optional extra */
    struct conf_list addrs = srv->cf->listen;
    char *host = p->conf_host ? *(char **)((char *)srv->cf + p->conf_host) : NULL;

    if (host != NULL && *host != '\0')
        addrs = (struct conf_list){1, &host};

    p->refusal(srv, refuse, sizeof(refuse));
    for (size_t i = 0; i < p->nports && i < SERVER_PORTS_MAX; i++) {
        const struct server_port_def *def = &p->ports[i];
        long port = *(const long *)((const char *)srv->cf + def->conf_port);
        int ok = 0;

        srv->ports[i].srv = srv;
        srv->ports[i].def = def;
        main_kinds |= !def->extra;
        if (port == 0 || (def->implicit_tls && srv->tls == NULL))
            continue;
        for (size_t a = 0; a < addrs.n; a++) {
            const char *addr = addrs.v[a];
            if (net_listen(srv->net, addr, (int)port, def->implicit_tls ? srv->tls : NULL, refuse,
                           sess_accept, &srv->ports[i], err, sizeof(err)) < 0) {
                log_warn("%s listener %s port %ld: %s", def->name, addr, port, err);
                continue;
            }
            net_listener_set_reserved(srv->net, idx++, def->reserved);
            log_info("%s listening on %s port %ld", def->name, addr, port);
            ok++;
        }
        if (ok == 0)
            log_fatal("%s: no listener on port %ld could be opened", def->name, port);
        total += ok;
    }
    if (total == 0 && !p->ports_optional)
        log_fatal("no listener configured (all ports 0)");
    if (total == 0 && main_kinds) /* only optional extras (dlist's): nothing to say */
        log_warn("no listener configured (all ports 0)");
}

/* server_users - the user directory: the users file or the Unix accounts. */
static void
server_users(struct server *srv)
{
    const struct conf *cf = srv->cf;
    struct conf_diag diag = {0};

    if (cf->authent_method == AUTHENT_EXTERNAL) {
        char err[200];
        srv->db = auth_db_external(); /* no file users: the helpers answer */
        srv->ext = extauth_new(srv->loop, cf->authent_process, (int)cf->authent_number,
                               cf->authent_timeout, err, sizeof(err));
        if (srv->ext == NULL)
            log_fatal("authent_method external: %s", err);
        return;
    }
    if (cf->authent_method == AUTHENT_UNIX_USER) {
        srv->db = auth_db_unix(cf->mail_spool);
        log_info("users: Unix accounts, mailboxes in %s", cf->mail_spool);
        return;
    }
    srv->db = auth_db_load(cf->users_file, &diag);
    for (size_t i = 0; i < diag.n; i++)
        log_warn("%s", diag.msgs[i]);
    conf_diag_free(&diag);
    if (srv->db == NULL)
        log_fatale("cannot read users file %s", cf->users_file);
    log_info("users file %s: %zu users", cf->users_file, auth_db_count(srv->db));
}

/* server_trusted - forward_from_ip (relay_allow) of the config in force: exempt from
 * max_per_ip, as Postfix exempts $mynetworks. */
static bool
server_trusted(void *arg, const char *ip)
{
    const struct server *srv = arg;

    return conf_ip_match(&srv->cf->forward_from_ip, ip);
}

/* server_close_cb - nothing to free: the handles live in struct server. */
static void
server_close_cb(uv_handle_t *h)
{
    (void)h;
}

/* server_finish - stop everything; the loop ends when the last handle and job are done. */
void
server_finish(struct server *srv)
{
    if (srv->finished)
        return;
    srv->finished = true;
    log_info("stopping: sessions=%ld jobs running=%ld", srv->nsessions, srv->jobs);
    for (size_t i = 0; i < sizeof(srv->sig) / sizeof(srv->sig[0]); i++)
        uv_close((uv_handle_t *)&srv->sig[i], server_close_cb);
    /* closing the handles gave the signals their default action back, which would kill
     * the process before its running jobs end (dwatch's SIGTERM after a Ctrl-C that
     * reached both, logrotate's SIGUSR1): from here the finish is not interrupted */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    uv_close((uv_handle_t *)&srv->grace, server_close_cb);
    uv_close((uv_handle_t *)&srv->sweep, server_close_cb);
    if (srv->proto->stop != NULL)
        srv->proto->stop(srv);
    server_mgr_close(&srv->mgr);
    extauth_stop(&srv->ext);
    ctl_server_close(&srv->ctl);
    net_server_free(&srv->net);
}

/* server_sweep_cb - each second: stress on or off, then every session's deadlines. */
static void
server_sweep_cb(uv_timer_t *t)
{
    struct server *srv = t->data;
    const struct conf *cf = srv->cf;
    bool stressed = cf->stress_connections > 0 &&
                    srv->nsessions * 100 >= cf->max_connections * cf->stress_connections;
    uint64_t now = uv_now(srv->loop);

    space_tick(srv);
    if (stressed != srv->stressed) {
        srv->stressed = stressed;
        if (stressed)
            log_warn("stress: %ld sessions (max_connections %ld): timeouts shortened to %ld s",
                     srv->nsessions, cf->max_connections, cf->stress_timeout);
        else
            log_info("stress over: %ld sessions", srv->nsessions);
    }
    for (struct sess *s = srv->sessions, *next; s != NULL; s = next) {
        next = s->next;
        sess_sweep(s, now, stressed ? (uint64_t)cf->stress_timeout * 1000 : 0);
    }
}

/* server_nofile - raise the descriptor limit to its hard limit (root may raise the hard
 * one up to max_connections' need), as Postfix's master and Dovecot do; warn when
 * max_connections cannot be reached with it. Each session costs one descriptor, plus the
 * listeners, the control socket, the log, the resolver and the pool's files. */
static void
server_nofile(const struct conf *cf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cf->max_connections + SERVER_FD_SPARE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) /* root */
            rl = up;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        log_warn("open files limit %llu is below max_connections %ld + %d: clients beyond it "
                 "wait until a descriptor is free (raise LimitNOFILE / ulimit -n)",
                 (unsigned long long)rl.rlim_cur, cf->max_connections, SERVER_FD_SPARE);
}

/* server_grace_cb - sessions had their time. */
static void
server_grace_cb(uv_timer_t *t)
{
    struct server *srv = t->data;

    log_info("grace period over, closing %ld sessions", srv->nsessions);
    server_finish(srv);
}

/* server_shutdown - graceful stop: no new connections, sessions finish. */
void
server_shutdown(struct server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    net_server_stop_listening(srv->net);
    sess_shutdown_all(srv);
    if (srv->nsessions == 0)
        server_finish(srv);
    else
        uv_timer_start(&srv->grace, server_grace_cb, SERVER_GRACE_MS, 0);
}

/* server_signal - SIGTERM/SIGINT: graceful stop (twice: at once); SIGHUP: reload;
 * SIGUSR1: reopen log_file. */
static void
server_signal(uv_signal_t *h, int sig)
{
    struct server *srv = h->data;

    if (sig == SIGHUP) {
        log_info("SIGHUP: reloading the configuration");
        server_reload(srv, NULL);
        return;
    }
    if (sig == SIGPIPE)
        return;
    if (sig == SIGUSR1) {
        server_reopen_log(srv, NULL);
        return;
    }
    if (srv->stopping) {
        log_info("signal %d again: stopping now", sig);
        server_finish(srv);
        return;
    }
    log_info("signal %d: stopping gracefully", sig);
    server_shutdown(srv);
}

/* server_signals - watch the signals on the loop. */
static void
server_signals(struct server *srv)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGUSR1};

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        uv_signal_init(srv->loop, &srv->sig[i]);
        srv->sig[i].data = srv;
        uv_signal_start(&srv->sig[i], server_signal, sigs[i]);
    }
    uv_timer_init(srv->loop, &srv->grace);
    srv->grace.data = srv;
    uv_timer_init(srv->loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, server_sweep_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->sweep); /* never what keeps the loop alive */
}

/* server_main - a daemon, from the command line to the end of its loop. */
int
server_main(struct server *srv, const struct server_proto *proto, int argc, char **argv)
{
    struct server_opts o;
    struct net_limits lim;
    char err[300], threads[32];

    srv->proto = proto;
    server_args(argc, argv, proto->name, proto->summary, &o);
    srv->cf = server_load_config(&o);
    log_init(proto->name, o.foreground);
    log_set_level(srv->cf->log_level);
    if (log_open(srv->cf->log_file) < 0)
        log_fatale("cannot open log %s", srv->cf->log_file);
    snprintf(threads, sizeof(threads), "%ld", srv->cf->io_threads);
    setenv("UV_THREADPOOL_SIZE", threads, 1); /* before the first uv_queue_work */
    /* the pool threads only hold short-lived buffers: glibc's arena per thread (up to
     * 8 per core) would cost megabytes of resident memory for nothing, and even a second
     * arena held about 0.6 MB while relaying (bench/README.md, relay 2026-12-04) */
    mallopt(M_ARENA_MAX, 1);
    signal(SIGPIPE, SIG_IGN);

    srv->loop = uv_default_loop();
    srv->started = time(NULL);
    server_hostname(srv->cf, srv->hostname, sizeof(srv->hostname));
    server_nofile(srv->cf);
    server_tls(srv);
    lim.max_connections = srv->cf->max_connections;
    lim.max_per_ip = srv->cf->max_per_ip;
    lim.reserved = srv->cf->reserved_connections;
    srv->net = net_server_new(srv->loop, &lim);
    net_server_set_trusted(srv->net, server_trusted, srv);
    server_listen(srv);
    srv->mgr = server_mgr_open(srv);

    if (proto->privileged != NULL && geteuid() == 0)
        proto->privileged(srv);
    /* privileged part done */
    if (server_drop_privileges(srv->cf->run_as, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    /* unprivileged from here */

    if (file_mkdirs(srv->cf->work_path, 0700) < 0)
        log_fatale("cannot create %s", srv->cf->work_path);
    if (server_ctl_open(srv, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    server_users(srv);
    srv->cache = auth_cache_new();
    server_signals(srv);
    space_start(srv);
    if (proto->start != NULL)
        proto->start(srv);
    log_info("%s %s started as %s, config %s, io_threads %ld", proto->name, DMAIL_VERSION,
             srv->hostname, srv->cf->path, srv->cf->io_threads);

    uv_run(srv->loop, UV_RUN_DEFAULT);

    log_info("%s stopped", proto->name);
    uv_loop_close(srv->loop);
    if (proto->cleanup != NULL)
        proto->cleanup(srv);
    auth_cache_free(&srv->cache);
    auth_db_unref(&srv->db);
    if (srv->tls != NULL)
        SSL_CTX_free(srv->tls);
    free(srv->cmds);
    conf_unref(&srv->cf);
    return 0;
}
