/*
 * test_smtp_mboxq - the per-mailbox delivery queue on a real loop (dsmtp/mboxq.c): requests
 * that wait behind a running job go together in one batch, in order, each with its own
 * answer; batches are bounded; callbacks may submit again; idle mailboxes are forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../dsmtp/mboxq.h"
#include "unit_util.h"

static char *tmpdir; /* the group's scratch directory */

/* load - a config with the extra lines. */
static struct conf *
load(const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "host_domain example.org\ndrop_path %s/drop\nspool_dir %s/spool\nlock_timeout 2\n"
             "lock_id testnode\n%s",
             tmpdir, tmpdir, extra);
    return uu_conf("test.conf", text);
}

/* One request with its own text and what its callback saw. */
struct treq {
    struct mboxq_req r;
    char path[300];
    char text[200];
    int calls;
    int order;             /* position among all answers */
    struct treq *resubmit; /* submitted from the callback */
    uv_loop_t *loop;
};

static int answered;

/* treq_done - record the answer; maybe submit another request. */
static void
treq_done(struct mboxq_req *r)
{
    struct treq *t = r->arg;

    t->calls++;
    t->order = answered++;
    if (t->resubmit != NULL)
        mboxq_submit(t->loop, &t->resubmit->r);
}

/* treq_init - a request for mailbox box (under drop/) with message number n. */
static void
treq_init(struct treq *t, const struct conf *cf, uv_loop_t *loop, const char *box, int n)
{
    size_t len;

    memset(t, 0, sizeof(*t));
    snprintf(t->path, sizeof(t->path), "%s/drop/%s", tmpdir, box);
    len = (size_t)snprintf(t->text, sizeof(t->text), "Subject: m%d\n\nmessage %d\n", n, n);
    t->r.cf = cf;
    t->r.mailbox = t->path;
    t->r.sender = "s@x.example";
    t->r.text = t->text;
    t->r.len = len;
    t->r.done = treq_done;
    t->r.arg = t;
    t->loop = loop;
}

/* check_order - the mbox at path holds messages first..last (step 1) in that order. */
static void
check_order(const char *path, int first, int last)
{
    char *got = uu_read(path, NULL), *p = got, want[64];

    for (int n = first; n <= last; n++) {
        char *q;
        snprintf(want, sizeof(want), "Return-Path: <s@x.example>\nSubject: m%d\n", n);
        q = strstr(p, want);
        if (q == NULL)
            fail_msg("%s: message %d missing or out of order", path, n);
        p = q + 1;
    }
    snprintf(want, sizeof(want), "Subject: m%d\n", last + 1);
    assert_null(strstr(got, want));
    free(got);
}

/* Requests submitted while a job runs go together: 1 + 19 and 1 + 4 for two mailboxes. */
static void
test_group(void **state)
{
    struct conf *cf = load("");
    struct treq *t = calloc(25, sizeof(*t));
    struct mboxq_stats before, after;
    uv_loop_t loop;

    (void)state;
    uv_loop_init(&loop);
    mboxq_get_stats(&before);
    answered = 0;
    for (int i = 0; i < 25; i++) {
        treq_init(&t[i], cf, &loop, i < 20 ? "one" : "two", i);
        mboxq_submit(&loop, &t[i].r);
    }
    assert_int_equal(mboxq_active(), 2);
    for (int i = 0; i < 25; i++)
        assert_int_equal(t[i].calls, 0); /* never from within submit */
    uv_run(&loop, UV_RUN_DEFAULT);
    mboxq_get_stats(&after);
    for (int i = 0; i < 25; i++) {
        assert_int_equal(t[i].calls, 1);
        assert_int_equal(t[i].r.result, DROP_OK);
        assert_string_equal(t[i].r.err, "");
    }
    for (int i = 1; i < 20; i++)
        assert_true(t[i].order > t[i - 1].order); /* answered in order */
    assert_int_equal(after.batches - before.batches, 4);
    assert_int_equal(after.messages - before.messages, 25);
    assert_int_equal(after.largest, 19);
    assert_int_equal(mboxq_active(), 0);
    check_order(t[0].path, 0, 19);
    check_order(t[20].path, 20, 24);
    uv_loop_close(&loop);
    free(t);
    conf_unref(&cf);
}

