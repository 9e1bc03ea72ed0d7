/*
 * test_nexthop - smarthost/gateway specs (common/mail/nexthop), the route of a domain,
 * and the settings gateway, smarthost, smarthost_tls and smarthost_auth as dmail.conf
 * loads them: normalised values, every refusal with its file:line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "nexthop.h"
#include "unit_util.h"

/* spec_ok - spec parses to host/port/mx and reads back as canon. */
static void
spec_ok(const char *spec, const char *host, int port, bool mx, bool ip, const char *canon)
{
    struct nexthop nh;
    char reason[256] = "", buf[300];

    if (nexthop_parse(spec, &nh, reason, sizeof(reason)) < 0)
        fail_msg("%s: %s", spec, reason);
    assert_string_equal(nh.host, host);
    assert_int_equal(nh.port, port);
    assert_int_equal(nh.mx, mx);
    assert_int_equal(nh.ip, ip);
    assert_int_equal(nexthop_format(&nh, buf, sizeof(buf)), 0);
    assert_string_equal(buf, canon);
}

/* spec_bad - spec is refused with reason want. */
static void
spec_bad(const char *spec, const char *want)
{
    struct nexthop nh;
    char reason[256] = "";

    assert_int_equal(nexthop_parse(spec, &nh, reason, sizeof(reason)), -1);
    assert_string_equal(reason, want);
}

static void
test_parse(void **state)
{
    spec_ok("relay.example.org", "relay.example.org", 0, true, false, "relay.example.org");
    spec_ok("Relay.Example.ORG:587", "relay.example.org", 587, true, false,
            "relay.example.org:587");
    spec_ok("[relay.example.org]", "relay.example.org", 0, false, false, "[relay.example.org]");
    spec_ok("[relay.example.org]:2525", "relay.example.org", 2525, false, false,
            "[relay.example.org]:2525");
    spec_ok("192.0.2.25", "192.0.2.25", 0, false, true, "[192.0.2.25]");
    spec_ok("192.0.2.25:25", "192.0.2.25", 25, false, true, "[192.0.2.25]:25");
    spec_ok("[192.0.2.25]:65535", "192.0.2.25", 65535, false, true, "[192.0.2.25]:65535");
    spec_ok("[::1]:2525", "::1", 2525, false, true, "[::1]:2525");
    spec_ok("[2001:db8::25]", "2001:db8::25", 0, false, true, "[2001:db8::25]");
    spec_ok("mx_1.example", "mx_1.example", 0, true, false, "mx_1.example");

    spec_bad("", "'' has no valid host");
    spec_bad(":25", "':25' has no valid host");
    spec_bad("[]:25", "'[]:25' has no valid host");
    spec_bad("[relay.example.org", "'[relay.example.org' is not HOST, HOST:PORT, [HOST] or "
                                   "[HOST]:PORT");
    spec_bad("[relay]x", "'[relay]x' is not HOST, HOST:PORT, [HOST] or [HOST]:PORT");
    spec_bad("relay:0", "'relay:0': '0' is not a port (1 to 65535)");
    spec_bad("relay:65536", "'relay:65536': '65536' is not a port (1 to 65535)");
    spec_bad("relay:", "'relay:': '' is not a port (1 to 65535)");
    spec_bad("relay:25x", "'relay:25x': '25x' is not a port (1 to 65535)");
    spec_bad("[relay]:", "'[relay]:': '' is not a port (1 to 65535)");
    spec_bad("::1", "'::1': an IPv6 address goes in brackets: [ADDRESS]:PORT");
    spec_bad("relay..example", "'relay..example': 'relay..example' is not a host name or IP "
                               "address");
    spec_bad("relay.example.", "'relay.example.': 'relay.example.' is not a host name or IP "
                               "address");
    spec_bad("re/lay", "'re/lay': 're/lay' is not a host name or IP address");
    spec_bad("[not an ip]", "'[not an ip]': 'not an ip' is not a host name or IP address");
    spec_bad("r\xc3\xa9lay", "'r\xc3\xa9lay': 'r\xc3\xa9lay' is not a host name or IP address");
}

/* A name longer than NEXTHOP_HOST_MAX, a label longer than 63 octets. */
static void
test_parse_lengths(void **state)
{
    char spec[600], reason[512];
    struct nexthop nh;

    memset(spec, 'a', 64);
    strcpy(spec + 64, ".example");
    assert_int_equal(nexthop_parse(spec, &nh, reason, sizeof(reason)), -1);
    spec[1] = '.'; /* now a one-octet label and a 62-octet one */
    assert_int_equal(nexthop_parse(spec, &nh, reason, sizeof(reason)), 0);
    for (int i = 0; i < 300; i++)
        spec[i] = i % 2 ? '.' : 'a';
    spec[299] = 'a';
    spec[300] = '\0';
    assert_int_equal(nexthop_parse(spec, &nh, reason, sizeof(reason)), -1);
    if (strstr(reason, "has no valid host") == NULL)
        fail_msg("%s", reason);
}

