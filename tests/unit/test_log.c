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

/* ---- log_escape: one test case per line of this table ---- */

static const struct esc {
    const char *name;
    const char *src;
    size_t len, dstlen, max;
    const char *want;
} escapes[] = {
    {"escape plain", "hello", 5, 64, 100, "hello"},
    {"escape empty", "", 0, 64, 100, ""},
    {"escape printable edges", " ~", 2, 64, 100, " ~"},
    {"escape only len bytes", "hello world", 5, 64, 100, "hello"},
    {"escape backslash", "a\\b", 3, 64, 100, "a\\\\b"},
    {"escape CR LF", "MAIL\r\n", 6, 64, 100, "MAIL\\x0d\\x0a"},
    {"escape NUL", "a\0b", 3, 64, 100, "a\\x00b"},
    {"escape DEL and high bytes", "\x7f\x80\xff\x1f", 4, 64, 100, "\\x7f\\x80\\xff\\x1f"},
    {"escape tab", "\t", 1, 64, 100, "\\x09"},
    {"cut by max", "abcdef", 6, 64, 3, "abc..."},
    {"max exactly", "abcdef", 6, 64, 6, "abcdef"},
    {"max 0", "abcdef", 6, 64, 0, "..."},
    {"max counts input bytes", "\x01\x02\x03", 3, 64, 2, "\\x01\\x02..."},
    {"dst exactly fits", "abc", 3, 4, 100, "abc"},
    {"dst exactly fits an escape", "ab\x01", 3, 7, 100, "ab\\x01"},
    {"cut by dst, room for ...", "abcdefghijkl", 12, 8, 100, "abcd..."},
    {"cut by dst before an escape", "ab\x01", 3, 6, 100, "ab..."},
    {"an escape is never split", "abc\x01xyz", 7, 9, 100, "abc..."},
    {"a backslash escape is never split", "ab\\cdef", 7, 8, 100, "ab\\\\..."},
    {"a backslash escape that fits", "ab\\cdef", 7, 9, 100, "ab\\\\cdef"},
    {"dst of 4", "abcdef", 6, 4, 100, "..."},
    {"dst of 2", "abcdef", 6, 2, 100, "."},
    {"dst of 1", "abcdef", 6, 1, 100, ""},
};

static void
test_escape(void **state)
{
    const struct esc *e = *state;
    char buf[64];

    assert_true(e->dstlen <= sizeof(buf));
    const char *r = log_escape(buf, e->dstlen, e->src, e->len, e->max);
    assert_ptr_equal(r, buf);
    assert_true(strlen(buf) < e->dstlen);
    assert_string_equal(buf, e->want);
}

/* a buffer of 0 bytes: nothing written */
static void
test_escape_no_room(void **state)
{
    char buf[4] = "X";

    log_escape(buf, 0, "abc", 3, 100);
    assert_int_equal(buf[0], 'X');
}

static void
test_levels(void **state)
{
    static const char *const names[] = {
        [LOGLVL_ERROR] = "error",
        [LOGLVL_WARN] = "warn",
        [LOGLVL_INFO] = "info",
        [LOGLVL_DEBUG] = "debug",
    };
    UU_NAMES_ARE(log_level_name, int, names);
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

/* a log file in a scratch directory: the fixture of the file tests, the log opened on it
 * as program "tlog" (log_init("tlog", 0)); the teardown logs to stderr again */
struct logfx {
    char dir[UU_DIR_MAX];
    char path[UU_DIR_MAX + 16];
};

static int
logfile_setup(void **state)
{
    if (uu_setup_dir(state, sizeof(struct logfx), "test_log") < 0)
        return -1;
    struct logfx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/test.log", f->dir);
    log_init("tlog", 0);
    return log_open(f->path);
}

static int
logfile_teardown(void **state)
{
    log_init("tlog", 1);
    log_open(NULL);
    return uu_teardown_dir(state);
}

static void
test_file_lines(void **state)
{
    struct logfx *f = *state;
    static const char *const want_lines[] = {
        "info: hello 42",
        "warn: open x: No such file or directory",
        "error: two lines ",
        "info: 000000001234abcd cmd=EHLO",
    };

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

    char *text = uu_read(f->path, NULL);
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
        assert_true(lines < 4);
        assert_string_equal(rest + strlen(want), want_lines[lines]);
    }
    assert_int_equal(lines, 4);
    free(want);
    free(text);
}

static void
test_long_line(void **state)
{
    struct logfx *f = *state;
    char *big = xmalloc(10000);

    memset(big, 'x', 9999);
    big[9999] = '\0';
    log_info("%s", big);
    log_info("after");
    char *text = uu_read(f->path, NULL);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_true(nl - text < 4096); /* bounded, and still one line */
    assert_non_null(strstr(nl + 1, "info: after\n"));
    free(text);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_no_room),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_sid),
        cmocka_unit_test_setup_teardown(test_file_lines, logfile_setup, logfile_teardown),
        cmocka_unit_test_setup_teardown(test_long_line, logfile_setup, logfile_teardown),
    };
    return UU_RUN_CASES(tests, test_escape, escapes);
}
