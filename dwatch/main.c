/*
 * dwatch - dmail's supervisor: starts the servers of dwatch_servers, restarts them when they
 * die or hang, forwards SIGHUP as reload and SIGTERM as shutdown, and speaks systemd's
 * notify protocol.
 *
 * Start-up: command line -> config -> log -> (daemonise and pid file unless -f) ->
 * work_path -> control socket -> servers -> loop. dwatch keeps its privileges: the servers
 * it starts bind their ports as root and drop to run_as themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dwatch.h"
#include "file.h"
#include "log.h"
#include "server.h"
#include "xmem.h"

static struct dwatch main_dw;

/* main_signal - SIGHUP: reload; SIGUSR1: reopen log_file (the servers' lines go through
 * dwatch's log); SIGTERM/SIGINT: shutdown (twice: SIGKILL the servers). */
static void
main_signal(uv_signal_t *h, int sig)
{
    struct dwatch *dw = h->data;

    if (sig == SIGUSR1) {
        int rc = log_reopen();
        if (rc > 0)
            log_info("log file %s reopened (SIGUSR1)", log_path());
        else if (rc < 0)
            log_warne("cannot reopen log file %s; still writing to the old one", log_path());
        return;
    }
    if (sig == SIGHUP) {
        log_info("SIGHUP: reloading dwatch and every server");
        dw_reload(dw, NULL);
        return;
    }
    if (dw->stopping) {
        log_info("signal %d again: killing the servers", sig);
        for (struct dw_server *s = dw->servers; s != NULL; s = s->next)
            if (s->proc != NULL)
                uv_process_kill(s->proc, SIGKILL);
        return;
    }
    log_info("signal %d: shutting down", sig);
    dw_shutdown(dw);
}

/* main_health_cb - ping every server. */
static void
main_health_cb(uv_timer_t *t)
{
    dw_health_round(t->data);
}

/* main_bindir - the directory of our own executable. */
static char *
main_bindir(void)
{
    char path[PATH_MAX];
    size_t len = sizeof(path);

    if (uv_exepath(path, &len) < 0)
        log_fatal("cannot find dwatch's own executable");
    char *slash = strrchr(path, '/');
    if (slash == NULL)
        return xstrdup(".");
    *slash = '\0';
    return xstrdup(path[0] ? path : "/");
}

/* main_work_path - create work_path if missing (as root: owned by run_as, who writes the
 * servers' sockets there). */
static void
main_work_path(const struct conf *cf)
{
    struct stat st;

    if (stat(cf->work_path, &st) == 0)
        return;
    if (file_mkdirs(cf->work_path, 0755) < 0)
        log_fatale("cannot create %s", cf->work_path);
    if (geteuid() == 0 && cf->run_as != NULL && cf->run_as[0] != '\0') {
        struct passwd *pw = getpwnam(cf->run_as);
        if (pw != NULL && chown(cf->work_path, pw->pw_uid, pw->pw_gid) < 0)
            log_warne("chown %s to %s", cf->work_path, cf->run_as);
    }
}

/* main_daemonise - fork into the background, new session, stdio on /dev/null. */
static void
main_daemonise(void)
{
    pid_t pid = fork();
    int fd;

    if (pid < 0)
        log_fatale("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        log_fatale("setsid");
    pid = fork();
    if (pid < 0)
        log_fatale("fork");
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        log_fatale("chdir /");
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* main - dwatch. */
int
main(int argc, char **argv)
{
    static const int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
    struct dwatch *dw = &main_dw;
    struct server_opts o;
    char err[512], *pidfile = NULL;

    server_args(argc, argv, "dwatch",
                "dmail's supervisor: starts the servers of dwatch_servers and restarts them "
                "when they die or hang",
                &o);
    dw->cf = server_load_config(&o);
    dw->foreground = o.foreground;
    dw->conf_path = realpath(o.conf_path, NULL);
    if (dw->conf_path == NULL)
        log_fatale("%s", o.conf_path);
    dw->bindir = main_bindir();
    dw_notify_init();
    log_init("dwatch", o.foreground);
    log_set_level(dw->cf->log_level);
    if (log_open(dw->cf->log_file) < 0)
        log_fatale("cannot open log %s", dw->cf->log_file);
    signal(SIGPIPE, SIG_IGN);
    main_work_path(dw->cf);
    if (!o.foreground) {
        main_daemonise();
        pidfile = xasprintf("%s/dwatch.pid", dw->cf->work_path);
        if (server_pidfile(pidfile) < 0)
            log_warne("cannot write %s", pidfile);
    }

    dw->loop = uv_default_loop();
    if (dw_control_open(dw, err, sizeof(err)) < 0)
        log_fatal("%s", err);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        uv_signal_init(dw->loop, &dw->sigs[i]);
        dw->sigs[i].data = dw;
        uv_signal_start(&dw->sigs[i], main_signal, sigs[i]);
    }
    uv_timer_init(dw->loop, &dw->health);
    dw->health.data = dw;
    uv_timer_init(dw->loop, &dw->final);
    dw->final.data = dw;
    dw_notify_start(dw);
    uv_timer_start(&dw->health, main_health_cb, (uint64_t)dw->cf->dwatch_interval * 1000,
                   (uint64_t)dw->cf->dwatch_interval * 1000);
    log_info("dwatch %s started, config %s, programs in %s", DMAIL_VERSION, dw->conf_path,
             dw->bindir);
    dw_apply_servers(dw);
    dw_notify_check(dw); /* nothing to watch: ready at once */

    uv_run(dw->loop, UV_RUN_DEFAULT);

    if (pidfile != NULL) {
        unlink(pidfile);
        free(pidfile);
    }
    log_info("dwatch stopped");
    uv_loop_close(dw->loop);
    conf_unref(&dw->cf);
    free(dw->conf_path);
    free(dw->bindir);
    return 0;
}
