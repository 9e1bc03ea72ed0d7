/*
 * unit_util - the unit tests' toolkit: temporary directories and per-test directory
 * fixtures, whole files, dmail.conf snapshots from strings, and the frame of a test file
 * (UU_MAIN, a table's cases as tests: uu_run_cases, enum names: UU_NAMES_ARE). Compiled
 * once and linked into every tests/unit/test_* binary.
 *
 * Contract:
 * - Call only from cmocka tests, setups and teardowns. The uu_* functions that can fail
 *   fail the running test through cmocka's assertions (they never return an error), except
 *   uu_tmpdir_into and uu_rmtree, which return -1 so a group setup or teardown can report it.
 * - Temporary directories are made by mkdtemp under $TMPDIR (or /tmp) and named after
 *   the test ("TAG.XXXXXX"); uu_rmtree removes one recursively without following links.
 * - Strings and paths returned are malloc'd: the caller frees them.
 * - Files are read and written as bytes: no line-end or NUL conversion.
 * - Configuration snapshots come from conf_load_string (common/mail/conf.h) under the name
 *   given, so diagnostics read "NAME:LINE: reason"; every diagnostic is printed (cmocka's
 *   print_message) before any assertion on it. The caller conf_unref()s the snapshot.
 * - UU_MAIN and UU_NAMES_ARE expand cmocka calls: cmocka.h comes before this header.
 */
#ifndef DMAIL_UNIT_UTIL_H
#define DMAIL_UNIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* uu_tmpdir_into - make a fresh directory "$TMPDIR/TAG.XXXXXX" into buf; 0 or -1. */
int uu_tmpdir_into(char *buf, size_t len, const char *tag);
/* uu_tmpdir - the same, malloc'd; fails the test if it cannot be made. */
char *uu_tmpdir(const char *tag);
/* uu_rmtree - remove dir and everything below it (links not followed); 0 or -1. */
int uu_rmtree(const char *dir);
/* uu_tmpdir_free - uu_rmtree of a uu_tmpdir (which must succeed), then free it. */
void uu_tmpdir_free(char *dir);

/* A per-test fixture with a scratch directory: a struct whose first member is
 * char dir[UU_DIR_MAX]. uu_setup_dir allocates size bytes (zeroed) into *state and makes
 * the directory ("TAG.XXXXXX") in dir; 0 or -1. uu_teardown_dir, a cmocka teardown,
 * removes the directory and frees the fixture. */
#define UU_DIR_MAX 256
int uu_setup_dir(void **state, size_t size, const char *tag);
int uu_teardown_dir(void **state);
/* uu_setup_paths - uu_setup_dir, and the fixture's next members, char arrays of
 * UU_PATH_MAX right after dir, hold "DIR/NAME" for each name given (a NULL ends them) in
 * order, e.g. struct { char dir[UU_DIR_MAX]; char box[UU_PATH_MAX]; }; 0 or -1. */
#define UU_PATH_MAX 300
int uu_setup_paths(void **state, size_t size, const char *tag, ...);

/* uu_path - "DIR/NAME", malloc'd. */
char *uu_path(const char *dir, const char *name);
/* uu_write - path holds exactly text (created or truncated, mode 0644 before umask). */
void uu_write(const char *path, const char *text);
/* uu_write_bytes - path holds exactly len bytes of data (created mode 0600, or truncated). */
void uu_write_bytes(const char *path, const char *data, size_t len);
/* uu_put - uu_write of DIR/NAME; returns that path (malloc'd). */
char *uu_put(const char *dir, const char *name, const char *text);
/* uu_read - the whole file, NUL-terminated; *len its length (len may be NULL). The file
 * must exist. */
char *uu_read(const char *path, size_t *len);
/* uu_read_or_empty - the same, but a missing file reads as "". */
char *uu_read_or_empty(const char *path, size_t *len);
/* uu_exists - path names something (lstat). */
bool uu_exists(const char *path);
/* uu_size - the size of path, -1 if it is missing. */
long long uu_size(const char *path);
/* uu_count_entries - the names in a directory other than . and .. (it must exist). */
int uu_count_entries(const char *dir);

/* uu_diag_print - print every message of d. */
void uu_diag_print(const struct conf_diag *d);
/* uu_diag_has - some message of d equals s (or contains it, if sub). */
bool uu_diag_has(const struct conf_diag *d, const char *s, bool sub);
/* uu_conf - a snapshot of text under name; it must load (warnings allowed). */
struct conf *uu_conf(const char *name, const char *text);
/* uu_conf_ok - a snapshot of text under "t.conf"; it must load without any message. */
struct conf *uu_conf_ok(const char *text);
/* uu_conf_warns - a snapshot of text under "t.conf": it must load with exactly the
 * warnings want (NULL-ended), in order, and no other message. */
struct conf *uu_conf_warns(const char *text, const char *const *want);
/* uu_conf_errs - text under "t.conf" must fail with exactly the errors want (NULL-ended),
 * in order, and no other message. */
void uu_conf_errs(const char *text, const char *const *want);

/* uu_run_cases - run the tests fixed[0..nfixed), then one test of func per element of
 * cases (n elements of size bytes, each beginning with its name, a const char *) with the
 * element as its state, as one cmocka group with this setup and teardown (either may be
 * NULL); cmocka's result. UU_RUN_CASES - the same for two arrays, without group setup. */
struct CMUnitTest;
int uu_run_cases(const struct CMUnitTest *fixed, size_t nfixed, void (*func)(void **),
                 const void *cases, size_t size, size_t n, int (*setup)(void **),
                 int (*teardown)(void **));
#define UU_RUN_CASES(fixed, func, cases)                                                           \
    uu_run_cases(fixed, sizeof(fixed) / sizeof((fixed)[0]), func, cases, sizeof((cases)[0]),       \
                 sizeof(cases) / sizeof((cases)[0]), NULL, NULL)

/* UU_NAMES_ARE(name_of, type, names) - for every index i of the array names (none left
 * NULL), name_of((type)i) is names[i]: an enum's names, written as [VALUE] = "name". */
#define UU_NAMES_ARE(name_of, type, names)                                                         \
    for (size_t uu_i = 0; uu_i < sizeof(names) / sizeof((names)[0]); uu_i++) {                     \
        assert_non_null((names)[uu_i]);                                                            \
        assert_string_equal(name_of((type)uu_i), (names)[uu_i]);                                   \
    }

/* UU_MAIN(group_setup, group_teardown, tests...) - a test file's main(): the cmocka tests
 * given run as one group (cmocka.h comes first). In the list, UU_FX(t) is test t with the
 * file's own per-test fixture, its static setup and teardown; UU_DIR(t), with its setup and
 * uu_teardown_dir. */
#define UU_MAIN(group_setup, group_teardown, ...)                                                  \
    int main(void)                                                                                 \
    {                                                                                              \
        const struct CMUnitTest uu_tests[] = {__VA_ARGS__};                                        \
        return cmocka_run_group_tests_name("tests", uu_tests, group_setup, group_teardown);        \
    }
#define UU_FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
#define UU_DIR(t) cmocka_unit_test_setup_teardown(t, setup, uu_teardown_dir)

#endif
