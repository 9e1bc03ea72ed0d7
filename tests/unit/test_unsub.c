/*
 * test_unsub - the one-click unsubscribe URL (dlist/unsub.c): dlist_http_url + the path,
 * list and address percent-encoded, a token that token_check accepts for that list,
 * address and action only; and unsub_check on the URL's own query.
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

UU_MAIN(NULL, NULL, cmocka_unit_test(test_url_round_trip))
