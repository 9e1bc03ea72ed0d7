/*
 * outq_int - what outq.c (files, claims, results, scheduling) and outq_dest.c (a
 * destination: its route, session and transactions) share. Not for other files.
 *
 * Contract: every function here runs on the loop. A struct outq_dest is one SMTP
 * session's worth of work for one destination key (a domain by MX, or OUTQ_RELAY and a
 * smarthost/gateway spec); several may exist per key (smtp_out_per_domain). It lives
 * from outq_dest_get until outq_dest_done, which frees it and lets waiting ones start.
 */
#ifndef DSMTP_OUTQ_INT_H
#define DSMTP_OUTQ_INT_H

#include <stdbool.h>
#include <time.h>

#include "dane.h"
#include "dkim.h"
#include "dns.h"
#include "dsnparam.h"
#include "mtasts.h"
#include "tlsrpt.h"
#include "outq.h"
#include "smtpc.h"
#include "tls.h"
#include "tls_policy.h"

#define OUTQ_HELD_BYTES (64L << 20) /* message text held at once (one more may pass) */
#define OUTQ_REPLY_MS 300000        /* RFC 5321 4.5.3.2: 5 minutes for a reply */
#define OUTQ_DATA_MS 600000         /* 10 minutes after the final dot */
#define OUTQ_STS_FETCH_MS 30000     /* an MTA-STS policy fetch */
#define OUTQ_PASS_MAX 4096          /* the password file read at most */
#define OUTQ_RELAY "relay "         /* a destination key's prefix: a smarthost or gateway spec */
#define OUTQ_DEST_BATCH 4           /* messages waiting for one session before key gets another */

struct outq_file {
    struct outq_file *next;
    struct outq *oq;
    struct conf *cf;
    char id[96];
    char *path;
    char *sender;
    time_t arrival;
    char *text;
    size_t len;
    bool eightbit;
    size_t n;
    char **addr;             /* the remote recipients taken */
    struct smtpc_reply *res; /* their results (code 0: none) */
    char **relay;            /* who answered each */
    bool *dsn_on;            /* ... and whether it offered DSN (NOTIFY went on) */
    enum dsn_ret ret;        /* DSN: the message's RET and ENVID, */
    char *envid;
    bool requiretls;                      /* QF_REQUIRETLS (RFC 8689) */
    bool tls_no;                          /* "TLS-Required: No" without REQUIRETLS */
    char verp[3];                         /* XVERP delimiters: one recipient a message */
    char (*notify)[DSNPARAM_NOTIFY_TEXT]; /* each recipient's NOTIFY ("" none) and ORCPT */
    char **orcpt;
    char **xheader; /* each recipient's own header fields (XHEADER: xtext), or NULL */
    bool bh_set;    /* bh is the text's DKIM body hash (outq_sign.c; oq->mu) */
    unsigned char bh[DKIM_HASH_LEN];
    time_t started;
    int dests;                   /* destinations still to finish */
    int sent, deferred, bounced; /* the results written (for the counters) */
    uv_work_t w;
};

struct outq_msg {
    struct outq_msg *next;
    struct outq_file *f;
    size_t *idx; /* into f->addr */
    size_t n;
    struct smtpc_rcpt *rc;
    struct smtpc_msg m;
    char *vsender; /* XVERP: its recipient's VERP sender (m.sender), or NULL */
    char *head;    /* its recipient's own header fields (m.head), made when it is sent */
};

struct outq_pass;

struct outq_dest {
    struct outq_dest *next;
    struct outq *oq;
    char *key;            /* the domain (by MX), or OUTQ_RELAY then the spec */
    const char *spec;     /* a smarthost or gateway spec (in key), or NULL: by MX */
    struct tlspol pol;    /* its TLS policy (tls_policy.h), decided at the start */
    bool require;         /* pol is mandatory: never in plaintext */
    char pol_domain[256]; /* what pol was looked up by: the domain, or the host of spec */
    char *user, *pass;    /* smarthost_auth, the password read (zeroed when freed) */
    struct outq_pass *pj; /* the password file being read */
    struct outq_sign *sj; /* the next copy being signed (outq_sign.c) */
    struct outq_msg *msgs, *last;
    size_t nmsgs; /* waiting in msgs */
    bool running;
    char **hosts;
    size_t nhosts, hi;
    bool mx; /* hosts came from MX (or are to) */
    int port;
    char **addrs;
    size_t naddrs, ai;
    char host[256]; /* the host being tried */
    bool plain;     /* the retry without STARTTLS */
    struct dns_query *q;
    struct smtpc *c;
    bool answered;          /* some address gave a session */
    bool dsn;               /* the session's server offered DSN */
    struct smtpc_reply err; /* why the last try failed */
    char relay[300];
    time_t since;             /* started (for showsend) */
    unsigned long long bytes; /* message text sent over the session */
    int carried;              /* transactions the session has carried */
    char tls[128];            /* its TLS, "" for none */
    struct mtasts_req *sr;    /* the MTA-STS policy being looked up */
    enum mtasts_mode sts;     /* the domain's MTA-STS mode (MTASTS_NONE: no policy) */
    bool tls_verified;        /* ... verified as pol asked (verify, secure), or by DANE */
    bool dane_on;             /* DANE is wanted (tlspol_dane) */
    bool mx_secure;           /* the MX RRset (or the spec's host name) is DNSSEC-validated */
    struct dane *dane;        /* the current host's usable TLSA records, or NULL */
    char canon[256];          /* the current host's CNAME target ("": not an alias) */
    bool tlsa_orig;           /* the TLSA lookup of the host's own name, after canon's */
    bool dane_encrypt;        /* ... it has TLSA records but none usable: TLS, unverified */
    bool tls_no;              /* carries "TLS-Required: No" mail only: no DANE, no MTA-STS */
};

