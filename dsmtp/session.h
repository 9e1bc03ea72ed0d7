/*
 * session - one SMTP session: state machine, input loop with PIPELINING, replies with
 * enhanced status codes, error budget, timeouts, life cycle.
 *
 * Contract:
 * - Owns: the protocol part of struct smtp_session and its transaction; the core
 *   (common/server/sess.h) allocates, links, times out and frees the session and calls
 *   back through session_ops.
 * - Blocks on: nothing. Slow work (AUTH verification, delivery, and under unix_user the
 *   account lookups of a RCPT or VRFY whose account is not cached yet) runs on the pool;
 *   meanwhile the session waits (sess_go_async .. sess_resume), so replies always come
 *   in command order.
 * - Replies: commands write into s->base.reply with session_reply (several lines:
 *   separate them with '\n'); the core sends them when the command is done through
 *   session_ops.cmd_done, which delays them once the error budget's soft limit is passed. After
 * EHLO every 2xx/4xx/5xx reply carries an RFC 3463 code (RFC 2034: not the greeting, not the
 * EHLO/HELO answer, not 3xx).
 * - Commands are handled in command.c (table), smtp_auth.c (AUTH) and chunk.c (BDAT: while
 *   a chunk's octets are read, s->chunk.active, the input goes to chunk.c, not to the
 *   line reader, and the BDAT reply waits for the chunk's last octet).
 */
#ifndef DSMTP_SESSION_H
#define DSMTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "buf.h"
#include "data.h"
#include "net.h"
#include "smtp_parse.h"
#include "sess.h"
#include "smtpd.h"

#define SESSION_STATES(X)                                                                          \
    X(TLS_WAIT)  /* implicit TLS or STARTTLS handshake running */                                  \
    X(CONNECTED) /* greeted, waiting for HELO/EHLO */                                              \
    X(READY)     /* HELO/EHLO done, no transaction */                                              \
    X(MAIL)      /* MAIL accepted, no recipient yet */                                             \
    X(RCPT)      /* at least one recipient */                                                      \
    X(DATA)      /* receiving the message */                                                       \
    X(BDAT)      /* a BDAT transaction between chunks (RFC 3030) */                                \
    X(AUTH)      /* inside a SASL exchange */                                                      \
    X(QUIT)      /* closing */

enum session_state {
#define SESSION_STATE_ENUM(n) SS_##n,
    SESSION_STATES(SESSION_STATE_ENUM)
#undef SESSION_STATE_ENUM
};

struct smtp_rcpt_entry {
    char *addr;    /* as it goes into the queue file and the log */
    char *mailbox; /* NULL: queued (relayed, or a role address without a mailbox) */
    bool relay;    /* of another domain: queued for outbound delivery */
    bool dotfwd;   /* reached by the address given: its forward file applies (dotfwd.h) */
    char *lda;     /* an alias file's "|command" or "/path" for addr (deliver_dest), or NULL */
    int notify;    /* its RCPT's DSN NOTIFY */
    char *xheader; /* its RCPT's XHEADER (xheader.h), or NULL */
    char *orcpt;   /* its RCPT's DSN ORCPT; for a forward's destination without one, the
                    * address the client gave (rfc822;xtext); NULL: none */
};

/* The mail transaction (MAIL .. end of DATA). */
struct smtp_tx {
    char id[40];
    struct addr from;
    char sender[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8]; /* formatted, "" for <> */
    struct smtp_mail params;
    struct smtp_rcpt_entry *rcpt; /* the mailboxes, after forwards */
    size_t nrcpt, arcpt;
    size_t naccepted; /* RCPT commands accepted (what max_rcpts counts) */
    char *first;      /* the first accepted RCPT as given, for Received: "for" */
    struct data_rx rx;
    bool rx_active;
    bool bdat_failed;       /* a chunk was refused: the rest up to LAST is discarded */
    struct dkim_body *dkim; /* the running DKIM body hash (dkim_sign.c); NULL: not signed */
};

