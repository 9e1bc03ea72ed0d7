/*
 * milter - the milter client of an SMTP session. See milter.h; the packets are in
 * milter_pkt.h, what the parts share in milter_int.h, the changes a filter asks at the end
 * of the message in milter_change.c (made to the text by milter_edit.h).
 *
 * Each filter of a session has a struct milter_conn: its connection, what it negotiated,
 * whether it is skipped, and what it asked to change. A stage runs the filters in order
 * (milter_go): a filter not ready yet (connecting, negotiating) or waiting for its answer
 * stops the run, and its connection's events take it on. Each filter gets the stage's
 * packets one step at a time (milter_step): macros and the command, or at the end of the
 * message every header field, the end of the header, the body in chunks, then the end of
 * the message, whose answer may bring changes before the verdict.
 */
#include "milter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "deliver.h"
#include "dsnparam.h"
#include "log.h"
#include "milter_int.h"
#include "rdns.h"
#include "session.h"
#include "xmem.h"

static const char *const milter_stage_name[] = {"connect", "helo", "mail", "rcpt", "data", "eom"};

/* The commands of the stages before the message: the macro stage letter, the flag that
 * skips the command, the flag that says the filter does not answer it. */
static const struct {
    uint8_t cmd;
    char macro;
    uint32_t no, nr;
} milter_cmds[] = {
    [MS_CONNECT] = {SMFIC_CONNECT, 'C', SMFIP_NOCONNECT, SMFIP_NR_CONN},
    [MS_HELO] = {SMFIC_HELO, 'H', SMFIP_NOHELO, SMFIP_NR_HELO},
    [MS_MAIL] = {SMFIC_MAIL, 'M', SMFIP_NOMAIL, SMFIP_NR_MAIL},
    [MS_RCPT] = {SMFIC_RCPT, 'R', SMFIP_NORCPT, SMFIP_NR_RCPT},
    [MS_DATA] = {SMFIC_DATA, 'T', SMFIP_NODATA, SMFIP_NR_DATA},
};

/* milter_send - one packet: cmd and n octets of data. */
static void
milter_send(struct milter_conn *mc, uint8_t cmd, const void *data, size_t n)
{
    uint8_t head[5];

    milter_pkt_head(head, cmd, n);
    net_write(mc->conn, head, sizeof(head));
    if (n > 0)
        net_write(mc->conn, data, n);
}

/* milter_send_strs - a packet of NUL-terminated strings (NULLs skipped), after the
 * octet lead when it is not 0 (the stage letter of SMFIC_MACRO). */
static void
milter_send_strs(struct milter_conn *mc, uint8_t cmd, char lead, const char *const *v, size_t n)
{
    size_t total = 0, o = 0;
    char *d;

    for (size_t i = 0; i < n; i++)
        total += v[i] ? strlen(v[i]) + 1 : 0;
    d = xmalloc(total + 2);
    if (lead != '\0')
        d[o++] = lead;
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL) {
            size_t l = strlen(v[i]) + 1;
            memcpy(d + o, v[i], l);
            o += l;
        }
    milter_send(mc, cmd, d, o);
    free(d);
}

