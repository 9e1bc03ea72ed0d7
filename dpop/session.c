/*
 * session - POP3 session life cycle, input loop, replies, error budget. See session.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "log.h"
#include "mailbox.h"
#include "pop_auth.h"
#include "retr.h"
#include "session.h"
#include "xmem.h"

#define SESSION_CMD_LIMIT POP3_LINE_MAX /* RFC 2449 4: 255 octets, CRLF included */
#define SESSION_SASL_LIMIT 8192         /* a SASL response line (RFC 5034 4) */
#define SESSION_INBUF 16384             /* pipelined input held at most */
#define SESSION_OUT_HIGH 65536          /* stop reading commands while this much output waits */
#define SESSION_REPLY_CAP 1024          /* one status line */
_Static_assert(SESSION_OUT_HIGH >= NET_DIRECT_MAX, "a direct send must never be waited for");

static const char *const session_state_names[] = {
#define SESSION_STATE_NAME(n) #n,
    SESSION_STATES(SESSION_STATE_NAME)
#undef SESSION_STATE_NAME
};

static void session_process(struct pop_session *s);

/* session_state_name - "AUTH" for SS_AUTH. */
const char *
session_state_name(enum session_state st)
{
    if ((size_t)st >= sizeof(session_state_names) / sizeof(session_state_names[0]))
        return "?";
    return session_state_names[st];
}

/* session_enter_state - the one place the state changes. */
void
session_enter_state(struct pop_session *s, enum session_state st)
{
    if (s->state != st && log_get_level() >= LOGLVL_DEBUG)
        log_sess(LOGLVL_DEBUG, s->sid, "state %s -> %s", session_state_name(s->state),
                 session_state_name(st));
    s->state = st;
}

/* session_free - the last reference is gone. */
static void
session_free(struct pop_session *s)
{
    session_release_mailbox(s);
    retr_drop(s);
    dropview_free(&s->view);
    free(s->del);
    free(s->seen);
    pop_auth_clear_pending(s);
    free(s->login);
    free(s->mailbox);
    conf_unref(&s->cf);
    if (s->db != NULL)
        auth_db_unref(&s->db);
    buf_free(&s->reply);
    free(s);
}

/* session_unref - drop one reference. */
static void
session_unref(struct pop_session *s)
{
    if (--s->refs == 0)
        session_free(s);
}

/* session_release_mailbox - give the mailbox back to the in-use table. */
void
session_release_mailbox(struct pop_session *s)
{
    if (s->holds_mailbox)
        mailbox_release(s->d, s->mailbox);
    s->holds_mailbox = false;
}

/* session_hold - take a reference for a job or request. */
void
session_hold(struct pop_session *s)
{
    s->refs++;
}

/* session_release - drop such a reference. */
void
session_release(struct pop_session *s)
{
    session_unref(s);
}

/* session_timer_closed - the timer handle is closed: its reference goes. */
static void
session_timer_closed(uv_handle_t *h)
{
    session_unref(h->data);
}

/* session_vreply - format one status line into s->reply. */
static void
session_vreply(struct pop_session *s, const char *head, const char *fmt, va_list ap)
{
    char text[512];

    vsnprintf(text, sizeof text, fmt, ap);
    buf_reset(&s->reply);
    if (buf_printf(&s->reply, "%s%s%s\r\n", head, text[0] != '\0' ? " " : "", text) < 0)
        buf_printf(&s->reply, "%s\r\n", head);
    if (log_get_level() >= LOGLVL_DEBUG)
        log_sess(LOGLVL_DEBUG, s->sid, "reply=%s %s", head, text);
}

/* session_ok - "+OK text" as the status line. */
void
session_ok(struct pop_session *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    session_vreply(s, "+OK", fmt, ap);
    va_end(ap);
    s->reply_err = false;
}

