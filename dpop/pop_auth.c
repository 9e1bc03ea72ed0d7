/*
 * pop_auth - USER/PASS, APOP, AUTH PLAIN/LOGIN, the login penalty. See pop_auth.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "command.h"
#include "drop.h"
#include "extauth.h"
#include "log.h"
#include "mailbox.h"
#include "penalty.h"
#include "popauth.h"
#include "pop_auth.h"
#include "vdomain.h"
#include "xmem.h"

#define POP_AUTH_SECRET_MAX 1024 /* longest password or SASL message accepted */
#define POP_AUTH_NAME_MAX 255

static void pop_auth_check(struct sess *b);

/* pop_auth_b64decode - strict base64 into out (NUL-terminated); the length or -1. */
long
pop_auth_b64decode(const char *in, size_t inlen, char *out, size_t outlen)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pad = 0, n;
    int r;

    if (inlen == 1 && in[0] == '=') {
        if (outlen == 0)
            return -1;
        out[0] = '\0';
        return 0;
    }
    if (inlen == 0 || inlen % 4 != 0)
        return -1;
    for (size_t i = 0; i < inlen; i++) {
        if (in[i] == '=') {
            if (i < inlen - 2)
                return -1;
            pad++;
        } else if (pad > 0 || in[i] == '\0' || strchr(alpha, in[i]) == NULL) {
            return -1;
        }
    }
    n = inlen / 4 * 3;
    if (n - pad + 1 > outlen)
        return -1;
    {
        unsigned char *tmp = xmalloc(n + 1);
        r = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
        if (r < 0 || (size_t)r != n) {
            OPENSSL_cleanse(tmp, n + 1);
            free(tmp);
            return -1;
        }
        memcpy(out, tmp, n - pad);
        OPENSSL_cleanse(tmp, n + 1);
        free(tmp);
    }
    out[n - pad] = '\0';
    return (long)(n - pad);
}

/* pop_auth_apop_digest - MD5(timestamp secret) in hex. */
void
pop_auth_apop_digest(const char *timestamp, const char *secret, char *out)
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    out[0] = '\0';
    if (ctx == NULL)
        return;
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, timestamp, strlen(timestamp)) == 1 &&
        EVP_DigestUpdate(ctx, secret, strlen(secret)) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 16) {
        for (int i = 0; i < 16; i++) {
            out[2 * i] = hx[md[i] >> 4];
            out[2 * i + 1] = hx[md[i] & 15];
        }
        out[32] = '\0';
    }
    EVP_MD_CTX_free(ctx);
}

/* pop_auth_apop_secret - the apop= option's value. */
int
pop_auth_apop_secret(const char *options, char *out, size_t outlen)
{
    const char *p = options;

    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        if (n > 5 && strncasecmp(p, "apop=", 5) == 0 && n - 5 < outlen) {
            memcpy(out, p + 5, n - 5);
            out[n - 5] = '\0';
            return 0;
        }
        p = p[n] == ',' ? p + n + 1 : NULL;
    }
    return -1;
}

