/*
 * popd - the state dpop's modules share: one struct popd per process, owned by main.c and
 * living on the loop thread.
 *
 * Contract:
 * - cf and db are the snapshots new sessions take references from; a session keeps the
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

struct pop_session;
struct ctl_server;
struct penalty;
struct mailbox_inuse;

/* What a listener is for. */
enum popd_port { POPD_PORT_POP3, POPD_PORT_POP3S };

struct popd;

struct popd_listener {
    struct popd *d;
    enum popd_port kind;
};

/* Counters since start (tellpop stats). */
struct popd_stats {
    unsigned long logins_ok, logins_failed, retrieved, deleted;
    unsigned long long bytes_out;
};

struct popd {
    uv_loop_t *loop;
    struct conf *cf;
    struct auth_db *db;
    struct auth_cache *cache;
    SSL_CTX *tls; /* NULL: no STLS, no POP3S */
    struct net_server *net;
    struct popd_listener listeners[2];
    char hostname[256];
    char *index_dir;    /* work_path/dpop/index */
    char *bulletin_dir; /* work_path/dpop/bulletins: who had which bulletin */
    bool stopping;
    struct pop_session *sessions; /* every live session (a list through s->next) */
    long nsessions;
    long jobs;                   /* thread-pool jobs still running */
    long ahead_windows;          /* RETR read-ahead windows allocated (retr.c) */
    struct penalty *penalty;     /* failed logins per client address and per user */
    struct mailbox_inuse *inuse; /* mailboxes with a session in TRANSACTION */
    struct popd_stats stats;
    void (*idle_cb)(struct popd *d); /* called when stopping and the last session ends */
    struct ctl_server *ctl;          /* work_path/dpop.ctl (control.c) */
    time_t started;
    long reloads;
    bool reloading;                      /* a reload job runs */
    bool reload_again;                   /* SIGHUP during a reload: once more after it */
    void (*shutdown_cb)(struct popd *d); /* graceful stop (main.c), for "shutdown" */
};

#endif
