/*
 * test_members - a list's subscribers (dlist/members.c): add, remove and look up in any
 * case, the file's parse (comments, bad and repeated lines with file:line), the atomic
 * save and load back, and 100,000 subscribers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "conf.h"
#include "../../dlist/members.h"
#include "xmem.h"
#include "unit_util.h"

static void
test_add_remove_has(void **state)
{
    struct members m = {0};
    char err[200];

    (void)state;
    assert_int_equal(members_add(&m, "Bob@Example.ORG", err, sizeof(err)), 1);
    assert_int_equal(members_add(&m, "bob@example.org", err, sizeof(err)), 0);
    assert_int_equal(members_add(&m, "alice@example.net", err, sizeof(err)), 1);
    assert_int_equal(members_add(&m, "zed@b.example", err, sizeof(err)), 1);
    assert_int_equal(members_add(&m, "nobody", err, sizeof(err)), -1);
    assert_string_equal(err, "missing @domain");
    assert_int_equal(members_add(&m, "x@[127.0.0.1]", err, sizeof(err)), -1);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.v[0], "alice@example.net");
    assert_string_equal(m.v[1], "Bob@example.org"); /* the first spelling, domain lower */
    assert_string_equal(m.v[2], "zed@b.example");
    assert_true(members_has(&m, "BOB@example.org"));
    assert_false(members_has(&m, "bobby@example.org"));
    assert_false(members_has(&m, "not an address"));
    assert_int_equal(members_remove(&m, "bob@EXAMPLE.org"), 1);
    assert_int_equal(members_remove(&m, "bob@example.org"), 0);
    assert_false(members_has(&m, "bob@example.org"));
    assert_int_equal(m.n, 2);
    members_free(&m);
    assert_int_equal(m.n, 0);
}

static void
test_parse(void **state)
{
    static const char text[] = "# talk's members\n"
                               "  carol@example.org  \r\n"
                               "\n"
                               "broken\n"
                               "CAROL@example.org\n"
                               "dave@example.org";
    struct members m = {0};
    struct conf_diag d = {0};

    (void)state;
    members_parse(&m, "members", text, sizeof(text) - 1, &d);
    uu_diag_print(&d);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.v[0], "carol@example.org");
    assert_string_equal(m.v[1], "dave@example.org");
    assert_true(uu_diag_has(&d, "members:4: missing @domain", false));
    assert_true(uu_diag_has(&d, "members:5: warning: CAROL@example.org is listed already", false));
    assert_int_equal(d.n, 2);
    members_free(&m);
    conf_diag_free(&d);
}

static void
test_save_load(void **state)
{
    char *dir = uu_tmpdir("members"), *path = uu_path(dir, "talk/members"), *text;
    struct members m = {0}, back = {0};
    char err[200];

    (void)state;
    assert_int_equal(members_load(&m, path, NULL), 0); /* missing: empty */
    assert_int_equal(m.n, 0);
    assert_int_equal(members_save(&m, path), 0);
    text = uu_read(path, NULL);
    assert_string_equal(text, "");
    free(text);
    members_add(&m, "b@example.org", err, sizeof(err));
    members_add(&m, "a@example.org", err, sizeof(err));
    assert_int_equal(members_save(&m, path), 0);
    text = uu_read(path, NULL);
    assert_string_equal(text, "a@example.org\nb@example.org\n");
    free(text);
    assert_int_equal(members_load(&back, path, NULL), 0);
    assert_int_equal(back.n, 2);
    assert_true(members_has(&back, "B@example.org"));
    assert_int_equal(uu_count_entries(dir), 1); /* no temp file left beside it */
    members_free(&m);
    members_free(&back);
    free(path);
    uu_tmpdir_free(dir);
}

static void
test_100000(void **state)
{
    struct members m = {0};
    char addr[64], err[200];

    (void)state;
    for (int i = 0; i < 100000; i++) {
        snprintf(addr, sizeof(addr), "user%d@remote%d.example", (i * 7919) % 100000, i % 10);
        assert_int_equal(members_add(&m, addr, err, sizeof(err)) >= 0, 1);
    }
    assert_true(m.n > 10000);
    for (size_t i = 1; i < m.n; i++)
        assert_true(strcasecmp(m.v[i - 1], m.v[i]) < 0);
    members_free(&m);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_add_remove_has), cmocka_unit_test(test_parse),
        cmocka_unit_test(test_save_load), cmocka_unit_test(test_100000))