/* milter_macros - the macros of a stage, Postfix's names (milter_*_macros defaults). */
static void
milter_macros(struct milter_sess *ms, struct milter_conn *mc, char stage)
{
    struct smtp_session *s = ms->s;
    const char *v[32], *desc, *sp, *host = rdns_name(s);
    char port[16], lport[16], under[400], tlsver[32], cipher[96];
    char size[32], sender[COMMAND_ADDR_MAX];
    size_t n = 0;

#define MACRO(k, val) (v[n++] = (k), v[n++] = (val))
    switch (stage) {
    case 'C':
        snprintf(port, sizeof(port), "%d", s->base.conn ? net_peer_port(s->base.conn) : 0);
        snprintf(lport, sizeof(lport), "%d", s->base.conn ? net_local_port(s->base.conn) : 0);
        snprintf(under, sizeof(under), "%s [%s]", host ? host : "unknown", s->base.ip);
        MACRO("j", s->d->srv.hostname);
        MACRO("{daemon_name}", "dsmtp");
        MACRO("v", "dmail");
        MACRO("_", under);
        MACRO("{client_addr}", s->base.ip);
        MACRO("{client_port}", port);
        MACRO("{client_name}", host ? host : "unknown");
        MACRO("{daemon_addr}", s->base.conn ? net_local_ip(s->base.conn) : "");
        MACRO("{daemon_port}", lport);
        MACRO("{if_addr}", s->base.conn ? net_local_ip(s->base.conn) : "");
        break;
    case 'H':
        desc = s->base.conn && net_is_tls(s->base.conn) ? net_tls_desc(s->base.conn) : "";
        if (desc[0] != '\0') {
            sp = strchr(desc, ' ');
            snprintf(tlsver, sizeof(tlsver), "%.*s", sp ? (int)(sp - desc) : (int)strlen(desc),
                     desc);
            snprintf(cipher, sizeof(cipher), "%s",
                     sp && strncmp(sp, " cipher=", 8) == 0 ? sp + 8 : "");
            MACRO("{tls_version}", tlsver);
            MACRO("{cipher}", cipher);
        }
        break;
    case 'M':
        addr_format(&s->arg.mail.from, sender, sizeof(sender));
        if (s->auth_user != NULL) {
            MACRO("{auth_type}", s->auth_mech);
            MACRO("{auth_authen}", s->auth_user);
        }
        MACRO("{mail_mailer}", "smtp");
        MACRO("{mail_addr}", sender);
        break;
    case 'R':
        MACRO("{rcpt_addr}", ms->rcpt);
        break;
    default: /* 'T', 'N', 'E': DATA, end of header, end of message */
        MACRO("i", s->tx.id);
        if (stage == 'E') {
            snprintf(size, sizeof(size), "%zu", ms->len);
            MACRO("{msg_size}", size);
        }
        break;
    }
#undef MACRO
    milter_send_strs(mc, SMFIC_MACRO, stage, v, n);
}

/* milter_cmd_packet - the command of a stage before the message. */
static void
milter_cmd_packet(struct milter_sess *ms, struct milter_conn *mc)
{
    struct smtp_session *s = ms->s;
    char addr[COMMAND_ADDR_MAX + 2], size[40];
    uint8_t buf[1200];
    size_t n;

    switch (ms->stage) {
    case MS_CONNECT:
        n = milter_pkt_connect(buf, sizeof(buf), rdns_name(s) ? rdns_name(s) : "unknown",
                               strchr(s->base.ip, ':') ? '6' : '4',
                               (uint16_t)(s->base.conn ? net_peer_port(s->base.conn) : 0),
                               s->base.ip);
        if (n > 0)
            net_write(mc->conn, buf, n);
        break;
    case MS_HELO:
        milter_send_strs(mc, SMFIC_HELO, 0, (const char *[]){s->arg.helo}, 1);
        break;
    case MS_MAIL: { /* the ESMTP parameters as Postfix passes them */
        const struct smtp_mail *m = &s->arg.mail;
        char sender[COMMAND_ADDR_MAX], envid[DSNPARAM_ENVID_MAX + 8];
        addr_format(&m->from, sender, sizeof(sender));
        snprintf(addr, sizeof(addr), "<%s>", sender);
        snprintf(size, sizeof(size), "SIZE=%llu", m->size);
        snprintf(envid, sizeof(envid), "ENVID=%s", m->envid);
        milter_send_strs(mc, SMFIC_MAIL, 0,
                         (const char *[]){addr, m->size_set ? size : NULL,
                                          m->body == SMTP_BODY_8BITMIME ? "BODY=8BITMIME"
                                          : m->body == SMTP_BODY_7BIT   ? "BODY=7BIT"
                                                                        : NULL,
                                          m->smtputf8 ? "SMTPUTF8" : NULL,
                                          m->ret == DSN_RET_FULL   ? "RET=FULL"
                                          : m->ret == DSN_RET_HDRS ? "RET=HDRS"
                                                                   : NULL,
                                          m->envid[0] ? envid : NULL},
                         6);
        break;
    }
    case MS_RCPT: {
        const struct smtp_rcpt *r = &s->arg.rcpt;
        char notify[64] = "NOTIFY=", orcpt[DSNPARAM_ORCPT_MAX + 8];
        snprintf(addr, sizeof(addr), "<%s>", ms->rcpt);
        if (r->notify != 0)
            dsnparam_notify_format(r->notify, false, notify + 7, sizeof(notify) - 7);
        snprintf(orcpt, sizeof(orcpt), "ORCPT=%s", r->orcpt);
        milter_send_strs(
            mc, SMFIC_RCPT, 0,
            (const char *[]){addr, r->notify ? notify : NULL, r->orcpt[0] ? orcpt : NULL}, 3);
        break;
    }
    case MS_DATA:
    case MS_EOM:
        milter_send(mc, SMFIC_DATA, NULL, 0);
        break;
    }
}