/* The BDAT chunk being read (chunk.c): its octets come raw, not as command lines. */
struct smtp_chunk {
    bool pending;            /* a BDAT command was parsed: start reading its octets */
    bool active;             /* reading them */
    bool keep;               /* they go into the message (else dropped, the reply is set) */
    bool last;               /* BDAT ... LAST */
    unsigned long long size; /* the chunk's octets */
    unsigned long long left; /* still to come */
};

struct smtp_auth_state; /* smtp_auth.c */
struct rbl_session;     /* rbl.c */
struct bombs_job;       /* bombs.c */
struct command_lookup;  /* command.c */
struct extlookup;       /* extlookup.c */
struct deliver_batch;
struct rdns;              /* rdns.c */
struct spf_check;         /* spf.c */
struct milter_sess;       /* milter.c */
struct spill_job;         /* spill.c */
struct command_rcpt_wait; /* command.c */
struct recentpop;         /* recentpop.c */
struct dkim_job;          /* dkim_sign.c */

struct smtp_session {
    struct sess base; /* first: the core's part (conn, cf, db, sid, ip, reply...) */
    struct smtpd *d;
    bool in_bare;       /* inside a command line that had a bare LF */
    size_t bare_len;    /* its length so far */
    bool esmtp;         /* EHLO (not HELO) */
    char helo[256];     /* printable ASCII only */
    bool normalize;     /* bare_newline normalize applies to this client */
    bool uncounted;     /* the pending error reply stays out of the error budget */
    bool junk;          /* the pending reply answers a command that moves no mail */
    unsigned njunk;     /* such commands since the last message delivered */
    unsigned nmsgs;     /* transactions delivered */
    unsigned ntx;       /* transactions begun (DATA), for message ids */
    char *auth_user;    /* after a successful AUTH */
    char auth_mech[24]; /* its mechanism */
    struct smtp_auth_state *auth;
    struct deliver_batch *batch;
    struct command_lookup *lookup;       /* a RCPT/VRFY resolving on the pool (unix_user) */
    struct extlookup *xlookup;           /* a RCPT/VRFY asking authent_process (external) */
    struct rdns *rdns;                   /* the client's PTR name (NULL: not looked up) */
    struct spf_check *spf;               /* the SPF check of the last MAIL (NULL: none) */
    struct recentpop *recentpop;         /* POP-before-SMTP (NULL: forward_user does not apply) */
    struct rbl_session *rbl;             /* DNSBL lookups and results (rbl.c); NULL: none */
    struct bombs_job *bomb_job;          /* a suspected bomb being held (bombs.c) */
    struct spill_job *spill;             /* a spill file write or read in flight (spill.c) */
    struct dkim_job *dkim_job;           /* a DKIM signature being made (dkim_sign.c) */
    struct milter_sess *milter;          /* the content filters (milter.c); NULL: none */
    struct command_rcpt_wait *rcpt_wait; /* a RCPT waiting for the filters */
    struct smtp_tx tx;
    struct smtp_chunk chunk;
    union { /* what a command's check step parsed for its proceed step */
        struct smtp_mail mail;
        struct smtp_rcpt rcpt;
        char helo[256];
    } arg;
};

/* smtp_session_of - the SMTP session of a core session. */
static inline struct smtp_session *
smtp_session_of(struct sess *b)
{
    return (struct smtp_session *)b;
}

/* session_ops - the core's callbacks for an SMTP session (sess.h). */
extern const struct sess_ops session_ops;

/* session_reply - append a reply to the pending output of the current command. text may
 * hold several lines separated by '\n'; each becomes "code-" / "code " (+ ecode after
 * EHLO for 2xx/4xx/5xx). */
void session_reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* session_rcpt_drop - free what a recipient entry of the transaction holds. */
void session_rcpt_drop(struct smtp_rcpt_entry *e);
/* session_tx_reset - forget the transaction (RSET, EHLO, end of DATA). */
void session_tx_reset(struct smtp_session *s);

/* session_reset - forget everything the client said (after STARTTLS). */
void session_reset(struct smtp_session *s);

#endif
