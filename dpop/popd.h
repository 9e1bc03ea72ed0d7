/*
 * popd - the state dpop's modules share: one struct popd per process, owned by main.c and
 * living on the loop thread; it begins with the server core (common/server).
 *
 * Contract:
 * - srv.cf and srv.db are the snapshots new sessions take references from; a session keeps the
 *   snapshots it started with for its whole life.
 * - Everything here is touched on the loop thread only. Thread-pool jobs get their own
 *   copies of what they need (paths, settings as plain values).
 */
#ifndef DPOP_POPD_H
#define DPOP_POPD_H

#include <stdbool.h>
#include <time.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "auth.h"
#include "conf.h"
#include "net.h"
#include "server.h"

struct pop_session;
struct ctl_server;
struct penalty;
struct mailbox_inuse;

/* The listeners, in the order of the port table (main.c). */
enum popd_port { POPD_PORT_POP3, POPD_PORT_POP3S };

/* Counters since start (tellpop stats). */
struct popd_stats {
    unsigned long logins_ok, logins_failed, retrieved, deleted; /* bytes out: srv.bytes_out */
};

struct popd {
    struct server srv;       /* first: the core (loop, snapshots, listeners, sessions, control) */
    char *index_dir;         /* work_path/dpop/index */
    char *bulletin_dir;      /* work_path/dpop/bulletins: who had which bulletin */
    long ahead_windows;      /* RETR read-ahead windows allocated (retr.c) */
    struct penalty *penalty; /* failed logins per client address and per user */
    struct mailbox_inuse *inuse; /* mailboxes with a session in TRANSACTION */
    struct popd_stats stats;
};

/* popd_of - dpop's state around its server core. */
static inline struct popd *
popd_of(struct server *srv)
{
    return (struct popd *)srv;
}

#endif