/* milter_wait - the filter's answer is due within ms. */
static enum milter_stepr
milter_wait(struct milter_conn *mc, uint64_t ms, bool eom)
{
    mc->waiting = true;
    mc->eom = eom;
    mc->wait_ms = ms;
    net_set_timeout(mc->conn, ms);
    return STEP_WAIT;
}

/* milter_cmd_step - macros and the command of a stage before the message (also the DATA
 * of a BDAT transaction at the start of the message). */
static enum milter_stepr
milter_cmd_step(struct milter_sess *ms, struct milter_conn *mc, enum milter_stage st)
{
    milter_macros(ms, mc, milter_cmds[st].macro);
    if (st == MS_MAIL)
        mc->in_tx = true;
    if (mc->proto & milter_cmds[st].no)
        return STEP_NEXT;
    milter_cmd_packet(ms, mc);
    if (mc->proto & milter_cmds[st].nr)
        return STEP_NEXT;
    return milter_wait(mc, mc->command_ms, false);
}

/* milter_header_step - the next header field, or false when there is none. */
static bool
milter_header_step(struct milter_sess *ms, struct milter_conn *mc)
{
    struct milter_field f;
    size_t body, v, e, nl;
    char *d;

    if (!milter_field_next(ms->text, ms->len, ms->hoff, &f, &body)) {
        ms->body = body;
        return false;
    }
    ms->hoff = f.end;
    v = f.value;
    e = f.end > v && ms->text[f.end - 1] == '\n' ? f.end - 1 : f.end;
    if (!(mc->proto & SMFIP_HDR_LEADSPC))
        while (v < e && (ms->text[v] == ' ' || ms->text[v] == '\t'))
            v++;
    nl = f.name_len;
    d = xmalloc(nl + (e - v) + 2);
    memcpy(d, ms->text + f.start, nl);
    d[nl] = '\0';
    memcpy(d + nl + 1, ms->text + v, e - v);
    d[nl + 1 + (e - v)] = '\0';
    milter_send(mc, SMFIC_HEADER, d, nl + (e - v) + 2);
    free(d);
    return true;
}

/* milter_body_step - the next chunk of the body with CRLF line ends, or false at its end. */
static bool
milter_body_step(struct milter_sess *ms, struct milter_conn *mc)
{
    char *chunk;
    size_t o = 0, i = ms->boff;

    if (i >= ms->len)
        return false;
    chunk = xmalloc(MILTER_CHUNK);
    while (i < ms->len && o + 2 <= MILTER_CHUNK) {
        if (ms->text[i] == '\n')
            chunk[o++] = '\r';
        chunk[o++] = ms->text[i++];
    }
    ms->boff = i;
    milter_send(mc, SMFIC_BODY, chunk, o);
    free(chunk);
    return true;
}

/* milter_eom_step - the steps of the message: DATA if BDAT carried it, the header
 * fields, end of header, the body chunks, end of message. */
