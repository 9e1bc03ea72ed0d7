/*
 * test_mtasts - MTA-STS policy parsing, the _mta-sts TXT record's id and MX pattern
 * matching (dsmtp/mtasts.c, RFC 8461 3.1, 3.2, 4.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../dsmtp/mtasts.h"
#include "unit_util.h"

/* parse - mtasts_parse of a string; the error into err. */
static int
parse(const char *text, struct mtasts_policy *p, char *err, size_t errlen)
{
    err[0] = '\0';
    return mtasts_parse(text, strlen(text), p, err, errlen);
}

static void
test_parse_good(void **state)
{
    struct mtasts_policy p;
    char err[200];

    (void)state;
    assert_int_equal(parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                           "mx: *.example.net\r\nmax_age: 604800\r\nfuture: ignored\r\n",
                           &p, err, sizeof(err)),
                     0);
    assert_int_equal(p.mode, MTASTS_ENFORCE);
    assert_int_equal(p.max_age, 604800);
    assert_int_equal(p.nmx, 2);
    assert_string_equal(p.mx[1], "*.example.net");
    mtasts_policy_clear(&p);
    assert_int_equal(parse("version: STSv1\nmode: none\nmax_age: 0", &p, err, sizeof(err)), 0);
    assert_int_equal(p.mode, MTASTS_NONE);
    mtasts_policy_clear(&p);
    assert_int_equal(parse("version:STSv1\nmode:testing \nmx:\tmx.a.test\nmax_age: 31557600\n", &p,
                           err, sizeof(err)),
                     0);
    assert_int_equal(p.mode, MTASTS_TESTING);
    assert_int_equal(p.max_age, 31557600);
    mtasts_policy_clear(&p);
}

static void
test_parse_bad(void **state)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"mode: enforce\nmx: a\nmax_age: 1\n", "no version"},
        {"version: STSv1\nmx: a\nmax_age: 1\n", "no mode"},
        {"version: STSv1\nmode: enforce\nmx: a\n", "no max_age"},
        {"version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
         "line 1: version 'STSv2' (STSv1 once)"},
        {"version: STSv1\nmode: Enforce\nmx: a\nmax_age: 1\n", "line 2: unknown mode 'Enforce'"},
        {"version: STSv1\nmode: enforce\nmode: none\nmx: a\nmax_age: 1\n", "line 3: a second mode"},
        {"version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n",
         "line 4: max_age '31557601' (0 to 31557600)"},
        {"version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n", "line 4: max_age '-1'"},
        {"version: STSv1\nmode: enforce\nmx: a\nmax_age: 1x\n",
         "line 4: max_age '1x' (0 to 31557600)"},
        {"version: STSv1\nmode: enforce\nmx: a b\nmax_age: 1\n",
         "line 3: mx 'a b' is not a host name pattern"},
        {"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
         "line 3: mx '*.' is not a host name pattern"},
        {"version: STSv1\nmode: testing\nmax_age: 1\n", "mode testing without an mx"},
        {"<html>\n", "line 1: not 'key: value'"},
    };
    struct mtasts_policy p;
    char err[200];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].text, &p, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].err);
        assert_int_equal(p.nmx, 0);
    }
}

static void
test_txt_id(void **state)
{
    char id[33];

    (void)state;
    assert_int_equal(mtasts_txt_id("v=STSv1; id=20160831085700Z;", id, sizeof(id)), 0);
    assert_string_equal(id, "20160831085700Z");
    assert_int_equal(mtasts_txt_id("v=STSv1;id=abc", id, sizeof(id)), 0);
    assert_string_equal(id, "abc");
    assert_int_equal(mtasts_txt_id("v=STSv1; id=a; ext=1", id, sizeof(id)), 0);
    assert_string_equal(id, "a");
    assert_int_equal(mtasts_txt_id("v=STSv1;", id, sizeof(id)), -1);            /* no id */
    assert_int_equal(mtasts_txt_id("v=STSv1; id=a-b", id, sizeof(id)), -1);     /* not alnum */
    assert_int_equal(mtasts_txt_id("v=STSv1; id=", id, sizeof(id)), -1);        /* empty */
    assert_int_equal(mtasts_txt_id("v=STSv1; id=a; id=b", id, sizeof(id)), -1); /* twice */
    assert_int_equal(mtasts_txt_id("v=STSv10; id=a", id, sizeof(id)), -1);
    assert_int_equal(mtasts_txt_id("v=spf1 -all", id, sizeof(id)), -1);
    assert_int_equal(mtasts_txt_id("v=STSv1; id=123456789012345678901234567890123", id, sizeof(id)),
                     -1);
}

static void
test_mx_match(void **state)
{
    struct mtasts_policy p;
    char err[200];

    (void)state;
    assert_int_equal(parse("version: STSv1\nmode: enforce\nmx: mail.example.com\n"
                           "mx: *.example.net\nmax_age: 1\n",
                           &p, err, sizeof(err)),
                     0);
    assert_true(mtasts_mx_match(&p, "mail.example.com"));
    assert_true(mtasts_mx_match(&p, "MAIL.Example.COM."));
    assert_true(mtasts_mx_match(&p, "mx1.example.net"));
    assert_false(mtasts_mx_match(&p, "example.net"));       /* the bare name */
    assert_false(mtasts_mx_match(&p, "a.mx1.example.net")); /* one label only */
    assert_false(mtasts_mx_match(&p, "other.example.com"));
    assert_false(mtasts_mx_match(&p, "mail.example.com.evil")); /* a suffix */
    mtasts_policy_clear(&p);
}

static void
test_settings_checked(void **state)
{
    (void)state;
    uu_conf_errs(
        "mta_sts_ca ca.pem\n"
        "tls_rpt_from reports\n"
        "tls_rpt_from a b@example.org\n"
        "mta_sts maybe\n"
        "mta_sts_port 0\n",
        (const char *const[]){"t.conf:1: mta_sts_ca: 'ca.pem' is not an absolute path",
                              "t.conf:2: tls_rpt_from: 'reports' is not an address local@domain",
                              "t.conf:3: tls_rpt_from: 'a b@example.org' is not an address (white "
                              "space, a control or <>)",
                              "t.conf:4: mta_sts: 'maybe' is not a boolean (true or false)",
                              "t.conf:5: mta_sts_port: '0' is out of range (1 to 65535)", NULL});
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),       cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_txt_id),           cmocka_unit_test(test_mx_match),
        cmocka_unit_test(test_settings_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
