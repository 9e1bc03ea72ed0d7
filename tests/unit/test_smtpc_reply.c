/*
 * test_smtpc_reply - the SMTP client's parsing and encoding (dsmtp/smtpc_reply.c): reply
 * lines, EHLO keywords, the message text on the wire. The client against real servers is
 * test_smtpc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpc_int.h"
#include "xmem.h"
#include "unit_util.h"

/* expect - the reply is exactly code, status and text */
static void
expect(const struct smtpc_reply *r, int code, const char *status, const char *text)
{
    assert_int_equal(r->code, code);
    assert_string_equal(r->status, status);
    assert_string_equal(r->text, text);
}

static int
feed(struct smtpc_rx *rx, const char *line)
{
    char copy[2048];

    snprintf(copy, sizeof(copy), "%s", line);
    return smtpc_reply_line(rx, copy, strlen(copy), NULL);
}

/* replies: multi-line, enhanced codes (or made from the code), malformed ones, the text
 * bounded and without controls */
static void
test_reply_parse(void **state)
{
    struct smtpc_rx rx = {0};

    (void)state;
    assert_int_equal(feed(&rx, "250-peer.test"), 0);
    assert_int_equal(feed(&rx, "250-PIPELINING"), 0);
    assert_int_equal(feed(&rx, "250 SIZE 1000"), 1);
    expect(&rx.r, 250, "2.0.0", "peer.test; PIPELINING; SIZE 1000");
    assert_int_equal(feed(&rx, "550-5.1.1 no such"), 0);
    assert_int_equal(feed(&rx, "550 5.1.1 user"), 1);
    expect(&rx.r, 550, "5.1.1", "no such; user");
    assert_int_equal(feed(&rx, "451 4.3.0"), 1);
    expect(&rx.r, 451, "4.3.0", "");
    assert_int_equal(feed(&rx, "221"), 1);
    expect(&rx.r, 221, "2.0.0", "");
    assert_int_equal(feed(&rx, "550 4.1.1 wrong class"), 1);
    expect(&rx.r, 550, "5.0.0", "4.1.1 wrong class");
    assert_int_equal(feed(&rx, "354 go ahead"), 1);
    expect(&rx.r, 354, "", "go ahead");
    assert_int_equal(feed(&rx, "250 a\rb\tc\x7f"), 1);
    assert_string_equal(rx.r.text, "a b c ");
    const char *bad[] = {"25", "2500 x", "abc", "600 x", "199 x", "250_x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(feed(&rx, bad[i]), -1);
    assert_int_equal(feed(&rx, "250-a"), 0);
    assert_int_equal(feed(&rx, "251 b"), -1); /* another code */
    assert_int_equal(feed(&rx, "250 fresh"), 1);
    expect(&rx.r, 250, "2.0.0", "fresh");
    char longl[200];
    memset(longl, 'a', sizeof(longl));
    memcpy(longl, "250-", 4);
    longl[sizeof(longl) - 1] = '\0';
    for (int i = 0; i < 10; i++)
        assert_int_equal(feed(&rx, longl), 0);
    assert_int_equal(feed(&rx, "250 end"), 1);
    assert_int_equal(strlen(rx.r.text), SMTPC_TEXT_MAX - 1);
}

/* EHLO keywords, any case */
static void
test_ehlo_keywords(void **state)
{
    struct smtpc_info in = {0};
    unsigned ext = 0;
    const char *lines[] = {"pipelining", "SIZE 1000", "8BITMIME", "SMTPUTF8",
                           "DSN",        "CHUNKING",  "STARTTLS", "AUTH LOGIN CRAM-MD5",
                           "AUTH=PLAIN", "X-OTHER 1", "xverp",    "XHEADER"};

    (void)state;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        smtpc_ehlo_line(&in, &ext, lines[i]);
    assert_true(in.pipelining && in.eightbitmime && in.smtputf8 && in.dsn && in.chunking);
    assert_true(in.xverp && in.xheader);
    assert_int_equal(in.size_max, 1000);
    assert_int_equal(ext, SMTPC_X_PLAIN | SMTPC_X_LOGIN | SMTPC_X_STARTTLS | SMTPC_X_SIZE);
    smtpc_ehlo_line(&in, &ext, "SIZE");
    assert_int_equal(in.size_max, 0);
}

/* encode - the whole wire form of text, made in pieces of at most cap bytes */
static char *
encode(const char *text, size_t len, size_t cap, size_t *outlen)
{
    struct smtpc_enc e = {0};
    char *out = xmalloc(len * 2 + 16), piece[64 * 1024];
    size_t o = 0;

    while (!e.done) {
        size_t n = smtpc_enc_chunk(&e, text, len, piece, cap);
        assert_true(n > 0 && n <= cap);
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* dot-stuffing, CRLF, a missing last LF, folding at 998 octets, in any piece size */
static void
test_encode(void **state)
{
    size_t n;
    char *s;

    (void)state;
    s = encode(".a\nb\r\nc", 7, 8, &n);
    assert_string_equal(s, "..a\r\nb\r\nc\r\n.\r\n");
    free(s);
    s = encode("", 0, 8, &n);
    assert_string_equal(s, ".\r\n");
    free(s);
    s = encode("x\n.\n", 4, 8, &n);
    assert_string_equal(s, "x\r\n..\r\n.\r\n");
    free(s);

    char text[2100], want[2200];
    memset(text, 'x', 2000);
    text[2000] = '\n';
    memset(want, 'x', sizeof(want));
    memcpy(want + 998, "\r\n ", 3);
    memcpy(want + 998 + 3 + 997, "\r\n ", 3);
    memcpy(want + 2000 + 6, "\r\n.\r\n", 6);
    size_t caps[] = {8, 13, 1000, 65536};
    for (size_t i = 0; i < 4; i++) {
        s = encode(text, 2001, caps[i], &n);
        assert_int_equal(n, 2011);
        assert_memory_equal(s, want, n);
        free(s);
    }
    assert_int_equal(smtpc_wire_size("a\nb\r\nc", 6), 9);
    assert_int_equal(smtpc_wire_size("a\n", 2), 3);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_reply_parse), cmocka_unit_test(test_ehlo_keywords),
        cmocka_unit_test(test_encode))
