/*
 * session - SMTP session life cycle, input loop, replies, error budget. See session.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "deliver.h"
#include "log.h"
#include "logq.h"
#include "session.h"
#include "control.h"
#include "smtp_auth.h"
#include "xmem.h"

#define SESSION_CMD_LIMIT 512   /* RFC 5321 4.5.3.1.4, CRLF included */
#define SESSION_OUT_HIGH 65536  /* stop reading commands while this much output waits */
#define SESSION_REPLY_CAP 16384 /* one command's reply */

static const char *const session_state_names[] = {
#define SESSION_STATE_NAME(n) #n,
    SESSION_STATES(SESSION_STATE_NAME)
#undef SESSION_STATE_NAME
};

static const char *const session_listener_names[] = {
    [SMTPD_PORT_SMTP] = "smtp",
    [SMTPD_PORT_SUBMISSION] = "submission",
    [SMTPD_PORT_SMTPS] = "smtps",
};

static void session_process(struct smtp_session *s);

/* session_state_name - "READY" for SS_READY. */
const char *
session_state_name(enum session_state st)
{
    if ((size_t)st >= sizeof(session_state_names) / sizeof(session_state_names[0]))
        return "?";
    return session_state_names[st];
}

/* session_enter_state - the one place the state changes. */
void
session_enter_state(struct smtp_session *s, enum session_state st)
{
    if (s->state != st && log_get_level() >= LOGLVL_DEBUG)
        log_sess(LOGLVL_DEBUG, s->sid, "state from=%s to=%s", session_state_name(s->state),
                 session_state_name(st));
    s->state = st;
}

/* session_free - the last reference is gone. */
static void
session_free(struct smtp_session *s)
{
    conf_unref(&s->cf);
    if (s->db != NULL)
        auth_db_unref(&s->db);
    buf_free(&s->reply);
    free(s->auth_user);
    free(s);
}

/* session_unref - drop one reference. */
static void
session_unref(struct smtp_session *s)
{
    if (--s->refs == 0)
        session_free(s);
}

/* session_timer_closed - the timer handle is closed: its reference goes. */
static void
session_timer_closed(uv_handle_t *h)
{
    session_unref(h->data);
}

