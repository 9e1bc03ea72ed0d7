/*
 * smtpd - the state dsmtp's modules share: one struct smtpd per process, owned by main.c
 * and living on the loop thread.
 *
 * Contract:
 * - cf and db are the snapshots new sessions and jobs take references from; a session
 *   keeps the snapshots it started with for its whole life.
 * - Everything here is touched on the loop thread only. Thread-pool jobs get their own
 *   references (conf_ref, auth_db_ref) and copies of what they need.
 */
#ifndef DSMTP_SMTPD_H
#define DSMTP_SMTPD_H

#include <stdbool.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "auth.h"
#include "conf.h"
#include "net.h"

struct smtp_session;
struct queue;
struct maildrop;
struct ctl_server;

#define SMTPD_REJECT_KINDS 48 /* distinct (code, enhanced code) pairs counted */

/* Counters since start (control.c reports them: tellsmtp stats). */
struct smtpd_stats {
    unsigned long long msgs_in;   /* messages accepted (250 after DATA) */
    unsigned long long bytes_in;  /* their size as received */
    unsigned long long rcpts_in;  /* their recipients */
    unsigned long long delivered; /* mailboxes written at once */
    unsigned long long queued;    /* recipients queued */
    unsigned long long failed;    /* recipients refused for good after DATA */
    struct {
        int code;
        char ecode[12];
        unsigned long long n;
    } rejects[SMTPD_REJECT_KINDS]; /* 4xx/5xx replies by code */
    unsigned long long rejects_other;
    int nrejects;
};

/* What a listener is for. */
enum smtpd_port { SMTPD_PORT_SMTP, SMTPD_PORT_SUBMISSION, SMTPD_PORT_SMTPS };

struct smtpd;

struct smtpd_listener {
    struct smtpd *d;
    enum smtpd_port kind;
};

struct smtpd {
    uv_loop_t *loop;
    struct conf *cf;
    struct auth_db *db;
    struct auth_cache *cache;
    SSL_CTX *tls; /* NULL: no STARTTLS, no SMTPS */
    struct net_server *net;
    struct smtpd_listener listeners[3];
    char hostname[256];
    bool stopping;
    struct smtp_session *sessions; /* every live session (a list through s->next) */
    long nsessions;
    long batches; /* deliveries still running on the pool */
    struct queue *queue;
    struct maildrop *maildrop;
    void (*idle_cb)(struct smtpd *d); /* called when stopping and the last session ends */
    struct ctl_server *ctl;           /* work_path/dsmtp.ctl (control.c) */
    struct smtpd_stats stats;
    time_t started;
    long reloads;
    bool reloading;                       /* a reload job runs */
    bool reload_again;                    /* SIGHUP during a reload: once more after it */
    void (*shutdown_cb)(struct smtpd *d); /* graceful stop (main.c), for "shutdown" */
};

#endif
