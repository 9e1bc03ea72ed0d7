/*
 * session - one POP3 session: state machine (RFC 1939 AUTHORIZATION, TRANSACTION,
 * UPDATE), input loop with PIPELINING, replies, error budget, timeouts, life cycle.
 *
 * Contract:
 * - Owns: struct pop_session, created by session_accept for every connection net hands
 *   over, freed once NET_EV_CLOSED has come, its timer has closed and no thread-pool job
 *   holds it (s->refs).
 * - Blocks on: nothing. Password checks, opening the mailbox, reading messages and the
 *   UPDATE run on the pool; meanwhile the session reads no input (s->wait) and goes on in
 *   order afterwards, so replies always come in command order.
 * - Replies: a command writes its status line with session_ok/session_err; multi-line
 *   bodies and streamed messages follow through session_write/continuations once the
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

/* What the session is waiting for instead of reading input. */
enum session_wait {
    SW_NONE,
    SW_ASYNC, /* a thread-pool job or an auth check */
    SW_TIMER, /* a login penalty or failure delay */
    SW_DRAIN, /* output above the high-water mark */
    SW_CONT,  /* a multi-line answer is being produced (resumed on drain) */
};

/* A SASL exchange in progress (AUTH PLAIN/LOGIN without everything on the first line). */
enum session_sasl { SASL_NONE, SASL_PLAIN, SASL_LOGIN_USER, SASL_LOGIN_PASS };

struct retr;
struct retr_ahead;
struct auth_req;
struct mailbox_job;

struct pop_session {
    struct pop_session *next, *prev; /* d->sessions */
    int refs;
    struct popd *d;
    struct net_conn *conn; /* NULL after NET_EV_CLOSED */
    enum popd_port port;
    struct conf *cf;
    struct auth_db *db;
    uint64_t sid;
    char ip[64];
    enum session_state state;
    enum session_wait wait;
    bool in_process; /* inside session_process (no recursion) */
    struct linereader reader;
    struct buf reply; /* the current command's status line, not sent yet */
    bool reply_err;   /* the pending reply is an -ERR that counts against the budget */
    uv_timer_t timer; /* delays in AUTHORIZATION; the read-ahead's idle timer after */
    void (*timer_fn)(struct pop_session *s);
    int errors;
    char apop_ts[128]; /* the greeting's timestamp, "" if APOP is off */
    /* AUTHORIZATION */
    char user[256]; /* USER name, "" if none */
    enum session_sasl sasl;
    char *pending_login;  /* login and secret waiting for their penalty delay */
    char *pending_secret; /* password, or the APOP digest */
    bool pending_apop;
    struct auth_req *areq;
    char *login;        /* after a successful login */
    char *mailbox;      /* its path */
    bool holds_mailbox; /* registered in d->inuse */
    /* TRANSACTION */
    struct dropview *view;
    unsigned char *del, *seen;
    size_t ndel;
    unsigned long long del_bytes;
    /* continuation of a multi-line answer */
    bool (*cont)(struct pop_session *s); /* true when done */
    size_t cont_pos;
    struct retr *retr;
    struct retr_ahead *ahead; /* read-ahead window (retr.c), NULL when idle */
    struct mailbox_job *job;
    unsigned long nretr, ndele;
    const char *close_reason;
};

/* session_accept - net_accept_cb for every listener (arg: struct popd_listener). */
void session_accept(struct net_conn *c, void *listener_arg);
/* session_shutdown - graceful stop: idle sessions are told and closed. */
void session_shutdown(struct popd *d);

/* session_hold / session_release - a reference for a job or request that will come back
 * to the session; the session is freed when the last one goes. */
void session_hold(struct pop_session *s);
void session_release(struct pop_session *s);
/* session_release_mailbox - give the mailbox back to the in-use table (after UPDATE, or
 * when the client is gone and no job uses the mailbox any more). */
void session_release_mailbox(struct pop_session *s);
/* session_cont_kick - a streamed answer has more output ready: write it (up to the
 * high-water mark) and go on with pipelined commands when it is complete. */
void session_cont_kick(struct pop_session *s);

void session_enter_state(struct pop_session *s, enum session_state st);
const char *session_state_name(enum session_state st);

/* session_ok - "+OK text" as the current command's status line. */
void session_ok(struct pop_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* session_err - "-ERR [code] text" (code NULL: none); counts toward the error budget when
 * counts is set. */
void session_err(struct pop_session *s, bool counts, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* session_send_reply - put the pending status line on the wire now. */
void session_send_reply(struct pop_session *s);
/* session_write - raw output (multi-line bodies) after the status line. */
void session_write(struct pop_session *s, const void *p, size_t n);

/* session_go_async - the current command waits for the pool; it calls session_resume. */
void session_go_async(struct pop_session *s);
/* session_resume - the waiting command is done (its reply written or pending): send it
 * and go on with pipelined commands. */
void session_resume(struct pop_session *s);
/* session_delay - run fn after ms on the session timer (the session waits meanwhile). */
void session_delay(struct pop_session *s, uint64_t ms, void (*fn)(struct pop_session *s));
/* session_continue - produce a multi-line answer with fn, called again on every drain
 * until it returns true. */
void session_continue(struct pop_session *s, bool (*fn)(struct pop_session *s));
/* session_close - send the pending reply, then close; reason goes into the log. */
void session_close(struct pop_session *s, const char *reason);

/* session_msg - message n (1-based) of the mailbox, or NULL (with an -ERR written) when
 * there is none or it is deleted. */
const struct dropview_msg *session_msg(struct pop_session *s, unsigned long n);
/* session_msg_size - the size the client is told for message i (0-based): the stored
 * size plus an added Status: line. */
unsigned long long session_msg_size(struct pop_session *s, size_t i);
/* session_status_line - the Status: line added to message i, or NULL. */
const char *session_status_line(struct pop_session *s, size_t i);

#endif
