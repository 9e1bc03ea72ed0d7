/*
 * test_milter_pkt - milter protocol packets: framing (whole, partial, bad lengths), option
 * negotiation and the decoders of the filter's replies, malformed ones included; the
 * filter addresses of the milters setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "milter_addr.h"
#include "../../dsmtp/milter_pkt.h"
#include "unit_util.h"

/* A packet struct over a literal (len octets, NULs included). */
static struct milter_pkt
pkt(uint8_t cmd, const char *data, size_t len)
{
    return (struct milter_pkt){.cmd = cmd, .data = (const uint8_t *)data, .len = len};
}

static void
test_framing(void **state)
{
    (void)state;
    uint8_t buf[32];
    milter_pkt_head(buf, SMFIC_OPTNEG, 12);
    assert_memory_equal(buf, "\0\0\0\x0dO", 5);
    milter_pkt_optneg(buf + 5, MILTER_VERSION, MILTER_ACTIONS, MILTER_PROTOCOL);
    assert_memory_equal(buf + 5, "\0\0\0\x06\0\0\0\x3f\0\x1f\xff\xff", 12);

    struct milter_pkt p;
    for (size_t i = 0; i < 17; i++)
        assert_int_equal(milter_pkt_take(buf, i, MILTER_LEN_MAX, &p), 0);
    memcpy(buf + 17, "\0\0\0\x01", 4); /* a second packet follows */
    assert_int_equal(milter_pkt_take(buf, 21, MILTER_LEN_MAX, &p), 17);
    assert_int_equal(p.cmd, SMFIC_OPTNEG);
    assert_int_equal(p.len, 12);
    assert_ptr_equal(p.data, buf + 5);
    uint32_t v, a, pr;
    assert_true(milter_pkt_optneg_parse(&p, &v, &a, &pr));
    assert_int_equal(v, 6);
    assert_int_equal(a, MILTER_ACTIONS);
    assert_int_equal(pr, MILTER_PROTOCOL);
    p.len = 11;
    assert_false(milter_pkt_optneg_parse(&p, &v, &a, &pr));

    /* bad lengths: 0, above the limit */
    assert_int_equal(milter_pkt_take((const uint8_t *)"\0\0\0\0c", 5, 100, &p), -1);
    assert_int_equal(milter_pkt_take((const uint8_t *)"\0\0\0\x65", 4, 100, &p), -1);
    assert_int_equal(milter_pkt_take((const uint8_t *)"\xff\xff\xff\xff", 4, 100, &p), -1);
    /* a one-octet packet: command only */
    assert_int_equal(milter_pkt_take((const uint8_t *)"\0\0\0\x01"
                                                      "c",
                                     5, 100, &p),
                     5);
    assert_int_equal(p.cmd, SMFIR_CONTINUE);
    assert_int_equal(p.len, 0);
}

static void
test_replycode(void **state)
{
    (void)state;
    int code;
    const char *text;
    struct milter_pkt p = pkt(SMFIR_REPLYCODE, "550 5.7.1 Go away\0", 18);
    assert_true(milter_pkt_replycode(&p, &code, &text));
    assert_int_equal(code, 550);
    assert_string_equal(text, "5.7.1 Go away");
    p = pkt(SMFIR_REPLYCODE, "451\0", 4);
    assert_true(milter_pkt_replycode(&p, &code, &text));
    assert_int_equal(code, 451);
    assert_string_equal(text, "");
    p = pkt(SMFIR_REPLYCODE, "550 no nul", 10);
    assert_false(milter_pkt_replycode(&p, &code, &text));
    p = pkt(SMFIR_REPLYCODE, "250 ok\0", 7);
    assert_false(milter_pkt_replycode(&p, &code, &text));
    p = pkt(SMFIR_REPLYCODE, "55\0", 3);
    assert_false(milter_pkt_replycode(&p, &code, &text));
    p = pkt(SMFIR_REPLYCODE, "5x0 a\0", 6);
    assert_false(milter_pkt_replycode(&p, &code, &text));
    p = pkt(SMFIR_REPLYCODE, "", 0);
    assert_false(milter_pkt_replycode(&p, &code, &text));
}

static void
test_header(void **state)
{
    (void)state;
    struct milter_hdr h;
    struct milter_pkt p = pkt(SMFIR_ADDHEADER, "X-Spam\0yes\0", 11);
    assert_true(milter_pkt_header(&p, &h));
    assert_int_equal(h.index, 0);
    assert_string_equal(h.name, "X-Spam");
    assert_string_equal(h.value, "yes");
    p = pkt(SMFIR_CHGHEADER, "\0\0\0\x02Subject\0\0", 13);
    assert_true(milter_pkt_header(&p, &h));
    assert_int_equal(h.index, 2);
    assert_string_equal(h.name, "Subject");
    assert_string_equal(h.value, "");
    p = pkt(SMFIR_INSHEADER, "\0\0\0\0A\0 b\0", 9);
    assert_true(milter_pkt_header(&p, &h));
    assert_int_equal(h.index, 0);
    assert_string_equal(h.value, " b");
    /* malformed: no value, no NUL, empty name, short index, wrong command */
    p = pkt(SMFIR_ADDHEADER, "X-Spam\0", 7);
    assert_false(milter_pkt_header(&p, &h));
    p = pkt(SMFIR_ADDHEADER, "X-Spam\0yes", 10);
    assert_false(milter_pkt_header(&p, &h));
    p = pkt(SMFIR_ADDHEADER, "\0yes\0", 5);
    assert_false(milter_pkt_header(&p, &h));
    p = pkt(SMFIR_CHGHEADER, "\0\0\0", 3);
    assert_false(milter_pkt_header(&p, &h));
    p = pkt(SMFIR_REPLBODY, "a\0b\0", 4);
    assert_false(milter_pkt_header(&p, &h));

    const char *s;
    p = pkt(SMFIR_ADDRCPT, "<a@b>\0", 6);
    assert_true(milter_pkt_str(&p, &s));
    assert_string_equal(s, "<a@b>");
    p = pkt(SMFIR_QUARANTINE, "why", 3);
    assert_false(milter_pkt_str(&p, &s));
}