/* session_reply - format one reply (maybe multi-line) into s->reply. */
void
session_reply(struct smtp_session *s, int code, const char *ecode, const char *fmt, ...)
{
    char text[2048];
    const char *p = text;
    bool enhanced;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    enhanced = s->esmtp && ecode != NULL && code / 100 != 3;
    if (s->reply_code == 0)
        s->reply_code = code;
    control_count_reply(s->d, code, ecode);
    for (;;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (buf_printf(&s->reply, "%d%c%s%s%.*s\r\n", code, nl ? '-' : ' ', enhanced ? ecode : "",
                       enhanced ? " " : "", n, p) < 0) {
            log_sess(LOGLVL_ERROR, s->sid, "reply-cut code=%d", code);
            break;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (log_get_level() >= LOGLVL_DEBUG) {
        char q[600];
        logq_text(q, sizeof(q), text, strlen(text), 400);
        log_sess(LOGLVL_DEBUG, s->sid, "reply code=%d text=%s", code, q);
    }
}

/* session_send_reply - put the pending reply on the wire. */
static void
session_send_reply(struct smtp_session *s)
{
    if (s->conn != NULL && s->reply.len > 0)
        net_write(s->conn, buf_peek(&s->reply), s->reply.len);
    buf_reset(&s->reply);
    s->reply_code = 0;
}

/* session_flush_now - send the reply written so far, uncorked. */
void
session_flush_now(struct smtp_session *s)
{
    session_send_reply(s);
    if (s->conn != NULL)
        net_uncork(s->conn);
}

/* session_close - send what is pending, then close the connection. */
void
session_close(struct smtp_session *s, const char *reason)
{
    session_send_reply(s);
    if (s->close_reason == NULL)
        s->close_reason = reason;
    session_enter_state(s, SS_QUIT);
    if (s->conn != NULL)
        net_close(s->conn);
}

/* session_cmd_done - the current command's reply is complete: count errors, then send it
 * now, after the error delay, or with a 421 when the budget is spent. */
static void
session_cmd_done(struct smtp_session *s)
{
    int code = s->reply_code;

    if (s->reply.len == 0)
        return;
    if (code >= 400 && code != 421 && s->state != SS_QUIT) {
        s->errors++;
        if (s->errors >= s->cf->error_hard_limit) {
            log_sess(LOGLVL_INFO, s->sid, "too-many-errors errors=%d", s->errors);
            session_reply(s, 421, "4.7.0", "%s Error: too many errors", s->d->hostname);
            session_close(s, "too-many-errors");
            return;
        }
        if (s->errors > s->cf->error_soft_limit && s->cf->error_delay > 0) {
            session_delay(s, (uint64_t)s->cf->error_delay * 1000, session_send_reply);
            return;
        }
    }
    session_send_reply(s);
}

/* session_timer_cb - a delay ended: run its function, then go on with the input. */
static void
session_timer_cb(uv_timer_t *t)
{
    struct smtp_session *s = t->data;
    void (*fn)(struct smtp_session *) = s->timer_fn;

    s->timer_fn = NULL;
    s->wait = SW_NONE;
    if (s->conn == NULL)
        return;
    s->refs++;
    if (fn != NULL)
        fn(s);
    if (s->wait == SW_NONE)
        session_process(s);
    session_unref(s);
}

/* session_delay - wait ms on the session's timer, then call fn. */
void
session_delay(struct smtp_session *s, uint64_t ms, void (*fn)(struct smtp_session *s))
{
    s->wait = SW_TIMER;
    s->timer_fn = fn;
    if (s->conn != NULL)
        net_pause_read(s->conn);
    uv_timer_start(&s->timer, session_timer_cb, ms, 0);
}

/* session_go_async - the command continues on the pool. */
void
session_go_async(struct smtp_session *s)
{
    s->wait = SW_ASYNC;
    if (s->conn != NULL)
        net_pause_read(s->conn);
}

/* session_async_done - the waiting command has its reply. */
void
session_async_done(struct smtp_session *s)
{
    s->wait = SW_NONE;
    if (s->conn == NULL)
        return;
    s->refs++;
    session_cmd_done(s);
    if (s->wait == SW_NONE && !s->in_process)
        session_process(s);
    session_unref(s);
}

/* session_tx_reset - drop the transaction. */
void
session_tx_reset(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;

    for (size_t i = 0; i < tx->nrcpt; i++) {
        free(tx->rcpt[i].addr);
        free(tx->rcpt[i].mailbox);
    }
    free(tx->rcpt);
    free(tx->first);
    if (tx->rx_active)
        data_rx_free(&tx->rx);
    memset(tx, 0, sizeof(*tx));
    if (s->state == SS_MAIL || s->state == SS_RCPT || s->state == SS_DATA)
        session_enter_state(s, SS_READY);
}

/* session_reset - forget HELO, AUTH and the transaction (RFC 3207 4.2). */
void
session_reset(struct smtp_session *s)
{
    session_tx_reset(s);
    s->esmtp = false;
    s->helo[0] = '\0';
    free(s->auth_user);
    s->auth_user = NULL;
    linereader_init(&s->reader, SESSION_CMD_LIMIT);
    s->in_bare = false;
    s->bare_len = 0;
    session_enter_state(s, SS_CONNECTED);
}

/* session_stop_now - graceful stop reached this session between transactions. */
static void
session_stop_now(struct smtp_session *s)
{
    session_reply(s, 421, "4.3.2", "%s Service shutting down", s->d->hostname);
    session_close(s, "shutdown");
}

/* session_process - handle buffered input, one command at a time, until input runs out
 * or a command has to wait. */
static void
session_process(struct smtp_session *s)
{
    struct net_conn *c = s->conn;

    if (c == NULL || s->in_process)
        return;
    s->refs++;
    s->in_process = true;
    net_cork(c);
    while (s->conn != NULL && s->wait == SW_NONE && s->state != SS_QUIT &&
           s->state != SS_TLS_WAIT) {
        struct buf *in = net_inbuf(c);
        struct buf_lineinfo info;
        enum buf_line r;
        char *line;
        size_t len;

        if (net_pending(c) > SESSION_OUT_HIGH) {
            s->wait = SW_DRAIN;
            break;
        }
        if (s->d->stopping && s->state != SS_DATA) {
            session_stop_now(s);
            break;
        }
        if (s->state == SS_DATA) {
            if (in->len == 0)
                break;
            buf_consume(in, command_data_input(s, buf_peek(in), in->len));
            if (s->state == SS_DATA)
                break;
        } else {
            r = buf_getline(in, &s->reader, &line, &len, &info);
            if (r == BUF_NONE)
                break;
            if (r == BUF_TOOLONG) {
                log_sess(LOGLVL_INFO, s->sid, "command-refused reason=line-too-long");
                s->bare_len = 0;
                s->in_bare = false;
                if (s->state == SS_AUTH) /* the 500 ends the exchange for the client too */
                    smtp_auth_cancel(s);
                session_reply(s, 500, "5.5.2", "Error: line too long");
            } else if (!info.crlf && !s->normalize &&
                       (s->bare_len += len + 1) < SESSION_CMD_LIMIT) {
                /* A bare LF does not end a command: the line goes on to the next CRLF
                 * and gets one error then (sendmail 8.18's strict mode). */
                s->in_bare = true;
                explicit_bzero(line, len); /* might be SASL data */
                continue;
            } else {
                if (s->in_bare)
                    info.crlf = false; /* the whole line is refused */
                s->in_bare = false;
                s->bare_len = 0;
                command_dispatch(s, line, len, &info);
            }
        }
        if (s->wait == SW_NONE && s->state != SS_QUIT)
            session_cmd_done(s);
    }
    s->in_process = false;
    if (s->conn != NULL) {
        net_uncork(c);
        if (s->wait == SW_NONE && s->state != SS_QUIT && s->state != SS_TLS_WAIT)
            net_resume_read(c);
        else if (s->wait != SW_NONE)
            net_pause_read(c);
    }
    session_unref(s);
}

/* session_destroy - NET_EV_CLOSED: cut every tie, free when the timer has closed. */
static void
session_destroy(struct smtp_session *s)
{
    struct smtpd *d = s->d;

    s->conn = NULL;
    smtp_auth_cancel(s);
    command_lookup_cancel(s);
    if (s->batch != NULL) {
        log_sess(LOGLVL_INFO, s->sid, "client-gone state=delivering");
        deliver_detach(s->batch);
        s->batch = NULL;
    } else if (s->state == SS_DATA) {
        log_sess(LOGLVL_INFO, s->sid, "discarded reason=eof-in-data");
    }
    session_tx_reset(s);
    log_sess(LOGLVL_INFO, s->sid, "disconnect reason=%s msgs=%u errors=%d",
             s->close_reason ? s->close_reason : "closed", s->nmsgs, s->errors);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        d->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    d->nsessions--;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, session_timer_closed);
    session_unref(s);
    if (d->stopping && d->nsessions == 0 && d->idle_cb != NULL)
        d->idle_cb(d);
}

/* session_event - everything net tells us about the connection. */
static void
session_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct smtp_session *s = arg;

    switch (ev) {
    case NET_EV_DATA:
        session_process(s);
        break;
    case NET_EV_DRAIN:
        if (s->wait == SW_DRAIN) {
            s->wait = SW_NONE;
            session_process(s);
        }
        break;
    case NET_EV_TIMEOUT:
        if (s->wait != SW_NONE) { /* we are the slow one; the client waits for us */
            net_set_timeout(c, (uint64_t)s->cf->smtp_timeout * 1000);
            break;
        }
        log_sess(LOGLVL_INFO, s->sid, "timeout state=%s", session_state_name(s->state));
        if (s->state == SS_TLS_WAIT) { /* no reply into a handshake */
            s->close_reason = "tls-handshake-timeout";
            net_abort(c);
            break;
        }
        session_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->d->hostname);
        session_close(s, "timeout");
        break;
    case NET_EV_TLS_READY:
        if (s->state != SS_TLS_WAIT)
            break;
        log_sess(LOGLVL_INFO, s->sid, "tls version=%s", net_tls_desc(c));
        if (s->port == SMTPD_PORT_SMTPS) {
            session_enter_state(s, SS_CONNECTED);
            command_greeting(s);
            session_send_reply(s);
        } else {
            session_reset(s);
        }
        session_process(s);
        break;
    case NET_EV_ERROR:
        if (s->close_reason == NULL)
            s->close_reason = "error";
        break;
    case NET_EV_EOF:
        if (s->close_reason == NULL)
            s->close_reason = s->state == SS_DATA ? "eof-in-data" : "eof";
        break;
    case NET_EV_CLOSED:
        session_destroy(s);
        break;
    }
}

