/*
 * tell - tellsmtp and tellpop: the command table, the command line, the control socket.
 */
#include "tell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "file.h"
#include "log.h"
#include "tell_stats.h"
#include "xmem.h"

#ifndef DMAIL_VERSION
#define DMAIL_VERSION "unknown"
#endif

#define TELL_TIMEOUT_MS 30000

/* Where a command goes. */
enum tell_target {
    TT_SERVER, /* the server's control socket */
    TT_DWATCH, /* dwatch's control socket, with the server's name */
    TT_USERS,  /* the users file, then reload */
    TT_HELP,   /* this table */
    TT_DKIM,   /* a DKIM key made here (tell_dkim.c) */
    TT_STATS,  /* the oneline_stats files (tell_stats.h) */
};

/* Which tools offer a command. */
enum { TP_SMTP = 1, TP_POP = 2, TP_BOTH = 3 };

struct tell_cmd {
    const char *name;
    const char *usage;
    int min_args, max_args;
    unsigned progs;
    enum tell_target target;
    const char *help;
};

static const struct tell_cmd tell_cmds[] = {
    {"status", "", 0, 0, TP_BOTH, TT_SERVER,
     "pid, uptime, config file and load time, connections now/peak"},
    {"stats", "[-p]", 0, 1, TP_BOTH, TT_SERVER,
     "counters since start; -p in the Prometheus text format"},
    {"reload", "", 0, 0, TP_BOTH, TT_SERVER,
     "re-read dmail.conf and the users file (a bad file keeps the old one)"},
    {"clear_cache_all", "", 0, 0, TP_SMTP, TT_SERVER,
     "DMail's: re-read the alias files and everything else, as reload"},
    {"shutdown", "", 0, 0, TP_BOTH, TT_SERVER,
     "graceful stop: no new connections, sessions finish or time out"},
    {"debug", "LEVEL", 1, 1, TP_BOTH, TT_SERVER, "set the log level live: error warn info debug"},
    {"log_level", "LEVEL", 1, 1, TP_BOTH, TT_SERVER, "the same as debug (DMail's name)"},
    {"config", "SETTING", 1, 1, TP_BOTH, TT_SERVER,
     "the value of SETTING in force and where it came from"},
    {"reopen", "", 0, 0, TP_BOTH, TT_SERVER,
     "reopen log_file after logrotate moved it (also SIGUSR1)"},
    {"restart", "", 0, 0, TP_BOTH, TT_DWATCH, "ask dwatch to restart the server"},
    {"start", "", 0, 0, TP_BOTH, TT_DWATCH,
     "ask dwatch to start the server (after stop or failure)"},
    {"stop", "", 0, 0, TP_BOTH, TT_DWATCH, "ask dwatch to stop the server and not restart it"},
    {"queue", "", 0, 0, TP_SMTP, TT_SERVER, "list the queue: id, age, size, sender, recipients"},
    {"flush", "[DOMAIN]", 0, 1, TP_SMTP, TT_SERVER,
     "try queued messages now (only those with recipients at DOMAIN)"},
    {"delete", "ID", 1, 1, TP_SMTP, TT_SERVER, "remove a message from the queue (no bounce)"},
    {"hold", "ID", 1, 1, TP_SMTP, TT_SERVER, "keep a queued message from being delivered"},
    {"release", "ID", 1, 1, TP_SMTP, TT_SERVER, "let a held message be delivered again"},
    {"suspend", "[delivery|accept|all]", 0, 1, TP_SMTP, TT_SERVER,
     "start no outbound delivery (running ones finish) until resume; accept: take no new "
     "connections (open sessions go on); all: both"},
    {"resume", "[delivery|accept|all]", 0, 1, TP_SMTP, TT_SERVER,
     "restart outbound delivery (dead destinations are tried again now); accept: take new "
     "connections again; all: both"},
    {"suspend", "", 0, 0, TP_POP, TT_SERVER,
     "take no new connections until resume (they wait; open sessions go on)"},
    {"resume", "", 0, 0, TP_POP, TT_SERVER, "take new connections again"},
    {"showchans", "", 0, 0, TP_BOTH, TT_SERVER,
     "sessions now: id, client address and port, listener, state, user, TLS, age"},
    {"showsend", "", 0, 0, TP_SMTP, TT_SERVER,
     "outbound deliveries in progress: destination, relay, TLS, bytes, age"},
    {"tlsrpt-send", "", 0, 0, TP_SMTP, TT_SERVER,
     "mail the TLS reports (RFC 8460) of the outbound sessions counted so far (tls_rpt)"},
    {"bombs", "", 0, 0, TP_SMTP, TT_SERVER,
     "list the messages held in bomb_dir as suspected mail bombs"},
    {"bomb-release", "ID", 1, 1, TP_SMTP, TT_SERVER,
     "move a held message into the queue: it is delivered as usual"},
    {"bomb-delete", "ID", 1, 1, TP_SMTP, TT_SERVER, "remove a held message (no bounce)"},
    {"who", "", 0, 0, TP_POP, TT_SERVER, "live POP3 sessions: user, client address, state, age"},
    {"kick", "USER", 1, 1, TP_POP, TT_SERVER, "end USER's sessions (nothing is deleted)"},
    {"adduser", "USER [PASSWORD|-]", 1, 2, TP_POP, TT_USERS,
     "add USER to the users file (yescrypt); no PASSWORD or - reads it from stdin"},
    {"deluser", "USER", 1, 1, TP_POP, TT_USERS, "remove USER from the users file"},
    {"passwd", "USER [PASSWORD|-]", 1, 2, TP_POP, TT_USERS,
     "set USER's password; no PASSWORD or - reads it from stdin"},
    {"users", "", 0, 0, TP_POP, TT_USERS, "list the names in the users file"},
    {"dkim-keygen", "DOMAIN SELECTOR [rsa|ed25519] [FILE]", 2, 4, TP_SMTP, TT_DKIM,
     "a new DKIM key file and its DNS TXT record"},
    {"statistics", "[-d[N] | -u[N]] [-s | -r] [-sortby F] [TIMEFRAME]", 0, 8, TP_POP, TT_STATS,
     "usage report from dsmtp's oneline_stats files (dmDDMM.log) in work_path"},
    {"help", "", 0, 0, TP_BOTH, TT_HELP, "this list"},
};

