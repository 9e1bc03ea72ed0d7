/*
 * test_unsub - the one-click unsubscribe URL (dlist/unsub.c): dlist_http_url + the path,
 * list and address percent-encoded, a token that token_check accepts for that list,
 * address and action only; and unsub_check on the URL's own query. The per-recipient fields
 * for dsmtp's XHEADER (unsub_xheader): xtext that decodes to List-Unsubscribe with the
 * member's URL and the mailto, then List-Unsubscribe-Post; the mailto alone without a URL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "lists.h"
#include "smtpc.h"
#include "../../dlist/token.h"
#include "../../dlist/unsub.h"
#include "xmem.h"
#include "unit_util.h"

static void
test_url_round_trip(void **state)
{
    char *dir = uu_tmpdir("unsub"), *text, url[1024], err[200], tok[64];
    struct conf *cf;
    struct unsub_req req;
    const char *why = NULL, *q, *t;

    (void)state;
    text = xasprintf("dlist_path %s\n", dir);
    cf = uu_conf("t.conf", text);
    assert_int_equal(unsub_url(cf, "talk", "a@b.example", url, sizeof(url)), -1); /* no URL */
    conf_unref(&cf);
    free(text);
    free(uu_put(dir, "lists.dat", "list talk\n"));
    text = xasprintf("dlist_path %s\ndlist_http_url https://lists.example.org:8443/dl/\n", dir);
    cf = uu_conf("t.conf", text);
    assert_string_equal(cf->dlist_http_url, "https://lists.example.org:8443/dl"); /* no '/' */
    assert_int_equal(token_init(dir, err, sizeof(err)), 0);
    assert_int_equal(unsub_url(cf, "talk", "Bob+x=y&z@B.example", url, sizeof(url)), 0);
    q = "https://lists.example.org:8443/dl/"
        "unsubscribe?list=talk&addr=Bob%2Bx%3Dy%26z%40B.example&t=";
    assert_memory_equal(url, q, strlen(q));
    t = url + strlen(q);
    assert_int_equal(strlen(t), TOKEN_LEN);
    memcpy(tok, t, TOKEN_LEN + 1);
    assert_int_equal(token_check(tok, "talk", "bob+x=y&z@b.example", UNSUB_ACTION, time(NULL)),
                     TOKEN_OK);
    assert_int_equal(token_check(tok, "talk", "bob@b.example", UNSUB_ACTION, time(NULL)),
                     TOKEN_BAD);
    assert_int_equal(token_check(tok, "talk", "bob+x=y&z@b.example", UNSUB_ACTION,
                                 time(NULL) + (time_t)(UNSUB_TOKEN_DAYS + 1) * 86400),
                     TOKEN_EXPIRED);
    q = strchr(url, '?') + 1;
    assert_int_equal(unsub_check(cf, q, strlen(q), false, "", 0, time(NULL), &req, &why), 0);
    assert_string_equal(req.addr, "Bob+x=y&z@B.example");
    assert_string_equal(req.def->name, "talk");
    assert_int_equal(unsub_check(cf, q, strlen(q), true, "x", 1, time(NULL), &req, &why), 400);
    assert_int_equal(unsub_check(cf, q, strlen(q), true, "List-Unsubscribe=One-Click", 26,
                                 time(NULL), &req, &why),
                     0);
    assert_int_equal(unsub_check(cf, q, strlen(q) - 1, false, "", 0, time(NULL), &req, &why), 403);
    assert_int_equal(unsub_check(cf, "list=talk&addr=%4", 17, false, "", 0, time(NULL), &req, &why),
                     400);
    assert_int_equal(unsub_url(cf, "talk", "a@b.example", url, 60), -1); /* too small */
    conf_unref(&cf);
    free(text);
    uu_tmpdir_free(dir);
}

/* xdec - xtext decoded (the test's own decoder: "+XX" is the byte XX). */
static char *
xdec(const char *x)
{
    char *out = xmalloc(strlen(x) + 1), *o = out;

    for (; *x != '\0'; x++) {
        if (*x == '+') {
            char hex[3] = {x[1], x[2], '\0'};
            assert_true(x[1] != '\0' && x[2] != '\0');
            *o++ = (char)strtol(hex, NULL, 16);
            x += 2;
        } else {
            assert_true(*x > 0x20 && *x < 0x7f && *x != '=');
            *o++ = *x;
        }
    }
    *o = '\0';
    return out;
}

