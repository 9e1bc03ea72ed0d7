/*
 * smtpc - dsmtp's SMTP client: the session and its transactions (the contract is in
 * smtpc.h; reply lines, EHLO keywords and the text's encoding are in smtpc_reply.c).
 *
 * One state at a time (enum smtpc_state). Every reply is handled by the state that waits
 * for it; a transaction counts its commands as steps (RSET, MAIL, each RCPT sent, DATA)
 * and takes their replies in order, whether they went out in one write (PIPELINING) or
 * one by one. Timeouts are net's idle timeout, set for each wait. A failure (a lost
 * connection, a timeout, a malformed reply, a 421) goes through smtpc_fail, which closes
 * the connection and gives the pending callback its reply; the state is then SC_DEAD and
 * nothing more is read. Callbacks run last in a handler: the caller may send or close
 * from inside them. After smtpc_close the connection's events go nowhere; the struct is
 * freed once its timer handle (deferred results) has closed.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dane.h"
#include "log.h"
#include "smtpc.h"
#include "smtpc_int.h"
#include "xmem.h"

#define SMTPC_REPLY_LINE 2048 /* longest reply line taken, CRLF included (RFC 5321: 512) */
#define SMTPC_CHUNK (64 * 1024)
#define SMTPC_OUT_HIGH (4 * SMTPC_CHUNK) /* produce no more text while this much waits */
_Static_assert(SMTPC_OUT_HIGH >= NET_DIRECT_MAX, "a direct send must never be waited for");

enum smtpc_state {
    SC_CONNECT,   /* net_connect under way */
    SC_GREETING,  /* waiting for the banner */
    SC_EHLO,      /* EHLO sent */
    SC_HELO,      /* HELO sent (EHLO was refused) */
    SC_STARTTLS,  /* STARTTLS sent */
    SC_HANDSHAKE, /* the TLS handshake runs */
    SC_AUTH_USER, /* AUTH LOGIN sent: the user name is asked for next */
    SC_AUTH_PASS, /* the user name sent: the password is asked for next */
    SC_AUTH,      /* the credentials sent: 235 or not */
    SC_READY,     /* idle between transactions */
    SC_TX,        /* RSET/MAIL/RCPT/DATA replies due */
    SC_BODY,      /* the text goes out */
    SC_DOT,       /* the text is out: the final reply is due */
    SC_DEAD,      /* failed or broken: nothing more */
};

enum { SMTPC_STEP_RSET, SMTPC_STEP_MAIL, SMTPC_STEP_RCPT }; /* then each RCPT, then DATA */

struct smtpc {
    struct net_conn *conn; /* NULL after NET_EV_CLOSED or smtpc_close */
    uv_timer_t timer;      /* results that must not come from inside smtpc_send */
    enum smtpc_state state;
    bool closed;    /* smtpc_close was called */
    bool need_rset; /* the last transaction did not end with the final reply */
    unsigned ext;   /* SMTPC_X_* of the last EHLO */
    char *helo, *tls_name, *user, *pass;
    SSL_CTX *tls;
    struct dane *dane; /* SMTPC_TLS_DANE: the records */
    enum smtpc_tls policy;
    uint64_t timeout_ms, data_timeout_ms;
    smtpc_ready_cb ready; /* NULL once called */
    void *ready_arg;
    struct smtpc_info info;
    struct smtpc_reply hello; /* the last EHLO/HELO reply: ready's, without AUTH */
    struct linereader lr;
    struct smtpc_rx rx;
    char peer[80];
    /* the transaction */
    struct smtpc_msg *m; /* NULL when none runs */
    smtpc_done_cb done;
    void *done_arg;
    size_t *order; /* the recipients sent, as indexes of m->rcpt */
    size_t norder;
    size_t rstep, sstep; /* the step whose reply is due next; the next step to send */
    size_t accepted;
    bool mail_ok;
    bool discard;  /* a 354 with no recipient accepted: the lone dot's reply is nobody's */
    bool deferred; /* the result is ready: the timer delivers it */
    struct smtpc_reply mail_reply;
    struct smtpc_enc enc;
    struct smtpc_enc henc; /* m->head's, before enc's text */
    char *chunk;
};

static void smtpc_event(struct net_conn *nc, enum net_event ev, void *arg);

/* smtpc_cmd - write one command line (CRLF added) and log it; shown replaces the line
 * in the log when not NULL (credentials are never logged). */
static void __attribute__((format(printf, 3, 4)))
smtpc_cmd(struct smtpc *c, const char *shown, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || c->conn == NULL)
        return;
    char *line = xmalloc((size_t)n + 3);
    va_start(ap, fmt);
    vsnprintf(line, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (log_get_level() >= LOGLVL_DEBUG) {
        char q[300];
        log_escape(q, sizeof(q), shown != NULL ? shown : line, strlen(shown ? shown : line), 200);
        log_debug("smtpc %s > %s", c->peer, q);
    }
    memcpy(line + n, "\r\n", 3);
    net_write(c->conn, line, (size_t)n + 2);
    explicit_bzero(line, (size_t)n);
    free(line);
}

