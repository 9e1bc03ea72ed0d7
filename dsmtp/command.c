/*
 * command - SMTP commands: the table, check and proceed steps, and the end of DATA.
 * See command.h. Reply codes follow RFC 5321 4.2-4.3; enhanced codes RFC 3463.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bans.h"
#include "bombs.h"
#include "chunk.h"
#include "command.h"
#include "deliver.h"
#include "dkim_sign.h"
#include "extlookup.h"
#include "fromip.h"
#include "lists.h"
#include "log.h"
#include "milter.h"
#include "ostats.h"
#include "queue.h"
#include "rdns.h"
#include "recentpop.h"
#include "space.h"
#include "spf.h"
#include "logq.h"
#include "rbl.h"
#include "smtp_auth.h"
#include "spill.h"
#include "txdedup.h"
#include "xmem.h"

enum {
    CMD_NOARGS = 1, /* arguments are a syntax error */
    CMD_SECRET = 2, /* never log the arguments, wipe the line */
    CMD_JUNK = 4,   /* moves no mail: counted against junk_command_limit */
};

struct command {
    int flags;
    /* validate state and syntax; -1 when a reply was written */
    int (*check)(struct smtp_session *s, const char *args);
    /* do the work and reply (maybe later, after session_go_async) */
    void (*proceed)(struct smtp_session *s, const char *args);
};

/* command_greeting - the banner. */
void
command_greeting(struct smtp_session *s)
{
    if (s->d->srv.stopping) {
        session_reply(s, 421, "4.3.2", "%s Service shutting down", s->d->srv.hostname);
        sess_close(&s->base, "shutdown");
        return;
    }
    if (bans_connect(s) || rbl_connect(s))
        return;
    command_banner(s);
}

/* command_banner_reply - the 220, unless a content filter refused the connection. */
static void
command_banner_reply(struct smtp_session *s)
{
    if (milter_refuse(s))
        return;
    session_reply(s, 220, NULL, "%s ESMTP dmail", s->d->srv.hostname);
}

/* command_banner_resume - the filters answered the connect stage. */
static void
command_banner_resume(struct smtp_session *s)
{
    command_banner_reply(s);
    sess_resume(&s->base);
}

/* command_banner - the filters' connect stage, then the 220 (after the checks of the
 * connect stage); true when the session waits for the filters. */
bool
command_banner(struct smtp_session *s)
{
    if (milter_connect(s, command_banner_resume)) {
        sess_go_async(&s->base);
        return true;
    }
    command_banner_reply(s);
    return false;
}

/* command_check_helo - the HELO/EHLO argument. */
static int
command_check_helo(struct smtp_session *s, const char *args)
{
    struct smtp_perr e;

    if (smtp_parse_helo(args, s->arg.helo, sizeof(s->arg.helo), &e) < 0) {
        session_reply(s, e.code, e.ecode, "%s", e.text);
        return -1;
    }
    return 0;
}

/* command_greet - what EHLO and HELO share: a new start. */
static void
command_greet(struct smtp_session *s)
{
    session_tx_reset(s);
    snprintf(s->helo, sizeof(s->helo), "%s", s->arg.helo);
    sess_enter_state(&s->base, SS_READY);
}

/* command_verp_allowed - the client may use XVERP (Postfix's smtpd_authorized_verp_clients):
 * its address is in verp_clients or forward_from_ip. */
static bool
command_verp_allowed(const struct smtp_session *s)
{
    return conf_ip_match(&s->base.cf->verp_clients, s->base.ip) ||
           conf_ip_match(&s->base.cf->forward_from_ip, s->base.ip);
}

/* command_ehlo_reply - EHLO: the extensions (AUTH not for a POP-before-SMTP client under
 * hide_auth recentpop). */
static void
command_ehlo_reply(struct smtp_session *s)
{
    bool tls = net_is_tls(s->base.conn);
    bool auth = smtp_auth_offered(s) && s->auth_user == NULL &&
                !(recentpop_hide_asked(s) && recentpop_allowed(s));

    command_greet(s);
    s->esmtp = false; /* no enhanced code on the EHLO answer itself (RFC 2034) */
    session_reply(s, 250, NULL,
                  "%s Hello %s [%s]\nPIPELINING\nSIZE %llu\n8BITMIME\nENHANCEDSTATUSCODES\n"
                  "SMTPUTF8\nCHUNKING\nDSN%s%s%s%s%s",
                  s->d->srv.hostname, s->helo, s->base.ip, s->base.cf->max_msg_size,
                  s->d->srv.tls != NULL && !tls ? "\nSTARTTLS" : "",
                  tls ? "\nREQUIRETLS" : "", /* RFC 8689 4.1: only over TLS */
                  auth ? "\nAUTH PLAIN LOGIN" : "",
                  command_verp_allowed(s) ? "\nXVERP" : "", /* as Postfix: to those allowed */
                  command_verp_allowed(s) ? "\nXHEADER" : "");
    s->esmtp = true;
}

/* command_ehlo_filtered - the filters answered EHLO. */
static void
command_ehlo_filtered(struct smtp_session *s)
{
    if (!milter_refuse(s))
        command_ehlo_reply(s);
}

/* command_ehlo_milter_done - the filters' answer came later. */
static void
command_ehlo_milter_done(struct smtp_session *s)
{
    command_ehlo_filtered(s);
    sess_resume(&s->base);
}

/* command_ehlo_resume - the POP-before-SMTP answer EHLO waited for came. */
static void
command_ehlo_resume(struct smtp_session *s)
{
    if (milter_helo(s, command_ehlo_milter_done))
        return;
    command_ehlo_filtered(s);
    sess_resume(&s->base);
}

/* command_ehlo - EHLO, once it is known whether AUTH is hidden and the filters let it. */
static void
command_ehlo(struct smtp_session *s, const char *args)
{
    milter_abort(s); /* a transaction in progress ends */
    if ((recentpop_hide_asked(s) && recentpop_wait(s, command_ehlo_resume)) ||
        milter_helo(s, command_ehlo_milter_done)) {
        sess_go_async(&s->base);
        return;
    }
    command_ehlo_filtered(s);
}

/* command_helo_filtered - HELO: plain SMTP, no enhanced codes. */
static void
command_helo_filtered(struct smtp_session *s)
{
    if (milter_refuse(s))
        return;
    command_greet(s);
    s->esmtp = false;
    session_reply(s, 250, NULL, "%s", s->d->srv.hostname);
}

/* command_helo_milter_done - the filters' answer came later. */
static void
command_helo_milter_done(struct smtp_session *s)
{
    command_helo_filtered(s);
    sess_resume(&s->base);
}

/* command_helo - HELO, once the filters let it. */
static void
command_helo(struct smtp_session *s, const char *args)
{
    milter_abort(s);
    if (milter_helo(s, command_helo_milter_done)) {
        sess_go_async(&s->base);
        return;
    }
    command_helo_filtered(s);
}

