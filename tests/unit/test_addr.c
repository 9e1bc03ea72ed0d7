/*
 * test_addr - RFC 5321 path and mailbox parsing, IDN normalisation, formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "unit_util.h"

struct pathcase {
    const char *in;
    bool allow_null, utf8;
    int rc;
    const char *local, *domain; /* expected on success */
    const char *rest;           /* what *end points at on success */
    const char *why;            /* substring of err on failure (NULL: any) */
};

/* Long strings built at start-up. */
static char local64[200], local65[200], label63[200], label64[200], dom255[400], dom256[400];
static char quoted65[200];

static const struct pathcase paths[] = {
    /* plain and null */
    {"<user@example.org>", false, false, 0, "user", "example.org", "", NULL},
    {"  <user@example.org>", false, false, 0, "user", "example.org", "", NULL},
    {"<User.Name+tag@Example.ORG>", false, false, 0, "User.Name+tag", "example.org", "", NULL},
    {"<>", true, false, 0, "", "", "", NULL},
    {"<> SIZE=100", true, false, 0, "", "", " SIZE=100", NULL},
    {"<>", false, false, -1, NULL, NULL, NULL, "null"},
    {"<!#$%&'*+-/=?^_`{|}~@x.example>", false, false, 0, "!#$%&'*+-/=?^_`{|}~", "x.example", "",
     NULL},
    /* MAIL parameters after the path */
    {"<a@b.example> SIZE=1000 BODY=8BITMIME", false, false, 0, "a", "b.example",
     " SIZE=1000 BODY=8BITMIME", NULL},
    {"<a@b.example>SIZE=1", false, false, 0, "a", "b.example", "SIZE=1", NULL},
    /* quoted local parts */
    {"<\"john doe\"@example.org>", false, false, 0, "\"john doe\"", "example.org", "", NULL},
    {"<\"john\"@example.org>", false, false, 0, "john", "example.org", "", NULL},
    {"<\"a\\\"b\"@example.org>", false, false, 0, "\"a\\\"b\"", "example.org", "", NULL},
    {"<\"a\\b\"@example.org>", false, false, 0, "ab", "example.org", "", NULL},
    {"<\"a@b\"@example.org>", false, false, 0, "\"a@b\"", "example.org", "", NULL},
    {"<\"a..b\"@example.org>", false, false, 0, "\"a..b\"", "example.org", "", NULL},
    {"<\"\"@example.org>", false, false, 0, "\"\"", "example.org", "", NULL},
    {"<\"abc@example.org>", false, false, -1, NULL, NULL, NULL, "unterminated"},
    {"<\"a\tb\"@example.org>", false, false, -1, NULL, NULL, NULL, "control"},
    {"<\"a\\\x01\"@example.org>", false, false, -1, NULL, NULL, NULL, "quoted-pair"},
    /* dot-string rules */
    {"<.user@example.org>", false, false, -1, NULL, NULL, NULL, "starts with a dot"},
    {"<user.@example.org>", false, false, -1, NULL, NULL, NULL, "ends with a dot"},
    {"<us..er@example.org>", false, false, -1, NULL, NULL, NULL, "two dots"},
    {"<@example.org>", false, false, -1, NULL, NULL, NULL, NULL},
    {"<us er@example.org>", false, false, -1, NULL, NULL, NULL, "invalid character"},
    {"<us(er@example.org>", false, false, -1, NULL, NULL, NULL, "invalid character"},
    /* source routes */
    {"<@a.example,@b.example:u@d.example>", false, false, 0, "u", "d.example", "", NULL},
    {"<@a.example:u@d.example> X", false, false, 0, "u", "d.example", " X", NULL},
    {"<@a.example,b.example:u@d.example>", false, false, -1, NULL, NULL, NULL, "route"},
    {"<@a.example u@d.example>", false, false, -1, NULL, NULL, NULL, "route"},
    {"<@:u@d.example>", false, false, -1, NULL, NULL, NULL, "empty domain"},
    /* brackets */
    {"user@example.org", false, false, -1, NULL, NULL, NULL, "angle brackets"},
    {"<user@example.org", false, false, -1, NULL, NULL, NULL, "'>'"},
    {"<user@example.org x>", false, false, -1, NULL, NULL, NULL, "'>'"},
    {"<user>", false, false, -1, NULL, NULL, NULL, "missing @domain"},
    {"", false, false, -1, NULL, NULL, NULL, NULL},
    /* domains */
    {"<u@bücher.example>", false, false, 0, "u", "xn--bcher-kva.example", "", NULL},
    {"<u@BÜCHER.Example>", false, false, 0, "u", "xn--bcher-kva.example", "", NULL},
    {"<u@XN--BCHER-KVA.example>", false, false, 0, "u", "xn--bcher-kva.example", "", NULL},
    {"<u@xn--zzzz.example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@-a.example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@a-.example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@a_b.example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@a..example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@example.>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    {"<u@>", false, false, -1, NULL, NULL, NULL, "empty domain"},
    {"<u@ab--cd.example>", false, false, 0, "u", "ab--cd.example", "", NULL},
    {"<u@\xff.example>", false, false, -1, NULL, NULL, NULL, "invalid domain"},
    /* address literals */
    {"<u@[192.0.2.1]>", false, false, 0, "u", "[192.0.2.1]", "", NULL},
    {"<u@[IPv6:::1]>", false, false, 0, "u", "[IPv6:::1]", "", NULL},
    {"<u@[ipv6:2001:db8::1]>", false, false, 0, "u", "[IPv6:2001:db8::1]", "", NULL},
    {"<u@[192.0.2.256]>", false, false, -1, NULL, NULL, NULL, "address literal"},
    {"<u@[1.2.3]>", false, false, -1, NULL, NULL, NULL, "address literal"},
    {"<u@[IPv6:1.2.3.4]>", false, false, -1, NULL, NULL, NULL, "IPv6"},
    {"<u@[IPv6:::g]>", false, false, -1, NULL, NULL, NULL, "IPv6"},
    {"<u@[x-tag:stuff]>", false, false, -1, NULL, NULL, NULL, "address literal"},
    {"<u@[192.0.2.1>", false, false, -1, NULL, NULL, NULL, "unterminated"},
    {"<u@[192.0.2.1]x>", false, false, -1, NULL, NULL, NULL, "'>'"},
    /* UTF-8 local parts */
    {"<jörg@example.org>", false, false, -1, NULL, NULL, NULL, "SMTPUTF8"},
    {"<jörg@example.org>", false, true, 0, "jörg", "example.org", "", NULL},
    {"<\"jö rg\"@example.org>", false, true, 0, "\"jö rg\"", "example.org", "", NULL},
    {"<\"jö rg\"@example.org>", false, false, -1, NULL, NULL, NULL, "SMTPUTF8"},
    {"<j\xc3@example.org>", false, true, -1, NULL, NULL, NULL, "UTF-8"},
    {"<j\xc0\x80@example.org>", false, true, -1, NULL, NULL, NULL, "UTF-8"},
    {"<j\xed\xa0\x80@example.org>", false, true, -1, NULL, NULL, NULL, "UTF-8"},
    /* lengths: filled in by setup */
    {local64, false, false, 0, NULL, "example.org", "", NULL},
    {local65, false, false, -1, NULL, NULL, NULL, "64"},
    {quoted65, false, false, -1, NULL, NULL, NULL, "64"},
    {label63, false, false, 0, NULL, NULL, "", NULL},
    {label64, false, false, -1, NULL, NULL, NULL, "63"},
    {dom255, false, false, 0, NULL, NULL, "", NULL},
    {dom256, false, false, -1, NULL, NULL, NULL, "255"},
};

/* build_long - the generated length cases. */
static int
build_long(void **state)
{
    (void)state;
    char l[100];

    memset(l, 'a', 65);
    snprintf(local64, sizeof local64, "<%.64s@example.org>", l);
    snprintf(local65, sizeof local65, "<%.65s@example.org>", l);
    snprintf(quoted65, sizeof quoted65, "<\"%.63s\"@example.org>", l);
    snprintf(label63, sizeof label63, "<u@%.63s.example>", l);
    snprintf(label64, sizeof label64, "<u@%.64s.example>", l);
    /* 4 labels of 63 + 3 dots = 255; one more character = 256 */
    snprintf(dom255, sizeof dom255, "<u@%.63s.%.63s.%.63s.%.63s>", l, l, l, l);
    snprintf(dom256, sizeof dom256, "<u@%.63s.%.63s.%.63s.%.61s.bb>", l, l, l, l);
    return 0;
}

/* test_paths - the table. */
static void
test_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const struct pathcase *c = &paths[i];
        struct addr a;
        const char *end = NULL;
        char err[128] = "";

        memset(&a, 0x55, sizeof a);
        print_message("path %zu: %s\n", i, c->in);
        int rc = addr_parse_path(c->in, c->allow_null, c->utf8, &a, &end, err, sizeof err);
        assert_int_equal(rc, c->rc);
        if (rc == 0) {
            if (c->local)
                assert_string_equal(a.local, c->local);
            if (c->domain)
                assert_string_equal(a.domain, c->domain);
            assert_non_null(end);
            assert_string_equal(end, c->rest);
            assert_true(strlen(a.local) <= ADDR_LOCAL_MAX);
            assert_true(strlen(a.domain) <= ADDR_DOMAIN_MAX);
        } else {
            assert_true(err[0] != '\0');
            if (c->why && strstr(err, c->why) == NULL)
                fail_msg("err '%s' lacks '%s'", err, c->why);
        }
    }
}