/* session_err - "-ERR [code] text" as the status line. */
void
session_err(struct pop_session *s, bool counts, const char *code, const char *fmt, ...)
{
    char head[64];
    va_list ap;

    snprintf(head, sizeof head, "-ERR%s%s%s", code != NULL ? " [" : "", code != NULL ? code : "",
             code != NULL ? "]" : "");
    va_start(ap, fmt);
    session_vreply(s, head, fmt, ap);
    va_end(ap);
    s->reply_err = counts;
}

/* session_send_reply - put the pending status line on the wire. */
void
session_send_reply(struct pop_session *s)
{
    if (s->conn != NULL && s->reply.len > 0) {
        net_write(s->conn, buf_peek(&s->reply), s->reply.len);
        s->d->stats.bytes_out += s->reply.len;
    }
    buf_reset(&s->reply);
}

/* session_write - raw output after the status line. */
void
session_write(struct pop_session *s, const void *p, size_t n)
{
    session_send_reply(s);
    if (s->conn != NULL && n > 0) {
        net_write(s->conn, p, n);
        s->d->stats.bytes_out += n;
    }
}

/* session_close - send what is pending, then close. */
void
session_close(struct pop_session *s, const char *reason)
{
    session_send_reply(s);
    if (s->close_reason == NULL)
        s->close_reason = reason;
    session_enter_state(s, SS_QUIT);
    if (s->conn != NULL)
        net_close(s->conn);
}

/* session_cmd_done - the current command's status line is complete: count errors, then
 * send it, or end the session when the error budget is spent. */
static void
session_cmd_done(struct pop_session *s)
{
    if (s->reply.len == 0)
        return;
    if (s->reply_err && s->state != SS_QUIT) {
        s->reply_err = false;
        if (++s->errors >= s->cf->pop_error_limit) {
            log_sess(LOGLVL_INFO, s->sid, "too many errors=%d", s->errors);
            session_err(s, false, NULL, "Too many bad commands, closing connection");
            session_close(s, "too many errors");
            return;
        }
    }
    session_send_reply(s);
}

/* session_timer_cb - a delay ended: run its function, then go on with the input. */
static void
session_timer_cb(uv_timer_t *t)
{
    struct pop_session *s = t->data;
    void (*fn)(struct pop_session *) = s->timer_fn;

    s->timer_fn = NULL;
    s->wait = SW_NONE;
    if (s->conn == NULL)
        return;
    s->refs++;
    if (fn != NULL)
        fn(s);
    if (s->wait == SW_NONE) {
        session_cmd_done(s);
        session_process(s);
    }
    session_unref(s);
}

/* session_delay - wait on the session timer, then call fn. */
void
session_delay(struct pop_session *s, uint64_t ms, void (*fn)(struct pop_session *s))
{
    s->wait = SW_TIMER;
    s->timer_fn = fn;
    if (s->conn != NULL)
        net_pause_read(s->conn);
    uv_timer_start(&s->timer, session_timer_cb, ms, 0);
}

/* session_go_async - the command waits for the pool. */
void
session_go_async(struct pop_session *s)
{
    s->wait = SW_ASYNC;
    if (s->conn != NULL)
        net_pause_read(s->conn);
}

/* session_resume - the waiting command is done: go on. */
void
session_resume(struct pop_session *s)
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

/* session_run_cont - call the continuation until it is done, waits for the pool, or the
 * output is above the high-water mark (then NET_EV_DRAIN calls again). */
static void
session_run_cont(struct pop_session *s)
{
    while (s->conn != NULL && s->wait == SW_CONT && net_pending(s->conn) <= SESSION_OUT_HIGH) {
        if (s->cont(s)) {
            s->cont = NULL;
            s->wait = SW_NONE;
            break;
        }
        if (retr_busy(s))
            return; /* a read is running on the pool; it kicks us when done */
    }
}

/* session_cont_kick - a streamed answer has more output ready. */
void
session_cont_kick(struct pop_session *s)
{
    if (s->conn == NULL || s->wait != SW_CONT)
        return;
    s->refs++;
    session_run_cont(s);
    if (s->wait == SW_NONE && !s->in_process)
        session_process(s);
    session_unref(s);
}

