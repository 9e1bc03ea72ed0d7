/*
 * test_lists - lists.dat (common/mail/lists.c): every per-list setting and its default,
 * the errors with file:line, the addresses of a list (lists_role), access rules, and the
 * file read through dmail.conf's dlist_path (a broken file fails the load).
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
#include "xmem.h"
#include "unit_util.h"

#define HASH "$6$salt$abcdefghijklmnopqrstuvwxyz"

/* parse - text as "l.dat" in /d at example.org; the number of errors, and *ls. */
static int
parse(const char *text, struct lists_set **ls, struct conf_diag *d)
{
    int errors = lists_parse("l.dat", "/d", "example.org", text, strlen(text), d, ls);

    uu_diag_print(d);
    return errors;
}

static void
test_every_setting(void **state)
{
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;
    const struct lists_def *t, *j;

    (void)state;
    assert_int_equal(parse("# lists\n"
                           "list Talk\n"
                           " title The list for talkers\n"
                           " subject_prefix [talk]\n"
                           " archive true\n"
                           " access_join anyone\n"
                           " access_post moderator\n"
                           " access_who *@example.com\n"
                           " access_leave anyone\n"
                           " access_get members\n"
                           " access_list moderator\n"
                           " moderator talk.master@Example.COM,second@example.net\n"
                           " password " HASH "\n"
                           " reply_to_user true\n"
                           " max_size 40k\n"
                           " status_interval 3\n"
                           " join_cookie false\n"
                           " footer /usr/local/dlist/talk/footer.txt\n"
                           " welcome_file talk/welcome.txt\n"
                           " leave_file /etc/leave.txt\r\n"
                           "\n"
                           "list juggle\n"
                           "\ttitle The list for jugglers\n",
                           &ls, &d),
                     0);
    assert_int_equal(d.n, 0);
    assert_non_null(ls);
    assert_int_equal(ls->n, 2);
    t = lists_find(ls, "TALK");
    assert_non_null(t);
    assert_string_equal(t->name, "talk");
    assert_string_equal(t->title, "The list for talkers");
    assert_string_equal(t->subject_prefix, "[talk]");
    assert_true(t->archive);
    assert_int_equal(t->access[LISTS_JOIN].who, LISTS_ANYONE);
    assert_int_equal(t->access[LISTS_POST].who, LISTS_MODERATOR);
    assert_int_equal(t->access[LISTS_WHO].who, LISTS_PATTERN);
    assert_string_equal(lists_access_text(&t->access[LISTS_WHO]), "*@example.com");
    assert_int_equal(t->access[LISTS_LEAVE].who, LISTS_ANYONE);
    assert_int_equal(t->access[LISTS_GET].who, LISTS_MEMBERS);
    assert_int_equal(t->access[LISTS_LIST].who, LISTS_MODERATOR);
    assert_int_equal(t->nmoderators, 2);
    assert_string_equal(t->moderators[0], "talk.master@example.com");
    assert_string_equal(t->moderators[1], "second@example.net");
    assert_true(lists_is_moderator(t, "TALK.master@example.com"));
    assert_false(lists_is_moderator(t, "other@example.com"));
    assert_string_equal(t->password, HASH);
    assert_true(t->reply_to_user);
    assert_null(t->reply_to);
    assert_int_equal(t->max_size, 40 * 1024);
    assert_int_equal(t->status_interval, 3);
    assert_false(t->join_cookie);
    assert_string_equal(t->footer, "/usr/local/dlist/talk/footer.txt");
    assert_string_equal(t->welcome_file, "/d/talk/welcome.txt");
    assert_string_equal(t->leave_file, "/etc/leave.txt");
    assert_string_equal(t->origin, "l.dat:2");

    /* the defaults: DMail's, and safer where lists.h says so */
    j = lists_find(ls, "juggle");
    assert_non_null(j);
    assert_ptr_equal(j, &ls->v[1]);
    assert_string_equal(j->title, "The list for jugglers");
    assert_string_equal(j->subject_prefix, "");
    assert_false(j->archive);
    assert_false(j->reply_to_user);
    assert_int_equal(j->max_size, 1024 * 1024);
    assert_int_equal(j->status_interval, 7);
    assert_true(j->join_cookie);
    assert_int_equal(j->access[LISTS_JOIN].who, LISTS_ANYONE);
    assert_int_equal(j->access[LISTS_POST].who, LISTS_MEMBERS);
    assert_int_equal(j->access[LISTS_WHO].who, LISTS_MEMBERS);
    assert_int_equal(j->access[LISTS_LEAVE].who, LISTS_MEMBERS);
    assert_int_equal(j->access[LISTS_GET].who, LISTS_MEMBERS);
    assert_int_equal(j->access[LISTS_LIST].who, LISTS_ANYONE);
    assert_int_equal(j->nmoderators, 0);
    assert_null(j->password);
    assert_null(j->footer);
    assert_null(lists_find(ls, "nope"));
    lists_free(&ls);
    assert_null(ls);
    conf_diag_free(&d);
}

