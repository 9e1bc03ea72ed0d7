/*
 * dpop - dmail's POP3 server: start-up, listeners, signals, shutdown.
 *
 * Start-up order (STYLE 9.10): command line -> config -> log -> TLS keys and listeners
 * (privileged) -> drop to run_as -> work directories, users file -> loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conf.h"
#include "control.h"
#include "file.h"
#include "log.h"
#include "mailbox.h"
#include "net.h"
#include "penalty.h"
#include "popd.h"
#include "server.h"
#include "session.h"
#include "tls.h"
#include "xmem.h"

#define MAIN_GRACE_MS 30000 /* graceful stop: then sessions are cut */

static struct popd main_d;
static uv_signal_t main_sig[4];
static uv_timer_t main_grace;
static bool main_finished;

/* main_tls - the server context, or NULL (with a warning) when no certificate is set. */
static void
main_tls(struct popd *d)
{
    char err[300];

    if (d->cf->tls_cert == NULL || d->cf->tls_cert[0] == '\0' || d->cf->tls_key == NULL ||
        d->cf->tls_key[0] == '\0') {
        log_warn("tls_cert/tls_key not set: no STLS, no POP3S listener");
        return;
    }
    d->tls = tls_server_ctx(d->cf->tls_cert, d->cf->tls_key, err, sizeof(err));
    if (d->tls == NULL)
        log_fatal("%s", err);
}

/* main_listen - every listen address x every configured port. */
static void
main_listen(struct popd *d)
{
    const struct {
        enum popd_port kind;
        long port;
        const char *name;
    } ports[] = {
        {POPD_PORT_POP3, d->cf->pop_port, "pop3"},
        {POPD_PORT_POP3S, d->cf->pop3s_port, "pop3s"},
    };
    char err[300];
    int total = 0;

    for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++) {
        int ok = 0;
        if (ports[p].port == 0 || (ports[p].kind == POPD_PORT_POP3S && d->tls == NULL))
            continue;
        d->listeners[ports[p].kind].d = d;
        d->listeners[ports[p].kind].kind = ports[p].kind;
        for (size_t a = 0; a < d->cf->listen.n; a++) {
            const char *addr = d->cf->listen.v[a];
            int rc = net_listen(d->net, addr, (int)ports[p].port,
                                ports[p].kind == POPD_PORT_POP3S ? d->tls : NULL,
                                "-ERR [SYS/TEMP] Too many connections, try later\r\n",
                                session_accept, &d->listeners[ports[p].kind], err, sizeof(err));
            if (rc < 0) {
                log_warn("%s listener %s port %ld: %s", ports[p].name, addr, ports[p].port, err);
                continue;
            }
            log_info("%s listening on %s port %ld", ports[p].name, addr, ports[p].port);
            ok++;
        }
        if (ok == 0)
            log_fatal("%s: no listener on port %ld could be opened", ports[p].name, ports[p].port);
        total += ok;
    }
    if (total == 0)
        log_fatal("no listener configured (pop_port and pop3s_port are 0)");
}

/* main_dirs - the work directory and the mailbox index directory (as run_as). */
static void
main_dirs(struct popd *d)
{
    d->index_dir = xasprintf("%s/dpop/index", d->cf->work_path);
    d->bulletin_dir = xasprintf("%s/dpop/bulletins", d->cf->work_path);
    if (file_mkdirs(d->index_dir, 0700) < 0)
        log_fatale("cannot create %s", d->index_dir);
    if (file_mkdirs(d->bulletin_dir, 0700) < 0)
        log_fatale("cannot create %s", d->bulletin_dir);
}

/* main_users - the user directory: the users file or the Unix accounts. */
static void
main_users(struct popd *d)
{
    struct conf_diag diag = {0};

    if (d->cf->authent_method == AUTHENT_UNIX_USER) {
        d->db = auth_db_unix(d->cf->mail_spool);
        log_info("users: Unix accounts, mailboxes in %s", d->cf->mail_spool);
        return;
    }
    if (d->cf->authent_method != AUTHENT_USERS_FILE)
        log_warn("authent_method: only users_file and unix_user are supported so far; using %s",
                 d->cf->users_file);
    d->db = auth_db_load(d->cf->users_file, &diag);
    for (size_t i = 0; i < diag.n; i++)
        log_warn("%s", diag.msgs[i]);
    conf_diag_free(&diag);
    if (d->db == NULL)
        log_fatale("cannot read users file %s", d->cf->users_file);
    log_info("users file %s: %zu users", d->cf->users_file, auth_db_count(d->db));
}