/* smtpc_wait - the state that waits for the next reply, with its timeout. */
static void
smtpc_wait(struct smtpc *c, enum smtpc_state st, uint64_t ms)
{
    c->state = st;
    if (c->conn != NULL)
        net_set_timeout(c->conn, ms);
}

/* smtpc_clean - s holds no control character (nor a space when !space). */
static bool
smtpc_clean(const char *s, bool space)
{
    for (; s != NULL && *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == ' ' && !space))
            return false;
    return true;
}

/* ---- the transaction ---- */

/* smtpc_tx_unanswered - recipient i has no final reply yet (none, or an accepting RCPT's). */
static bool
smtpc_tx_unanswered(const struct smtpc_rcpt *r)
{
    return r->reply.code == 0 || r->reply.code / 100 == 2;
}

void
smtpc_msg_clear(struct smtpc_msg *m)
{
    for (size_t i = 0; i < m->npool; i++)
        free(m->pool[i]);
    free(m->pool);
    m->pool = NULL;
    m->npool = 0;
    for (size_t i = 0; i < m->nrcpt; i++)
        m->rcpt[i].reply.text = "";
}

void
smtpc_answer_reply(const struct smtpc_answer *a, struct smtpc_reply *r)
{
    r->code = a->code;
    snprintf(r->status, sizeof(r->status), "%s", a->status);
    snprintf(r->text, sizeof(r->text), "%s", a->text != NULL ? a->text : "");
}

/* smtpc_answer_set - recipient answer a of m gets r; its text from m's pool (one of the
 * last few texts when equal, else a new copy). */
static void
smtpc_answer_set(struct smtpc_msg *m, struct smtpc_answer *a, const struct smtpc_reply *r)
{
    size_t i;

    a->code = r->code;
    memcpy(a->status, r->status, sizeof(a->status));
    for (i = m->npool; i > 0 && i + 4 > m->npool; i--)
        if (strcmp(m->pool[i - 1], r->text) == 0) {
            a->text = m->pool[i - 1];
            return;
        }
    if ((m->npool & (m->npool - 1)) == 0) /* 0, 1, 2, 4...: the array doubles */
        m->pool = xrealloc(m->pool, (m->npool ? m->npool * 2 : 1) * sizeof(*m->pool));
    a->text = m->pool[m->npool++] = xstrdup(r->text);
}

/* smtpc_tx_answer - every recipient sent and not answered yet gets r. */
static void
smtpc_tx_answer(struct smtpc *c, const struct smtpc_reply *r)
{
    for (size_t j = 0; j < c->norder; j++) {
        struct smtpc_rcpt *rc = &c->m->rcpt[c->order[j]];
        if (smtpc_tx_unanswered(rc))
            smtpc_answer_set(c->m, &rc->reply, r);
    }
}

/* smtpc_tx_finish - the transaction ended: done, once. */
static void
smtpc_tx_finish(struct smtpc *c, bool need_rset, bool broken)
{
    struct smtpc_msg *m = c->m;
    smtpc_done_cb done = c->done;

    c->need_rset = need_rset;
    c->m = NULL;
    c->deferred = false;
    free(c->order);
    c->order = NULL;
    c->norder = 0;
    if (!broken)
        smtpc_wait(c, SC_READY, 0);
    done(c, c->done_arg, m, broken);
}

/* smtpc_fail - the session cannot go on: close (QUIT first when quit), then the pending
 * callback gets r (ready), or the recipients not answered get it (done, broken). */
static void
smtpc_fail(struct smtpc *c, bool quit, const struct smtpc_reply *r)
{
    if (c->state == SC_DEAD)
        return;
    c->state = SC_DEAD;
    if (c->conn != NULL) {
        if (quit) {
            smtpc_cmd(c, NULL, "QUIT");
            net_close(c->conn);
        } else {
            net_abort(c->conn);
        }
    }
    if (log_get_level() >= LOGLVL_DEBUG)
        log_debug("smtpc %s failed: %d %s %s", c->peer, r->code, r->status, r->text);
    if (c->ready != NULL) {
        smtpc_ready_cb ready = c->ready;
        c->ready = NULL;
        c->info.reply = *r;
        ready(c, c->ready_arg, &c->info);
    } else if (c->m != NULL) {
        smtpc_tx_answer(c, r);
        smtpc_tx_finish(c, true, true);
    }
}

