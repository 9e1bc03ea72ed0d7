/*
 * test_smtp_data - the DATA scanner (dsmtp/data.c): termination only at <CRLF>.<CRLF>,
 * smuggling variants, dot-unstuffing, limits; every case fed whole and byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../dsmtp/data.h"
#include "unit_util.h"

#define S(x) x, sizeof(x) - 1

struct data_case {
    const char *name;
    const char *in;
    size_t inlen;
    bool normalize;
    bool done;        /* the terminator is in the input */
    const char *rest; /* what is left after the terminator */
    int errors;       /* DATA_ERR_* */
    const char *text; /* stored message when errors == 0 */
};

static const struct data_case cases[] = {
    {"simple", S("Subject: hi\r\n\r\nbody\r\n.\r\n"), false, true, "", 0, "Subject: hi\n\nbody\n"},
    {"empty message", S(".\r\n"), false, true, "", 0, ""},
    {"pipelined rest", S("a\r\n.\r\nQUIT\r\n"), false, true, "QUIT\r\n", 0, "a\n"},
    {"unstuff", S("..leading\r\n...\r\n.x\r\n.\r\n"), false, true, "", 0, ".leading\n..\nx\n"},
    {"dot inside line", S("a.b\r\n a\r\n.\r\n"), false, true, "", 0, "a.b\n a\n"},
    {"not finished", S("a\r\nb\r\n"), false, false, "", 0, NULL},
    {"dot without CRLF yet", S("a\r\n."), false, false, "", 0, NULL},
    {"dot CR without LF yet", S("a\r\n.\r"), false, false, "", 0, NULL},
    /* smuggling variants never end the message; strict mode flags them */
    {"LF.LF", S("a\n.\nMAIL FROM:<x@y>\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"LF.CRLF", S("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CRLF.LF", S("a\r\n.\nRCPT\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CR.CR", S("a\r.\rMAIL\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CR.CRLF", S("a\r.\r\nMAIL\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CRLF.CR", S("a\r\n.\rMAIL\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CRLF.CRCRLF", S("a\r\n.\r\r\nMAIL\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CRCRLF line end", S("a\r\r\nb\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"bare LF in text", S("a\nb\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"bare CR in text", S("a\rb\r\n.\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"only smuggled ends", S("a\n.\n"), false, false, "", DATA_ERR_BARE, NULL},
    {"only LF.CRLF", S("a\n.\r\n"), false, false, "", DATA_ERR_BARE, NULL},
    {"only CR.CR", S("a\r.\r"), false, false, "", DATA_ERR_BARE, NULL},
    /* normalize mode: bare newlines become line ends, still only CRLF.CRLF ends */
    {"normalize LF", S("a\nb\r\n.\r\n"), true, true, "", 0, "a\nb\n"},
    {"normalize CR", S("a\rb\r\n.\r\n"), true, true, "", 0, "a\nb\n"},
    {"normalize LF.LF", S("a\n.\nb\r\n.\r\n"), true, true, "", 0, "a\n.\nb\n"},
    {"normalize LF.CRLF", S("a\n.\r\nb\r\n.\r\n"), true, true, "", 0, "a\n.\nb\n"},
    {"normalize CR.CR", S("a\r.\rb\r\n.\r\n"), true, true, "", 0, "a\n.\nb\n"},
    {"normalize CRCRLF", S("a\r\r\nb\r\n.\r\n"), true, true, "", 0, "a\n\nb\n"},
    {"normalize CRLF.LF", S("a\r\n.\nb\r\n.\r\n"), true, true, "", 0, "a\n.\nb\n"},
    {"normalize no end", S("a\n.\n"), true, false, "", 0, NULL},
    /* NUL bytes */
    {"NUL", S("a\0b\r\n.\r\n"), false, true, "", DATA_ERR_NUL, NULL},
    {"NUL normalize", S("a\0b\r\n.\r\n"), true, true, "", DATA_ERR_NUL, NULL},
    {"NUL after dot", S(".\0\r\n.\r\n"), false, true, "", DATA_ERR_NUL, NULL},
};

/* run_case - feed in (whole, or in chunks of step bytes) and check the outcome. */
static void
run_case(const struct data_case *c, size_t step)
{
    struct data_rx rx;
    size_t off = 0;

    data_rx_init(&rx, c->normalize, 100000, DATA_MAX_LINE, NULL, NULL);
    while (off < c->inlen && !rx.done) {
        size_t n = c->inlen - off < step ? c->inlen - off : step;
        size_t used = data_rx_feed(&rx, c->in + off, n);
        assert_true(used <= n);
        if (used < n && !rx.done)
            fail_msg("%s: stopped early without the end", c->name);
        off += used;
    }
    if (rx.done != c->done)
        fail_msg("%s (step %zu): done %d", c->name, step, rx.done);
    if (c->done && strcmp(c->in + off, c->rest) != 0)
        fail_msg("%s (step %zu): rest \"%s\"", c->name, step, c->in + off);
    if (rx.errors != c->errors)
        fail_msg("%s (step %zu): errors %d want %d", c->name, step, rx.errors, c->errors);
    if (c->text != NULL) {
        size_t len;
        char *t = data_rx_take(&rx, &len);
        if (len != strlen(c->text) || memcmp(t, c->text, len) != 0)
            fail_msg("%s (step %zu): text \"%.*s\"", c->name, step, (int)len, t);
        free(t);
    }
    data_rx_free(&rx);
}

static void
test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i], cases[i].inlen + 1);
        run_case(&cases[i], 1);
        run_case(&cases[i], 2);
        run_case(&cases[i], 3);
    }
}

