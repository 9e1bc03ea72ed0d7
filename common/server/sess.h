/*
 * sess - the session base every protocol session embeds: life cycle, input loop,
 * pending reply, timer, waits, graceful stop. A protocol fills in a struct sess_ops and
 * keeps only its commands, states and replies.
 *
 * Contract:
 * - Owns: struct sess, the first member of every protocol session (struct smtp_session
 *   begins with `struct sess base`). sess_accept allocates ops->size bytes, zeroed, for
 *   each connection net hands over; the memory is freed (ops->free first) when the last
 *   reference goes: the connection's (after NET_EV_CLOSED), the timer handle's, and one
 *   per sess_hold (a thread-pool job or request that will come back).
 * - Blocks on: nothing; everything runs on the server's loop.
 * - States: the protocol's own enum, kept in s->state; ops->phase tells the core what a
 *   state means to it (handshake, commands, busy, closing) and ops->state_names names
 *   them for the log. sess_enter_state is the one place a state changes.
 * - Input: sess_process runs ops->input once per command while nothing waits, the state
 *   reads commands and the output queue is under SESS_OUT_HIGH; after each command that
 *   did not go waiting, ops->cmd_done sends its reply (error budgets live there).
 *   Between commands during a graceful stop, ops->may_stop decides whether the session
 *   is told now (ops->bye) and closed.
 * - Waits: sess_go_async (the pool), sess_delay (the timer), output above the high-water
 *   mark, or a protocol continuation (SW_CONT, resumed by ops->drain) stop the reading;
 *   sess_resume / the timer / NET_EV_DRAIN go on in command order, so replies always
 *   come in command order.
 * - Output: s->reply holds the current command's reply; sess_send_reply puts it on the
 *   wire (counted in the server's bytes_out) and clears it and s->reply_code; net corks
 *   the writes of one pass over the input into one send.
 * - Timeouts: the idle timeout (s->timeout_ms) re-arms while the session is the slow
 *   one (waiting, or a busy phase); it aborts a handshake; otherwise ops->bye(SESS_BYE_
 *   TIMEOUT) and close. Deadlines (sess_sweep, from the server's timer): a record (a
 *   command line; the protocol marks other records with sess_progress, e.g. message
 *   lines) must be complete within the connection's idle timeout of the moment it began
 *   to be awaited, so a client trickling a byte at a time gains nothing; a session ends
 *   at cf->max_session_time. Both are ended as an idle timeout is, and only while the
 *   client is the slow one.
 */
#ifndef DMAIL_SESS_H
#define DMAIL_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "net.h"

#define SESS_OUT_HIGH 65536 /* stop reading commands while this much output waits */
_Static_assert(SESS_OUT_HIGH >= NET_DIRECT_MAX, "a direct send must never be waited for");

struct server;
struct conf;
struct auth_db;
struct sess;

/* What a session is waiting for instead of reading input. */
enum sess_wait {
    SW_NONE,
    SW_ASYNC, /* a thread-pool job or a check on it */
    SW_TIMER, /* sess_delay */
    SW_DRAIN, /* output above the high-water mark */
    SW_CONT,  /* a protocol continuation, resumed by ops->drain */
};

/* What a protocol state means to the core. */
enum sess_phase {
    SP_CMD,   /* reads commands */
    SP_TLS,   /* a TLS handshake runs: no input, no reply; a timeout aborts */
    SP_BUSY,  /* no input while the protocol works (a commit); a timeout waits */
    SP_CLOSE, /* closing: nothing more is read */
};

/* What ops->input did. */
enum sess_in {
    SI_NONE, /* no complete command in the input: wait for more */
    SI_CMD,  /* one command handled (its reply is pending or it waits) */
    SI_SKIP, /* input consumed, no reply due yet: go on reading */
};

enum sess_bye { SESS_BYE_SHUTDOWN, SESS_BYE_TIMEOUT };