/* smtpc_failf - smtpc_fail with a reply made here, in the stage given (NULL: as is). */
static void __attribute__((format(printf, 6, 7)))
smtpc_failf(struct smtpc *c, bool quit, const char *stage, int code, const char *status,
            const char *fmt, ...)
{
    struct smtpc_reply r;
    char text[SMTPC_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    smtpc_reply_make(&r, code, status, "%s", text);
    if (stage != NULL)
        c->info.stage = stage;
    smtpc_fail(c, quit, &r);
}

/* smtpc_msg_size - what SIZE= declares for m: its head and text with CRLF line ends. */
static unsigned long long
smtpc_msg_size(const struct smtpc_msg *m)
{
    return smtpc_wire_size(m->text, m->len) +
           (m->head_len > 0 ? smtpc_wire_size(m->head, m->head_len) : 0);
}

/* smtpc_tx_write - send one step's command. */
static void
smtpc_tx_write(struct smtpc *c, size_t step)
{
    const struct smtpc_msg *m = c->m;
    const struct smtpc_info *in = &c->info;
    char size[40] = "";

    if (step == SMTPC_STEP_RSET) {
        smtpc_cmd(c, NULL, "RSET");
    } else if (step == SMTPC_STEP_MAIL) {
        if (c->ext & SMTPC_X_SIZE)
            snprintf(size, sizeof(size), " SIZE=%llu", smtpc_msg_size(m));
        smtpc_cmd(c, NULL, "MAIL FROM:<%s>%s%s%s%s%s%s%s%s%s", m->sender, size,
                  m->eightbit && in->eightbitmime ? " BODY=8BITMIME" : "",
                  m->smtputf8 ? " SMTPUTF8" : "", in->dsn && m->ret ? " RET=" : "",
                  in->dsn && m->ret ? m->ret : "", in->dsn && m->envid ? " ENVID=" : "",
                  in->dsn && m->envid ? m->envid : "", m->requiretls ? " REQUIRETLS" : "",
                  m->xverp && in->xverp ? " XVERP" : "");
    } else if (step - SMTPC_STEP_RCPT < c->norder) {
        const struct smtpc_rcpt *r = &m->rcpt[c->order[step - SMTPC_STEP_RCPT]];
        char xh[SMTPC_XHEADER_MAX + 1] = "";
        if (in->xheader && m->xheader != NULL &&
            m->xheader(m->xheader_arg, c->order[step - SMTPC_STEP_RCPT], xh, sizeof(xh)) == 0)
            xh[0] = '\0';
        xh[sizeof(xh) - 1] = '\0';
        if (!smtpc_clean(xh, false)) /* no space or control: the line stays whole */
            xh[0] = '\0';
        smtpc_cmd(c, NULL, "RCPT TO:<%s>%s%s%s%s%s%s", r->addr,
                  in->dsn && r->notify ? " NOTIFY=" : "", in->dsn && r->notify ? r->notify : "",
                  in->dsn && r->orcpt ? " ORCPT=" : "", in->dsn && r->orcpt ? r->orcpt : "",
                  xh[0] ? " XHEADER=" : "", xh);
    } else {
        smtpc_cmd(c, NULL, "DATA");
    }
}

/* smtpc_tx_data_step - the step of DATA, the last one. */
static size_t
smtpc_tx_data_step(const struct smtpc *c)
{
    return SMTPC_STEP_RCPT + c->norder;
}

/* smtpc_body_pump - produce the text while the output queue is short; once all of it is
 * out, the final reply is due within data_timeout_ms. */
static void
smtpc_body_pump(struct smtpc *c)
{
    const struct smtpc_msg *m = c->m;

    while (!c->enc.done && net_pending(c->conn) < SMTPC_OUT_HIGH) {
        size_t n = c->henc.pos < m->head_len
                       ? smtpc_enc_chunk(&c->henc, m->head, m->head_len, c->chunk, SMTPC_CHUNK)
                       : smtpc_enc_chunk(&c->enc, m->text, m->len, c->chunk, SMTPC_CHUNK);
        net_write(c->conn, c->chunk, n);
    }
    if (c->enc.done && net_pending(c->conn) == 0)
        smtpc_wait(c, SC_DOT, c->data_timeout_ms);
    else
        net_set_timeout(c->conn, c->timeout_ms); /* progress re-arms it (NET_EV_DRAIN) */
}

/* smtpc_tx_data - the reply to DATA. */
static void
smtpc_tx_data(struct smtpc *c, const struct smtpc_reply *r)
{
    if (r->code == 354 && c->accepted == 0) {
        /* pipelined, every recipient refused, and yet the server wants the text: an empty
         * message ends it (RFC 2920 3.1) */
        c->discard = true;
        net_write(c->conn, ".\r\n", 3);
        smtpc_wait(c, SC_DOT, c->data_timeout_ms);
    } else if (r->code == 354) {
        memset(&c->enc, 0, sizeof(c->enc));
        memset(&c->henc, 0, sizeof(c->henc));
        c->henc.more = true;
        if (c->chunk == NULL)
            c->chunk = xmalloc(SMTPC_CHUNK);
        c->state = SC_BODY;
        smtpc_body_pump(c);
    } else {
        smtpc_tx_answer(c, r); /* the accepted ones, if any */
        smtpc_tx_finish(c, true, false);
    }
}

/* smtpc_tx_pipe - pipelining: the next steps while fewer than SMTPC_PIPE_WINDOW are
 * unanswered, written together (RFC 2920); topped up when half are answered, so a
 * 100,000-recipient transaction never holds all its RCPT lines in the output queue. */
static void
smtpc_tx_pipe(struct smtpc *c)
{
    size_t data = smtpc_tx_data_step(c);

    if (c->sstep > data || c->sstep - c->rstep > SMTPC_PIPE_WINDOW / 2)
        return;
    net_cork(c->conn);
    while (c->sstep <= data && c->sstep - c->rstep < SMTPC_PIPE_WINDOW)
        smtpc_tx_write(c, c->sstep++);
    net_uncork(c->conn);
}

/* smtpc_tx_reply - the reply to the step c->rstep. */
static void
smtpc_tx_reply(struct smtpc *c, const struct smtpc_reply *r)
{
    size_t step = c->rstep++, data = smtpc_tx_data_step(c);
    bool ok = r->code / 100 == 2;

    if (step == SMTPC_STEP_RSET) {
        c->need_rset = false;
    } else if (step == SMTPC_STEP_MAIL) {
        c->mail_ok = ok;
        c->mail_reply = *r;
        if (!ok && !c->info.pipelining) {
            smtpc_tx_answer(c, r);
            smtpc_tx_finish(c, true, false);
            return;
        }
    } else if (step < data) {
        struct smtpc_rcpt *rc = &c->m->rcpt[c->order[step - SMTPC_STEP_RCPT]];
        smtpc_answer_set(c->m, &rc->reply, c->mail_ok ? r : &c->mail_reply);
        if (c->mail_ok && ok)
            c->accepted++;
    } else {
        smtpc_tx_data(c, r);
        return;
    }
    if (c->info.pipelining) {
        smtpc_tx_pipe(c);
        return;
    }
    if (c->sstep != c->rstep)
        return;
    if (c->rstep == data && c->accepted == 0) {
        smtpc_tx_finish(c, true, false); /* every recipient refused: no DATA */
        return;
    }
    smtpc_tx_write(c, c->sstep++);
    smtpc_wait(c, SC_TX, c->timeout_ms);
}

/* smtpc_tx_final - the reply to the end of the text (early: the text was not all out,
 * and the connection cannot go on). */
static void
smtpc_tx_final(struct smtpc *c, const struct smtpc_reply *r, bool early)
{
    if (!c->discard)
        smtpc_tx_answer(c, r);
    if (early) {
        c->state = SC_DEAD;
        net_abort(c->conn);
    }
    smtpc_tx_finish(c, false, early);
}

/* smtpc_timer_cb - a result decided in smtpc_send: nothing was sent. */
static void
smtpc_timer_cb(uv_timer_t *t)
{
    struct smtpc *c = t->data;

    if (c->m != NULL && c->deferred)
        smtpc_tx_finish(c, c->need_rset, false);
}

/* smtpc_tx_refuse - every recipient not refused yet gets code/status/text; the result
 * comes from the loop. */
static void
smtpc_tx_refuse(struct smtpc *c, int code, const char *status, const char *text)
{
    struct smtpc_reply r;

    smtpc_reply_make(&r, code, status, "%s", text);
    for (size_t i = 0; i < c->m->nrcpt; i++)
        if (c->m->rcpt[i].reply.code == 0)
            smtpc_answer_set(c->m, &c->m->rcpt[i].reply, &r);
    c->deferred = true;
    uv_timer_start(&c->timer, smtpc_timer_cb, 0, 0);
}

/* smtpc_send - see smtpc.h. */
int
smtpc_send(struct smtpc *c, struct smtpc_msg *m, smtpc_done_cb done, void *arg)
{
    char text[SMTPC_TEXT_MAX];
    unsigned long long size;

    if (c == NULL || c->closed || c->state != SC_READY || c->m != NULL || c->conn == NULL ||
        m == NULL || done == NULL)
        return -1;
    c->m = m;
    c->done = done;
    c->done_arg = arg;
    c->order = xcalloc(m->nrcpt + 1, sizeof(*c->order));
    c->norder = 0;
    c->accepted = 0;
    c->mail_ok = c->discard = false;
    smtpc_msg_clear(m);
    for (size_t i = 0; i < m->nrcpt; i++) {
        struct smtpc_rcpt *r = &m->rcpt[i];
        memset(&r->reply, 0, sizeof(r->reply));
        r->reply.text = "";
        if (r->addr == NULL || !smtpc_clean(r->addr, true) || !smtpc_clean(r->notify, false) ||
            !smtpc_clean(r->orcpt, false)) {
            struct smtpc_reply bad;
            smtpc_reply_make(&bad, 501, "5.1.3", "bad recipient address syntax");
            smtpc_answer_set(m, &r->reply, &bad);
        } else
            c->order[c->norder++] = i;
    }
    size = smtpc_msg_size(m);
    if (m->sender == NULL || !smtpc_clean(m->sender, true) || !smtpc_clean(m->envid, false) ||
        !smtpc_clean(m->ret, false)) {
        smtpc_tx_refuse(c, 501, "5.1.7", "bad sender address syntax");
    } else if (c->info.size_max > 0 && size > c->info.size_max) {
        snprintf(text, sizeof(text), "message size %llu exceeds the limit of %s (%llu)", size,
                 c->peer, c->info.size_max);
        smtpc_tx_refuse(c, 552, "5.3.4", text);
    } else if (m->smtputf8 && !c->info.smtputf8) {
        snprintf(text, sizeof(text), "SMTPUTF8 is required, but was not offered by %s", c->peer);
        smtpc_tx_refuse(c, 553, "5.6.7", text);
    } else if (m->requiretls && !(c->info.tls && c->info.requiretls)) {
        snprintf(text, sizeof(text), "REQUIRETLS is required, but was not offered by %s", c->peer);
        smtpc_tx_refuse(c, 550, "5.7.30", text);
    } else if (c->norder == 0) {
        smtpc_tx_refuse(c, 501, "5.1.3", "no valid recipient");
    } else {
        size_t first = c->need_rset ? SMTPC_STEP_RSET : SMTPC_STEP_MAIL;
        c->rstep = c->sstep = first;
        if (c->info.pipelining) {
            smtpc_tx_pipe(c);
        } else {
            smtpc_tx_write(c, c->sstep++);
        }
        smtpc_wait(c, SC_TX, c->timeout_ms);
    }
    return 0;
}

/* ---- the session ---- */

/* smtpc_ready_ok - the session is set up: ready with r. */
static void
smtpc_ready_ok(struct smtpc *c, const struct smtpc_reply *r)
{
    smtpc_ready_cb ready = c->ready;

    smtpc_wait(c, SC_READY, 0);
    c->ready = NULL;
    c->info.reply = *r;
    ready(c, c->ready_arg, &c->info);
}

/* smtpc_auth_start - AUTH when a user is given (only over TLS), else ready. */
static void
smtpc_auth_start(struct smtpc *c, const struct smtpc_reply *r)
{
    if (c->user == NULL) {
        smtpc_ready_ok(c, r);
        return;
    }
    c->info.stage = "auth";
    if (!c->info.tls) {
        smtpc_failf(c, true, NULL, 454, "4.7.0", "not sending credentials to %s without TLS",
                    c->peer);
    } else if (c->ext & SMTPC_X_PLAIN) {
        size_t ul = strlen(c->user), pl = strlen(c->pass), n = ul + pl + 2;
        size_t blen = (n + 2) / 3 * 4 + 1;
        char *msg = xmalloc(n), *b64 = xmalloc(blen);
        msg[0] = '\0';
        memcpy(msg + 1, c->user, ul);
        msg[ul + 1] = '\0';
        memcpy(msg + ul + 2, c->pass, pl);
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)msg, (int)n);
        smtpc_cmd(c, "AUTH PLAIN ********", "AUTH PLAIN %s", b64);
        explicit_bzero(msg, n);
        explicit_bzero(b64, blen);
        free(msg);
        free(b64);
        smtpc_wait(c, SC_AUTH, c->timeout_ms);
    } else if (c->ext & SMTPC_X_LOGIN) {
        smtpc_cmd(c, NULL, "AUTH LOGIN");
        smtpc_wait(c, SC_AUTH_USER, c->timeout_ms);
    } else {
        smtpc_failf(c, true, NULL, 454, "4.7.0", "%s offers no AUTH PLAIN or LOGIN", c->peer);
    }
}

