/*
 * dpop - dmail's POP3 server: its listeners, directories and login throttling, on the
 * server core (common/server/server.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "control.h"
#include "file.h"
#include "log.h"
#include "mailbox.h"
#include "penalty.h"
#include "popd.h"
#include "server.h"
#include "session.h"
#include "xmem.h"

static struct popd main_d;

static const struct server_port_def main_ports[] = {
    [POPD_PORT_POP3] = {"pop3", offsetof(struct conf, pop_port), false},
    [POPD_PORT_POP3S] = {"pop3s", offsetof(struct conf, pop3s_port), true},
};

/* main_refusal - the line for a client over the connection caps. */
static void
main_refusal(struct server *srv, char *buf, size_t len)
{
    snprintf(buf, len, "-ERR [SYS/TEMP] Too many connections, try later\r\n");
}

/* main_start - the mailbox index and bulletin directories, the tables of the loop. */
static void
main_start(struct server *srv)
{
    struct popd *d = popd_of(srv);

    d->index_dir = xasprintf("%s/dpop/index", srv->cf->work_path);
    d->bulletin_dir = xasprintf("%s/dpop/bulletins", srv->cf->work_path);
    if (file_mkdirs(d->index_dir, 0700) < 0)
        log_fatale("cannot create %s", d->index_dir);
    if (file_mkdirs(d->bulletin_dir, 0700) < 0)
        log_fatale("cannot create %s", d->bulletin_dir);
    d->penalty = penalty_new();
    d->inuse = mailbox_inuse_new();
}

/* main_cleanup - after the loop. */
static void
main_cleanup(struct server *srv)
{
    struct popd *d = popd_of(srv);

    mailbox_inuse_free(&d->inuse);
    penalty_free(&d->penalty);
    free(d->index_dir);
    free(d->bulletin_dir);
}

static const struct server_proto main_proto = {
    .name = "dpop",
    .summary = "dmail POP3 server: serves the mailboxes dsmtp delivers to",
    .protocol = "POP3",
    .no_tls = "no STLS, no POP3S listener",
    .ports = main_ports,
    .conf_host = offsetof(struct conf, dpop_host),
    .nports = sizeof(main_ports) / sizeof(main_ports[0]),
    .conf_mgr_port = offsetof(struct conf, pop_manager_port),
    .refusal = main_refusal,
    .sess = &session_ops,
    .cmds = control_cmds,
    .ncmds = CONTROL_NCMDS,
    .sess_user = control_sess_user,
    .start = main_start,
    .stats = control_stats,
    .cleanup = main_cleanup,
};

/* main - dpop. */
int
main(int argc, char **argv)
{
    return server_main(&main_d.srv, &main_proto, argc, argv);
}
