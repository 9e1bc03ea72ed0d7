/*
 * session - one POP3 session: state machine (RFC 1939 AUTHORIZATION, TRANSACTION,
 * UPDATE), input loop with PIPELINING, replies, error budget, timeouts, life cycle.
 *
 * Contract:
 * - Owns: the protocol part of struct pop_session; the core (common/server/sess.h)
 *   allocates, links, times out and frees the session (once NET_EV_CLOSED has come, its
 *   timer has closed and no thread-pool job holds it: sess_hold) and calls back through
 *   session_ops.
 * - Blocks on: nothing. Password checks, opening the mailbox, reading messages and the
 *   UPDATE run on the pool; meanwhile the session waits (sess_go_async .. sess_resume)
 *   and goes on in order afterwards, so replies always come in command order.
 * - Replies: a command writes its status line with session_ok/session_err; multi-line
 *   bodies and streamed messages follow through sess_write/continuations once the
 *   status line is out.
 * - Commands are in command.c (table), pop_auth.c (USER/PASS/APOP/AUTH), retr.c
 *   (RETR/TOP/LIST/UIDL bodies), mailbox.c (opening and UPDATE on the pool).
 */
#ifndef DPOP_SESSION_H
#define DPOP_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "dropview.h"
#include "net.h"
#include "pop3_parse.h"
#include "popd.h"
#include "sess.h"

#define SESSION_STATES(X)                                                                          \
    X(TLS_WAIT) /* implicit TLS or STLS handshake running */                                       \
    X(AUTH)     /* AUTHORIZATION */                                                                \
    X(TRANS)    /* TRANSACTION: the mailbox is ours */                                             \
    X(UPDATE)   /* QUIT given: deletions being committed */                                        \
    X(QUIT)     /* closing */

enum session_state {
#define SESSION_STATE_ENUM(n) SS_##n,
    SESSION_STATES(SESSION_STATE_ENUM)
#undef SESSION_STATE_ENUM
};

/* A SASL exchange in progress (AUTH PLAIN/LOGIN without everything on the first line). */
enum session_sasl { SASL_NONE, SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS };

struct retr;
struct retr_ahead;
struct auth_req;
struct mailbox_job;

struct pop_session {
    struct sess base; /* first: the core's part (conn, cf, db, sid, ip, reply...) */
    struct popd *d;
    bool reply_err;    /* the pending reply is an -ERR that counts against the budget */
    char apop_ts[128]; /* the greeting's timestamp, "" if APOP is off */
    /* AUTHORIZATION */
    char user[256]; /* USER name, "" if none */
    enum session_sasl sasl;
    char *pending_login;  /* login and secret waiting for their penalty delay */
    char *pending_secret; /* password, or the APOP digest */
    bool pending_apop;
    struct auth_req *areq;
    struct extauth_req *xreq; /* authent_method external: the helper's check */
    char *login;              /* after a successful login */
    char *mailbox;            /* its path */
    bool holds_mailbox;       /* registered in d->inuse */
    /* TRANSACTION */
    struct dropview *view;
    unsigned char *del, *seen;
    size_t ndel;
    unsigned long long del_bytes;
    /* continuation of a multi-line answer (SW_CONT) */
    bool (*cont)(struct pop_session *s); /* true when done */
    size_t cont_pos;
    struct retr *retr;
    struct retr_ahead *ahead; /* read-ahead window (retr.c), NULL when idle */
    struct mailbox_job *job;
    unsigned long nretr, ndele;
};

/* pop_session_of - the POP3 session of a core session. */
static inline struct pop_session *
pop_session_of(struct sess *b)
{
    return (struct pop_session *)b;
}

/* session_ops - the core's callbacks for a POP3 session (sess.h). */
extern const struct sess_ops session_ops;

/* session_release_mailbox - give the mailbox back to the in-use table (after UPDATE, or
 * when the client is gone and no job uses the mailbox any more). */
void session_release_mailbox(struct pop_session *s);
/* session_cont_kick - a streamed answer has more output ready: write it (up to the
 * high-water mark) and go on with pipelined commands when it is complete. */
void session_cont_kick(struct pop_session *s);

/* session_ok - "+OK text" as the current command's status line. */
void session_ok(struct pop_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* session_err - "-ERR [code] text" (code NULL: none); counts toward the error budget when
 * counts is set. */
void session_err(struct pop_session *s, bool counts, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* session_continue - produce a multi-line answer with fn, called again on every drain
 * until it returns true. */
void session_continue(struct pop_session *s, bool (*fn)(struct pop_session *s));

/* session_msg - message n (1-based) of the mailbox, or NULL (with an -ERR written) when
 * there is none or it is deleted. */
const struct dropview_msg *session_msg(struct pop_session *s, unsigned long n);
/* session_msg_size - the size the client is told for message i (0-based): the stored
 * size plus an added Status: line. */
unsigned long long session_msg_size(struct pop_session *s, size_t i);
/* session_status_line - the Status: line added to message i, or NULL. */
const char *session_status_line(struct pop_session *s, size_t i);

#endif
