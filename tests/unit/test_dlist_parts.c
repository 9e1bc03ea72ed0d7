/*
 * test_dlist_parts - dlist's small parts: the outbox file (dlist/outbox.c) written and read
 * back, refused when malformed, dropped by key; the message toolkit (dlist/msg.c): headers
 * unfolded, removed, addresses from From-like values, Re: stripped; and dsmtp's memory of
 * dlist's transactions (dsmtp/txdedup.c): new, busy, done, forgotten after a failure.
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
#include "../../dlist/msg.h"
#include "../../dlist/outbox.h"
#include "../../dsmtp/txdedup.h"
#include "xmem.h"
#include "unit_util.h"

struct fx {
    char dir[UU_DIR_MAX];
};

static int
setup(void **state)
{
    return uu_setup_dir(state, sizeof(struct fx), "dlparts");
}

static void
test_outbox(void **state)
{
    struct fx *f = *state;
    char *rcpt[] = {"a@x.test", "b@y.test"};
    struct outbox_msg m = {.sender = "talk-bounces@x.test",
                           .xverp = true,
                           .list = "talk",
                           .nrcpt = 2,
                           .rcpt = rcpt,
                           .text = "Subject: hi\n\nbody\n",
                           .len = 18},
                      r;
    char *p = uu_path(f->dir, "k.0"), *bad = uu_path(f->dir, "k.1");

    assert_int_equal(outbox_write(f->dir, "k.0", &m), 0);
    assert_int_equal(outbox_read(p, &r), 0);
    assert_string_equal(r.sender, "talk-bounces@x.test");
    assert_true(r.xverp);
    assert_string_equal(r.list, "talk");
    assert_int_equal(r.nrcpt, 2);
    assert_string_equal(r.rcpt[1], "b@y.test");
    assert_int_equal(r.len, 18);
    assert_memory_equal(r.text, m.text, 18);
    assert_int_equal(strncmp(r.envid, "dlist-", 6), 0);
    assert_int_equal(strlen(r.envid), 30);
    assert_true(r.made > 1700000000);
    /* written again with its ENVID: the same one */
    {
        char envid[64];
        snprintf(envid, sizeof(envid), "%s", r.envid);
        outbox_free(&r);
        m.envid = envid;
        m.made = 12345;
        m.nrcpt = 1;
        m.list = NULL;
        assert_int_equal(outbox_write(f->dir, "k.0", &m), 0);
        assert_int_equal(outbox_read(p, &r), 0);
        assert_null(r.list);
        assert_string_equal(r.envid, envid);
        assert_int_equal(r.made, 12345);
        assert_int_equal(r.nrcpt, 1);
        outbox_free(&r);
    }
    /* a file of a dlist before "L" (none), and one with it after "V" */
    uu_write(bad, "S <x@y>\nT <5>\nE <dlist-1>\nV\nR <a@b>\n\ntext");
    assert_int_equal(outbox_read(bad, &r), 0);
    assert_null(r.list);
    assert_true(r.xverp && r.nrcpt == 1 && r.len == 4);
    outbox_free(&r);
    uu_write(bad, "S <x@y>\nT <5>\nE <dlist-1>\nV\nL <juggle>\nR <a@b>\n\ntext");
    assert_int_equal(outbox_read(bad, &r), 0);
    assert_string_equal(r.list, "juggle");
    outbox_free(&r);
    /* malformed: refused */
    uu_write(bad, "S <x@y>\nQ what\n\ntext");
    assert_int_equal(outbox_read(bad, &r), -1);
    uu_write(bad, "R <x@y>\n\ntext"); /* no sender */
    assert_int_equal(outbox_read(bad, &r), -1);
    uu_write(bad, "S <x@y>\nR <a@b>\n"); /* no empty line */
    assert_int_equal(outbox_read(bad, &r), -1);
    /* dropped by key: k.0 and k.1, not kk.0 or k.x */
    free(uu_put(f->dir, "kk.0", ""));
    free(uu_put(f->dir, "k.x", ""));
    assert_int_equal(outbox_drop_key(f->dir, "k"), 2);
    assert_int_equal(outbox_drop_key(f->dir, "k"), 0);
    free(p);
    free(bad);
}