/* smtpc_auth_login - a 334 of AUTH LOGIN: the user name or the password, base64. */
static void
smtpc_auth_login(struct smtpc *c, const char *secret, enum smtpc_state next)
{
    size_t n = strlen(secret), blen = (n + 2) / 3 * 4 + 1;
    char *b64 = xmalloc(blen);

    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)secret, (int)n);
    smtpc_cmd(c, "********", "%s", b64);
    explicit_bzero(b64, blen);
    free(b64);
    smtpc_wait(c, next, c->timeout_ms);
}

/* smtpc_ehlo - send EHLO (the extensions learnt before are forgotten). */
static void
smtpc_ehlo(struct smtpc *c)
{
    struct smtpc_info *in = &c->info;

    in->esmtp = in->pipelining = in->eightbitmime = in->smtputf8 = in->dsn = in->chunking = false;
    in->requiretls = in->xverp = in->xheader = false;
    in->size_max = 0;
    c->ext = 0;
    in->stage = "ehlo";
    smtpc_cmd(c, NULL, "EHLO %s", c->helo);
    smtpc_wait(c, SC_EHLO, c->timeout_ms);
}

/* smtpc_after_ehlo - STARTTLS by the policy, then AUTH. */
static void
smtpc_after_ehlo(struct smtpc *c, const struct smtpc_reply *r)
{
    c->hello = *r;
    if (!c->info.tls && c->policy != SMTPC_TLS_NONE) {
        if ((c->ext & SMTPC_X_STARTTLS) && c->tls != NULL) {
            c->info.stage = "starttls";
            smtpc_cmd(c, NULL, "STARTTLS");
            smtpc_wait(c, SC_STARTTLS, c->timeout_ms);
            return;
        }
        if (c->policy != SMTPC_TLS_MAY) {
            smtpc_failf(c, true, "starttls", 421, "4.7.4", "TLS is required, but %s",
                        c->tls == NULL ? "there is no TLS client context"
                                       : "the server does not offer STARTTLS");
            return;
        }
    }
    smtpc_auth_start(c, r);
}