/* pop_auth_wipe - clear and free a secret. */
static void
pop_auth_wipe(char **p)
{
    if (*p != NULL) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

/* pop_auth_clear_pending - wipe and free a login waiting for its check. */
void
pop_auth_clear_pending(struct pop_session *s)
{
    pop_auth_wipe(&s->pending_secret);
    free(s->pending_login);
    s->pending_login = NULL;
}

/* pop_auth_user_key - the penalty key of a login name. */
static void
pop_auth_user_key(const char *login, char *key, size_t len)
{
    size_t n = (size_t)snprintf(key, len, "user:%s", login);

    for (size_t i = 5; i < n && i < len; i++)
        key[i] = (char)tolower((unsigned char)key[i]);
}

/* pop_auth_name_ok - a login name we are willing to look up. */
static bool
pop_auth_name_ok(const char *p, size_t n)
{
    if (n == 0 || n > POP_AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
            return false;
    return true;
}

/* pop_auth_start - a login attempt: wait out the penalty, then check. Takes the
 * secret (a copy is kept until the check is done). */
static void
pop_auth_start(struct pop_session *s, const char *login, size_t loginlen, const char *secret,
               size_t secretlen, bool apop)
{
    char key[POP_AUTH_NAME_MAX + 8];
    uint64_t now = uv_now(s->d->srv.loop), base = (uint64_t)s->base.cf->auth_fail_delay * 1000,
             max = (uint64_t)s->base.cf->login_penalty_max * 1000, d1;

    if (!pop_auth_name_ok(login, loginlen) || secretlen > POP_AUTH_SECRET_MAX ||
        memchr(secret, '\0', secretlen) != NULL) {
        s->user[0] = '\0';
        session_err(s, false, "AUTH", "Authentication failed");
        return;
    }
    if (penalty_login_blocked(s->d->penalty, s->base.ip, now,
                              (unsigned)s->base.cf->login_fail_max)) {
        s->user[0] = '\0';
        log_sess(LOGLVL_INFO, s->base.sid, "login refused reason=too-many-failures ip=%s",
                 s->base.ip);
        session_err(s, false, "SYS/TEMP", "Too many failed logins from your address, try later");
        sess_close(&s->base, "login-cutoff");
        return;
    }
    pop_auth_clear_pending(s);
    /* user@domain, user%domain, or bare user: the vdomain of the address connected to, or
     * the main domain (vdomain.h) */
    char *typed = xstrndup(login, loginlen), canon[POP_AUTH_NAME_MAX + 300], esc[80];
    enum vdomain_form form =
        vdomain_login(s->base.cf, typed, net_local_ip(s->base.conn), canon, sizeof canon);
    log_escape(esc, sizeof esc, canon, strlen(canon), 64);
    log_sess(LOGLVL_INFO, s->base.sid, "login name_form=%s user=%s", vdomain_form_name(form), esc);
    free(typed);
    s->pending_login = xstrdup(canon); /* login may be s->user */
    s->user[0] = '\0';
    s->pending_secret = xstrndup(secret, secretlen);
    s->pending_apop = apop;
    pop_auth_user_key(s->pending_login, key, sizeof key);
    d1 = penalty_login_wait(s->d->penalty, s->base.ip, key, now, base, max);
    if (d1 > 0) {
        log_sess(LOGLVL_DEBUG, s->base.sid, "login penalty ms=%llu", (unsigned long long)d1);
        sess_delay(&s->base, d1, pop_auth_check);
        return;
    }
    pop_auth_check(&s->base);
}

/* pop_auth_fail_reply - the delayed answer to a failed login. */
static void
pop_auth_fail_reply(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);

    session_err(s, false, "AUTH", "Authentication failed");
}

/* pop_auth_opened - the mailbox snapshot is ready (or could not be had). */
static void
pop_auth_opened(struct pop_session *s, enum drop_result res, const char *err)
{
    unsigned long n = 0;
    unsigned long long octets = 0;

    if (res != DROP_OK) {
        log_sess(LOGLVL_WARN, s->base.sid, "mailbox user=%s path=%s error=%s", s->login, s->mailbox,
                 err);
        session_err(s, false, res == DROP_PERM ? "SYS/PERM" : "SYS/TEMP",
                    "Cannot open your mailbox, try again later");
        session_release_mailbox(s);
        free(s->login);
        s->login = NULL;
        return;
    }
    s->del = xcalloc(dropview_count(s->view) + 1, 1);
    s->seen = xcalloc(dropview_count(s->view) + 1, 1);
    for (size_t i = 0; i < dropview_count(s->view); i++) {
        n++;
        octets += session_msg_size(s, i);
    }
    sess_enter_state(&s->base, SS_TRANS);
    popauth_note(s->d->srv.loop, s->base.cf, s->base.ip); /* forward_user: POP-before-SMTP */
    log_sess(LOGLVL_INFO, s->base.sid, "login user=%s msgs=%lu octets=%llu tls=%s", s->login, n,
             octets, net_is_tls(s->base.conn) ? "yes" : "no");
    session_ok(s, "Logged in, maildrop has %lu messages (%llu octets)", n, octets);
}

/* pop_auth_done - the verdict: login is the account's name and path its dropfile when ok. */
static void
pop_auth_done(struct pop_session *s, bool ok, const char *login, const char *path)
{
    char key[POP_AUTH_NAME_MAX + 8], esc[80];
    uint64_t now = uv_now(s->d->srv.loop);

    pop_auth_user_key(s->pending_login, key, sizeof key);
    log_escape(esc, sizeof esc, s->pending_login, strlen(s->pending_login), 64);
    pop_auth_clear_pending(s);
    if (!ok) {
        s->d->stats.logins_failed++;
        penalty_login_fail(s->d->penalty, s->base.ip, key, now);
        log_sess(LOGLVL_INFO, s->base.sid, "login failed user=%s ip=%s", esc, s->base.ip);
        if (s->base.cf->auth_fail_delay > 0)
            sess_delay(&s->base, (uint64_t)s->base.cf->auth_fail_delay * 1000, pop_auth_fail_reply);
        else
            pop_auth_fail_reply(&s->base);
        return;
    }
    s->d->stats.logins_ok++;
    penalty_login_ok(s->d->penalty, s->base.ip, key);
    if (!mailbox_claim(s->d, path)) {
        log_sess(LOGLVL_INFO, s->base.sid, "login in-use user=%s", esc);
        session_err(s, false, "IN-USE", "Mailbox is in use by another POP3 session");
        return;
    }
    s->holds_mailbox = true;
    free(s->mailbox);
    s->mailbox = xstrdup(path);
    s->login = xstrdup(login);
    mailbox_open(s, pop_auth_opened);
}

/* pop_auth_result - the verdict on a login attempt against the users file. */
static void
pop_auth_result(struct pop_session *s, bool ok, const struct auth_user *u)
{
    char path[4096], login[600];

    if (!ok || u == NULL || auth_mailbox_path(s->base.db, s->base.cf, u, path, sizeof path) != 0) {
        pop_auth_done(s, false, NULL, NULL);
        return;
    }
    if (u->domain != NULL)
        snprintf(login, sizeof login, "%s@%s", u->name, u->domain);
    else
        snprintf(login, sizeof login, "%s", u->name);
    pop_auth_done(s, true, login, path);
}

/* pop_auth_ext_answer - the authent_process helper answered `check` (on the loop): -ERR
 * fails as a wrong password, -DEAD (or a timeout) is a temporary failure, and a drop
 * file outside drop_path and mail_spool is refused. */
static void
pop_auth_ext_answer(void *arg, const struct extauth_answer *a)
{
    struct pop_session *s = arg;

    s->xreq = NULL;
    s->base.wait = SW_NONE;
    if (s->base.conn == NULL) {
        pop_auth_clear_pending(s);
    } else if (a->kind == EA_DEAD) {
        log_sess(LOGLVL_WARN, s->base.sid, "login temporary failure: authent_process: %s",
                 a->reason[0] ? a->reason : "-DEAD");
        pop_auth_clear_pending(s);
        session_err(s, false, "SYS/TEMP", "Authentication is unavailable now, try later");
    } else if (a->kind == EA_OK && !extauth_drop_allowed(s->base.cf, a->drop)) {
        char esc[200];
        log_escape(esc, sizeof esc, a->drop, strlen(a->drop), 150);
        log_sess(LOGLVL_ERROR, s->base.sid,
                 "login refused: authent_process gave drop file %s outside drop_path and "
                 "mail_spool",
                 esc);
        pop_auth_clear_pending(s);
        session_err(s, false, "SYS/PERM", "Mailbox location refused, tell the administrator");
    } else {
        pop_auth_done(s, a->kind == EA_OK, a->user, a->drop);
    }
    if (s->base.conn != NULL && s->base.wait == SW_NONE)
        sess_resume(&s->base);
    sess_release(&s->base); /* the request's reference */
}

/* pop_auth_ext_user - the name sent to the helper: user@main_domain under authent_domain. */
static void
pop_auth_ext_user(const struct pop_session *s, char *buf, size_t len)
{
    const char *l = s->pending_login;

    if (s->base.cf->authent_domain && strchr(l, '@') == NULL)
        snprintf(buf, len, "%s@%s", l, s->base.cf->main_domain);
    else
        snprintf(buf, len, "%s", l);
}

/* pop_auth_verified - auth_verify's answer (on the loop). */
static void
pop_auth_verified(void *arg, bool ok, const struct auth_user *u)
{
    struct pop_session *s = arg;

    s->areq = NULL;
    s->base.wait = SW_NONE;
    if (s->base.conn != NULL) {
        pop_auth_result(s, ok, u);
        if (s->base.wait == SW_NONE)
            sess_resume(&s->base);
    } else {
        pop_auth_clear_pending(s);
    }
    sess_release(&s->base); /* the request's reference */
}

/* pop_auth_check - the penalty is over: check the secret. */
static void
pop_auth_check(struct sess *b)
{
    struct pop_session *s = pop_session_of(b);

    if (s->pending_apop) {
        const struct auth_user *u = auth_db_find_login(s->base.db, s->base.cf, s->pending_login);
        char secret[512], want[33];
        bool ok = false;
        if (u != NULL && s->apop_ts[0] != '\0' &&
            pop_auth_apop_secret(u->options, secret, sizeof secret) == 0) {
            char got[33];
            pop_auth_apop_digest(s->apop_ts, secret, want);
            for (int i = 0; i < 32; i++)
                got[i] = (char)tolower((unsigned char)s->pending_secret[i]);
            got[32] = '\0';
            ok = want[0] != '\0' && CRYPTO_memcmp(want, got, 32) == 0;
            OPENSSL_cleanse(secret, sizeof secret);
        }
        pop_auth_result(s, ok, ok ? u : NULL);
        return;
    }
    sess_go_async(&s->base);
    sess_hold(&s->base);
    if (s->d->srv.ext != NULL) {
        char user[1100];
        pop_auth_ext_user(s, user, sizeof user);
        s->xreq = extauth_check(s->d->srv.ext, user, s->pending_secret, s->base.ip,
                                pop_auth_ext_answer, s);
        pop_auth_wipe(&s->pending_secret);
        return;
    }
    s->areq = auth_verify(s->d->srv.loop, s->d->srv.cache, s->base.db, s->base.cf, s->pending_login,
                          s->pending_secret, pop_auth_verified, s);
    pop_auth_wipe(&s->pending_secret); /* auth_verify took a copy */
}

/* pop_auth_cancel - the connection is gone: drop a pending check. */
void
pop_auth_cancel(struct pop_session *s)
{
    if (s->areq != NULL) {
        auth_cancel(s->areq);
        s->areq = NULL;
        sess_release(&s->base); /* the request's reference */
    }
    if (s->xreq != NULL) {
        extauth_cancel(s->xreq);
        s->xreq = NULL;
        sess_release(&s->base); /* the request's reference */
    }
    pop_auth_clear_pending(s);
}

/* pop_auth_plaintext_refused - USER/PASS/AUTH before TLS without auth_plaintext. */
static bool
pop_auth_plaintext_refused(struct pop_session *s)
{
    if (command_plaintext_ok(s))
        return false;
    session_err(s, true, "AUTH",
                "Plaintext authentication disallowed on non-secure connections (use STLS)");
    return true;
}

/* pop_auth_user - USER name. */
void
pop_auth_user(struct pop_session *s, const struct pop3_cmd *c)
{
    if (pop_auth_plaintext_refused(s))
        return;
    if (!pop_auth_name_ok(c->arg1, c->arg1_len)) {
        session_err(s, true, NULL, "Invalid user name");
        return;
    }
    memcpy(s->user, c->arg1, c->arg1_len);
    s->user[c->arg1_len] = '\0';
    session_ok(s, "%s", "");
}

/* pop_auth_pass - PASS password, after USER. */
void
pop_auth_pass(struct pop_session *s, const struct pop3_cmd *c)
{
    if (pop_auth_plaintext_refused(s))
        return;
    if (s->user[0] == '\0') {
        session_err(s, true, NULL, "USER first");
        return;
    }
    pop_auth_start(s, s->user, strlen(s->user), c->arg1, c->arg1_len, false);
}

/* pop_auth_apop - APOP name digest. */
void
pop_auth_apop(struct pop_session *s, const struct pop3_cmd *c)
{
    if (!s->base.cf->apop_enable || s->apop_ts[0] == '\0') {
        session_err(s, true, NULL, "APOP not available");
        return;
    }
    pop_auth_start(s, c->arg1, c->arg1_len, c->arg2, c->arg2_len, true);
}

/* pop_auth_plain - a decoded PLAIN message: authzid NUL authcid NUL passwd. */
static void
pop_auth_plain(struct pop_session *s, const char *msg, size_t len)
{
    const char *z = msg, *end = msg + len;
    const char *u = memchr(z, '\0', len);
    const char *p = u != NULL ? memchr(u + 1, '\0', (size_t)(end - u - 1)) : NULL;

    if (u == NULL || p == NULL) {
        session_err(s, false, "AUTH", "Authentication failed");
        return;
    }
    u++;
    p++;
    /* acting for someone else is not supported: authzid empty or the same */
    if (z[0] != '\0' && strcmp(z, u) != 0) {
        session_err(s, false, "AUTH", "Authentication failed");
        return;
    }
    pop_auth_start(s, u, strlen(u), p, (size_t)(end - p), false);
}

/* pop_auth_decode_or_fail - decode a SASL response; -1 with -ERR written. */
static long
pop_auth_decode_or_fail(struct pop_session *s, const char *in, size_t len, char *out, size_t outlen)
{
    long n = pop_auth_b64decode(in, len, out, outlen);

    if (n < 0)
        session_err(s, true, "AUTH", "Invalid base64 data");
    return n;
}

/* pop_auth_auth - AUTH [PLAIN|LOGIN [initial-response]]. */
void
pop_auth_auth(struct pop_session *s, const struct pop3_cmd *c)
{
    char dec[POP_AUTH_SECRET_MAX + 512];
    long n;

    if (c->arg1 == NULL) { /* the mechanisms, for clients that ask this way */
        const char *mechs = command_plaintext_ok(s) ? "PLAIN\r\nLOGIN\r\n.\r\n" : ".\r\n";
        session_ok(s, "%s", "");
        sess_write(&s->base, mechs, strlen(mechs));
        return;
    }
    if (!(c->arg1_len == 5 && strncasecmp(c->arg1, "PLAIN", 5) == 0) &&
        !(c->arg1_len == 5 && strncasecmp(c->arg1, "LOGIN", 5) == 0)) {
        session_err(s, true, NULL, "Unsupported authentication mechanism");
        return;
    }
    if (pop_auth_plaintext_refused(s))
        return;
    s->user[0] = '\0';
    if (strncasecmp(c->arg1, "PLAIN", 5) == 0) {
        if (c->arg2 == NULL) {
            s->sasl = SASL_PLAIN;
            sess_write(&s->base, "+ \r\n", 4);
            return;
        }
        n = pop_auth_decode_or_fail(s, c->arg2, c->arg2_len, dec, sizeof dec);
        if (n >= 0)
            pop_auth_plain(s, dec, (size_t)n);
        OPENSSL_cleanse(dec, sizeof dec);
        return;
    }
    if (c->arg2 != NULL) {
        n = pop_auth_decode_or_fail(s, c->arg2, c->arg2_len, dec, sizeof dec);
        if (n < 0)
            return;
        if (!pop_auth_name_ok(dec, (size_t)n)) {
            session_err(s, false, "AUTH", "Authentication failed");
            return;
        }
        memcpy(s->user, dec, (size_t)n + 1);
        s->sasl = SASL_LOGIN_PASS;
        sess_write(&s->base, "+ UGFzc3dvcmQ6\r\n", 16);
        return;
    }
    s->sasl = SASL_LOGIN_USER;
    sess_write(&s->base, "+ VXNlcm5hbWU6\r\n", 16);
}

/* pop_auth_sasl_abort - end a SASL exchange with -ERR. */
void
pop_auth_sasl_abort(struct pop_session *s, const char *why)
{
    s->sasl = SASL_NONE;
    s->user[0] = '\0';
    session_err(s, true, "AUTH", "%s", why);
}

/* pop_auth_sasl_line - a client response inside AUTH. */
void
pop_auth_sasl_line(struct pop_session *s, char *line, size_t len)
{
    char dec[POP_AUTH_SECRET_MAX + 512];
    enum session_sasl st = s->sasl;
    long n;

    s->sasl = SASL_NONE;
    if (len == 1 && line[0] == '*') {
        s->user[0] = '\0';
        session_err(s, false, NULL, "Authentication cancelled");
        return;
    }
    n = pop_auth_decode_or_fail(s, line, len, dec, sizeof dec);
    OPENSSL_cleanse(line, len); /* the response may hold a password */
    if (n < 0) {
        s->user[0] = '\0';
        return;
    }
    switch (st) {
    case SASL_PLAIN:
        pop_auth_plain(s, dec, (size_t)n);
        break;
    case SASL_LOGIN_USER:
        if (!pop_auth_name_ok(dec, (size_t)n)) {
            session_err(s, false, "AUTH", "Authentication failed");
            break;
        }
        memcpy(s->user, dec, (size_t)n + 1);
        s->sasl = SASL_LOGIN_PASS;
        sess_write(&s->base, "+ UGFzc3dvcmQ6\r\n", 16);
        break;
    case SASL_LOGIN_PASS:
        pop_auth_start(s, s->user, strlen(s->user), dec, (size_t)n, false);
        break;
    case SASL_NONE:
        break;
    }
    OPENSSL_cleanse(dec, sizeof dec);
}
