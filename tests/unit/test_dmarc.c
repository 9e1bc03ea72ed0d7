/*
 * test_dmarc - dlist's reading of one DMARC TXT record (dlist/dmarc.c dmarc_record,
 * RFC 7489 6.3/6.4): v=DMARC1 first and exact, p= and sp= in any case and spacing, sp=
 * only for a subdomain, a record without a usable p= is no record, and a policy asked
 * before dmarc_start is a temporary failure (no resolver).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../dlist/dmarc.h"

static void
test_record(void **state)
{
    (void)state;
    assert_int_equal(dmarc_record("v=DMARC1; p=reject", false), DMARC_REJECT);
    assert_int_equal(dmarc_record("v=DMARC1;p=quarantine;pct=50", false), DMARC_QUARANTINE);
    assert_int_equal(dmarc_record("v=DMARC1 ; P = None ; rua=mailto:a@b", false), DMARC_NONE);
    assert_int_equal(dmarc_record("v=DMARC1; p=reject; sp=none", true), DMARC_NONE);
    assert_int_equal(dmarc_record("v=DMARC1; p=reject; sp=none", false), DMARC_REJECT);
    assert_int_equal(dmarc_record("v=DMARC1; p=none; sp=quarantine", true), DMARC_QUARANTINE);
    assert_int_equal(dmarc_record("v=DMARC1; p=quarantine", true), DMARC_QUARANTINE);
    assert_int_equal(dmarc_record("v=DMARC1; p=reject;", false), DMARC_REJECT);
    /* not records, or no usable policy */
    assert_int_equal(dmarc_record("p=reject; v=DMARC1", false), -1);
    assert_int_equal(dmarc_record("v=dmarc1; p=reject", false), -1);
    assert_int_equal(dmarc_record("v=DMARC10; p=reject", false), -1);
    assert_int_equal(dmarc_record("v=DMARC1", false), -1);
    assert_int_equal(dmarc_record("v=DMARC1; p=maybe", false), -1);
    assert_int_equal(dmarc_record("v=DMARC1; p=reject; sp=bogus", true), -1);
    assert_int_equal(dmarc_record("", false), -1);
    assert_int_equal(dmarc_record("v=DMARC1; p=rejectxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false),
                     -1);
}

static void
test_no_resolver(void **state)
{
    (void)state;
    assert_int_equal(dmarc_policy("example.org"), DMARC_TEMPFAIL);
    assert_string_equal(dmarc_policy_name(DMARC_REJECT), "reject");
    assert_int_equal(dmarc_lookup_wanted(NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_no_resolver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
