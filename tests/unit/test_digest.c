/*
 * test_digest - digests (dlist/digest.c, digest_build.c): digest on/off for members only,
 * the recipients, posts pending until digest_size or digest_interval, an issue taken
 * again after a crash at each step until digest_sent, MIME (multipart/digest) and RFC 1153
 * text, and the lists.dat settings with their errors.
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
#include "../../dlist/digest.h"
#include "../../dlist/members.h"
#include "xmem.h"
#include "unit_util.h"

struct fx {
    char dir[UU_DIR_MAX];
    struct conf *cf;
    char *conftext;
};

static int
fx_setup(void **state)
{
    struct fx *f;

    if (uu_setup_dir(state, sizeof(struct fx), "digest") < 0)
        return -1;
    f = *state;
    free(uu_put(f->dir, "lists.dat",
                "list talk\n digest_size 2K\n digest_interval 1\n"
                "list plain\n digest_format rfc1153\n digest_size 0\n"));
    f->conftext =
        xasprintf("dlist_path %s\nwork_path %s/work\nhost_domain lists.example\n", f->dir, f->dir);
    f->cf = uu_conf("t.conf", f->conftext);
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *f = *state;

    conf_unref(&f->cf);
    free(f->conftext);
    return uu_teardown_dir(state);
}

/* members - the list's members file holds text. */
static void
members(struct fx *f, const char *list, const char *text)
{
    char *p = xasprintf("%s/work/dlist/%s/members", f->dir, list);
    struct members m = {0};

    members_parse(&m, p, text, strlen(text), NULL);
    assert_int_equal(members_save(&m, p), 0);
    members_free(&m);
    free(p);
}

static void
test_set_and_recipients(void **state)
{
    struct fx *f = *state;
    const struct lists_def *def = lists_find(f->cf->lists, "talk");
    struct members m = {0};
    char err[200];

    members(f, "talk", "bob@x.example\ncarol@x.example\n");
    assert_int_equal(digest_set(f->cf, def, "eve@x.example", true, err, sizeof(err)), -1);
    assert_string_equal(err, "eve@x.example is not a member of talk");
    assert_int_equal(digest_set(f->cf, def, "Bob@X.example", true, err, sizeof(err)), 1);
    assert_int_equal(digest_set(f->cf, def, "bob@x.example", true, err, sizeof(err)), 0);
    assert_int_equal(digest_set(f->cf, def, "carol@x.example", true, err, sizeof(err)), 1);
    assert_int_equal(digest_recipients(f->cf, def, &m), 0);
    assert_int_equal(m.n, 2);
    members(f, "talk", "carol@x.example\n"); /* bob left the list */
    assert_int_equal(digest_recipients(f->cf, def, &m), 0);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.v[0], "carol@x.example");
    assert_int_equal(digest_set(f->cf, def, "carol@x.example", false, err, sizeof(err)), 1);
    assert_int_equal(digest_set(f->cf, def, "carol@x.example", false, err, sizeof(err)), 0);
    assert_int_equal(digest_recipients(f->cf, def, &m), 0);
    assert_int_equal(m.n, 0);
    members_free(&m);
}

#define POST1                                                                                      \
    "From: Ann <ann@x.example>\nSubject: =?utf-8?q?caf=C3=A9?= talk\n"                             \
    "Message-ID: <1@x.example>\n\nFrom the start\n------------------------------\nbye\n"
#define POST2 "From: bob@x.example\nSubject: second\n\nshort\n"

static void
test_mime_issue_and_crashes(void **state)
{
    struct fx *f = *state;
    const struct lists_def *def = lists_find(f->cf->lists, "talk");
    struct digest_issue is, again;
    char err[300], *text, *p, big[3000];
    time_t now = time(NULL);

    assert_int_equal(digest_take(f->cf, def, now, false, &is, err, sizeof(err)), 0); /* none */
    assert_int_equal(digest_add(f->cf, def, POST1, strlen(POST1), err, sizeof(err)), 0);
    assert_int_equal(digest_add(f->cf, def, POST2, strlen(POST2), err, sizeof(err)), 0);
    /* small and fresh: not due */
    assert_int_equal(digest_take(f->cf, def, now, false, &is, err, sizeof(err)), 0);
    /* an hour later: due */
    assert_int_equal(digest_take(f->cf, def, now + 3700, false, &is, err, sizeof(err)), 1);
    assert_int_equal(is.n, 1);
    text = uu_read(is.path, NULL);
    assert_non_null(strstr(text, "From: talk-request@lists.example\nTo: talk@lists.example\n"));
    assert_non_null(strstr(text, "Subject: talk digest, issue 1\n"));
    assert_non_null(strstr(text, "Message-ID: <digest.1.talk@lists.example>\n"));
    assert_non_null(
        strstr(text, "Content-Type: multipart/digest; boundary=\"=_dlist_talk_1_0_digest\""));
    assert_non_null(strstr(text, "  1. caf\xc3\xa9 talk (Ann <ann@x.example>)\n"));
    assert_non_null(strstr(text, "  2. second (bob@x.example)\n"));
    assert_non_null(strstr(text, "--=_dlist_talk_1_0_digest\n\nFrom: Ann <ann@x.example>\n"));
    assert_non_null(strstr(text, "\nFrom the start\n")); /* mboxrd quoting undone */
    assert_null(strstr(text, "X-UIDL"));
    assert_non_null(strstr(text, "--=_dlist_talk_1_0_digest--\n\n--=_dlist_talk_1_0_mixed--\n"));
    free(text);
    /* a post meanwhile goes to the next issue */
    assert_int_equal(digest_add(f->cf, def, POST2, strlen(POST2), err, sizeof(err)), 0);
    /* "crash" before digest_sent: the same issue again */
    assert_int_equal(digest_take(f->cf, def, now + 9999, true, &again, err, sizeof(err)), 1);
    assert_int_equal(again.n, 1);
    assert_string_equal(again.path, is.path);
    assert_int_equal(digest_sent(f->cf, def, &is, err, sizeof(err)), 0);
    assert_false(uu_exists(is.path));
    /* "crash" after closing, before building: issue 2 is built from closing.2 */
    p = xasprintf("%s/work/dlist/talk/digest/closing.2", f->dir);
    {
        char *pend = xasprintf("%s/work/dlist/talk/digest/pending", f->dir);
        assert_int_equal(rename(pend, p), 0);
        free(pend);
    }
    assert_int_equal(digest_take(f->cf, def, now, false, &is, err, sizeof(err)), 1);
    assert_int_equal(is.n, 2);
    text = uu_read(is.path, NULL);
    assert_non_null(strstr(text, "issue 2"));
    assert_non_null(strstr(text, "1 message."));
    free(text);
    assert_int_equal(digest_sent(f->cf, def, &is, err, sizeof(err)), 0);
    assert_false(uu_exists(p));
    free(p);
    assert_int_equal(digest_take(f->cf, def, now + 99999, false, &is, err, sizeof(err)), 0);
    /* by size: one post over digest_size is due at once */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    text = xasprintf("Subject: big\n\n%s\n", big);
    assert_int_equal(digest_add(f->cf, def, text, strlen(text), err, sizeof(err)), 0);
    free(text);
    assert_int_equal(digest_take(f->cf, def, now, false, &is, err, sizeof(err)), 1);
    assert_int_equal(is.n, 3);
    assert_int_equal(digest_sent(f->cf, def, &is, err, sizeof(err)), 0);
}