/* session_accept - a new connection. */
void
session_accept(struct net_conn *c, void *listener_arg)
{
    struct smtpd_listener *l = listener_arg;
    struct smtpd *d = l->d;
    struct smtp_session *s = xcalloc(1, sizeof(*s));

    s->refs = 2; /* the connection and the timer handle */
    s->d = d;
    s->conn = c;
    s->port = l->kind;
    s->cf = conf_ref(d->cf);
    s->db = d->db != NULL ? auth_db_ref(d->db) : NULL;
    s->sid = log_new_sid();
    snprintf(s->ip, sizeof(s->ip), "%s", net_peer_ip(c));
    linereader_init(&s->reader, SESSION_CMD_LIMIT);
    buf_init(&s->reply, SESSION_REPLY_CAP);
    uv_timer_init(d->loop, &s->timer);
    s->timer.data = s;
    s->normalize =
        s->cf->bare_newline == BARE_NL_NORMALIZE && conf_ip_match(&s->cf->forward_from_ip, s->ip);
    s->next = d->sessions;
    if (d->sessions != NULL)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    net_set_cb(c, session_event, s);
    net_set_timeout(c, (uint64_t)s->cf->smtp_timeout * 1000);
    log_sess(LOGLVL_INFO, s->sid, "connect ip=%s port=%d local=%d listener=%s", s->ip,
             net_peer_port(c), net_local_port(c), session_listener_names[l->kind]);
    if (l->kind == SMTPD_PORT_SMTPS) {
        s->state = SS_TLS_WAIT; /* the banner comes after the handshake */
        return;
    }
    s->state = SS_CONNECTED;
    command_greeting(s);
    session_send_reply(s);
}

/* session_shutdown - tell idle sessions we are going; the others finish first. */
void
session_shutdown(struct smtpd *d)
{
    struct smtp_session *s, *next;

    for (s = d->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->conn == NULL || s->state == SS_QUIT)
            continue;
        if (s->state == SS_TLS_WAIT) {
            session_close(s, "shutdown");
        } else if (s->wait == SW_NONE && s->state != SS_DATA && !s->in_process) {
            s->refs++;
            session_stop_now(s);
            session_unref(s);
        }
    }
}