static void
test_reply_to_address_and_old_moderator_form(void **state)
{
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;

    (void)state;
    assert_int_equal(parse("list a\nreply_to_user Replies@Example.org\n"
                           "moderator boss@example.org:" HASH "\n",
                           &ls, &d),
                     0);
    assert_false(ls->v[0].reply_to_user);
    assert_string_equal(ls->v[0].reply_to, "Replies@example.org");
    assert_string_equal(ls->v[0].moderators[0], "boss@example.org");
    assert_string_equal(ls->v[0].password, HASH);
    lists_free(&ls);
    conf_diag_free(&d);
}

/* errs - text must fail with exactly the messages want (NULL-ended), in order. */
static void
errs(const char *text, const char *const *want)
{
    struct conf_diag d = {0};
    struct lists_set *ls = (void *)1;
    size_t n = 0;

    assert_true(parse(text, &ls, &d) > 0);
    assert_null(ls);
    for (; want[n] != NULL; n++) {
        assert_true(n < d.n);
        assert_string_equal(d.msgs[n], want[n]);
    }
    assert_int_equal(d.n, n);
    assert_int_equal(d.errors, (int)n);
    conf_diag_free(&d);
}

static void
test_errors(void **state)
{
    (void)state;
    errs("title x\nlist a\n",
         (const char *const[]){"l.dat:1: title: a list's settings follow its `list NAME` line",
                               NULL});
    errs("list a\n colour blue\n max_size lots\n archive maybe\n access_post friends\n"
         " status_interval -1\n password secret\n moderator nobody\n reply_to_user x y\n"
         " moderator a@b.example:secret\n join_cookie\n",
         (const char *const[]){
             "l.dat:2: unknown list setting colour",
             "l.dat:3: max_size lots: a size such as 100K or 1M",
             "l.dat:4: archive maybe: true or false",
             "l.dat:5: access_post friends: anyone, members, moderator or an address pattern "
             "such as *@example.com",
             "l.dat:6: status_interval -1: days, 0 to 3650 (0: none)",
             "l.dat:7: password: give a crypt(3) hash (make one with mkpasswd), never the "
             "password itself",
             "l.dat:8: moderator nobody: missing @domain",
             "l.dat:9: reply_to_user x y: true, false or an address",
             "l.dat:10: moderator a@b.example: a password is kept only as a crypt(3) hash "
             "(make one with mkpasswd; or use the password setting)",
             "l.dat:11: join_cookie: no value", NULL});
    errs("list a\nlist b\nlist A\n",
         (const char *const[]){"l.dat:3: list A is already defined at l.dat:1", NULL});
    errs("list\nlist a b\nlist talk-request\nlist x-Owner\nlist y-bounces\nlist b@c\nlist .a\n",
         (const char *const[]){
             "l.dat:1: list: give the list's name", "l.dat:2: list a b: a list name has no blanks",
             "l.dat:3: list talk-request: a list name does not end in -request, -owner or "
             "-bounces (the list's own addresses)",
             "l.dat:4: list x-Owner: a list name does not end in -request, -owner or -bounces "
             "(the list's own addresses)",
             "l.dat:5: list y-bounces: a list name does not end in -request, -owner or "
             "-bounces (the list's own addresses)",
             "l.dat:6: list b@c: a list name has only letters, digits and . _ + -",
             "l.dat:7: list .a: a list name does not begin with . or - nor end with .", NULL});
    errs("list a\nmax_size 0\nlist b\ntitle a\0b\n",
         (const char *const[]){"l.dat:2: max_size 0: a size such as 100K or 1M", NULL});
}