static void
test_xheader(void **state)
{
    char *dir = uu_tmpdir("unsubx"), *text, *d, url[1024], x[SMTPC_XHEADER_MAX + 1], err[200];
    char want[2048], mailto[300], tok[64], longaddr[400];
    struct conf *cf;
    const char *t;
    size_t n;

    (void)state;
    free(uu_put(dir, "lists.dat", "list talk\n"));
    text = xasprintf("dlist_path %s\ndlist_domain lists.example.org\n", dir);
    cf = uu_conf("t.conf", text);
    assert_false(unsub_oneclick(cf, "talk")); /* no dlist_http_url */
    assert_int_equal(unsub_mailto(cf, "talk", mailto, sizeof(mailto)), 0);
    assert_string_equal(mailto, "<mailto:talk-request@lists.example.org?subject=unsubscribe>");
    assert_int_equal(unsub_mailto(cf, "talk", mailto, 20), -1);
    /* no URL: the mailto alone */
    n = unsub_xheader(cf, "talk", "bob@b.example", x, sizeof(x));
    assert_int_equal(n, strlen(x));
    d = xdec(x);
    assert_string_equal(d, "List-Unsubscribe: "
                           "<mailto:talk-request@lists.example.org?subject=unsubscribe>");
    free(d);
    conf_unref(&cf);
    free(text);
    text = xasprintf("dlist_path %s\ndlist_domain lists.example.org\n"
                     "dlist_http_url https://lists.example.org/dl\n",
                     dir);
    cf = uu_conf("t.conf", text);
    assert_int_equal(token_init(dir, err, sizeof(err)), 0);
    assert_true(unsub_oneclick(cf, "talk"));
    /* the member's URL (its token checked, not compared: a second may pass), the mailto,
     * then List-Unsubscribe-Post */
    n = unsub_xheader(cf, "talk", "Bob+x=y@B.example", x, sizeof(x));
    assert_true(n > 0 && n == strlen(x));
    assert_null(strchr(x, ' '));
    d = xdec(x);
    assert_int_equal(unsub_url(cf, "talk", "Bob+x=y@B.example", url, sizeof(url)), 0);
    t = strstr(url, "&t=") + 3;
    snprintf(want, sizeof(want), "List-Unsubscribe: <%.*s", (int)(t - url), url);
    assert_memory_equal(d, want, strlen(want));
    memcpy(tok, d + strlen(want), TOKEN_LEN);
    tok[TOKEN_LEN] = '\0';
    assert_int_equal(token_check(tok, "talk", "bob+x=y@b.example", UNSUB_ACTION, time(NULL)),
                     TOKEN_OK);
    assert_string_equal(d + strlen(want) + TOKEN_LEN,
                        ">, <mailto:talk-request@lists.example.org?subject=unsubscribe>\r\n"
                        "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    free(d);
    /* another member: another URL */
    n = unsub_xheader(cf, "talk", "carol@c.example", want, sizeof(want));
    assert_int_equal(n, strlen(want));
    assert_string_not_equal(want, x);
    d = xdec(want);
    assert_non_null(strstr(d, "addr=carol%40c.example&t="));
    free(d);
    /* an address whose URL would pass XHEADER's 1000 octets: the mailto alone */
    memset(longaddr, '%', 300);
    snprintf(longaddr + 300, sizeof(longaddr) - 300, "@b.example");
    n = unsub_xheader(cf, "talk", longaddr, x, sizeof(x));
    assert_true(n > 0);
    d = xdec(x);
    assert_string_equal(d, "List-Unsubscribe: "
                           "<mailto:talk-request@lists.example.org?subject=unsubscribe>");
    free(d);
    /* too small for even that: 0 */
    assert_int_equal(unsub_xheader(cf, "talk", "bob@b.example", x, 30), 0);
    conf_unref(&cf);
    free(text);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_url_round_trip), cmocka_unit_test(test_xheader))
