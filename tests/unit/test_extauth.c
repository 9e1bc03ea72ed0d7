/*
 * test_extauth - the external-authentication line protocol (common/mail/extauth_proto.c)
 * and the drop-path check (extauth_drop_allowed): answers of every kind, info fields,
 * malformed lines, request lines and the words that cannot be sent; lookups from a pool
 * thread answered by the process's pool of helpers (extauth_lookup_off_loop), with its
 * three answers, and by a helper of their own once the pool has stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "extauth.h"
#include "extauth_proto.h"

/* A helper in sh: alice is known, dead* gets -DEAD, everyone else -ERR. */
static const char helper_sh[] = "#!/bin/sh\n"
                                "while read cmd user rest; do\n"
                                "  [ \"$cmd\" = exit ] && exit 0\n"
                                "  case $user in\n"
                                "  alice) echo \"+OK alice /d/alice 0\" ;;\n"
                                "  dead*) echo \"-DEAD database down\" ;;\n"
                                "  *) echo \"-ERR no such user\" ;;\n"
                                "  esac\n"
                                "done\n";

struct asker {
    const char *cmdline; /* for the one-off helper (no pool) */
    enum extauth_kind k[3];
    char drop[64];
    volatile int done;
};

/* ask - on a thread of its own, as the queue runner on the pool: three lookups. */
static void *
ask(void *arg)
{
    struct asker *q = arg;
    static const char *const users[3] = {"alice", "nobody", "dead1"};
    struct extauth_answer a;

    for (int i = 0; i < 3; i++) {
        q->k[i] = extauth_lookup_off_loop(q->cmdline, 5, users[i], &a);
        if (i == 0)
            snprintf(q->drop, sizeof q->drop, "%.40s", a.drop);
    }
    __atomic_store_n(&q->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void
poll_done(uv_timer_t *t)
{
    struct asker *q = t->data;

    if (__atomic_load_n(&q->done, __ATOMIC_SEQ_CST))
        uv_stop(t->loop);
}

static void
test_off_loop_lookups_use_the_pool(void **state)
{
    char dir[] = "/tmp/test-extauth-XXXXXX", path[64], err[200];
    struct asker q = {.cmdline = "/nonexistent/helper"};
    struct extauth_answer a;
    unsigned long answered, restarts;
    uv_loop_t loop;
    uv_timer_t t;
    pthread_t th;
    int running;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/helper.sh", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(helper_sh, f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    uv_loop_init(&loop);
    struct extauth *x = extauth_new(&loop, path, 1, 5, err, sizeof err);
    assert_non_null(x);
    /* the loop thread never waits */
    assert_int_equal(extauth_lookup_off_loop(path, 5, "alice", &a), EA_DEAD);
    /* another thread's lookups go to the pool (its own cmdline cannot even run) */
    uv_timer_init(&loop, &t);
    t.data = &q;
    uv_timer_start(&t, poll_done, 10, 10);
    assert_int_equal(pthread_create(&th, NULL, ask, &q), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(q.k[0], EA_OK);
    assert_string_equal(q.drop, "/d/alice");
    assert_int_equal(q.k[1], EA_ERR);
    assert_int_equal(q.k[2], EA_DEAD);
    extauth_stats(x, &running, &answered, &restarts);
    assert_int_equal(answered, 3);
    extauth_stop(&x);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* no pool any more: a helper of its own answers */
    struct asker q2 = {.cmdline = path};
    assert_int_equal(pthread_create(&th, NULL, ask, &q2), 0);
    pthread_join(th, NULL);
    assert_int_equal(q2.k[0], EA_OK);
    assert_int_equal(q2.k[1], EA_ERR);
    assert_int_equal(q2.k[2], EA_DEAD);
    unlink(path);
    rmdir(dir);
}

static enum extauth_kind
parse(const char *s, struct extauth_answer *a)
{
    return extauth_parse(s, strlen(s), a);
}

static void
test_parse_ok(void **state)
{
    struct extauth_answer a;

    (void)state;
    assert_int_equal(parse("+OK alice /var/spool/dmail/drop/alice", &a), EA_OK);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.drop, "/var/spool/dmail/drop/alice");
    assert_int_equal(a.uid, 0);
    assert_string_equal(a.fwd, "");
    assert_int_equal(parse("+OK bob@x.example /d/bob 1001 name=\"Bob B\" "
                           "fwd=\"bob@else.example,$user\" quota=5",
                           &a),
                     EA_OK);
    assert_string_equal(a.user, "bob@x.example");
    assert_int_equal(a.uid, 1001);
    assert_string_equal(a.fwd, "bob@else.example,$user");
    assert_int_equal(parse("+OK  carol   /d/c  0  ", &a), EA_OK);
    assert_string_equal(a.drop, "/d/c");
}

static void
test_parse_other_kinds(void **state)
{
    struct extauth_answer a;

    (void)state;
    assert_int_equal(parse("-ERR no such user", &a), EA_ERR);
    assert_string_equal(a.reason, "no such user");
    assert_int_equal(parse("-ERR", &a), EA_ERR);
    assert_int_equal(parse("-DEAD ldap\x01 down", &a), EA_DEAD);
    assert_string_equal(a.reason, "ldap? down");
    assert_int_equal(parse("+DATA item 1", &a), EA_DATA);
    assert_int_equal(parse("+DATA", &a), EA_DATA);
}

static void
test_parse_bad(void **state)
{
    struct extauth_answer a;
    static const char *const bad[] = {
        "",
        "+OK",
        "+OK alice",
        "+OKalice /d",
        "-ERRORS",
        "+DATAX",
        "hello",
        "+OK alice /d x",
        "+OK alice /d -1",
        "+OK alice /d 0 fwd=\"unterminated",
        "+OK alice /d 0 =\"x\"",
        "+OK alice /d 0 novalue",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &a), EA_BAD);
        assert_string_equal(a.user, "");
    }
    assert_int_equal(extauth_parse("+OK a /d\0x", 10, &a), EA_BAD); /* NUL inside */
    char big[EXTAUTH_LINE_MAX];
    memset(big, 'u', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "+OK ", 4);
    assert_int_equal(parse(big, &a), EA_BAD); /* a user longer than the field */
}