static void
test_nul_byte(void **state)
{
    static const char text[] = "list a\ntitle a\0b\n";
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;

    (void)state;
    assert_int_equal(lists_parse("l.dat", "/d", "x.org", text, sizeof(text) - 1, &d, &ls), 1);
    assert_null(ls);
    assert_true(uu_diag_has(&d, "l.dat:2: a NUL byte in the line", false));
    conf_diag_free(&d);
}

/* a line of LISTS_LINE_MAX bytes loads; one more is an error at its line */
static void
test_long_line(void **state)
{
    size_t n = LISTS_LINE_MAX + 1;
    char *text = malloc(n + 16);
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;

    (void)state;
    assert_non_null(text);
    memcpy(text, "list a\n", 7);
    memcpy(text + 7, "title ", 6);
    memset(text + 13, 't', LISTS_LINE_MAX - 6);
    text[7 + LISTS_LINE_MAX] = '\n';
    assert_int_equal(lists_parse("l.dat", "/d", "x.org", text, 8 + LISTS_LINE_MAX, &d, &ls), 0);
    assert_non_null(ls);
    lists_free(&ls);
    memset(text + 13, 't', n - 6);
    text[7 + n] = '\n';
    assert_int_equal(lists_parse("l.dat", "/d", "x.org", text, 8 + n, &d, &ls), 1);
    assert_null(ls);
    assert_true(uu_diag_has(&d, "l.dat:2: a line of 8193 bytes: at most 8192", false));
    conf_diag_free(&d);
    free(text);
}

static void
test_roles(void **state)
{
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;
    const struct lists_def *def;
    const char *verp = NULL;

    (void)state;
    assert_int_equal(parse("list talk\nlist talk-news\nlist a.b\n", &ls, &d), 0);
    assert_int_equal(lists_role(ls, "Talk", "example.org", &def, NULL), LISTS_ROLE_POST);
    assert_string_equal(def->name, "talk");
    assert_int_equal(lists_role(ls, "talk-request", "example.org", &def, NULL), LISTS_ROLE_REQUEST);
    assert_string_equal(def->name, "talk");
    assert_int_equal(lists_role(ls, "TALK-OWNER", "example.org", &def, NULL), LISTS_ROLE_OWNER);
    assert_int_equal(lists_role(ls, "talk-news", "example.org", &def, NULL), LISTS_ROLE_POST);
    assert_string_equal(def->name, "talk-news");
    assert_int_equal(lists_role(ls, "talk-news-request", "example.org", &def, NULL),
                     LISTS_ROLE_REQUEST);
    assert_string_equal(def->name, "talk-news");
    assert_int_equal(lists_role(ls, "talk-bounces", "example.org", &def, &verp),
                     LISTS_ROLE_BOUNCES);
    assert_string_equal(verp, "");
    assert_int_equal(lists_role(ls, "talk-bounces+bob=example.net", "example.org", &def, &verp),
                     LISTS_ROLE_BOUNCES);
    assert_string_equal(def->name, "talk");
    assert_string_equal(verp, "bob=example.net");
    assert_int_equal(lists_role(ls, "a.b-bounces+x+y=z.org", "example.org", &def, &verp),
                     LISTS_ROLE_BOUNCES);
    assert_string_equal(def->name, "a.b");
    assert_string_equal(verp, "x+y=z.org");
    assert_int_equal(lists_role(ls, "talk", "example.net", &def, NULL), LISTS_NONE);
    assert_null(def);
    assert_int_equal(lists_role(ls, "talker", "example.org", &def, NULL), LISTS_NONE);
    assert_int_equal(lists_role(ls, "-request", "example.org", &def, NULL), LISTS_NONE);
    assert_int_equal(lists_role(ls, "other-bounces+x", "example.org", &def, NULL), LISTS_NONE);
    assert_int_equal(lists_role(NULL, "talk", "example.org", &def, NULL), LISTS_NONE);
    lists_free(&ls);
    conf_diag_free(&d);
}