/* command_check_verp - MAIL ... XVERP[=XY]: from a client allowed to, with a sender, and
 * delimiters of verp_delimiter_filter (verp_delimiters when none are given). */
static int
command_check_verp(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    struct smtp_mail *m = &s->arg.mail;

    if (!command_verp_allowed(s)) {
        session_reply(s, 550, "5.7.1", "Error: XVERP command not authorized");
        return -1;
    }
    if (addr_is_null(&m->from)) {
        session_reply(s, 501, "5.5.4", "Error: XVERP needs a sender, not <>");
        return -1;
    }
    if (m->verp[0] == '\0')
        snprintf(m->verp, sizeof(m->verp), "%s", cf->verp_delimiters);
    if (!conf_verp_delims_ok(cf, m->verp)) {
        session_reply(s, 501, "5.5.4", "Error: XVERP delimiters must be two of \"%s\"",
                      cf->verp_delimiter_filter);
        return -1;
    }
    return 0;
}

/* command_check_mail - MAIL is allowed now, and its syntax. */
static int
command_check_mail(struct smtp_session *s, const char *args)
{
    struct smtp_perr e;

    if (s->base.state == SS_CONNECTED) {
        session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return -1;
    }
    if (s->base.state == SS_BDAT) {
        session_reply(s, 503, "5.5.1", "Error: MAIL after BDAT");
        return -1;
    }
    if (s->base.state != SS_READY) {
        session_reply(s, 503, "5.5.1", "Error: nested MAIL command");
        return -1;
    }
    if (s->base.port == SMTPD_PORT_SUBMISSION && s->auth_user == NULL) {
        session_reply(s, 530, "5.7.0", "Authentication required");
        return -1;
    }
    if (smtp_parse_mail(args, s->esmtp, &s->arg.mail, &e) < 0) {
        session_reply(s, e.code, e.ecode, "%s", e.text);
        return -1;
    }
    if (s->arg.mail.size_set && s->arg.mail.size > s->base.cf->max_msg_size) {
        session_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
        return -1;
    }
    if (!s->arg.mail.smtputf8 && smtp_parse_is_8bit(s->arg.mail.from.local)) {
        session_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
        return -1;
    }
    if (s->arg.mail.requiretls && !net_is_tls(s->base.conn)) {
        session_reply(s, 530, "5.7.10", "REQUIRETLS needs a TLS session (STARTTLS first)");
        return -1;
    }
    return s->arg.mail.xverp ? command_check_verp(s) : 0;
}

/* command_mail_begin - the filters let MAIL go: start the transaction. */
static void
command_mail_begin(struct smtp_session *s)
{
    char esc[600];
    struct smtp_tx *tx = &s->tx;

    if (milter_refuse(s))
        return;
    tx->from = s->arg.mail.from;
    tx->params = s->arg.mail;
    addr_format(&tx->from, tx->sender, sizeof(tx->sender));
    log_escape(esc, sizeof(esc), tx->sender, strlen(tx->sender), 300);
    log_sess(LOGLVL_INFO, s->base.sid, "mail from=<%s> size=%llu%s%s%s%s%s%s%s", esc,
             tx->params.size, tx->params.ret != DSN_RET_UNSET ? " ret=" : "",
             tx->params.ret != DSN_RET_UNSET ? dsnparam_ret_name(tx->params.ret, false) : "",
             tx->params.envid[0] ? " envid=" : "", tx->params.envid,
             tx->params.requiretls ? " requiretls" : "", tx->params.xverp ? " xverp=" : "",
             tx->params.xverp ? tx->params.verp : "");
    sess_enter_state(&s->base, SS_MAIL);
    session_reply(s, 250, "2.1.0", "Ok");
}

/* command_mail_milter_done - the filters answered MAIL later. */
static void
command_mail_milter_done(struct smtp_session *s)
{
    command_mail_begin(s);
    sess_resume(&s->base);
}

/* command_mail_accept - the bans and limits of MAIL, then the filters; true when the
 * session waits for them. */
static bool
command_mail_accept(struct smtp_session *s)
{
    char sender[sizeof(s->tx.sender)];

    addr_format(&s->arg.mail.from, sender, sizeof(sender));
    if (bans_mail(s, sender) || fromip_mail(s))
        return false;
    if (space_low(&s->d->srv)) {
        log_sess(LOGLVL_INFO, s->base.sid, "mail result=refused reason=min_space");
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
        return false;
    }
    session_tx_reset(s); /* before the filters see MAIL: nothing of an older one stays */
    if (milter_mail(s, command_mail_milter_done))
        return true;
    command_mail_begin(s);
    return false;
}

static void command_mail_resume(struct smtp_session *s);

/* command_mail_step - the checks MAIL waits for, then the transaction or a refusal; true
 * while a check runs (command_mail_resume follows each one's end). POP-before-SMTP comes
 * first (it exempts from the others); the reverse DNS (started at connect) and SPF then
 * run side by side, so MAIL waits at most dns_timeout for both. */
static bool
command_mail_step(struct smtp_session *s)
{
    bool spf_running, rdns_running;

    if (recentpop_wait(s, command_mail_resume))
        return true;
    spf_running = spf_wait(s, command_mail_resume);
    rdns_running = rdns_wait(s, command_mail_resume);
    if (spf_running || rdns_running)
        return true;
    if (rdns_refuse(s) || spf_refuse(s))
        return false;
    return command_mail_accept(s);
}

/* command_mail_resume - a check MAIL waited for ended. */
static void
command_mail_resume(struct smtp_session *s)
{
    if (!command_mail_step(s))
        sess_resume(&s->base);
}

/* command_mail - MAIL, after the checks. */
static void
command_mail(struct smtp_session *s, const char *args)
{
    spf_free(s); /* the last transaction's */
    if (command_mail_step(s))
        sess_go_async(&s->base);
}

/* command_check_rcpt - RCPT is allowed now, and its syntax. */
static int
command_check_rcpt(struct smtp_session *s, const char *args)
{
    struct smtp_perr e;

    if (s->base.state == SS_BDAT) {
        session_reply(s, 503, "5.5.1", "Error: RCPT after BDAT");
        return -1;
    }
    if (s->base.state != SS_MAIL && s->base.state != SS_RCPT) {
        session_reply(s, 503, "5.5.1", "Error: need MAIL command");
        return -1;
    }
    if (smtp_parse_rcpt(args, s->esmtp, &s->arg.rcpt, &e) < 0) {
        session_reply(s, e.code, e.ecode, "%s", e.text);
        return -1;
    }
    if (!s->tx.params.smtputf8 && smtp_parse_is_8bit(s->arg.rcpt.to.local)) {
        session_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
        return -1;
    }
    if (s->arg.rcpt.xheader[0] != '\0' && !s->tx.params.xverp) { /* a copy per recipient */
        session_reply(s, 501, "5.5.4", "Error: XHEADER needs MAIL ... XVERP");
        return -1;
    }
    return 0;
}

