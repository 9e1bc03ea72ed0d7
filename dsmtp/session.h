/*
 * session - one SMTP session: state machine, input loop with PIPELINING, replies with
 * enhanced status codes, error budget, timeouts, life cycle.
 *
 * Contract:
 * - Owns: struct smtp_session and its transaction; created by session_accept for every
 *   connection net hands over, freed after NET_EV_CLOSED once its timer handle closed.
 * - Blocks on: nothing. Slow work (AUTH verification, delivery, and under unix_user the
 *   account lookups of a RCPT or VRFY whose account is not cached yet) runs on the pool;
 *   while it runs the session stops reading input (s->wait) and resumes in order
 *   afterwards, so replies always come in command order.
 * - Replies: commands write into s->reply with session_reply (several lines: separate
 *   them with '\n'); the dispatcher sends them when the command is done, delayed by a
 *   timer once the error budget's soft limit is passed. After EHLO every 2xx/4xx/5xx
 *   reply carries an RFC 3463 code (RFC 2034: not the greeting, not the EHLO/HELO
 *   answer, not 3xx).
 * - Commands are handled in command.c (table) and smtp_auth.c (AUTH).
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
#include "smtpd.h"

#define SESSION_STATES(X)                                                                          \
    X(TLS_WAIT)  /* implicit TLS or STARTTLS handshake running */                                  \
    X(CONNECTED) /* greeted, waiting for HELO/EHLO */                                              \
    X(READY)     /* HELO/EHLO done, no transaction */                                              \
    X(MAIL)      /* MAIL accepted, no recipient yet */                                             \
    X(RCPT)      /* at least one recipient */                                                      \
    X(DATA)      /* receiving the message */                                                       \
    X(AUTH)      /* inside a SASL exchange */                                                      \
    X(QUIT)      /* closing */

enum session_state {
#define SESSION_STATE_ENUM(n) SS_##n,
    SESSION_STATES(SESSION_STATE_ENUM)
#undef SESSION_STATE_ENUM
};

/* What the session is waiting for instead of reading input. */
enum session_wait { SW_NONE, SW_ASYNC, SW_TIMER, SW_DRAIN };

struct smtp_rcpt_entry {
    char *addr;    /* as it goes into the queue file and the log */
    char *mailbox; /* NULL: postmaster without a mailbox (queued) */
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
};

struct smtp_auth_state; /* smtp_auth.c */
struct command_lookup;  /* command.c */
struct deliver_batch;

struct smtp_session {
    struct smtp_session *next, *prev; /* d->sessions */
    int refs;
    struct smtpd *d;
    struct net_conn *conn; /* NULL after NET_EV_CLOSED */
    enum smtpd_port port;
    struct conf *cf;
    struct auth_db *db;
    uint64_t sid;
    char ip[64];
    enum session_state state;
    enum session_wait wait;
    bool in_process; /* inside session_process (no recursion) */
    struct linereader reader;
    bool in_bare;     /* inside a command line that had a bare LF */
    size_t bare_len;  /* its length so far */
    struct buf reply; /* the current command's reply, not sent yet */
    int reply_code;   /* first code written into reply */
    uv_timer_t timer; /* error delay, AUTH failure delay */
    void (*timer_fn)(struct smtp_session *s);
    bool esmtp;      /* EHLO (not HELO) */
    char helo[256];  /* printable ASCII only */
    bool normalize;  /* bare_newline normalize applies to this client */
    int errors;      /* error budget */
    unsigned nmsgs;  /* transactions delivered */
    unsigned ntx;    /* transactions begun (DATA), for message ids */
    char *auth_user; /* after a successful AUTH */
    struct smtp_auth_state *auth;
    struct deliver_batch *batch;
    struct command_lookup *lookup; /* a RCPT/VRFY resolving on the pool (unix_user) */
    struct smtp_tx tx;
    union { /* what a command's check step parsed for its proceed step */
        struct smtp_mail mail;
        struct smtp_rcpt rcpt;
        char helo[256];
    } arg;
    const char *close_reason;
};

/* session_accept - net_accept_cb for every listener (arg: struct smtpd_listener). */
void session_accept(struct net_conn *c, void *listener_arg);

/* session_enter_state - change state (logged at debug level). */
void session_enter_state(struct smtp_session *s, enum session_state st);
const char *session_state_name(enum session_state st);

/* session_reply - append a reply to the pending output of the current command. text may
 * hold several lines separated by '\n'; each becomes "code-" / "code " (+ ecode after
 * EHLO for 2xx/4xx/5xx). */
void session_reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* session_go_async - the current command waits for the pool; its reply comes later. */
void session_go_async(struct smtp_session *s);
/* session_async_done - the reply of the waiting command is in s->reply: send it and go on
 * reading pipelined commands. */
void session_async_done(struct smtp_session *s);
/* session_delay - run fn after ms on the session timer (the session waits meanwhile). */
void session_delay(struct smtp_session *s, uint64_t ms, void (*fn)(struct smtp_session *s));

/* session_flush_now - send what the current command wrote so far (STARTTLS needs its 220
 * on the wire before the handshake). */
void session_flush_now(struct smtp_session *s);

/* session_close - send the pending reply, then close; reason goes into the log. */
void session_close(struct smtp_session *s, const char *reason);

/* session_tx_reset - forget the transaction (RSET, EHLO, end of DATA). */
void session_tx_reset(struct smtp_session *s);

/* session_reset - forget everything the client said (after STARTTLS). */
void session_reset(struct smtp_session *s);

/* session_shutdown - graceful stop: idle sessions get 421 now, busy ones when they are
 * done with the current transaction. */
void session_shutdown(struct smtpd *d);

#endif