static void
test_rfc1153(void **state)
{
    struct fx *f = *state;
    const struct lists_def *def = lists_find(f->cf->lists, "plain");
    struct digest_issue is;
    char err[300], *text;
    const char *mp = "Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
                     "boundary=b\n\n--b\nContent-Type: text/plain; charset=iso-8859-1\n"
                     "Content-Transfer-Encoding: quoted-printable\n\nna=EFve\n--b\n"
                     "Content-Type: image/png; name=x.png\n\nPNG\n--b--\n";

    assert_int_equal(digest_add(f->cf, def, POST1, strlen(POST1), err, sizeof(err)), 0);
    assert_int_equal(digest_add(f->cf, def, mp, strlen(mp), err, sizeof(err)), 0);
    /* digest_size 0 and 24 hours: not due by size */
    assert_int_equal(digest_take(f->cf, def, time(NULL), false, &is, err, sizeof(err)), 0);
    assert_int_equal(digest_take(f->cf, def, time(NULL), true, &is, err, sizeof(err)), 1);
    text = uu_read(is.path, NULL);
    assert_non_null(strstr(text, "Subject: plain Digest V1 #1\n"));
    assert_non_null(strstr(text, "Content-Type: text/plain; charset=utf-8\n"));
    assert_non_null(strstr(text, "Today's Topics:\n\n  1. caf\xc3\xa9 talk (Ann <ann@x.example>)\n"
                                 "  2. parts ()\n"));
    assert_non_null(strstr(text, "\n----------------------------------------------------------"
                                 "------------\n\nDate: \nFrom: Ann <ann@x.example>\n"
                                 "Subject: caf\xc3\xa9 talk\n\nFrom the start\n "
                                 "------------------------------\nbye\n\n"
                                 "------------------------------\n\n"));
    assert_non_null(strstr(text, "\nna\xc3\xafve\n[not included: image/png x.png]\n"));
    assert_non_null(strstr(text, "\nEnd of plain Digest V1 #1\n*************************\n"));
    free(text);
    assert_int_equal(digest_sent(f->cf, def, &is, err, sizeof(err)), 0);
}

static void
test_settings(void **state)
{
    struct conf_diag d = {0};
    struct lists_set *ls = NULL;
    const char *t = "list a\n digest_format html\n digest_size lots\n digest_interval -1\n"
                    " digest_interval 9000\n";

    (void)state;
    assert_int_equal(lists_parse("l.dat", "/", "x.example", t, strlen(t), &d, &ls), 4);
    uu_diag_print(&d);
    assert_true(uu_diag_has(&d, "l.dat:2: digest_format html: mime or rfc1153", false));
    assert_true(
        uu_diag_has(&d, "l.dat:3: digest_size lots: a size such as 30K (0: not by size)", false));
    assert_true(
        uu_diag_has(&d, "l.dat:4: digest_interval -1: hours, 0 to 8760 (0: not by time)", false));
    assert_true(uu_diag_has(&d, "l.dat:5: digest_interval 9000", true));
    conf_diag_free(&d);
    t = "list a\n";
    assert_int_equal(lists_parse("l.dat", "/", "x.example", t, strlen(t), &d, &ls), 0);
    assert_true(ls->v[0].digest_mime);
    assert_int_equal(ls->v[0].digest_size, 30 * 1024);
    assert_int_equal(ls->v[0].digest_interval, 24);
    lists_free(&ls);
    conf_diag_free(&d);
}

UU_MAIN(NULL, NULL, cmocka_unit_test_setup_teardown(test_set_and_recipients, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mime_issue_and_crashes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rfc1153, fx_setup, fx_teardown),
        cmocka_unit_test(test_settings))