/* tell_mask - the table bit of a tool. */
static unsigned
tell_mask(const char *server)
{
    return strcmp(server, "dpop") == 0 ? TP_POP : TP_SMTP;
}

/* tell_usage - the usage text and the command table. */
static void
tell_usage(FILE *f, const char *prog, const char *server)
{
    unsigned mask = tell_mask(server);

    fprintf(f,
            "usage: %s [-c FILE] [-w SECONDS] COMMAND [ARGS]\n"
            "Control %s through its control socket (work_path/%s.ctl).\n"
            "  -c FILE     dmail.conf to read (default $DMAIL_CONF, /etc/dmail/dmail.conf,\n"
            "              /etc/dmail.conf); -i FILE is the same, as in DMail\n"
            "  -w SECONDS  wait at most this long for the answer (default %d)\n"
            "  -n HOST -p PORT  send the command to the manager port (smtp_manager_port,\n"
            "              pop_manager_port) of HOST over TLS; the certificate is checked\n"
            "              against the system's CAs and HOST\n"
            "  -k          do not check the certificate; -C FILE: trust the CAs in FILE\n"
            "  -T          plaintext (manager_plaintext_loopback, loopback only)\n"
            "  -P PASSWORD the manager password (else $DMAIL_MANAGER_PASSWORD, else asked)\n"
            "commands:\n",
            prog, server, server, TELL_TIMEOUT_MS / 1000);
    for (size_t i = 0; i < sizeof(tell_cmds) / sizeof(tell_cmds[0]); i++) {
        const struct tell_cmd *c = &tell_cmds[i];
        char left[64];
        if (!(c->progs & mask))
            continue;
        snprintf(left, sizeof(left), "%s%s%s", c->name, c->usage[0] ? " " : "", c->usage);
        fprintf(f, "  %-26s %s\n", left, c->help);
    }
    fprintf(f,
            "exit status: 0 done, 1 refused, 2 usage, 3 %s not reachable, 78 dmail.conf cannot "
            "be read\n",
            server);
}

/* tell_find - the table row for name in this tool. */
static const struct tell_cmd *
tell_find(const char *name, unsigned mask)
{
    for (size_t i = 0; i < sizeof(tell_cmds) / sizeof(tell_cmds[0]); i++)
        if ((tell_cmds[i].progs & mask) && strcasecmp(tell_cmds[i].name, name) == 0)
            return &tell_cmds[i];
    return NULL;
}

