/*
 * test_smtp_deliver - recipient resolution, back-off, the blocking delivery helpers and a
 * delivery batch on a real loop (dsmtp/deliver.c).
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

#include "../../dsmtp/deliver.h"
#include "dsnparam.h"
#include "file.h"
#include "qfile.h"
#include "unit_util.h"

static char *tmpdir; /* the group's scratch directory */

/* load - a config with the given extra lines; users file with bob, alice@example.net,
 * admin and (if with_pm) postmaster. */
static struct conf *
load(const char *extra, bool with_pm, struct auth_db **db)
{
    char text[2048], users[300];
    struct conf_diag diag = {0};
    struct conf *cf;
    const char *hash =
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
        "H91p5hVO1";

    snprintf(users, sizeof(users), "%s/users", tmpdir);
    snprintf(text, sizeof(text), "bob:%s\nalice@example.net:%s\nadmin:%s\n%s%s%s", hash, hash, hash,
             with_pm ? "postmaster:" : "", with_pm ? hash : "", with_pm ? "\n" : "");
    uu_write(users, text);
    snprintf(text, sizeof(text),
             "host_domain example.org, example.net\ndrop_path %s/drop\nspool_dir %s/spool\n"
             "users_file %s\nlock_timeout 1\n%s",
             tmpdir, tmpdir, users, extra);
    cf = uu_conf("test.conf", text);
    *db = auth_db_load(users, &diag);
    conf_diag_free(&diag);
    assert_non_null(*db);
    return cf;
}

struct resolve_case {
    const char *local, *domain;
    enum deliver_kind kind;
    const char *user;
};

static const struct resolve_case resolve_cases[] = {
    {"bob", "example.org", DK_LOCAL, "bob"},
    {"BOB", "EXAMPLE.ORG", DK_LOCAL, "bob"},
    {"bob", "example.net", DK_LOCAL, "bob"},
    {"alice", "example.net", DK_LOCAL, "alice@example.net"},
    {"alice", "example.org", DK_UNKNOWN, NULL},
    {"nobody", "example.org", DK_UNKNOWN, NULL},
    {"postmaster", "example.org", DK_LOCAL, "admin"},
    {"PostMaster", "example.net", DK_LOCAL, "admin"},
    {"root", "example.org", DK_LOCAL, "admin"},
    {"MAILER-DAEMON", "example.org", DK_LOCAL, "admin"},
    {"Abuse", "example.net", DK_LOCAL, "admin"},
    {"root", "example.com", DK_REMOTE, NULL},
    {"hostmaster", "example.org", DK_UNKNOWN, NULL},
    {"bob", "example.com", DK_REMOTE, NULL},
    {"postmaster", "example.com", DK_REMOTE, NULL},
};

static void
test_resolve(void **state)
{
    struct auth_db *db;
    struct conf *cf = load("sysadmin admin\n", false, &db);
    struct deliver_target t;
    char want[600];

    (void)state;
    for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]); i++) {
        const struct resolve_case *c = &resolve_cases[i];
        enum deliver_kind k = deliver_resolve(cf, db, c->local, c->domain, &t);
        if (k != c->kind || t.kind != k)
            fail_msg("case %zu %s@%s: kind %d want %d", i, c->local, c->domain, k, c->kind);
        if (c->user != NULL) {
            assert_string_equal(t.user, c->user);
            snprintf(want, sizeof(want), "%s/drop/%s", tmpdir, c->user);
            assert_string_equal(t.mailbox, want);
        }
    }
    /* no users at all */
    assert_int_equal(deliver_resolve(cf, NULL, "bob", "example.org", &t), DK_UNKNOWN);
    assert_int_equal(deliver_resolve(cf, NULL, "postmaster", "example.org", &t), DK_POSTMASTER);
    auth_db_unref(&db);
    conf_unref(&cf);
}

/* route_of - deliver_route_cached (and with expect_miss false, deliver_route) for addr. */
static enum deliver_verdict
route_of(struct conf *cf, struct auth_db *db, const char *text, bool cached, bool *miss,
         struct deliver_route *r)
{
    struct addr a;
    char err[100];

    assert_int_equal(addr_parse_mailbox(text, NULL, &a, err, sizeof(err)), 0);
    return cached ? deliver_route_cached(cf, db, &a, r, miss) : deliver_route(cf, db, &a, r);
}

/* test_route_cached - deliver_route_cached: no lookup; a Unix account not found yet (the
 * recipient or a forward's destination) is a miss, once found it answers as
 * deliver_route; the users file never misses. */