/* session_continue - start a multi-line answer produced by fn on every drain. */
void
session_continue(struct pop_session *s, bool (*fn)(struct pop_session *s))
{
    session_send_reply(s);
    s->cont = fn;
    s->cont_pos = 0;
    s->wait = SW_CONT;
    if (s->conn != NULL)
        net_pause_read(s->conn);
    session_run_cont(s);
}

/* session_status_line - add_status: "Status: RO" (retrieved in an earlier session) or
 * "Status: O" before the end of a header that has no Status: line yet. */
const char *
session_status_line(struct pop_session *s, size_t i)
{
    const struct dropview_msg *m = dropview_msg(s->view, i);

    if (!s->cf->add_status || m == NULL || (m->flags & DV_HAS_STATUS) || !(m->flags & DV_HAS_BODY))
        return NULL;
    return m->flags & DV_SEEN ? "Status: RO\r\n" : "Status: O\r\n";
}

/* session_msg_size - the size the client is told for message i. */
unsigned long long
session_msg_size(struct pop_session *s, size_t i)
{
    const char *st = session_status_line(s, i);

    return dropview_msg(s->view, i)->size + (st != NULL ? strlen(st) : 0);
}

/* session_msg - message n, or NULL with -ERR written. */
const struct dropview_msg *
session_msg(struct pop_session *s, unsigned long n)
{
    if (s->view == NULL || n == 0 || n > dropview_count(s->view)) {
        session_err(s, false, NULL, "There is no message %lu", n);
        return NULL;
    }
    if (s->del[n - 1]) {
        session_err(s, false, NULL, "Message %lu is deleted", n);
        return NULL;
    }
    return dropview_msg(s->view, n - 1);
}

/* session_stop_now - graceful stop reached this session between commands. */
static void
session_stop_now(struct pop_session *s)
{
    session_err(s, false, "SYS/TEMP", "Server shutting down, try again later");
    session_close(s, "shutdown");
}

/* session_process - handle buffered input, one command at a time, until input runs out
 * or a command has to wait. */
static void
session_process(struct pop_session *s)
{
    struct net_conn *c = s->conn;

    if (c == NULL || s->in_process)
        return;
    s->refs++;
    s->in_process = true;
    net_cork(c);
    while (s->conn != NULL && s->wait == SW_NONE && s->state != SS_QUIT &&
           s->state != SS_TLS_WAIT && s->state != SS_UPDATE) {
        struct buf_lineinfo info;
        enum buf_line r;
        char *line;
        size_t len;

        if (net_pending(c) > SESSION_OUT_HIGH) {
            s->wait = SW_DRAIN;
            break;
        }
        if (s->d->stopping && s->state == SS_AUTH && s->sasl == SASL_NONE) {
            session_stop_now(s);
            break;
        }
        s->reader.limit = s->sasl != SASL_NONE ? SESSION_SASL_LIMIT : SESSION_CMD_LIMIT;
        r = buf_getline(net_inbuf(c), &s->reader, &line, &len, &info);
        if (r == BUF_NONE)
            break;
        if (r == BUF_TOOLONG) {
            log_sess(LOGLVL_INFO, s->sid, "command line too long");
            if (s->sasl != SASL_NONE)
                pop_auth_sasl_abort(s, "SASL response too long");
            else
                session_err(s, true, NULL, "Line too long");
        } else if (s->sasl != SASL_NONE) {
            pop_auth_sasl_line(s, line, len);
        } else {
            command_dispatch(s, line, len);
        }
        if (s->wait == SW_NONE && s->state != SS_QUIT)
            session_cmd_done(s);
    }
    s->in_process = false;
    if (s->conn != NULL) {
        net_uncork(c);
        if (s->wait == SW_NONE && s->state != SS_QUIT && s->state != SS_TLS_WAIT &&
            s->state != SS_UPDATE)
            net_resume_read(c);
        else if (s->wait != SW_NONE)
            net_pause_read(c);
    }
    session_unref(s);
}

