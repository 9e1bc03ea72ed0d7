/*
 * sess - the session base: life cycle, input loop, waits, graceful stop. See sess.h.
 */
#include "sess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "xmem.h"

/* sess_state_name - the protocol's name of the state. */
const char *
sess_state_name(const struct sess *s)
{
    if (s->state < 0 || s->state >= s->ops->nstates)
        return "?";
    return s->ops->state_names[s->state];
}

/* sess_phase - what the state means to the core. */
enum sess_phase
sess_phase(const struct sess *s)
{
    if (s->state < 0 || s->state >= s->ops->nstates)
        return SP_CLOSE;
    return (enum sess_phase)s->ops->phase[s->state];
}

/* sess_enter_state - the one place the state changes. */
void
sess_enter_state(struct sess *s, int state)
{
    if (s->state != state && log_get_level() >= LOGLVL_DEBUG) {
        const char *from = sess_state_name(s);
        s->state = state;
        log_sess(LOGLVL_DEBUG, s->sid, "state from=%s to=%s", from, sess_state_name(s));
    }
    s->state = state;
}

/* sess_free - the last reference is gone. */
static void
sess_free(struct sess *s)
{
    if (s->ops->free != NULL)
        s->ops->free(s);
    conf_unref(&s->cf);
    if (s->db != NULL)
        auth_db_unref(&s->db);
    buf_free(&s->reply);
    free(s);
}

/* sess_hold - one reference more. */
void
sess_hold(struct sess *s)
{
    s->refs++;
}

/* sess_release - one reference less. */
void
sess_release(struct sess *s)
{
    if (--s->refs == 0)
        sess_free(s);
}

/* sess_timer_closed - the timer handle is closed: its reference goes. */
static void
sess_timer_closed(uv_handle_t *h)
{
    sess_release(h->data);
}

/* sess_send_reply - put the pending reply on the wire. */
void
sess_send_reply(struct sess *s)
{
    if (s->conn != NULL && s->reply.len > 0) {
        net_write(s->conn, buf_peek(&s->reply), s->reply.len);
        s->srv->bytes_out += s->reply.len;
    }
    buf_reset(&s->reply);
    s->reply_code = 0;
}

/* sess_write - raw output after the pending reply. */
void
sess_write(struct sess *s, const void *p, size_t n)
{
    sess_send_reply(s);
    if (s->conn != NULL && n > 0) {
        net_write(s->conn, p, n);
        s->srv->bytes_out += n;
    }
}

/* sess_flush_now - send the reply written so far, uncorked. */
void
sess_flush_now(struct sess *s)
{
    sess_send_reply(s);
    if (s->conn != NULL)
        net_uncork(s->conn);
}

/* sess_close - send what is pending, then close the connection. */
void
sess_close(struct sess *s, const char *reason)
{
    sess_send_reply(s);
    if (s->close_reason == NULL)
        s->close_reason = reason;
    sess_enter_state(s, s->ops->quit_state);
    if (s->conn != NULL)
        net_close(s->conn);
}

/* sess_bye - the last reply of a stop or a timeout, then close. */
static void
sess_bye(struct sess *s, enum sess_bye why)
{
    sess_hold(s);
    s->ops->bye(s, why);
    sess_close(s, why == SESS_BYE_SHUTDOWN ? "shutdown" : "timeout");
    sess_release(s);
}

/* sess_timer_cb - a delay ended: run its function, then go on with the input. */
static void
sess_timer_cb(uv_timer_t *t)
{
    struct sess *s = t->data;
    void (*fn)(struct sess *) = s->timer_fn;

    s->timer_fn = NULL;
    s->wait = SW_NONE;
    if (s->conn == NULL)
        return;
    sess_hold(s);
    if (fn != NULL)
        fn(s);
    if (s->wait == SW_NONE) {
        s->ops->cmd_done(s);
        sess_process(s);
    }
    sess_release(s);
}

/* sess_delay - wait ms on the session's timer, then call fn. */
void
sess_delay(struct sess *s, uint64_t ms, void (*fn)(struct sess *s))
{
    s->wait = SW_TIMER;
    s->timer_fn = fn;
    if (s->conn != NULL)
        net_pause_read(s->conn);
    uv_timer_start(&s->timer, sess_timer_cb, ms, 0);
}