/* tell_scan_file - the last value of setting (or its synonym) in a dmail.conf, by a plain
 * line scan that follows #include; used when the file has errors. */
static void
tell_scan_file(const char *path, const char *name, const char *syn, char **val, int depth)
{
    char *text = NULL, *save = NULL;
    size_t len;

    if (depth > 16 || file_read_all(path, 64 << 20, &text, &len) < 0)
        return;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *p = line + strspn(line, " \t");
        size_t n = strcspn(p, " \t\r");
        char *v = p + n + strspn(p + n, " \t");
        size_t vl = strcspn(v, "\r");
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (strncmp(p, "#include", 8) == 0 && n == 8 && vl > 0) {
            char *inc = xstrndup(v, vl);
            if (inc[0] != '/') {
                const char *slash = strrchr(path, '/');
                char *full =
                    slash ? xasprintf("%.*s/%s", (int)(slash - path), path, inc) : xstrdup(inc);
                free(inc);
                inc = full;
            }
            tell_scan_file(inc, name, syn, val, depth + 1);
            free(inc);
            continue;
        }
        if (vl > 0 && ((strlen(name) == n && strncasecmp(p, name, n) == 0) ||
                       (syn != NULL && strlen(syn) == n && strncasecmp(p, syn, n) == 0))) {
            free(*val);
            *val = xstrndup(v, vl);
        }
    }
    free(text);
}

/* tell_setting_default - the table default of a setting. */
static const char *
tell_setting_default(const char *name)
{
    const struct conf_setting *s = conf_lookup(name);

    return s != NULL ? s->def : "";
}

/* tell_load - work_path, users_file and run_as from the config (or a scan of it). */
static void
tell_load(struct tell_ctx *ctx)
{
    struct conf_diag diag = {0};
    struct conf *cf = conf_load(ctx->conf, &diag);

    conf_diag_free(&diag);
    if (cf != NULL) {
        ctx->work_path = xstrdup(cf->work_path);
        ctx->users_file = xstrdup(cf->users_file);
        ctx->run_as = xstrdup(cf->run_as ? cf->run_as : "");
        ctx->authent_method = cf->authent_method;
        conf_unref(&cf);
        return;
    }
    tell_scan_file(ctx->conf, "work_path", "work_dir", &ctx->work_path, 0);
    tell_scan_file(ctx->conf, "users_file", NULL, &ctx->users_file, 0);
    tell_scan_file(ctx->conf, "run_as", NULL, &ctx->run_as, 0);
    char *method = NULL;
    tell_scan_file(ctx->conf, "authent_method", NULL, &method, 0);
    ctx->authent_method = method != NULL && strcasecmp(method, "unix_user") == 0
                              ? AUTHENT_UNIX_USER
                              : AUTHENT_USERS_FILE;
    free(method);
    if (ctx->work_path == NULL)
        ctx->work_path = xstrdup(tell_setting_default("work_path"));
    if (ctx->users_file == NULL)
        ctx->users_file = xstrdup(tell_setting_default("users_file"));
    if (ctx->run_as == NULL)
        ctx->run_as = xstrdup(tell_setting_default("run_as"));
}

/* tell_conf_readable - whether the config file opens; else "PROG: FILE: reason" on stderr
 * (without it work_path is a guess, and "not reachable" would hide the real cause). */
