/*
 * sendmail - the local submission front end of dmail; also mailq and newaliases.
 *
 * Start-up order: lower the set-group-ID privilege (smdrop_init) before anything else,
 * parse the command line, read the configuration as the real user, read the message as
 * the real user, and raise the privilege only to write the maildrop file. See
 * man/sendmail.8 for the privilege model.
 */
#include "alias.h"
#include "conf.h"
#include "ctl.h"
#include "smdrop.h"
#include "smmsg.h"
#include "smopt.h"
#include "smq.h"
#include "smsmtp.h"
#include "smsubmit.h"
#include "xmem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef DMAIL_VERSION
#define DMAIL_VERSION "unknown"
#endif

static const char *prog = "sendmail";

/* usage - the --help text of the name we were called by (mailq, newaliases, sendmail). */
static void
usage(FILE *f)
{
    if (strcmp(prog, "mailq") == 0) {
        fprintf(f,
                "usage: mailq [-C FILE] [-v]\n"
                "List the messages in dsmtp's queue and maildrop: id, size, arrival, sender and\n"
                "each recipient with its state and last reply (the same as sendmail -bp).\n"
                "  -C FILE    dmail.conf to read (default $DMAIL_CONF, /etc/dmail/dmail.conf)\n"
                "  -v         verbose\n"
                "Exit status follows sysexits.h. See sendmail(8).\n");
        return;
    }
    if (strcmp(prog, "newaliases") == 0) {
        fprintf(f,
                "usage: newaliases [-C FILE]\n"
                "Check dmail.conf and the alias files it names (alias_file, alias_file_domain),\n"
                "print each problem as file:line: reason, and when there is none ask a running\n"
                "dsmtp to reload them (as 'tellsmtp reload'). Exit status 0, or 78 (EX_CONFIG)\n"
                "when a file has an error or dsmtp refused the reload. The same as sendmail -bi.\n"
                "See sendmail(8).\n");
        return;
    }
    fprintf(f,
            "usage: %s [-t] [-i] [-oi] [-f SENDER] [-F NAME] [-C FILE] [-v] [--] RCPT...\n"
            "       %s -bp | -bi | -bs | -q\n"
            "  -t         take recipients from To:, Cc:, Bcc: (Bcc: is removed)\n"
            "  -i, -oi    a line with a single \".\" does not end the message\n"
            "  -f SENDER  envelope sender (default: your login at the main domain)\n"
            "  -F NAME    full name for the From: header added when there is none\n"
            "  -N NOTIFY  DSN: never, or success,failure,delay (default failure,delay)\n"
            "  -R full|hdrs  DSN: what a failure report returns; -V ENVID its envelope id\n"
            "  -C FILE    dmail.conf to read (default $DMAIL_CONF, /etc/dmail/dmail.conf)\n"
            "  -bp        list the queue (mailq); -bi check aliases, dsmtp reloads (newaliases)\n"
            "  -bs        speak SMTP on standard input and output\n"
            "  -q         ask for a queue run; -v verbose\n"
            "Historic sendmail options (-oem, -odb, -U, -h N, -B TYPE, ...) are ignored.\n"
            "Exit status follows sysexits.h. See sendmail(8).\n",
            prog, prog);
}

/* main_trusted_config - a configuration named by -C or DMAIL_CONF may direct the
 * privileged maildrop write only when it is root's: owned by root and writable by no
 * one else. */
