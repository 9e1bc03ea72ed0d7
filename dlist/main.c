/*
 * dlist - dmail's mailing-list server (DMail's DList), on the server core
 * (common/server/server.h): the spool runner (spool.h) handles the list mail dsmtp
 * spools (posts, commands, owner mail) and sends what it makes through dsmtp (smtpout.h);
 * its one listener, dlist_http_port (off by default), serves the one-click unsubscribe
 * endpoint (http.h); its control socket work_path/dlist.ctl serves the list commands
 * (admin.h). `dlist [-c FILE] lists | who LIST | add LIST ADDR | remove LIST ADDR | held
 * LIST | approve LIST ID | reject LIST ID` is the client of those commands; `dlist -t`
 * checks dmail.conf and lists.dat and names the lists; `dlist archive LIST FILE...` stores
 * messages into a list's archive itself (archive.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "archive.h"
#include "conf.h"
#include "ctl.h"
#include "file.h"
#include "http.h"
#include "lists.h"
#include "members.h"
#include "server.h"
#include "spool.h"
#include "tell.h"
#include "xmem.h"

static struct server main_srv;

/* The one listener: the one-click unsubscribe endpoint (http.h), off unless
 * dlist_http_port is set; TLS is begun by the session (dlist_http_tls). */
static const struct server_port_def main_ports[] = {
    {"http", offsetof(struct conf, dlist_http_port), false, false, true},
};

/* main_refusal - the answer to a client over the connection caps. */
static void
main_refusal(struct server *srv, char *buf, size_t len)
{
    snprintf(buf, len,
             "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n");
}

/* main_start - as run_as, before the loop: the one-click endpoint and the spool runner. */
static void
main_start(struct server *srv)
{
    http_start(srv);
    spool_start(srv);
}

/* main_stop - no more scans or sends. */
static void
main_stop(struct server *srv)
{
    spool_stop(srv);
}

static const struct server_proto main_proto = {
    .name = "dlist",
    .summary = "dmail mailing-list server (DList): lists.dat, list mail\n"
               "  dlist [-c FILE] lists | who LIST | add LIST ADDRESS | remove LIST ADDRESS |\n"
               "  held LIST | approve LIST ID | reject LIST ID\n"
               "  dlist [-c FILE] archive LIST MESSAGE-FILE...",
    .protocol = "list",
    .no_tls = "no HTTPS for the one-click unsubscribe endpoint",
    .ports = main_ports,
    .nports = sizeof(main_ports) / sizeof(main_ports[0]),
    .ports_optional = true,
    .refusal = main_refusal,
    .sess = &http_ops,
    .start = main_start,
    .cmds = admin_cmds,
    .ncmds = ADMIN_NCMDS,
    .stop = main_stop,
};

