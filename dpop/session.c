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
#define SESSION_REPLY_CAP 1024          /* one status line */

static const char *const session_state_names[] = {
#define SESSION_STATE_NAME(n) #n,
    SESSION_STATES(SESSION_STATE_NAME)
#undef SESSION_STATE_NAME
};

/* What each state means to the core. */
static const unsigned char session_phases[] = {
    [SS_TLS_WAIT] = SP_TLS, [SS_AUTH] = SP_CMD,   [SS_TRANS] = SP_CMD,
    [SS_UPDATE] = SP_BUSY,  [SS_QUIT] = SP_CLOSE,
};

/* session_free - the last reference is gone. */
static void
session_free(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);

    session_release_mailbox(s);
    retr_drop(s);
    dropview_free(&s->view);
    free(s->del);
    free(s->seen);
    pop_auth_clear_pending(s);
    free(s->login);
    free(s->mailbox);
}

/* session_release_mailbox - give the mailbox back to the in-use table. */
void
session_release_mailbox(struct pop_session *s)
{
    if (s->holds_mailbox)
        mailbox_release(s->d, s->mailbox);
    s->holds_mailbox = false;
}

/* session_vreply - format one status line into s->base.reply. */
__attribute__((format(printf, 3, 0))) static void
session_vreply(struct pop_session *s, const char *head, const char *fmt, va_list ap)
{
    char text[512];

    vsnprintf(text, sizeof text, fmt, ap);
    buf_reset(&s->base.reply);
    if (buf_printf(&s->base.reply, "%s%s%s\r\n", head, text[0] != '\0' ? " " : "", text) < 0)
        buf_printf(&s->base.reply, "%s\r\n", head);
    if (log_get_level() >= LOGLVL_DEBUG)
        log_sess(LOGLVL_DEBUG, s->base.sid, "reply=%s %s", head, text);
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

/* session_cmd_done - the current command's status line is complete: count errors, then
 * send it, or end the session when the error budget is spent. */
static void
session_cmd_done(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);

    if (b->reply.len == 0)
        return;
    if (s->reply_err && b->state != SS_QUIT) {
        s->reply_err = false;
        if (++b->errors >= b->cf->pop_error_limit) {
            log_sess(LOGLVL_INFO, b->sid, "too many errors=%d", b->errors);
            session_err(s, false, NULL, "Too many bad commands, closing connection");
            sess_close(b, "too many errors");
            return;
        }
    }
    sess_send_reply(b);
}

/* session_run_cont - call the continuation until it is done, waits for the pool, or the
 * output is above the high-water mark (then NET_EV_DRAIN calls again). */
