/*
 * command - the command table and the simple commands. See command.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "log.h"
#include "mailbox.h"
#include "pop_auth.h"
#include "retr.h"
#include "space.h"

#define COMMAND_LIST_BATCH 256 /* LIST/UIDL lines written per turn */

/* Where a command may run. */
enum {
    CMD_AUTH = 1 << SS_AUTH,
    CMD_TRANS = 1 << SS_TRANS,
};

struct command_row {
    unsigned states;
    void (*fn)(struct pop_session *s, const struct pop3_cmd *c);
};

/* command_plaintext_ok - USER/PASS and AUTH PLAIN/LOGIN may be used on this connection. */
bool
command_plaintext_ok(const struct pop_session *s)
{
    return s->base.conn != NULL && (net_is_tls(s->base.conn) || s->base.cf->auth_plaintext);
}

/* command_greeting - the +OK greeting, with the APOP timestamp when APOP is on. */
void
command_greeting(struct pop_session *s)
{
    const struct conf *cf = s->base.cf;

    if (cf->user_ip_address.n > 0 && !conf_ip_match(&cf->user_ip_address, s->base.ip)) {
        log_sess(LOGLVL_INFO, s->base.sid, "refused ip=%s reason=user_ip_address", s->base.ip);
        session_err(s, false, NULL, "Your address may not use this POP3 server");
        sess_close(&s->base, "user_ip_address");
        return;
    }
    if (space_low(&s->d->srv)) {
        log_sess(LOGLVL_INFO, s->base.sid, "refused reason=min_space");
        session_err(s, false, "SYS/TEMP", "Not enough free disk space, try again later");
        sess_close(&s->base, "min_space");
        return;
    }
    if (cf->apop_enable) {
        unsigned r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (unsigned)s->base.sid;
        snprintf(s->apop_ts, sizeof s->apop_ts, "<%ld.%ld.%08x@%.60s>", (long)getpid(),
                 (long)time(NULL), r, s->d->srv.hostname);
        session_ok(s, "dmail POP3 server ready %s", s->apop_ts);
    } else {
        session_ok(s, "dmail POP3 server ready");
    }
}

/* command_maildrop - "N messages (M octets)" of the undeleted messages. */
static void
command_maildrop(struct pop_session *s, unsigned long *n, unsigned long long *octets)
{
    *n = 0;
    *octets = 0;
    for (size_t i = 0; i < dropview_count(s->view); i++) {
        if (s->del[i])
            continue;
        (*n)++;
        *octets += session_msg_size(s, i);
    }
}

/* command_stat - STAT: "+OK count octets". */
static void
command_stat(struct pop_session *s, const struct pop3_cmd *c)
{
    unsigned long n;
    unsigned long long octets;

    (void)c;
    command_maildrop(s, &n, &octets);
    session_ok(s, "%lu %llu", n, octets);
}

/* command_list_cont - the lines of LIST (cont_pos: next message) then ".". */
static bool
command_list_cont(struct pop_session *s)
{
    char line[64];
    size_t n = dropview_count(s->view), done = 0;

    for (; s->cont_pos < n && done < COMMAND_LIST_BATCH; s->cont_pos++, done++) {
        size_t i = s->cont_pos;
        if (s->del[i])
            continue;
        int k = snprintf(line, sizeof line, "%zu %llu\r\n", i + 1, session_msg_size(s, i));
        sess_write(&s->base, line, (size_t)k);
    }
    if (s->cont_pos < n)
        return false;
    sess_write(&s->base, ".\r\n", 3);
    return true;
}

/* command_uidl_cont - the lines of UIDL, then ".". */
static bool
command_uidl_cont(struct pop_session *s)
{
    char line[128];
    size_t n = dropview_count(s->view), done = 0;

    for (; s->cont_pos < n && done < COMMAND_LIST_BATCH; s->cont_pos++, done++) {
        size_t i = s->cont_pos;
        if (s->del[i])
            continue;
        int k = snprintf(line, sizeof line, "%zu %s\r\n", i + 1, dropview_uid(s->view, i));
        sess_write(&s->base, line, (size_t)k);
    }
    if (s->cont_pos < n)
        return false;
    sess_write(&s->base, ".\r\n", 3);
    return true;
}

/* command_list - LIST [n]. */
static void
command_list(struct pop_session *s, const struct pop3_cmd *c)
{
    unsigned long n;
    unsigned long long octets;

    if (c->has_num) {
        if (session_msg(s, c->num) != NULL)
            session_ok(s, "%lu %llu", c->num, session_msg_size(s, c->num - 1));
        return;
    }
    command_maildrop(s, &n, &octets);
    session_ok(s, "%lu messages (%llu octets)", n, octets);
    session_continue(s, command_list_cont);
}

/* command_uidl - UIDL [n]. */
static void
command_uidl(struct pop_session *s, const struct pop3_cmd *c)
{
    if (c->has_num) {
        if (session_msg(s, c->num) != NULL)
            session_ok(s, "%lu %s", c->num, dropview_uid(s->view, c->num - 1));
        return;
    }
    session_ok(s, "Unique-ID listing follows");
    session_continue(s, command_uidl_cont);
}

/* command_dele - DELE n: marked now, removed at QUIT. */
static void
command_dele(struct pop_session *s, const struct pop3_cmd *c)
{
    if (session_msg(s, c->num) == NULL)
        return;
    s->del[c->num - 1] = 1;
    s->ndel++;
    s->ndele++;
    session_ok(s, "Message %lu deleted", c->num);
}

/* command_noop - NOOP. */
static void
command_noop(struct pop_session *s, const struct pop3_cmd *c)
{
    (void)c;
    session_ok(s, "%s", "");
}

