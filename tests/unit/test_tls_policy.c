/*
 * test_tls_policy - dsmtp/tls_policy: the tls_policy table as dmail.conf loads it
 * (normalised lines), the entry a destination gets (exact, nearest ".parent", the
 * smarthost_tls and plain defaults), and smtpc's policy and name for each level.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "../../dsmtp/tls_policy.h"
#include "unit_util.h"

/* test_lookup - exact entry, then the nearest parent's, then the defaults. */
static void
test_lookup(void **state)
{
    struct conf *c = uu_conf_ok("tls_policy Example.ORG verify match=MX.example.org\n"
                                "tls_policy .example.org   encrypt\n"
                                "tls_policy .org none\n"
                                "tls_policy relay.test dane-only\n"
                                "smarthost_tls require\n");
    struct tlspol p;
    const char *name;

    (void)state;
    assert_string_equal(c->tls_policy.v[0], "example.org verify match=mx.example.org");
    tlspol_for(c, "example.org", false, &p);
    assert_int_equal(p.level, TLSPOL_VERIFY);
    assert_string_equal(p.match, "mx.example.org");
    assert_string_equal(p.source, "tls_policy");
    assert_int_equal(tlspol_smtpc(&p, "mx1.example.org", "example.org", &name), SMTPC_TLS_VERIFY);
    assert_string_equal(name, "mx.example.org");
    tlspol_for(c, "a.b.example.org", false, &p);
    assert_int_equal(p.level, TLSPOL_ENCRYPT);
    assert_true(tlspol_mandatory(&p));
    assert_int_equal(tlspol_smtpc(&p, "mx", "a.b.example.org", &name), SMTPC_TLS_REQUIRE);
    tlspol_for(c, "other.org", false, &p);
    assert_int_equal(p.level, TLSPOL_NONE);
    assert_false(tlspol_mandatory(&p));
    tlspol_for(c, "example.net", false, &p);
    assert_int_equal(p.level, TLSPOL_MAY);
    assert_string_equal(p.source, "default");
    tlspol_for(c, "smart.example.net", true, &p);
    assert_int_equal(p.level, TLSPOL_ENCRYPT);
    assert_string_equal(p.source, "smarthost_tls");
    tlspol_for(c, "relay.test", true, &p);
    assert_int_equal(p.level, TLSPOL_DANE_ONLY);
    conf_unref(&c);
}

/* test_levels - smtpc's policy and the name verified, level by level. */
static void
test_levels(void **state)
{
    struct tlspol p = {0};
    const char *name;

    (void)state;
    p.level = TLSPOL_NONE;
    assert_int_equal(tlspol_smtpc(&p, "mx.d", "d", &name), SMTPC_TLS_NONE);
    p.level = TLSPOL_MAY;
    assert_int_equal(tlspol_smtpc(&p, "mx.d", "d", &name), SMTPC_TLS_MAY);
    p.level = TLSPOL_DANE;
    assert_int_equal(tlspol_smtpc(&p, "mx.d", "d", &name), SMTPC_TLS_MAY);
    assert_false(tlspol_mandatory(&p));
    p.level = TLSPOL_VERIFY;
    assert_int_equal(tlspol_smtpc(&p, "mx.d", "d", &name), SMTPC_TLS_VERIFY);
    assert_string_equal(name, "mx.d");
    p.level = TLSPOL_SECURE;
    assert_int_equal(tlspol_smtpc(&p, "mx.d", "d", &name), SMTPC_TLS_VERIFY);
    assert_string_equal(name, "d");
    assert_string_equal(tlspol_level_name(TLSPOL_DANE_ONLY), "dane-only");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lookup),
                                       cmocka_unit_test(test_levels)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
