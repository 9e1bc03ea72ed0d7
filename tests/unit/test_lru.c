/*
 * test_lru - the bounded map: get/put, expiry, least-recently-used eviction, each, del.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "lru.h"
#include "unit_util.h"

struct val {
    int n;
    char text[8];
};

static void
test_put_get_expire(void **state)
{
    struct lru *l = lru_new(4, sizeof(struct val));
    bool fresh = false;
    struct val *v = lru_put(l, "192.0.2.1", 1000, 0, &fresh);

    assert_true(fresh);
    assert_int_equal(v->n, 0); /* zeroed */
    v->n = 7;
    v = lru_put(l, "192.0.2.1", 2000, 10, &fresh);
    assert_false(fresh);
    assert_int_equal(v->n, 7);
    v = lru_get(l, "192.0.2.1", 1999);
    assert_non_null(v);
    assert_int_equal(v->n, 7);
    assert_null(lru_get(l, "192.0.2.2", 0));
    assert_null(lru_get(l, "192.0.2.1", 2000)); /* expired: gone */
    assert_int_equal(lru_count(l), 0);
    v = lru_put(l, "192.0.2.1", 3000, 2000, &fresh);
    assert_true(fresh);
    assert_int_equal(v->n, 0);
    /* an expired entry is made anew by put */
    v->n = 3;
    v = lru_put(l, "192.0.2.1", 5000, 3000, &fresh);
    assert_true(fresh);
    assert_int_equal(v->n, 0);
    lru_del(l, "192.0.2.1");
    lru_del(l, "nothing");
    assert_int_equal(lru_count(l), 0);
    lru_free(&l);
    assert_null(l);
    lru_free(&l);
}

static void
test_eviction_order(void **state)
{
    struct lru *l = lru_new(3, sizeof(struct val));
    char key[16];

    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ((struct val *)lru_put(l, key, 100, 0, NULL))->n = i;
    }
    assert_non_null(lru_get(l, "k0", 1)); /* k0 used: k1 is now the oldest */
    lru_put(l, "k3", 100, 1, NULL);
    assert_int_equal(lru_count(l), 3);
    assert_null(lru_get(l, "k1", 1));
    assert_non_null(lru_get(l, "k0", 1));
    assert_non_null(lru_get(l, "k2", 1));
    assert_non_null(lru_get(l, "k3", 1));
    /* many more keys than room: never more than max */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "x%d", i);
        lru_put(l, key, 100, 1, NULL);
        assert_true(lru_count(l) <= 3);
    }
    assert_non_null(lru_get(l, "x9999", 1));
    assert_null(lru_get(l, "x0", 1));
    lru_free(&l);
}

static bool
halve(const char *key, void *value, void *arg)
{
    struct val *v = value;
    int *seen = arg;

    (*seen)++;
    v->n /= 2;
    return v->n > 0;
}

static void
test_each(void **state)
{
    struct lru *l = lru_new(10, sizeof(struct val));
    int seen = 0;

    ((struct val *)lru_put(l, "a", 100, 0, NULL))->n = 5;
    ((struct val *)lru_put(l, "b", 100, 0, NULL))->n = 1;
    ((struct val *)lru_put(l, "c", 10, 0, NULL))->n = 9; /* expires at 10 */
    lru_each(l, 50, halve, &seen);
    assert_int_equal(seen, 2); /* c was expired: removed unseen */
    assert_int_equal(lru_count(l), 1);
    struct val *v = lru_get(l, "a", 50);
    assert_non_null(v);
    assert_int_equal(v->n, 2);
    assert_null(lru_get(l, "b", 50)); /* fn returned false */
    lru_free(&l);
}

/* hash_str_ci: equal where strcasecmp is (ASCII letters only), hash_str otherwise */
static void
test_hash_str_ci(void **state)
{
    (void)state;
    assert_true(hash_str_ci("Bob@Example.NET") == hash_str_ci("bob@example.net"));
    assert_true(hash_str_ci("bob@example.net") == hash_str("bob@example.net"));
    assert_true(hash_str_ci("bob@example.net") != hash_str_ci("bob@example.nez"));
    assert_true(hash_str_ci("\xc3\x89") != hash_str_ci("\xc3\xa9")); /* not UTF-8 aware */
    assert_true(hash_str_ci("") == hash_str(""));
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_hash_str_ci), cmocka_unit_test(test_put_get_expire),
        cmocka_unit_test(test_eviction_order), cmocka_unit_test(test_each))