/* smtpc_starttls - the reply to STARTTLS. */
static void
smtpc_starttls(struct smtpc *c, const struct smtpc_reply *r)
{
    if (r->code != 220) {
        if (c->policy == SMTPC_TLS_MAY)
            smtpc_auth_start(c, &c->hello); /* plaintext, as if STARTTLS were not offered */
        else
            smtpc_failf(c, true, NULL, 421, "4.7.4", "STARTTLS refused: %d %s", r->code, r->text);
        return;
    }
    if (net_starttls_client(c->conn, c->tls, c->tls_name) < 0) {
        smtpc_failf(c, false, NULL, 421, c->policy == SMTPC_TLS_MAY ? "4.7.5" : "4.7.4",
                    "TLS handshake failed: could not start");
        return;
    }
    if (c->dane != NULL && dane_ssl_setup(net_tls_ssl(c->conn), c->dane) < 0) {
        smtpc_failf(c, false, NULL, 421, "4.7.5",
                    "DANE: OpenSSL takes none of the TLSA records of %s", c->dane->base);
        return;
    }
    smtpc_wait(c, SC_HANDSHAKE, c->timeout_ms);
}

/* smtpc_tls_ready - the handshake is done: check the policy, start over with EHLO. */
static void
smtpc_tls_ready(struct smtpc *c)
{
    if (c->state != SC_HANDSHAKE)
        return;
    c->info.tls = true;
    c->info.tls_verified = net_tls_verified(c->conn);
    c->info.tls_auth = c->info.tls_verified ? "pkix" : "none";
    snprintf(c->info.tls_desc, sizeof(c->info.tls_desc), "%s", net_tls_desc(c->conn));
    if (c->policy == SMTPC_TLS_DANE) {
        const char *auth = dane_ssl_auth(net_tls_ssl(c->conn));
        c->info.tls_verified = auth != NULL;
        c->info.tls_auth = auth != NULL ? auth : "none";
        if (auth == NULL) {
            smtpc_failf(c, true, NULL, 421, "4.7.5",
                        "DANE: the certificate of %s matches no TLSA record of %s (%s)", c->peer,
                        c->dane->base,
                        X509_verify_cert_error_string(SSL_get_verify_result(net_tls_ssl(c->conn))));
            return;
        }
    }
    if (c->policy == SMTPC_TLS_VERIFY && !c->info.tls_verified) {
        smtpc_failf(c, true, NULL, 421, "4.7.5", "the certificate of %s does not verify for %s",
                    c->peer, c->tls_name != NULL ? c->tls_name : "(no name)");
        return;
    }
    smtpc_ehlo(c);
}

