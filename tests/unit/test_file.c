/*
 * test_file - atomic writes, bounded whole-file reads, mkdir -p, unique names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

/* read_back - path written with n bytes of data reads back whole (under max): the same
 * bytes, NUL-terminated. */
static void
read_back(const char *path, const char *data, size_t n, size_t max)
{
    char *text = (char *)1;
    size_t len = n + 1;

    assert_int_equal(file_write_atomic(path, data, n, 0600), 0);
    assert_int_equal(file_read_all(path, max, &text, &len), 0);
    assert_int_equal(len, n);
    assert_int_equal(text[n], '\0');
    assert_memory_equal(text, data, n);
    free(text);
}

/* read_fails - file_read_all of path (under max) fails with errno err and no text. */
static void
read_fails(const char *path, size_t max, int err)
{
    char *text = (char *)1;
    size_t len = 0;

    errno = 0;
    assert_int_equal(file_read_all(path, max, &text, &len), -1);
    assert_int_equal(errno, err);
    assert_null(text);
}

static void
test_read_all_limits(void **state)
{
    const char *dir = *state;
    char *path = xasprintf("%s/data", dir);
    char *big = xmalloc(300000), *text;

    for (size_t i = 0; i < 300000; i++)
        big[i] = (char)('a' + i % 26);
    read_back(path, big, 100, 100); /* exactly max */
    read_fails(path, 99, EFBIG);

    /* bigger than the first buffer */
    read_back(path, big, 300000, 1 << 20);
    read_fails(path, 299999, EFBIG);
    assert_int_equal(file_read_all(path, 1 << 20, &text, NULL), 0); /* len may be NULL */
    free(text);

    /* empty file, and a file with NUL bytes keeps its length */
    read_back(path, "a\0b", 3, 10);
    read_back(path, "", 0, 0);

    char *missing = xasprintf("%s/missing", dir);
    read_fails(missing, 10, ENOENT);
    free(missing);

    /* not regular files: refused at once, a FIFO without a writer does not block */
    char *fifo = xasprintf("%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    read_fails(fifo, 10, EINVAL);
    free(fifo);
    read_fails(dir, 10, EISDIR);
    read_fails("/dev/null", 10, EINVAL);
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

#define SYNC_THREADS 8

struct sync_arg {
    const char *dir;
    pthread_barrier_t *go;
    int rc;
    bool covered; /* returned after an fsync that began after the call */
};

/* slow_fsync - make each real directory fsync last long enough for callers to pile up. */
static void
slow_fsync(void)
{
    usleep(100000);
}

/* sync_thread - write a file into the directory, then ask for the directory's fsync. */
static void *
sync_thread(void *p)
{
    struct sync_arg *a = p;
    char path[4096];

    snprintf(path, sizeof(path), "%s/f.%p", a->dir, p);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        a->rc = -1;
        return NULL;
    }
    fclose(f);
    pthread_barrier_wait(a->go);
    unsigned long before = file_fsync_dir_count();
    a->rc = file_fsync_dir(path);
    a->covered = file_fsync_dir_count() > before;
    return NULL;
}

/* Concurrent callers share fsyncs, and none returns before an fsync that began after it
 * asked has finished. */
static void
test_fsync_dir_group(void **state)
{
    const char *dir = *state;
    pthread_t t[SYNC_THREADS];
    struct sync_arg a[SYNC_THREADS];
    pthread_barrier_t go;

    pthread_barrier_init(&go, NULL, SYNC_THREADS);
    file_fsync_dir_hook = slow_fsync;
    unsigned long before = file_fsync_dir_count();
    for (int i = 0; i < SYNC_THREADS; i++) {
        a[i] = (struct sync_arg){.dir = dir, .go = &go};
        assert_int_equal(pthread_create(&t[i], NULL, sync_thread, &a[i]), 0);
    }
    for (int i = 0; i < SYNC_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    file_fsync_dir_hook = NULL;
    pthread_barrier_destroy(&go);
    unsigned long real = file_fsync_dir_count() - before;
    for (int i = 0; i < SYNC_THREADS; i++) {
        assert_int_equal(a[i].rc, 0);
        assert_true(a[i].covered);
    }
    /* 8 callers at once: the first fsync, then one for all who came while it ran (a
     * caller held up by the scheduler may need another) */
    assert_true(real >= 2);
    assert_true(real <= 4);

    errno = 0;
    char *gone = xasprintf("%s/no/such/dir/file", dir);
    assert_int_equal(file_fsync_dir(gone), -1);
    assert_int_equal(errno, ENOENT);
    free(gone);
}

static bool
not_b(const char *name)
{
    return name[0] != 'b' && name[0] != '.';
}

/* file_dir_names: sorted, dot-files or what keep refuses left out, errno for a missing
 * directory. */
static void
test_dir_names(void **state)
{
    const char *dir = *state;
    static const char *const files[] = {"c2", "a1", ".hidden", "b9", "a0"};
    char **v, *sub = uu_path(dir, "none");
    size_t n = 99;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = uu_path(dir, files[i]);
        assert_int_equal(file_write_atomic(p, "x", 1, 0600), 0);
        free(p);
    }
    v = file_dir_names(dir, NULL, &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "a0");
    assert_string_equal(v[1], "a1");
    assert_string_equal(v[2], "b9");
    assert_string_equal(v[3], "c2");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    v = file_dir_names(dir, not_b, &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[2], "c2");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    assert_null(file_dir_names(sub, NULL, &n));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(n, 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    v = file_dir_names(sub, NULL, &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    free(v);
    free(sub);
}

UU_MAIN(NULL, NULL, UU_FX(test_dir_names), UU_FX(test_write_atomic), UU_FX(test_read_all_limits),
        UU_FX(test_mkdirs), UU_FX(test_write_all_and_names), UU_FX(test_fsync_dir_group))