struct sess_ops {
    size_t size;                    /* of the protocol session */
    size_t cmd_limit;               /* command line, CRLF included */
    size_t inbuf_cap;               /* net input buffer (0: net's default) */
    size_t reply_cap;               /* s->reply */
    const char *const *state_names; /* indexed by state */
    const unsigned char *phase;     /* enum sess_phase, indexed by state */
    int nstates;                    /* entries of both */
    int quit_state;                 /* a SP_CLOSE state: sess_close enters it */
    int tls_state;                  /* the SP_TLS state of an implicit-TLS listener */
    int greet_state;                /* the state after the greeting */
    /* open - the base is ready: set s->timeout_ms and the protocol's part (may be NULL:
     * then no idle timeout). */
    void (*open)(struct sess *s);
    /* greet - write the greeting (at accept, or after an implicit-TLS handshake). */
    void (*greet)(struct sess *s);
    /* starttls_done - the handshake of STARTTLS/STLS is done (the client starts over). */
    void (*starttls_done)(struct sess *s);
    /* input - handle at most one command from net_inbuf(s->conn). */
    enum sess_in (*input)(struct sess *s);
    /* cmd_done - the current command's reply is complete: count, send (or delay). */
    void (*cmd_done)(struct sess *s);
    /* may_stop - graceful stop: may the session be told now? idle: from the sweep at the
     * start of the stop (the session waits for input); else between two commands. */
    bool (*may_stop)(struct sess *s, bool idle);
    /* bye - write the last reply of a graceful stop or an idle timeout. */
    void (*bye)(struct sess *s, enum sess_bye why);
    /* drain - NET_EV_DRAIN while waiting SW_CONT (may be NULL). */
    void (*drain)(struct sess *s);
    /* eof_reason - why the peer left, for the log (may be NULL: "eof"). */
    const char *(*eof_reason)(struct sess *s);
    /* gone - NET_EV_CLOSED: cut the protocol's ties, log the disconnect line. */
    void (*gone)(struct sess *s);
    /* free - the last reference went: free what the protocol owns (not s). */
    void (*free)(struct sess *s);
};

struct sess {
    struct sess *next, *prev; /* srv->sessions */
    int refs;
    struct server *srv;
    const struct sess_ops *ops;
    struct net_conn *conn; /* NULL after NET_EV_CLOSED */
    int port;              /* the listener's index in the server's port table */
    struct conf *cf;       /* the snapshots the session started with */
    struct auth_db *db;
    uint64_t sid;
    char ip[64];
    int state; /* the protocol's enum */
    enum sess_wait wait;
    bool in_process; /* inside sess_process (no recursion) */
    struct linereader reader;
    struct buf reply; /* the current command's reply, not sent yet */
    int reply_code;   /* the protocol's mark of the pending reply; 0 once sent */
    uint64_t timeout_ms;
    uint64_t born_ms;   /* loop time of the accept */
    uint64_t record_ms; /* loop time the current command or line began to be awaited */
    uv_timer_t timer;
    void (*timer_fn)(struct sess *s);
    int errors; /* the error budget's count */
    const char *close_reason;
};

/* sess_progress - a record (a message line, a chunk) is complete: its deadline restarts. */
void sess_progress(struct sess *s);
/* sess_sweep - the server's timer: end s if it is past a deadline (now: loop time);
 * stress_ms > 0 caps the record deadline (the server is under stress). */
void sess_sweep(struct sess *s, uint64_t now, uint64_t stress_ms);

/* sess_accept - net_accept_cb of every listener of a server (arg: its port entry). */
void sess_accept(struct net_conn *c, void *port_arg);

/* sess_enter_state - change state (logged at debug level). */
void sess_enter_state(struct sess *s, int state);
const char *sess_state_name(const struct sess *s);
enum sess_phase sess_phase(const struct sess *s);

/* sess_hold / sess_release - a reference for a job that comes back to the session. */
void sess_hold(struct sess *s);
void sess_release(struct sess *s);

/* sess_send_reply - the pending reply onto the wire now. */
void sess_send_reply(struct sess *s);
/* sess_write - raw output after the pending reply (multi-line bodies). */
void sess_write(struct sess *s, const void *p, size_t n);
/* sess_flush_now - send the pending reply and uncork (before a STARTTLS handshake). */
void sess_flush_now(struct sess *s);
/* sess_close - enter ops->quit_state, send the pending reply, then close; reason goes
 * into the log (the first reason given stays). */
void sess_close(struct sess *s, const char *reason);

/* sess_go_async - the current command waits for the pool; sess_resume when done. */
void sess_go_async(struct sess *s);
/* sess_resume - the waiting command has its reply: send it, go on with the input. */
void sess_resume(struct sess *s);
/* sess_delay - run fn after ms on the session timer (no input meanwhile); then the
 * reply is sent (ops->cmd_done) and the input goes on, unless fn made it wait again. */
void sess_delay(struct sess *s, uint64_t ms, void (*fn)(struct sess *s));
/* sess_wait_cont - a protocol continuation starts (SW_CONT): reading stops until it is
 * done (the protocol sets SW_NONE and calls sess_process). */
void sess_wait_cont(struct sess *s);
/* sess_process - handle buffered input until it runs out or a command waits. */
void sess_process(struct sess *s);

/* sess_shutdown_all - graceful stop: every idle session that may stop is told now. */
void sess_shutdown_all(struct server *srv);

#endif
