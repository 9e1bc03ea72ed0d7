/*
 * test_log - log_escape cutting and escaping, levels, line format, session ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "file.h"
#include "log.h"
#include "xmem.h"
#include "unit_util.h"

/* esc - log_escape of a C string literal with explicit length. */
static const char *
esc(char *dst, size_t dstlen, const char *src, size_t len, size_t max)
{
    const char *r = log_escape(dst, dstlen, src, len, max);
    assert_ptr_equal(r, dst);
    assert_true(strlen(dst) < dstlen);
    return r;
}

static void
test_escape_plain(void **state)
{
    char buf[64];
    assert_string_equal(esc(buf, sizeof(buf), "hello", 5, 100), "hello");
    assert_string_equal(esc(buf, sizeof(buf), "", 0, 100), "");
    assert_string_equal(esc(buf, sizeof(buf), " ~", 2, 100), " ~");
    /* only len bytes are looked at */
    assert_string_equal(esc(buf, sizeof(buf), "hello world", 5, 100), "hello");
}

static void
test_escape_bytes(void **state)
{
    char buf[64];
    assert_string_equal(esc(buf, sizeof(buf), "a\\b", 3, 100), "a\\\\b");
    assert_string_equal(esc(buf, sizeof(buf), "MAIL\r\n", 6, 100), "MAIL\\x0d\\x0a");
    assert_string_equal(esc(buf, sizeof(buf), "a\0b", 3, 100), "a\\x00b");
    assert_string_equal(esc(buf, sizeof(buf), "\x7f\x80\xff\x1f", 4, 100), "\\x7f\\x80\\xff\\x1f");
    assert_string_equal(esc(buf, sizeof(buf), "\t", 1, 100), "\\x09");
}

static void
test_escape_cut_by_max(void **state)
{
    char buf[64];
    assert_string_equal(esc(buf, sizeof(buf), "abcdef", 6, 3), "abc...");
    assert_string_equal(esc(buf, sizeof(buf), "abcdef", 6, 6), "abcdef");
    assert_string_equal(esc(buf, sizeof(buf), "abcdef", 6, 0), "...");
    assert_string_equal(esc(buf, sizeof(buf), "\x01\x02\x03", 3, 2), "\\x01\\x02...");
}

static void
test_escape_cut_by_dst(void **state)
{
    char buf[64];
    /* exactly fits: no cut */
    assert_string_equal(esc(buf, 4, "abc", 3, 100), "abc");
    assert_string_equal(esc(buf, 7, "ab\x01", 3, 100), "ab\\x01");
    /* does not fit: cut, with room for "..." */
    assert_string_equal(esc(buf, 8, "abcdefghijkl", 12, 100), "abcd...");
    assert_string_equal(esc(buf, 6, "ab\x01", 3, 100), "ab...");
    /* an escape is never split */
    assert_string_equal(esc(buf, 9, "abc\x01xyz", 7, 100), "abc...");
    assert_string_equal(esc(buf, 8, "ab\\cdef", 7, 100), "ab\\\\...");
    assert_string_equal(esc(buf, 9, "ab\\cdef", 7, 100), "ab\\\\cdef");
    /* tiny buffers */
    assert_string_equal(esc(buf, 4, "abcdef", 6, 100), "...");
    assert_string_equal(esc(buf, 2, "abcdef", 6, 100), ".");
    assert_string_equal(esc(buf, 1, "abcdef", 6, 100), "");
    buf[0] = 'X';
    log_escape(buf, 0, "abc", 3, 100);
    assert_int_equal(buf[0], 'X'); /* nothing written */
}

static void
test_levels(void **state)
{
    assert_string_equal(log_level_name(LOGLVL_ERROR), "error");
    assert_string_equal(log_level_name(LOGLVL_WARN), "warn");
    assert_string_equal(log_level_name(LOGLVL_INFO), "info");
    assert_string_equal(log_level_name(LOGLVL_DEBUG), "debug");
    assert_null(log_level_name(-1));
    assert_null(log_level_name(4));
    log_set_level(LOGLVL_DEBUG);
    assert_int_equal(log_get_level(), LOGLVL_DEBUG);
    log_set_level(99);
    assert_int_equal(log_get_level(), LOGLVL_DEBUG);
    log_set_level(-5);
    assert_int_equal(log_get_level(), LOGLVL_ERROR);
    log_set_level(LOGLVL_INFO);
}

static void
test_sid(void **state)
{
    uint64_t a = log_new_sid(), b = log_new_sid(), c = log_new_sid();
    assert_true(a != b && b != c && a != c);
    assert_true(b == a + 1 && c == b + 1);
}

static void
test_file_lines(void **state)
{
    char *dir = uu_tmpdir("test_log");
    char *path = xasprintf("%s/test.log", dir);
    char *text;
    size_t len;

    log_init("tlog", 0);
    assert_int_equal(log_open(path), 0);
    log_set_level(LOGLVL_INFO);
    log_info("hello %d", 42);
    log_debug("not shown");
    errno = ENOENT;
    log_warne("open %s", "x");
    assert_int_equal(errno, ENOENT); /* preserved */
    log_error("two\nlines\r");
    log_sess(LOGLVL_INFO, 0x1234abcdULL, "cmd=%s", "EHLO");
    log_set_level(LOGLVL_WARN);
    log_info("suppressed");
    log_set_level(LOGLVL_INFO);

    assert_int_equal(file_read_all(path, 1 << 20, &text, &len), 0);
    char *want = xasprintf("tlog[%ld]: ", (long)getpid());
    int lines = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"), lines++) {
        /* "YYYY-MM-DDTHH:MM:SS.mmm+zzzz prog[pid]: level: text" */
        assert_true(strlen(line) > 30);
        assert_int_equal(line[4], '-');
        assert_int_equal(line[10], 'T');
        assert_int_equal(line[19], '.');
        char *rest = strchr(line, ' ');
        assert_non_null(rest);
        rest++;
        assert_true(strncmp(rest, want, strlen(want)) == 0);
        rest += strlen(want);
        switch (lines) {
        case 0:
            assert_string_equal(rest, "info: hello 42");
            break;
        case 1:
            assert_string_equal(rest, "warn: open x: No such file or directory");
            break;
        case 2:
            assert_string_equal(rest, "error: two lines ");
            break;
        case 3:
            assert_string_equal(rest, "info: 000000001234abcd cmd=EHLO");
            break;
        }
    }
    assert_int_equal(lines, 4);
    free(want);
    free(text);
    uu_tmpdir_free(dir);
    free(path);
    log_init("tlog", 1);
    log_open(NULL);
}

static void
test_long_line(void **state)
{
    char *dir = uu_tmpdir("test_log");
    char *path = xasprintf("%s/long.log", dir);
    char *big = xmalloc(10000), *text;
    size_t len;

    memset(big, 'x', 9999);
    big[9999] = '\0';
    log_init("tlog", 0);
    assert_int_equal(log_open(path), 0);
    log_info("%s", big);
    log_info("after");
    assert_int_equal(file_read_all(path, 1 << 20, &text, &len), 0);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_true(nl - text < 4096); /* bounded, and still one line */
    assert_non_null(strstr(nl + 1, "info: after\n"));
    free(text);
    free(big);
    uu_tmpdir_free(dir);
    free(path);
    log_init("tlog", 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_plain),
        cmocka_unit_test(test_escape_bytes),
        cmocka_unit_test(test_escape_cut_by_max),
        cmocka_unit_test(test_escape_cut_by_dst),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_sid),
        cmocka_unit_test(test_file_lines),
        cmocka_unit_test(test_long_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
