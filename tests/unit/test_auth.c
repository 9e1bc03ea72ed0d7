/*
 * test_auth - users file parsing, lookups, crypt(3) checks, and auth_verify on a real
 * libuv loop (cache hits, wrong passwords, cancel, expiry, size cap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <crypt.h>

#include "auth.h"
#include "unit_util.h"

static char tmpdir[256];
static char yes_hash[CRYPT_OUTPUT_SIZE]; /* yescrypt of "s3cret" */
static char sha_hash[CRYPT_OUTPUT_SIZE]; /* SHA-512 of "hunter2" */

/* make_hash - a real crypt(3) hash of pw with a fresh salt of method prefix. */
static void
make_hash(const char *prefix, unsigned long count, const char *pw, char *out)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;

    assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof setting));
    memset(&cd, 0, sizeof cd);
    char *h = crypt_rn(pw, setting, &cd, sizeof cd);
    assert_non_null(h);
    assert_true(h[0] == '$');
    snprintf(out, CRYPT_OUTPUT_SIZE, "%s", h);
}

/* path_of - a file name inside tmpdir (static buffer per call site is enough). */
static const char *
path_of(const char *name)
{
    static char buf[4][300];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* write_file - name in tmpdir holds text. */
static const char *
write_file(const char *name, const char *text)
{
    const char *p = path_of(name);

    uu_write(p, text);
    return p;
}

/* setup - temp dir and two real hashes. */
static int
setup(void **state)
{
    (void)state;
    if (uu_tmpdir_into(tmpdir, sizeof tmpdir, "dmail-test-auth") < 0)
        return -1;
    make_hash("$y$", 0, "s3cret", yes_hash);
    make_hash("$6$", 1000, "hunter2", sha_hash);
    return 0;
}

/* teardown - remove the temp dir. */
static int
teardown(void **state)
{
    (void)state;
    return uu_rmtree(tmpdir);
}

/* test_conf - the hand-built configuration: example.org with alias.example. */
static char *domains[] = {"example.org", "alias.example"};
static struct conf test_cf;

/* conf_init - reset test_cf. */
static const struct conf *
conf_init(long cache, long ttl)
{
    memset(&test_cf, 0, sizeof test_cf);
    test_cf.host_domain.n = 2;
    test_cf.host_domain.v = domains;
    test_cf.main_domain = domains[0];
    test_cf.authent_cache = cache;
    test_cf.authent_cache_ttl = ttl;
    return &test_cf;
}

/* load_sample - the users file used by the lookup tests. */
static struct auth_db *
load_sample(struct conf_diag *d)
{
    char text[4096];
    snprintf(text, sizeof text,
             "# users\n"                                 /* 1 */
             "\n"                                        /* 2 */
             "  \t\n"                                    /* 3 */
             "Alice:%s\n"                                /* 4 */
             "bob@Example.ORG:%s:apop=xyz\n"             /* 5 */
             "carol@bücher.example:%s\n"                 /* 6 */
             "no colon here\n"                           /* 7 */
             ":%s\n"                                     /* 8 */
             "dave:plaintext\n"                          /* 9 */
             "eve@bad..domain:%s\n"                      /* 10 */
             "frank:%s:notanoption\n"                    /* 11 */
             "alice:%s\n"                                /* 12: duplicate */
             "alice@alias.example:%s\n"                  /* 13 */
             "gina:$1$abcdefgh$0123456789012345678901\n" /* 14: legacy */
             "   # indented comment\n"                   /* 15 */
             "hank:%s:\r\n"                              /* 16: empty options, CRLF */
             "ivan:*\n"                                  /* 17 */
             "jo hn:%s\n",                               /* 18 */
             yes_hash, sha_hash, sha_hash, sha_hash, sha_hash, sha_hash, sha_hash, sha_hash,
             sha_hash, sha_hash);
    const char *p = write_file("users", text);
    return auth_db_load(p, d);
}

/* test_load - good lines load, bad ones are reported with file:line and skipped. */
static void
test_load(void **state)
{
    (void)state;
    struct conf_diag d = {0};
    struct auth_db *db = load_sample(&d);
    char want[400];

    assert_non_null(db);
    for (size_t i = 0; i < d.n; i++)
        print_message("diag: %s\n", d.msgs[i]);
    /* alice, bob, carol, alice@alias, gina, hank */
    assert_int_equal(auth_db_count(db), 6);
    assert_int_equal(d.errors, 7);   /* lines 7, 8, 9, 10, 11, 17, 18 */
    assert_int_equal(d.warnings, 2); /* duplicate alice (12), legacy method (14) */
    assert_int_equal(d.n, 9);
    const char *p = path_of("users");
    int lines[] = {7, 8, 9, 10, 11, 17, 18, 12, 14};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        snprintf(want, sizeof want, "%s:%d: ", p, lines[i]);
        if (!uu_diag_has(&d, want, true))
            fail_msg("no message for line %d", lines[i]);
    }
    assert_true(uu_diag_has(&d, "duplicate user alice", true));
    assert_true(uu_diag_has(&d, ":12: warning:", true));
    assert_true(uu_diag_has(&d, ":14: warning:", true));
    /* the hash never appears in a message */
    for (size_t i = 0; i < d.n; i++)
        assert_null(strstr(d.msgs[i], sha_hash));
    conf_diag_free(&d);

    const struct conf *cf = conf_init(0, 0);
    const struct auth_user *u = auth_db_find(db, cf, "alice", "example.org");
    assert_non_null(u);
    assert_string_equal(u->name, "alice");
    assert_null(u->domain);
    assert_string_equal(u->hash, yes_hash); /* the first alice line wins */
    assert_null(u->options);
    u = auth_db_find(db, cf, "bob", "example.org");
    assert_non_null(u);
    assert_string_equal(u->domain, "example.org");
    assert_string_equal(u->options, "apop=xyz");
    u = auth_db_find(db, cf, "hank", "example.org");
    assert_non_null(u);
    assert_null(u->options);
    assert_string_equal(u->hash, sha_hash);
    auth_db_unref(&db);
    assert_null(db);
}