/* test_long_values - the generated cases give the expected lengths. */
static void
test_long_values(void **state)
{
    (void)state;
    struct addr a;
    char err[128];

    assert_int_equal(addr_parse_path(local64, false, false, &a, NULL, err, sizeof err), 0);
    assert_int_equal(strlen(a.local), 64);
    assert_int_equal(addr_parse_path(dom255, false, false, &a, NULL, err, sizeof err), 0);
    assert_int_equal(strlen(a.domain), 255);
    /* a quoted local part of 64 octets including the quotes is fine */
    char q[200], l[70];
    memset(l, 'b', 62);
    l[62] = '\0';
    snprintf(q, sizeof q, "<\"%s\"@x.example>", l);
    assert_int_equal(addr_parse_path(q, false, false, &a, NULL, err, sizeof err), 0);
    assert_string_equal(a.local, l);
    /* multi-byte characters and quoted-pairs at the limit */
    strcpy(q, "<\"");
    for (int i = 0; i < 31; i++)
        strcat(q, "\xc3\xa4");
    strcat(q, "\"@x.example>");
    assert_int_equal(addr_parse_path(q, false, true, &a, NULL, err, sizeof err), 0);
    strcpy(q, "<\"");
    for (int i = 0; i < 40; i++)
        strcat(q, "\xc3\xa4");
    strcat(q, "\"@x.example>");
    assert_int_equal(addr_parse_path(q, false, true, &a, NULL, err, sizeof err), -1);
    strcpy(q, "<\"");
    for (int i = 0; i < 31; i++)
        strcat(q, "\\\"");
    strcat(q, "\"@x.example>");
    assert_int_equal(addr_parse_path(q, false, false, &a, NULL, err, sizeof err), 0);
    assert_int_equal(strlen(a.local), 2 + 31 * 2);
    strcpy(q, "<\"");
    for (int i = 0; i < 32; i++)
        strcat(q, "\\\"");
    strcat(q, "\"@x.example>");
    assert_int_equal(addr_parse_path(q, false, false, &a, NULL, err, sizeof err), -1);
    /* an IDN domain whose A-label form is too long */
    char big[800] = "<u@";
    for (int i = 0; i < 8; i++)
        strcat(big, "ääääääääääääääääääääääääääää.");
    strcat(big, "example>");
    assert_int_equal(addr_parse_path(big, false, false, &a, NULL, err, sizeof err), -1);
}