static enum milter_stepr
milter_eom_step(struct milter_sess *ms, struct milter_conn *mc)
{
    switch (ms->step) {
    case 0:
        ms->step++;
        ms->hoff = 0;
        ms->body = ms->len;
        if (!ms->tx_data)
            return milter_cmd_step(ms, mc, MS_DATA);
        return STEP_NEXT;
    case 1:
        if (mc->proto & SMFIP_NOHDRS) {
            struct milter_field f;
            while (milter_field_next(ms->text, ms->len, ms->hoff, &f, &ms->body))
                ms->hoff = f.end;
            ms->step++;
            return STEP_NEXT;
        }
        if (!milter_header_step(ms, mc)) {
            ms->step++;
            return STEP_NEXT;
        }
        return mc->proto & SMFIP_NR_HDR ? STEP_NEXT : milter_wait(mc, mc->command_ms, false);
    case 2:
        ms->step++;
        ms->boff = ms->body;
        milter_macros(ms, mc, 'N');
        if (mc->proto & SMFIP_NOEOH)
            return STEP_NEXT;
        milter_send(mc, SMFIC_EOH, NULL, 0);
        return mc->proto & SMFIP_NR_EOH ? STEP_NEXT : milter_wait(mc, mc->command_ms, false);
    case 3:
        if ((mc->proto & SMFIP_NOBODY) || mc->body_skip || !milter_body_step(ms, mc)) {
            ms->step++;
            return STEP_NEXT;
        }
        return mc->proto & SMFIP_NR_BODY ? STEP_NEXT : milter_wait(mc, mc->content_ms, false);
    case 4:
        ms->step++;
        milter_macros(ms, mc, 'E');
        milter_send(mc, SMFIC_BODYEOB, NULL, 0);
        return milter_wait(mc, mc->content_ms, true);
    default:
        return STEP_DONE;
    }
}

/* milter_step - the next step of the stage for filter mc. */
static enum milter_stepr
milter_step(struct milter_sess *ms, struct milter_conn *mc)
{
    if (ms->stage == MS_EOM)
        return milter_eom_step(ms, mc);
    if (ms->step++ > 0)
        return STEP_DONE;
    return milter_cmd_step(ms, mc, ms->stage);
}

/* milter_next - on to the next filter. */
void
milter_next(struct milter_sess *ms)
{
    ms->cur++;
    ms->step = 0;
}

/* milter_finish - the stage is decided: tell the session if it waited. */
static void
milter_finish(struct milter_sess *ms)
{
    ms->running = false;
    if (ms->async && ms->s != NULL) {
        ms->async = false;
        ms->done(ms->s);
    }
}

/* milter_set_verdict - the stage is refused by mc (or for it). */
static void
milter_set_verdict(struct milter_sess *ms, struct milter_conn *mc, enum milter_verdict v)
{
    ms->verdict = v;
    ms->by = mc->name;
}

/* milter_default - a dead filter at a stage: its default action. */
static void
milter_default(struct milter_sess *ms, struct milter_conn *mc)
{
    if (mc->action == MILTER_ACCEPT) {
        mc->skip = true;
        milter_next(ms);
        return;
    }
    milter_set_verdict(ms, mc, mc->action == MILTER_REJECT ? MV_REJECT : MV_TEMPFAIL);
}

/* milter_go - run the stage on as far as it goes without waiting. */
void
milter_go(struct milter_sess *ms)
{
    if (ms->in_go)
        return;
    ms->in_go = true;
    while (ms->running && !ms->looking) {
        struct milter_conn *mc;
        enum milter_stepr r;
        if (ms->verdict != MV_GO || ms->cur >= ms->n || (ms->discard && ms->stage >= MS_MAIL)) {
            ms->in_go = false;
            milter_finish(ms);
            return;
        }
        mc = &ms->m[ms->cur];
        if (mc->skip || (mc->skip_tx && ms->stage != MS_CONNECT && ms->stage != MS_HELO)) {
            milter_next(ms);
            continue;
        }
        if (mc->st == MC_DEAD) {
            milter_default(ms, mc);
            continue;
        }
        if (mc->st != MC_READY || mc->waiting)
            break;
        r = milter_step(ms, mc);
        if (r == STEP_WAIT)
            break;
        if (r == STEP_DONE) {
            if (ms->stage == MS_EOM) {
                mc->in_tx = false;
                if (milter_change_apply(ms, mc))
                    break; /* milter_change_lookup_done goes on */
            }
            milter_next(ms);
        }
    }
    ms->in_go = false;
}