static void
test_msg(void **state)
{
    const char *t = "From: \"Bob B\" <Bob@Example.ORG>\n"
                    "Subject: a\n  folded\tsubject \n"
                    "X-Loop: talk@x.test\n"
                    "List-Id: <old>\n"
                    "\n"
                    "Subject: not a header\n";
    char addr[200], *v;
    struct buf b;
    static const char *const drop[] = {"x-loop", "List-Id", NULL};

    (void)state;
    v = msg_header(t, strlen(t), "subject");
    assert_string_equal(v, "a folded subject");
    free(v);
    assert_null(msg_header(t, strlen(t), "To"));
    assert_null(msg_header(t, strlen(t), "Subj"));
    v = msg_header(t, strlen(t), "From");
    assert_true(msg_addr(v, addr, sizeof(addr)));
    assert_string_equal(addr, "Bob@example.org");
    free(v);
    assert_true(msg_addr("carol@x.test (Carol)", addr, sizeof(addr)));
    assert_string_equal(addr, "carol@x.test");
    assert_false(msg_addr("Carol only", addr, sizeof(addr)));
    assert_false(msg_addr("<>", addr, sizeof(addr)));
    assert_int_equal(msg_body(t, strlen(t)), strstr(t, "\n\n") - t + 2);
    assert_int_equal(msg_body("no body", 7), 7);
    buf_init(&b, 1 << 20);
    msg_copy_headers(&b, t, strlen(t), drop);
    buf_append(&b, "", 1);
    assert_string_equal(buf_peek(&b), "From: \"Bob B\" <Bob@Example.ORG>\n"
                                      "Subject: a\n  folded\tsubject \n");
    buf_free(&b);
    assert_string_equal(msg_strip_subject("Re: AW: fwd:  Re:confirm abc"), "confirm abc");
    assert_string_equal(msg_strip_subject("Reply"), "Reply");
}

static void
test_txdedup(void **state)
{
    const char *ab[] = {"a@x.test", "b@x.test"}, *abc[] = {"A@X.test", "b@x.test", "c@x.test"};
    bool seen[3];

    (void)state;
    assert_int_equal(txdedup_begin("dlist-1", 1000), TXDEDUP_NEW);
    assert_int_equal(txdedup_begin("dlist-1", 1001), TXDEDUP_BUSY);
    txdedup_end("dlist-1", true, 1002, ab, 2);
    assert_int_equal(txdedup_begin("dlist-1", 1003), TXDEDUP_DONE);
    /* a resend with a recipient the delivery did not have: that one alone is new, and the
     * ENVID is in flight again until it is delivered */
    assert_int_equal(txdedup_filter("dlist-1", abc, 3, seen), 1);
    assert_true(seen[0] && seen[1] && !seen[2]);
    assert_int_equal(txdedup_begin("dlist-1", 1004), TXDEDUP_BUSY);
    txdedup_end("dlist-1", true, 1005, abc + 2, 1);
    assert_int_equal(txdedup_begin("dlist-1", 1006), TXDEDUP_DONE);
    assert_int_equal(txdedup_filter("dlist-1", abc, 3, seen), 0);
    assert_true(seen[0] && seen[1] && seen[2]);
    /* the rest's delivery failed: what the first had is still remembered */
    const char *d[] = {"d@x.test"};
    assert_int_equal(txdedup_filter("dlist-1", d, 1, seen), 1);
    txdedup_end("dlist-1", false, 1007, NULL, 0);
    assert_int_equal(txdedup_begin("dlist-1", 1008), TXDEDUP_DONE);
    assert_int_equal(txdedup_filter("dlist-1", abc, 3, seen), 0);
    assert_int_equal(txdedup_begin("dlist-1", 1005 + TXDEDUP_TTL), TXDEDUP_NEW); /* too old */
    /* a failed delivery is forgotten: the resend is delivered */
    assert_int_equal(txdedup_begin("dlist-2", 1000), TXDEDUP_NEW);
    txdedup_end("dlist-2", false, 1001, ab, 2);
    assert_int_equal(txdedup_begin("dlist-2", 1002), TXDEDUP_NEW);
    /* an unknown one ends quietly; the table is bounded (the oldest replaced) */
    txdedup_end("dlist-none", true, 1000, ab, 2);
    for (int i = 0; i < TXDEDUP_MAX + 10; i++) {
        char id[40];
        snprintf(id, sizeof(id), "dlist-many-%d", i);
        assert_int_equal(txdedup_begin(id, 2000), TXDEDUP_NEW);
        txdedup_end(id, true, 2000, ab, 2);
    }
    assert_int_equal(txdedup_begin("dlist-many-0", 2001), TXDEDUP_NEW); /* replaced */
    assert_int_equal(txdedup_begin("dlist-many-4100", 2001), TXDEDUP_DONE);
}

UU_MAIN(NULL, NULL, UU_DIR(test_outbox), cmocka_unit_test(test_msg), cmocka_unit_test(test_txdedup))