static void
test_access(void **state)
{
    struct lists_rule anyone = {LISTS_ANYONE, NULL}, members = {LISTS_MEMBERS, NULL},
                      moderator = {LISTS_MODERATOR, NULL},
                      pattern = {LISTS_PATTERN, (char *)"*@Example.COM"};

    (void)state;
    assert_true(lists_may(&anyone, "x@y.org", false, false));
    assert_false(lists_may(&members, "x@y.org", false, false));
    assert_true(lists_may(&members, "x@y.org", true, false));
    assert_false(lists_may(&moderator, "x@y.org", true, false));
    assert_true(lists_may(&moderator, "x@y.org", false, true));
    assert_true(lists_may(&pattern, "bob@example.com", false, false));
    assert_false(lists_may(&pattern, "bob@example.com.evil", false, false));
    assert_false(lists_may(&pattern, "bob@y.org", true, false));
    assert_string_equal(lists_access_text(&pattern), "*@Example.COM");
    assert_string_equal(lists_access_text(&members), "members");
}

static void
test_smtp_host(void **state)
{
    char host[64];
    int port = -1;

    (void)state;
    assert_int_equal(lists_smtp_host("127.0.0.1", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(lists_smtp_host("127.0.0.1:2525", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 2525);
    assert_int_equal(lists_smtp_host("[::1]:25", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 25);
    assert_int_equal(lists_smtp_host("mail.example.org", host, sizeof(host), &port), 0);
    assert_int_equal(lists_smtp_host("", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("::1", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("h:0", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("h:70000", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("h:", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("[::1", NULL, 0, NULL), -1);
    assert_int_equal(lists_smtp_host("[::1]x", NULL, 0, NULL), -1);
}

static void
test_through_conf(void **state)
{
    char *dir = uu_tmpdir("lists"), *conf, *path;
    struct conf *c;
    struct conf_diag d = {0};

    (void)state;
    /* no dlist_path, or no lists.dat: no lists, and nothing to say */
    c = uu_conf_ok("host_domain example.org\n");
    assert_null(c->lists);
    conf_unref(&c);
    conf = xasprintf("host_domain example.org\ndlist_path %s\n", dir);
    c = uu_conf_ok(conf);
    assert_null(c->lists);
    conf_unref(&c);

    path = uu_put(dir, "lists.dat", "list talk\n title Talk\n");
    c = uu_conf_ok(conf);
    assert_non_null(c->lists);
    assert_string_equal(c->lists->domain, "example.org");
    assert_int_equal(lists_role(c->lists, "talk-request", "example.org", NULL, NULL),
                     LISTS_ROLE_REQUEST);
    conf_unref(&c);
    free(conf);

    conf = xasprintf("host_domain example.org\ndlist_path %s\ndlist_domain Lists.Example.ORG\n"
                     "dlist_smtp_host 127.0.0.1:2525\n",
                     dir);
    c = uu_conf_ok(conf);
    assert_string_equal(c->lists->domain, "lists.example.org");
    assert_int_equal(lists_role(c->lists, "talk", "example.org", NULL, NULL), LISTS_NONE);
    assert_int_equal(lists_role(c->lists, "talk", "lists.example.org", NULL, NULL),
                     LISTS_ROLE_POST);
    conf_unref(&c);
    free(conf);

    /* a broken lists.dat fails the load with file:line */
    uu_write(path, "list talk\n colour blue\n");
    conf = xasprintf("host_domain example.org\ndlist_path %s\n", dir);
    assert_null(conf_load_string("t.conf", conf, &d));
    uu_diag_print(&d);
    assert_true(uu_diag_has(&d, "/lists.dat:2: unknown list setting colour", true));
    conf_diag_free(&d);
    free(conf);

    conf = xasprintf("dlist_smtp_host 127.0.0.1:x\n");
    assert_null(conf_load_string("t.conf", conf, &d));
    assert_true(uu_diag_has(&d,
                            "t.conf:1: dlist_smtp_host 127.0.0.1:x: HOST or HOST:PORT "
                            "([IPv6]:PORT)",
                            false));
    conf_diag_free(&d);
    free(conf);
    conf = xasprintf("dlist_domain bad_domain!\n");
    assert_null(conf_load_string("t.conf", conf, &d));
    assert_true(uu_diag_has(&d, "t.conf:1: dlist_domain bad_domain!: not a domain name", false));
    conf_diag_free(&d);
    free(conf);
    free(path);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_every_setting),
        cmocka_unit_test(test_reply_to_address_and_old_moderator_form),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_long_line), cmocka_unit_test(test_roles),
        cmocka_unit_test(test_access), cmocka_unit_test(test_smtp_host),
        cmocka_unit_test(test_through_conf))