/* command_rcpt_log - one line per recipient with its result (and where forwards, or a
 * role address's sysadmin of another domain, led). */
static void
command_rcpt_log(struct smtp_session *s, const char *addr, const struct deliver_route *r,
                 const char *result)
{
    char esc[600], fwd[1200], fesc[1300];
    size_t o = 0;

    log_escape(esc, sizeof(esc), addr, strlen(addr), 300);
    if (r == NULL || (r->fwd == ROUTE_NONE && (r->verdict != DV_OK || r->n != 1 ||
                                               strcasecmp(r->dest[0].addr, addr) == 0))) {
        log_sess(LOGLVL_INFO, s->base.sid, "rcpt to=<%s> result=%s", esc, result);
        return;
    }
    fwd[0] = '\0';
    if (r->verdict == DV_OK) {
        for (size_t i = 0; i < r->n && o < sizeof(fwd); i++) {
            int n = snprintf(fwd + o, sizeof(fwd) - o, "%s<%s>", i ? "," : "",
                             r->dest[i].lda ? r->dest[i].lda : r->dest[i].addr);
            o += n > 0 ? (size_t)n : 0;
        }
    } else {
        snprintf(fwd, sizeof(fwd), "%s", r->why);
    }
    log_escape(fesc, sizeof(fesc), fwd, strlen(fwd), 1000);
    log_sess(LOGLVL_INFO, s->base.sid, "rcpt to=<%s> %s=%s result=%s", esc,
             r->verdict == DV_OK ? "forward" : (r->verdict == DV_LOOP ? "chain" : "forward-to"),
             fesc, result);
}

/* A RCPT or VRFY whose resolution needs a Unix account lookup (authent_method unix_user,
 * an account not found before): deliver_route runs on the pool, the reply follows. */
struct command_lookup {
    uv_work_t work;
    struct smtp_session *s; /* NULL once the session is gone: the result is dropped */
    struct conf *cf;        /* own references: the session may be freed meanwhile */
    struct auth_db *db;
    uint64_t sid;
    enum smtp_verb verb; /* SMTP_V_RCPT or SMTP_V_VRFY */
    struct addr to;
    char addr[COMMAND_ADDR_MAX];
    struct deliver_route dr;
    enum deliver_verdict verdict;
};

static bool command_rcpt_finish(struct smtp_session *s, const char *addr, enum deliver_verdict v,
                                struct deliver_route *dr);
static void command_vrfy_finish(struct smtp_session *s, const char *addr, enum deliver_verdict v,
                                struct deliver_route *dr);

/* command_lookup_work - on the pool: the resolution, with lookups. */
static void
command_lookup_work(uv_work_t *w)
{
    struct command_lookup *l = w->data;

    l->verdict = deliver_route(l->cf, l->db, &l->to, &l->dr);
}

/* command_lookup_free - the job and its references (on the loop). */
static void
command_lookup_free(struct command_lookup *l)
{
    deliver_route_free(&l->dr);
    conf_unref(&l->cf);
    auth_db_unref(&l->db);
    free(l);
}

/* command_lookup_done - back on the loop: the waiting command replies (unless the session
 * went away), and the session goes on with pipelined input. */
static void
command_lookup_done(uv_work_t *w, int status)
{
    struct command_lookup *l = w->data;
    struct smtp_session *s = l->s;
    bool waits = false;

    if (s == NULL) {
        log_sess(LOGLVL_DEBUG, l->sid, "%s lookup=pool result=dropped reason=client-gone",
                 l->verb == SMTP_V_RCPT ? "rcpt" : "vrfy");
        command_lookup_free(l);
        return;
    }
    s->lookup = NULL;
    if (status != 0) /* cannot happen (no uv_cancel): resolve here */
        l->verdict = deliver_route(l->cf, l->db, &l->to, &l->dr);
    if (l->verb == SMTP_V_RCPT)
        waits = command_rcpt_finish(s, l->addr, l->verdict, &l->dr);
    else
        command_vrfy_finish(s, l->addr, l->verdict, &l->dr);
    command_lookup_free(l);
    if (!waits)
        sess_resume(&s->base);
}

/* command_ext_done - the helpers answered a RCPT's or VRFY's lookups (extlookup.h). */
static void
command_ext_done(struct smtp_session *s, enum smtp_verb verb, const char *addr,
                 enum deliver_verdict v, struct deliver_route *dr, const char *temp)
{
    bool waits = false;

    if (temp != NULL) {
        if (verb == SMTP_V_RCPT)
            command_rcpt_log(s, addr, NULL, "tempfail");
        session_reply(s, 451, "4.3.0", "<%s>: %s", addr, temp);
        deliver_route_free(dr);
    } else if (verb == SMTP_V_RCPT) {
        waits = command_rcpt_finish(s, addr, v, dr);
    } else {
        command_vrfy_finish(s, addr, v, dr);
    }
    if (!waits)
        sess_resume(&s->base);
}

/* command_resolve - deliver_route for the command now, or false when it went to the pool
 * (unix_user and an account not found before; the reply comes from the finish step). */
static bool
command_resolve(struct smtp_session *s, enum smtp_verb verb, const struct addr *to,
                const char *addr, struct deliver_route *dr, enum deliver_verdict *v)
{
    struct command_lookup *l;
    char esc[600];
    bool miss = false;

    if (auth_db_is_external(s->base.db))
        return extlookup_resolve(s, verb, to, addr, dr, v, command_ext_done);
    if (!auth_db_is_unix(s->base.db)) {
        *v = deliver_route(s->base.cf, s->base.db, to, dr);
        return true;
    }
    *v = deliver_route_cached(s->base.cf, s->base.db, to, dr, &miss);
    if (!miss)
        return true;
    deliver_route_free(dr);
    l = xcalloc(1, sizeof(*l));
    l->work.data = l;
    l->s = s;
    l->cf = conf_ref(s->base.cf);
    l->db = auth_db_ref(s->base.db);
    l->sid = s->base.sid;
    l->verb = verb;
    l->to = *to;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    if (log_get_level() >= LOGLVL_DEBUG) {
        log_escape(esc, sizeof(esc), addr, strlen(addr), 300);
        log_sess(LOGLVL_DEBUG, s->base.sid, "%s lookup=pool to=<%s>",
                 verb == SMTP_V_RCPT ? "rcpt" : "vrfy", esc);
    }
    if (uv_queue_work(s->d->srv.loop, &l->work, command_lookup_work, command_lookup_done) != 0) {
        l->verdict = deliver_route(l->cf, l->db, &l->to, dr); /* cannot happen */
        *v = l->verdict;
        l->s = NULL;
        command_lookup_free(l);
        return true;
    }
    s->lookup = l;
    sess_go_async(&s->base);
    return false;
}

