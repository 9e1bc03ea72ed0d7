/*
 * test_statefile - the state file written on the pool: one write at a time, the last
 * state wins, saves asked meanwhile fold into one more write, a failed write is survived.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "statefile.h"
#include "xmem.h"
#include "unit_util.h"

/* The owner's state: a counter and how often it was formatted. */
struct owner {
    int value;
    int formats;
};

/* format - the file holds "value N". */
static void
format(void *arg, struct buf *b)
{
    struct owner *o = arg;

    o->formats++;
    buf_printf(b, "value %d\n", o->value);
}

/* test_saves_fold_and_last_wins - three saves while the first write runs make two writes
 * in all, and the file ends with the last value; jobs counts the write in flight. */
static void
test_saves_fold_and_last_wins(void **state)
{
    char *dir = uu_tmpdir("test_statefile"), *path = xasprintf("%s/state", dir);
    struct owner o = {0, 0};
    struct statefile sf;
    uv_loop_t loop;
    long jobs = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    statefile_init(&sf, &loop, &jobs, path, "test: the state", 1024, format, &o);
    o.value = 1;
    statefile_save(&sf);
    assert_int_equal(jobs, 1);
    for (o.value = 2; o.value <= 4; o.value++)
        statefile_save(&sf);
    o.value = 4;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(jobs, 0);
    assert_int_equal(o.formats, 2);
    char *got = uu_read(path, NULL);
    assert_string_equal(got, "value 4\n");
    free(got);
    statefile_free(&sf);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(path);
    uu_tmpdir_free(dir);
}

/* test_no_path_and_failed_write - no path: nothing is written; a write into a missing
 * directory fails (logged), and the next save tries again and succeeds. */
static void
test_no_path_and_failed_write(void **state)
{
    char *dir = uu_tmpdir("test_statefile"), *sub = xasprintf("%s/later", dir);
    char *path = xasprintf("%s/state", sub);
    struct owner o = {7, 0};
    struct statefile none, sf;
    uv_loop_t loop;
    long jobs = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    statefile_init(&none, &loop, &jobs, "", "test: none", 1024, format, &o);
    statefile_save(&none);
    assert_int_equal(jobs, 0);
    assert_int_equal(o.formats, 0);
    statefile_free(&none);
    statefile_init(&sf, &loop, &jobs, path, "test: the state", 1024, format, &o);
    statefile_save(&sf);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(jobs, 0);
    char *none_yet = uu_read_or_empty(path, NULL);
    assert_string_equal(none_yet, "");
    free(none_yet);
    assert_int_equal(mkdir(sub, 0700), 0);
    o.value = 8;
    statefile_save(&sf);
    uv_run(&loop, UV_RUN_DEFAULT);
    char *got = uu_read(path, NULL);
    assert_string_equal(got, "value 8\n");
    free(got);
    statefile_free(&sf);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(path);
    free(sub);
    uu_tmpdir_free(dir);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_saves_fold_and_last_wins),
        cmocka_unit_test(test_no_path_and_failed_write))
