/*
 * test_smtp_parse - the SMTP command-line parser (dsmtp/smtp_parse.c), table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../dsmtp/smtp_parse.h"
#include "unit_util.h"

struct verb_case {
    const char *line;
    enum smtp_verb verb;
    const char *args;
};

static const struct verb_case verb_cases[] = {
    {"EHLO client.example", SMTP_V_EHLO, "client.example"},
    {"ehlo client.example", SMTP_V_EHLO, "client.example"},
    {"eHlO   spaced", SMTP_V_EHLO, "spaced"},
    {"HELO x", SMTP_V_HELO, "x"},
    {"MAIL FROM:<a@b.example>", SMTP_V_MAIL, "FROM:<a@b.example>"},
    {"rcpt TO:<a@b.example>", SMTP_V_RCPT, "TO:<a@b.example>"},
    {"DATA", SMTP_V_DATA, ""},
    {"data", SMTP_V_DATA, ""},
    {"RSET", SMTP_V_RSET, ""},
    {"NOOP hello there", SMTP_V_NOOP, "hello there"},
    {"QUIT", SMTP_V_QUIT, ""},
    {"HELP", SMTP_V_HELP, ""},
    {"VRFY bob", SMTP_V_VRFY, "bob"},
    {"EXPN list", SMTP_V_EXPN, "list"},
    {"STARTTLS", SMTP_V_STARTTLS, ""},
    {"AUTH PLAIN", SMTP_V_AUTH, "PLAIN"},
    {"BDAT 10 LAST", SMTP_V_BDAT, "10 LAST"},
    {"ETRN example", SMTP_V_ETRN, "example"},
    /* whole tokens only, never prefixes */
    {"EHLOX", SMTP_V_UNKNOWN, ""},
    {"EHL", SMTP_V_UNKNOWN, ""},
    {"MAILFROM:<a@b>", SMTP_V_UNKNOWN, ""},
    {"STARTTLSX", SMTP_V_UNKNOWN, ""},
    {"QUITNOW", SMTP_V_UNKNOWN, ""},
    {"", SMTP_V_UNKNOWN, ""},
    {" EHLO x", SMTP_V_UNKNOWN, "EHLO x"},
    {"GET / HTTP/1.0", SMTP_V_UNKNOWN, "/ HTTP/1.0"},
};

static void
test_verbs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
        struct smtp_cmdline cl;
        smtp_parse_line(verb_cases[i].line, &cl);
        if (cl.verb != verb_cases[i].verb || strcmp(cl.args, verb_cases[i].args) != 0)
            fail_msg("case %zu \"%s\": verb %d args \"%s\"", i, verb_cases[i].line, cl.verb,
                     cl.args);
    }
    assert_string_equal(smtp_parse_verb_name(SMTP_V_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_parse_verb_name(SMTP_V_UNKNOWN), "?");
    assert_string_equal(smtp_parse_verb_name(SMTP_V_COUNT), "?");
}

struct mail_case {
    const char *args;
    bool esmtp;
    int code; /* 0: accepted */
    const char *ecode;
    const char *from; /* formatted address when accepted */
    unsigned long long size;
    enum smtp_body body;
    bool utf8;
};