/* smtpc_reply - a complete reply, to whatever waits for it. */
static void
smtpc_reply(struct smtpc *c, const struct smtpc_reply *r)
{
    bool ok = r->code / 100 == 2;

    if (log_get_level() >= LOGLVL_DEBUG)
        log_debug("smtpc %s < %d %s %s", c->peer, r->code, r->status, r->text);
    if (r->code == 421 || c->state == SC_READY) { /* the server is leaving */
        smtpc_fail(c, false, r);
        return;
    }
    switch (c->state) {
    case SC_GREETING:
        if (ok)
            smtpc_ehlo(c);
        else
            smtpc_fail(c, true, r);
        break;
    case SC_EHLO:
    case SC_HELO:
        if (ok) {
            c->info.esmtp = c->state == SC_EHLO;
            smtpc_after_ehlo(c, r);
        } else if (c->state == SC_EHLO && r->code / 100 == 5) {
            smtpc_cmd(c, NULL, "HELO %s", c->helo);
            smtpc_wait(c, SC_HELO, c->timeout_ms);
        } else {
            smtpc_fail(c, true, r);
        }
        break;
    case SC_STARTTLS:
        smtpc_starttls(c, r);
        break;
    case SC_AUTH_USER:
    case SC_AUTH_PASS:
        if (r->code == 334)
            smtpc_auth_login(c, c->state == SC_AUTH_USER ? c->user : c->pass,
                             c->state == SC_AUTH_USER ? SC_AUTH_PASS : SC_AUTH);
        else
            smtpc_fail(c, true, r);
        break;
    case SC_AUTH:
        if (r->code == 235)
            smtpc_ready_ok(c, r);
        else
            smtpc_fail(c, r->code != 334, r); /* a 334 here: the exchange is out of step */
        break;
    case SC_TX:
        smtpc_tx_reply(c, r);
        break;
    case SC_BODY:
    case SC_DOT:
        smtpc_tx_final(c, r, !c->enc.done && !c->discard);
        break;
    default:
        break;
    }
}