static void
test_format(void **state)
{
    char buf[200];

    (void)state;
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "s3cret", "192.0.2.1"), 29);
    assert_string_equal(buf, "check alice s3cret 192.0.2.1\n");
    assert_true(extauth_format_check(buf, sizeof buf, "alice", "s3cret", NULL) > 0);
    assert_string_equal(buf, "check alice s3cret\n");
    assert_true(extauth_format_lookup(buf, sizeof buf, "bob@x.example") > 0);
    assert_string_equal(buf, "lookup bob@x.example\n");
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "two words", NULL), -1);
    assert_int_equal(extauth_format_check(buf, sizeof buf, "alice", "a\nb", NULL), -1);
    assert_int_equal(extauth_format_check(buf, sizeof buf, "", "x", NULL), -1);
    assert_int_equal(extauth_format_lookup(buf, sizeof buf, "a\rb"), -1);
    assert_int_equal(extauth_format_lookup(buf, 8, "toolongname"), -1);
}

static void
test_drop_allowed(void **state)
{
    struct conf cf;

    (void)state;
    memset(&cf, 0, sizeof cf);
    cf.drop_path = (char *)"/var/spool/dmail/drop/";
    cf.mail_spool = (char *)"/var/mail";
    assert_true(extauth_drop_allowed(&cf, "/var/spool/dmail/drop/alice"));
    assert_true(extauth_drop_allowed(&cf, "/var/spool/dmail/drop/a/l/alice"));
    assert_true(extauth_drop_allowed(&cf, "/var/mail/bob"));
    assert_false(extauth_drop_allowed(&cf, "/var/mailx/bob"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/../../etc/passwd"));
    assert_false(extauth_drop_allowed(&cf, "/var/mail/x/.."));
    assert_false(extauth_drop_allowed(&cf, "/var/mail//x"));
    assert_false(extauth_drop_allowed(&cf, "var/mail/x"));
    assert_false(extauth_drop_allowed(&cf, "/etc/passwd"));
    assert_false(extauth_drop_allowed(&cf, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),     cmocka_unit_test(test_parse_other_kinds),
        cmocka_unit_test(test_parse_bad),    cmocka_unit_test(test_format),
        cmocka_unit_test(test_drop_allowed), cmocka_unit_test(test_off_loop_lookups_use_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
