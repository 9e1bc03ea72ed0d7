/*
 * test_popauth - the POP-before-SMTP file (common/mail/popauth.c): what is noted is found
 * within the window and not after it, one line per address (the last login), addresses
 * normalised (IPv4-mapped as IPv4), bad lines skipped, the file bounded, no file = none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "popauth.h"
#include "unit_util.h"

static void
test_record_and_window(void **state)
{
    char *dir = uu_tmpdir("popauth"), *path = uu_path(dir, "popauth"), *text;
    time_t now = 1800000000;

    assert_int_equal(popauth_recent(dir, "192.0.2.7", now, 600), 0); /* no file */
    assert_int_equal(popauth_record(dir, "192.0.2.7", now - 100, 600), 0);
    assert_int_equal(popauth_record(dir, "2001:db8::1", now - 50, 600), 0);
    assert_int_equal(popauth_recent(dir, "192.0.2.7", now, 600), 1);
    assert_int_equal(popauth_recent(dir, "::ffff:192.0.2.7", now, 600), 1);
    assert_int_equal(popauth_recent(dir, "2001:DB8:0::1", now, 600), 1);
    assert_int_equal(popauth_recent(dir, "192.0.2.8", now, 600), 0);
    assert_int_equal(popauth_recent(dir, "192.0.2.7", now, 100), 0); /* window over */
    assert_int_equal(popauth_recent(dir, "192.0.2.7", now, 101), 1);
    assert_int_equal(popauth_recent(dir, "not an address", now, 600), 0);
    /* a new login replaces the address's line; old ones go */
    assert_int_equal(popauth_record(dir, "::ffff:192.0.2.7", now, 80), 0);
    text = uu_read(path, NULL);
    assert_string_equal(text, "2001:db8::1 1799999950\n192.0.2.7 1800000000\n");
    free(text);
    assert_int_equal(popauth_record(dir, "192.0.2.9", now + 60, 80), 0);
    text = uu_read(path, NULL);
    assert_string_equal(text, "192.0.2.7 1800000000\n192.0.2.9 1800000060\n");
    free(text);
    assert_int_equal(popauth_record(dir, "x", now, 80), -1);
    free(path);
    uu_tmpdir_free(dir);
}

static void
test_bad_lines_and_bound(void **state)
{
    char *dir = uu_tmpdir("popauth"), *path = uu_path(dir, "popauth"), *text;
    time_t now = 1800000000;
    FILE *f;
    size_t len;

    uu_write(path, "garbage\n192.0.2.1\n192.0.2.2 12x\n 192.0.2.3 1800000000\n"
                   "192.0.2.4 1800000000\n");
    assert_int_equal(popauth_recent(dir, "192.0.2.4", now, 600), 1);
    assert_int_equal(popauth_recent(dir, "192.0.2.2", now, 600), 0);
    assert_int_equal(popauth_recent(dir, "192.0.2.3", now, 600), 0);
    /* a login far in the future (a clock jump) does not count */
    uu_write(path, "192.0.2.5 1900000000\n");
    assert_int_equal(popauth_recent(dir, "192.0.2.5", now, 600), 0);
    /* full: the oldest goes */
    f = fopen(path, "w");
    for (int i = 0; i < POPAUTH_MAX; i++)
        fprintf(f, "10.%d.%d.%d %lld\n", i >> 16, (i >> 8) & 255, i & 255, (long long)now - 500);
    fclose(f);
    assert_int_equal(popauth_record(dir, "192.0.2.6", now, 600), 0);
    text = uu_read(path, &len);
    assert_null(strstr(text, "10.0.0.0 "));
    assert_non_null(strstr(text, "10.0.0.1 "));
    assert_non_null(strstr(text, "\n192.0.2.6 1800000000\n"));
    free(text);
    assert_int_equal(popauth_recent(dir, "192.0.2.6", now, 600), 1);
    assert_int_equal(popauth_recent(dir, "10.0.0.2", now, 600), 1);
    free(path);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_record_and_window),
        cmocka_unit_test(test_bad_lines_and_bound))