/* milter_fail - mc failed: dropped for the session, its default action applies. */
void
milter_fail(struct milter_conn *mc, const char *why)
{
    static const char *const act[] = {"tempfail", "accept", "reject"};
    struct milter_sess *ms = mc->ms;

    if (mc->st == MC_DEAD)
        return;
    log_sess(LOGLVL_WARN, ms->s ? ms->s->base.sid : 0,
             "milter=%s stage=%s result=failed why=\"%s\" action=%s", mc->name,
             milter_stage_name[ms->stage], why, act[mc->action]);
    mc->st = MC_DEAD;
    mc->waiting = false;
    milter_change_clear(mc);
    if (mc->conn != NULL)
        net_abort(mc->conn);
    if (ms->running && ms->s != NULL)
        milter_go(ms);
}

/* milter_replycode - SMFIR_REPLYCODE: the code, an enhanced code of its class on the
 * first line, and the lines (CRLF apart, each after the first starting "ddd-" or "ddd ")
 * joined by LF for session_reply. */
static bool
milter_replycode(struct milter_sess *ms, const struct milter_pkt *p)
{
    const char *text, *t;
    size_t o = 0;
    int code;

    if (!milter_pkt_replycode(p, &code, &text))
        return false;
    ms->code = code;
    ms->ecode[0] = '\0';
    if (text[0] == (char)('0' + code / 100) && text[1] == '.') {
        size_t n = strcspn(text, " \r\n");
        if (n < sizeof(ms->ecode)) {
            snprintf(ms->ecode, sizeof(ms->ecode), "%.*s", (int)n, text);
            text += n + (text[n] == ' ');
        }
    }
    for (t = text; *t != '\0' && o + 2 < sizeof(ms->reply);) {
        if (t[0] == '\r' && t[1] == '\n') {
            t += 2;
            ms->reply[o++] = '\n';
            if (strlen(t) >= 4 && (t[3] == '-' || t[3] == ' ') && t[0] >= '2' && t[0] <= '5')
                t += 4;
            if (ms->ecode[0] != '\0' && strncmp(t, ms->ecode, strlen(ms->ecode)) == 0 &&
                t[strlen(ms->ecode)] == ' ')
                t += strlen(ms->ecode) + 1;
            continue;
        }
        ms->reply[o++] = (*t >= 0x20 && *t != 0x7f) ? *t : ' ';
        t++;
    }
    ms->reply[o] = '\0';
    return true;
}