/* sess_go_async - the command continues on the pool. */
void
sess_go_async(struct sess *s)
{
    s->wait = SW_ASYNC;
    if (s->conn != NULL)
        net_pause_read(s->conn);
}

/* sess_wait_cont - a protocol continuation starts. */
void
sess_wait_cont(struct sess *s)
{
    s->wait = SW_CONT;
    if (s->conn != NULL)
        net_pause_read(s->conn);
}

/* sess_resume - the waiting command has its reply. */
void
sess_resume(struct sess *s)
{
    s->wait = SW_NONE;
    if (s->conn == NULL)
        return;
    sess_hold(s);
    s->ops->cmd_done(s);
    if (s->wait == SW_NONE && !s->in_process)
        sess_process(s);
    sess_release(s);
}

/* sess_process - handle buffered input, one command at a time, until input runs out or
 * a command has to wait. */
void
sess_process(struct sess *s)
{
    struct net_conn *c = s->conn;

    if (c == NULL || s->in_process)
        return;
    sess_hold(s);
    s->in_process = true;
    net_cork(c);
    while (s->conn != NULL && s->wait == SW_NONE && sess_phase(s) == SP_CMD) {
        enum sess_in r;

        if (net_pending(c) > SESS_OUT_HIGH) {
            s->wait = SW_DRAIN;
            break;
        }
        if (s->srv->stopping && s->ops->may_stop(s, false)) {
            sess_bye(s, SESS_BYE_SHUTDOWN);
            break;
        }
        r = s->ops->input(s);
        if (r == SI_NONE)
            break;
        if (r == SI_CMD)
            sess_progress(s);
        if (r == SI_CMD && s->wait == SW_NONE && sess_phase(s) != SP_CLOSE)
            s->ops->cmd_done(s);
    }
    s->in_process = false;
    if (s->conn != NULL) {
        net_uncork(c);
        if (s->wait == SW_NONE && sess_phase(s) == SP_CMD)
            net_resume_read(c);
        else if (s->wait != SW_NONE)
            net_pause_read(c);
    }
    sess_release(s);
}

/* sess_destroy - NET_EV_CLOSED: cut every tie, free when the rest has let go. */
static void
sess_destroy(struct sess *s)
{
    struct server *srv = s->srv;

    s->conn = NULL;
    s->ops->gone(s);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->nsessions--;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sess_timer_closed);
    sess_release(s);
    if (srv->stopping && srv->nsessions == 0)
        server_finish(srv);
}

/* sess_progress - see sess.h. */
void
sess_progress(struct sess *s)
{
    s->record_ms = uv_now(s->srv->loop);
}

/* sess_sweep - see sess.h. */
void
sess_sweep(struct sess *s, uint64_t now, uint64_t stress_ms)
{
    enum sess_phase ph = sess_phase(s);
    uint64_t lim;
    const char *why;

    if (s->conn == NULL || ph == SP_CLOSE)
        return;
    if (s->wait != SW_NONE || ph == SP_BUSY) { /* we are the slow one: the client waits */
        s->record_ms = now;
        return;
    }
    lim = net_get_timeout(s->conn);
    if (stress_ms > 0 && (lim == 0 || lim > stress_ms))
        lim = stress_ms;
    if (lim > 0 && now - s->record_ms > lim)
        why = stress_ms > 0 ? "stress-deadline" : "deadline";
    else if (s->cf->max_session_time > 0 &&
             now - s->born_ms > (uint64_t)s->cf->max_session_time * 1000)
        why = "session-time";
    else
        return;
    log_sess(LOGLVL_INFO, s->sid, "timeout state=%s reason=%s", sess_state_name(s), why);
    if (ph == SP_TLS) { /* no reply into a handshake */
        s->close_reason = "tls-handshake-timeout";
        net_abort(s->conn);
        return;
    }
    sess_bye(s, SESS_BYE_TIMEOUT);
}

