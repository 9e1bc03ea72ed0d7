/*
 * unit_util - the unit tests' toolkit (see unit_util.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_util.h"

int
uu_tmpdir_into(char *buf, size_t len, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, len, "%s/%s.XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", tag);

    if (n < 0 || (size_t)n >= len)
        return -1;
    return mkdtemp(buf) != NULL ? 0 : -1;
}

char *
uu_tmpdir(const char *tag)
{
    char buf[4096];

    assert_int_equal(uu_tmpdir_into(buf, sizeof buf, tag), 0);
    char *d = strdup(buf);
    assert_non_null(d);
    return d;
}

/* rm_entry - nftw callback removing one entry. */
static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int
uu_rmtree(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void
uu_tmpdir_free(char *dir)
{
    assert_int_equal(uu_rmtree(dir), 0);
    free(dir);
}

int
uu_setup_dir(void **state, size_t size, const char *tag)
{
    char *f = calloc(1, size);

    if (f == NULL || size < UU_DIR_MAX || uu_tmpdir_into(f, UU_DIR_MAX, tag) < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int
uu_setup_paths(void **state, size_t size, const char *tag, ...)
{
    va_list ap;
    int rc = 0;

    if (uu_setup_dir(state, size, tag) < 0)
        return -1;
    char *dir = *state, *p = dir + UU_DIR_MAX;
    va_start(ap, tag);
    for (const char *name; rc == 0 && (name = va_arg(ap, const char *)) != NULL; p += UU_PATH_MAX) {
        if (p + UU_PATH_MAX > dir + size ||
            snprintf(p, UU_PATH_MAX, "%s/%s", dir, name) >= UU_PATH_MAX)
            rc = -1;
    }
    va_end(ap);
    return rc;
}

int
uu_teardown_dir(void **state)
{
    uu_rmtree(*state);
    free(*state);
    return 0;
}

char *
uu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void
uu_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");

    if (fp == NULL)
        fail_msg("uu_write: cannot create %s", path);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

void
uu_write_bytes(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0)
        fail_msg("uu_write_bytes: cannot create %s", path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

char *
uu_put(const char *dir, const char *name, const char *text)
{
    char *p = uu_path(dir, name);

    uu_write(p, text);
    return p;
}

/* read_all - fp's whole content; fp is closed. */
static char *
read_all(FILE *fp, size_t *len)
{
    char *buf;
    long n;

    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

char *
uu_read(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");

    if (fp == NULL)
        fail_msg("uu_read: cannot open %s", path);
    return read_all(fp, len);
}

char *
uu_read_or_empty(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *s;

    if (fp != NULL)
        return read_all(fp, len);
    if (len != NULL)
        *len = 0;
    s = strdup("");
    assert_non_null(s);
    return s;
}

bool
uu_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

long long
uu_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int
uu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        fail_msg("uu_count_entries: cannot open %s", dir);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

void
uu_diag_print(const struct conf_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        print_message("  diag: %s\n", d->msgs[i]);
}

bool
uu_diag_has(const struct conf_diag *d, const char *s, bool sub)
{
    for (size_t i = 0; i < d->n; i++)
        if (sub ? strstr(d->msgs[i], s) != NULL : strcmp(d->msgs[i], s) == 0)
            return true;
    return false;
}

struct conf *
uu_conf(const char *name, const char *text)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load_string(name, text, &d);

    uu_diag_print(&d);
    conf_diag_free(&d);
    assert_non_null(c);
    return c;
}

struct conf *
uu_conf_ok(const char *text)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load_string("t.conf", text, &d);

    uu_diag_print(&d);
    assert_non_null(c);
    assert_int_equal(d.n, 0);
    conf_diag_free(&d);
    return c;
}

/* conf_exactly - text under "t.conf" loads (loads: with only warnings) or fails (with only
 * errors), the messages being exactly want (NULL-ended), in order */
static struct conf *
conf_exactly(const char *text, const char *const *want, bool loads)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load_string("t.conf", text, &d);
    size_t n = 0;

    uu_diag_print(&d);
    for (; want[n] != NULL; n++) {
        assert_true(n < d.n);
        assert_string_equal(d.msgs[n], want[n]);
    }
    assert_int_equal(d.n, n);
    assert_int_equal(loads ? d.warnings : d.errors, (int)n);
    assert_int_equal(c != NULL, loads);
    conf_diag_free(&d);
    return c;
}

struct conf *
uu_conf_warns(const char *text, const char *const *want)
{
    return conf_exactly(text, want, true);
}

void
uu_conf_errs(const char *text, const char *const *want)
{
    conf_exactly(text, want, false);
}

int
uu_run_cases(const struct CMUnitTest *fixed, size_t nfixed, void (*func)(void **),
             const void *cases, size_t size, size_t n, int (*setup)(void **),
             int (*teardown)(void **))
{
    struct CMUnitTest *tests = calloc(nfixed + n, sizeof(*tests));

    if (tests == NULL)
        return -1;
    memcpy(tests, fixed, nfixed * sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        const void *c = (const char *)cases + i * size;
        tests[nfixed + i] = (struct CMUnitTest){
            .name = *(const char *const *)c, .test_func = func, .initial_state = (void *)c};
    }
    int rc = _cmocka_run_group_tests("tests", tests, nfixed + n, setup, teardown);
    free(tests);
    return rc;
}
