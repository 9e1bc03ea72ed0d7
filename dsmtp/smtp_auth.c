/*
 * smtp_auth - SMTP AUTH PLAIN and LOGIN. See smtp_auth.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "extauth.h"
#include "log.h"
#include "penalty.h"
#include "smtp_auth.h"
#include "smtp_parse.h"
#include "vdomain.h"
#include "xmem.h"

#define SMTP_AUTH_BUF 9216 /* a 12,288-octet line of base64, decoded */

enum smtp_auth_step { SA_PLAIN, SA_LOGIN_USER, SA_LOGIN_PASS, SA_VERIFY };

struct smtp_auth_state {
    enum smtp_auth_step step;
    char mech[24];
    char user[256];
    char *pass; /* kept while the attempt waits out its penalty */
    size_t passlen;
    struct auth_req *req;
    struct extauth_req *xreq; /* authent_method external: the helper's check */
};

/* smtp_auth_offered - AUTH is advertised over TLS, or in the clear if allowed. */
bool
smtp_auth_offered(const struct smtp_session *s)
{
    return s->base.conn != NULL && (net_is_tls(s->base.conn) || s->base.cf->auth_plaintext);
}

/* smtp_auth_end - the exchange is over (reply already written). */
static void
smtp_auth_end(struct smtp_session *s)
{
    if (s->auth != NULL) {
        if (s->auth->pass != NULL) {
            explicit_bzero(s->auth->pass, s->auth->passlen);
            free(s->auth->pass);
        }
        explicit_bzero(s->auth, sizeof(*s->auth));
        free(s->auth);
        s->auth = NULL;
    }
    if (s->base.state == SS_AUTH)
        sess_enter_state(&s->base, SS_READY);
}

/* smtp_auth_check - may this session authenticate now, with that mechanism? */
int
smtp_auth_check(struct smtp_session *s, const char *args)
{
    struct smtp_perr e;
    char mech[24];
    const char *ir;

    if (!s->esmtp) {
        session_reply(s, 503, "5.5.1", "Error: send EHLO first");
        return -1;
    }
    if (s->auth_user != NULL) {
        session_reply(s, 503, "5.5.1", "Error: already authenticated");
        return -1;
    }
    if (s->base.state != SS_READY) {
        session_reply(s, 503, "5.5.1", "Error: AUTH not allowed during a mail transaction");
        return -1;
    }
    if (!smtp_auth_offered(s)) {
        session_reply(s, 538, "5.7.11",
                      "Encryption required for requested authentication "
                      "mechanism");
        return -1;
    }
    if (smtp_parse_auth(args, mech, sizeof(mech), &ir, &e) < 0) {
        session_reply(s, e.code, e.ecode, "%s", e.text);
        return -1;
    }
    if (strcmp(mech, "PLAIN") != 0 && strcmp(mech, "LOGIN") != 0) {
        session_reply(s, 504, "5.5.4", "Unrecognized authentication type");
        return -1;
    }
    return 0;
}

/* smtp_auth_fail_reply - after the failure delay. */
static void
smtp_auth_fail_reply(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);

    session_reply(s, 535, "5.7.8", "Error: authentication failed");
    sess_resume(&s->base);
}

/* smtp_auth_acct - the penalty key of an account name. */
static void
smtp_auth_acct(const char *user, char *key, size_t len)
{
    size_t n = (size_t)snprintf(key, len, "user:%s", user);

    for (size_t i = 5; i < n && i < len; i++)
        key[i] = (char)tolower((unsigned char)key[i]);
}

/* smtp_auth_result - auth_verify answered (on the loop). */
static void
smtp_auth_result(void *arg, bool ok, const struct auth_user *u)
{
    struct smtp_session *s = arg;
    char user[300], esc[200], mech[24], acct[300];

    snprintf(user, sizeof(user), "%s", s->auth->user);
    snprintf(mech, sizeof(mech), "%s", s->auth->mech);
    smtp_auth_acct(user, acct, sizeof(acct));
    s->auth->req = NULL;
    smtp_auth_end(s);
    if (ok) {
        penalty_login_ok(s->d->penalty, s->base.ip, acct);
        s->auth_user = xstrdup(user);
        snprintf(s->auth_mech, sizeof(s->auth_mech), "%s", mech);
        log_escape(esc, sizeof(esc), user, strlen(user), 100);
        log_sess(LOGLVL_INFO, s->base.sid, "auth result=ok user=%s mech=%s", esc, mech);
        session_reply(s, 235, "2.7.0", "Authentication successful");
        sess_resume(&s->base);
        return;
    }
    penalty_login_fail(s->d->penalty, s->base.ip, acct, uv_now(s->d->srv.loop));
    log_sess(LOGLVL_INFO, s->base.sid, "auth result=failed mech=%s", mech);
    explicit_bzero(user, sizeof(user));
    if (s->base.cf->auth_fail_delay > 0)
        sess_delay(&s->base, (uint64_t)s->base.cf->auth_fail_delay * 1000, smtp_auth_fail_reply);
    else
        smtp_auth_fail_reply(&s->base);
}

