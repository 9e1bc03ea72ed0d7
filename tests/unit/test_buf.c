/*
 * test_buf - capped buffers and the bounded line reader. Every line-reader case is fed
 * whole and byte by byte and must give the same events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "unit_util.h"

#define MAXEV 8

/* One expected outcome of buf_getline. */
struct ev {
    enum buf_line kind;
    const char *text; /* BUF_LINE: the line without its terminator */
    size_t len;
    bool crlf, bare_cr, nul;
};

struct linecase {
    const char *name;
    const char *in;
    size_t inlen; /* 0: strlen(in) */
    size_t limit;
    struct ev ev[MAXEV];
    size_t nev;
    size_t left;   /* unconsumed bytes at the end */
    bool skipping; /* reader state at the end */
};

#define L(t, c, b, z)                                                                              \
    {                                                                                              \
        BUF_LINE, t, sizeof(t) - 1, c, b, z                                                        \
    }
#define TOOLONG                                                                                    \
    {                                                                                              \
        BUF_TOOLONG, NULL, 0, false, false, false                                                  \
    }

static const struct linecase cases[] = {
    {"crlf", "HELO x\r\n", 0, 512, {L("HELO x", true, false, false)}, 1, 0, false},
    {"bare lf",
     "a\nb\r\n",
     0,
     512,
     {L("a", false, false, false), L("b", true, false, false)},
     2,
     0,
     false},
    {"empty lines",
     "\r\n\n",
     0,
     512,
     {L("", true, false, false), L("", false, false, false)},
     2,
     0,
     false},
    {"bare cr inside", "a\rb\r\n", 0, 512, {L("a\rb", true, true, false)}, 1, 0, false},
    {"cr cr lf", "a\r\r\n", 0, 512, {L("a\r", true, true, false)}, 1, 0, false},
    {"bare cr then lf", "a\rb\n", 0, 512, {L("a\rb", false, true, false)}, 1, 0, false},
    {"nul inside", "a\0b\r\n", 5, 512, {L("a\0b", true, false, true)}, 1, 0, false},
    {"partial", "abc", 0, 512, {{0}}, 0, 3, false},
    {"cr at end, lf not yet", "MAIL\r", 0, 512, {{0}}, 0, 5, false},
    {"line then partial", "x\r\nyz", 0, 512, {L("x", true, false, false)}, 1, 2, false},
    {"exact limit crlf", "123456\r\n", 0, 8, {L("123456", true, false, false)}, 1, 0, false},
    {"exact limit lf", "1234567\n", 0, 8, {L("1234567", false, false, false)}, 1, 0, false},
    {"exact limit minus one then partial", "1234567", 0, 8, {{0}}, 0, 7, false},
    {"limit+1 with lf",
     "1234567\r\nok\r\n",
     0,
     8,
     {TOOLONG, L("ok", true, false, false)},
     2,
     0,
     false},
    {"limit+1 bare lf",
     "12345678\nok\n",
     0,
     8,
     {TOOLONG, L("ok", false, false, false)},
     2,
     0,
     false},
    {"limit+1 before lf arrived", "12345678", 0, 8, {TOOLONG}, 1, 0, true},
    {"long, skip, then next good line",
     "123456789abcdefghij\r\nnext\r\n",
     0,
     8,
     {TOOLONG, L("next", true, false, false)},
     2,
     0,
     false},
    {"skipping still inside", "123456789abcdefghij", 0, 8, {TOOLONG}, 1, 0, true},
    {"two long lines",
     "123456789\r\nabcdefghij\nok\r\n",
     0,
     8,
     {TOOLONG, TOOLONG, L("ok", true, false, false)},
     3,
     0,
     false},
    {"good, long, good",
     "a\r\n0123456789\r\nb\r\nc",
     0,
     8,
     {L("a", true, false, false), TOOLONG, L("b", true, false, false)},
     3,
     1,
     false},
    {"long line of nuls",
     "\0\0\0\0\0\0\0\0\0\0\nz\n",
     13,
     8,
     {TOOLONG, L("z", false, false, false)},
     2,
     0,
     false},
};

/* run_events - drain r over b into got; returns the count. */
static size_t
run_events(struct buf *b, struct linereader *r, struct ev *got, size_t n, size_t max)
{
    for (;;) {
        char *line = NULL;
        size_t len = 0;
        struct buf_lineinfo info;
        memset(&info, 0xff, sizeof info);
        enum buf_line k = buf_getline(b, r, &line, &len, &info);
        if (k == BUF_NONE)
            return n;
        assert_true(n < max);
        got[n].kind = k;
        if (k == BUF_LINE) {
            /* NUL-terminated in place, and copied out before the buffer changes */
            assert_int_equal(line[len], '\0');
            char *copy = malloc(len + 1);
            assert_non_null(copy);
            memcpy(copy, line, len + 1);
            got[n].text = copy;
            got[n].len = len;
            got[n].crlf = info.crlf;
            got[n].bare_cr = info.bare_cr;
            got[n].nul = info.nul;
        } else {
            got[n].text = NULL;
        }
        n++;
    }
}