/* test_load_files - missing file, unreadable file, empty file. */
static void
test_load_files(void **state)
{
    (void)state;
    struct conf_diag d = {0};

    struct auth_db *db = auth_db_load(path_of("nonexistent"), &d);
    assert_non_null(db);
    assert_int_equal(auth_db_count(db), 0);
    assert_int_equal(d.warnings, 1);
    assert_int_equal(d.errors, 0);
    assert_true(uu_diag_has(&d, "nonexistent: warning:", true));
    auth_db_unref(&db);
    conf_diag_free(&d);

    /* a directory cannot be read */
    mkdir(path_of("adir"), 0700);
    db = auth_db_load(path_of("adir"), &d);
    assert_null(db);
    assert_int_equal(d.errors, 1);
    conf_diag_free(&d);

    db = auth_db_load(write_file("empty", ""), &d);
    assert_non_null(db);
    assert_int_equal(auth_db_count(db), 0);
    assert_int_equal(d.n, 0);
    /* NULL diag is allowed */
    struct auth_db *db2 = auth_db_load(write_file("bad", "x\n"), NULL);
    assert_non_null(db2);
    auth_db_unref(&db2);
    /* references */
    assert_ptr_equal(auth_db_ref(db), db);
    auth_db_unref(&db2); /* NULL is fine */
    struct auth_db *other = db;
    auth_db_unref(&other);
    assert_int_equal(auth_db_count(db), 0); /* still alive: one reference left */
    auth_db_unref(&db);
}

