/*
 * server - the start-up sequence every dmail server shares: command line, config,
 * privileges, pid file.
 */
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "file.h"
#include "log.h"
#include "tls.h"
#include "xmem.h"

#ifndef DMAIL_VERSION
#define DMAIL_VERSION "unknown"
#endif

enum { SERVER_EX_USAGE = 64, SERVER_EX_CONFIG = 78 };

/* server_usage - the usage text to f. */
static void
server_usage(FILE *f, const char *prog, const char *summary)
{
    fprintf(f,
            "usage: %s [-c FILE] [-f] [-t]\n"
            "%s%s"
            "  -c FILE    read FILE instead of $DMAIL_CONF, /etc/dmail/dmail.conf or\n"
            "             /etc/dmail.conf (-i FILE is the same, as in DMail)\n"
            "%s"
            "  -t         check the configuration, print every problem, exit 0 or 78\n"
            "  --help     show this text\n"
            "  --version  show the version\n",
            prog, summary ? summary : "", summary && *summary ? "\n" : "",
            strcmp(prog, "dwatch") == 0
                ? "  -f         stay in the foreground and log to stderr (without it dwatch\n"
                  "             forks, starts a new session and writes its pid file)\n"
                : "  -f         log to stderr (the server never forks: it stays in the\n"
                  "             foreground either way)\n");
}

/* server_bad_usage - complain about the command line and exit 64. */
static void __attribute__((noreturn, format(printf, 3, 4)))
server_bad_usage(const char *prog, const char *summary, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    server_usage(stderr, prog, summary);
    exit(SERVER_EX_USAGE);
}

/* server_args - parse NAME [-c FILE | -i FILE] [-f] [-t] [--help] [--version]. */
void
server_args(int argc, char **argv, const char *prog, const char *summary, struct server_opts *o)
{
    const char *cli = NULL;
    int i;

    memset(o, 0, sizeof(*o));
    o->prog = prog;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0) {
            server_usage(stdout, prog, summary);
            exit(0);
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s (dmail) %s\n", prog, DMAIL_VERSION);
            exit(0);
        }
        if (a[0] != '-' || a[1] == '\0' || a[1] == '-')
            break;
        /* a cluster of one-letter flags; -c and -i take the rest or the next word */
        for (const char *f = a + 1; *f != '\0'; f++) {
            if (*f == 'c' || *f == 'i') {
                if (f[1] != '\0')
                    cli = f + 1;
                else if (i + 1 < argc)
                    cli = argv[++i];
                else
                    server_bad_usage(prog, summary, "-%c needs a file name", *f);
                break; /* the rest of this word was the file name */
            }
            switch (*f) {
            case 'f':
                o->foreground = true;
                break;
            case 't':
                o->test_only = true;
                break;
            default:
                server_bad_usage(prog, summary, "unknown flag -%c", *f);
            }
        }
    }
    if (i < argc)
        server_bad_usage(prog, summary, "unexpected argument '%s'", argv[i]);
    if (cli != NULL && *cli == '\0')
        server_bad_usage(prog, summary, "-c needs a file name");
    o->conf_path = conf_default_path(cli);
    log_init(prog, o->foreground);
}

/* server_test_tls - for -t: load tls_cert and tls_key as start-up will (the files are
 * read as root before the privileges are dropped, so -t is run as the same user), and
 * print a failure as "file:line: reason" at the setting's line. Returns 0 or -1. */
static int
server_test_tls(const struct conf *c, const char *prog)
{
    struct tls_policy pol;
    char err[300];
    SSL_CTX *ctx;

    if (c->tls_cert == NULL || c->tls_cert[0] == '\0' || c->tls_key == NULL ||
        c->tls_key[0] == '\0')
        return 0;
    conf_tls_policy(c, &pol);
    ctx = tls_server_ctx(c->tls_cert, c->tls_key, &pol, err, sizeof(err));
    if (ctx != NULL) {
        SSL_CTX_free(ctx);
        return 0;
    }
    /* err begins with the setting at fault: "tls_key /path: reason" */
    char name[64];
    const struct conf_setting *row;
    const char *where = NULL;

    snprintf(name, sizeof(name), "%.*s", (int)strcspn(err, " "), err);
    row = conf_lookup(name);
    if (row != NULL)
        where = c->origin[row - conf_settings];
    fprintf(stderr, "%s: %s\n", where != NULL ? where : c->path, err);
    fprintf(stderr, "%s: %s: 1 error\n", prog, c->path);
    return -1;
}

/* server_load_config - load, print every diagnostic, and act on -t. */
struct conf *
server_load_config(const struct server_opts *o)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load(o->conf_path, &d);

    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    if (d.n > 0)
        fprintf(stderr, "%s: %s: %d error%s, %d warning%s\n", o->prog, o->conf_path, d.errors,
                d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
    fflush(stderr);
    conf_diag_free(&d);
    if (o->test_only) {
        int rc = c != NULL && server_test_tls(c, o->prog) == 0 ? 0 : SERVER_EX_CONFIG;
        if (c != NULL && c->authent_method == AUTHENT_USERS_FILE &&
            access(c->users_file, R_OK) == 0) {
            /* its problems skip lines (as at start), they do not stop the server */
            struct auth_db *db = auth_db_load(c->users_file, &d);
            for (size_t i = 0; i < d.n; i++)
                fprintf(stderr, "%s\n", d.msgs[i]);
            conf_diag_free(&d);
            auth_db_unref(&db);
        }
        conf_unref(&c);
        exit(rc);
    }
    if (c == NULL) {
        fprintf(stderr, "%s: not starting: %s has errors\n", o->prog, o->conf_path);
        exit(SERVER_EX_CONFIG);
    }
    log_set_level(c->log_level);
    return c;
}

/* server_drop_privileges - become run_as for good when started as root. */
int
server_drop_privileges(const char *run_as, char *err, size_t errlen)
{
    struct passwd *pw;
    uid_t uid;
    gid_t gid;

    if (getuid() != 0 && geteuid() != 0)
        return 0;
    if (run_as == NULL || *run_as == '\0') {
        snprintf(err, errlen, "run_as is empty; refusing to run as root");
        return -1;
    }
    errno = 0;
    pw = getpwnam(run_as);
    if (pw == NULL) {
        snprintf(err, errlen, "run_as %s: %s", run_as, errno ? strerror(errno) : "no such user");
        return -1;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (uid == 0) {
        snprintf(err, errlen, "run_as %s is root; refusing to run as root", run_as);
        return -1;
    }
    if (initgroups(run_as, gid) < 0) {
        snprintf(err, errlen, "initgroups(%s): %s", run_as, strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        snprintf(err, errlen, "setresgid(%ld): %s", (long)gid, strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "setresuid(%ld): %s", (long)uid, strerror(errno));
        return -1;
    }
    /* root must be gone for good */
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid ||
        getgid() != gid || getegid() != gid) {
        snprintf(err, errlen, "could not drop root privileges for %s", run_as);
        return -1;
    }
    return 0;
}

/* server_pidfile - write "PID\n" to path atomically. */
int
server_pidfile(const char *path)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    return file_write_atomic(path, buf, (size_t)n, 0644);
}

/* server_hostname - the greeting name, see server.h. */
void
server_hostname(const struct conf *cf, char *buf, size_t len)
{
    const char *h = cf->hostname;

    if (h != NULL && h[0] != '\0') {
        snprintf(buf, len, "%s", h);
        return;
    }
    if (gethostname(buf, len) < 0 || buf[0] == '\0')
        snprintf(buf, len, "%s", cf->main_domain);
    buf[len - 1] = '\0';
}
