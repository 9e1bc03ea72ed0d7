/*
 * test_route - the forward table (common/route.c) through conf_load_string, its
 * expansion rules, and deliver_route (dsmtp/deliver.c) on top of a users file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../dsmtp/deliver.h"
#include "conf.h"
#include "file.h"
#include "route.h"
#include "xmem.h"
#include "unit_util.h"

#define DOMS "host_domain example.org,example.net\n"

/* expand - route_expand of an address "local@domain" with is_user. */
static void
expand(const struct conf *c, const char *addr, route_user_fn is_user, struct route_expansion *x)
{
    char local[200];
    const char *at = strrchr(addr, '@');

    assert_non_null(at);
    snprintf(local, sizeof(local), "%.*s", (int)(at - addr), addr);
    route_expand(c->forward, local, at + 1, is_user, NULL, x);
}

/* dests - the expansion's addresses joined with ",". */
static const char *
dests(const struct route_expansion *x)
{
    static char buf[8192];
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < x->n; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "", x->dest[i]);
    return buf;
}

/* route_is - addr expands (with the user check is_user) to status and, when want is not
 * NULL, to the destinations want (joined with ","). */
static void
route_is(const struct conf *c, const char *addr, route_user_fn is_user, int status,
         const char *want)
{
    struct route_expansion x;

    expand(c, addr, is_user, &x);
    if ((int)x.status != status || (want != NULL && strcmp(dests(&x), want) != 0))
        fail_msg("%s: status %d to \"%s\", want %d to \"%s\"", addr, (int)x.status, dests(&x),
                 status, want != NULL ? want : "(any)");
}

/* users_bob_carol - is_user: bob and carol of any local domain, and postmaster. */
static bool
users_bob_carol(void *arg, const char *local, const char *domain)
{
    return strcasecmp(local, "bob") == 0 || strcasecmp(local, "carol") == 0 ||
           strcasecmp(local, "postmaster") == 0;
}

static void
test_parse_errors(void **state)
{
    uu_conf_errs(DOMS "max_rcpts 5\nforward a@example.org\n",
                 (const char *[]){"t.conf:3: forward: a@example.org has no destination", NULL});
    uu_conf_errs(DOMS "forward\n", (const char *[]){"t.conf:2: forward: missing value", NULL});
    uu_conf_errs(DOMS "forward  \t\n", (const char *[]){"t.conf:2: forward: missing value", NULL});
    uu_conf_errs(
        DOMS "forward bob bob@example.org\n",
        (const char *[]){"t.conf:2: forward: 'bob' is not a full address (missing @domain)", NULL});
    /* DMail's "*@domain" is the catch-all "@domain": giving both is giving it twice */
    uu_conf_errs(
        DOMS "forward *@example.org bob@example.org\nforward @Example.org x@example.org\n",
        (const char *[]){"t.conf:3: forward: @example.org is already forwarded at t.conf:2", NULL});
    uu_conf_errs(DOMS "forward a@example.org @example.org\n",
                 (const char *[]){"t.conf:2: forward: destination '@example.org' must be a full "
                                  "address",
                                  NULL});
    uu_conf_errs(
        DOMS "forward a@example.org bob@exa..mple.org\n",
        (const char *[]){"t.conf:2: forward: destination 'bob@exa..mple.org' is not a full "
                         "address (invalid domain)",
                         NULL});
    uu_conf_errs(DOMS "forward a@example.org ,, ,\n",
                 (const char *[]){"t.conf:2: forward: no destination", NULL});
    /* the same alias twice, in another case and quoting: the earlier line is named */
    uu_conf_errs(
        DOMS "forward Bob.Smith@Example.ORG bob@example.org\n"
             "forward x@example.org bob@example.org\n"
             "forward \"bob.smith\"@example.org carol@example.org\n"
             "forward @example.net bob@example.org\nforward @EXAMPLE.net carol@example.org\n",
        (const char *[]){"t.conf:4: forward: bob.smith@example.org is already "
                         "forwarded at t.conf:2",
                         "t.conf:6: forward: @example.net is already forwarded at t.conf:5", NULL});
    /* every problem of the file in one run; destinations of other domains are fine (they
     * are relayed) */
    uu_conf_errs("forward a@example.org bob@example.org,x@remote.test\n"
                 "forward b@example.org bob@[192.0.2.1]\n"
                 "forward bad\n"
                 "forward c@example.org bob@example.org\n"
                 "forward A@example.org carol@example.org\n" DOMS,
                 (const char *[]){
                     "t.conf:3: forward: 'bad' is not a full address (missing @domain)",
                     "t.conf:5: forward: a@example.org is already forwarded at t.conf:1", NULL});
    struct conf *r = uu_conf_ok(DOMS "forward a@example.org bob@example.org,x@remote.test\n");
    conf_unref(&r);
    /* without host_domain, localhost is the local domain */
    struct conf *c = uu_conf_ok("forward a@example.org bob@localhost\n");
    conf_unref(&c);
    /* more than ROUTE_EXPAND_MAX destinations on one line */
    char *text = xstrdup(DOMS "forward a@example.org b0@example.org");
    for (int i = 1; i <= ROUTE_EXPAND_MAX; i++) {
        char *t = xasprintf("%s,b%d@example.org", text, i);
        free(text);
        text = t;
    }
    uu_conf_errs(text, (const char *[]){"t.conf:2: forward: more than 100 destinations", NULL});
    free(text);
}