static void
test_addr(void **state)
{
    (void)state;
    struct milter_addr a;
    const char *why;
    assert_true(milter_addr_parse("unix:/run/rspamd/milter.sock", &a, &why));
    assert_true(a.unix_sock);
    assert_string_equal(a.where, "/run/rspamd/milter.sock");
    assert_true(milter_addr_parse("inet:127.0.0.1:11332", &a, &why));
    assert_false(a.unix_sock);
    assert_string_equal(a.where, "127.0.0.1");
    assert_int_equal(a.port, 11332);
    assert_true(milter_addr_parse("inet:[::1]:8891", &a, &why));
    assert_string_equal(a.where, "::1");
    assert_int_equal(a.port, 8891);
    assert_true(milter_addr_parse("inet:localhost:1", &a, &why));
    assert_string_equal(a.where, "127.0.0.1");
    const char *bad[] = {
        "",         "unix:",          "unix:rel/path",      "tcp:h:1",           "inet:h",
        "inet::25", "inet:1.2.3.4:0", "inet:1.2.3.4:65536", "inet:h:-1",         "inet:h:25x",
        "inet:h:",  "inet:[::1:25",   "inet:[::1]25",       "inet:mx.example:25"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_false(milter_addr_parse(bad[i], &a, &why));
        assert_non_null(why);
    }
    char longp[200] = "unix:/";
    memset(longp + 6, 'x', 150);
    longp[156] = '\0';
    assert_false(milter_addr_parse(longp, &a, &why));
}

static void
test_opts(void **state)
{
    (void)state;
    struct milter_opts o;
    char addr[MILTER_ADDR_MAX + 8], why[200];
    assert_true(milter_opts_parse("unix:/run/m.sock default_action=accept command_timeout=5s "
                                  "content_timeout=2m connect_timeout=1",
                                  addr, sizeof(addr), &o, why, sizeof(why)));
    assert_string_equal(addr, "unix:/run/m.sock");
    assert_int_equal(o.default_action, MILTER_ACCEPT);
    assert_int_equal(o.command_timeout, 5);
    assert_int_equal(o.content_timeout, 120);
    assert_int_equal(o.connect_timeout, 1);
    assert_true(milter_opts_parse("inet:127.0.0.1:9", addr, sizeof(addr), &o, why, sizeof(why)));
    assert_int_equal(o.default_action, -1);
    assert_int_equal(o.command_timeout, -1);
    const char *bad[] = {"unix:rel x=1",
                         "inet:127.0.0.1:9 default_action=maybe",
                         "inet:127.0.0.1:9 command_timeout=0",
                         "inet:127.0.0.1:9 command_timeout=2h",
                         "inet:127.0.0.1:9 colour=blue",
                         "inet:127.0.0.1:9 novalue"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_false(milter_opts_parse(bad[i], addr, sizeof(addr), &o, why, sizeof(why)));
        assert_true(why[0] != '\0');
    }
}

static void
test_out(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = milter_pkt_connect(buf, sizeof(buf), "mx.example", '4', 2525, "192.0.2.1");
    assert_int_equal(n, 5 + 11 + 1 + 2 + 10);
    assert_memory_equal(buf,
                        "\0\0\0\x19"
                        "Cmx.example\0"
                        "4\x09\xdd"
                        "192.0.2.1\0",
                        n);
    struct milter_pkt p;
    assert_int_equal(milter_pkt_take(buf, n, MILTER_LEN_MAX, &p), (long)n);
    assert_int_equal(p.cmd, SMFIC_CONNECT);
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(milter_pkt_connect(buf, cap, "mx.example", '4', 2525, "192.0.2.1"), 0);
    n = milter_pkt_connect(buf, sizeof(buf), "localhost", 'U', 0, "");
    assert_memory_equal(buf,
                        "\0\0\0\x0c"
                        "Clocalhost\0U",
                        n);

    /* macros for MAIL: the command octet, then name/value pairs */
    struct milter_out o;
    milter_out_begin(&o, buf, sizeof(buf), SMFIC_MACRO);
    milter_out_bytes(&o, "M", 1);
    milter_out_str(&o, "{mail_addr}");
    milter_out_str(&o, "a@b");
    n = milter_out_end(&o);
    assert_int_equal(n, 5 + 1 + 12 + 4);
    assert_memory_equal(buf,
                        "\0\0\0\x12"
                        "DM{mail_addr}\0a@b\0",
                        n);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_framing), cmocka_unit_test(test_replycode),
        cmocka_unit_test(test_header), cmocka_unit_test(test_addr), cmocka_unit_test(test_opts),
        cmocka_unit_test(test_out))
