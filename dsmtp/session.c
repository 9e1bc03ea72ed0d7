/*
 * session - SMTP session life cycle, input loop, replies, error budget. See session.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bombs.h"
#include "chunk.h"
#include "command.h"
#include "deliver.h"
#include "dkim_sign.h"
#include "log.h"
#include "logq.h"
#include "milter.h"
#include "rdns.h"
#include "recentpop.h"
#include "spf.h"
#include "spill.h"
#include "rbl.h"
#include "session.h"
#include "control.h"
#include "smtp_auth.h"
#include "xmem.h"

#define SESSION_CMD_LIMIT 512 /* RFC 5321 4.5.3.1.4, CRLF included */
/* MAIL and RCPT with parameters may be longer (RFC 1869 6; RFC 3461 4: RET and ENVID add
 * 113 octets, NOTIFY and ORCPT 544): as Postfix's line_length_limit. */
#define SESSION_PARAM_LIMIT 2048
#define SESSION_AUTH_LIMIT 12288 /* RFC 4954 4: AUTH lines and SASL responses */
#define SESSION_REPLY_CAP 16384  /* one command's reply */

static const char *const session_state_names[] = {
#define SESSION_STATE_NAME(n) #n,
    SESSION_STATES(SESSION_STATE_NAME)
#undef SESSION_STATE_NAME
};

/* What each state means to the core. */
static const unsigned char session_phases[] = {
    [SS_TLS_WAIT] = SP_TLS, [SS_CONNECTED] = SP_CMD, [SS_READY] = SP_CMD,
    [SS_MAIL] = SP_CMD,     [SS_RCPT] = SP_CMD,      [SS_DATA] = SP_CMD,
    [SS_BDAT] = SP_CMD,     [SS_AUTH] = SP_CMD,      [SS_QUIT] = SP_CLOSE,
};

/* session_reply - format one reply (maybe multi-line) into s->base.reply. */
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
    if (s->base.reply_code == 0)
        s->base.reply_code = code;
    control_count_reply(s->d, code, ecode);
    for (;;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (buf_printf(&s->base.reply, "%d%c%s%s%.*s\r\n", code, nl ? '-' : ' ',
                       enhanced ? ecode : "", enhanced ? " " : "", n, p) < 0) {
            log_sess(LOGLVL_ERROR, s->base.sid, "reply-cut code=%d", code);
            break;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (log_get_level() >= LOGLVL_DEBUG) {
        char q[600];
        logq_text(q, sizeof(q), text, strlen(text), 400);
        log_sess(LOGLVL_DEBUG, s->base.sid, "reply code=%d text=%s", code, q);
    }
}

/* session_cmd_done - the current command's reply is complete: count errors, then send it
 * now, after the error delay, or with a 421 when the budget is spent. */
static void
session_cmd_done(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);
    int code = b->reply_code;
    bool junk = s->junk;

    if (b->reply.len == 0)
        return;
    s->junk = false;
    /* past junk_command_limit, NOOP, RSET, VRFY, HELP count as errors (Postfix's
     * smtpd_junk_command_limit): a client cannot hold a session by chatting */
    if (junk && b->cf->junk_command_limit > 0 && ++s->njunk > (unsigned)b->cf->junk_command_limit &&
        code < 400)
        code = 400;
    if (s->uncounted) /* an echo of an error already counted (a failed BDAT's chunks) */
        s->uncounted = false;
    else if (code >= 400 && code != 421 && b->state != SS_QUIT) {
        b->errors++;
        if (b->errors >= b->cf->error_hard_limit) {
            log_sess(LOGLVL_INFO, b->sid, "too-many-errors errors=%d", b->errors);
            session_reply(s, 421, "4.7.0", "%s Error: too many errors", b->srv->hostname);
            sess_close(b, "too-many-errors");
            return;
        }
        if (b->errors > b->cf->error_soft_limit && b->cf->error_delay > 0) {
            sess_delay(b, (uint64_t)b->cf->error_delay * 1000, sess_send_reply);
            return;
        }
    }
    sess_send_reply(b);
}

