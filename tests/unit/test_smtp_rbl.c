/*
 * test_smtp_rbl - DNSBL query names (RFC 5782 2.1, 2.4): IPv4 by octets, IPv6 by nibbles.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../dsmtp/rbl.h"
#include "unit_util.h"

static void
test_names(void **state)
{
    char buf[256];

    assert_int_equal(rbl_name("192.0.2.99", "bl.example", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "99.2.0.192.bl.example");
    assert_int_equal(rbl_name("::ffff:192.0.2.1", "bl.example", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "1.2.0.192.bl.example");
    assert_int_equal(rbl_name("2001:db8:1:2:3:4:567:89ab", "bl.example", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2."
                             "bl.example");
    assert_int_equal(rbl_name("::1", "z", buf, sizeof(buf)), 0);
    assert_int_equal(strlen(buf), 64 + 1);
    assert_int_equal(rbl_name("not-an-ip", "z", buf, sizeof(buf)), -1);
    assert_int_equal(rbl_name("192.0.2.1", "bl.example", buf, 10), -1);
    assert_int_equal(rbl_name("::1", "bl.example", buf, 40), -1);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_names))
