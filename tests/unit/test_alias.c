/*
 * test_alias - alias files (common/mail/alias.c): the parser (continuation lines,
 * comments, quoting, :include:, errors with file:line), the settings, and the lookup order
 * through route_expand_aliases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "alias.h"
#include "conf.h"
#include "route.h"
#include "xmem.h"
#include "unit_util.h"

/* parse - text as the file "a.txt" of domain dom (trusted); the errors, and *rt. */
static int
parse(const char *text, const char *dom, bool trusted, struct route **rt, struct conf_diag *d)
{
    char *copy = xstrdup(text);
    int errors = alias_parse(rt, "a.txt", dom, copy, strlen(copy), trusted, d);

    free(copy);
    return errors;
}

/* list - a destination list joined with "," (type bytes shown as L: P: F:). */
static const char *
list(const char *l)
{
    static char buf[4096];
    size_t o = 0;

    buf[0] = '\0';
    for (; l != NULL && *l != '\0'; l += strlen(l) + 1) {
        const char *t = *l == ROUTE_D_LOCAL     ? "L:"
                        : *l == ROUTE_D_PROGRAM ? "P:"
                        : *l == ROUTE_D_FILE    ? "F:"
                                                : "";
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s%s", o ? "," : "", t, *t ? l + 1 : l);
    }
    return buf;
}

static void
test_parse(void **state)
{
    struct conf_diag d = {0};
    struct route *rt = NULL;

    (void)state;
    assert_int_equal(parse("# a comment\n"
                           "\n"
                           "Bob.Smith: bsmith\n"
                           "list: a, b@example.org,\n"
                           "  c,\n"
                           "# inside\n"
                           "\td@remote.test\n"
                           "\"joe doe\": \"x y\"@example.org, joe\n"
                           "prog: \"|/usr/bin/vacation bob\", /var/mail/archive\n"
                           "*: postmaster\r\n",
                           "example.org", true, &rt, &d),
                     0);
    assert_int_equal(route_count(rt), 5);
    assert_string_equal(list(route_lookup(rt, "bob.smith", "example.org")), "L:bsmith");
    assert_string_equal(list(route_lookup(rt, "LIST", "Example.org")),
                        "L:a,b@example.org,L:c,d@remote.test");
    assert_string_equal(list(route_lookup(rt, "joe doe", "example.org")),
                        "\"x y\"@example.org,L:joe");
    assert_string_equal(list(route_lookup(rt, "prog", "example.org")),
                        "P:|/usr/bin/vacation bob,F:/var/mail/archive");
    assert_string_equal(list(route_lookup(rt, "", "example.org")), "L:postmaster");
    assert_null(route_lookup(rt, "inside", "example.org"));
    route_free(&rt);
    conf_diag_free(&d);
}

static void
test_parse_errors(void **state)
{
    struct conf_diag d = {0};
    struct route *rt = NULL;

    (void)state;
    assert_int_equal(parse("ok: bob\n"
                           "no colon here\n"
                           "a@b: bob\n"
                           "empty:\n"
                           "bad: bob smith\n"
                           "ok: carol\n"
                           "inc: :include:/etc/passwd\n"
                           "x: |\n",
                           "", false, &rt, &d),
                     7);
    uu_diag_print(&d);
    assert_true(uu_diag_has(&d, "a.txt:2: write NAME: DESTINATION[, DESTINATION...]", false));
    assert_true(uu_diag_has(&d, "a.txt:3: 'a@b' is not a local part", false));
    assert_true(uu_diag_has(&d, "a.txt:4: empty has no destination", false));
    assert_true(uu_diag_has(&d, "a.txt:5: destination 'bob smith' is not an address", true));
    assert_true(uu_diag_has(&d, "a.txt:6: alias: ok@ is already aliased at a.txt:1", false));
    assert_true(uu_diag_has(
        &d, "a.txt:7: :include:/etc/passwd: refused: the alias file is not owned by root", false));
    assert_true(uu_diag_has(&d, "a.txt:8: destination '|' is empty", false));
    route_free(&rt);
    conf_diag_free(&d);
}