static void
test_route_cached(void **state)
{
    struct auth_db *db;
    struct conf *cf =
        load("forward list@example.org root@example.org, daemon@example.net\n", false, &db);
    struct deliver_route r, full;
    char spool[300];
    bool miss = true;

    (void)state;
    assert_int_equal(route_of(cf, db, "bob@example.org", true, &miss, &r), DV_OK);
    assert_false(miss);
    assert_int_equal(r.n, 1);
    deliver_route_free(&r);
    assert_int_equal(route_of(cf, db, "nobody@example.org", true, &miss, &r), DV_UNKNOWN);
    assert_false(miss);
    deliver_route_free(&r);
    auth_db_unref(&db);

    snprintf(spool, sizeof(spool), "%s/mail", tmpdir);
    db = auth_db_unix(spool);
    route_of(cf, db, "list@example.org", true, &miss, &r);
    assert_true(miss);
    deliver_route_free(&r);
    assert_int_equal(route_of(cf, db, "list@example.org", false, NULL, &full), DV_OK);
    assert_int_equal(full.n, 2);
    miss = true;
    assert_int_equal(route_of(cf, db, "list@example.org", true, &miss, &r), DV_OK);
    assert_false(miss);
    assert_int_equal(r.n, full.n);
    for (size_t i = 0; i < r.n; i++) {
        assert_string_equal(r.dest[i].addr, full.dest[i].addr);
        assert_string_equal(r.dest[i].mailbox, full.dest[i].mailbox);
    }
    deliver_route_free(&r);
    deliver_route_free(&full);
    /* the destinations were found: the account itself is cached now */
    assert_int_equal(route_of(cf, db, "ROOT@example.net", true, &miss, &r), DV_OK);
    assert_false(miss);
    deliver_route_free(&r);
    /* absence is not kept: an unknown name always needs the lookup */
    assert_int_equal(route_of(cf, db, "nosuchaccount-dmail@example.org", false, NULL, &r),
                     DV_UNKNOWN);
    deliver_route_free(&r);
    route_of(cf, db, "nosuchaccount-dmail@example.org", true, &miss, &r);
    assert_true(miss);
    deliver_route_free(&r);
    /* remote needs no lookup */
    assert_int_equal(route_of(cf, db, "x@remote.example", true, &miss, &r), DV_REMOTE);
    assert_false(miss);
    deliver_route_free(&r);
    auth_db_unref(&db);
    conf_unref(&cf);
}

static void
test_postmaster(void **state)
{
    static const struct {
        const char *conf;
        bool with_pm; /* the users file has postmaster */
        const char *local, *domain;
        int kind;
        const char *user; /* DK_LOCAL: t.user */
    } cases[] = {
        /* sysadmin unset: the users-file user postmaster, for every role */
        {"", true, "postmaster", "example.net", DK_LOCAL, "postmaster"},
        {"", true, "ROOT", "example.org", DK_LOCAL, "postmaster"},
        /* neither: queued */
        {"", false, "postmaster", "example.org", DK_POSTMASTER, NULL},
        /* sysadmin at a local domain with domain given */
        {"sysadmin alice@example.net\n", false, "postmaster", "example.org", DK_LOCAL,
         "alice@example.net"},
        /* a user of the role's name has it, before sysadmin */
        {"sysadmin admin\n", true, "Postmaster", "example.org", DK_LOCAL, "postmaster"},
        {"sysadmin admin\n", true, "abuse", "example.org", DK_LOCAL, "admin"},
        /* sysadmin a local address without a user: queued */
        {"sysadmin ghost\n", false, "postmaster", "example.org", DK_POSTMASTER, NULL},
        {"sysadmin ghost\n", false, "abuse", "example.org", DK_POSTMASTER, NULL},
    };
    struct auth_db *db;
    struct deliver_target t;
    struct conf *cf;
    struct deliver_route r;
    struct addr a;
    char err[100];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cf = load(cases[i].conf, cases[i].with_pm, &db);
        assert_int_equal(deliver_resolve(cf, db, cases[i].local, cases[i].domain, &t),
                         cases[i].kind);
        if (cases[i].user != NULL)
            assert_string_equal(t.user, cases[i].user);
        auth_db_unref(&db);
        conf_unref(&cf);
    }
    /* sysadmin of another domain: relayed there */
    cf = load("sysadmin Root@Elsewhere.Example\n", true, &db);
    assert_int_equal(deliver_resolve(cf, db, "root", "example.org", &t), DK_RELAY);
    assert_string_equal(t.addr, "Root@elsewhere.example");
    assert_int_equal(addr_parse_mailbox("mailer-daemon@example.net", NULL, &a, err, sizeof(err)),
                     0);
    assert_int_equal(deliver_route(cf, db, &a, &r), DV_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.dest[0].addr, "Root@elsewhere.example");
    assert_null(r.dest[0].mailbox);
    assert_true(r.dest[0].relay);
    deliver_route_free(&r);
    auth_db_unref(&db);
    conf_unref(&cf);
}