static const struct mail_case mail_cases[] = {
    {"FROM:<alice@example.org>", true, 0, NULL, "alice@example.org", 0, SMTP_BODY_NONE, false},
    {"from:<alice@Example.ORG>", true, 0, NULL, "alice@example.org", 0, SMTP_BODY_NONE, false},
    {"FROM:<>", true, 0, NULL, "", 0, SMTP_BODY_NONE, false},
    {"FROM: <bob@example.org>", true, 0, NULL, "bob@example.org", 0, SMTP_BODY_NONE, false},
    {"FROM:<a@example.org> SIZE=1000", true, 0, NULL, "a@example.org", 1000, SMTP_BODY_NONE, false},
    {"FROM:<a@example.org> size=0 body=8bitmime", true, 0, NULL, "a@example.org", 0,
     SMTP_BODY_8BITMIME, false},
    {"FROM:<a@example.org> BODY=7BIT", true, 0, NULL, "a@example.org", 0, SMTP_BODY_7BIT, false},
    {"FROM:<a@example.org> SMTPUTF8", true, 0, NULL, "a@example.org", 0, SMTP_BODY_NONE, true},
    {"FROM:<a@example.org>   SIZE=5   SMTPUTF8  ", true, 0, NULL, "a@example.org", 5,
     SMTP_BODY_NONE, true},
    {"FROM:<a@example.org> AUTH=<>", true, 0, NULL, "a@example.org", 0, SMTP_BODY_NONE, false},
    {"FROM:<@relay.example:a@example.org>", true, 0, NULL, "a@example.org", 0, SMTP_BODY_NONE,
     false},
    {"FROM:<\"john doe\"@example.org>", true, 0, NULL, "\"john doe\"@example.org", 0,
     SMTP_BODY_NONE, false},
    /* syntax errors */
    {"", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM", true, 501, "5.5.4", NULL, 0, 0, false},
    {"TO:<a@example.org>", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:a@example.org", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org>SIZE=1", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org", true, 501, "5.1.7", NULL, 0, 0, false},
    {"FROM:<a b@example.org>", true, 501, "5.1.7", NULL, 0, 0, false},
    {"FROM:<a@@example.org>", true, 501, "5.1.7", NULL, 0, 0, false},
    {"FROM:<a@example.org> SIZE=abc", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> SIZE=", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> SIZE", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> SIZE=99999999999999999999999", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> SIZE=99999999999999999999", true, 0, NULL, "a@example.org", ~0ULL,
     SMTP_BODY_NONE, false},
    {"FROM:<a@example.org> SIZE=18446744073709551614", true, 0, NULL, "a@example.org",
     18446744073709551614ULL, SMTP_BODY_NONE, false},
    {"FROM:<a@example.org> SIZE=1 SIZE=2", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> SMTPUTF8=yes", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> =x", true, 501, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> BODY=BINARYMIME", true, 555, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> NOTIFY=NEVER", true, 555, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org> XFOO", true, 555, "5.5.4", NULL, 0, 0, false},
    /* parameters after HELO */
    {"FROM:<a@example.org> SIZE=10", false, 555, "5.5.4", NULL, 0, 0, false},
    {"FROM:<a@example.org>", false, 0, NULL, "a@example.org", 0, SMTP_BODY_NONE, false},
};

/* parsed - case i ("args") went as wanted: accepted (code 0, and then true is returned for
 * the caller to check what it parsed) or refused with code, ecode and a text */
static bool
parsed(size_t i, const char *args, int rc, const struct smtp_perr *e, int code, const char *ecode)
{
    if (code == 0) {
        if (rc != 0)
            fail_msg("case %zu \"%s\": refused %d %s %s", i, args, e->code, e->ecode, e->text);
        return true;
    }
    if (rc != -1 || e->code != code || e->ecode == NULL || strcmp(e->ecode, ecode) != 0)
        fail_msg("case %zu \"%s\": rc %d code %d %s (want %d %s)", i, args, rc, e->code,
                 e->ecode ? e->ecode : "-", code, ecode);
    assert_true(e->text[0] != '\0');
    return false;
}

static void
test_mail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
        const struct mail_case *c = &mail_cases[i];
        struct smtp_mail m;
        struct smtp_perr e = {0};
        char buf[300];
        int rc = smtp_parse_mail(c->args, c->esmtp, &m, &e);
        if (!parsed(i, c->args, rc, &e, c->code, c->ecode))
            continue;
        addr_format(&m.from, buf, sizeof(buf));
        if (strcmp(buf, c->from) != 0 || m.size != c->size || m.body != c->body ||
            m.smtputf8 != c->utf8 ||
            m.size_set != (strstr(c->args, "SIZE") != NULL || strstr(c->args, "size") != NULL))
            fail_msg("case %zu \"%s\": from <%s> size %llu body %d utf8 %d", i, c->args, buf,
                     m.size, m.body, m.smtputf8);
    }
}

struct rcpt_case {
    const char *args;
    bool esmtp;
    int code;
    const char *ecode;
    const char *to;
    bool bare_postmaster;
};

static const struct rcpt_case rcpt_cases[] = {
    {"TO:<bob@example.org>", true, 0, NULL, "bob@example.org", false},
    {"to:<BOB@EXAMPLE.org>", true, 0, NULL, "BOB@example.org", false},
    {"TO: <bob@example.org>", true, 0, NULL, "bob@example.org", false},
    {"TO:<Postmaster>", true, 0, NULL, "postmaster", true},
    {"TO:<postmaster>", false, 0, NULL, "postmaster", true},
    {"TO:<postmaster@example.org>", true, 0, NULL, "postmaster@example.org", false},
    {"TO:<@a.example,@b.example:bob@example.org>", true, 0, NULL, "bob@example.org", false},
    {"TO:<bob@[192.0.2.1]>", true, 0, NULL, "bob@[192.0.2.1]", false},
    {"TO:<>", true, 501, "5.1.3", NULL, false},
    {"TO:<bob>", true, 501, "5.1.3", NULL, false},
    {"TO:bob@example.org", true, 501, "5.5.4", NULL, false},
    {"FROM:<bob@example.org>", true, 501, "5.5.4", NULL, false},
    {"", true, 501, "5.5.4", NULL, false},
    {"TO:<bob@example.org>x", true, 501, "5.5.4", NULL, false},
    {"TO:<postmaster>x", true, 501, "5.5.4", NULL, false},
    {"TO:<bob@example.org> RET=FULL", true, 555, "5.5.4", NULL, false},
    {"TO:<bob@example.org> XFOO=1", true, 555, "5.5.4", NULL, false},
    {"TO:<bob@example.org> ORCPT=rfc822;bob@example.org", false, 555, "5.5.4", NULL, false},
    {"TO:<bob@example.org>   ", true, 0, NULL, "bob@example.org", false},
};

static void
test_rcpt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        const struct rcpt_case *c = &rcpt_cases[i];
        struct smtp_rcpt r;
        struct smtp_perr e = {0};
        char buf[300];
        int rc = smtp_parse_rcpt(c->args, c->esmtp, &r, &e);
        if (!parsed(i, c->args, rc, &e, c->code, c->ecode))
            continue;
        if (r.bare_postmaster)
            snprintf(buf, sizeof(buf), "%s", r.to.local);
        else
            addr_format(&r.to, buf, sizeof(buf));
        if (strcmp(buf, c->to) != 0 || r.bare_postmaster != c->bare_postmaster)
            fail_msg("case %zu \"%s\": to <%s> pm %d", i, c->args, buf, r.bare_postmaster);
    }
}

