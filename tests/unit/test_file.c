/*
 * test_file - atomic writes, bounded whole-file reads, mkdir -p, unique names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "xmem.h"
#include "unit_util.h"

/* setup - a fresh directory per test, in *state. */
static int
setup(void **state)
{
    *state = uu_tmpdir("test_file");
    return 0;
}

/* teardown - remove the test directory. */
static int
teardown(void **state)
{
    uu_tmpdir_free(*state);
    return 0;
}

static void
test_write_atomic(void **state)
{
    const char *dir = *state;
    char *path = xasprintf("%s/pid", dir);
    char *text;
    size_t len;
    struct stat st;

    assert_int_equal(file_write_atomic(path, "first\n", 6, 0640), 0);
    assert_int_equal(file_read_all(path, 100, &text, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(text, "first\n");
    free(text);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    /* replaces the old content wholly, leaves no temp file behind */
    assert_int_equal(file_write_atomic(path, "2", 1, 0600), 0);
    assert_int_equal(file_read_all(path, 100, &text, &len), 0);
    assert_string_equal(text, "2");
    free(text);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(uu_count_entries(dir), 1);

    /* empty content */
    assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
    assert_int_equal(file_read_all(path, 100, &text, &len), 0);
    assert_int_equal(len, 0);
    free(text);

    /* a missing directory fails with ENOENT and creates nothing */
    char *bad = xasprintf("%s/nodir/file", dir);
    errno = 0;
    assert_int_equal(file_write_atomic(bad, "x", 1, 0600), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(uu_count_entries(dir), 1);
    free(bad);

    /* a name that is a directory fails and leaves no temp file */
    char *sub = xasprintf("%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(file_write_atomic(sub, "x", 1, 0600), -1);
    assert_int_equal(uu_count_entries(dir), 2);
    free(sub);
    free(path);
}

static void
test_read_all_limits(void **state)
{
    const char *dir = *state;
    char *path = xasprintf("%s/data", dir);
    char *big = xmalloc(300000), *text = (char *)1;
    size_t len = 0;

    for (size_t i = 0; i < 300000; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(file_write_atomic(path, big, 100, 0600), 0);
    assert_int_equal(file_read_all(path, 100, &text, &len), 0); /* exactly max */
    assert_int_equal(len, 100);
    assert_int_equal(text[100], '\0');
    assert_memory_equal(text, big, 100);
    free(text);

    errno = 0;
    assert_int_equal(file_read_all(path, 99, &text, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_null(text);

    /* bigger than the first buffer */
    assert_int_equal(file_write_atomic(path, big, 300000, 0600), 0);
    assert_int_equal(file_read_all(path, 1 << 20, &text, NULL), 0);
    assert_memory_equal(text, big, 300000);
    free(text);
    assert_int_equal(file_read_all(path, 299999, &text, &len), -1);
    assert_int_equal(errno, EFBIG);

    /* empty file, and a file with NUL bytes keeps its length */
    assert_int_equal(file_write_atomic(path, "a\0b", 3, 0600), 0);
    assert_int_equal(file_read_all(path, 10, &text, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(text, "a\0b", 4);
    free(text);
    assert_int_equal(file_write_atomic(path, "", 0, 0600), 0);
    assert_int_equal(file_read_all(path, 0, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);

    char *missing = xasprintf("%s/missing", dir);
    assert_int_equal(file_read_all(missing, 10, &text, &len), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(text);
    free(missing);
    free(big);
    free(path);
}

static void
test_mkdirs(void **state)
{
    const char *dir = *state;
    char *deep = xasprintf("%s/a/b//c/", dir);
    char *c = xasprintf("%s/a/b/c", dir);
    struct stat st;

    umask(022);
    assert_int_equal(file_mkdirs(deep, 0750), 0);
    assert_int_equal(stat(c, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);
    /* again: everything exists already */
    assert_int_equal(file_mkdirs(c, 0750), 0);

    /* a component that is a file */
    char *file = xasprintf("%s/a/f", dir);
    assert_int_equal(file_write_atomic(file, "x", 1, 0600), 0);
    char *through = xasprintf("%s/a/f/g", dir);
    errno = 0;
    assert_int_equal(file_mkdirs(through, 0700), -1);
    assert_int_equal(errno, ENOTDIR);
    errno = 0;
    assert_int_equal(file_mkdirs(file, 0700), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(file_mkdirs("", 0700), -1);

    /* relative paths work from the working directory */
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(file_mkdirs("rel/x", 0700), 0);
    assert_int_equal(stat("rel/x", &st), 0);
    assert_int_equal(chdir("/"), 0);

    assert_int_equal(file_fsync_dir(c), 0);    /* a directory itself */
    assert_int_equal(file_fsync_dir(file), 0); /* the directory holding a file */
    free(through);
    free(file);
    free(deep);
    free(c);
}

static void
test_write_all_and_names(void **state)
{
    int fds[2];
    char buf[16] = {0};
    char a[128], b[128];

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(file_write_all(fds[1], "hello", 5), 0);
    assert_int_equal(read(fds[0], buf, sizeof(buf)), 5);
    assert_string_equal(buf, "hello");
    close(fds[0]);
    errno = 0;
    assert_int_equal(file_write_all(-1, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    close(fds[1]);

    file_unique_name(a, sizeof(a), "node/1:x");
    file_unique_name(b, sizeof(b), "node/1:x");
    assert_string_not_equal(a, b);
    assert_null(strchr(a, '/'));
    assert_null(strchr(a, ':'));
    char *pid = xasprintf(".%ld_", (long)getpid());
    assert_non_null(strstr(a, pid));
    free(pid);
    assert_non_null(strstr(a, ".node_1_x"));
    file_unique_name(a, sizeof(a), NULL); /* host name */
    assert_true(strlen(a) > 10);
    file_unique_name(a, 8, "n"); /* bounded */
    assert_int_equal(strlen(a), 7);
}

UU_MAIN(NULL, NULL, UU_FX(test_write_atomic), UU_FX(test_read_all_limits), UU_FX(test_mkdirs),
        UU_FX(test_write_all_and_names))