/* check_case - feed one case in chunks of step bytes (0 = whole) and compare. */
static void
check_case(const struct linecase *c, size_t step)
{
    struct buf b;
    struct linereader r;
    struct ev got[MAXEV + 4];
    size_t n = 0;
    size_t inlen = c->inlen ? c->inlen : strlen(c->in);

    buf_init(&b, 4096);
    linereader_init(&r, c->limit);
    if (step == 0)
        step = inlen;
    for (size_t i = 0; i < inlen; i += step) {
        size_t k = inlen - i < step ? inlen - i : step;
        assert_int_equal(buf_append(&b, c->in + i, k), 0);
        n = run_events(&b, &r, got, n, MAXEV + 4);
    }
    print_message("case '%s' step %zu\n", c->name, step);
    assert_int_equal(n, c->nev);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].kind, c->ev[i].kind);
        if (got[i].kind == BUF_LINE) {
            assert_int_equal(got[i].len, c->ev[i].len);
            assert_memory_equal(got[i].text, c->ev[i].text, c->ev[i].len);
            assert_int_equal(got[i].crlf, c->ev[i].crlf);
            assert_int_equal(got[i].bare_cr, c->ev[i].bare_cr);
            assert_int_equal(got[i].nul, c->ev[i].nul);
            free((void *)got[i].text);
        }
    }
    assert_int_equal(b.len, c->left);
    assert_int_equal(r.skipping, c->skipping);
    buf_free(&b);
}

/* test_line_case - one case of the table (a test each), appended in one piece, one byte
 * at a time, and in chunks of 2, 3 and 5 bytes. */
static void
test_line_case(void **state)
{
    static const size_t steps[] = {0, 1, 2, 3, 5};

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        check_case(*state, steps[i]);
}

/* test_toolong_once - a huge line reported once, however it arrives. */
static void
test_toolong_once(void **state)
{
    (void)state;
    struct buf b;
    struct linereader r;
    char chunk[100];
    int toolong = 0;
    char *line;
    size_t len;

    memset(chunk, 'x', sizeof chunk);
    buf_init(&b, 1000);
    linereader_init(&r, 512);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(buf_append(&b, chunk, sizeof chunk), 0);
        enum buf_line k;
        while ((k = buf_getline(&b, &r, &line, &len, NULL)) != BUF_NONE) {
            assert_int_equal(k, BUF_TOOLONG);
            toolong++;
        }
        assert_true(b.len <= 512);
    }
    assert_int_equal(toolong, 1);
    assert_int_equal(buf_append(&b, "x\r\nQUIT\r\n", 9), 0);
    assert_int_equal(buf_getline(&b, &r, &line, &len, NULL), BUF_LINE);
    assert_string_equal(line, "QUIT");
    assert_int_equal(buf_getline(&b, &r, &line, &len, NULL), BUF_NONE);
    buf_free(&b);
}

/* test_append_cap - buf_append refuses past the cap and adds nothing. */
static void
test_append_cap(void **state)
{
    (void)state;
    struct buf b;

    buf_init(&b, 10);
    assert_int_equal(buf_room(&b), 10);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    assert_int_equal(buf_append(&b, "ghijk", 5), -1);
    assert_int_equal(b.len, 6);
    assert_int_equal(buf_room(&b), 4);
    assert_int_equal(buf_append(&b, "ghij", 4), 0);
    assert_int_equal(buf_room(&b), 0);
    assert_int_equal(buf_append(&b, "k", 1), -1);
    assert_int_equal(buf_append(&b, "", 0), 0);
    buf_consume(&b, 3);
    assert_int_equal(buf_room(&b), 3);
    assert_int_equal(buf_append(&b, "klmn", 4), -1);
    assert_int_equal(buf_append(&b, "klm", 3), 0);
    assert_memory_equal(buf_peek(&b), "defghijklm", 10);
    assert_true(b.size <= b.cap + 1);
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    buf_reset(&b);
    assert_int_equal(buf_room(&b), 10);
    buf_free(&b);
    assert_null(b.data);
}

/* test_printf - formatted appends respect the cap. */
static void
test_printf(void **state)
{
    (void)state;
    struct buf b;

    buf_init(&b, 16);
    assert_int_equal(buf_printf(&b, "%d %s", 250, "OK"), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(buf_peek(&b), "250 OK", 6);
    assert_int_equal(buf_printf(&b, "%s", "0123456789x"), -1);
    assert_int_equal(b.len, 6);
    assert_int_equal(buf_printf(&b, "%s", "0123456789"), 0);
    assert_int_equal(b.len, 16);
    assert_memory_equal(buf_peek(&b), "250 OK0123456789", 16);
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(buf_printf(&b, "x"), -1);
    buf_free(&b);
}

/* test_compaction_model - random appends and consumes against a flat model. */
static void
test_compaction_model(void **state)
{
    (void)state;
    struct buf b;
    static char model[5000];
    size_t mlen = 0;
    uint32_t seed = 12345;

    buf_init(&b, sizeof model);
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 700;
        if ((seed >> 8) & 1) {
            char tmp[700];
            for (size_t j = 0; j < n; j++)
                tmp[j] = (char)(i + j);
            int rc = buf_append(&b, tmp, n);
            if (mlen + n > sizeof model) {
                assert_int_equal(rc, -1);
            } else {
                assert_int_equal(rc, 0);
                memcpy(model + mlen, tmp, n);
                mlen += n;
            }
        } else {
            if (n > mlen)
                n = mlen;
            buf_consume(&b, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
        }
        assert_int_equal(b.len, mlen);
        assert_true(b.off + b.len <= b.size || b.len == 0);
        assert_true(b.size <= sizeof model + 1);
        if (mlen)
            assert_memory_equal(buf_peek(&b), model, mlen);
    }
    buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toolong_once), cmocka_unit_test(test_append_cap),
        cmocka_unit_test(test_printf), cmocka_unit_test(test_compaction_model)};

    return UU_RUN_CASES(tests, test_line_case, cases);
}