static void
test_include(void **state)
{
    char *dir = uu_tmpdir("alias"), text[1024];
    char *inc = uu_put(dir, "inc", "# the list\nann, ben@example.org\ncid\n");
    char *bad = uu_put(dir, "bad", "x\n");
    char *nested = uu_put(dir, "nested", ":include:/dev/null\n");
    struct conf_diag d = {0};
    struct route *rt = NULL;

    (void)state;
    if (geteuid() != 0)
        skip();
    chmod(inc, 0644);
    chmod(bad, 0666);
    snprintf(text, sizeof(text), "l: me, :include:%s\nb: :include:%s\nn: :include:%s\n", inc, bad,
             nested);
    assert_int_equal(parse(text, "example.org", true, &rt, &d), 2);
    uu_diag_print(&d);
    assert_string_equal(list(route_lookup(rt, "l", "example.org")),
                        "L:me,L:ann,ben@example.org,L:cid");
    assert_true(uu_diag_has(&d, "not owned by root, or group/world-writable", true));
    assert_true(uu_diag_has(&d, "a.txt:3: :include: does not nest", false));
    conf_diag_free(&d);
    route_free(&rt);
    /* a file of another owner is refused too */
    chmod(bad, 0644);
    assert_int_equal(chown(bad, 65534, 65534), 0);
    snprintf(text, sizeof(text), "b: :include:%s\n", bad);
    assert_int_equal(parse(text, "example.org", true, &rt, &d), 1);
    route_free(&rt);
    conf_diag_free(&d);
    free(inc);
    free(bad);
    free(nested);
    uu_tmpdir_free(dir);
}

/* users - is_user: bob and carol of any domain. */
static bool
users(void *arg, const char *local, const char *domain)
{
    (void)arg;
    (void)domain;
    return strcasecmp(local, "bob") == 0 || strcasecmp(local, "carol") == 0;
}

/* expands - addr through c's forwards and alias files: status and destinations. */
static void
expands(const struct conf *c, const char *addr, int status, const char *want)
{
    struct route_expansion *x = xmalloc(sizeof(*x));
    char local[200], buf[4096];
    const char *at = strrchr(addr, '@');
    size_t o = 0;

    snprintf(local, sizeof(local), "%.*s", (int)(at - addr), addr);
    route_expand_aliases(c->forward, c->aliases, local, at + 1, users, NULL, x);
    buf[0] = '\0';
    for (size_t i = 0; i < x->n; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "", x->dest[i]);
    if ((int)x->status != status || strcmp(buf, want) != 0)
        fail_msg("%s: %d \"%s\" (chain %s), want %d \"%s\"", addr, (int)x->status, buf, x->chain,
                 status, want);
    free(x);
}

static void
test_precedence(void **state)
{
    char *dir = uu_tmpdir("alias"), conf[2048];
    char *glob = uu_put(dir, "global", "a: bob\nb: bob\nc: carol\nroot: bob\n*: carol\n");
    char *dom = uu_put(dir, "dom",
                       "a: carol\nprog: bob, |/bin/true\nloop: loop2\nloop2: loop\n"
                       "self: self, bob\nfar: x@remote.test\n");
    struct conf *c;

    (void)state;
    snprintf(conf, sizeof(conf),
             "host_domain example.org, example.net\n"
             "forward b@example.org carol@example.org\n"
             "alias_file %s\n"
             "alias_file_domain %s example.org\n" /* file first: DMail's order is unknown */
             "alias w*.?@example.org carol@example.org\n"
             "alias k*@example.org bob@example.org\n",
             glob, dom);
    c = uu_conf_ok(conf);
    expands(c, "b@example.org", ROUTE_FORWARDED, "carol@example.org");    /* forward first */
    expands(c, "A@example.org", ROUTE_FORWARDED, "carol@example.org");    /* domain file */
    expands(c, "a@example.net", ROUTE_FORWARDED, "bob@example.net");      /* global: own domain */
    expands(c, "c@example.org", ROUTE_FORWARDED, "carol@example.org");    /* fallthrough */
    expands(c, "wx.y@example.org", ROUTE_FORWARDED, "carol@example.org"); /* wildcard */
    expands(c, "KX@example.org", ROUTE_FORWARDED, "bob@example.org");
    expands(c, "bob@example.org", ROUTE_NONE, "");                          /* a user */
    expands(c, "nobody@example.org", ROUTE_FORWARDED, "carol@example.org"); /* global "*" */
    expands(c, "a@remote.test", ROUTE_NONE, "");                            /* not a local domain */
    expands(c, "prog@example.org", ROUTE_FORWARDED, "bob@example.org,\x01|/bin/true");
    expands(c, "loop@example.org", ROUTE_LOOP, "");
    expands(c, "self@example.org", ROUTE_FORWARDED, "self@example.org,bob@example.org");
    expands(c, "far@example.org", ROUTE_FORWARDED, "x@remote.test");
    conf_unref(&c);
    /* fallthrough off: a domain with its own file no longer falls back to the global one */
    strcat(conf, "alias_fallthrough false\n");
    c = uu_conf_ok(conf);
    expands(c, "c@example.org", ROUTE_NONE, "");
    expands(c, "root@example.org", ROUTE_NONE, "");
    expands(c, "root@example.net", ROUTE_FORWARDED, "bob@example.net"); /* no own file */
    conf_unref(&c);
    /* catch-all order: the domain file's "*" before the global one's; *@dom as forward */
    free(uu_put(dir, "dom", "*: bob\n"));
    c = uu_conf_ok(conf);
    expands(c, "zz@example.org", ROUTE_FORWARDED, "bob@example.org");
    conf_unref(&c);
    strcat(conf, "forward *@example.org carol@example.org\n");
    c = uu_conf_ok(conf);
    expands(c, "zz@example.org", ROUTE_FORWARDED, "carol@example.org");
    conf_unref(&c);
    free(glob);
    free(dom);
    uu_tmpdir_free(dir);
}