static void
test_next_try(void **state)
{
    struct auth_db *db;
    struct conf *cf = load("queue_retry 300\n", false, &db);
    const long want[] = {300, 300, 600, 1200, 2400, 3600, 3600, 3600};

    (void)state;
    for (int a = 1; a < 8; a++)
        assert_int_equal(deliver_next_try(cf, 1000, a), 1000 + want[a]);
    assert_int_equal(deliver_next_try(cf, 1000, 1000), 1000 + 3600);
    auth_db_unref(&db);
    conf_unref(&cf);
    cf = load("queue_retry 2h\n", false, &db);
    assert_int_equal(deliver_next_try(cf, 0, 1), 7200);
    assert_int_equal(deliver_next_try(cf, 0, 5), 7200);
    auth_db_unref(&db);
    conf_unref(&cf);
    cf = load("queue_retry 60\nqueue_retry_max 5m\n", false, &db);
    assert_int_equal(deliver_next_try(cf, 0, 1), 60);
    assert_int_equal(deliver_next_try(cf, 0, 3), 240);
    assert_int_equal(deliver_next_try(cf, 0, 4), 300);
    assert_int_equal(deliver_next_try(cf, 0, 40), 300);
    auth_db_unref(&db);
    conf_unref(&cf);
}

static void
test_one_and_queue(void **state)
{
    struct auth_db *db;
    struct conf *cf = load("", false, &db);
    char path[600], err[200], *text;
    size_t len;
    struct qfile q;
    const char *msg = "Subject: hi\n\nFrom the start\n";
    struct deliver_qrcpt r[2] = {{"bob@example.org", 1, "mailbox locked", DSN_NOTIFY_SUCCESS,
                                  "rfc822;b+2Bx@example.org", false, "X-Mine:+20bob"},
                                 {"postmaster@example.org", 0, NULL, 0, NULL, false, NULL}};
    struct deliver_dsn dsn = {DSN_RET_HDRS, "ENV+2B1", false, NULL};

    (void)state;
    snprintf(path, sizeof(path), "%s/drop/one", tmpdir);
    assert_int_equal(
        deliver_one(cf, path, "a@b.example", "X-Mine: bob\n", msg, strlen(msg), err, sizeof(err)),
        DROP_OK);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    text = calloc(1, 4096);
    len = fread(text, 1, 4095, f);
    fclose(f);
    assert_true(len > 0);
    assert_non_null(strstr(text, "From a@b.example "));
    /* the recipient's own fields between Return-Path and the message */
    assert_non_null(strstr(text, "\nReturn-Path: <a@b.example>\nX-Mine: bob\nSubject: hi\n"));
    assert_non_null(strstr(text, "\n>From the start\n"));
    free(text);

    assert_int_equal(deliver_queue_write(cf, "qid.1", "a@b.example", "smtp 127.0.0.1 sid=1", &dsn,
                                         42, r, 2, msg, strlen(msg), NULL),
                     0);
    snprintf(path, sizeof(path), "%s/spool/queue/qid.1", tmpdir);
    memset(&q, 0, sizeof(q));
    assert_int_equal(qfile_read(path, &q, err, sizeof(err)), 0);
    assert_string_equal(q.id, "qid.1");
    assert_string_equal(q.sender, "a@b.example");
    assert_int_equal(q.arrival, 42);
    assert_int_equal(q.nrcpt, 2);
    assert_string_equal(q.rcpt[0].addr, "bob@example.org");
    assert_int_equal(q.rcpt[0].attempts, 1);
    assert_true(q.rcpt[0].next_try > 0);
    assert_string_equal(q.rcpt[0].last_error, "mailbox locked");
    assert_int_equal(q.rcpt[1].attempts, 0);
    assert_int_equal(q.rcpt[1].next_try, 0);
    /* the DSN parameters went into the file */
    assert_int_equal(q.ret, DSN_RET_HDRS);
    assert_string_equal(q.envid, "ENV+2B1");
    assert_int_equal(q.rcpt[0].notify, DSN_NOTIFY_SUCCESS);
    assert_string_equal(q.rcpt[0].orcpt, "rfc822;b+2Bx@example.org");
    assert_int_equal(q.rcpt[1].notify, 0);
    assert_null(q.rcpt[1].orcpt);
    assert_string_equal(q.rcpt[0].xheader, "X-Mine:+20bob"); /* as given: xtext */
    assert_null(q.rcpt[1].xheader);
    assert_int_equal(q.text_len, strlen(msg));
    assert_memory_equal(q.text, msg, strlen(msg));
    qfile_free(&q);
    /* no id given: the queue file gets a fresh one */
    assert_int_equal(
        deliver_queue_write(cf, "", "a@b.example", "x", NULL, 42, r, 1, msg, strlen(msg), NULL), 0);
    auth_db_unref(&db);
    conf_unref(&cf);
}

