/*
 * test_token - dlist's signed tokens (dlist/token.c): the key file made once with mode
 * 0600 and read back, a refused key file (readable by others, wrong size), a token checks
 * for its own list/address/action only, in any letter case, expires, and any changed
 * character, truncation or forged MAC is TOKEN_BAD.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "../../dlist/token.h"
#include "xmem.h"
#include "unit_util.h"

struct fx {
    char dir[UU_DIR_MAX];
    char key[UU_PATH_MAX];
};

static int
setup(void **state)
{
    return uu_setup_paths(state, sizeof(struct fx), "token", "token.key", NULL);
}

static void
test_key_file(void **state)
{
    struct fx *f = *state;
    char err[300], t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1];
    struct stat st;
    char *k1;
    size_t n1;

    assert_int_equal(token_init(f->dir, err, sizeof err), 0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    k1 = uu_read(f->key, &n1);
    assert_int_equal(token_make("talk", "bob@example.org", "join", 2000000000, t1, sizeof t1), 0);
    /* loaded again: the same key, so the same token */
    assert_int_equal(token_init(f->dir, err, sizeof err), 0);
    assert_int_equal(token_make("talk", "bob@example.org", "join", 2000000000, t2, sizeof t2), 0);
    assert_string_equal(t1, t2);
    {
        size_t n2;
        char *k2 = uu_read(f->key, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(k1, k2, n1);
        free(k2);
    }
    free(k1);
    /* readable by others: refused with the reason */
    assert_int_equal(chmod(f->key, 0644), 0);
    assert_int_equal(token_init(f->dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "readable by others"));
    /* the wrong size: refused */
    uu_write_bytes(f->key, "short", 5);
    assert_int_equal(chmod(f->key, 0600), 0);
    assert_int_equal(token_init(f->dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a 32-byte key"));
    /* a directory that does not exist */
    assert_int_equal(token_init("/nonexistent/dlist", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/dlist/token.key"));
}

static void
test_make_check(void **state)
{
    struct fx *f = *state;
    char err[300], t[TOKEN_LEN + 1], bad[TOKEN_LEN + 1], small[TOKEN_LEN];
    time_t exp = 1900000000;

    assert_int_equal(token_init(f->dir, err, sizeof err), 0);
    assert_int_equal(token_make("talk", "Bob@Example.org", "join", exp, t, sizeof t), 0);
    assert_int_equal(strlen(t), TOKEN_LEN);
    assert_int_equal(strspn(t, "abcdefghijklmnopqrstuvwxyz234567"), TOKEN_LEN);
    assert_int_equal(token_check(t, "talk", "bob@example.org", "join", exp - 10), TOKEN_OK);
    assert_int_equal(token_check(t, "TALK", "BOB@EXAMPLE.ORG", "join", exp), TOKEN_OK);
    assert_int_equal(token_check(t, "talk", "bob@example.org", "join", exp + 1), TOKEN_EXPIRED);
    /* another list, address or action */
    assert_int_equal(token_check(t, "talk2", "bob@example.org", "join", exp), TOKEN_BAD);
    assert_int_equal(token_check(t, "talk", "eve@example.org", "join", exp), TOKEN_BAD);
    assert_int_equal(token_check(t, "talk", "bob@example.org", "leave", exp), TOKEN_BAD);
    assert_int_equal(token_check(t, "talk", "bob@example.org", "JOIN", exp), TOKEN_BAD);
    /* upper case still checks */
    strcpy(bad, t);
    for (char *p = bad; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(token_check(bad, "talk", "bob@example.org", "join", exp), TOKEN_OK);
    /* each character changed: BAD (a changed expiry breaks the MAC) */
    for (size_t i = 0; i < TOKEN_LEN; i++) {
        strcpy(bad, t);
        bad[i] = bad[i] == 'a' ? 'b' : 'a';
        assert_int_equal(token_check(bad, "talk", "bob@example.org", "join", 0), TOKEN_BAD);
    }
    /* a forged token with a later expiry and an expired one made up: BAD, never EXPIRED */
    assert_int_equal(token_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "talk", "bob@example.org",
                                 "join", exp + 100000),
                     TOKEN_BAD);
    /* truncated, too long, bad letters, empty, NULL */
    strcpy(bad, t);
    bad[TOKEN_LEN - 1] = '\0';
    assert_int_equal(token_check(bad, "talk", "bob@example.org", "join", exp), TOKEN_BAD);
    assert_int_equal(token_check("", "talk", "bob@example.org", "join", exp), TOKEN_BAD);
    assert_int_equal(token_check(NULL, "talk", "bob@example.org", "join", exp), TOKEN_BAD);
    strcpy(bad, t);
    bad[3] = '1';
    assert_int_equal(token_check(bad, "talk", "bob@example.org", "join", exp), TOKEN_BAD);
    /* out too small, negative expiry */
    assert_int_equal(token_make("talk", "bob@example.org", "join", exp, small, sizeof small), -1);
    assert_int_equal(token_make("talk", "bob@example.org", "join", -1, t, sizeof t), -1);
}

static void
test_two_keys_differ(void **state)
{
    struct fx *f = *state;
    char err[300], t1[TOKEN_LEN + 1], *other = uu_tmpdir("token2");

    assert_int_equal(token_init(f->dir, err, sizeof err), 0);
    assert_int_equal(token_make("talk", "bob@example.org", "join", 1900000000, t1, sizeof t1), 0);
    assert_int_equal(token_init(other, err, sizeof err), 0);
    /* another server's key: the token is not valid there */
    assert_int_equal(token_check(t1, "talk", "bob@example.org", "join", 0), TOKEN_BAD);
    uu_tmpdir_free(other);
}

UU_MAIN(NULL, NULL, UU_DIR(test_key_file), UU_DIR(test_make_check), UU_DIR(test_two_keys_differ))