/* line_of - "X" * n + CRLF + "." CRLF into a malloc'd string. */
static char *
line_of(size_t n, size_t *len)
{
    char *s = malloc(n + 8);
    memset(s, 'X', n);
    memcpy(s + n, "\r\n.\r\n", 6);
    *len = n + 5;
    return s;
}

static void
test_line_length(void **state)
{
    struct data_rx rx;
    size_t len;
    char *s;

    (void)state;
    /* 998 octets plus CRLF is fine */
    s = line_of(998, &len);
    data_rx_init(&rx, false, 100000, DATA_MAX_LINE, NULL, NULL);
    assert_int_equal(data_rx_feed(&rx, s, len), len);
    assert_true(rx.done);
    assert_int_equal(rx.errors, 0);
    assert_int_equal(rx.len, 999);
    data_rx_free(&rx);
    free(s);
    /* 999 is too long, fed whole or in pieces, and the end is still found */
    s = line_of(999, &len);
    for (size_t step = 1; step <= len; step += 499) {
        size_t off = 0;
        data_rx_init(&rx, false, 100000, DATA_MAX_LINE, NULL, NULL);
        while (off < len && !rx.done)
            off += data_rx_feed(&rx, s + off, step < len - off ? step : len - off);
        assert_true(rx.done);
        assert_int_equal(off, len);
        assert_int_equal(rx.errors, DATA_ERR_LONG);
        data_rx_free(&rx);
    }
    free(s);
    /* a stuffed dot counts: ".", then 998 more */
    s = line_of(999, &len);
    s[0] = '.';
    data_rx_init(&rx, false, 100000, DATA_MAX_LINE, NULL, NULL);
    data_rx_feed(&rx, s, len);
    assert_true(rx.done);
    assert_int_equal(rx.errors, DATA_ERR_LONG);
    data_rx_free(&rx);
    free(s);
}

static void
test_size_limit(void **state)
{
    struct data_rx rx;
    char line[102];
    size_t total = 0;

    (void)state;
    memset(line, 'y', 100);
    memcpy(line + 100, "\r\n", 2);
    data_rx_init(&rx, false, 2000, DATA_MAX_LINE, "Received: x\n", NULL);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(data_rx_feed(&rx, line, sizeof(line)), sizeof(line));
        total += sizeof(line);
    }
    assert_false(rx.done);
    assert_int_equal(rx.errors, DATA_ERR_SIZE);
    /* memory stayed bounded by the limit plus the prefix */
    assert_true(rx.len <= 2000 + strlen("Received: x\n"));
    assert_true(rx.size <= 2000 + strlen("Received: x\n") + 1);
    assert_int_equal(data_rx_feed(&rx, S(".\r\n")), 3);
    assert_true(rx.done);
    assert_int_equal(rx.wire, total + 3);
    data_rx_free(&rx);

    /* exactly at the limit is fine, and the prefix is kept in front */
    data_rx_init(&rx, false, 102 + 3, DATA_MAX_LINE, "P: 1\n", NULL);
    data_rx_feed(&rx, line, sizeof(line));
    data_rx_feed(&rx, S(".\r\n"));
    assert_true(rx.done);
    assert_int_equal(rx.errors, 0);
    assert_int_equal(rx.prefix_len, 5);
    assert_int_equal(rx.len, 5 + 101);
    assert_memory_equal(rx.text, "P: 1\nyyy", 8);
    data_rx_free(&rx);
}