/* command_lookup_cancel - the session is closing: a pending lookup's result is dropped. */
void
command_lookup_cancel(struct smtp_session *s)
{
    if (s->lookup != NULL) {
        s->lookup->s = NULL;
        s->lookup = NULL;
    }
    extlookup_cancel(s);
}

static bool command_is_dlist(const struct smtp_session *s);

/* command_rcpt_limit - the most RCPTs of one transaction: max_rcpts, except for dlist on
 * this host handing a post to its subscribers (one transaction per post, every member a
 * RCPT): COMMAND_DLIST_RCPTS_MAX, so a list larger than max_rcpts is not held back by 452s
 * and their error_delay. */
static size_t
command_rcpt_limit(const struct smtp_session *s)
{
    if (command_is_dlist(s))
        return COMMAND_DLIST_RCPTS_MAX;
    return (size_t)s->base.cf->max_rcpts;
}

/* command_rcpt - forwards, then each address local, postmaster, unknown or remote. */
static void
command_rcpt(struct smtp_session *s, const char *args)
{
    struct smtp_tx *tx = &s->tx;
    struct smtp_rcpt *r = &s->arg.rcpt;
    struct deliver_route dr;
    enum deliver_verdict v;
    char addr[COMMAND_ADDR_MAX];

    if (r->bare_postmaster)
        snprintf(r->to.domain, sizeof(r->to.domain), "%s", s->base.cf->main_domain);
    addr_format(&r->to, addr, sizeof(addr));
    if (bans_rcpt(s, addr) || rbl_rcpt(s, addr))
        return;
    if (tx->naccepted >= command_rcpt_limit(s)) {
        command_rcpt_log(s, addr, NULL, "too-many");
        session_reply(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    if (command_resolve(s, SMTP_V_RCPT, &r->to, addr, &dr, &v))
        command_rcpt_finish(s, addr, v, &dr);
}

/* command_is_dlist - a loopback client sending as LIST-bounces@dlist_domain of a list of
 * lists.dat: dlist handing its posts and replies to the subscribers (dlist.8). */
static bool
command_is_dlist(const struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    const char *ip = s->base.ip, *verp = NULL;
    char local[ADDR_LOCAL_MAX * 2 + 3];

    if (cf->lists == NULL || s->tx.sender[0] == '\0' ||
        (strncmp(ip, "127.", 4) != 0 && strcmp(ip, "::1") != 0))
        return false;
    addr_local_unquoted(&s->tx.from, false, local, sizeof(local));
    return lists_role(cf->lists, local, s->tx.from.domain, NULL, &verp) == LISTS_ROLE_BOUNCES &&
           verp != NULL && verp[0] == '\0';
}

/* command_may_relay - why the session may send to addr of another domain: an
 * authenticated client ("auth"), one of forward_from_ip / relay_allow ("ip"), dlist on
 * this host sending as a list's bounce address ("dlist"), a client
 * that logged in to dpop from its address within forward_user_window ("recentpop"), a
 * recipient domain of relay_to ("relay_to"), an envelope sender domain of forward_from
 * ("forward_from", forgeable); NULL: nobody else (DESIGN invariant 4). */
static const char *
command_may_relay(const struct smtp_session *s, const char *addr)
{
    const struct conf *cf = s->base.cf;
    const char *at = strrchr(addr, '@');

    if (s->auth_user != NULL)
        return "auth";
    if (conf_ip_match(&cf->forward_from_ip, s->base.ip))
        return "ip";
    if (command_is_dlist(s))
        return "dlist";
    if (recentpop_allowed(s))
        return "recentpop";
    if (at != NULL && conf_domain_in(&cf->relay_to, at + 1))
        return "relay_to";
    if (s->tx.sender[0] != '\0' && conf_domain_in(&cf->forward_from, s->tx.from.domain))
        return "forward_from";
    return NULL;
}

/* command_tx_add - the mailboxes of a recipient (route dr, its destinations taken over)
 * into the transaction. */
void
command_tx_add(struct smtp_session *s, const char *addr, struct deliver_route *dr, int notify,
               const char *orcpt, const char *xheader)
{
    struct smtp_tx *tx = &s->tx;

    if (tx->nrcpt + dr->n > tx->arcpt) {
        while (tx->nrcpt + dr->n > tx->arcpt)
            tx->arcpt = tx->arcpt ? tx->arcpt * 2 : 4;
        tx->rcpt = xrealloc(tx->rcpt, tx->arcpt * sizeof(*tx->rcpt));
    }
    for (size_t i = 0; i < dr->n; i++) {
        struct smtp_rcpt_entry *e = &tx->rcpt[tx->nrcpt];
        char x[DSNPARAM_ORCPT_MAX + 1];
        e->addr = dr->dest[i].addr; /* taken over */
        e->mailbox = dr->dest[i].mailbox;
        e->relay = dr->dest[i].relay;
        e->lda = dr->dest[i].lda; /* taken over */
        e->dotfwd = e->mailbox != NULL && strcasecmp(e->addr, addr) == 0;
        e->notify = notify;
        e->xheader = xheader != NULL && xheader[0] != '\0' ? xstrdup(xheader) : NULL;
        e->orcpt = NULL;
        if (orcpt != NULL && orcpt[0] != '\0')
            e->orcpt = xstrdup(orcpt);
        else if (strcasecmp(e->addr, addr) != 0 && /* a forward: the address as given */
                 dsnparam_xtext_encode(addr, x + 7, sizeof(x) - 7) == 0)
            e->orcpt = xasprintf("rfc822;%s", x + 7);
        dr->dest[i].addr = dr->dest[i].mailbox = dr->dest[i].lda = NULL;
        tx->nrcpt++;
    }
}

/* A recipient the filters are asked about (RCPT waits for them). */
struct command_rcpt_wait {
    char addr[COMMAND_ADDR_MAX];
    struct deliver_route dr;
    const char *why; /* command_may_relay's answer */
};

/* command_rcpt_add - log, reply, and add the recipient's mailboxes (dr taken over). */
static void
command_rcpt_add(struct smtp_session *s, const char *addr, struct deliver_route *dr,
                 const char *why)
{
    struct smtp_tx *tx = &s->tx;
    bool queued = false, relayed = false;
    char result[40];

    for (size_t i = 0; i < dr->n; i++) {
        relayed |= dr->dest[i].relay;
        queued |= dr->dest[i].mailbox == NULL && !dr->dest[i].relay && dr->dest[i].lda == NULL;
    }
    snprintf(result, sizeof(result), "%s%s%s",
             queued    ? "ok-postmaster-queued"
             : relayed ? "ok-relay"
                       : "ok",
             why ? " relay=" : "", why ? why : "");
    command_rcpt_log(s, addr, dr, result);
    command_tx_add(s, addr, dr, s->arg.rcpt.notify, s->arg.rcpt.orcpt, s->arg.rcpt.xheader);
    if (tx->naccepted++ == 0)
        tx->first = xstrdup(addr);
    deliver_route_free(dr);
    sess_enter_state(&s->base, SS_RCPT);
    session_reply(s, 250, "2.1.5", "Ok");
}

/* command_rcpt_filtered - the filters answered the RCPT that waited. */
static void
command_rcpt_filtered(struct smtp_session *s)
{
    struct command_rcpt_wait *w = s->rcpt_wait;

    s->rcpt_wait = NULL;
    if (milter_refuse(s)) {
        command_rcpt_log(s, w->addr, &w->dr, "refused-by-filter");
        deliver_route_free(&w->dr);
    } else {
        command_rcpt_add(s, w->addr, &w->dr, w->why);
    }
    free(w);
}

/* command_rcpt_milter_done - the filters' answer came later. */
static void
command_rcpt_milter_done(struct smtp_session *s)
{
    command_rcpt_filtered(s);
    sess_resume(&s->base);
}

/* command_rcpt_wait_free - the session is gone while RCPT waited for the filters. */
void
command_rcpt_wait_free(struct smtp_session *s)
{
    if (s->rcpt_wait != NULL) {
        deliver_route_free(&s->rcpt_wait->dr);
        free(s->rcpt_wait);
        s->rcpt_wait = NULL;
    }
}

/* command_rcpt_finish - the recipient resolved: refuse it, or ask the filters and add
 * it; true when the session waits for the filters. */
static bool
command_rcpt_finish(struct smtp_session *s, const char *addr, enum deliver_verdict v,
                    struct deliver_route *dr)
{
    const char *why = v == DV_REMOTE && dr->fwd == ROUTE_NONE ? command_may_relay(s, addr) : NULL;
    struct command_rcpt_wait *w;

    if (why != NULL) {
        deliver_route_relay(dr);
        v = DV_OK;
    }
    switch (v) {
    case DV_REMOTE:
        command_rcpt_log(s, addr, dr, "relay-denied");
        session_reply(s, 554, "5.7.1", "<%s>: Relay access denied", addr);
        deliver_route_free(dr);
        return false;
    case DV_UNKNOWN:
        command_rcpt_log(s, addr, dr, "unknown");
        session_reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown", addr);
        deliver_route_free(dr);
        return false;
    case DV_LOOP:
        command_rcpt_log(s, addr, dr, "forward-error");
        session_reply(s, 550, "5.4.6", "<%s>: Recipient address rejected: %s", addr,
                      route_status_text(dr->fwd));
        deliver_route_free(dr);
        return false;
    case DV_OK:
        break;
    }
    if (s->milter == NULL) {
        command_rcpt_add(s, addr, dr, why);
        return false;
    }
    w = xcalloc(1, sizeof(*w));
    snprintf(w->addr, sizeof(w->addr), "%s", addr);
    w->dr = *dr; /* taken over */
    memset(dr, 0, sizeof(*dr));
    w->why = why;
    s->rcpt_wait = w;
    if (milter_rcpt(s, addr, command_rcpt_milter_done)) {
        sess_go_async(&s->base);
        return true;
    }
    command_rcpt_filtered(s);
    return false;
}

/* command_check_data - DATA needs recipients, and no BDAT before it (RFC 3030 2: the
 * transaction stays as it is). */
static int
command_check_data(struct smtp_session *s, const char *args)
{
    if (s->base.state == SS_BDAT) {
        session_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
        return -1;
    }
    if (s->base.state == SS_MAIL) {
        session_reply(s, 554, "5.5.1", "Error: no valid recipients");
        return -1;
    }
    if (s->base.state != SS_RCPT) {
        session_reply(s, 503, "5.5.1", "Error: need RCPT command");
        return -1;
    }
    return 0;
}

/* command_authres - the Authentication-Results: field (RFC 8601) of the session's checks
 * (SPF, iprev) into buf, LF line ends; its length, 0 when no check ran. */
static size_t
command_authres(const struct smtp_session *s, char *buf, size_t len)
{
    char spf[1200], iprev[400];
    size_t a = spf_authres(s, spf, sizeof(spf)), b = rdns_authres(s, iprev, sizeof(iprev));
    int n;

    if (a == 0 && b == 0)
        return 0;
    n = snprintf(buf, len, "Authentication-Results: %s;\n\t%s%s%s\n", s->d->srv.hostname,
                 a ? spf : "", a && b ? ";\n\t" : "", b ? iprev : "");
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* command_data_begin - a message starts (DATA, or the first BDAT chunk): its id, the
 * Received: header and the scanner. */
void
command_data_begin(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;
    char proto[16], received[2048], prefix[4096];
    bool tls = net_is_tls(s->base.conn);
    size_t n;

    /* an RFC 5322 atom (no dots): it is the id of the Received: header, too */
    snprintf(tx->id, sizeof(tx->id), "%016" PRIx64 "-%u", s->base.sid, ++s->ntx);
    snprintf(proto, sizeof(proto), "%s%s%s", s->esmtp ? "ESMTP" : "SMTP",
             s->esmtp && tls ? "S" : "", s->esmtp && s->auth_user ? "A" : "");
    if (data_received_ptr(received, sizeof(received), s->helo, s->base.ip, rdns_name(s),
                          s->d->srv.hostname, proto, tx->id, tls ? net_tls_desc(s->base.conn) : "",
                          tx->naccepted == 1 ? tx->first : NULL, time(NULL)) < 0)
        data_received(received, sizeof(received), s->helo, s->base.ip, s->d->srv.hostname, proto,
                      tx->id, "", NULL, time(NULL));
    /* RFC 7208 9.1, RFC 8601 5: the check's fields above our Received: */
    n = command_authres(s, prefix, sizeof(prefix));
    n += spf_received(s, prefix + n, sizeof(prefix) - n);
    snprintf(prefix + n, sizeof(prefix) - n, "%s", received);
    s->d->budget.max = s->base.cf->data_memory_max; /* a reload applies to the next message */
    data_rx_init(&tx->rx, s->normalize, s->base.cf->max_msg_size, DATA_LINE_LIMIT, prefix,
                 &s->d->budget);
    tx->rx_active = true;
    dkim_sign_begin(s);
}

/* command_data_go - the filters let DATA go: 354, and the session reads the message. */
static void
command_data_go(struct smtp_session *s)
{
    if (milter_refuse(s)) {
        session_tx_reset(s);
        return;
    }
    sess_enter_state(&s->base, SS_DATA);
    net_set_timeout(s->base.conn, (uint64_t)s->base.cf->data_timeout * 1000);
    session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* command_data_milter_go - the filters answered DATA later. */
static void
command_data_milter_go(struct smtp_session *s)
{
    command_data_go(s);
    sess_resume(&s->base);
}

/* command_data - DATA: the message begins once the filters let it. */
static void
command_data(struct smtp_session *s, const char *args)
{
    command_data_begin(s);
    if (milter_data(s, command_data_milter_go)) {
        sess_go_async(&s->base);
        return;
    }
    command_data_go(s);
}

/* command_delivered - deliver.c answered for the message. */
static void
command_delivered(void *arg, const struct deliver_outcome *o)
{
    struct smtp_session *s = arg;
    struct smtp_tx *tx = &s->tx;

    s->batch = NULL;
    if (o->qfile_failed) {
        log_sess(LOGLVL_WARN, s->base.sid, "refused id=%s reason=queue-write-failed", o->id);
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
    } else if (o->delivered == 0 && o->queued == 0) {
        log_sess(LOGLVL_WARN, s->base.sid, "refused id=%s reason=delivery-failed", o->id);
        session_reply(s, 554, "5.2.0", "Error: delivery to the mailbox failed");
    } else {
        log_sess(LOGLVL_INFO, s->base.sid,
                 "delivered id=%s size=%llu rcpts=%zu mailboxes=%d queued=%d failed=%d", o->id,
                 tx->rx.wire, tx->naccepted, o->delivered, o->queued, o->failed);
        s->nmsgs++;
        s->base.errors = 0;
        s->njunk = 0;
        s->d->stats.msgs_in++;
        s->d->stats.bytes_in += tx->rx.wire;
        s->d->stats.rcpts_in += tx->naccepted;
        s->d->stats.delivered += (unsigned long long)o->delivered;
        s->d->stats.queued += (unsigned long long)o->queued;
        s->d->stats.failed += (unsigned long long)o->failed;
        ostats_message(s);
        /* an offered queue file is outbound delivery's already (outq_offer) */
        if (((o->queued > 0 && !o->offered) || o->bounced > 0) && s->d->queue != NULL)
            queue_kick(s->d->queue); /* queued local recipients and reports */
        session_reply(s, 250, "2.0.0", "Ok: queued as %s", o->id);
    }
    if (txdedup_applies(s))
        txdedup_end_tx(s, !o->qfile_failed && (o->delivered > 0 || o->queued > 0));
    session_tx_reset(s);
    sess_resume(&s->base);
}

/* command_data_refuse - the message (or a BDAT chunk of it) came but is not acceptable:
 * the reply and the log line; the caller ends the transaction. */
void
command_data_refuse(struct smtp_session *s, int errors)
{
    const char *why;

    if (errors & DATA_ERR_HOPS) {
        why = "too-many-hops";
        session_reply(s, 554, "5.4.6", "Error: too many hops (mail loop?)");
    } else if (errors & DATA_ERR_SIZE) {
        why = "too-big";
        session_reply(s, 552, "5.3.4", "Error: message size exceeds fixed maximum");
    } else if (errors & DATA_ERR_LONG) {
        why = "line-too-long";
        session_reply(s, 500, "5.5.2", "Error: line too long (over %d octets with CRLF)",
                      DATA_LINE_LIMIT + 2);
    } else if (errors & DATA_ERR_NUL) {
        why = "nul-byte";
        session_reply(s, 554, "5.6.0", "Error: NUL bytes are not allowed");
    } else if (errors & DATA_ERR_BARE) {
        why = "bare-newline";
        session_reply(s, 550, "5.5.2", "Error: bare <CR> or <LF> not allowed, use <CR><LF>");
    } else if (errors & DATA_ERR_DISK) {
        why = "spill-failed";
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
    } else { /* DATA_ERR_MEM: only when nothing permanent is wrong */
        why = "memory-budget";
        session_reply(s, 452, "4.3.1",
                      "Insufficient system storage: too many messages in transit, try later");
    }
    log_sess(LOGLVL_INFO, s->base.sid, "refused id=%s size=%llu reason=%s", s->tx.id, s->tx.rx.wire,
             why);
}

/* command_data_signed - the message as it goes out (DKIM-signed if it is to be):
 * delivered; the session waits (the answer resumes it). */
static void
command_data_signed(struct smtp_session *s, char *text, size_t len)
{
    struct smtp_tx *tx = &s->tx;
    struct deliver_batch *b;
    struct deliver_dsn dsn;
    char origin[200];

    snprintf(origin, sizeof(origin), "smtp %s sid=%016" PRIx64, s->base.ip, s->base.sid);
    dsn.ret = tx->params.ret;
    dsn.envid = tx->params.envid[0] ? tx->params.envid : NULL;
    dsn.requiretls = tx->params.requiretls;
    dsn.verp = tx->params.xverp ? tx->params.verp : NULL;
    b = deliver_new(s->base.cf, tx->id, tx->sender, origin, &dsn, text, len);
    for (size_t i = 0; i < tx->nrcpt; i++) {
        deliver_add(b, tx->rcpt[i].addr, tx->rcpt[i].mailbox,
                    tx->rcpt[i].mailbox || tx->rcpt[i].lda ? NULL
                    : tx->rcpt[i].relay                    ? DELIVER_NOT_LOCAL
                                                           : DELIVER_NO_ROLE_MAILBOX,
                    tx->rcpt[i].notify, tx->rcpt[i].orcpt);
        deliver_set_xheader(b, tx->rcpt[i].xheader);
        if (tx->rcpt[i].dotfwd)
            deliver_set_dotfwd(b);
        if (tx->rcpt[i].lda)
            deliver_set_lda(b, tx->rcpt[i].lda);
    }
    s->batch = b;
    deliver_offer_to(b, s->d->outq);
    sess_go_async(&s->base);
    deliver_run(s->d->srv.loop, b, &s->d->srv.jobs, command_delivered, s);
}

/* command_hold_bomb - the message as it goes out (DKIM-signed if it is to be) is held
 * as a suspected bomb: signed now, a release sends it as it would have gone. */
static void
command_hold_bomb(struct smtp_session *s, char *text, size_t len)
{
    bombs_hold(s, text, len, "bomb");
}

/* command_hold_quarantine - the same for a message a content filter quarantined. */
static void
command_hold_quarantine(struct smtp_session *s, char *text, size_t len)
{
    bombs_hold(s, text, len, "quarantine");
}

/* command_data_deliver - the message as it stays, signed if it is to be: held as a
 * suspected bomb, or delivered; the session waits for either (the answer resumes it). */
static void
command_data_deliver(struct smtp_session *s, char *text, size_t len)
{
    void (*next)(struct smtp_session *, char *, size_t) =
        bombs_check(s) ? command_hold_bomb : command_data_signed;

    if (!dkim_sign_session(s, text, len, next))
        next(s, text, len);
}

/* command_data_filtered - the filters answered the end of the message: refused,
 * discarded, quarantined (held as bombs are), or on to delivery; true when the session
 * waits (for the hold or the delivery). */
static bool
command_data_filtered(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;
    size_t len;
    char *text;

    switch (milter_eom_result(s, &text, &len)) {
    case MILTER_REFUSED:
        log_sess(LOGLVL_INFO, s->base.sid, "refused id=%s size=%llu reason=content-filter", tx->id,
                 tx->rx.wire);
        session_tx_reset(s);
        return false;
    case MILTER_DISCARD:
        log_sess(LOGLVL_INFO, s->base.sid,
                 "message id=%s size=%llu result=discarded reason=content-filter", tx->id,
                 tx->rx.wire);
        free(text);
        session_reply(s, 250, "2.0.0", "Ok: queued as %s", tx->id);
        session_tx_reset(s);
        return false;
    case MILTER_QUARANTINE:
        log_sess(LOGLVL_INFO, s->base.sid,
                 "message id=%s size=%llu result=quarantined reason=content-filter", tx->id,
                 tx->rx.wire);
        if (!dkim_sign_session(s, text, len, command_hold_quarantine))
            command_hold_quarantine(s, text, len);
        return true;
    case MILTER_DELIVER:
        break;
    }
    command_data_deliver(s, text, len);
    return true;
}

/* command_data_milter_done - the filters' answer came later. */
static void
command_data_milter_done(struct smtp_session *s)
{
    if (!command_data_filtered(s))
        sess_resume(&s->base);
}

/* command_data_dup - a resend of one of dlist's transactions already delivered (or being
 * delivered): answered, text freed, the transaction ended; true then (txdedup.h). A
 * resend with recipients the delivery did not have goes on to them alone (false). */
static bool
command_data_dup(struct smtp_session *s, char *text)
{
    struct smtp_tx *tx = &s->tx;
    enum txdedup_state st;
    size_t all = tx->nrcpt, fresh;

    if (!txdedup_applies(s) || (st = txdedup_begin(tx->params.envid, time(NULL))) == TXDEDUP_NEW)
        return false;
    if (st == TXDEDUP_DONE && (fresh = txdedup_keep_fresh(s)) > 0) {
        log_sess(LOGLVL_INFO, s->base.sid,
                 "message id=%s result=duplicate envid=%s delivered to the %zu of %zu recipients "
                 "it did not have",
                 tx->id, tx->params.envid, fresh, all);
        return false;
    }
    if (st == TXDEDUP_DONE) {
        log_sess(LOGLVL_INFO, s->base.sid,
                 "message id=%s size=%llu result=duplicate envid=%s (not delivered again)", tx->id,
                 tx->rx.wire, tx->params.envid);
        session_reply(s, 250, "2.0.0", "Ok: already accepted (ENVID %s), not delivered again",
                      tx->params.envid);
    } else
        session_reply(s, 451, "4.3.0",
                      "Try again later: the same transaction (ENVID %s) is being delivered",
                      tx->params.envid);
    free(text);
    session_tx_reset(s);
    return true;
}

/* command_data_message - the whole message: filter and deliver; true when the session
 * waits (for the filters, a hold or the delivery). */
static bool
command_data_message(struct smtp_session *s, char *text, size_t len)
{
    if (command_data_dup(s, text))
        return false;
    len = spf_strip_authres(text, len, s->tx.rx.prefix_len, s->d->srv.hostname); /* RFC 8601 */
    if (s->milter == NULL) {
        command_data_deliver(s, text, len);
        return true;
    }
    if (milter_eom(s, text, len, command_data_milter_done)) {
        sess_go_async(&s->base);
        return true;
    }
    return command_data_filtered(s);
}

/* command_data_loaded - the spilled part of the message is back (text NULL: it could not
 * be read). */
static void
command_data_loaded(struct smtp_session *s, char *text, size_t len)
{
    if (text == NULL) {
        log_sess(LOGLVL_WARN, s->base.sid, "refused id=%s size=%llu reason=spill-failed", s->tx.id,
                 s->tx.rx.wire);
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
        session_tx_reset(s);
        sess_resume(&s->base);
        return;
    }
    if (!command_data_message(s, text, len))
        sess_resume(&s->base);
}

/* command_data_end - the terminator (or the last BDAT chunk) arrived: refuse, or
 * filter and deliver (a large message's spilled part read back first). */
void
command_data_end(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;
    char *text;
    size_t len;

    net_set_timeout(s->base.conn, (uint64_t)s->base.cf->smtp_timeout * 1000);
    if (tx->rx.errors == 0 && data_hops(tx->rx.text, tx->rx.len) > s->base.cf->hopcount_limit)
        tx->rx.errors = DATA_ERR_HOPS; /* a mail loop: refused, not bounced */
    if (tx->rx.errors != 0) {
        command_data_refuse(s, tx->rx.errors);
        session_tx_reset(s);
        return;
    }
    text = data_rx_take(&tx->rx, &len);
    if (tx->rx.spilled > 0) {
        sess_go_async(&s->base);
        spill_load(s, text, len, command_data_loaded);
        return;
    }
    command_data_message(s, text, len);
}

/* command_data_input - message bytes. */
size_t
command_data_input(struct smtp_session *s, const char *p, size_t n)
{
    size_t room = data_rx_feed_room(&s->tx.rx), used;

    if (spill_maybe(s))
        return 0;
    used = data_rx_feed(&s->tx.rx, p, n < room ? n : room);
    if (memchr(p, '\n', used) != NULL) /* a message line is complete: its deadline restarts */
        sess_progress(&s->base);

    if (s->tx.rx.done)
        command_data_end(s);
    else
        spill_maybe(s); /* a large message: its middle to the spill file */
    return used;
}

/* command_rset - abort the transaction. */
static void
command_rset(struct smtp_session *s, const char *args)
{
    session_tx_reset(s);
    session_reply(s, 250, "2.0.0", "Ok");
}

/* command_noop - nothing. */
static void
command_noop(struct smtp_session *s, const char *args)
{
    session_reply(s, 250, "2.0.0", "Ok");
}

/* command_quit - goodbye. */
static void
command_quit(struct smtp_session *s, const char *args)
{
    session_reply(s, 221, "2.0.0", "Bye");
    sess_close(&s->base, "quit");
}

/* command_help - the commands we know. */
static void
command_help(struct smtp_session *s, const char *args)
{
    session_reply(s, 214, "2.0.0",
                  "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY%s%s\n"
                  "See RFC 5321; this is dmail's dsmtp",
                  s->d->srv.tls != NULL ? " STARTTLS" : "", " AUTH");
}

/* command_check_vrfy - VRFY needs an argument. */
static int
command_check_vrfy(struct smtp_session *s, const char *args)
{
    if (!smtp_parse_has_arg(args)) {
        session_reply(s, 501, "5.5.4", "Syntax: VRFY address");
        return -1;
    }
    return 0;
}

/* command_vrfy - 252 unless `vrfy true`, then a users-file lookup. */
static void
command_vrfy(struct smtp_session *s, const char *args)
{
    char buf[600], why[100];
    struct deliver_route dr;
    enum deliver_verdict v;
    struct addr a;
    size_t n;

    if (!s->base.cf->vrfy) {
        session_reply(s, 252, "2.0.0",
                      "Cannot VRFY user, but will accept message and attempt "
                      "delivery");
        return;
    }
    snprintf(buf, sizeof(buf), "%s", args);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    if (n >= 2 && buf[0] == '<' && buf[n - 1] == '>') {
        buf[n - 1] = '\0';
        memmove(buf, buf + 1, n - 1);
    }
    if (addr_parse_mailbox(buf, s->base.cf->main_domain, &a, why, sizeof(why)) < 0) {
        session_reply(s, 501, "5.1.3", "Bad address syntax");
        return;
    }
    addr_format(&a, buf, sizeof(buf));
    if (command_resolve(s, SMTP_V_VRFY, &a, buf, &dr, &v))
        command_vrfy_finish(s, buf, v, &dr);
}

/* command_vrfy_finish - the address resolved: the answer. */
static void
command_vrfy_finish(struct smtp_session *s, const char *addr, enum deliver_verdict v,
                    struct deliver_route *dr)
{
    switch (v) {
    case DV_OK:
        session_reply(s, 250, "2.1.5", "<%s>", addr);
        break;
    case DV_UNKNOWN:
    case DV_LOOP:
        session_reply(s, 550, "5.1.1", "<%s>: User unknown", addr);
        break;
    case DV_REMOTE:
        session_reply(s, 551, "5.1.6", "<%s>: User not local", addr);
        break;
    }
    deliver_route_free(dr);
}

/* command_check_starttls - TLS available and not active yet. */
static int
command_check_starttls(struct smtp_session *s, const char *args)
{
    if (s->d->srv.tls == NULL) {
        session_reply(s, 454, "4.7.0", "TLS not available");
        return -1;
    }
    if (net_is_tls(s->base.conn)) {
        session_reply(s, 503, "5.5.1", "Error: TLS already active");
        return -1;
    }
    return 0;
}

/* command_starttls - 220 on the wire, then the handshake (input behind it discarded). */
static void
command_starttls(struct smtp_session *s, const char *args)
{
    session_reply(s, 220, "2.0.0", "Ready to start TLS");
    sess_flush_now(&s->base);
    session_tx_reset(s);
    sess_enter_state(&s->base, SS_TLS_WAIT);
    if (net_starttls(s->base.conn, s->d->srv.tls) < 0) {
        log_sess(LOGLVL_WARN, s->base.sid, "starttls result=failed");
        sess_close(&s->base, "starttls-failed");
    }
}

/* command_unimplemented - a verb we know but do not offer. */
static void
command_unimplemented(struct smtp_session *s, const char *args)
{
    session_reply(s, 502, "5.5.1", "Error: command not implemented");
}

static const struct command command_table[SMTP_V_COUNT] = {
    [SMTP_V_EHLO] = {0, command_check_helo, command_ehlo},
    [SMTP_V_HELO] = {0, command_check_helo, command_helo},
    [SMTP_V_MAIL] = {0, command_check_mail, command_mail},
    [SMTP_V_RCPT] = {0, command_check_rcpt, command_rcpt},
    [SMTP_V_DATA] = {CMD_NOARGS, command_check_data, command_data},
    [SMTP_V_RSET] = {CMD_NOARGS | CMD_JUNK, NULL, command_rset},
    [SMTP_V_NOOP] = {CMD_JUNK, NULL, command_noop},
    [SMTP_V_QUIT] = {CMD_NOARGS, NULL, command_quit},
    [SMTP_V_HELP] = {CMD_JUNK, NULL, command_help},
    [SMTP_V_VRFY] = {CMD_JUNK, command_check_vrfy, command_vrfy},
    [SMTP_V_EXPN] = {0, NULL, command_unimplemented},
    [SMTP_V_STARTTLS] = {CMD_NOARGS, command_check_starttls, command_starttls},
    [SMTP_V_AUTH] = {CMD_SECRET, smtp_auth_check, smtp_auth_proceed},
    [SMTP_V_BDAT] = {0, chunk_check, chunk_proceed},
    [SMTP_V_ETRN] = {CMD_JUNK, NULL, command_unimplemented},
    [SMTP_V_TURN] = {0, NULL, command_unimplemented},
    [SMTP_V_SEND] = {0, NULL, command_unimplemented},
    [SMTP_V_SOML] = {0, NULL, command_unimplemented},
    [SMTP_V_SAML] = {0, NULL, command_unimplemented},
};

/* command_dispatch - one line: SASL response, or a command through the table. */
void
command_dispatch(struct smtp_session *s, char *line, size_t len, const struct buf_lineinfo *info)
{
    const struct command *cmd;
    struct smtp_cmdline cl;
    char esc[300];

    /* normalize takes a bare LF as a command's end; a bare CR inside a command is refused
     * in both modes (it would only reach the parser as junk in an argument) */
    if ((!info->crlf && !s->normalize) || info->bare_cr) {
        log_sess(LOGLVL_INFO, s->base.sid, "command-refused reason=bare-newline");
        if (s->base.state == SS_AUTH) {
            explicit_bzero(line, len);
            smtp_auth_cancel(s);
        }
        session_reply(s, 500, "5.5.2", "Error: bare <CR> or <LF> not allowed, use <CR><LF>");
        return;
    }
    if (s->base.state == SS_AUTH) {
        smtp_auth_input(s, line, len);
        return;
    }
    if (info->nul) {
        session_reply(s, 500, "5.5.2", "Error: NUL byte in command");
        return;
    }
    smtp_parse_line(line, &cl);
    cmd = &command_table[cl.verb];
    if (log_get_level() >= LOGLVL_DEBUG) {
        if (cmd->flags & CMD_SECRET) /* the verb only: the rest may be AUTH data */
            logq_text(esc, sizeof(esc), line, cl.verb_len, 20);
        else
            logq_text(esc, sizeof(esc), line, len, 100);
        log_sess(LOGLVL_DEBUG, s->base.sid, "command line=%s", esc);
    }
    if (cl.verb == SMTP_V_UNKNOWN) {
        session_reply(s, 500, "5.5.2", "Error: command not recognized");
        return;
    }
    if (cmd->flags & CMD_JUNK)
        s->junk = true;
    if ((cmd->flags & CMD_NOARGS) && smtp_parse_has_arg(cl.args))
        session_reply(s, 501, "5.5.4", "Syntax: %s", smtp_parse_verb_name(cl.verb));
    else if (cmd->check == NULL || cmd->check(s, cl.args) == 0)
        cmd->proceed(s, cl.args);
    if (cmd->flags & CMD_SECRET)
        explicit_bzero(line, len);
}
