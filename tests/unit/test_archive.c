/*
 * test_archive - a list's archive (dlist/archive.c) as the -request commands see it:
 * archive_index lists only the month files, archive_get serves only a month file by its
 * YYYY-MM name (no path traversal, no planted links, no other file of the list), and a
 * list without `archive true` has none. Also mime.c's decoders on their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "lists.h"
#include "../../dlist/archive.h"
#include "../../dlist/mime.h"
#include "xmem.h"
#include "unit_util.h"

static void
test_names(void **state)
{
    static const char *const bad[] = {"",           "2026-1",   "2026-13", "2026-00",   "1969-12",
                                      "../2026-12", "2026-12/", "2026/12", "./2026-12", "2026-12\n",
                                      "members",    "..",       "html",    "2026-1a"};

    (void)state;
    assert_true(archive_name_ok("2026-12"));
    assert_true(archive_name_ok("1970-01"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(archive_name_ok(bad[i]));
}

static void
test_index_get(void **state)
{
    char *dir = uu_tmpdir("archive"), *cfgtext, err[300], *out, *p;
    struct conf *cf;
    struct lists_def def = {0};
    size_t len;

    (void)state;
    cfgtext = xasprintf("dlist_path %s\n", dir);
    cf = uu_conf("t.conf", cfgtext);
    def.name = "talk";
    def.title = "";
    /* no archive kept */
    assert_null(archive_index(cf, &def, err, sizeof(err)));
    assert_string_equal(err, "list talk keeps no archive");
    assert_int_equal(archive_get(cf, &def, "2026-12", &out, &len, err, sizeof(err)), -1);
    assert_int_equal(archive_store(cf, &def, "", "x\n", 2, 0, err, sizeof(err)), 1);
    def.archive = true;
    out = archive_index(cf, &def, err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(out, ""); /* nothing stored yet */
    free(out);
    assert_int_equal(archive_store(cf, &def, "a@b.example", "Subject: one\n\nbody\n", 19,
                                   1764806400 /* 2025-12-04 */, err, sizeof(err)),
                     0);
    assert_int_equal(archive_store(cf, &def, "", "Subject: two\n\nbody\n", 19,
                                   1767225600 /* 2026-01 */, err, sizeof(err)),
                     0);
    p = uu_path(dir, "archive/talk/secret");
    uu_write(p, "not for you\n");
    free(p);
    p = uu_path(dir, "archive/talk/2026-02");
    assert_int_equal(symlink("/etc/passwd", p), 0); /* a planted link is no month */
    free(p);
    p = uu_path(dir, "lists.dat");
    uu_write(p, "list talk\n");
    free(p);
    out = archive_index(cf, &def, err, sizeof(err));
    assert_non_null(out);
    assert_non_null(strstr(out, "2025-12 "));
    assert_non_null(strstr(out, "2026-01 "));
    assert_null(strstr(out, "secret"));
    assert_null(strstr(out, "2026-02"));
    assert_null(strstr(out, "html"));
    free(out);
    assert_int_equal(archive_get(cf, &def, "2025-12", &out, &len, err, sizeof(err)), 0);
    assert_non_null(strstr(out, "From a@b.example "));
    assert_non_null(strstr(out, "Subject: one\n"));
    assert_null(strstr(out, "Subject: two"));
    free(out);
    assert_int_equal(archive_get(cf, &def, "2026-02", &out, &len, err, sizeof(err)), -1);
    assert_string_equal(err, "no archive file 2026-02");
    assert_int_equal(archive_get(cf, &def, "2026-03", &out, &len, err, sizeof(err)), -1);
    static const char *const evil[] = {"secret",      "../lists.dat",    "../../lists.dat",
                                       "/etc/passwd", "html/index.html", "2025-12/../secret"};
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        assert_int_equal(archive_get(cf, &def, evil[i], &out, &len, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "YYYY-MM"));
    }
    conf_unref(&cf);
    free(cfgtext);
    uu_tmpdir_free(dir);
}

static void
test_html_torn_record(void **state)
{
    char *dir = uu_tmpdir("archive"), *cfgtext, err[300], *p, *text;
    struct conf *cf;
    struct lists_def def = {0};

    (void)state;
    cfgtext = xasprintf("dlist_path %s\n", dir);
    cf = uu_conf("t.conf", cfgtext);
    def.name = "talk";
    def.title = "";
    def.archive = true;
    text = "Subject: one\nMessage-ID: <1@x>\n\nb\n";
    assert_int_equal(archive_store(cf, &def, "", text, strlen(text), 1764806400, err, sizeof(err)),
                     0);
    /* a crash in the middle of the next append left half a line, and a page without one */
    p = uu_path(dir, "archive/talk/html/2025-12/msgs.dat");
    text = uu_read(p, NULL);
    {
        char *torn = xasprintf("%s2\t17648", text);
        uu_write(p, torn);
        free(torn);
    }
    free(text);
    free(uu_put(dir, "archive/talk/html/2025-12/2.html", "stale"));
    {
        const char *two = "Subject: two\nIn-Reply-To: <1@x>\n\nb\n";
        assert_int_equal(
            archive_store(cf, &def, "", two, strlen(two), 1764806500, err, sizeof(err)), 0);
    }
    text = uu_read(p, NULL);
    assert_non_null(strstr(text, "1\t1764806400\t<1@x>\t0\t\tone\n2\t1764806500\t\t1\t\ttwo\n"));
    assert_null(strstr(text, "17648\n"));
    free(text);
    free(p);
    p = uu_path(dir, "archive/talk/html/2025-12/2.html");
    text = uu_read(p, NULL);
    assert_non_null(strstr(text, "<h1>two</h1>"));
    assert_non_null(strstr(text, "In reply to <a href=\"1.html\">one</a>"));
    free(text);
    free(p);
    conf_unref(&cf);
    free(cfgtext);
    uu_tmpdir_free(dir);
}

static void
test_mime_decoders(void **state)
{
    char *s;
    size_t n;

    (void)state;
    s = mime_words("=?utf-8?q?caf=C3=A9?= =?iso-8859-1?b?6Q==?= plain =?x?q?bad");
    assert_string_equal(s, "caf\xc3\xa9\xc3\xa9 plain =?x?q?bad");
    free(s);
    s = mime_decode("quoted-printable", "a=3Db=\nc =XY", 13, &n);
    assert_string_equal(s, "a=bc =XY");
    free(s);
    s = mime_decode("BASE64", "aGVs\nbG8=", 9, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "hello", 5);
    free(s);
    s = mime_utf8("utf-8", "ok\x01\xff\r\n", 6, &n);
    assert_string_equal(s, "ok\xef\xbf\xbd\xef\xbf\xbd\n");
    free(s);
    s = mime_header("Subject: a\n\tb\nX: y\n", 19, "subject");
    assert_string_equal(s, "a b");
    free(s);
    s = mime_param("text/plain; Charset=\"UTF\\-8\"; x=1", "charset");
    assert_string_equal(s, "UTF-8");
    free(s);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_names), cmocka_unit_test(test_index_get),
        cmocka_unit_test(test_html_torn_record), cmocka_unit_test(test_mime_decoders))