static bool
tell_conf_readable(const struct tell_ctx *ctx)
{
    int fd = open(ctx->conf, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", ctx->prog, ctx->conf, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

/* tell_print_line - a data line of the answer. */
static void
tell_print_line(void *arg, const char *line)
{
    (void)arg;
    printf("%s\n", line);
}

/* tell_send - one request to NAME.ctl; prints the answer; returns the exit code. */
static int
tell_send(const struct tell_ctx *ctx, const char *name, const char *request)
{
    char *path = xasprintf("%s/%s.ctl", ctx->work_path, name);
    char text[1024];
    int rc;

    if (ctx->remote.host != NULL)
        rc = ctl_call_remote(&ctx->remote, request, ctx->timeout_ms, tell_print_line, NULL, text,
                             sizeof(text));
    else
        rc = ctl_call(path, request, ctx->timeout_ms, tell_print_line, NULL, text, sizeof(text));
    free(path);
    fflush(stdout);
    switch (rc) {
    case CTL_R_OK:
        if (text[0] != '\0')
            printf("%s\n", text);
        return TELL_EX_OK;
    case CTL_R_ERR:
        fprintf(stderr, "%s: %s\n", ctx->prog, text);
        return TELL_EX_REFUSED;
    default:
        fprintf(stderr, "%s: %s not reachable: %s\n", ctx->prog, name, text);
        return TELL_EX_UNREACHABLE;
    }
}

/* tell_is_local - whether -n names this machine. */
static int
tell_is_local(const char *host)
{
    char me[256];

    if (host[0] == '\0' || strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
        strcmp(host, "::1") == 0)
        return 1;
    if (gethostname(me, sizeof(me)) == 0) {
        me[sizeof(me) - 1] = '\0';
        if (strcasecmp(host, me) == 0)
            return 1;
    }
    return 0;
}

/* tell_read_password - the manager password from the terminal (no echo) or one line of
 * stdin; 0 or -1 with a message. */
static int
tell_read_password(const char *prog, char *buf, size_t len)
{
    struct termios old, quiet;
    bool tty = isatty(0) && tcgetattr(0, &old) == 0;
    size_t n;

    if (tty) {
        fprintf(stderr, "manager password: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    char *got = fgets(buf, (int)len, stdin);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (got == NULL) {
        fprintf(stderr, "%s: no manager password (-P, DMAIL_MANAGER_PASSWORD or stdin)\n", prog);
        return -1;
    }
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    return 0;
}

/* tell_bad_usage - complain, print the short usage, return 2. */
static int
tell_bad_usage(const char *prog, const char *server, const char *what, const char *arg)
{
    (void)server;
    fprintf(stderr, "%s: %s%s%s\n", prog, what, arg ? " " : "", arg ? arg : "");
    fprintf(stderr,
            "usage: %s [-c FILE] [-w SECONDS] COMMAND [ARGS]; %s --help lists the commands\n", prog,
            prog);
    return TELL_EX_USAGE;
}

/* tell_option_arg - the argument of -X (attached or the next word); NULL if none. */
static const char *
tell_option_arg(int argc, char **argv, int *i)
{
    if (argv[*i][2] != '\0')
        return argv[*i] + 2;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

/* tell_run - carry out cmd. */
static int
tell_run(struct tell_ctx *ctx, const struct tell_cmd *cmd, int argc, char **argv)
{
    char req[CTL_LINE_MAX];
    size_t off = 0;

    switch (cmd->target) {
    case TT_HELP:
        tell_usage(stdout, ctx->prog, ctx->server);
        return TELL_EX_OK;
    case TT_STATS:
        if (ctx->remote.host != NULL) {
            fprintf(stderr,
                    "%s: ERR statistics reads the local oneline_stats files only, not over the "
                    "manager port; run it on the server's host\n",
                    ctx->prog);
            return TELL_EX_USAGE;
        }
        return tell_stats_cmd(ctx->prog, ctx->work_path, argc, argv, time(NULL));
    case TT_USERS:
        if (ctx->remote.host != NULL) {
            fprintf(stderr,
                    "%s: ERR %s works on the local users file only, not over the manager port; "
                    "run it on the server's host\n",
                    ctx->prog, cmd->name);
            return TELL_EX_USAGE;
        }
        return tell_users_cmd(ctx, argc, argv);
    case TT_DKIM:
        if (ctx->remote.host != NULL) {
            fprintf(stderr,
                    "%s: ERR dkim-keygen writes a local key file; run it on the server's host\n",
                    ctx->prog);
            return TELL_EX_USAGE;
        }
        return tell_dkim_keygen(ctx, argc, argv);
    case TT_DWATCH:
        if (ctx->remote.host != NULL) {
            fprintf(stderr,
                    "%s: ERR %s goes to dwatch's local control socket, not over the manager "
                    "port; run it on the server's host\n",
                    ctx->prog, cmd->name);
            return TELL_EX_USAGE;
        }
        snprintf(req, sizeof(req), "%s %s", cmd->name, ctx->server);
        return tell_send(ctx, "dwatch", req);
    case TT_SERVER:
        break;
    }
    for (int i = 0; i < argc; i++) {
        int n = snprintf(req + off, sizeof(req) - off, "%s%s", i ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(req) - off)
            return tell_bad_usage(ctx->prog, ctx->server, "request too long", NULL);
        off += (size_t)n;
    }
    return tell_send(ctx, ctx->server, req);
}

/* tell_main - parse the command line and run one command. */
int
tell_main(int argc, char **argv, const char *prog, const char *server)
{
    struct tell_ctx ctx = {.prog = prog,
                           .server = server,
                           .timeout_ms = TELL_TIMEOUT_MS,
                           .remote = {.tls = true, .verify = true}};
    const char *cli = NULL, *host = NULL, *port = NULL;
    const struct tell_cmd *cmd;
    int i, rc;

    log_init(prog, 1);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            tell_usage(stdout, prog, server);
            return TELL_EX_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s (dmail) %s\n", prog, DMAIL_VERSION);
            return TELL_EX_OK;
        }
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if ((a[1] == 'k' || a[1] == 'T') && a[2] == '\0') {
            if (a[1] == 'k')
                ctx.remote.verify = false;
            else
                ctx.remote.tls = false;
            continue;
        }
        if (strchr("cinpwCP", a[1]) == NULL)
            return tell_bad_usage(prog, server, "unknown option", a);
        if ((v = tell_option_arg(argc, argv, &i)) == NULL || v[0] == '\0')
            return tell_bad_usage(prog, server, "this option needs a value:", a);
        switch (a[1]) {
        case 'c':
        case 'i':
            cli = v;
            break;
        case 'n':
            host = v;
            break;
        case 'C':
            ctx.remote.cafile = v;
            break;
        case 'P':
            ctx.remote.password = v;
            break;
        case 'p':
            port = v;
            break;
        case 'w': {
            char *end;
            long s = strtol(v, &end, 10);
            if (*end != '\0' || s < 1 || s > 3600)
                return tell_bad_usage(prog, server, "-w wants seconds from 1 to 3600, not", v);
            ctx.timeout_ms = (int)s * 1000;
            break;
        }
        }
    }
    if (host != NULL && port == NULL && !tell_is_local(host)) {
        fprintf(stderr, "%s: -n %s: give the server's manager port with -p PORT\n", prog, host);
        return TELL_EX_USAGE;
    }
    if (port != NULL) {
        ctx.remote.host = host != NULL ? host : "localhost";
        ctx.remote.port = port;
    }
    if (i >= argc)
        return tell_bad_usage(prog, server, "no command given", NULL);
    cmd = tell_find(argv[i], tell_mask(server));
    if (cmd == NULL)
        return tell_bad_usage(prog, server, "unknown command", argv[i]);
    if (argc - i - 1 < cmd->min_args || argc - i - 1 > cmd->max_args) {
        fprintf(stderr, "%s: usage: %s %s%s%s\n", prog, prog, cmd->name, cmd->usage[0] ? " " : "",
                cmd->usage);
        return TELL_EX_USAGE;
    }
    for (int k = i; k < argc && cmd->target == TT_SERVER; k++)
        if (argv[k][0] == '\0' || strpbrk(argv[k], " \t\r\n") != NULL)
            return tell_bad_usage(prog, server,
                                  "arguments cannot be empty or hold spaces:", argv[k]);
    ctx.conf = conf_default_path(cli);
    if (ctx.remote.host != NULL && cmd->target != TT_SERVER && cmd->target != TT_HELP)
        return tell_run(&ctx, cmd, argc - i, argv + i); /* local only: a clear ERR */
    if (ctx.remote.host != NULL && cmd->target == TT_SERVER) {
        /* remote: nothing local is needed but the password */
        char pw[CTL_LINE_MAX];
        if (ctx.remote.password == NULL)
            ctx.remote.password = getenv("DMAIL_MANAGER_PASSWORD");
        if (ctx.remote.password == NULL) {
            if (tell_read_password(prog, pw, sizeof(pw)) < 0)
                return TELL_EX_USAGE;
            ctx.remote.password = pw;
        }
        rc = tell_run(&ctx, cmd, argc - i, argv + i);
        explicit_bzero(pw, sizeof(pw));
        return rc;
    }
    if (cmd->target != TT_HELP && cmd->target != TT_DKIM && ctx.remote.host == NULL &&
        !tell_conf_readable(&ctx))
        return TELL_EX_CONFIG;
    tell_load(&ctx);
    rc = tell_run(&ctx, cmd, argc - i, argv + i);
    free(ctx.work_path);
    free(ctx.users_file);
    free(ctx.run_as);
    return rc;
}
