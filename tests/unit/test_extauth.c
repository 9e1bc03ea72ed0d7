/*
 * test_extauth - the external-authentication line protocol (common/mail/extauth_proto.c)
 * and the drop-path check (extauth_drop_allowed): answers of every kind, info fields,
 * malformed lines, request lines and the words that cannot be sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "extauth.h"
#include "extauth_proto.h"

static enum extauth_kind
parse(const char *s, struct extauth_answer *a)
{
    return extauth_parse(s, strlen(s), a);
}

static void
test_parse_ok(void **state)
{
    struct extauth_answer a;

    (void)state;
    assert_int_equal(parse("+OK alice /var/spool/dmail/drop/alice", &a), EA_OK);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.drop, "/var/spool/dmail/drop/alice");
    assert_int_equal(a.uid, 0);
    assert_string_equal(a.fwd, "");
    assert_int_equal(parse("+OK bob@x.example /d/bob 1001 name=\"Bob B\" "
                           "fwd=\"bob@else.example,$user\" quota=5",
                           &a),
                     EA_OK);
    assert_string_equal(a.user, "bob@x.example");
    assert_int_equal(a.uid, 1001);
    assert_string_equal(a.fwd, "bob@else.example,$user");
    assert_int_equal(parse("+OK  carol   /d/c  0  ", &a), EA_OK);
    assert_string_equal(a.drop, "/d/c");
}

static void
test_parse_other_kinds(void **state)
{
    struct extauth_answer a;

    (void)state;
    assert_int_equal(parse("-ERR no such user", &a), EA_ERR);
    assert_string_equal(a.reason, "no such user");
    assert_int_equal(parse("-ERR", &a), EA_ERR);
    assert_int_equal(parse("-DEAD ldap\x01 down", &a), EA_DEAD);
    assert_string_equal(a.reason, "ldap? down");
    assert_int_equal(parse("+DATA item 1", &a), EA_DATA);
    assert_int_equal(parse("+DATA", &a), EA_DATA);
}

static void
test_parse_bad(void **state)
{
    struct extauth_answer a;
    static const char *const bad[] = {
        "",
        "+OK",
        "+OK alice",
        "+OKalice /d",
        "-ERRORS",
        "+DATAX",
        "hello",
        "+OK alice /d x",
        "+OK alice /d -1",
        "+OK alice /d 0 fwd=\"unterminated",
        "+OK alice /d 0 =\"x\"",
        "+OK alice /d 0 novalue",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &a), EA_BAD);
        assert_string_equal(a.user, "");
    }
    assert_int_equal(extauth_parse("+OK a /d\0x", 10, &a), EA_BAD); /* NUL inside */
    char big[EXTAUTH_LINE_MAX];
    memset(big, 'u', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "+OK ", 4);
    assert_int_equal(parse(big, &a), EA_BAD); /* a user longer than the field */
}

static void
test_format(void **state)
{
    char buf[200];

    (void)state;
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "s3cret", "192.0.2.1"), 29);
    assert_string_equal(buf, "check alice s3cret 192.0.2.1\n");
    assert_true(extauth_format_check(buf, sizeof buf, "alice", "s3cret", NULL) > 0);
    assert_string_equal(buf, "check alice s3cret\n");
    assert_true(extauth_format_lookup(buf, sizeof buf, "bob@x.example") > 0);
    assert_string_equal(buf, "lookup bob@x.example\n");
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "two words", NULL), -1);
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "a\nb", NULL), -1);
    assert_int_equal(extauth_format_check(buf, sizeof buf, "", "x", NULL), -1);
    assert_int_equal(extauth_format_lookup(buf, sizeof buf, "a\rb"), -1);
    assert_int_equal(extauth_format_lookup(buf, 8, "toolongname"), -1);
}

static void
test_drop_allowed(void **state)
{
    struct conf cf;

    (void)state;
    memset(&cf, 0, sizeof cf);
    cf.drop_path = (char *)"/var/spool/dmail/drop/";
    cf.mail_spool = (char *)"/var/mail";
    assert_true(extauth_drop_allowed(&cf, "/var/spool/dmail/drop/alice"));
    assert_true(extauth_drop_allowed(&cf, "/var/spool/dmail/drop/a/l/alice"));
    assert_true(extauth_drop_allowed(&cf, "/var/mail/bob"));
    assert_false(extauth_drop_allowed(&cf, "/var/mailx/bob"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/../../etc/passwd"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/x/.."));
    assert_false(extauth_drop_allowed(&cf, "/var/mail//x"));
    assert_false(extauth_drop_allowed(&cf, "var/mail/x"));
    assert_false(extauth_drop_allowed(&cf, "/etc/passwd"));
    assert_false(extauth_drop_allowed(&cf, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),     cmocka_unit_test(test_parse_other_kinds),
        cmocka_unit_test(test_parse_bad),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_drop_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