/* session_rcpt_drop - what e holds (e itself is the caller's). */
void
session_rcpt_drop(struct smtp_rcpt_entry *e)
{
    free(e->addr);
    free(e->mailbox);
    free(e->orcpt);
    free(e->xheader);
    free(e->lda);
}

/* session_tx_reset - drop the transaction. */
void
session_tx_reset(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;

    for (size_t i = 0; i < tx->nrcpt; i++)
        session_rcpt_drop(&tx->rcpt[i]);
    free(tx->rcpt);
    free(tx->first);
    milter_abort(s);
    spill_drop(s);
    dkim_sign_tx_end(s);
    if (tx->rx_active)
        data_rx_free(&tx->rx);
    memset(tx, 0, sizeof(*tx));
    if (s->base.state == SS_MAIL || s->base.state == SS_RCPT || s->base.state == SS_DATA ||
        s->base.state == SS_BDAT)
        sess_enter_state(&s->base, SS_READY);
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
    linereader_init(&s->base.reader, SESSION_AUTH_LIMIT);
    s->in_bare = false;
    s->bare_len = 0;
    sess_enter_state(&s->base, SS_CONNECTED);
}

/* session_line_limit - the longest line allowed for this one, CRLF included: SASL
 * responses and AUTH 12,288 octets, MAIL and RCPT (with parameters) 2,048, others 512. */
static size_t
session_line_limit(const struct smtp_session *s, const char *line)
{
    struct smtp_cmdline cl;

    if (s->base.state == SS_AUTH)
        return SESSION_AUTH_LIMIT;
    smtp_parse_line(line, &cl);
    if (cl.verb == SMTP_V_AUTH)
        return SESSION_AUTH_LIMIT;
    if (cl.verb == SMTP_V_MAIL || cl.verb == SMTP_V_RCPT)
        return SESSION_PARAM_LIMIT;
    return SESSION_CMD_LIMIT;
}

/* session_input - one command line, or the DATA bytes there are, or a BDAT chunk's. */
static enum sess_in
session_input(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);
    struct buf *in = net_inbuf(b->conn);
    struct buf_lineinfo info;
    enum buf_line r;
    char *line;
    size_t len;

    if (s->chunk.active)
        return chunk_input(s);
    if (b->state == SS_DATA) {
        size_t used;
        if (in->len == 0)
            return SI_NONE;
        used = command_data_input(s, buf_peek(in), in->len);
        buf_consume(in, used);
        if (b->state != SS_DATA)
            return SI_CMD;
        /* input left over (a large message feeds in steps): go on with it */
        return used > 0 && in->len > 0 ? SI_SKIP : SI_NONE;
    }
    r = buf_getline(in, &b->reader, &line, &len, &info);
    if (r == BUF_NONE)
        return SI_NONE;
    if (r == BUF_LINE && len + 2 > SESSION_CMD_LIMIT && len + 2 > session_line_limit(s, line)) {
        explicit_bzero(line, len); /* might be SASL data */
        r = BUF_TOOLONG;
    }
    if (r == BUF_TOOLONG) {
        log_sess(LOGLVL_INFO, b->sid, "command-refused reason=line-too-long");
        s->bare_len = 0;
        s->in_bare = false;
        if (b->state == SS_AUTH) /* the 500 ends the exchange for the client too */
            smtp_auth_cancel(s);
        session_reply(s, 500, "5.5.2", "Error: line too long");
        return SI_CMD;
    }
    if (!info.crlf && !s->normalize && (s->bare_len += len + 1) < SESSION_CMD_LIMIT) {
        /* A bare LF does not end a command: the line goes on to the next CRLF and gets
         * one error then (sendmail 8.18's strict mode). */
        s->in_bare = true;
        explicit_bzero(line, len); /* might be SASL data */
        return SI_SKIP;
    }
    if (s->in_bare)
        info.crlf = false; /* the whole line is refused */
    s->in_bare = false;
    s->bare_len = 0;
    command_dispatch(s, line, len, &info);
    if (s->chunk.pending) /* BDAT: its octets come next, then its reply */
        return chunk_begin(s);
    return SI_CMD;
}