struct batch_result {
    int calls;
    struct deliver_outcome o;
};

/* batch_cb - record the outcome. */
static void
batch_cb(void *arg, const struct deliver_outcome *o)
{
    struct batch_result *r = arg;

    r->calls++;
    r->o = *o;
}

static void
test_batch(void **state)
{
    struct auth_db *db;
    struct conf *cf = load("", false, &db);
    uv_loop_t loop;
    char m1[600], m2[600], bad[600];
    struct batch_result res = {0};
    long counter = 0;
    struct deliver_batch *b;

    (void)state;
    uv_loop_init(&loop);
    snprintf(m1, sizeof(m1), "%s/drop/b1", tmpdir);
    snprintf(m2, sizeof(m2), "%s/drop/b2", tmpdir);
    snprintf(bad, sizeof(bad), "%s/drop", tmpdir); /* a directory: permanent failure */
    b = deliver_new(cf, "bid.1", "s@x.example", "test", NULL, strdup("Subject: b\n\nx\n"), 15);
    deliver_add(b, "one@example.org", m1, NULL, 0, NULL);
    deliver_add(b, "two@example.org", m2, NULL, 0, NULL);
    deliver_add(b, "one-again@example.org", m1, NULL, 0, NULL); /* same mailbox: once */
    deliver_add(b, "dir@example.org", bad, NULL, 0, NULL);
    deliver_run(&loop, b, &counter, batch_cb, &res);
    assert_int_equal(counter, 1);
    assert_int_equal(res.calls, 0); /* never before the loop runs */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(res.calls, 1);
    assert_int_equal(counter, 0);
    assert_int_equal(res.o.delivered, 2);
    assert_int_equal(res.o.queued, 0);
    assert_int_equal(res.o.failed, 1);
    assert_false(res.o.qfile_failed);

    /* a recipient without a mailbox is queued; a detached batch still finishes */
    memset(&res, 0, sizeof(res));
    b = deliver_new(cf, "bid.2", "s@x.example", "test", NULL, strdup("x\n"), 2);
    deliver_add(b, "postmaster@example.org", NULL, "no mailbox", 0, NULL);
    deliver_add(b, "one@example.org", m1, NULL, 0, NULL);
    deliver_run(&loop, b, &counter, batch_cb, &res);
    deliver_detach(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(res.calls, 0);
    assert_int_equal(counter, 0);
    snprintf(m2, sizeof(m2), "%s/spool/queue/bid.2", tmpdir);
    assert_int_equal(access(m2, F_OK), 0);
    uv_loop_close(&loop);
    auth_db_unref(&db);
    conf_unref(&cf);
}

/* setup - a scratch directory. */
static int
setup(void **state)
{
    char path[600];

    if (uu_setup_dir(state, UU_DIR_MAX, "test_smtp_deliver") < 0)
        return -1;
    tmpdir = *state;
    snprintf(path, sizeof(path), "%s/spool/queue", tmpdir);
    if (file_mkdirs(path, 0700) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/spool/tmp", tmpdir);
    return file_mkdirs(path, 0700);
}

UU_MAIN(setup, uu_teardown_dir, cmocka_unit_test(test_resolve), cmocka_unit_test(test_postmaster),
        cmocka_unit_test(test_next_try), cmocka_unit_test(test_one_and_queue),
        cmocka_unit_test(test_batch), cmocka_unit_test(test_route_cached))
