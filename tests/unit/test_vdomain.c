/*
 * test_vdomain - vdomain lines, their dropfile paths, alt_drop_path, login forms, and the
 * users of a vdomain against those of the main domain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "drop.h"
#include "unit_util.h"
#include "vdomain.h"

/* test_parse - the forms of a vdomain line and what is stored. */
static void
test_parse(void **state)
{
    struct conf *c = uu_conf_ok("host_domain main.example\n"
                                "vdomain One.Example 192.0.2.1 dom1\n"
                                "vdomain two.example dom2 ::FFFF:192.0.2.2\n"
                                "vdomain three.example 2001:DB8::1\n"
                                "vdomain four.example\n");
    struct vdomain v;

    (void)state;
    assert_int_equal(c->vdomain.n, 4);
    assert_string_equal(c->vdomain.v[0], "one.example 192.0.2.1 dom1");
    assert_string_equal(c->vdomain.v[1], "two.example 192.0.2.2 dom2");
    assert_string_equal(c->vdomain.v[2], "three.example 2001:db8::1 three.example");
    assert_string_equal(c->vdomain.v[3], "four.example * four.example");
    assert_true(vdomain_find(c, "ONE.example.", &v));
    assert_string_equal(v.prefix, "dom1");
    assert_string_equal(v.ip, "192.0.2.1");
    assert_true(vdomain_find(c, "four.example", &v));
    assert_string_equal(v.ip, "");
    assert_false(vdomain_find(c, "main.example", &v));
    assert_true(vdomain_by_ip(c, "::ffff:192.0.2.2", &v));
    assert_string_equal(v.domain, "two.example");
    assert_false(vdomain_by_ip(c, "192.0.2.9", &v));
    /* a vdomain is local; the main domain still is */
    assert_true(conf_is_local_domain(c, "two.example"));
    assert_true(conf_is_local_domain(c, "main.example"));
    assert_false(conf_is_local_domain(c, "other.example"));
    conf_unref(&c);
}

/* test_errors - bad lines and clashes are errors at load. */
static void
test_errors(void **state)
{
    static const struct {
        const char *conf, *err;
    } errs[] = {
        {"vdomain bad..domain\n", "t.conf:1: vdomain: 'bad..domain' is not a valid domain"},
        {"vdomain a.example 192.0.2.1 192.0.2.2\n",
         "t.conf:1: vdomain: a.example: two IP addresses "
         "(192.0.2.1, 192.0.2.2)"},
        {"vdomain a.example p1 p2\n", "t.conf:1: vdomain: a.example: 'p2' is neither an IP "
                                      "address nor a second prefix"},
        {"vdomain a.example ../x\n", "t.conf:1: vdomain: a.example: prefix '../x' must be 1 to "
                                     "64 of a-z 0-9 . _ - and not start with '.'"},
        {"vdomain a.example 1.2.3.4 p x\n", "t.conf:1: vdomain: 'a.example 1.2.3.4 p x': too many "
                                            "words (vdomain DOMAIN [IP] [PREFIX])"},
        {"host_domain m.example\nvdomain m.example\n",
         "t.conf:2: vdomain m.example is also a host_domain (a "
         "host_domain shares the main domain's users; a vdomain "
         "has its own)"},
        {"vdomain a.example p\nvdomain b.example p\n",
         "t.conf:2: vdomain a.example and b.example have the same "
         "prefix p: their users' dropfiles would mix"},
        {"vdomain a.example\nvdomain A.example x\n",
         "t.conf:2: vdomain: a.example is given twice (first: "
         "a.example * a.example)"},
        {"vdomain_separator /\n", "t.conf:1: vdomain_separator: '/' must be 1 to 8 of A-Z "
                                  "a-z 0-9 . _ + = ~ -"},
        {"alt_drop_path a.example relative/dir\n",
         "t.conf:1: alt_drop_path: a.example: an absolute "
         "directory is needed (alt_drop_path DOMAIN PATH)"},
        {"use_drop sometimes\n", "t.conf:1: use_drop: 'sometimes' is not true, false, "
                                 "mbox or maildir"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        uu_conf_errs(errs[i].conf, (const char *const[]){errs[i].err, NULL});
    struct conf *c = uu_conf_warns(
        "alt_drop_path far.example /srv/far\n",
        (const char *const[]){"t.conf:1: warning: alt_drop_path far.example: not a host_domain "
                              "or vdomain, never used",
                              NULL});
    conf_unref(&c);
    c = uu_conf_warns("use_drop false\n",
                      (const char *const[]){"t.conf:1: warning: use_drop false: DMail moved mail "
                                            "into its bins; dmail has none and always serves "
                                            "the dropfile in place (mailbox_format mbox)",
                                            NULL});
    conf_unref(&c);
    c = uu_conf_ok("use_drop YES\n");
    assert_string_equal(c->use_drop, "true");
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MBOX);
    conf_unref(&c);
    /* mbox/maildir set mailbox_format, unless it is given too */
    c = uu_conf_ok("use_drop maildir\n");
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MAILDIR);
    conf_unref(&c);
    c = uu_conf_ok("use_drop maildir\nmailbox_format mbox\n");
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MBOX);
    conf_unref(&c);
}