static void
test_include_file_line(void **state)
{
    char dir[] = "/tmp/test_route.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *main_conf = xasprintf("%s/dmail.conf", dir), *inc = xasprintf("%s/fwd.conf", dir);
    const char *fwd = "# aliases\nforward a@example.org bob@example.org\n"
                      "forward A@example.org carol@example.org\nforward z@example.org z@else.test\n"
                      "forward Z@example.org z@example.org\n";
    assert_int_equal(file_write_atomic(inc, fwd, strlen(fwd), 0644), 0);
    char *text = xasprintf(DOMS "#include fwd.conf\n");
    assert_int_equal(file_write_atomic(main_conf, text, strlen(text), 0644), 0);
    struct conf_diag d = {0};
    assert_null(conf_load(main_conf, &d));
    uu_diag_print(&d);
    assert_int_equal(d.n, 2);
    char *w0 = xasprintf("%s:3: forward: a@example.org is already forwarded at %s:2", inc, inc);
    char *w1 = xasprintf("%s:5: forward: z@example.org is already forwarded at %s:4", inc, inc);
    assert_string_equal(d.msgs[0], w0);
    assert_string_equal(d.msgs[1], w1);
    conf_diag_free(&d);
    unlink(inc);
    unlink(main_conf);
    rmdir(dir);
    free(w0);
    free(w1);
    free(text);
    free(main_conf);
    free(inc);
}