/* milter_answer - a packet from mc while its answer is awaited. */
static void
milter_answer(struct milter_conn *mc, const struct milter_pkt *p)
{
    struct milter_sess *ms = mc->ms;
    bool in_stage = ms->running && ms->cur < ms->n && &ms->m[ms->cur] == mc;
    char why[80];

    if (mc->st == MC_NEGOTIATING) {
        uint32_t version;
        if (!milter_pkt_optneg_parse(p, &version, &mc->actions, &mc->proto)) {
            milter_fail(mc, "bad option negotiation");
            return;
        }
        mc->actions &= MILTER_ACTIONS;
        mc->proto &= MILTER_PROTOCOL;
        mc->st = MC_READY;
        mc->waiting = false;
        net_set_timeout(mc->conn, 0);
        milter_go(ms);
        return;
    }
    if (p->cmd == SMFIR_PROGRESS && mc->waiting) {
        net_set_timeout(mc->conn, mc->wait_ms);
        return;
    }
    if (!mc->waiting || !in_stage) {
        snprintf(why, sizeof(why), "unexpected packet '%c'", p->cmd);
        milter_fail(mc, why);
        return;
    }
    if (mc->eom &&
        (p->cmd == SMFIR_REPLBODY || p->cmd == SMFIR_ADDHEADER || p->cmd == SMFIR_INSHEADER ||
         p->cmd == SMFIR_CHGHEADER) &&
        milter_edits_bytes(&mc->ed) + p->len > (size_t)ms->s->base.cf->max_msg_size) {
        /* bounded like the message itself: a filter cannot make dsmtp hold more */
        milter_fail(mc, "changes larger than max_msg_size");
        return;
    }
    if (mc->eom && milter_change_take(mc, p))
        return;
    switch (p->cmd) {
    case SMFIR_CONTINUE:
        break;
    case SMFIR_SKIP:
        mc->body_skip = true;
        break;
    case SMFIR_ACCEPT:
        log_sess(LOGLVL_INFO, ms->s->base.sid, "milter=%s stage=%s result=accept", mc->name,
                 milter_stage_name[ms->stage]);
        if (ms->stage == MS_CONNECT || ms->stage == MS_HELO)
            mc->skip = true;
        else if (ms->stage != MS_EOM)
            mc->skip_tx = true;
        ms->step = 99; /* nothing more for this filter in this stage */
        break;
    case SMFIR_DISCARD:
        if (ms->stage >= MS_MAIL) {
            ms->discard = true;
            mc->skip_tx = true;
            ms->step = 99;
            log_sess(LOGLVL_INFO, ms->s->base.sid, "milter=%s stage=%s result=discard", mc->name,
                     milter_stage_name[ms->stage]);
        } else {
            milter_set_verdict(ms, mc, MV_REJECT);
        }
        break;
    case SMFIR_REJECT:
        milter_set_verdict(ms, mc, MV_REJECT);
        break;
    case SMFIR_TEMPFAIL:
        milter_set_verdict(ms, mc, MV_TEMPFAIL);
        break;
    case SMFIR_REPLYCODE:
        if (!milter_replycode(ms, p)) {
            milter_fail(mc, "malformed reply code");
            return;
        }
        milter_set_verdict(ms, mc, MV_REPLY);
        break;
    case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        milter_set_verdict(ms, mc, MV_CLOSE);
        break;
    default:
        snprintf(why, sizeof(why), "unexpected packet '%c'", p->cmd);
        milter_fail(mc, why);
        return;
    }
    mc->waiting = false;
    net_set_timeout(mc->conn, 0);
    if (mc->eom) {
        mc->eom = false;
        mc->in_tx = false;
        if (ms->verdict != MV_GO || p->cmd == SMFIR_DISCARD)
            milter_change_clear(mc);
    }
    if (ms->verdict != MV_GO && ms->stage == MS_EOM)
        mc->in_tx = false; /* the filter's transaction ended with its verdict */
    milter_go(ms);
}

/* milter_input - packets from mc. */
static void
milter_input(struct milter_conn *mc)
{
    struct buf *in = net_inbuf(mc->conn);

    while (mc->st != MC_DEAD && mc->conn != NULL) {
        struct milter_pkt p;
        long n = milter_pkt_take((const uint8_t *)buf_peek(in), in->len, MILTER_LEN_MAX, &p);
        if (n < 0) {
            milter_fail(mc, "bad packet length");
            return;
        }
        if (n == 0)
            return;
        milter_answer(mc, &p);
        if (mc->conn != NULL)
            buf_consume(in, (size_t)n);
    }
}

/* milter_sess_maybe_free - the session and every connection are gone. */
void
milter_sess_maybe_free(struct milter_sess *ms)
{
    if (ms->s != NULL || ms->live > 0 || ms->looking)
        return;
    for (size_t i = 0; i < ms->n; i++)
        milter_change_clear(&ms->m[i]);
    free(ms->text);
    free(ms->m);
    free(ms);
}

/* milter_event - a filter connection's events. */
static void
milter_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct milter_conn *mc = arg;
    struct milter_sess *ms = mc->ms;
    uint8_t opt[13];

    switch (ev) {
    case NET_EV_CONNECTED:
        net_set_inbuf_cap(c, MILTER_LEN_MAX + 8);
        milter_pkt_optneg(opt, MILTER_VERSION, MILTER_ACTIONS, MILTER_PROTOCOL);
        milter_send(mc, SMFIC_OPTNEG, opt, 12);
        mc->st = MC_NEGOTIATING;
        milter_wait(mc, mc->command_ms, false);
        break;
    case NET_EV_DATA:
        milter_input(mc);
        break;
    case NET_EV_TIMEOUT:
        if (mc->waiting)
            milter_fail(mc, "timed out");
        break;
    case NET_EV_ERROR:
        milter_fail(mc, net_error(c));
        break;
    case NET_EV_EOF:
        milter_fail(mc, "the filter closed the connection");
        break;
    case NET_EV_CLOSED:
        mc->conn = NULL;
        ms->live--;
        milter_fail(mc, "connection closed");
        milter_sess_maybe_free(ms);
        break;
    case NET_EV_DRAIN:
    case NET_EV_TLS_READY:
        break;
    }
}