static void
test_big_message(void **state)
{
    struct data_rx rx;
    size_t n = 80 * 40000, len;
    char *in = malloc(n + 5), *t;

    (void)state;
    for (size_t i = 0; i < n; i++)
        in[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
    memcpy(in + n, ".\r\n", 3);
    data_rx_init(&rx, false, 10 * 1024 * 1024, DATA_MAX_LINE, NULL, NULL);
    assert_int_equal(data_rx_feed(&rx, in, n + 3), n + 3);
    assert_true(rx.done);
    assert_int_equal(rx.errors, 0);
    t = data_rx_take(&rx, &len);
    assert_int_equal(len, n / 80 * 79);
    free(t);
    data_rx_free(&rx);
    free(in);
}

static void
test_received(void **state)
{
    char buf[1024], date[64];
    time_t when = 1764061498; /* fixed */
    int n;

    (void)state;
    data_rfc5322_date(date, sizeof(date), when);
    assert_true(strlen(date) >= 29);
    n = data_received(buf, sizeof(buf), "client.example", "192.0.2.1", "mx.example.org", "ESMTP",
                      "abc.1", "", "bob@example.org", when);
    assert_true(n > 0);
    char want[512];
    snprintf(want, sizeof(want),
             "Received: from client.example ([192.0.2.1])\n\tby mx.example.org (dsmtp) with "
             "ESMTP id abc.1\n\tfor <bob@example.org>; %s\n",
             date);
    assert_string_equal(buf, want);
    n = data_received(buf, sizeof(buf), "c", "::1", "h", "ESMTPSA", "i", "TLSv1.3", NULL, when);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "Received: from c ([IPv6:::1])\n"));
    assert_non_null(strstr(buf, "\n\t(TLSv1.3); "));
    assert_null(strstr(buf, "for <"));
    assert_int_equal(data_received(buf, 20, "c", "::1", "h", "ESMTP", "i", "", NULL, when), -1);
    /* the client's PTR name (rdns) goes before the address */
    data_received_ptr(buf, sizeof(buf), "c.example", "192.0.2.1", "ptr.example", "h", "ESMTP", "i",
                      "", NULL, when);
    assert_non_null(strstr(buf, "Received: from c.example (ptr.example [192.0.2.1])\n"));
    data_received_ptr(buf, sizeof(buf), "odd helo", "192.0.2.1", "ptr.example", "h", "ESMTP", "i",
                      "", NULL, when);
    assert_non_null(strstr(buf, "Received: from [192.0.2.1]\n\t(ptr.example, HELO odd?helo)\n"));
    /* IPv4-mapped addresses are shown as IPv4 */
    data_received(buf, sizeof(buf), "c", "::ffff:192.0.2.7", "h", "ESMTP", "i", "", NULL, when);
    assert_non_null(strstr(buf, "from c ([192.0.2.7])\n"));
    /* address literals are HELO names, too */
    static const char *const good[] = {"[192.0.2.1]", "[IPv6:2001:db8::1]", "[x-tag:abc]", "a",
                                       "a-b.c9",      "9.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char w[300];
        data_received(buf, sizeof(buf), good[i], "192.0.2.1", "h", "ESMTP", "i", "", NULL, when);
        snprintf(w, sizeof(w), "Received: from %s ([192.0.2.1])\n\tby h", good[i]);
        assert_true(strncmp(buf, w, strlen(w)) == 0);
    }
    /* anything else is not a From-domain: address literal, and the name in a comment */
    static const struct {
        const char *helo, *comment;
    } bad[] = {
        {"a;b", "(HELO a;b)"},
        {"x(y)\\z", "(HELO x?y??z)"},
        {"-a.example", "(HELO -a.example)"},
        {"a-.example", "(HELO a-.example)"},
        {"a..b", "(HELO a..b)"},
        {"host.", "(HELO host.)"},
        {"u_s.example", "(HELO u_s.example)"},
        {"[1.2.3]", "(HELO [1.2.3])"},
        {"[IPv6:zz]", "(HELO [IPv6:zz])"},
        {"[]", "(HELO [])"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char w[300];
        data_received(buf, sizeof(buf), bad[i].helo, "192.0.2.1", "h", "ESMTP", "i", "", NULL,
                      when);
        snprintf(w, sizeof(w), "Received: from [192.0.2.1]\n\t%s\n\tby h ", bad[i].comment);
        assert_true(strncmp(buf, w, strlen(w)) == 0);
    }
}