static void
test_exact_and_case(void **state)
{
    struct route_expansion x;
    struct conf *c =
        uu_conf_ok(DOMS "forward Bob.Smith@Example.ORG bob@example.org\n"
                        "forward \"john smith\"@example.org carol@EXAMPLE.org, "
                        "\"Bob\"@example.org\n"
                        "forward info@example.net bob@example.org,carol@example.org\n");

    assert_int_equal(route_count(c->forward), 3);
    expand(c, "bob.smith@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_FORWARDED);
    assert_string_equal(dests(&x), "bob@example.org");
    expand(c, "BOB.SMITH@EXAMPLE.ORG", NULL, &x);
    assert_string_equal(dests(&x), "bob@example.org");
    /* quoting removed: "john smith" is the unquoted local part */
    expand(c, "John Smith@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_FORWARDED);
    assert_string_equal(dests(&x), "carol@example.org,Bob@example.org");
    expand(c, "info@example.net", NULL, &x);
    assert_string_equal(dests(&x), "bob@example.org,carol@example.org");
    /* near misses */
    expand(c, "bob.smith@example.net", NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    assert_int_equal(x.n, 0);
    expand(c, "bobsmith@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    expand(c, "info@example.net.evil", NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    /* route_lookup: the raw list */
    const char *l = route_lookup(c->forward, "INFO", "Example.NET");
    assert_non_null(l);
    assert_string_equal(l, "bob@example.org");
    assert_string_equal(l + strlen(l) + 1, "carol@example.org");
    assert_string_equal(l + strlen(l) + 1 + strlen("carol@example.org") + 1, "");
    assert_null(route_lookup(c->forward, "", "example.net"));
    conf_unref(&c);
    /* no forwards: NULL table, nothing applies */
    c = uu_conf_ok(DOMS);
    assert_null(c->forward);
    expand(c, "bob@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    conf_unref(&c);
}

static void
test_catch_all(void **state)
{
    struct conf *c = uu_conf_ok(DOMS "forward @example.org carol@example.org\n"
                                     "forward sales@example.org bob@example.org\n"
                                     "forward @example.net catchall@example.net\n");
    route_user_fn bc = users_bob_carol;

    /* an unknown address of the domain goes to the catch-all */
    route_is(c, "nobody@example.org", bc, ROUTE_FORWARDED, "carol@example.org");
    /* users and postmaster keep their own mail; an exact alias wins */
    route_is(c, "Bob@example.org", bc, ROUTE_NONE, NULL);
    route_is(c, "postmaster@example.org", bc, ROUTE_NONE, NULL);
    route_is(c, "sales@example.org", bc, ROUTE_FORWARDED, "bob@example.org");
    /* other domains are not caught */
    route_is(c, "nobody@example.com", bc, ROUTE_NONE, NULL);
    /* a catch-all to a non-user of its own domain is final there, not a loop */
    route_is(c, "zed@example.net", bc, ROUTE_FORWARDED, "catchall@example.net");
    /* without a user check, the catch-all takes everything without its own alias */
    route_is(c, "bob@example.org", NULL, ROUTE_FORWARDED, "carol@example.org");
    conf_unref(&c);
}

static void
test_chains_and_copies(void **state)
{
    struct conf *c = uu_conf_ok(DOMS "forward a@example.org b@example.org,c@example.org\n"
                                     "forward b@example.org d@example.org,bob@example.org\n"
                                     "forward c@example.org d@example.org\n"
                                     "forward d@example.org carol@example.org\n"
                                     "forward bob@example.org bob@example.org,carol@example.org\n");

    /* b and c both end at d (once), and bob keeps a copy beside carol */
    route_is(c, "a@example.org", NULL, ROUTE_FORWARDED, "carol@example.org,bob@example.org");
    route_is(c, "bob@example.org", NULL, ROUTE_FORWARDED, "bob@example.org,carol@example.org");
    conf_unref(&c);
}

static void
test_loop(void **state)
{
    struct route_expansion x;
    struct conf *c = uu_conf_ok(DOMS "forward a@example.org b@example.org\n"
                                     "forward b@example.org bob@example.org,C@example.org\n"
                                     "forward c@example.org a@example.org\n"
                                     "forward self@example.org other@example.org\n"
                                     "forward other@example.org self@example.org\n");

    expand(c, "a@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_LOOP);
    assert_int_equal(x.n, 0);
    assert_string_equal(x.chain, "a@example.org -> b@example.org -> c@example.org -> "
                                 "a@example.org");
    expand(c, "c@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_LOOP);
    expand(c, "self@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_LOOP);
    assert_string_equal(x.chain, "self@example.org -> other@example.org -> self@example.org");
    assert_string_equal(route_status_text(x.status), "forwarding loop");
    conf_unref(&c);
}

static void
test_depth_and_width(void **state)
{
    struct route_expansion x;
    char *text = xstrdup(DOMS);

    /* h0 -> h1 -> ... -> h9 -> bob: h1..h8 is a chain of 8 aliases, h0..h8 one of 9 */
    for (int i = 0; i <= 8; i++) {
        char *t = xasprintf("%sforward h%d@example.org h%d@example.org\n", text, i, i + 1);
        free(text);
        text = t;
    }
    struct conf *c = uu_conf_ok(text);
    expand(c, "h1@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_FORWARDED);
    assert_string_equal(dests(&x), "h9@example.org");
    expand(c, "h0@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_DEPTH);
    assert_int_equal(x.n, 0);
    assert_non_null(strstr(x.chain, "h0@example.org -> h1@example.org"));
    assert_string_equal(route_status_text(x.status), "forwarding chain too long");
    conf_unref(&c);
    free(text);

    /* w -> 60 aliases of two addresses each: 120 > ROUTE_EXPAND_MAX */
    text = xstrdup(DOMS "forward w@example.org v0@example.org");
    for (int i = 1; i < 60; i++) {
        char *t = xasprintf("%s,v%d@example.org", text, i);
        free(text);
        text = t;
    }
    for (int i = 0; i < 60; i++) {
        char *t =
            xasprintf("%s\nforward v%d@example.org p%d@example.org,q%d@example.org", text, i, i, i);
        free(text);
        text = t;
    }
    char *t = xasprintf("%s\n", text);
    free(text);
    c = uu_conf_ok(t);
    expand(c, "w@example.org", NULL, &x);
    assert_int_equal(x.status, ROUTE_TOO_MANY);
    assert_int_equal(x.n, 0);
    expand(c, "v7@example.org", NULL, &x);
    assert_string_equal(dests(&x), "p7@example.org,q7@example.org");
    conf_unref(&c);
    free(t);
}

/* now_ms - a monotonic clock in milliseconds. */
static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_100000_entries(void **state)
{
    enum { N = 100000 };
    size_t cap = (size_t)N * 64 + 1000, o = 0;
    char *text = xmalloc(cap), buf[200], buf2[200];
    struct route_expansion x;

    o += (size_t)snprintf(text + o, cap - o, "host_domain bench.test\n");
    for (int i = 1; i < 500; i++)
        o += (size_t)snprintf(text + o, cap - o, "host_domain d%03d.bench.test\n", i);
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(text + o, cap - o, "forward alias%d@bench.test %s@bench.test\n", i,
                              i % 1000 == 0 ? "postmaster" : "bench");
    double t0 = now_ms();
    struct conf *c = uu_conf_ok(text);
    double t1 = now_ms();
    print_message("  conf_load of 500 domains + %d forward lines: %.1f ms; table %zu bytes\n", N,
                  t1 - t0, route_bytes(c->forward));
    assert_int_equal(route_count(c->forward), N);
    assert_true(route_bytes(c->forward) < 5u * 1024 * 1024);
    assert_true(t1 - t0 < 2000); /* well under 100 ms in the normal build; slack for ASan */
    double t2 = now_ms();
    for (int i = 0; i < N; i++) {
        char local[40];
        snprintf(local, sizeof(local), "ALIAS%d", i);
        route_expand(c->forward, local, "Bench.Test", NULL, NULL, &x);
        assert_int_equal(x.status, ROUTE_FORWARDED);
        assert_int_equal(x.n, 1);
        assert_string_equal(x.dest[0],
                            i % 1000 == 0 ? "postmaster@bench.test" : "bench@bench.test");
    }
    print_message("  %d expansions: %.1f ms\n", N, now_ms() - t2);
    route_expand(c->forward, "alias100000", "bench.test", NULL, NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    route_expand(c->forward, "alias5", "d001.bench.test", NULL, NULL, &x);
    assert_int_equal(x.status, ROUTE_NONE);
    /* the summary for reload comparisons changes with any line */
    assert_int_equal(conf_format(c, CONF_forward, buf, sizeof(buf)), 0);
    assert_non_null(strstr(buf, "100000 forwards, digest "));
    char *p = strstr(text, "alias777@bench.test bench@");
    assert_non_null(p);
    memcpy(p + strlen("alias777@bench.test "), "bencH", 5);
    struct conf *c2 = uu_conf_ok(text);
    assert_int_equal(conf_format(c2, CONF_forward, buf2, sizeof(buf2)), 0);
    assert_string_not_equal(buf, buf2);
    assert_int_equal(strncmp(buf, buf2, strlen("100000 forwards")), 0);
    conf_unref(&c);
    conf_unref(&c2);
    free(text);
}

static char tmp_users[] = "/tmp/test_route_users.XXXXXX";

static void
test_deliver_route(void **state)
{
    const char *hash = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQ"
                       "SpT0Y77vwPZN.Pq.H91p5hVO1";
    int fd = mkstemp(tmp_users);
    assert_true(fd >= 0);
    close(fd);
    char *users = xasprintf("bob:%s\ncarol:%s\n", hash, hash);
    assert_int_equal(file_write_atomic(tmp_users, users, strlen(users), 0600), 0);
    struct conf_diag d = {0};
    struct auth_db *db = auth_db_load(tmp_users, &d);
    conf_diag_free(&d);
    assert_non_null(db);
    char *text = xasprintf(DOMS "drop_path /tmp/test_route_drop\nusers_file %s\n"
                                "forward team@example.org bob@example.org, carol@example.org, "
                                "BOB@example.net\n"
                                "forward ghost@example.org bob@example.org,nobody@example.org\n"
                                "forward l1@example.org l2@example.org\n"
                                "forward l2@example.org l1@example.org\n"
                                "forward @example.net carol@example.org\n"
                                "forward pm@example.org postmaster@example.org\n"
                                "forward out@example.org bob@example.org, Far@Remote.TEST\n"
                                "forward r1@example.org r2@example.org\n"
                                "forward r2@example.org x@remote.test, r1@example.org\n",
                           tmp_users);
    struct conf *c = uu_conf_ok(text);
    struct deliver_route r;
    struct addr a;
    char err[100];

    /* one RCPT, three addresses, two distinct mailboxes (bob in both domains) */
    assert_int_equal(addr_parse_mailbox("Team@Example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_OK);
    assert_int_equal(r.fwd, ROUTE_FORWARDED);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.dest[0].addr, "bob@example.org");
    assert_string_equal(r.dest[1].addr, "carol@example.org");
    assert_string_equal(r.dest[2].addr, "BOB@example.net");
    assert_string_equal(r.dest[0].mailbox, r.dest[2].mailbox);
    assert_string_not_equal(r.dest[0].mailbox, r.dest[1].mailbox);
    deliver_route_free(&r);
    /* an unknown destination refuses the alias, naming it */
    assert_int_equal(addr_parse_mailbox("ghost@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_UNKNOWN);
    assert_string_equal(r.why, "nobody@example.org");
    assert_int_equal(r.n, 0);
    deliver_route_free(&r);
    assert_int_equal(addr_parse_mailbox("l1@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_LOOP);
    assert_int_equal(r.fwd, ROUTE_LOOP);
    assert_string_equal(r.why, "l1@example.org -> l2@example.org -> l1@example.org");
    deliver_route_free(&r);
    /* the catch-all of example.net: bob@example.net is a user (main-domain alias), zed is not */
    assert_int_equal(addr_parse_mailbox("bob@example.net", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_OK);
    assert_int_equal(r.fwd, ROUTE_NONE);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.dest[0].addr, "bob@example.net");
    deliver_route_free(&r);
    assert_int_equal(addr_parse_mailbox("zed@example.net", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.dest[0].addr, "carol@example.org");
    deliver_route_free(&r);
    /* no forward: unknown and remote as before */
    assert_int_equal(addr_parse_mailbox("zed@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_UNKNOWN);
    assert_int_equal(r.fwd, ROUTE_NONE);
    assert_int_equal(addr_parse_mailbox("x@remote.test", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_REMOTE);
    /* postmaster as a destination: accepted without a mailbox (queued) */
    assert_int_equal(addr_parse_mailbox("pm@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_OK);
    assert_int_equal(r.n, 1);
    assert_null(r.dest[0].mailbox);
    assert_false(r.dest[0].relay);
    deliver_route_free(&r);
    /* a destination of another domain is relayed: no mailbox, relay set */
    assert_int_equal(addr_parse_mailbox("out@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_OK);
    assert_int_equal(r.fwd, ROUTE_FORWARDED);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.dest[0].addr, "bob@example.org");
    assert_non_null(r.dest[0].mailbox);
    assert_false(r.dest[0].relay);
    assert_string_equal(r.dest[1].addr, "Far@remote.test");
    assert_null(r.dest[1].mailbox);
    assert_true(r.dest[1].relay);
    deliver_route_free(&r);
    /* a loop through a remote destination is still a loop */
    assert_int_equal(addr_parse_mailbox("r1@example.org", NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(deliver_route(c, db, &a, &r), DV_LOOP);
    assert_string_equal(r.why, "r1@example.org -> r2@example.org -> r1@example.org");
    assert_int_equal(r.n, 0);
    deliver_route_free(&r);
    conf_unref(&c);
    auth_db_unref(&db);
    unlink(tmp_users);
    free(text);
    free(users);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_include_file_line),
        cmocka_unit_test(test_exact_and_case), cmocka_unit_test(test_catch_all),
        cmocka_unit_test(test_chains_and_copies), cmocka_unit_test(test_loop),
        cmocka_unit_test(test_depth_and_width), cmocka_unit_test(test_100000_entries),
        cmocka_unit_test(test_deliver_route))