/* refused - text does not load, and one message holds want. */
static void
refused(const char *text, const char *want)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load_string("t.conf", text, &d);

    uu_diag_print(&d);
    assert_null(c);
    assert_true(uu_diag_has(&d, want, true));
    conf_diag_free(&d);
}

static void
test_settings(void **state)
{
    char *dir = uu_tmpdir("alias"), conf[2048];
    char *f = uu_put(dir, "f", "a: bob\nb c\n");
    char *g = uu_put(dir, "g", "a: bob\n");

    (void)state;
    snprintf(conf, sizeof(conf), "host_domain example.org\nalias_file_domain example.org %s\n", f);
    refused(conf, "/f:2: write NAME: DESTINATION[, DESTINATION...]");
    snprintf(conf, sizeof(conf), "host_domain example.org\nalias_file %s/none\n", dir);
    refused(conf, "t.conf:2: alias file ");
    refused(conf, "/none: No such file or directory");
    refused("alias_file_domain example.org other.org\n",
            "t.conf:1: alias_file_domain: 'example.org other.org': which is the file? write "
            "DOMAIN /path/to/file");
    snprintf(conf, sizeof(conf),
             "host_domain example.org\nalias_file_domain example.org %s\n"
             "alias_file_domain %s EXAMPLE.org\n",
             g, g);
    refused(conf, "t.conf:3: alias_file_domain: example.org is given twice");
    /* either order, stored as "domain file"; a domain that is not local is a warning */
    snprintf(conf, sizeof(conf), "host_domain example.org\nalias_file_domain %s Example.ORG\n", g);
    struct conf *c = uu_conf_ok(conf);
    char buf[1024], want[1024];
    assert_int_equal(conf_format(c, CONF_alias_file_domain, buf, sizeof(buf)), 0);
    snprintf(want, sizeof(want), "example.org %s", g);
    assert_string_equal(buf, want);
    conf_unref(&c);
    snprintf(conf, sizeof(conf), "host_domain example.org\nalias_file_domain other.org %s\n", g);
    c = uu_conf_warns(conf, (const char *[]){"t.conf:2: warning: alias_file_domain other.org: not "
                                             "a host_domain, its file is never used",
                                             NULL});
    conf_unref(&c);
    free(f);
    free(g);
    uu_tmpdir_free(dir);
}

static void
test_100000_lines(void **state)
{
    char *dir = uu_tmpdir("alias"), conf[512], *text = xmalloc(100000 * 64), *path;
    size_t o = 0;
    struct timespec t0, t1;
    struct conf *c;

    (void)state;
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(text + o, "alias%d: user%d, other%d@remote.test\n", i, i % 500, i);
    path = uu_put(dir, "big", text);
    snprintf(conf, sizeof(conf), "host_domain example.org\nalias_file_domain example.org %s\n",
             path);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c = uu_conf_ok(conf);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("100,000 alias lines loaded in %.3f s\n", secs);
#ifdef __SANITIZE_ADDRESS__
    assert_true(secs < 10.0); /* ASan's build: several times slower */
#else
    assert_true(secs < 1.0);
#endif
    assert_int_equal(alias_count(c->aliases), 100000);
    expands(c, "alias99999@example.org", ROUTE_FORWARDED,
            "user499@example.org,other99999@remote.test");
    conf_unref(&c);
    free(path);
    free(text);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_parse), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_include), cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_settings), cmocka_unit_test(test_100000_lines))
