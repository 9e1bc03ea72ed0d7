/*
 * test_pop3_auth - the pure parts of dpop's login: strict base64 for SASL, the APOP digest
 * (RFC 1939's own example), the apop= option, and the failed-login penalty table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "penalty.h"
#include "../../dpop/pop_auth.h"
#include "unit_util.h"

static void
test_b64(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(pop_auth_b64decode("AGJvYgBzZWNyZXQ=", 16, out, sizeof out), 11);
    assert_memory_equal(out, "\0bob\0secret", 11);
    assert_int_equal(pop_auth_b64decode("YQ==", 4, out, sizeof out), 1);
    assert_string_equal(out, "a");
    assert_int_equal(pop_auth_b64decode("YWI=", 4, out, sizeof out), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(pop_auth_b64decode("YWJj", 4, out, sizeof out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(pop_auth_b64decode("=", 1, out, sizeof out), 0); /* RFC 5034: empty */
    assert_string_equal(out, "");
    /* refused: bad length, characters, padding inside, blanks */
    assert_int_equal(pop_auth_b64decode("YQ=", 3, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("", 0, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("Y!==", 4, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("Y=Q=", 4, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("=YWJ", 4, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("YW J", 4, out, sizeof out), -1);
    assert_int_equal(pop_auth_b64decode("YWJj\0\0\0\0", 8, out, sizeof out), -1);
    /* does not fit: out must hold the text and a NUL */
    assert_int_equal(pop_auth_b64decode("YWJj", 4, out, 3), -1);
    assert_int_equal(pop_auth_b64decode("YWJj", 4, out, 4), 3);
    assert_int_equal(pop_auth_b64decode("=", 1, out, 0), -1);
}

static void
test_apop_digest(void **state)
{
    char d[33];

    (void)state;
    /* RFC 1939 section 7 */
    pop_auth_apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf", d);
    assert_string_equal(d, "c4c9334bac560ecc979e58001b3e22fb");
    pop_auth_apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaF", d);
    assert_string_not_equal(d, "c4c9334bac560ecc979e58001b3e22fb");
}

static void
test_apop_secret(void **state)
{
    char s[32];

    (void)state;
    static const struct {
        const char *options, *secret; /* secret NULL: none */
    } cases[] = {
        {"apop=abc", "abc"},   {"quota=1,APOP=x y,z=2", "x y"},
        {"notapop=abc", NULL}, {"apop=", NULL},
        {NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = pop_auth_apop_secret(cases[i].options, s, sizeof s);
        assert_int_equal(rc, cases[i].secret != NULL ? 0 : -1);
        if (cases[i].secret != NULL)
            assert_string_equal(s, cases[i].secret);
    }
    assert_int_equal(pop_auth_apop_secret("apop=0123456789", s, 5), -1); /* too long */
}

/* The delay doubles from base up to max, per key, and a success clears it. */
static void
test_penalty_doubling(void **state)
{
    struct penalty *p = penalty_new();
    uint64_t t = 1000000;

    (void)state;
    assert_int_equal(penalty_delay(p, "10.0.0.1", t, 2000, 15000), 0);
    const uint64_t want[] = {2000, 4000, 8000, 15000, 15000, 15000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        penalty_fail(p, "10.0.0.1", t);
        assert_int_equal(penalty_delay(p, "10.0.0.1", t, 2000, 15000), want[i]);
    }
    assert_int_equal(penalty_count(p, "10.0.0.1", t), 6);
    assert_int_equal(penalty_delay(p, "10.0.0.2", t, 2000, 15000), 0); /* other keys */
    assert_int_equal(penalty_delay(p, "10.0.0.1", t, 0, 15000), 0);    /* base 0: off */
    penalty_clear(p, "10.0.0.1");
    assert_int_equal(penalty_delay(p, "10.0.0.1", t, 2000, 15000), 0);
    assert_int_equal(penalty_size(p), 0);
    /* many failures do not overflow */
    for (int i = 0; i < 200; i++)
        penalty_fail(p, "user:x", t);
    assert_int_equal(penalty_delay(p, "user:x", t, 2000, 15000), 15000);
    assert_int_equal(penalty_count(p, "user:x", t), 64);
    penalty_free(&p);
    assert_null(p);
}

/* Entries are forgotten PENALTY_FORGET_MS after their last failure. */
static void
test_penalty_forget(void **state)
{
    struct penalty *p = penalty_new();
    uint64_t t = 5000;

    (void)state;
    penalty_fail(p, "a", t);
    penalty_fail(p, "b", t + 1000);
    assert_int_equal(penalty_size(p), 2);
    assert_int_equal(penalty_count(p, "a", t + PENALTY_FORGET_MS), 1);
    assert_int_equal(penalty_count(p, "a", t + PENALTY_FORGET_MS + 1), 0);
    assert_int_equal(penalty_count(p, "b", t + PENALTY_FORGET_MS + 1), 1);
    /* a new failure renews the entry */
    penalty_fail(p, "b", t + PENALTY_FORGET_MS);
    assert_int_equal(penalty_count(p, "b", t + 2 * PENALTY_FORGET_MS), 2);
    assert_int_equal(penalty_size(p), 1);
    penalty_free(&p);
}

/* The table is bounded: the oldest key goes first. */
static void
test_penalty_bounded(void **state)
{
    struct penalty *p = penalty_new();
    char key[32];

    (void)state;
    for (int i = 0; i < PENALTY_MAX + 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        penalty_fail(p, key, 100);
    }
    assert_int_equal(penalty_size(p), PENALTY_MAX);
    assert_int_equal(penalty_count(p, "k0", 100), 0);
    assert_int_equal(penalty_count(p, "k9", 100), 0);
    assert_int_equal(penalty_count(p, "k10", 100), 1);
    snprintf(key, sizeof key, "k%d", PENALTY_MAX + 9);
    assert_int_equal(penalty_count(p, key, 100), 1);
    penalty_free(&p);
}

/* Attempts on a key that has failed queue: each waits one delay after the one before. */
static void
test_penalty_reserve(void **state)
{
    struct penalty *p = penalty_new();
    uint64_t t = 1000;

    (void)state;
    assert_int_equal(penalty_reserve(p, "k", t, 2000, 15000), 0); /* no failures */
    penalty_fail(p, "k", t);
    assert_int_equal(penalty_reserve(p, "k", t, 2000, 15000), 2000);
    assert_int_equal(penalty_reserve(p, "k", t, 2000, 15000), 4000);
    assert_int_equal(penalty_reserve(p, "k", t + 500, 2000, 15000), 5500);
    /* after the queue has drained, a delay from now again */
    assert_int_equal(penalty_reserve(p, "k", t + 60000, 2000, 15000), 2000);
    assert_int_equal(penalty_reserve(p, "k", t, 0, 15000), 0); /* base 0: off */
    penalty_free(&p);
}

/* The login guard: addresses (IPv6 by /64), the account's wait only for failed
 * addresses, the cut-off. */
static void
test_penalty_login_guard(void **state)
{
    struct penalty *p = penalty_new();
    char key[80];
    uint64_t t = 1000;

    (void)state;
    penalty_ip_key("2001:db8:1:2:3:4:5:6", key, sizeof key);
    assert_string_equal(key, "ip6:2001:db8:1:2::/64");
    penalty_ip_key("192.0.2.7", key, sizeof key);
    assert_string_equal(key, "192.0.2.7");

    for (int i = 0; i < 3; i++)
        penalty_login_fail(p, "2001:db8:1:2::99", "user:alice", t);
    /* the same /64 waits; the account's failures add their wait there ... */
    assert_int_equal(penalty_login_wait(p, "2001:db8:1:2::1", "user:alice", t, 1000, 15000), 4000);
    /* ... but not for an address that never failed */
    assert_int_equal(penalty_login_wait(p, "2001:db8:1:3::1", "user:alice", t, 1000, 15000), 0);
    assert_int_equal(penalty_login_wait(p, "192.0.2.7", "user:alice", t, 1000, 15000), 0);
    assert_false(penalty_login_blocked(p, "2001:db8:1:2::5", t, 4));
    assert_true(penalty_login_blocked(p, "2001:db8:1:2::5", t, 3));
    assert_false(penalty_login_blocked(p, "2001:db8:1:2::5", t, 0)); /* 0: never */
    assert_false(penalty_login_blocked(p, "192.0.2.7", t, 3));
    penalty_login_ok(p, "2001:db8:1:2::1", "user:alice");
    assert_false(penalty_login_blocked(p, "2001:db8:1:2::5", t, 1));
    assert_int_equal(penalty_count(p, "user:alice", t), 0);
    penalty_free(&p);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_b64), cmocka_unit_test(test_apop_digest),
        cmocka_unit_test(test_apop_secret), cmocka_unit_test(test_penalty_doubling),
        cmocka_unit_test(test_penalty_forget), cmocka_unit_test(test_penalty_bounded),
        cmocka_unit_test(test_penalty_reserve), cmocka_unit_test(test_penalty_login_guard))