static int
main_trusted_config(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
           (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* main_load_config - the snapshot, read as the real user; the default file may be read
 * with the privilege when the user may not read it (it can hold secrets). NULL after the
 * problems were printed. */
static struct conf *
main_load_config(struct smdrop *d, const struct smopt *o)
{
    const char *env = getenv("DMAIL_CONF");
    const char *path = conf_default_path(o->config);
    bool chosen = o->config != NULL || (env != NULL && env[0] != '\0');
    struct conf_diag diag = {0};
    struct conf *cf;

    if (chosen && d->priv && getuid() != 0 && !main_trusted_config(path)) {
        if (o->verbose)
            fprintf(stderr, "%s: %s is not root's: giving up the maildrop group\n", prog, path);
        if (smdrop_drop(d) < 0) {
            fprintf(stderr, "%s: cannot drop group privilege: %s\n", prog, strerror(errno));
            return NULL;
        }
    }
    if (!chosen && d->priv && access(path, R_OK) != 0 && errno == EACCES) {
        /* Only the verdict is shown: the messages could quote the protected file. */
        if (smdrop_raise(d) < 0)
            return NULL;
        cf = conf_load(path, &diag);
        smdrop_lower(d);
        if (cf == NULL)
            fprintf(stderr, "%s: %s: %d error(s); run 'dsmtp -t' as its owner to see them\n", prog,
                    path, diag.errors);
        conf_diag_free(&diag);
        return cf;
    }
    cf = conf_load(path, &diag);
    for (size_t i = 0; i < diag.n; i++)
        if (cf == NULL || o->verbose || o->mode == SMOPT_NEWALIASES)
            fprintf(stderr, "%s: %s\n", prog, diag.msgs[i]);
    conf_diag_free(&diag);
    return cf;
}

/* main_line - a data line of dsmtp's answer (a reload's problems) to stderr. */
static void
main_line(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s: %s\n", prog, line);
}

/* main_newaliases - the alias files of cf were read without errors (main_load_config
 * printed any problem): say so and ask a running dsmtp to reload them. */
static int
main_newaliases(const struct conf *cf)
{
    char *sock = xasprintf("%s/dsmtp.ctl", cf->work_path), text[1024];
    int rc;

    printf("%s: %s: %zu aliases\n", prog, cf->path, alias_count(cf->aliases));
    rc = ctl_call(sock, "reload", 30000, main_line, NULL, text, sizeof(text));
    free(sock);
    switch (rc) {
    case CTL_R_OK:
        printf("%s: dsmtp reloaded: %s\n", prog, text);
        return 0;
    case CTL_R_ERR:
        fprintf(stderr, "%s: dsmtp refused the reload: %s\n", prog, text);
        return EX_CONFIG;
    default:
        printf("%s: dsmtp is not running (%s); it reads the aliases when it starts\n", prog, text);
        return 0;
    }
}

/* main_deliver - the default mode: read the message from stdin, drop it for dsmtp. */
static int
main_deliver(const struct smsubmit *s, const struct smopt *o)
{
    struct smaddr_list rcpts = {0};
    struct smmsg m = {0};
    char sender[1024], err[512], id[96];
    int rc = 0;

    if (o->sender != NULL)
        rc = smsubmit_sender(s, o->sender, sender, sizeof sender, err, sizeof err);
    else
        rc = smsubmit_default_sender(s, sender, sizeof sender, err, sizeof err);
    for (size_t i = 0; rc == 0 && i < o->nrcpt; i++)
        rc = smsubmit_add_rcpts(s, o->rcpt[i], strlen(o->rcpt[i]), "recipient", &rcpts, err,
                                sizeof err);
    if (rc != 0)
        goto out;
    if (rcpts.n == 0 && !o->extract) {
        snprintf(err, sizeof err, "no recipients given (use -t to take them from the headers)");
        rc = EX_USAGE;
        goto out;
    }
    switch (
        smmsg_read(STDIN_FILENO, !o->ignore_dots, (unsigned long long)s->cf->max_msg_size, &m)) {
    case SMMSG_TOO_BIG:
        snprintf(err, sizeof err, "message too large (limit %llu bytes)",
                 (unsigned long long)s->cf->max_msg_size);
        rc = EX_UNAVAILABLE;
        goto out;
    case SMMSG_IOERR:
        snprintf(err, sizeof err, "cannot read the message: %s", strerror(errno));
        rc = EX_NOINPUT;
        goto out;
    }
    rc = smsubmit_message(s, &m, sender, &rcpts, o->extract, o->fullname, id, err, sizeof err);
    if (rc == 0 && o->verbose) {
        fprintf(stderr, "%s: from <%s> queued as %s for", prog, sender, id);
        for (size_t i = 0; i < rcpts.n; i++)
            fprintf(stderr, " <%s>", rcpts.v[i]);
        fputc('\n', stderr);
    }
out:
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", prog, err);
    smmsg_free(&m);
    smaddr_free(&rcpts);
    return rc;
}

int
main(int argc, char **argv)
{
    struct smdrop d;
    struct smopt o;
    struct smsubmit s;
    struct conf *cf = NULL;
    char err[256];
    int rc = 0;

    if (smdrop_init(&d) < 0) {
        fprintf(stderr, "sendmail: cannot lower privileges: %s\n", strerror(errno));
        return EX_OSERR;
    }
    prog = smopt_progname(argc > 0 ? argv[0] : NULL);
    if (smopt_parse(argc, argv, &o, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        usage(stderr);
        rc = EX_USAGE;
        goto done;
    }
    switch (o.mode) {
    case SMOPT_HELP:
        usage(stdout);
        goto done;
    case SMOPT_VERSION:
        printf("%s (dmail) %s\n", prog, DMAIL_VERSION);
        goto done;
    case SMOPT_QRUN:
        printf("%s: dsmtp runs its queue by itself and picks up the maildrop as soon as a "
               "file arrives; nothing to do\n",
               prog);
        goto done;
    default:
        break;
    }
    cf = main_load_config(&d, &o);
    if (cf == NULL) {
        rc = EX_CONFIG;
        goto done;
    }
    smsubmit_init(&s, cf, &d, o.verbose);
    s.notify = o.notify;
    s.ret = o.ret;
    s.envid = o.envid[0] ? o.envid : NULL;
    if (o.xverp) {
        if (o.verp[0] == '\0')
            snprintf(o.verp, sizeof o.verp, "%s", cf->verp_delimiters);
        if (!conf_verp_delims_ok(cf, o.verp)) {
            fprintf(stderr, "%s: -XV: the delimiters must be two of \"%s\"\n", prog,
                    cf->verp_delimiter_filter);
            rc = EX_USAGE;
            goto done;
        }
        s.verp = o.verp;
    }
    switch (o.mode) {
    case SMOPT_MAILQ:
        rc = smq_list(&d, cf->spool_dir, stdout, stderr);
        break;
    case SMOPT_NEWALIASES:
        rc = main_newaliases(cf);
        break;
    case SMOPT_SMTP:
        rc = smsmtp_run(&s, stdin, stdout);
        break;
    default:
        rc = main_deliver(&s, &o);
        break;
    }
done:
    /* every way out gives the group up for good first */
    if (smdrop_drop(&d) < 0 && rc == 0)
        rc = EX_OSERR;
    if (cf != NULL)
        conf_unref(&cf);
    smopt_free(&o);
    if (fflush(stdout) != 0 && rc == 0)
        rc = EX_IOERR;
    return rc;
}