/* smtp_auth_ext_answer - the authent_process helper answered `check` (on the loop):
 * -DEAD or a timeout is a temporary failure (454), never a wrong password. */
static void
smtp_auth_ext_answer(void *arg, const struct extauth_answer *a)
{
    struct smtp_session *s = arg;

    s->auth->xreq = NULL;
    if (a->kind == EA_DEAD) {
        log_sess(LOGLVL_WARN, s->base.sid, "auth result=tempfail mech=%s authent_process: %s",
                 s->auth->mech, a->reason[0] ? a->reason : "-DEAD");
        smtp_auth_end(s);
        session_reply(s, 454, "4.7.0", "Temporary authentication failure");
        sess_resume(&s->base);
        return;
    }
    smtp_auth_result(s, a->kind == EA_OK, NULL);
}

/* smtp_auth_check_now - hand user and password to the pool (or the helpers). */
static void
smtp_auth_check_now(struct smtp_session *s, const char *pass)
{
    struct auth_req *req;

    if (s->d->srv.ext != NULL) {
        char user[600];
        if (s->base.cf->authent_domain && strchr(s->auth->user, '@') == NULL)
            snprintf(user, sizeof(user), "%s@%s", s->auth->user, s->base.cf->main_domain);
        else
            snprintf(user, sizeof(user), "%s", s->auth->user);
        s->auth->xreq =
            extauth_check(s->d->srv.ext, user, pass, s->base.ip, smtp_auth_ext_answer, s);
        return;
    }
    if (s->base.db == NULL) {
        smtp_auth_result(s, false, NULL);
        return;
    }
    req = auth_verify(s->d->srv.loop, s->d->srv.cache, s->base.db, s->base.cf, s->auth->user, pass,
                      smtp_auth_result, s);
    if (s->auth != NULL && s->auth->step == SA_VERIFY)
        s->auth->req = req; /* else the answer came at once */
}

/* smtp_auth_waited - the penalty is over: check the kept password. */
static void
smtp_auth_waited(struct sess *b)
{
    struct smtp_session *s = smtp_session_of(b);
    char *pass = s->auth->pass;
    size_t passlen = s->auth->passlen;

    s->auth->pass = NULL;
    sess_go_async(&s->base);
    smtp_auth_check_now(s, pass);
    explicit_bzero(pass, passlen);
    free(pass);
}

/* smtp_auth_verify - wait out the login penalty of the address (and of the account, for
 * an address that has failed), then hand user and password to the pool. */
static void
smtp_auth_verify(struct smtp_session *s, const char *user, const char *pass)
{
    uint64_t base = (uint64_t)s->base.cf->auth_fail_delay * 1000,
             max = (uint64_t)s->base.cf->login_penalty_max * 1000, wait;
    char acct[300];

    /* user@domain, user%domain, or bare user: the vdomain of the address connected to, or
     * the main domain (vdomain.h) */
    enum vdomain_form form = vdomain_login(s->base.cf, user, net_local_ip(s->base.conn),
                                           s->auth->user, sizeof(s->auth->user));
    char esc[200];
    log_escape(esc, sizeof(esc), s->auth->user, strlen(s->auth->user), 100);
    log_sess(LOGLVL_INFO, s->base.sid, "auth name_form=%s user=%s", vdomain_form_name(form), esc);
    user = s->auth->user;
    s->auth->step = SA_VERIFY;
    smtp_auth_acct(user, acct, sizeof(acct));
    wait = penalty_login_wait(s->d->penalty, s->base.ip, acct, uv_now(s->d->srv.loop), base, max);
    if (wait > 0) {
        log_sess(LOGLVL_DEBUG, s->base.sid, "auth penalty ms=%llu", (unsigned long long)wait);
        s->auth->passlen = strlen(pass);
        s->auth->pass = xstrdup(pass);
        sess_delay(&s->base, wait, smtp_auth_waited);
        return;
    }
    sess_go_async(&s->base);
    smtp_auth_check_now(s, pass);
}

/* smtp_auth_decode - base64 of a client response; on error the reply is written. */
static long
smtp_auth_decode(struct smtp_session *s, const char *in, char *out, size_t outlen)
{
    long n = smtp_parse_base64(in, strlen(in), out, outlen);

    if (n < 0) {
        session_reply(s, 501, "5.5.2", "Error: cannot decode response");
        smtp_auth_end(s);
    }
    return n;
}