/* test_paths - the dropfile of a vdomain user in each layout. */
static void
test_paths(void **state)
{
    static const struct {
        const char *conf, *user, *domain, *want;
    } cases[] = {
        {"", "Bob", "v.example", "/d/dom1_bob"},
        {"vdomain_separator .\n", "bob", "v.example", "/d/dom1.bob"},
        {"drop_prefix true\n", "bob", "v.example", "/d/dom1/bob"},
        {"hash_spool 2\n", "bob", "v.example", "/d/d/do/dom1_bob"},
        {"hash_spool 1\ndrop_prefix true\n", "bob", "v.example", "/d/dom1/b/bob"},
        {"alt_drop_path v.example /alt/\n", "bob", "V.Example", "/alt/bob"},
        {"alt_drop_path v.example /alt\nhash_spool 2\n", "bob", "v.example", "/alt/b/bo/bob"},
        /* the main domain and its aliases keep their names */
        {"", "bob", NULL, "/d/bob"},
        {"", "bob", "alias.example", "/d/bob@alias.example"},
    };
    char buf[256];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        if (asprintf(&text,
                     "drop_path /d\nhost_domain m.example,alias.example\n"
                     "vdomain v.example 192.0.2.1 dom1\n%s",
                     cases[i].conf) < 0)
            fail();
        struct conf *c = uu_conf_ok(text);
        assert_int_equal(drop_path_for(c, cases[i].user, cases[i].domain, buf, sizeof buf), 0);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("case %zu: %s, not %s", i, buf, cases[i].want);
        conf_unref(&c);
        free(text);
    }
    struct conf *c = uu_conf_ok("drop_path /d\nvdomain v.example\n");
    assert_int_equal(drop_path_for(c, "bob", "v.example", buf, sizeof buf), 0);
    assert_string_equal(buf, "/d/v.example_bob");
    assert_int_equal(drop_path_for(c, "../x", "v.example", buf, sizeof buf), -1);
    conf_unref(&c);
}

/* test_login - the forms of a login name. */
static void
test_login(void **state)
{
    struct conf *c = uu_conf_ok("host_domain m.example\nvdomain v.example 127.0.0.2 dom1\n");
    char out[300];

    (void)state;
    assert_int_equal(vdomain_login(c, "bob@v.example", "127.0.0.1", out, sizeof out),
                     VDOMAIN_FORM_ADDRESS);
    assert_string_equal(out, "bob@v.example");
    assert_int_equal(vdomain_login(c, "bob%v.example", "127.0.0.1", out, sizeof out),
                     VDOMAIN_FORM_PERCENT);
    assert_string_equal(out, "bob@v.example");
    /* % with a domain that is not local: the name as typed */
    assert_int_equal(vdomain_login(c, "bob%far.example", NULL, out, sizeof out),
                     VDOMAIN_FORM_PLAIN);
    assert_string_equal(out, "bob%far.example");
    assert_int_equal(vdomain_login(c, "bob", "127.0.0.2", out, sizeof out), VDOMAIN_FORM_IP);
    assert_string_equal(out, "bob@v.example");
    assert_int_equal(vdomain_login(c, "bob", "::ffff:127.0.0.2", out, sizeof out), VDOMAIN_FORM_IP);
    assert_int_equal(vdomain_login(c, "bob", "127.0.0.1", out, sizeof out), VDOMAIN_FORM_PLAIN);
    assert_string_equal(out, "bob");
    assert_int_equal(vdomain_login(c, "bob", "127.0.0.2", out, 8), VDOMAIN_FORM_PLAIN);
    assert_string_equal(out, "bob");
    assert_string_equal(vdomain_form_name(VDOMAIN_FORM_PERCENT), "percent");
    assert_string_equal(vdomain_form_name(VDOMAIN_FORM_IP), "ip");
    conf_unref(&c);
}

/* test_users - a vdomain has only its own users; host_domain aliases share the main ones. */
static void
test_users(void **state)
{
    char *dir = uu_tmpdir("vdomain"), *users = uu_path(dir, "users");
    struct conf_diag diag = {0};
    struct conf *c = uu_conf_ok("host_domain m.example,alias.example\nvdomain v.example\n");
    const char *h = "$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6W"
                    "ouIL9AjRbLCelDCy.g.";
    char text[600];
    const struct auth_user *u;

    (void)state;
    snprintf(text, sizeof text, "bob:%s\nann@v.example:%s\nbob@v.example:%s\n", h, h, h);
    uu_write(users, text);
    struct auth_db *db = auth_db_load(users, &diag);
    assert_non_null(db);
    assert_int_equal(diag.errors, 0);
    u = auth_db_find(db, c, "bob", "m.example");
    assert_non_null(u);
    assert_null(u->domain);
    u = auth_db_find(db, c, "bob", "alias.example");
    assert_non_null(u);
    assert_null(u->domain);
    u = auth_db_find(db, c, "bob", "v.example");
    assert_non_null(u);
    assert_string_equal(u->domain, "v.example");
    assert_non_null(auth_db_find(db, c, "ann", "v.example"));
    /* a user of the vdomain is unknown in the main domain, and the other way round */
    assert_null(auth_db_find(db, c, "ann", "m.example"));
    assert_null(auth_db_find_login(db, c, "ann"));
    auth_db_unref(&db);
    snprintf(text, sizeof text, "carl:%s\n", h);
    uu_write(users, text);
    db = auth_db_load(users, &diag);
    assert_null(auth_db_find(db, c, "carl", "v.example"));
    assert_non_null(auth_db_find(db, c, "carl", "alias.example"));
    auth_db_unref(&db);
    conf_diag_free(&diag);
    conf_unref(&c);
    free(users);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_parse), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_paths), cmocka_unit_test(test_login), cmocka_unit_test(test_users))