/* A batch takes at most MBOXQ_BATCH_MAX requests. */
static void
test_bounded(void **state)
{
    enum { N = 2 * MBOXQ_BATCH_MAX + 10 };
    struct conf *cf = load("");
    struct treq *t = calloc(N, sizeof(*t));
    struct mboxq_stats before, after;
    uv_loop_t loop;

    (void)state;
    uv_loop_init(&loop);
    mboxq_get_stats(&before);
    for (int i = 0; i < N; i++) {
        treq_init(&t[i], cf, &loop, "bounded", i);
        mboxq_submit(&loop, &t[i].r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mboxq_get_stats(&after);
    for (int i = 0; i < N; i++)
        assert_int_equal(t[i].r.result, DROP_OK);
    /* 1, then 64, 64, 9 */
    assert_int_equal(after.batches - before.batches, 4);
    assert_int_equal(after.largest, MBOXQ_BATCH_MAX);
    check_order(t[0].path, 0, N - 1);
    assert_int_equal(mboxq_active(), 0);
    uv_loop_close(&loop);
    free(t);
    conf_unref(&cf);
}

/* One request over drop_max in a batch fails alone; the others are delivered. */
static void
test_one_fails(void **state)
{
    struct conf *cf = load("drop_max 3k\n");
    struct treq t[6];
    char *big = malloc(5000);
    uv_loop_t loop;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', 4999);
    memcpy(big, "Subject: big\n\n", 14);
    big[4999] = '\n';
    uv_loop_init(&loop);
    for (int i = 0; i < 6; i++) {
        treq_init(&t[i], cf, &loop, "full", i);
        if (i == 3) {
            t[i].r.text = big;
            t[i].r.len = 5000;
        }
        mboxq_submit(&loop, &t[i].r);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(t[i].calls, 1);
        if (i == 3) {
            assert_int_equal(t[i].r.result, DROP_TEMP);
            assert_non_null(strstr(t[i].r.err, "mailbox full"));
        } else {
            assert_int_equal(t[i].r.result, DROP_OK);
        }
    }
    {
        char *got = uu_read(t[0].path, NULL);
        assert_null(strstr(got, "Subject: big"));
        assert_non_null(strstr(got, "Subject: m5\n"));
        free(got);
    }
    uv_loop_close(&loop);
    free(big);
    conf_unref(&cf);
}

/* A callback that submits to the same mailbox (while its entry is being answered), and a
 * mailbox that cannot be written (a directory): every request gets exactly one answer. */
static void
test_resubmit_and_perm(void **state)
{
    struct conf *cf = load("");
    struct treq t[4];
    char dir[300];
    uv_loop_t loop;

    (void)state;
    uv_loop_init(&loop);
    treq_init(&t[0], cf, &loop, "again", 0);
    treq_init(&t[1], cf, &loop, "again", 1);
    treq_init(&t[2], cf, &loop, "again", 2);
    t[0].resubmit = &t[2];
    snprintf(dir, sizeof(dir), "%s/drop/adir", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    treq_init(&t[3], cf, &loop, "adir", 3);
    mboxq_submit(&loop, &t[0].r);
    mboxq_submit(&loop, &t[1].r);
    mboxq_submit(&loop, &t[3].r);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t[i].calls, 1);
    assert_int_equal(t[0].r.result, DROP_OK);
    assert_int_equal(t[1].r.result, DROP_OK);
    assert_int_equal(t[2].r.result, DROP_OK);
    assert_int_equal(t[3].r.result, DROP_PERM);
    assert_true(t[3].r.err[0] != '\0');
    check_order(t[0].path, 0, 2);
    assert_int_equal(mboxq_active(), 0);
    uv_loop_close(&loop);
    conf_unref(&cf);
}

/* setup - a scratch directory. */
static int
setup(void **state)
{
    if (uu_setup_dir(state, UU_DIR_MAX, "test_smtp_mboxq") < 0)
        return -1;
    tmpdir = *state;
    return 0;
}

UU_MAIN(setup, uu_teardown_dir, cmocka_unit_test(test_group), cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_one_fails), cmocka_unit_test(test_resubmit_and_perm))