/* session_may_stop - a graceful stop lets a transaction's DATA or BDAT chunks finish. */
static bool
session_may_stop(struct sess *b, bool idle)
{
    return b->state != SS_DATA && b->state != SS_BDAT && !smtp_session_of(b)->chunk.active;
}

/* session_bye - the 421 of a graceful stop or an idle timeout. */
static void
session_bye(struct sess *b, enum sess_bye why)
{
    if (why == SESS_BYE_SHUTDOWN)
        session_reply(smtp_session_of(b), 421, "4.3.2", "%s Service shutting down",
                      b->srv->hostname);
    else
        session_reply(smtp_session_of(b), 421, "4.4.2", "%s Error: timeout exceeded",
                      b->srv->hostname);
}

/* session_starttls_done - after STARTTLS the client starts over (RFC 3207 4.2). */
static void
session_starttls_done(struct sess *b)
{
    session_reset(smtp_session_of(b));
}

/* session_greet - the banner. */
static void
session_greet(struct sess *b)
{
    command_greeting(smtp_session_of(b));
}

/* session_eof_reason - the peer left. */
static const char *
session_eof_reason(struct sess *b)
{
    if (smtp_session_of(b)->chunk.active || b->state == SS_BDAT)
        return "eof-in-bdat";
    return b->state == SS_DATA ? "eof-in-data" : "eof";
}

/* session_gone - NET_EV_CLOSED: cut the SMTP ties, log the end. */
static void
session_gone(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);

    smtp_auth_cancel(s);
    command_lookup_cancel(s);
    rdns_free(s);
    spf_free(s);
    recentpop_free(s);
    rbl_session_end(s);
    bombs_cancel(s);
    spill_cancel(s);
    dkim_sign_cancel(s);
    milter_end(s);
    command_rcpt_wait_free(s);
    if (s->batch != NULL) {
        log_sess(LOGLVL_INFO, b->sid, "client-gone state=delivering");
        deliver_detach(s->batch);
        s->batch = NULL;
    } else if (b->state == SS_DATA) {
        log_sess(LOGLVL_INFO, b->sid, "discarded reason=eof-in-data");
    } else if (b->state == SS_BDAT) {
        log_sess(LOGLVL_INFO, b->sid, "discarded id=%s size=%llu reason=eof-in-bdat", s->tx.id,
                 s->tx.rx.wire);
    }
    session_tx_reset(s);
    log_sess(LOGLVL_INFO, b->sid, "disconnect reason=%s msgs=%u errors=%d",
             b->close_reason ? b->close_reason : "closed", s->nmsgs, b->errors);
}

/* session_free - the last reference went. */
static void
session_free(struct sess *b)
{
    free(smtp_session_of(b)->auth_user);
    rbl_session_free(smtp_session_of(b));
}

/* session_open - a new connection. */
static void
session_open(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);

    s->d = smtpd_of(b->srv);
    b->timeout_ms = (uint64_t)b->cf->smtp_timeout * 1000;
    s->normalize =
        b->cf->bare_newline == BARE_NL_NORMALIZE && conf_ip_match(&b->cf->forward_from_ip, b->ip);
    rdns_start(s);
    recentpop_start(s);
}

const struct sess_ops session_ops = {
    .size = sizeof(struct smtp_session),
    .cmd_limit = SESSION_AUTH_LIMIT,
    .reply_cap = SESSION_REPLY_CAP,
    .state_names = session_state_names,
    .phase = session_phases,
    .nstates = sizeof(session_phases) / sizeof(session_phases[0]),
    .quit_state = SS_QUIT,
    .tls_state = SS_TLS_WAIT,
    .greet_state = SS_CONNECTED,
    .open = session_open,
    .greet = session_greet,
    .starttls_done = session_starttls_done,
    .input = session_input,
    .cmd_done = session_cmd_done,
    .may_stop = session_may_stop,
    .bye = session_bye,
    .eof_reason = session_eof_reason,
    .gone = session_gone,
    .free = session_free,
};