/* milter_run - start a stage. */
static bool
milter_run(struct smtp_session *s, enum milter_stage stage, milter_done done)
{
    struct milter_sess *ms = s->milter;

    if (ms == NULL)
        return false;
    ms->stage = stage;
    ms->running = true;
    ms->async = false;
    ms->cur = 0;
    ms->step = 0;
    ms->verdict = MV_GO;
    ms->done = done;
    milter_go(ms);
    if (!ms->running)
        return false;
    ms->async = true;
    return true;
}

bool
milter_connect(struct smtp_session *s, milter_done done)
{
    const struct conf *cf = s->base.cf;
    struct milter_sess *ms;
    char err[200];

    if (cf->milters.n == 0)
        return false;
    ms = xcalloc(1, sizeof(*ms));
    ms->s = s;
    ms->n = cf->milters.n;
    ms->m = xcalloc(ms->n, sizeof(*ms->m));
    s->milter = ms;
    for (size_t i = 0; i < ms->n; i++) {
        struct milter_conn *mc = &ms->m[i];
        struct milter_opts o = cf->milter_opts[i]; /* parsed at load */
        const char *why;
        mc->ms = ms;
        snprintf(mc->name, sizeof(mc->name), "%s", cf->milters.v[i]);
        mc->action = o.default_action >= 0 ? o.default_action : cf->milter_default_action;
        mc->connect_ms =
            (uint64_t)(o.connect_timeout > 0 ? o.connect_timeout : cf->milter_connect_timeout) *
            1000;
        mc->command_ms =
            (uint64_t)(o.command_timeout > 0 ? o.command_timeout : cf->milter_command_timeout) *
            1000;
        mc->content_ms =
            (uint64_t)(o.content_timeout > 0 ? o.content_timeout : cf->milter_content_timeout) *
            1000;
        mc->st = MC_CONNECTING;
        if (!milter_addr_parse(mc->name, &mc->addr, &why)) { /* checked at load */
            milter_fail(mc, why);
            continue;
        }
        if (mc->addr.unix_sock)
            mc->conn =
                net_connect_unix(s->d->srv.net, mc->addr.where, milter_event, mc, err, sizeof(err));
        else
            mc->conn = net_connect(s->d->srv.net, mc->addr.where, mc->addr.port, NULL,
                                   mc->connect_ms, milter_event, mc, err, sizeof(err));
        if (mc->conn == NULL) {
            milter_fail(mc, err);
            continue;
        }
        ms->live++;
    }
    return milter_run(s, MS_CONNECT, done);
}

bool
milter_helo(struct smtp_session *s, milter_done done)
{
    return milter_run(s, MS_HELO, done);
}

bool
milter_mail(struct smtp_session *s, milter_done done)
{
    if (s->milter != NULL)
        s->milter->discard = false;
    return milter_run(s, MS_MAIL, done);
}

bool
milter_rcpt(struct smtp_session *s, const char *addr, milter_done done)
{
    if (s->milter != NULL)
        snprintf(s->milter->rcpt, sizeof(s->milter->rcpt), "%s", addr);
    return milter_run(s, MS_RCPT, done);
}

bool
milter_data(struct smtp_session *s, milter_done done)
{
    if (s->milter != NULL)
        s->milter->tx_data = true;
    return milter_run(s, MS_DATA, done);
}

bool
milter_eom(struct smtp_session *s, char *text, size_t len, milter_done done)
{
    struct milter_sess *ms = s->milter;

    if (ms == NULL) {
        free(text);
        return false;
    }
    free(ms->text);
    ms->text = text;
    ms->len = len;
    ms->quarantine = false;
    return milter_run(s, MS_EOM, done);
}