/* test_lookup - domain rules and case. */
static void
test_lookup(void **state)
{
    (void)state;
    struct conf_diag d = {0};
    struct auth_db *db = load_sample(&d);
    const struct conf *cf = conf_init(0, 0);
    const struct auth_user *u;

    conf_diag_free(&d);
    /* no-domain entry: main domain and aliases, any case, not other domains */
    u = auth_db_find(db, cf, "ALICE", "EXAMPLE.ORG");
    assert_non_null(u);
    assert_null(u->domain);
    assert_ptr_equal(auth_db_find(db, cf, "alice", NULL), u);
    assert_ptr_equal(auth_db_find(db, cf, "alice", ""), u);
    assert_null(auth_db_find(db, cf, "alice", "other.example"));
    /* an exact domain entry wins over the no-domain one */
    u = auth_db_find(db, cf, "Alice", "alias.example");
    assert_non_null(u);
    assert_string_equal(u->domain, "alias.example");
    /* hank has no domain: alias works */
    u = auth_db_find(db, cf, "hank", "Alias.Example");
    assert_non_null(u);
    assert_null(u->domain);
    /* a domain entry matches only its domain */
    assert_non_null(auth_db_find(db, cf, "BOB", "example.org"));
    assert_null(auth_db_find(db, cf, "bob", "alias.example"));
    u = auth_db_find(db, cf, "carol", "xn--bcher-kva.example");
    assert_non_null(u);
    assert_string_equal(u->domain, "xn--bcher-kva.example");
    assert_null(auth_db_find(db, cf, "carol", "example.org"));
    /* skipped lines are not there */
    assert_null(auth_db_find(db, cf, "dave", "example.org"));
    assert_null(auth_db_find(db, cf, "ivan", "example.org"));
    assert_null(auth_db_find(db, cf, "nobody", "example.org"));
    assert_null(auth_db_find(db, cf, "", "example.org"));
    assert_null(auth_db_find(NULL, cf, "alice", "example.org"));

    /* logins */
    u = auth_db_find_login(db, cf, "alice");
    assert_non_null(u);
    assert_null(u->domain);
    assert_ptr_equal(auth_db_find_login(db, cf, "Alice@Example.Org"), u);
    assert_string_equal(auth_db_find_login(db, cf, "alice@alias.example")->domain, "alias.example");
    assert_non_null(auth_db_find_login(db, cf, "bob")); /* bob@main domain */
    assert_null(auth_db_find_login(db, cf, "bob@alias.example"));
    assert_non_null(auth_db_find_login(db, cf, "carol@bücher.example"));
    assert_non_null(auth_db_find_login(db, cf, "carol@XN--BCHER-KVA.example"));
    assert_null(auth_db_find_login(db, cf, "carol"));
    assert_null(auth_db_find_login(db, cf, "alice@"));
    assert_null(auth_db_find_login(db, cf, "@example.org"));
    assert_null(auth_db_find_login(db, cf, "alice@other.example"));
    assert_null(auth_db_find_login(db, cf, NULL));
    auth_db_unref(&db);
}

/* test_check_hash - real yescrypt and SHA-512 hashes. */
static void
test_check_hash(void **state)
{
    (void)state;
    char h[CRYPT_OUTPUT_SIZE];

    assert_true(auth_check_hash("s3cret", yes_hash));
    assert_false(auth_check_hash("s3cret ", yes_hash));
    assert_false(auth_check_hash("S3cret", yes_hash));
    assert_false(auth_check_hash("", yes_hash));
    assert_true(auth_check_hash("hunter2", sha_hash));
    assert_false(auth_check_hash("hunter3", sha_hash));
    make_hash("$6$", 5000, "", h);
    assert_true(auth_check_hash("", h));
    assert_false(auth_check_hash("x", h));
    make_hash("$2b$", 4, "pässwörd", h);
    assert_true(auth_check_hash("pässwörd", h));
    /* a hash that is cut short never matches */
    snprintf(h, sizeof h, "%.*s", (int)strlen(sha_hash) - 1, sha_hash);
    assert_false(auth_check_hash("hunter2", h));
    /* a bare setting never matches */
    assert_false(auth_check_hash("hunter2", "$6$abcdefgh"));
    assert_false(auth_check_hash("hunter2", "*"));
    assert_false(auth_check_hash("hunter2", ""));
    assert_false(auth_check_hash("hunter2", NULL));
    assert_false(auth_check_hash(NULL, sha_hash));
}

/* Results of auth_verify callbacks. */
struct result {
    int calls;
    bool ok;
    const struct auth_user *user;
};

/* on_auth - record one answer. */
static void
on_auth(void *arg, bool ok, const struct auth_user *user)
{
    struct result *r = arg;
    r->calls++;
    r->ok = ok;
    r->user = user;
    if (user) /* must still be valid */
        assert_non_null(user->name);
}

