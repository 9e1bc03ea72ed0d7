/*
 * test_tell_stats - the oneline_stats line parser and the `tellpop statistics` report over
 * day files (grouping, sides, top N, timeframes, bad arguments).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tell.h"
#include "tell_stats.h"
#include "unit_util.h"

static void
test_parse(void **state)
{
    char ok[] = "2026-12-04T10:11:12 id=ABC ip=192.0.2.1 size=1234 from=<a@x.test> rcpts=2 "
                "to=b@y.test,c@z.test user=alice";
    char null[] = "2026-12-04T10:11:12 id=ABC ip=::1 size=5 from=<> rcpts=1 to=b@y.test user=-";
    char bad1[] = "yesterday id=ABC size=5 from=<> to=b@y.test";
    char bad2[] = "2026-12-04T10:11:12 id=ABC size=5x from=<> to=b@y.test";
    char bad3[] = "2026-12-04T10:11:12 id=ABC size=5 to=b@y.test";
    char bad4[] = "2026-12-04T10:11:12 size=5 from=a@x to=b@y.test";
    struct tell_stats_rec r;
    struct tm tm;

    assert_int_equal(tell_stats_parse(ok, &r), 0);
    assert_int_equal(r.size, 1234);
    assert_string_equal(r.from, "a@x.test");
    assert_string_equal(r.to, "b@y.test,c@z.test");
    assert_string_equal(r.user, "alice");
    localtime_r(&r.when, &tm);
    assert_int_equal(tm.tm_hour, 10);
    assert_int_equal(tm.tm_mday, 4);
    assert_int_equal(tell_stats_parse(null, &r), 0);
    assert_string_equal(r.from, "");
    assert_int_equal(tell_stats_parse(bad1, &r), -1);
    assert_int_equal(tell_stats_parse(bad2, &r), -1);
    assert_int_equal(tell_stats_parse(bad3, &r), -1);
    assert_int_equal(tell_stats_parse(bad4, &r), -1);
}

/* run - tell_stats_cmd with stdout into a string. */
static char *
run(const char *dir, int *rc, time_t now, int argc, char **argv)
{
    char path[512];
    FILE *f;
    int saved = dup(1), fd;
    char *out;

    snprintf(path, sizeof(path), "%s/out", dir);
    fflush(stdout);
    fd = fileno(f = fopen(path, "w+"));
    dup2(fd, 1);
    *rc = tell_stats_cmd("tellpop", dir, argc, argv, now);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return out;
}

static void
test_report(void **state)
{
    char *dir = uu_tmpdir("tellstats");
    char path[512];
    struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 4, .tm_hour = 12, .tm_isdst = -1};
    time_t now = mktime(&tm);
    FILE *f;
    int rc;
    char *out;

    snprintf(path, sizeof(path), "%s/dm0412.log", dir);
    f = fopen(path, "w");
    fputs("2026-12-04T09:00:00 id=1 ip=192.0.2.1 size=100 from=<a@x.test> rcpts=2 "
          "to=b@y.test,c@y.test user=-\n"
          "garbage line\n"
          "2026-12-04T11:30:00 id=2 ip=192.0.2.1 size=50 from=<B@Y.test> rcpts=1 "
          "to=a@x.test user=b\n",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/dm0312.log", dir);
    f = fopen(path, "w");
    fputs("2026-12-03T09:00:00 id=0 ip=192.0.2.1 size=7 from=<> rcpts=1 to=z@w.test user=-\n", f);
    fclose(f);

    char *a1[] = {"statistics"};
    out = run(dir, &rc, now, 1, a1); /* so far today, by domain, both sides */
    assert_int_equal(rc, TELL_EX_OK);
    assert_non_null(strstr(out, "y.test sent=1 bsent=50 recv=2 brecv=200\n"));
    assert_non_null(strstr(out, "x.test sent=1 bsent=100 recv=1 brecv=50\n"));
    assert_non_null(strstr(out, "messages=2 bytes=150 "));
    assert_null(strstr(out, "w.test"));
    free(out);

    char *a2[] = {"statistics", "-u", "-r", "12/03", "to", "12/04"};
    out = run(dir, &rc, now, 6, a2);
    assert_int_equal(rc, TELL_EX_OK);
    assert_non_null(strstr(out, "z@w.test sent=0 bsent=0 recv=1 brecv=7\n"));
    assert_non_null(strstr(out, "b@y.test sent=0 bsent=0 recv=1 brecv=100\n"));
    assert_null(strstr(out, "(null sender)")); /* -r: recipients only */
    assert_non_null(strstr(out, "messages=3 bytes=157 "));
    free(out);

    char *a3[] = {"statistics", "-d1", "-sortby", "bsent", "hour"};
    out = run(dir, &rc, now, 5, a3); /* the last hour: message 2 only, top 1 */
    assert_int_equal(rc, TELL_EX_OK);
    assert_string_equal(strtok(out, "\n"), "y.test sent=1 bsent=50 recv=0 brecv=0");
    free(out);

    char *a4[] = {"statistics", "-d0", "12/03"};
    out = run(dir, &rc, now, 3, a4);
    assert_int_equal(rc, TELL_EX_OK);
    assert_int_equal(strncmp(out, "messages=1 bytes=7 ", 19), 0);
    free(out);

    char *b1[] = {"statistics", "fortnight"};
    char *b2[] = {"statistics", "-sortby", "size"};
    char *b3[] = {"statistics", "-dx"};
    char *b4[] = {"statistics", "12/04", "to", "12/01"};
    assert_int_equal(tell_stats_cmd("tellpop", dir, 2, b1, now), TELL_EX_USAGE);
    assert_int_equal(tell_stats_cmd("tellpop", dir, 3, b2, now), TELL_EX_USAGE);
    assert_int_equal(tell_stats_cmd("tellpop", dir, 2, b3, now), TELL_EX_USAGE);
    assert_int_equal(tell_stats_cmd("tellpop", dir, 4, b4, now), TELL_EX_USAGE);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_parse), cmocka_unit_test(test_report))