static void
test_settings_load(void **state)
{
    struct conf *c = uu_conf_ok("smarthost Relay.Example:587\n"
                                "gateway Example.ORG [10.0.0.1]:2525\n"
                                "gateway\t.sub.example.org \t  mx.example.net\n"
                                "gateway b\xc3\xbc"
                                "cher.example 10.0.0.2\n"
                                "smarthost_tls require\n"
                                "smarthost_auth  relay-user   /etc/dmail/relay.pw\n");
    char buf[512];

    assert_string_equal(c->smarthost, "relay.example:587");
    assert_int_equal(c->gateway.n, 3);
    assert_string_equal(c->gateway.v[0], "example.org [10.0.0.1]:2525");
    assert_string_equal(c->gateway.v[1], ".sub.example.org mx.example.net");
    assert_string_equal(c->gateway.v[2], "xn--bcher-kva.example [10.0.0.2]");
    assert_int_equal(c->smarthost_tls, SMARTHOST_TLS_REQUIRE);
    assert_string_equal(c->smarthost_auth, "relay-user /etc/dmail/relay.pw");
    assert_int_equal(conf_format(c, CONF_gateway, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "example.org [10.0.0.1]:2525,.sub.example.org mx.example.net,"
                             "xn--bcher-kva.example [10.0.0.2]");
    conf_unref(&c);

    c = uu_conf_ok("");
    assert_string_equal(c->smarthost, "");
    assert_int_equal(c->gateway.n, 0);
    assert_int_equal(c->smarthost_tls, SMARTHOST_TLS_MAY);
    assert_string_equal(c->smarthost_auth, "");
    conf_unref(&c);
}

static void
test_settings_refused(void **state)
{
    uu_conf_errs(
        "smarthost relay:99999\n",
        (const char *const[]){
            "t.conf:1: smarthost: 'relay:99999': '99999' is not a port (1 to 65535)", NULL});
    uu_conf_errs(
        "gateway example.org\n"
        "gateway example.org relay extra\n"
        "gateway ..example.org relay\n"
        "gateway ex!ample.org relay\n"
        "gateway example.org [relay\n"
        "gateway example.org relay:0\n"
        "gateway a.example [10.0.0.1]\n"
        "gateway A.EXAMPLE relay\n"
        "gateway .a.example relay\n",
        (const char *const[]){
            "t.conf:1: gateway: 'example.org' is not DOMAIN HOST[:PORT] (or .DOMAIN, [HOST])",
            "t.conf:2: gateway: 'example.org relay extra' is not DOMAIN HOST[:PORT] (or "
            ".DOMAIN, [HOST])",
            "t.conf:3: gateway: '.example.org' is not a valid domain",
            "t.conf:4: gateway: 'ex!ample.org' is not a valid domain",
            "t.conf:5: gateway: '[relay' is not HOST, HOST:PORT, [HOST] or [HOST]:PORT",
            "t.conf:6: gateway: 'relay:0': '0' is not a port (1 to 65535)",
            "t.conf:8: gateway: a.example is given twice (first: a.example [10.0.0.1])", NULL});
    uu_conf_errs("smarthost_tls always\n",
                 (const char *const[]){"t.conf:1: smarthost_tls: 'always' is not one of "
                                       "may|require",
                                       NULL});
    uu_conf_errs("smarthost_auth relay-user\n"
                 "smarthost_auth relay-user pw.txt\n"
                 "smarthost_auth relay-user /a /b\n",
                 (const char *const[]){
                     "t.conf:1: smarthost_auth: 'relay-user' is not USER FILE (the user, then "
                     "the password file)",
                     "t.conf:2: smarthost_auth: the password file 'pw.txt' is not an absolute "
                     "path",
                     "t.conf:3: smarthost_auth: 'relay-user /a /b' is not USER FILE (the user, "
                     "then the password file)",
                     NULL});
}

/* route_is - nexthop_route(c, domain) is want (NULL: by MX). */
static void
route_is(const struct conf *c, const char *domain, const char *want)
{
    const char *got = nexthop_route(c, domain);

    if (want == NULL && got != NULL)
        fail_msg("%s: routed to %s, not by MX", domain, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("%s: routed to %s, not %s", domain, got ? got : "(MX)", want);
}

static void
test_route(void **state)
{
    struct conf *c = uu_conf_ok("gateway example.org [10.0.0.1]\n"
                                "gateway .example.org [10.0.0.2]\n"
                                "gateway .deep.example.org [10.0.0.3]\n"
                                "gateway only.example.net [10.0.0.4]\n");

    route_is(c, "example.org", "[10.0.0.1]");
    route_is(c, "EXAMPLE.Org", "[10.0.0.1]");
    route_is(c, "a.example.org", "[10.0.0.2]");
    route_is(c, "a.b.example.org", "[10.0.0.2]");
    route_is(c, "deep.example.org", "[10.0.0.2]"); /* .deep.x is for its subdomains only */
    route_is(c, "x.deep.example.org", "[10.0.0.3]");
    route_is(c, "only.example.net", "[10.0.0.4]");
    route_is(c, "sub.only.example.net", NULL); /* exact entries match no subdomain */
    route_is(c, "example.net", NULL);
    route_is(c, "notexample.org", NULL);
    route_is(c, "org", NULL);
    route_is(c, "", NULL);
    route_is(c, "[192.0.2.1]", NULL);
    conf_unref(&c);

    c = uu_conf_ok("smarthost [10.9.9.9]:587\ngateway example.org relay.example.org\n");
    route_is(c, "example.org", "relay.example.org"); /* gateway wins over smarthost */
    route_is(c, "a.example.org", "[10.9.9.9]:587");
    route_is(c, "example.com", "[10.9.9.9]:587");
    conf_unref(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_parse_lengths),
        cmocka_unit_test(test_settings_load), cmocka_unit_test(test_settings_refused),
        cmocka_unit_test(test_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