/* session_destroy - NET_EV_CLOSED: cut every tie; free when the timer has closed and the
 * pool is done with the session. */
static void
session_destroy(struct pop_session *s)
{
    struct popd *d = s->d;

    s->conn = NULL;
    pop_auth_cancel(s);
    retr_drop(s); /* what no pool job uses; the jobs free the rest */
    if (s->job == NULL)
        session_release_mailbox(s); /* else when the job is done */
    log_sess(LOGLVL_INFO, s->sid, "disconnect reason=%s user=%s retr=%lu dele=%lu errors=%d",
             s->close_reason ? s->close_reason : "closed", s->login ? s->login : "-", s->nretr,
             s->ndele, s->errors);
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
    struct pop_session *s = arg;

    switch (ev) {
    case NET_EV_DATA:
        session_process(s);
        break;
    case NET_EV_DRAIN:
        if (s->wait == SW_CONT) {
            session_cont_kick(s);
        } else if (s->wait == SW_DRAIN) {
            s->wait = SW_NONE;
            session_process(s);
        }
        break;
    case NET_EV_TIMEOUT:
        if (s->wait != SW_NONE || s->state == SS_UPDATE) { /* we are the slow one */
            net_set_timeout(c, (uint64_t)s->cf->pop_timeout * 1000);
            break;
        }
        log_sess(LOGLVL_INFO, s->sid, "timeout state=%s", session_state_name(s->state));
        if (s->state == SS_TLS_WAIT) { /* no reply into a handshake */
            s->close_reason = "timeout in tls handshake";
            net_abort(c);
            break;
        }
        /* RFC 1939 3: autologout without entering UPDATE */
        session_err(s, false, NULL, "Disconnected for inactivity");
        session_close(s, "timeout");
        break;
    case NET_EV_TLS_READY:
        if (s->state != SS_TLS_WAIT)
            break;
        log_sess(LOGLVL_INFO, s->sid, "tls %s", net_tls_desc(c));
        session_enter_state(s, SS_AUTH);
        if (s->port == POPD_PORT_POP3S) {
            command_greeting(s);
            session_send_reply(s);
        }
        session_process(s);
        break;
    case NET_EV_ERROR:
        if (s->close_reason == NULL)
            s->close_reason = "error";
        break;
    case NET_EV_EOF:
        if (s->close_reason == NULL)
            s->close_reason = s->retr != NULL ? "eof during retr" : "eof";
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
    struct popd_listener *l = listener_arg;
    struct popd *d = l->d;
    struct pop_session *s = xcalloc(1, sizeof(*s));

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
    s->next = d->sessions;
    if (d->sessions != NULL)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    net_set_cb(c, session_event, s);
    net_set_inbuf_cap(c, SESSION_INBUF);
    net_set_timeout(c, (uint64_t)s->cf->pop_timeout * 1000);
    log_sess(LOGLVL_INFO, s->sid, "pop3 connect ip=%s port=%d local=%d", s->ip, net_peer_port(c),
             net_local_port(c));
    if (l->kind == POPD_PORT_POP3S) {
        s->state = SS_TLS_WAIT; /* the greeting comes after the handshake */
        return;
    }
    s->state = SS_AUTH;
    command_greeting(s);
    session_send_reply(s);
}

/* session_shutdown - graceful stop: tell idle sessions. */
void
session_shutdown(struct popd *d)
{
    struct pop_session *s, *next;

    for (s = d->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->conn == NULL || s->state == SS_QUIT)
            continue;
        if (s->state == SS_TLS_WAIT) {
            session_close(s, "shutdown");
        } else if (s->wait == SW_NONE && !s->in_process &&
                   (s->state == SS_AUTH || s->state == SS_TRANS)) {
            s->refs++;
            session_stop_now(s);
            session_unref(s);
        }
    }
}