/* DSN parameters (RFC 3461): accepted values, kept as sent; every syntax error a 501. */
struct dsn_case {
    bool rcpt; /* a RCPT (else MAIL) argument string */
    const char *args;
    int code;         /* 0: accepted */
    const char *text; /* part of the error text, or (accepted) the ENVID/ORCPT kept */
    enum dsn_ret ret;
    int notify;
};

static const struct dsn_case dsn_cases[] = {
    {false, "FROM:<a@x.example> RET=FULL", 0, "", DSN_RET_FULL, 0},
    {false, "FROM:<a@x.example> ret=hdrs", 0, "", DSN_RET_HDRS, 0},
    {false, "FROM:<a@x.example> RET=HDRS ENVID=QQ314159", 0, "QQ314159", DSN_RET_HDRS, 0},
    {false, "FROM:<a@x.example> ENVID=a+2Bb+3Dc+20d", 0, "a+2Bb+3Dc+20d", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+2bb", 0, "a+2bb", 0, 0},
    {false, "FROM:<a@x.example> RET=", 501, "Bad RET value", 0, 0},
    {false, "FROM:<a@x.example> RET", 501, "RET needs a value", 0, 0},
    {false, "FROM:<a@x.example> RET=BODY", 501, "Bad RET value", 0, 0},
    {false, "FROM:<a@x.example> RET=FULL RET=HDRS", 501, "Duplicate RET", 0, 0},
    {false, "FROM:<a@x.example> ENVID=", 501, "ENVID needs a value", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a ENVID=b", 501, "Duplicate ENVID", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+2", 501, "two hexadecimal", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+", 501, "two hexadecimal", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+GG", 501, "two hexadecimal", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a=b", 501, "not allowed in xtext", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+0Ab", 501, "control character", 0, 0},
    {false, "FROM:<a@x.example> ENVID=a+C3+A9", 501, "control character", 0, 0},
    {false, "FROM:<a@x.example> ENVID=@101", 501, "longer than 100", 0, 0},
    {false, "FROM:<a@x.example> ENVID=@100", 0, "@100", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=NEVER", 0, "", 0, DSN_NOTIFY_NEVER},
    {true, "TO:<b@x.example> NOTIFY=success,Failure,DELAY", 0, "", 0,
     DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY},
    {true, "TO:<b@x.example> NOTIFY=DELAY", 0, "", 0, DSN_NOTIFY_DELAY},
    {true, "TO:<b@x.example> ORCPT=rfc822;b+2Bx@y.example NOTIFY=SUCCESS", 0,
     "rfc822;b+2Bx@y.example", 0, DSN_NOTIFY_SUCCESS},
    {true, "TO:<b@x.example> ORCPT=utf-8;b+C3+A9@y.example", 0, "utf-8;b+C3+A9@y.example", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=", 501, "NOTIFY needs a value", 0, 0},
    {true, "TO:<b@x.example> NOTIFY", 501, "NOTIFY needs a value", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=NEVER,SUCCESS", 501, "cannot be combined", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=SUCCESS,SUCCESS", 501, "twice", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=SOMETIMES", 501, "NOTIFY takes", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=SUCCESS,", 501, "NOTIFY takes", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=,DELAY", 501, "NOTIFY takes", 0, 0},
    {true, "TO:<b@x.example> NOTIFY=NEVER NOTIFY=NEVER", 501, "Duplicate NOTIFY", 0, 0},
    {true, "TO:<b@x.example> ORCPT=", 501, "ORCPT needs a value", 0, 0},
    {true, "TO:<b@x.example> ORCPT=b@x.example", 501, "addr-type;address", 0, 0},
    {true, "TO:<b@x.example> ORCPT=;b@x.example", 501, "addr-type;address", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;", 501, "no address", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;b+@x", 501, "two hexadecimal", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;b+0D+0A@x", 501, "control character", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;@501", 501, "longer than 500", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;@500", 0, "@500", 0, 0},
    {true, "TO:<b@x.example> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501, "Duplicate ORCPT", 0, 0},
};

/* dsn_args - c->args with "@N" at its end replaced by a value making the whole parameter
 * value N octets (the rest after "=" or "rfc822;"). */
static void
dsn_args(const char *args, char *out, size_t len)
{
    const char *at = strrchr(args, '@');
    size_t pre, want;
    char *v;

    snprintf(out, len, "%s", args);
    if (at == NULL || at[1] == '\0' || strspn(at + 1, "0123456789") != strlen(at + 1))
        return;
    want = (size_t)atoi(at + 1);
    pre = (size_t)(at - args);
    v = strrchr(out, '=') + 1;
    want -= (size_t)(out + pre - v); /* "rfc822;" counts */
    assert_true(pre + want + 1 < len);
    memset(out + pre, 'x', want);
    out[pre + want] = '\0';
}

static void
test_dsn_params(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(dsn_cases) / sizeof(dsn_cases[0]); i++) {
        const struct dsn_case *c = &dsn_cases[i];
        char args[1200], want[1200];
        struct smtp_mail m;
        struct smtp_rcpt r;
        struct smtp_perr e = {0};
        int rc;

        dsn_args(c->args, args, sizeof(args));
        snprintf(want, sizeof(want), "%s", c->text);
        if (c->text[0] == '@') /* the kept value is the whole generated one */
            snprintf(want, sizeof(want), "%s", strrchr(args, '=') + 1);
        rc = c->rcpt ? smtp_parse_rcpt(args, true, &r, &e) : smtp_parse_mail(args, true, &m, &e);
        if (c->code != 0) {
            if (rc != -1 || e.code != c->code || strcmp(e.ecode, "5.5.4") != 0 ||
                strstr(e.text, c->text) == NULL)
                fail_msg("case %zu \"%s\": rc %d: %d %s %s (want %d ... %s)", i, c->args, rc,
                         e.code, e.ecode ? e.ecode : "-", e.text, c->code, c->text);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu \"%s\": refused %d %s", i, c->args, e.code, e.text);
        if (c->rcpt) {
            if (r.notify != c->notify || strcmp(r.orcpt, want) != 0)
                fail_msg("case %zu \"%s\": notify %d orcpt \"%s\"", i, c->args, r.notify, r.orcpt);
        } else if (m.ret != c->ret || strcmp(m.envid, want) != 0) {
            fail_msg("case %zu \"%s\": ret %d envid \"%s\"", i, c->args, m.ret, m.envid);
        }
    }
    /* after HELO no parameter at all */
    struct smtp_rcpt r;
    struct smtp_perr e = {0};
    assert_int_equal(smtp_parse_rcpt("TO:<b@x.example> NOTIFY=NEVER", false, &r, &e), -1);
    assert_int_equal(e.code, 555);
}

/* test_dsnparam - the helpers behind the parser, the queue file and sendmail. */
static void
test_dsnparam(void **state)
{
    char buf[64];
    int n;
    const char *why;

    (void)state;
    assert_string_equal(
        dsnparam_notify_format(DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, false, buf, sizeof(buf)),
        "SUCCESS,DELAY");
    assert_string_equal(dsnparam_notify_format(DSN_NOTIFY_NEVER, true, buf, sizeof(buf)), "never");
    assert_string_equal(dsnparam_notify_format(0, true, buf, sizeof(buf)), "");
    assert_int_equal(dsnparam_notify_parse("never", 5, &n, &why), 0);
    assert_int_equal(n, DSN_NOTIFY_NEVER);
    assert_true(dsnparam_notify_valid(0));
    assert_true(dsnparam_notify_valid(DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY));
    assert_false(dsnparam_notify_valid(DSN_NOTIFY_NEVER | DSN_NOTIFY_DELAY));
    assert_false(dsnparam_notify_valid(64));
    assert_true(dsnparam_wants(0, DSN_NOTIFY_FAILURE));
    assert_true(dsnparam_wants(0, DSN_NOTIFY_DELAY));
    assert_false(dsnparam_wants(0, DSN_NOTIFY_SUCCESS));
    assert_false(dsnparam_wants(DSN_NOTIFY_NEVER, DSN_NOTIFY_FAILURE));
    assert_false(dsnparam_wants(DSN_NOTIFY_SUCCESS, DSN_NOTIFY_DELAY));
    assert_true(dsnparam_wants(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, DSN_NOTIFY_FAILURE));
    assert_int_equal(dsnparam_xtext_encode("a+b=c d", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a+2Bb+3Dc+20d");
    assert_int_equal(dsnparam_envid_check(buf, strlen(buf), &why), 0);
    assert_int_equal(dsnparam_xtext_encode("a\nb", buf, sizeof(buf)), -1);
    assert_int_equal(dsnparam_xtext_encode("abcdef", buf, 4), -1);
    assert_int_equal(dsnparam_xtext_encode("a+", buf, 4), -1);
    assert_int_equal(dsnparam_xtext_encode("a+", buf, 5), 0);
    assert_null(dsnparam_ret_name(DSN_RET_UNSET, false));
    assert_string_equal(dsnparam_ret_name(DSN_RET_FULL, true), "full");
}

static void
test_bdat(void **state)
{
    struct smtp_perr e;
    unsigned long long n;
    bool last;

    (void)state;
    assert_int_equal(smtp_parse_bdat("10", &n, &last, &e), 0);
    assert_true(n == 10 && !last);
    assert_int_equal(smtp_parse_bdat("0 LAST", &n, &last, &e), 0);
    assert_true(n == 0 && last);
    assert_int_equal(smtp_parse_bdat("007  last  ", &n, &last, &e), 0);
    assert_true(n == 7 && last);
    assert_int_equal(smtp_parse_bdat("9999999999999999999", &n, &last, &e), 0);
    assert_true(n == 9999999999999999999ULL);
    static const char *const bad[] = {"",
                                      "LAST",
                                      "x",
                                      "-1",
                                      "+5",
                                      "1x",
                                      "1 FIRST",
                                      "1 LASTX",
                                      "1 LAST x",
                                      "1 2",
                                      "10000000000000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (smtp_parse_bdat(bad[i], &n, &last, &e) != -1)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(e.code, 521);
        assert_string_equal(e.ecode, "5.5.4");
        assert_string_equal(e.text, "Syntax: BDAT count [LAST]");
    }
}

static void
test_helo(void **state)
{
    char out[300];
    struct smtp_perr e;
    char long_name[300];

    (void)state;
    assert_int_equal(smtp_parse_helo("client.example", out, sizeof(out), &e), 0);
    assert_string_equal(out, "client.example");
    assert_int_equal(smtp_parse_helo("[192.0.2.1]", out, sizeof(out), &e), 0);
    assert_string_equal(out, "[192.0.2.1]");
    assert_int_equal(smtp_parse_helo("client.example   ", out, sizeof(out), &e), 0);
    assert_int_equal(smtp_parse_helo("", out, sizeof(out), &e), -1);
    assert_int_equal(e.code, 501);
    assert_int_equal(smtp_parse_helo("two words", out, sizeof(out), &e), -1);
    assert_int_equal(smtp_parse_helo("bad\x01name", out, sizeof(out), &e), -1);
    assert_int_equal(smtp_parse_helo("h\xc3\xa9llo", out, sizeof(out), &e), -1);
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    assert_int_equal(smtp_parse_helo(long_name, out, sizeof(out), &e), -1);
    long_name[255] = '\0';
    assert_int_equal(smtp_parse_helo(long_name, out, sizeof(out), &e), 0);
    assert_int_equal(smtp_parse_helo("client.example", out, 5, &e), -1);
}

static void
test_auth_args(void **state)
{
    char mech[24];
    const char *ir;
    struct smtp_perr e;

    (void)state;
    assert_int_equal(smtp_parse_auth("plain", mech, sizeof(mech), &ir, &e), 0);
    assert_string_equal(mech, "PLAIN");
    assert_null(ir);
    assert_int_equal(smtp_parse_auth("LOGIN dXNlcg==", mech, sizeof(mech), &ir, &e), 0);
    assert_string_equal(mech, "LOGIN");
    assert_string_equal(ir, "dXNlcg==");
    assert_int_equal(smtp_parse_auth("PLAIN =", mech, sizeof(mech), &ir, &e), 0);
    assert_string_equal(ir, "=");
    assert_int_equal(smtp_parse_auth("", mech, sizeof(mech), &ir, &e), -1);
    assert_int_equal(e.code, 501);
    assert_int_equal(smtp_parse_auth("PLAIN a b", mech, sizeof(mech), &ir, &e), -1);
    assert_int_equal(smtp_parse_auth("PL@IN", mech, sizeof(mech), &ir, &e), -1);
    assert_int_equal(smtp_parse_auth("ABCDEFGHIJKLMNOPQRSTUVWXYZ", mech, sizeof(mech), &ir, &e),
                     -1);
}

struct b64_case {
    const char *in;
    long len; /* -1: invalid */
    const char *out;
};

static const struct b64_case b64_cases[] = {
    {"", 0, ""},
    {"=", 0, ""},
    {"Zg==", 1, "f"},
    {"Zm8=", 2, "fo"},
    {"Zm9v", 3, "foo"},
    {"Zm9vYg==", 4, "foob"},
    {"Zm9vYmFy", 6, "foobar"},
    {"AGJvYgBzZWNyZXQ=", 11, "\0bob\0secret"},
    {"Zm9v ", 3, "foo"},
    {"Zg=", -1, NULL},
    {"Zg", -1, NULL},
    {"Z===", -1, NULL},
    {"Zg==Zg==", -1, NULL},
    {"Zm9v!", -1, NULL},
    {"Zm 9v", -1, NULL},
    {"Zm=v", -1, NULL},
    {"==", -1, NULL},
};

static void
test_base64(void **state)
{
    char out[64], enc[64];

    (void)state;
    for (size_t i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        const struct b64_case *c = &b64_cases[i];
        long n = smtp_parse_base64(c->in, strlen(c->in), out, sizeof(out));
        if (n != c->len)
            fail_msg("case %zu \"%s\": got %ld want %ld", i, c->in, n, c->len);
        if (n >= 0) {
            assert_memory_equal(out, c->out, (size_t)n);
            assert_int_equal(out[n], '\0');
            /* round trip (the "=" and trailing space spellings excepted) */
            if (strcmp(c->in, "=") != 0 && strchr(c->in, ' ') == NULL) {
                assert_true(smtp_parse_base64_encode(out, (size_t)n, enc, sizeof(enc)) >= 0);
                assert_string_equal(enc, c->in);
            }
        }
    }
    /* does not fit */
    assert_int_equal(smtp_parse_base64("Zm9vYmFy", 8, out, 6), -1);
    assert_int_equal(smtp_parse_base64("Zm9vYmFy", 8, out, 7), 6);
    assert_int_equal(smtp_parse_base64_encode("foobar", 6, enc, 8), -1);
    assert_int_equal(smtp_parse_base64_encode("foobar", 6, enc, 9), 8);
}

static void
test_plain(void **state)
{
    const char *u, *p;

    (void)state;
    assert_int_equal(smtp_parse_plain("\0bob\0secret", 11, &u, &p), 0);
    assert_string_equal(u, "bob");
    assert_string_equal(p, "secret");
    assert_int_equal(smtp_parse_plain("bob\0bob\0pw", 10, &u, &p), 0);
    assert_string_equal(u, "bob");
    assert_string_equal(p, "pw");
    assert_int_equal(smtp_parse_plain("\0bob\0", 5, &u, &p), 0);
    assert_string_equal(p, "");
    assert_int_equal(smtp_parse_plain("eve\0bob\0pw", 10, &u, &p), -1); /* proxy auth */
    assert_int_equal(smtp_parse_plain("bo\0bob\0pw", 9, &u, &p), -1);   /* prefix authzid */
    assert_int_equal(smtp_parse_plain("\0\0pw", 4, &u, &p), -1);        /* no authcid */
    assert_int_equal(smtp_parse_plain("\0bobpw", 6, &u, &p), -1);       /* one NUL */
    assert_int_equal(smtp_parse_plain("bobpw", 5, &u, &p), -1);         /* no NUL */
    assert_int_equal(smtp_parse_plain("\0bob\0pw\0x", 9, &u, &p), -1);  /* three NULs */
}

static void
test_misc(void **state)
{
    (void)state;
    assert_true(smtp_parse_is_8bit("j\xc3\xb6rg"));
    assert_false(smtp_parse_is_8bit("joerg"));
    assert_false(smtp_parse_has_arg(""));
    assert_false(smtp_parse_has_arg("   "));
    assert_true(smtp_parse_has_arg(" x "));
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_verbs), cmocka_unit_test(test_mail),
        cmocka_unit_test(test_rcpt), cmocka_unit_test(test_dsn_params),
        cmocka_unit_test(test_dsnparam), cmocka_unit_test(test_helo), cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_auth_args), cmocka_unit_test(test_base64),
        cmocka_unit_test(test_plain), cmocka_unit_test(test_misc))