/* smtp_auth_plain - a PLAIN response. */
static void
smtp_auth_plain(struct smtp_session *s, const char *resp)
{
    char buf[SMTP_AUTH_BUF];
    const char *user, *pass;
    long n = smtp_auth_decode(s, resp, buf, sizeof(buf));

    if (n < 0)
        return;
    if (smtp_parse_plain(buf, (size_t)n, &user, &pass) < 0 || strlen(user) >= 256) {
        explicit_bzero(buf, sizeof(buf));
        session_reply(s, 501, "5.5.2", "Error: invalid PLAIN response");
        smtp_auth_end(s);
        return;
    }
    smtp_auth_verify(s, user, pass);
    explicit_bzero(buf, sizeof(buf));
}

/* smtp_auth_login_user - the LOGIN user name; asks for the password. */
static void
smtp_auth_login_user(struct smtp_session *s, const char *resp)
{
    char buf[SMTP_AUTH_BUF];
    long n = smtp_auth_decode(s, resp, buf, sizeof(buf));

    if (n < 0)
        return;
    if (n == 0 || n >= 256 || memchr(buf, '\0', (size_t)n) != NULL) {
        session_reply(s, 501, "5.5.2", "Error: invalid user name");
        smtp_auth_end(s);
        return;
    }
    memcpy(s->auth->user, buf, (size_t)n + 1);
    s->auth->step = SA_LOGIN_PASS;
    sess_enter_state(&s->base, SS_AUTH);
    session_reply(s, 334, NULL, "UGFzc3dvcmQ6"); /* "Password:" */
}

/* smtp_auth_login_pass - the LOGIN password. */
static void
smtp_auth_login_pass(struct smtp_session *s, const char *resp)
{
    char buf[SMTP_AUTH_BUF], user[256];
    long n = smtp_auth_decode(s, resp, buf, sizeof(buf));

    if (n < 0)
        return;
    if (memchr(buf, '\0', (size_t)n) != NULL) {
        explicit_bzero(buf, sizeof(buf));
        session_reply(s, 501, "5.5.2", "Error: invalid password encoding");
        smtp_auth_end(s);
        return;
    }
    snprintf(user, sizeof(user), "%s", s->auth->user);
    smtp_auth_verify(s, user, buf);
    explicit_bzero(buf, sizeof(buf));
}

/* smtp_auth_proceed - AUTH PLAIN|LOGIN [initial-response]. */
void
smtp_auth_proceed(struct smtp_session *s, const char *args)
{
    struct smtp_perr e;
    const char *ir;

    if (penalty_login_blocked(s->d->penalty, s->base.ip, uv_now(s->d->srv.loop),
                              (unsigned)s->base.cf->login_fail_max)) {
        log_sess(LOGLVL_INFO, s->base.sid, "auth refused reason=too-many-failures ip=%s",
                 s->base.ip);
        session_reply(s, 421, "4.7.0", "Too many failed logins from your address, try later");
        sess_close(&s->base, "auth-cutoff");
        return;
    }
    s->auth = xcalloc(1, sizeof(*s->auth));
    smtp_parse_auth(args, s->auth->mech, sizeof(s->auth->mech), &ir, &e);
    if (strcmp(s->auth->mech, "PLAIN") == 0) {
        s->auth->step = SA_PLAIN;
        if (ir != NULL) {
            smtp_auth_plain(s, ir);
            return;
        }
        sess_enter_state(&s->base, SS_AUTH);
        session_reply(s, 334, NULL, "%s", "");
        return;
    }
    s->auth->step = SA_LOGIN_USER;
    if (ir != NULL) {
        smtp_auth_login_user(s, ir);
        return;
    }
    sess_enter_state(&s->base, SS_AUTH);
    session_reply(s, 334, NULL, "VXNlcm5hbWU6"); /* "Username:" */
}

/* smtp_auth_input - one response line inside the exchange. */
void
smtp_auth_input(struct smtp_session *s, char *line, size_t len)
{
    if (len == 1 && line[0] == '*') {
        session_reply(s, 501, "5.7.0", "Authentication aborted");
        smtp_auth_end(s);
        return;
    }
    switch (s->auth->step) {
    case SA_PLAIN:
        smtp_auth_plain(s, line);
        break;
    case SA_LOGIN_USER:
        smtp_auth_login_user(s, line);
        break;
    case SA_LOGIN_PASS:
        smtp_auth_login_pass(s, line);
        break;
    case SA_VERIFY:
        break;
    }
    explicit_bzero(line, len);
}

/* smtp_auth_cancel - the session is closing. */
void
smtp_auth_cancel(struct smtp_session *s)
{
    if (s->auth == NULL)
        return;
    if (s->auth->req != NULL)
        auth_cancel(s->auth->req);
    s->auth->req = NULL;
    extauth_cancel(s->auth->xreq);
    s->auth->xreq = NULL;
    smtp_auth_end(s);
}