enum milter_fate
milter_eom_result(struct smtp_session *s, char **text, size_t *len)
{
    struct milter_sess *ms = s->milter;
    bool discard, quarantine;

    *text = ms->text;
    *len = ms->len;
    ms->text = NULL;
    discard = ms->discard;
    quarantine = ms->quarantine;
    ms->discard = ms->quarantine = ms->tx_data = false;
    if (milter_refuse(s)) {
        free(*text);
        *text = NULL;
        return MILTER_REFUSED;
    }
    if (discard || s->tx.nrcpt == 0)
        return MILTER_DISCARD;
    return quarantine ? MILTER_QUARANTINE : MILTER_DELIVER;
}

bool
milter_refuse(struct smtp_session *s)
{
    struct milter_sess *ms = s->milter;
    const char *ecode, *text;
    char esc[600] = "", line[1100];
    bool close;
    int code;

    if (ms == NULL || ms->verdict == MV_GO)
        return false;
    close = ms->stage == MS_CONNECT || ms->verdict == MV_CLOSE;
    switch (ms->verdict) {
    case MV_REJECT:
        code = ms->stage == MS_CONNECT ? 554 : 550;
        ecode = "5.7.1";
        text = "Error: rejected by a content filter";
        break;
    case MV_TEMPFAIL:
        code = ms->stage == MS_CONNECT ? 421 : 451;
        ecode = "4.7.1";
        text = "Error: content filter unavailable, try again later";
        break;
    case MV_REPLY:
        code = ms->code;
        ecode = ms->ecode[0] ? ms->ecode : (code / 100 == 4 ? "4.7.1" : "5.7.1");
        text = ms->reply;
        break;
    default:
        code = 421;
        ecode = "4.7.0";
        snprintf(line, sizeof(line), "%s Service unavailable, closing the connection",
                 s->d->srv.hostname);
        text = line;
        break;
    }
    if (!s->esmtp) /* no EHLO (yet): the enhanced code goes into the text */
        session_reply(s, code, NULL, "%s %s", ecode, text);
    else
        session_reply(s, code, ecode, "%s", text);
    if (ms->stage == MS_RCPT)
        log_escape(esc, sizeof(esc), ms->rcpt, strlen(ms->rcpt), 300);
    log_sess(LOGLVL_INFO, s->base.sid, "milter=%s stage=%s result=refused code=%d%s%s%s", ms->by,
             milter_stage_name[ms->stage], code, esc[0] ? " to=<" : "", esc, esc[0] ? ">" : "");
    ms->verdict = MV_GO;
    if (ms->stage == MS_MAIL)
        milter_abort(s);
    if (close)
        sess_close(&s->base, "milter");
    return true;
}

void
milter_abort(struct smtp_session *s)
{
    struct milter_sess *ms = s->milter;

    if (ms == NULL || ms->running)
        return;
    ms->discard = ms->tx_data = ms->quarantine = false;
    for (size_t i = 0; i < ms->n; i++) {
        struct milter_conn *mc = &ms->m[i];
        if (mc->in_tx && mc->st == MC_READY && !mc->waiting)
            milter_send(mc, SMFIC_ABORT, NULL, 0);
        mc->in_tx = mc->skip_tx = mc->body_skip = false;
        milter_change_clear(mc);
    }
}

void
milter_end(struct smtp_session *s)
{
    struct milter_sess *ms = s->milter;

    if (ms == NULL)
        return;
    s->milter = NULL;
    ms->s = NULL;
    ms->running = false;
    for (size_t i = 0; i < ms->n; i++) {
        struct milter_conn *mc = &ms->m[i];
        if (mc->conn == NULL)
            continue;
        if (mc->st == MC_READY && !mc->waiting) {
            milter_send(mc, SMFIC_QUIT, NULL, 0);
            net_close(mc->conn);
        } else {
            net_abort(mc->conn);
        }
        mc->st = MC_DEAD;
    }
    milter_sess_maybe_free(ms);
}
