/*
 * dsmtp - dmail's ESMTP server: its listeners and what it runs beside the sessions (the
 * queue runner, outbound delivery and the maildrop pickup), on the server core
 * (common/server/server.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "dns.h"
#include "bombs.h"
#include "fromip.h"
#include "ldapriv.h"
#include "ldaspawn.h"
#include "rbl.h"
#include "file.h"
#include "log.h"
#include "maildrop.h"
#include "outq.h"
#include "penalty.h"
#include "queue.h"
#include "server.h"
#include "session.h"
#include "smtpd.h"
#include "spill.h"
#include "xmem.h"

#define MAIN_DNS_TRIES 2 /* each server is asked twice within dns_timeout */

static struct smtpd main_d;

static const struct server_port_def main_ports[] = {
    [SMTPD_PORT_SMTP] = {"smtp", offsetof(struct conf, smtp_port), false},
    [SMTPD_PORT_SUBMISSION] = {"submission", offsetof(struct conf, submission_port), false, true},
    [SMTPD_PORT_SMTPS] = {"smtps", offsetof(struct conf, smtps_port), true, true},
};

/* main_refusal - the line for a client over the connection caps. */
static void
main_refusal(struct server *srv, char *buf, size_t len)
{
    snprintf(buf, len, "421 4.7.0 %s Too many connections, try later\r\n", srv->hostname);
}

/* main_dirs - the spool directories (as run_as). maildrop/ is created with mode 3770
 * (setgid, sticky): sendmail(8), setgid to run_as's group, writes files there that dsmtp
 * reads and removes. queue/ is 2750 in maildrop/'s group, its files 0640: mailq reads
 * them with the same group. */
static void
main_dirs(const struct conf *cf)
{
    static const char *const subs[] = {"queue", "tmp", "corrupt"};
    struct stat st;
    char *p;

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        p = xasprintf("%s/%s", cf->spool_dir, subs[i]);
        if (file_mkdirs(p, 0700) < 0)
            log_fatale("cannot create %s", p);
        free(p);
    }
    spill_clean(cf->spool_dir);
    p = xasprintf("%s/maildrop", cf->spool_dir);
    if (stat(p, &st) < 0) {
        if (file_mkdirs(p, 0700) < 0 || chmod(p, 03770) < 0)
            log_fatale("cannot create %s", p);
    } else if (!S_ISDIR(st.st_mode)) {
        log_fatal("%s is not a directory", p);
    }
    if (stat(p, &st) < 0)
        log_fatale("cannot stat %s", p);
    free(p);
    /* queue/ is readable by maildrop/'s group, so that mailq (set-group-ID to it) lists
     * the queue for any local user, as Postfix's does; nobody else may look in. */
    p = xasprintf("%s/queue", cf->spool_dir);
    if (chown(p, (uid_t)-1, st.st_gid) < 0 || chmod(p, 02750) < 0)
        log_fatale("cannot set the owner and mode of %s", p);
    free(p);
}

/* main_dns - the resolver every lookup of this process shares (dns_host, dns_timeout). */
static struct dns *
main_dns(struct server *srv)
{
    const struct conf *cf = srv->cf;
    char err[300], *servers = xstrdup("");
    struct dns *dns;

    for (size_t i = 0; i < cf->dns_host.n; i++) {
        char *s = xasprintf("%s%s%s", servers, i ? "," : "", cf->dns_host.v[i]);
        free(servers);
        servers = s;
    }
    dns = dns_new(srv->loop, servers, cf->dns_timeout * 1000L, MAIN_DNS_TRIES, err, sizeof(err));
    free(servers);
    if (dns == NULL)
        log_fatal("DNS: %s", err);
    return dns;
}

/* main_privileged - as root: the helper that starts programs as their user (ldapriv.h). */
static void
main_privileged(struct server *srv)
{
    ldapriv_start(srv->cf);
}

/* main_start - the spool, the resolver, the queue runner and the maildrop pickup. */
static void
main_start(struct server *srv)
{
    struct smtpd *d = smtpd_of(srv);

    main_dirs(srv->cf);
    d->penalty = penalty_new();
    d->dns = main_dns(srv);
    d->rbl = rbl_new();
    d->fromip = fromip_new();
    d->bombs = bombs_new((size_t)srv->cf->bomb_entries);
    d->outq = outq_new(d);
    ldaspawn_start(srv->loop); /* programs spawned on the loop (lda.h) */
    d->queue = queue_new(d);
    d->maildrop = maildrop_new(d);
}

/* main_stop - the runners stop (jobs on the pool finish first). */
static void
main_stop(struct server *srv)
{
    struct smtpd *d = smtpd_of(srv);

    queue_stop(&d->queue);
    ldaspawn_stop();
    maildrop_stop(&d->maildrop);
    outq_stop(d->outq);
    dns_free(&d->dns);
}

/* main_cleanup - after the loop: no scan runs any more. */
static void
main_cleanup(struct server *srv)
{
    outq_free(&smtpd_of(srv)->outq);
    penalty_free(&smtpd_of(srv)->penalty);
    rbl_free(&smtpd_of(srv)->rbl);
    fromip_free(&smtpd_of(srv)->fromip);
    bombs_free(&smtpd_of(srv)->bombs);
}

static const struct server_proto main_proto = {
    .name = "dsmtp",
    .summary = "dmail ESMTP server: receives mail for local mailboxes",
    .protocol = "SMTP",
    .no_tls = "no STARTTLS, no SMTPS listener",
    .ports = main_ports,
    .conf_host = offsetof(struct conf, dsmtp_host),
    .nports = sizeof(main_ports) / sizeof(main_ports[0]),
    .conf_mgr_port = offsetof(struct conf, smtp_manager_port),
    .ports_optional = true, /* the maildrop pickup still runs */
    .refusal = main_refusal,
    .sess = &session_ops,
    .cmds = control_cmds,
    .ncmds = CONTROL_NCMDS,
    .sess_user = control_sess_user,
    .privileged = main_privileged,
    .start = main_start,
    .status = control_status,
    .stats = control_stats,
    .stop = main_stop,
    .cleanup = main_cleanup,
};

/* main - dsmtp. */
int
main(int argc, char **argv)
{
    return server_main(&main_d.srv, &main_proto, argc, argv);
}