/* Chunked mode (BDAT): the same local form as DATA without dot-unstuffing or terminator;
 * each case fed in every split into two chunks, and byte by byte. */
static const struct data_case chunk_cases[] = {
    {"crlf", S("Subject: hi\r\n\r\nbody\r\n"), false, true, "", 0, "Subject: hi\n\nbody\n"},
    {"dots kept", S("..x\r\n.\r\n.\r\nafter\r\n"), false, true, "", 0, "..x\n.\n.\nafter\n"},
    {"no final line end", S("a\r\nb"), false, true, "", 0, "a\nb\n"},
    {"empty", S(""), false, true, "", 0, ""},
    {"8bit", S("\x80\xff\x7f\x01\r\n"), false, true, "", 0, "\x80\xff\x7f\x01\n"},
    {"bare LF", S("a\nb\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"bare CR", S("a\rb\r\n"), false, true, "", DATA_ERR_BARE, NULL},
    {"CR at the end", S("a\r\nb\r"), false, true, "", DATA_ERR_BARE, NULL},
    {"normalize LF", S("a\nb\r\n"), true, true, "", 0, "a\nb\n"},
    {"normalize CR at the end", S("a\r\nb\r"), true, true, "", 0, "a\nb\n"},
    {"normalize dot after LF", S("a\n.\nb"), true, true, "", 0, "a\n.\nb\n"},
    {"NUL", S("a\0b\r\n"), false, true, "", DATA_ERR_NUL, NULL},
};

/* run_chunked - feed c->in as a chunk of split bytes and the rest, then finish. */
static void
run_chunked(const struct data_case *c, size_t split, size_t step)
{
    struct data_rx rx;

    data_rx_init(&rx, c->normalize, 100000, DATA_MAX_LINE, NULL, NULL);
    data_rx_chunked(&rx);
    for (size_t off = 0; off < c->inlen;) {
        size_t end = off < split ? split : c->inlen;
        size_t n = end - off < step ? end - off : step;
        assert_int_equal(data_rx_feed(&rx, c->in + off, n), n); /* all taken, no end */
        assert_false(rx.done);
        off += n;
    }
    data_rx_finish(&rx);
    assert_true(rx.done);
    assert_int_equal(rx.wire, c->inlen);
    if (rx.errors != c->errors)
        fail_msg("%s (split %zu): errors %d want %d", c->name, split, rx.errors, c->errors);
    if (c->text != NULL && (rx.len != strlen(c->text) || memcmp(rx.text, c->text, rx.len) != 0))
        fail_msg("%s (split %zu): text \"%.*s\"", c->name, split, (int)rx.len, rx.text);
    data_rx_free(&rx);
}

static void
test_chunked(void **state)
{
    struct data_rx rx;

    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        for (size_t split = 0; split <= chunk_cases[i].inlen; split++)
            run_chunked(&chunk_cases[i], split, chunk_cases[i].inlen + 1);
        run_chunked(&chunk_cases[i], 0, 1);
    }
    /* the prefix stays in front; a message of the prefix alone gets no extra line end */
    data_rx_init(&rx, false, 100, DATA_MAX_LINE, "R: 1\n", NULL);
    data_rx_chunked(&rx);
    data_rx_finish(&rx);
    assert_int_equal(rx.len, 5);
    data_rx_free(&rx);
    /* lines are limited as in DATA */
    data_rx_init(&rx, false, 100000, 10, NULL, NULL);
    data_rx_chunked(&rx);
    data_rx_feed(&rx, S("0123456789x\r\n"));
    data_rx_finish(&rx);
    assert_int_equal(rx.errors, DATA_ERR_LONG);
    data_rx_free(&rx);
    /* a message of exactly max_size octets without a final line end still fits */
    data_rx_init(&rx, false, 3, DATA_MAX_LINE, NULL, NULL);
    data_rx_chunked(&rx);
    data_rx_feed(&rx, S("abc"));
    data_rx_finish(&rx);
    assert_int_equal(rx.errors, 0);
    assert_int_equal(rx.len, 4);
    assert_memory_equal(rx.text, "abc\n", 4);
    data_rx_free(&rx);
}

/* data_hops: Received: fields of the header only, any case, folded lines not counted */
static void
test_hops(void **state)
{
    static const char t1[] = "Received: a\n\tb\nreceived: c\nSubject: x\nRECEIVED: d\n"
                             "\nReceived: in the body\n";
    static const char t2[] = "Subject: none\n\nReceived: body\n";
    static const char t3[] = "Received: no body, no newline";

    (void)state;
    assert_int_equal(data_hops(t1, strlen(t1)), 3);
    assert_int_equal(data_hops(t2, strlen(t2)), 0);
    assert_int_equal(data_hops(t3, strlen(t3)), 1);
    assert_int_equal(data_hops("", 0), 0);
    assert_int_equal(data_hops("Received", 8), 0);
}

/* feed - n octets of 'a' lines and the terminator, in pieces of 1000. */
static void
feed_lines(struct data_rx *rx, size_t n)
{
    char line[80];

    memset(line, 'a', sizeof line);
    line[78] = '\r';
    line[79] = '\n';
    for (size_t i = 0; i < n / sizeof line; i++)
        assert_int_equal(data_rx_feed(rx, line, sizeof line), sizeof line);
    assert_int_equal(data_rx_feed(rx, ".\r\n", 3), 3);
    assert_true(rx->done);
}

static void
test_budget(void **state)
{
    struct data_budget b = {.max = 100000};
    struct data_rx r1, r2, r3;
    size_t len;
    char *t;

    (void)state;
    /* a message within the budget is charged for its buffer, and the charge comes back
     * when the buffer is handed over */
    data_rx_init(&r1, false, 1000000, DATA_MAX_LINE, "R: 1\n", &b);
    assert_true(b.used > 0 && b.used <= 4096 + 6);
    feed_lines(&r1, 40000);
    assert_int_equal(r1.errors, 0);
    assert_true(b.used >= 40000 && b.used <= 100000);
    /* a second one cannot grow past the max: refused, its buffer released at once, the
     * first one untouched; scanning still finds the terminator */
    data_rx_init(&r2, false, 1000000, DATA_MAX_LINE, NULL, &b);
    feed_lines(&r2, 80000);
    assert_int_equal(r2.errors, DATA_ERR_MEM);
    assert_null(r2.text);
    assert_int_equal(r2.charged, 0);
    assert_int_equal(b.refused, 1);
    assert_int_equal(b.used, r1.charged);
    data_rx_free(&r2);
    t = data_rx_take(&r1, &len);
    assert_int_equal(len, 5 + 40000 / 80 * 79);
    assert_int_equal(b.used, 0);
    free(t);
    data_rx_free(&r1);
    /* a spent budget refuses even the first buffer; no budget (NULL) never refuses */
    b.used = b.max;
    data_rx_init(&r3, false, 1000, DATA_MAX_LINE, NULL, &b);
    assert_int_equal(r3.errors, DATA_ERR_MEM);
    assert_int_equal(b.used, b.max);
    data_rx_free(&r3);
    assert_int_equal(b.used, b.max);
    data_rx_init(&r3, false, 1000000, DATA_MAX_LINE, NULL, NULL);
    feed_lines(&r3, 200000);
    assert_int_equal(r3.errors, 0);
    data_rx_free(&r3);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_cases), cmocka_unit_test(test_budget),
        cmocka_unit_test(test_line_length), cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_big_message), cmocka_unit_test(test_received),
        cmocka_unit_test(test_hops), cmocka_unit_test(test_chunked))