static void
session_run_cont(struct pop_session *s)
{
    while (s->base.conn != NULL && s->base.wait == SW_CONT &&
           net_pending(s->base.conn) <= SESS_OUT_HIGH) {
        if (s->cont(s)) {
            s->cont = NULL;
            s->base.wait = SW_NONE;
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
    if (s->base.conn == NULL || s->base.wait != SW_CONT)
        return;
    sess_hold(&s->base);
    session_run_cont(s);
    if (s->base.wait == SW_NONE && !s->base.in_process)
        sess_process(&s->base);
    sess_release(&s->base);
}

/* session_continue - start a multi-line answer produced by fn on every drain. */
void
session_continue(struct pop_session *s, bool (*fn)(struct pop_session *s))
{
    sess_send_reply(&s->base);
    s->cont = fn;
    s->cont_pos = 0;
    sess_wait_cont(&s->base);
    session_run_cont(s);
}

/* session_status_line - add_status: "Status: RO" (retrieved in an earlier session) or
 * "Status: O" before the end of a header that has no Status: line yet. */
const char *
session_status_line(struct pop_session *s, size_t i)
{
    const struct dropview_msg *m = dropview_msg(s->view, i);

    if (!s->base.cf->add_status || m == NULL || (m->flags & DV_HAS_STATUS) ||
        !(m->flags & DV_HAS_BODY))
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

/* session_input - one command line (or SASL response line). */
static enum sess_in
session_input(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);
    struct buf_lineinfo info;
    enum buf_line r;
    char *line;
    size_t len;

    b->reader.limit = s->sasl != SASL_NONE ? SESSION_SASL_LIMIT : SESSION_CMD_LIMIT;
    r = buf_getline(net_inbuf(b->conn), &b->reader, &line, &len, &info);
    if (r == BUF_NONE)
        return SI_NONE;
    if (r == BUF_TOOLONG) {
        log_sess(LOGLVL_INFO, b->sid, "command line too long");
        if (s->sasl != SASL_NONE)
            pop_auth_sasl_abort(s, "SASL response too long");
        else
            session_err(s, true, NULL, "Line too long");
    } else if (s->sasl != SASL_NONE) {
        pop_auth_sasl_line(s, line, len);
    } else {
        command_dispatch(s, line, len);
    }
    return SI_CMD;
}

/* session_may_stop - between commands only before login (outside a SASL exchange); an
 * idle session in TRANSACTION too when the stop begins. Nothing is deleted either way. */
static bool
session_may_stop(struct sess *b, bool idle)
{
    if (idle)
        return b->state == SS_AUTH || b->state == SS_TRANS;
    return b->state == SS_AUTH && pop_session_of(b)->sasl == SASL_NONE;
}

/* session_bye - the last status line of a graceful stop or an idle timeout. */
static void
session_bye(struct sess *b, enum sess_bye why)
{
    if (why == SESS_BYE_SHUTDOWN)
        session_err(pop_session_of(b), false, "SYS/TEMP", "Server shutting down, try again later");
    else /* RFC 1939 3: autologout without entering UPDATE */
        session_err(pop_session_of(b), false, NULL, "Disconnected for inactivity");
}

/* session_drain - the output drained while a multi-line answer is produced. */
static void
session_drain(struct sess *b)
{
    session_cont_kick(pop_session_of(b));
}

/* session_starttls_done - after STLS the client goes on in AUTHORIZATION. */
static void
session_starttls_done(struct sess *b)
{
    sess_enter_state(b, SS_AUTH);
}

/* session_greet - the greeting (with the APOP timestamp). */
static void
session_greet(struct sess *b)
{
    command_greeting(pop_session_of(b));
}

/* session_eof_reason - the peer left. */
static const char *
session_eof_reason(struct sess *b)
{
    return pop_session_of(b)->retr != NULL ? "eof during retr" : "eof";
}

/* session_gone - NET_EV_CLOSED: cut the POP3 ties, log the end. */
static void
session_gone(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);

    pop_auth_cancel(s);
    retr_drop(s); /* what no pool job uses; the jobs free the rest */
    if (s->job == NULL)
        session_release_mailbox(s); /* else when the job is done */
    log_sess(LOGLVL_INFO, b->sid, "disconnect reason=%s user=%s retr=%lu dele=%lu errors=%d",
             b->close_reason ? b->close_reason : "closed", s->login ? s->login : "-", s->nretr,
             s->ndele, b->errors);
}

/* session_open - a new connection. */
static void
session_open(struct sess *b)
{
    pop_session_of(b)->d = popd_of(b->srv);
    b->timeout_ms = (uint64_t)b->cf->pop_timeout * 1000;
}

const struct sess_ops session_ops = {
    .size = sizeof(struct pop_session),
    .cmd_limit = SESSION_CMD_LIMIT,
    .inbuf_cap = SESSION_INBUF,
    .reply_cap = SESSION_REPLY_CAP,
    .state_names = session_state_names,
    .phase = session_phases,
    .nstates = sizeof(session_phases) / sizeof(session_phases[0]),
    .quit_state = SS_QUIT,
    .tls_state = SS_TLS_WAIT,
    .greet_state = SS_AUTH,
    .open = session_open,
    .greet = session_greet,
    .starttls_done = session_starttls_done,
    .input = session_input,
    .cmd_done = session_cmd_done,
    .may_stop = session_may_stop,
    .bye = session_bye,
    .drain = session_drain,
    .eof_reason = session_eof_reason,
    .gone = session_gone,
    .free = session_free,
};