/* test_failure_leaves_out - a failed parse does not touch the result. */
static void
test_failure_leaves_out(void **state)
{
    (void)state;
    struct addr a;
    char err[64];

    assert_int_equal(addr_parse_path("<x@y.example>", false, false, &a, NULL, err, sizeof err), 0);
    assert_int_equal(addr_parse_path("<z@bad..example>", false, false, &a, NULL, err, sizeof err),
                     -1);
    assert_string_equal(a.local, "x");
    assert_string_equal(a.domain, "y.example");
    /* a NULL or tiny err buffer is fine */
    assert_int_equal(addr_parse_path("<", false, false, &a, NULL, NULL, 0), -1);
    assert_int_equal(addr_parse_path("<", false, false, &a, NULL, err, 1), -1);
    assert_string_equal(err, "");
}

/* test_mailbox - bare mailboxes, with and without a default domain. */
static void
test_mailbox(void **state)
{
    (void)state;
    struct addr a;
    char err[128];

    assert_int_equal(addr_parse_mailbox("Bob@Example.ORG", NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.local, "Bob");
    assert_string_equal(a.domain, "example.org");
    assert_int_equal(addr_parse_mailbox("bob", NULL, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "@domain"));
    assert_int_equal(addr_parse_mailbox("bob", "Bücher.Example", &a, err, sizeof err), 0);
    assert_string_equal(a.local, "bob");
    assert_string_equal(a.domain, "xn--bcher-kva.example");
    assert_int_equal(addr_parse_mailbox("bob", "bad..x", &a, err, sizeof err), -1);
    assert_int_equal(addr_parse_mailbox("<bob@x.example>", NULL, &a, err, sizeof err), -1);
    assert_int_equal(addr_parse_mailbox("bob@x.example>", NULL, &a, err, sizeof err), -1);
    assert_int_equal(addr_parse_mailbox("bob@x.example ", NULL, &a, err, sizeof err), -1);
    assert_int_equal(addr_parse_mailbox("bob@[10.0.0.1]", NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.domain, "[10.0.0.1]");
    assert_int_equal(addr_parse_mailbox("bob@[10.0.0.1]x", NULL, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "trailing"));
    assert_int_equal(addr_parse_mailbox("\"b c\"@x.example", NULL, &a, err, sizeof err), 0);
    assert_string_equal(a.local, "\"b c\"");
    assert_int_equal(addr_parse_mailbox("", NULL, &a, err, sizeof err), -1);
    assert_int_equal(addr_parse_mailbox("a b@x.example", NULL, &a, err, sizeof err), -1);
}

/* test_normalize - domains to lower-case A-labels. */
static void
test_normalize(void **state)
{
    (void)state;
    char out[ADDR_DOMAIN_MAX + 1];

    static const struct {
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {"Example.COM", "example.com"},
        {"bücher.example", "xn--bcher-kva.example"},
        {"straße.de", "xn--strae-oqa.de"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"", NULL},
        {"a b.example", NULL},
        {".example", NULL},
        {"xn--.example", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = addr_domain_normalize(cases[i].in, out, sizeof out);
        assert_int_equal(rc, cases[i].out != NULL ? 0 : -1);
        if (cases[i].out != NULL)
            assert_string_equal(out, cases[i].out);
    }
    /* out too small */
    assert_int_equal(addr_domain_normalize("example.com", out, 5), -1);
    assert_int_equal(addr_domain_normalize("example.com", out, 12), 0);
}

/* test_format - formatting and unquoting. */
static void
test_format(void **state)
{
    (void)state;
    struct addr a;
    char buf[300], small[6];
    char err[64];

    assert_int_equal(addr_parse_path("<>", true, false, &a, NULL, err, sizeof err), 0);
    assert_true(addr_is_null(&a));
    assert_string_equal(addr_format(&a, buf, sizeof buf), "");
    assert_int_equal(
        addr_parse_path("<\"Jo \\\"X\\\" Do\"@Ex.ORG>", false, false, &a, NULL, err, sizeof err),
        0);
    assert_false(addr_is_null(&a));
    assert_string_equal(a.local, "\"Jo \\\"X\\\" Do\"");
    assert_string_equal(addr_format(&a, buf, sizeof buf), "\"Jo \\\"X\\\" Do\"@ex.org");
    assert_string_equal(addr_local_unquoted(&a, false, buf, sizeof buf), "Jo \"X\" Do");
    assert_string_equal(addr_local_unquoted(&a, true, buf, sizeof buf), "jo \"x\" do");
    assert_string_equal(addr_local_unquoted(&a, false, small, sizeof small), "Jo \"X");
    assert_string_equal(addr_format(&a, small, sizeof small), "\"Jo \\");
    assert_int_equal(
        addr_parse_path("<Bob.Smith@x.example>", false, false, &a, NULL, err, sizeof err), 0);
    assert_string_equal(addr_local_unquoted(&a, true, buf, sizeof buf), "bob.smith");
    assert_string_equal(addr_local_unquoted(&a, false, buf, sizeof buf), "Bob.Smith");
}

/* test_random_input - random mixes of the interesting bytes never break the bounds. */
static void
test_random_input(void **state)
{
    (void)state;
    static const char *const parts[] = {"<",    ">",      "@",    "\"",
                                        "\\",   ".",      ",",    ":",
                                        "[",    "]",      "a",    "B",
                                        "0",    "-",      " ",    "\xc3\xa4",
                                        "\xff", "IPv6:",  "xn--", "aaaaaaaaaaaaaaaaaaaa",
                                        "::1",  "1.2.3.4"};
    unsigned seed = 42;
    char in[400];
    struct addr a;
    char err[128];
    int ok = 0;

    for (int i = 0; i < 200000; i++) {
        size_t n = 0;
        in[0] = '\0';
        if (i & 1)
            strcpy(in, "<"), n = 1;
        int k = 1 + (int)(seed % 40);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = parts[(seed >> 16) % (sizeof parts / sizeof parts[0])];
            size_t pl = strlen(p);
            if (n + pl + 1 >= sizeof in)
                break;
            memcpy(in + n, p, pl + 1);
            n += pl;
        }
        const char *end = NULL;
        if (addr_parse_path(in, true, (i & 2) != 0, &a, &end, err, sizeof err) == 0) {
            ok++;
            assert_true(strlen(a.local) <= ADDR_LOCAL_MAX);
            assert_true(strlen(a.domain) <= ADDR_DOMAIN_MAX);
            assert_true(end > in && end <= in + n && end[-1] == '>');
        }
        if (addr_parse_mailbox(in, NULL, &a, err, sizeof err) == 0) {
            assert_true(strlen(a.local) <= ADDR_LOCAL_MAX);
            assert_true(strlen(a.domain) <= ADDR_DOMAIN_MAX);
        }
    }
    assert_true(ok > 0);
}

/* The VERP sender of Postfix's XVERP, and the sender itself where none can be made. */
static void
test_verp(void **state)
{
    char buf[600], small[20];
    (void)state;
    assert_string_equal(
        addr_verp("list-bounces@dom.org", "user@example.org", "+=", buf, sizeof buf),
        "list-bounces+user=example.org@dom.org");
    assert_string_equal(addr_verp("l@d", "a.b@x.y", "-=", buf, sizeof buf), "l-a.b=x.y@d");
    assert_string_equal(addr_verp("l@d", "\"a b\"@x.y", "+=", buf, sizeof buf), "l@d");
    assert_string_equal(addr_verp("l@d", "a@[192.0.2.1]", "+=", buf, sizeof buf), "l@d");
    assert_string_equal(addr_verp("l@d", "a@x", NULL, buf, sizeof buf), "l@d");
    assert_string_equal(addr_verp("l@d", "a@x", "+", buf, sizeof buf), "l@d");
    assert_string_equal(addr_verp("l", "a@x", "+=", buf, sizeof buf), "l");
    assert_string_equal(addr_verp("list@dom", "someone@example.org", "+=", small, sizeof small),
                        "list@dom");
}

UU_MAIN(build_long, NULL, cmocka_unit_test(test_paths), cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_failure_leaves_out), cmocka_unit_test(test_mailbox),
        cmocka_unit_test(test_normalize), cmocka_unit_test(test_format),
        cmocka_unit_test(test_random_input), cmocka_unit_test(test_verp))