/* smtpc_input - take the reply lines there are. */
static void
smtpc_input(struct smtpc *c)
{
    while (c->conn != NULL && c->state >= SC_GREETING && c->state != SC_HANDSHAKE &&
           c->state != SC_DEAD) {
        const char *text = NULL;
        char *line;
        size_t len;
        enum buf_line got = buf_getline(net_inbuf(c->conn), &c->lr, &line, &len, NULL);
        bool first = c->rx.nlines == 0;
        int rc;

        if (got == BUF_NONE)
            return;
        rc = got == BUF_TOOLONG ? -1 : smtpc_reply_line(&c->rx, line, len, &text);
        if (rc < 0) {
            char q[120];
            log_escape(q, sizeof(q), got == BUF_LINE ? line : "", got == BUF_LINE ? len : 0, 80);
            smtpc_failf(c, false, NULL, 421, "4.5.0", "malformed reply from %s: \"%s\"%s", c->peer,
                        q, got == BUF_TOOLONG ? " (line too long)" : "");
            return;
        }
        if (c->state == SC_EHLO && !first && c->rx.r.code == 250)
            smtpc_ehlo_line(&c->info, &c->ext, text);
        if (rc == 1) {
            struct smtpc_reply r = c->rx.r;
            smtpc_reply(c, &r);
        }
    }
}

/* smtpc_what - what the state waits for, for a timeout's text. */
static const char *
smtpc_what(const struct smtpc *c)
{
    switch (c->state) {
    case SC_GREETING:
        return "the greeting";
    case SC_EHLO:
        return "the reply to EHLO";
    case SC_HELO:
        return "the reply to HELO";
    case SC_STARTTLS:
        return "the reply to STARTTLS";
    case SC_HANDSHAKE:
        return "the TLS handshake";
    case SC_AUTH_USER:
    case SC_AUTH_PASS:
    case SC_AUTH:
        return "the reply to AUTH";
    case SC_TX:
        return c->rstep == SMTPC_STEP_RSET        ? "the reply to RSET"
               : c->rstep == SMTPC_STEP_MAIL      ? "the reply to MAIL"
               : c->rstep < smtpc_tx_data_step(c) ? "the reply to RCPT"
                                                  : "the reply to DATA";
    case SC_BODY:
        return "the server to take the message";
    default:
        return "the reply to the end of the message";
    }
}

/* smtpc_lost - the connection failed or was closed by the server. */
static void
smtpc_lost(struct smtpc *c, const char *why)
{
    if (c->state == SC_DEAD || c->state == SC_READY) {
        c->state = SC_DEAD; /* idle: the next smtpc_send refuses */
        if (c->conn != NULL)
            net_abort(c->conn);
        return;
    }
    if (c->state == SC_CONNECT)
        smtpc_failf(c, false, NULL, 421, "4.4.1", "connect to %s: %s", c->peer, why);
    else if (c->state == SC_HANDSHAKE)
        smtpc_failf(c, false, NULL, 421, c->policy == SMTPC_TLS_MAY ? "4.7.5" : "4.7.4", "%s", why);
    else
        smtpc_failf(c, false, NULL, 421, "4.4.2",
                    "lost connection with %s while waiting for %s: %s", c->peer, smtpc_what(c),
                    why);
}