/* main_close_cb - nothing to free: the handles are static. */
static void
main_close_cb(uv_handle_t *h)
{
    (void)h;
}

/* main_finish - stop everything; the loop ends when the last handle and job are done. */
static void
main_finish(struct popd *d)
{
    if (main_finished)
        return;
    main_finished = true;
    log_info("stopping: sessions=%ld jobs running=%ld", d->nsessions, d->jobs);
    for (size_t i = 0; i < sizeof(main_sig) / sizeof(main_sig[0]); i++)
        uv_close((uv_handle_t *)&main_sig[i], main_close_cb);
    uv_close((uv_handle_t *)&main_grace, main_close_cb);
    control_close(d);
    net_server_free(&d->net);
}

/* main_idle - the last session ended during a graceful stop. */
static void
main_idle(struct popd *d)
{
    main_finish(d);
}

/* main_grace_cb - sessions had their time. */
static void
main_grace_cb(uv_timer_t *t)
{
    (void)t;
    log_info("grace period over, closing %ld sessions", main_d.nsessions);
    main_finish(&main_d);
}

/* main_shutdown - graceful stop: no new connections, sessions finish (SIGTERM, shutdown). */
static void
main_shutdown(struct popd *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    net_server_stop_listening(d->net);
    session_shutdown(d);
    if (d->nsessions == 0)
        main_finish(d);
    else
        uv_timer_start(&main_grace, main_grace_cb, MAIN_GRACE_MS, 0);
}

/* main_signal - SIGTERM/SIGINT: graceful stop (twice: at once); SIGHUP: reload. */
static void
main_signal(uv_signal_t *h, int sig)
{
    struct popd *d = &main_d;

    (void)h;
    if (sig == SIGHUP) {
        log_info("SIGHUP: reloading the configuration");
        control_reload(d, NULL);
        return;
    }
    if (sig == SIGPIPE)
        return;
    if (d->stopping) {
        log_info("signal %d again: stopping now", sig);
        main_finish(d);
        return;
    }
    log_info("signal %d: stopping gracefully", sig);
    main_shutdown(d);
}

/* main_signals - watch the signals on the loop. */
static void
main_signals(uv_loop_t *loop)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        uv_signal_init(loop, &main_sig[i]);
        uv_signal_start(&main_sig[i], main_signal, sigs[i]);
    }
    uv_timer_init(loop, &main_grace);
}

/* main - dpop. */
int
main(int argc, char **argv)
{
    struct server_opts o;
    struct popd *d = &main_d;
    struct net_limits lim;
    char err[300], threads[32];

    server_args(argc, argv, "dpop", "dmail POP3 server: serves the mailboxes dsmtp delivers to",
                &o);
    d->cf = server_load_config(&o);
    log_init("dpop", o.foreground);
    log_set_level(d->cf->log_level);
    if (log_open(d->cf->log_file) < 0)
        log_fatale("cannot open log %s", d->cf->log_file);
    snprintf(threads, sizeof(threads), "%ld", d->cf->io_threads);
    setenv("UV_THREADPOOL_SIZE", threads, 1); /* before the first uv_queue_work */
    signal(SIGPIPE, SIG_IGN);

    d->loop = uv_default_loop();
    d->idle_cb = main_idle;
    d->shutdown_cb = main_shutdown;
    d->started = time(NULL);
    server_hostname(d->cf, d->hostname, sizeof(d->hostname));
    main_tls(d);
    lim.max_connections = d->cf->max_connections;
    lim.max_per_ip = d->cf->max_per_ip;
    d->net = net_server_new(d->loop, &lim);
    main_listen(d);

    /* privileged part done */
    if (server_drop_privileges(d->cf->run_as, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    /* unprivileged from here */

    main_dirs(d);
    if (control_open(d, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    main_users(d);
    d->cache = auth_cache_new();
    d->penalty = penalty_new();
    d->inuse = mailbox_inuse_new();
    main_signals(d->loop);
    log_info("dpop %s started as %s, config %s, io_threads %ld", DMAIL_VERSION, d->hostname,
             d->cf->path, d->cf->io_threads);

    uv_run(d->loop, UV_RUN_DEFAULT);

    log_info("dpop stopped");
    uv_loop_close(d->loop);
    mailbox_inuse_free(&d->inuse);
    penalty_free(&d->penalty);
    auth_cache_free(&d->cache);
    auth_db_unref(&d->db);
    if (d->tls != NULL)
        SSL_CTX_free(d->tls);
    free(d->index_dir);
    free(d->bulletin_dir);
    conf_unref(&d->cf);
    return 0;
}