/* command_rset - RSET: undelete everything. */
static void
command_rset(struct pop_session *s, const struct pop3_cmd *c)
{
    unsigned long n;
    unsigned long long octets;

    (void)c;
    memset(s->del, 0, dropview_count(s->view) + 1);
    s->ndel = 0;
    command_maildrop(s, &n, &octets);
    session_ok(s, "maildrop has %lu messages (%llu octets)", n, octets);
}

/* command_quit - QUIT: sign off, or UPDATE first in TRANSACTION. */
static void
command_quit(struct pop_session *s, const struct pop3_cmd *c)
{
    (void)c;
    if (s->base.state == SS_TRANS) {
        mailbox_update(s);
        return;
    }
    session_ok(s, "dmail POP3 server signing off");
    sess_close(&s->base, "quit");
}

/* command_capa - CAPA (RFC 2449): what this connection may use now. */
static void
command_capa(struct pop_session *s, const struct pop3_cmd *c)
{
    char text[512];
    int n;

    (void)c;
    n = snprintf(text, sizeof text,
                 "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    if (s->base.state == SS_AUTH && command_plaintext_ok(s))
        n += snprintf(text + n, sizeof text - (size_t)n, "USER\r\nSASL PLAIN LOGIN\r\n");
    if (s->base.state == SS_AUTH && s->d->srv.tls != NULL && !net_is_tls(s->base.conn))
        n += snprintf(text + n, sizeof text - (size_t)n, "STLS\r\n");
    n += snprintf(text + n, sizeof text - (size_t)n, "IMPLEMENTATION dmail-%s\r\n.\r\n",
                  DMAIL_VERSION);
    session_ok(s, "Capability list follows");
    sess_write(&s->base, text, (size_t)n);
}

/* command_stls - STLS (RFC 2595): "+OK" on the wire, then the handshake; input that was
 * sent behind the command is discarded by net. */
static void
command_stls(struct pop_session *s, const struct pop3_cmd *c)
{
    (void)c;
    if (s->d->srv.tls == NULL) {
        session_err(s, true, NULL, "STLS not available");
        return;
    }
    if (net_is_tls(s->base.conn)) {
        session_err(s, true, NULL, "Already using TLS");
        return;
    }
    if (s->user[0] != '\0' || s->sasl != SASL_NONE) {
        session_err(s, true, NULL, "STLS not allowed after USER");
        return;
    }
    session_ok(s, "Begin TLS negotiation now");
    sess_send_reply(&s->base);
    net_uncork(s->base.conn);
    if (net_starttls(s->base.conn, s->d->srv.tls) < 0) {
        log_sess(LOGLVL_WARN, s->base.sid, "stls failed to start");
        sess_close(&s->base, "stls failed");
        return;
    }
    sess_enter_state(&s->base, SS_TLS_WAIT);
}

/* command_last - LAST was dropped from POP3 in RFC 1725. */
static void
command_last(struct pop_session *s, const struct pop3_cmd *c)
{
    (void)c;
    session_err(s, true, NULL, "LAST is not supported (RFC 1939)");
}

static const struct command_row command_table[POP3_V_COUNT] = {
    [POP3_V_USER] = {CMD_AUTH, pop_auth_user},
    [POP3_V_PASS] = {CMD_AUTH, pop_auth_pass},
    [POP3_V_APOP] = {CMD_AUTH, pop_auth_apop},
    [POP3_V_AUTH] = {CMD_AUTH, pop_auth_auth},
    [POP3_V_STLS] = {CMD_AUTH, command_stls},
    [POP3_V_CAPA] = {CMD_AUTH | CMD_TRANS, command_capa},
    [POP3_V_QUIT] = {CMD_AUTH | CMD_TRANS, command_quit},
    [POP3_V_NOOP] = {CMD_TRANS, command_noop},
    [POP3_V_STAT] = {CMD_TRANS, command_stat},
    [POP3_V_LIST] = {CMD_TRANS, command_list},
    [POP3_V_UIDL] = {CMD_TRANS, command_uidl},
    [POP3_V_RETR] = {CMD_TRANS, retr_retr},
    [POP3_V_TOP] = {CMD_TRANS, retr_top},
    [POP3_V_DELE] = {CMD_TRANS, command_dele},
    [POP3_V_RSET] = {CMD_TRANS, command_rset},
    [POP3_V_LAST] = {CMD_TRANS, command_last},
};

/* command_dispatch - parse one command line, check its state, run it. */
void
command_dispatch(struct pop_session *s, char *line, size_t len)
{
    const struct command_row *row;
    struct pop3_cmd c;

    if (pop3_parse(line, len, &c) != 0 && c.verb == POP3_V_UNKNOWN) {
        char esc[64];
        log_sess(LOGLVL_DEBUG, s->base.sid, "bad command=%s",
                 log_escape(esc, sizeof esc, line, len, 40));
        session_err(s, true, NULL, "%s", pop3_parse_errtext(c.err));
        return;
    }
    if (log_get_level() >= LOGLVL_DEBUG && c.verb != POP3_V_PASS && c.verb != POP3_V_AUTH) {
        char esc[64];
        log_sess(LOGLVL_DEBUG, s->base.sid, "command=%s",
                 log_escape(esc, sizeof esc, line, len, 40));
    }
    row = &command_table[c.verb];
    if (row->fn == NULL || !(row->states & (1u << s->base.state))) {
        session_err(s, true, NULL, "%s not valid in this state", pop3_parse_verb_name(c.verb));
        return;
    }
    if (c.err != POP3_PERR_NONE) {
        session_err(s, true, NULL, "%s: %s", pop3_parse_verb_name(c.verb),
                    pop3_parse_errtext(c.err));
        return;
    }
    row->fn(s, &c);
}