/* A password file read on the pool for a destination (which may end meanwhile: t NULL). */
struct outq_pass {
    struct outq *oq;
    struct outq_dest *t;
    char *path;
    char *pass;
    char err[200];
    uv_work_t w;
};

struct outq_dead {
    struct outq_dead *next;
    char *key;
    time_t until;
    struct smtpc_reply why;
};

struct outq {
    struct smtpd *d;
    uv_mutex_t mu;
    struct outq_file *incoming; /* taken, not started (mu) */
    char (*claims)[96];         /* ids of the files held (mu) */
    size_t nclaims, aclaims;
    struct outq_dest *dests;
    struct outq_dead *dead;
    SSL_CTX *tls;
    struct mtasts *sts; /* MTA-STS policies (mta_sts), or NULL */
    struct tlsrpt *rpt; /* TLS-RPT counters (tls_rpt), or NULL */
    long conns;
    size_t max;        /* queue_active_max, for the scans (mu) */
    size_t held_bytes; /* text of the files held (mu) */
    bool refused;      /* a scan was turned away for want of room (mu) */
    bool suspended;    /* tellsmtp suspend: nothing new starts (mu) */
    bool stopping;     /* set with mu held */
    uv_async_t wake;   /* outq_take from outq_offer: outq_kick on the loop */
};

/* outq.c */
void outq_reply_set(struct smtpc_reply *r, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* outq_msg_finish - m's recipients have their results (r: the same for every one that has
 * none yet, or NULL: each its own); dsn: the server offered DSN. Frees m. */
void outq_msg_finish(struct outq_msg *m, const struct smtpc_reply *r, const char *relay, bool dsn);
/* outq_start_dests - start waiting destinations while connections are free. */
void outq_start_dests(struct outq *oq);

/* outq_dest.c */
/* outq_dest_get - the destination a message for key joins (made if needed); mail with
 * "TLS-Required: No" (tls_no) travels apart from the rest. */
struct outq_dest *outq_dest_get(struct outq *oq, const char *key, bool tls_no);
/* outq_dest_start - resolve, connect, send what waits. */
void outq_dest_start(struct outq_dest *t);
/* outq_dest_all - every waiting message gets r (code 0: no result); t ends. */
void outq_dest_all(struct outq_dest *t, const struct smtpc_reply *r);
/* outq_dest_dead_clear - forget every dead destination. */
void outq_dest_dead_clear(struct outq *oq);
/* outq_dest_transmit - m (taken from t's waiting messages) over t's session now. */
void outq_dest_transmit(struct outq_dest *t, struct outq_msg *m);

/* outq_sign.c - a copy with its recipient's own header fields (m->head, XHEADER) whose
 * From: domain has a dkim_sign key is signed again, over those fields too (RFC 8058 4:
 * List-Unsubscribe and List-Unsubscribe-Post must be covered by a DKIM signature), on the
 * thread pool; the message's body hash is computed once per file. A signature that
 * cannot be made is logged and the copy goes unsigned. */
struct outq_sign;
/* outq_sign_start - sign m's copy and then outq_dest_transmit it (true: t waits, t->sj
 * set); false: nothing to sign, the caller transmits it. */
bool outq_sign_start(struct outq_dest *t, struct outq_msg *m);
/* outq_sign_orphan - t ends while its copy is signed: the copy goes back to the queue
 * (4.3.2) when the signature is made. */
void outq_sign_orphan(struct outq_sign *j);

#endif