/* verify_once - auth_verify and run the loop to the end; returns elapsed seconds. */
static double
verify_once(uv_loop_t *loop, struct auth_cache *c, struct auth_db *db, const struct conf *cf,
            const char *login, const char *pw, struct result *r)
{
    struct timespec a, b;
    memset(r, 0, sizeof *r);
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct auth_req *req = auth_verify(loop, c, db, cf, login, pw, on_auth, r);
    assert_non_null(req);
    assert_int_equal(r->calls, 0); /* never synchronously */
    uv_run(loop, UV_RUN_DEFAULT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(r->calls, 1);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* verify_db - a db with alice (yescrypt), bob (SHA-512) and more SHA-512 users. */
static struct auth_db *
verify_db(const char *name, const char *bob_hash)
{
    char text[2048];
    snprintf(text, sizeof text, "alice:%s\nbob:%s\ncarl:%s\ndora:%s\n", yes_hash, bob_hash,
             sha_hash, sha_hash);
    struct auth_db *db = auth_db_load(write_file(name, text), NULL);
    assert_non_null(db);
    assert_int_equal(auth_db_count(db), 4);
    return db;
}

/* The fixture of the verify tests: a loop, a cache, verify_db("v1", sha_hash) and a
 * configuration caching 100 logins for 300 s; the last answer in r. */
struct vfx {
    uv_loop_t loop;
    struct auth_cache *c;
    struct auth_db *db;
    const struct conf *cf;
    struct result r;
};

static int
verify_setup(void **state)
{
    struct vfx *v = calloc(1, sizeof(*v));

    assert_non_null(v);
    assert_int_equal(uv_loop_init(&v->loop), 0);
    v->c = auth_cache_new();
    assert_non_null(v->c);
    v->db = verify_db("v1", sha_hash);
    v->cf = conf_init(100, 300);
    *state = v;
    return 0;
}

static int
verify_teardown(void **state)
{
    struct vfx *v = *state;

    auth_cache_free(&v->c);
    assert_null(v->c);
    auth_db_unref(&v->db);
    assert_int_equal(uv_loop_close(&v->loop), 0);
    free(v);
    return 0;
}

/* check - verify login and pw with the fixture: the answer is ok, and the cache has had
 * hits hits so far (hits < 0: not looked at); the elapsed seconds. */
static double
check(struct vfx *v, const char *login, const char *pw, bool ok, long hits)
{
    double t = verify_once(&v->loop, v->c, v->db, v->cf, login, pw, &v->r);

    assert_int_equal(v->r.ok, ok);
    if (hits >= 0)
        assert_int_equal(auth_cache_hits(v->c), hits);
    return t;
}

/* test_verify - success, cache hit, wrong password, unknown user. */
static void
test_verify(void **state)
{
    struct vfx *v = *state;

    double t_known = check(v, "alice", "s3cret", true, 0);
    assert_non_null(v->r.user);
    assert_string_equal(v->r.user->name, "alice");
    assert_int_equal(auth_cache_count(v->c), 1);

    /* the same again comes from the cache, also through another spelling of the login */
    check(v, "alice", "s3cret", true, 1);
    assert_string_equal(v->r.user->name, "alice");
    check(v, "ALICE@example.org", "s3cret", true, 2);

    /* a wrong password is not a hit and is not cached */
    double t_wrong = check(v, "alice", "s3cret!", false, 2);
    assert_null(v->r.user);
    assert_int_equal(auth_cache_count(v->c), 1);
    check(v, "alice", "s3cret!", false, 2);

    /* an unknown user fails and costs a real crypt of the file's most common kind
     * (SHA-512, as bob's) */
    /* the fastest of five runs each: a load spike on the machine makes one run slow, never
     * one fast */
    double t_unknown = 1e9, t_sha = 1e9;
    for (int i = 0; i < 5; i++) {
        double t = check(v, "mallory", "s3cret", false, -1);
        assert_null(v->r.user);
        t_unknown = t < t_unknown ? t : t_unknown;
        t = check(v, "bob", "wrong", false, -1);
        t_sha = t < t_sha ? t : t_sha;
    }
    print_message("known %.4fs wrong %.4fs unknown %.4fs sha-512 %.4fs\n", t_known, t_wrong,
                  t_unknown, t_sha);
    assert_true(t_unknown > t_sha * 0.1);
    /* a user of another domain is unknown */
    check(v, "alice@other.example", "s3cret", false, -1);

    /* the password is copied: the caller's buffer may change at once */
    char pw[32] = "hunter2";
    memset(&v->r, 0, sizeof v->r);
    auth_verify(&v->loop, v->c, v->db, v->cf, "bob", pw, on_auth, &v->r);
    memset(pw, 'x', sizeof pw - 1);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    assert_int_equal(v->r.calls, 1);
    assert_true(v->r.ok);
    assert_int_equal(auth_cache_count(v->c), 2);

    /* no cache at all */
    verify_once(&v->loop, NULL, v->db, v->cf, "bob", "hunter2", &v->r);
    assert_true(v->r.ok);
    /* no db at all */
    verify_once(&v->loop, v->c, NULL, v->cf, "bob", "hunter2", &v->r);
    assert_false(v->r.ok);

    /* a changed password: the old one must not come from the cache */
    char newhash[CRYPT_OUTPUT_SIZE];
    make_hash("$6$", 1000, "n3w", newhash);
    struct auth_db *db1 = v->db;
    v->db = verify_db("v2", newhash);
    long hits = (long)auth_cache_hits(v->c);
    check(v, "bob", "hunter2", false, hits);
    check(v, "bob", "n3w", true, -1);
    auth_db_unref(&v->db);
    v->db = db1;
}

/* test_cache_limits - size cap, turning off, expiry. */
static void
test_cache_limits(void **state)
{
    struct vfx *v = *state;

    /* at most 2 entries */
    v->cf = conf_init(2, 300);
    check(v, "bob", "hunter2", true, -1);
    check(v, "carl", "hunter2", true, -1);
    check(v, "dora", "hunter2", true, -1);
    assert_int_equal(auth_cache_count(v->c), 2);
    /* the oldest (bob) went */
    check(v, "dora", "hunter2", true, 1);
    check(v, "bob", "hunter2", true, 1);

    /* authent_cache 0: nothing cached, nothing hit */
    auth_cache_free(&v->c);
    v->c = auth_cache_new();
    v->cf = conf_init(0, 300);
    check(v, "bob", "hunter2", true, -1);
    check(v, "bob", "hunter2", true, 0);
    assert_int_equal(auth_cache_count(v->c), 0);

    /* ttl 1 s: a hit at once, a miss after it expired */
    v->cf = conf_init(10, 1);
    check(v, "bob", "hunter2", true, -1);
    check(v, "bob", "hunter2", true, 1);
    uv_sleep(1100);
    uv_update_time(&v->loop);
    check(v, "bob", "hunter2", true, 1);
    assert_int_equal(auth_cache_count(v->c), 1);
}

/* test_cancel - cancelled requests never call back and free themselves. */
static void
test_cancel(void **state)
{
    struct vfx *v = *state;
    uv_loop_t *loop = &v->loop;
    struct result r = {0}, r2 = {0};
    const struct conf *cf = v->cf = conf_init(10, 300);

    /* cancel a request on the pool */
    struct auth_req *req = auth_verify(loop, v->c, v->db, cf, "bob", "hunter2", on_auth, &r);
    auth_cancel(req);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);

    /* cancel a cache hit */
    check(v, "carl", "hunter2", true, -1);
    memset(&r, 0, sizeof r);
    req = auth_verify(loop, v->c, v->db, cf, "carl", "hunter2", on_auth, &r);
    auth_cancel(req);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);
    auth_cancel(NULL);

    /* one of two cancelled: the other still answers */
    memset(&r, 0, sizeof r);
    req = auth_verify(loop, v->c, v->db, cf, "dora", "hunter2", on_auth, &r);
    auth_verify(loop, v->c, v->db, cf, "alice", "s3cret", on_auth, &r2);
    auth_cancel(req);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);
    assert_int_equal(r2.calls, 1);
    assert_true(r2.ok);

    /* more requests than pool threads: the last ones are cancelled before they run */
    struct result many[8];
    struct auth_req *reqs[8];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 8; i++)
        reqs[i] =
            auth_verify(loop, v->c, v->db, cf, "alice", i % 2 ? "s3cret" : "no", on_auth, &many[i]);
    for (int i = 4; i < 8; i++)
        auth_cancel(reqs[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(many[i].calls, i < 4 ? 1 : 0);
        if (i < 4)
            assert_int_equal(many[i].ok, i % 2);
    }

    /* the caller drops db and the cache while the work is pending */
    memset(&r, 0, sizeof r);
    auth_verify(loop, v->c, v->db, cf, "alice", "s3cret", on_auth, &r);
    auth_db_unref(&v->db);
    auth_cache_free(&v->c);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_true(r.ok); /* r.user was checked inside the callback; db is gone now */
}