/* sess_timeout - no input for the idle timeout. */
static void
sess_timeout(struct sess *s)
{
    enum sess_phase ph = sess_phase(s);

    if (s->wait != SW_NONE || ph == SP_BUSY) { /* we are the slow one; the client waits */
        net_set_timeout(s->conn, s->timeout_ms);
        return;
    }
    log_sess(LOGLVL_INFO, s->sid, "timeout state=%s", sess_state_name(s));
    if (ph == SP_TLS) { /* no reply into a handshake */
        s->close_reason = "tls-handshake-timeout";
        net_abort(s->conn);
        return;
    }
    sess_bye(s, SESS_BYE_TIMEOUT);
}

/* sess_event - everything net tells us about the connection. */
static void
sess_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct sess *s = arg;

    switch (ev) {
    case NET_EV_DATA:
        sess_process(s);
        break;
    case NET_EV_DRAIN:
        if (s->wait == SW_DRAIN) {
            s->wait = SW_NONE;
            sess_process(s);
        } else if (s->wait == SW_CONT && s->ops->drain != NULL) {
            s->ops->drain(s);
        }
        break;
    case NET_EV_TIMEOUT:
        sess_timeout(s);
        break;
    case NET_EV_TLS_READY:
        if (sess_phase(s) != SP_TLS)
            break;
        log_sess(LOGLVL_INFO, s->sid, "tls version=%s", net_tls_desc(c));
        if (s->srv->ports[s->port].def->implicit_tls) {
            sess_enter_state(s, s->ops->greet_state);
            s->ops->greet(s);
        } else {
            s->ops->starttls_done(s);
        }
        sess_send_reply(s);
        sess_process(s);
        break;
    case NET_EV_ERROR:
        if (s->close_reason == NULL)
            s->close_reason = "error";
        break;
    case NET_EV_EOF:
        if (s->close_reason == NULL)
            s->close_reason = s->ops->eof_reason != NULL ? s->ops->eof_reason(s) : "eof";
        break;
    case NET_EV_CLOSED:
        sess_destroy(s);
        break;
    case NET_EV_CONNECTED: /* outbound connections only */
        break;
    }
}

/* sess_accept - a new connection. */
void
sess_accept(struct net_conn *c, void *port_arg)
{
    struct server_port *p = port_arg;
    struct server *srv = p->srv;
    const struct sess_ops *ops = srv->proto->sess;
    struct sess *s = xcalloc(1, ops->size);

    s->refs = 2; /* the connection and the timer handle */
    s->srv = srv;
    s->ops = ops;
    s->conn = c;
    s->port = (int)(p - srv->ports);
    s->cf = conf_ref(srv->cf);
    s->db = srv->db != NULL ? auth_db_ref(srv->db) : NULL;
    s->sid = log_new_sid();
    s->born_ms = s->record_ms = uv_now(srv->loop);
    snprintf(s->ip, sizeof(s->ip), "%s", net_peer_ip(c));
    linereader_init(&s->reader, ops->cmd_limit);
    buf_init(&s->reply, ops->reply_cap);
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    s->next = srv->sessions;
    if (srv->sessions != NULL)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    net_set_cb(c, sess_event, s);
    if (ops->inbuf_cap > 0)
        net_set_inbuf_cap(c, ops->inbuf_cap);
    log_sess(LOGLVL_INFO, s->sid, "connect ip=%s port=%d local=%d listener=%s", s->ip,
             net_peer_port(c), net_local_port(c), p->def->name);
    if (ops->open != NULL)
        ops->open(s);
    net_set_timeout(c, s->timeout_ms);
    if (p->def->implicit_tls) {
        s->state = ops->tls_state; /* the greeting comes after the handshake */
        return;
    }
    s->state = ops->greet_state;
    ops->greet(s);
    sess_send_reply(s);
}

/* sess_shutdown_all - tell idle sessions we are going; the others finish first. */
void
sess_shutdown_all(struct server *srv)
{
    struct sess *s, *next;

    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->conn == NULL || sess_phase(s) == SP_CLOSE)
            continue;
        if (sess_phase(s) == SP_TLS)
            sess_close(s, "shutdown");
        else if (s->wait == SW_NONE && !s->in_process && s->ops->may_stop(s, true))
            sess_bye(s, SESS_BYE_SHUTDOWN);
    }
}