/* main_check - -t: every problem as file:line, then the lists; the exit status. */
static int
main_check(const struct server_opts *o)
{
    struct conf_diag d = {0};
    struct conf *cf = conf_load(o->conf_path, &d);

    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    if (d.n > 0)
        fprintf(stderr, "dlist: %s: %d error%s, %d warning%s\n", o->conf_path, d.errors,
                d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
    conf_diag_free(&d);
    if (cf == NULL)
        return 78; /* EX_CONFIG, as server_load_config */
    if (cf->lists == NULL)
        printf("dlist: no lists (%s)\n",
               cf->dlist_path[0] != '\0' ? "no lists.dat in dlist_path" : "dlist_path is not set");
    else {
        printf("dlist: %zu list%s at %s:", cf->lists->n, cf->lists->n == 1 ? "" : "s",
               cf->lists->domain);
        for (size_t i = 0; i < cf->lists->n; i++)
            printf(" %s", cf->lists->v[i].name);
        printf("\n");
    }
    conf_unref(&cf);
    return 0;
}

/* main_print - one answer line. */
static void
main_print(void *arg, const char *line)
{
    printf("%s\n", line);
}

/* main_scan_work_path - a dmail.conf with errors (a reload must still be asked for, to
 * report them): its last work_path (or work_dir) line by a plain scan; the socket path,
 * malloc'd, or NULL with errno when the file cannot be opened. */
static char *
main_scan_work_path(const char *conf_path)
{
    char line[4096], *work = xstrdup("/var/lib/dmail"), *sock;
    FILE *f = fopen(conf_path, "r");

    if (f == NULL) {
        free(work);
        return NULL;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *k = line + strspn(line, " \t"), *v;
        size_t n = strcspn(k, " \t\r\n");
        if ((n != 9 || strncmp(k, "work_path", 9) != 0) &&
            (n != 8 || strncmp(k, "work_dir", 8) != 0))
            continue;
        v = k + n + strspn(k + n, " \t");
        v[strcspn(v, "\r\n")] = '\0';
        if (*v != '\0') {
            free(work);
            work = xstrdup(v);
        }
    }
    fclose(f);
    sock = xasprintf("%s/dlist.ctl", work);
    free(work);
    return sock;
}

/* main_archive - dlist [-c FILE] archive LIST MESSAGE...: each message file stored into
 * the list's archive (mbox and HTML) here, without the daemon (as run_as when root), as
 * the post path stores a post; for imports and rebuilding. Exit codes as tellsmtp's. */
static int
main_archive(const char *conf_path, int argc, char **argv)
{
    struct conf_diag d = {0};
    struct conf *cf = conf_load(conf_path, &d);
    const struct lists_def *def;
    char err[512];
    int rc = TELL_EX_OK;

    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    conf_diag_free(&d);
    if (cf == NULL)
        return TELL_EX_CONFIG;
    if ((def = lists_find(cf->lists, argv[1])) == NULL || !def->archive) {
        fprintf(stderr, "dlist: %s: %s\n", argv[1],
                def == NULL ? "no such list" : "the list keeps no archive (archive false)");
        conf_unref(&cf);
        return TELL_EX_REFUSED;
    }
    if (server_drop_privileges(cf->run_as, err, sizeof(err)) < 0) {
        fprintf(stderr, "dlist: %s\n", err);
        conf_unref(&cf);
        return TELL_EX_CONFIG;
    }
    for (int i = 2; i < argc; i++) {
        char *text;
        size_t len;
        if (file_read_all(argv[i], MEMBERS_FILE_MAX, &text, &len) < 0) {
            fprintf(stderr, "dlist: %s: %s\n", argv[i], strerror(errno));
            rc = TELL_EX_REFUSED;
            continue;
        }
        if (archive_store(cf, def, "", text, len, time(NULL), err, sizeof(err)) < 0) {
            fprintf(stderr, "dlist: %s: %s\n", argv[i], err);
            rc = TELL_EX_REFUSED;
        } else
            printf("archived %s\n", argv[i]);
        free(text);
    }
    conf_unref(&cf);
    return rc;
}

/* main_client - dlist [-c FILE] COMMAND ARGS: the command to the running dlist, with
 * tellsmtp's exit codes. */
static int
main_client(const char *conf_path, int argc, char **argv)
{
    static const struct {
        const char *name;
        int args;
    } cmds[] = {{"lists", 0},  {"who", 1},  {"add", 2},     {"remove", 2},
                {"reload", 0}, {"held", 1}, {"approve", 2}, {"reject", 2}};
    struct conf_diag d = {0};
    struct conf *cf;
    char req[CTL_LINE_MAX], text[512], *sock;
    size_t o = 0, i;
    int rc;

    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[0], cmds[i].name) == 0)
            break;
    if (i == sizeof(cmds) / sizeof(cmds[0]) || argc != cmds[i].args + 1) {
        fprintf(stderr, "usage: dlist [-c FILE] lists | who LIST | add LIST ADDRESS | remove "
                        "LIST ADDRESS | reload | held LIST | approve LIST ID | reject LIST ID |\n"
                        "       archive LIST MESSAGE-FILE...\n");
        return TELL_EX_USAGE;
    }
    for (int k = 0; k < argc; k++) {
        if (strpbrk(argv[k], " \t\r\n") != NULL || o + strlen(argv[k]) + 2 > sizeof(req)) {
            fprintf(stderr, "dlist: bad argument '%s'\n", argv[k]);
            return TELL_EX_USAGE;
        }
        o += (size_t)snprintf(req + o, sizeof(req) - o, "%s%s", k ? " " : "", argv[k]);
    }
    cf = conf_load(conf_path, &d);
    conf_diag_free(&d);
    if (cf != NULL) {
        sock = xasprintf("%s/dlist.ctl", cf->work_path);
        conf_unref(&cf);
    } else if ((sock = main_scan_work_path(conf_path)) == NULL) {
        fprintf(stderr, "dlist: %s: %s\n", conf_path, strerror(errno));
        return TELL_EX_CONFIG;
    }
    rc = ctl_call(sock, req, 30000, main_print, NULL, text, sizeof(text));
    if (rc == CTL_R_OK) {
        if (text[0] != '\0')
            printf("%s\n", text);
        free(sock);
        return TELL_EX_OK;
    }
    fprintf(stderr, "dlist: %s%s%s\n", rc == CTL_R_ERR ? "" : sock, rc == CTL_R_ERR ? "" : ": ",
            text);
    free(sock);
    return rc == CTL_R_ERR ? TELL_EX_REFUSED : TELL_EX_UNREACHABLE;
}

/* main - dlist. */
int
main(int argc, char **argv)
{
    const char *conf = NULL;
    int i;

    /* a command word after the options: the client */
    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "-i") == 0) && i + 1 < argc)
            conf = argv[++i];
        else if (strcmp(argv[i], "archive") == 0 && argc - i >= 3)
            return main_archive(conf_default_path(conf), argc - i, argv + i);
        else if (argv[i][0] != '-')
            return main_client(conf_default_path(conf), argc - i, argv + i);
        else if (strncmp(argv[i], "-c", 2) != 0 && strncmp(argv[i], "-i", 2) != 0)
            break;
        else
            conf = argv[i] + 2;
    }
    {
        struct server_opts o = {0};
        server_args(argc, argv, "dlist", main_proto.summary, &o);
        if (o.test_only)
            return main_check(&o);
    }
    return server_main(&main_srv, &main_proto, argc, argv);
}