/* test_unix_lookup - unix_user: accounts by name, any local domain, mailbox in spool. */
static void
test_unix_lookup(void **state)
{
    (void)state;
    const struct conf *cf = conf_init(0, 0);
    struct auth_db *db = auth_db_unix("/tmp/dmail-spool/");
    char path[64], small[8];

    assert_true(auth_db_is_unix(db));
    assert_int_equal(auth_db_count(db), 0);
    const struct auth_user *u = auth_db_find(db, cf, "root", NULL);
    assert_non_null(u);
    assert_string_equal(u->name, "root");
    assert_null(u->domain);
    assert_null(u->options);
    /* case-insensitive, every local domain, the same kept entry */
    assert_ptr_equal(auth_db_find(db, cf, "ROOT", "alias.example"), u);
    assert_ptr_equal(auth_db_find_login(db, cf, "Root@Example.org"), u);
    assert_ptr_equal(auth_db_find_login(db, cf, "root"), u);
    assert_null(auth_db_find(db, cf, "root", "remote.example"));
    assert_null(auth_db_find_login(db, cf, "root@remote.example"));
    /* names that cannot be accounts, or are none */
    const char *bad[] = {"",
                         "../root",
                         "-root",
                         ".root",
                         "ro/ot",
                         "ro ot",
                         "r\xc3\xa9",
                         "nosuchaccount-dmail",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(auth_db_find(db, cf, bad[i], NULL));
    assert_int_equal(auth_mailbox_path(db, cf, u, path, sizeof path), 0);
    assert_string_equal(path, "/tmp/dmail-spool/root");
    assert_int_equal(auth_mailbox_path(db, cf, u, small, sizeof small), -1);
    assert_int_equal(auth_mailbox_path(db, cf, NULL, path, sizeof path), -1);
    auth_db_unref(&db);
    assert_null(db);

    /* the users file keeps drop_path_for */
    struct conf_diag d = {0};
    db = auth_db_load(write_file("unixcmp", "alice:$6$abc$def\n"), &d);
    conf_diag_free(&d);
    test_cf.drop_path = "/drop";
    u = auth_db_find(db, cf, "alice", NULL);
    assert_non_null(u);
    assert_false(auth_db_is_unix(db));
    assert_int_equal(auth_mailbox_path(db, cf, u, path, sizeof path), 0);
    assert_string_equal(path, "/drop/alice");
    assert_null(auth_db_find(db, cf, "root", NULL));
    auth_db_unref(&db);
}

/* test_unix_cached - auth_db_find_cached: unix_user answers only from accounts found
 * before and says when a lookup would be needed; the users file answers as always. */
static void
test_unix_cached(void **state)
{
    (void)state;
    const struct conf *cf = conf_init(0, 0);
    struct auth_db *db = auth_db_unix(NULL);
    bool miss = false;

    assert_null(auth_db_find_cached(db, cf, "root", NULL, &miss));
    assert_true(miss); /* not looked up yet */
    miss = false;
    assert_null(auth_db_find_cached(db, cf, "nosuchaccount-dmail", NULL, &miss));
    assert_true(miss); /* could be an account */
    /* names that cannot be accounts, or a remote domain: no lookup needed */
    miss = false;
    assert_null(auth_db_find_cached(db, cf, "../root", NULL, &miss));
    assert_null(auth_db_find_cached(db, cf, "root", "remote.example", &miss));
    assert_null(auth_db_find_cached(db, cf, "", NULL, &miss));
    assert_false(miss);
    const struct auth_user *u = auth_db_find(db, cf, "root", NULL);
    assert_non_null(u);
    assert_ptr_equal(auth_db_find_cached(db, cf, "ROOT", "alias.example", &miss), u);
    assert_false(miss);
    assert_ptr_equal(auth_db_find_cached(db, cf, "root", NULL, NULL), u);
    /* absence is not kept: still a miss after a failed lookup */
    assert_null(auth_db_find(db, cf, "nosuchaccount-dmail", NULL));
    assert_null(auth_db_find_cached(db, cf, "nosuchaccount-dmail", NULL, &miss));
    assert_true(miss);
    auth_db_unref(&db);

    struct conf_diag d = {0};
    db = auth_db_load(write_file("cached", "alice:$6$abc$def\n"), &d);
    conf_diag_free(&d);
    miss = false;
    u = auth_db_find_cached(db, cf, "alice", NULL, &miss);
    assert_non_null(u);
    assert_ptr_equal(u, auth_db_find(db, cf, "alice", NULL));
    assert_null(auth_db_find_cached(db, cf, "bob", NULL, &miss));
    assert_false(miss);
    auth_db_unref(&db);
}

/* test_unix_verify - unix_user: wrong passwords, unknown and impossible names fail (with
 * or without access to the shadow file), nothing is cached, cancel works. */
static void
test_unix_verify(void **state)
{
    struct vfx *v = *state;
    const char *logins[] = {
        "root", "root@example.org", "root@remote.example", "nosuchaccount-dmail", "../root", ""};

    auth_db_unref(&v->db);
    v->db = auth_db_unix(NULL);
    v->cf = conf_init(10, 300);
    for (size_t i = 0; i < sizeof logins / sizeof logins[0]; i++) {
        check(v, logins[i], "not-the-password", false, 0);
        assert_null(v->r.user);
    }
    verify_once(&v->loop, NULL, v->db, v->cf, "root", "", &v->r);
    assert_false(v->r.ok);
    assert_int_equal(auth_cache_count(v->c), 0);
    assert_int_equal(auth_cache_hits(v->c), 0);

    memset(&v->r, 0, sizeof v->r);
    struct auth_req *req = auth_verify(&v->loop, v->c, v->db, v->cf, "root", "x", on_auth, &v->r);
    auth_cancel(req);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    assert_int_equal(v->r.calls, 0);

    /* db and cache dropped while the lookup is pending */
    auth_verify(&v->loop, v->c, v->db, v->cf, "root", "x", on_auth, &v->r);
    auth_db_unref(&v->db);
    auth_cache_free(&v->c);
    uv_run(&v->loop, UV_RUN_DEFAULT);
    assert_int_equal(v->r.calls, 1);
    assert_false(v->r.ok);
}

/* the verify tests, each with the vfx fixture */
#define VERIFY_TEST(t) cmocka_unit_test_setup_teardown(t, verify_setup, verify_teardown)

/* dcmp - qsort order of doubles. */
static int
dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* test_unknown_costs_as_known - no user enumeration by timing: in a users file of mostly
 * SHA-512 hashes (one yescrypt) an unknown user costs a SHA-512 crypt like carl's, not a
 * yescrypt one (over a hundred times more here); medians of 20 samples each. */
static void
test_unknown_costs_as_known(void **state)
{
    struct vfx *v = *state;
    double known[20], unknown[20];

    for (int i = 0; i < 20; i++) {
        known[i] = check(v, "carl", "wrong", false, -1);
        unknown[i] = check(v, "mallory", "wrong", false, -1);
    }
    qsort(known, 20, sizeof(double), dcmp);
    qsort(unknown, 20, sizeof(double), dcmp);
    double mk = (known[9] + known[10]) / 2, mu = (unknown[9] + unknown[10]) / 2;
    print_message("median known-wrong %.5fs unknown %.5fs\n", mk, mu);
    /* the same within scheduling noise (2 ms); a yescrypt dummy costs ~50 ms */
    assert_true(mu < mk * 3 + 0.002);
    assert_true(mk < mu * 3 + 0.002);
}

UU_MAIN(setup, teardown, cmocka_unit_test(test_load), cmocka_unit_test(test_load_files),
        cmocka_unit_test(test_lookup), cmocka_unit_test(test_check_hash), VERIFY_TEST(test_verify),
        VERIFY_TEST(test_unknown_costs_as_known), VERIFY_TEST(test_cache_limits),
        VERIFY_TEST(test_cancel), cmocka_unit_test(test_unix_lookup), VERIFY_TEST(test_unix_verify),
        cmocka_unit_test(test_unix_cached))