/* smtpc_event - the connection's events. */
static void
smtpc_event(struct net_conn *nc, enum net_event ev, void *arg)
{
    struct smtpc *c = arg;

    switch (ev) {
    case NET_EV_CONNECTED:
        c->info.stage = "greeting";
        smtpc_wait(c, SC_GREETING, c->timeout_ms);
        break;
    case NET_EV_DATA:
        smtpc_input(c);
        break;
    case NET_EV_DRAIN:
        if (c->state == SC_BODY)
            smtpc_body_pump(c);
        break;
    case NET_EV_TIMEOUT:
        if (c->state != SC_READY && c->state != SC_DEAD)
            smtpc_failf(c, false, NULL, 421, "4.4.2", "timeout with %s waiting for %s", c->peer,
                        smtpc_what(c));
        break;
    case NET_EV_TLS_READY:
        smtpc_tls_ready(c);
        break;
    case NET_EV_ERROR:
        smtpc_lost(c, net_error(nc));
        break;
    case NET_EV_EOF:
        smtpc_lost(c, "connection closed by the server");
        break;
    case NET_EV_CLOSED:
        c->conn = NULL;
        smtpc_lost(c, "connection closed");
        break;
    }
}

/* smtpc_orphan - a closed smtpc's connection: its last events go nowhere. */
static void
smtpc_orphan(struct net_conn *nc, enum net_event ev, void *arg)
{
}

/* smtpc_free_cb - the timer closed: the last of the smtpc. */
static void
smtpc_free_cb(uv_handle_t *h)
{
    struct smtpc *c = h->data;

    free(c->helo);
    free(c->tls_name);
    free(c->user);
    if (c->pass != NULL) {
        explicit_bzero(c->pass, strlen(c->pass));
        free(c->pass);
    }
    SSL_CTX_free(c->tls);
    dane_free(&c->dane);
    free(c->order);
    free(c->chunk);
    free(c);
}

/* smtpc_open - see smtpc.h. */
struct smtpc *
smtpc_open(struct net_server *net, const char *ip, int port, const struct smtpc_opts *o,
           smtpc_ready_cb ready, void *arg, char *err, size_t errlen)
{
    struct smtpc *c;

    if (o == NULL || ready == NULL || o->helo == NULL || o->helo[0] == '\0' ||
        !smtpc_clean(o->helo, false) || (o->auth_user != NULL && o->auth_pass == NULL)) {
        snprintf(err, errlen, "smtpc: invalid options");
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->conn = net_connect(net, ip, port, NULL, o->timeout_ms, smtpc_event, c, err, errlen);
    if (c->conn == NULL) {
        free(c);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), strchr(ip, ':') != NULL ? "[%s]:%d" : "%s:%d",
             net_peer_ip(c->conn), net_peer_port(c->conn));
    uv_timer_init(net_loop(c->conn), &c->timer);
    c->timer.data = c;
    c->helo = xstrdup(o->helo);
    c->tls_name = o->tls_name != NULL ? xstrdup(o->tls_name) : NULL;
    c->user = o->auth_user != NULL ? xstrdup(o->auth_user) : NULL;
    c->pass = o->auth_user != NULL ? xstrdup(o->auth_pass) : NULL;
    if (o->tls != NULL && SSL_CTX_up_ref(o->tls) == 1)
        c->tls = o->tls;
    c->policy = o->tls_policy;
    if (o->dane != NULL) {
        c->dane = dane_dup(o->dane);
        c->policy = SMTPC_TLS_DANE;
    }
    c->info.tls_auth = "none";
    c->timeout_ms = o->timeout_ms;
    c->data_timeout_ms = o->data_timeout_ms > 0 ? o->data_timeout_ms : o->timeout_ms;
    c->ready = ready;
    c->ready_arg = arg;
    c->info.stage = "connect";
    c->state = SC_CONNECT;
    linereader_init(&c->lr, SMTPC_REPLY_LINE);
    return c;
}

/* smtpc_close - see smtpc.h. */
void
smtpc_close(struct smtpc *c)
{
    if (c == NULL || c->closed)
        return;
    c->closed = true;
    c->ready = NULL;
    if (c->m != NULL) /* no done: nobody reads its recipients' answers */
        smtpc_msg_clear(c->m);
    c->m = NULL;
    if (c->conn != NULL) {
        net_set_cb(c->conn, smtpc_orphan, NULL);
        if (c->state == SC_READY) {
            smtpc_cmd(c, NULL, "QUIT");
            net_close(c->conn);
        } else if (c->state != SC_DEAD) {
            net_abort(c->conn);
        }
        c->conn = NULL;
    }
    c->state = SC_DEAD;
    uv_close((uv_handle_t *)&c->timer, smtpc_free_cb);
}

/* smtpc_peer - see smtpc.h. */
const char *
smtpc_peer(const struct smtpc *c)
{
    return c->peer;
}
