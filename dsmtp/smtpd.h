/*
 * smtpd - the state dsmtp's modules share: one struct smtpd per process, owned by main.c
 * and living on the loop thread; it begins with the server core (common/server).
 *
 * Contract:
 * - srv.cf and srv.db are the snapshots new sessions and jobs take references from; a
 *   session keeps the snapshots it started with for its whole life.
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
#include "data.h"
#include "net.h"
#include "server.h"

struct smtp_session;
struct queue;
struct maildrop;
struct outq;
struct ctl_server;
struct penalty;
struct dns;
struct rbl;
struct fromip;
struct bombs;

#define SMTPD_REJECT_KINDS 48 /* distinct (code, enhanced code) pairs counted */

/* Counters since start (control.c reports them: tellsmtp stats). */
struct smtpd_stats {
    unsigned long long msgs_in;                 /* messages accepted (250 after DATA) */
    unsigned long long bytes_in;                /* their size as received */
    unsigned long long rcpts_in;                /* their recipients */
    unsigned long long delivered;               /* mailboxes written at once (SMTP) */
    unsigned long long queued;                  /* recipients queued */
    unsigned long long failed;                  /* recipients refused for good after DATA */
    unsigned long long picked_up, picked_rcpts; /* sendmail's maildrop files taken (maildrop.c) */
    unsigned long long queue_delivered;         /* mailboxes written by the queue runner */
    unsigned long long queue_failed;            /* its recipients failed for good */
    unsigned long long out_sent, out_deferred, out_bounced; /* outbound results (outq.c) */
    unsigned long long out_conns, out_tls;                  /* sessions opened, with TLS */
    unsigned long long out_reused;   /* transactions on a session that had carried one */
    unsigned long long dkim_signed;  /* messages given DKIM signatures (dkim_sign.c) */
    unsigned long long dkim_sign_ns; /* the pool's CPU time making them */
    long queue_messages;             /* queue files at the last scan's end */
    time_t queue_oldest;             /* the oldest one's arrival then (0: none) */
    struct {
        int code;
        char ecode[12];
        unsigned long long n;
    } rejects[SMTPD_REJECT_KINDS]; /* 4xx/5xx replies by code */
    unsigned long long rejects_other;
    int nrejects;
};

/* The listeners, in the order of the port table (main.c). */
enum smtpd_port { SMTPD_PORT_SMTP, SMTPD_PORT_SUBMISSION, SMTPD_PORT_SMTPS };

struct smtpd {
    struct server srv; /* first: the core (loop, snapshots, listeners, sessions, control) */
    struct queue *queue;
    struct maildrop *maildrop;
    struct outq *outq;       /* outbound delivery (lives until after the loop) */
    struct penalty *penalty; /* failed AUTH per client address and per account */
    struct dns *dns;         /* the resolver (c-ares on the loop): MX, DNSBL, SPF, PTR */
    struct rbl *rbl;         /* DNSBL result cache (rbl.c) */
    struct fromip *fromip;   /* messages per client address (fromip.c) */
    struct bombs *bombs;     /* mail-bomb counters (bombs.c) */
    struct smtpd_stats stats;
    struct data_budget budget; /* message buffers of every session (data_memory_max) */
};

/* smtpd_of - dsmtp's state around its server core. */
static inline struct smtpd *
smtpd_of(struct server *srv)
{
    return (struct smtpd *)srv;
}

#endif
