/*
 * lru - bounded string-keyed map with expiry and least-recently-used eviction. See lru.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lru.h"
#include "xmem.h"

struct lru_entry {
    struct lru_entry *chain;       /* next in the bucket */
    struct lru_entry *prev, *next; /* use order: head is the most recent */
    uint64_t hash;
    uint64_t expires;
    char *key;
    unsigned char value[]; /* value_size bytes */
};

struct lru {
    size_t max, n, value_size;
    size_t mask; /* buckets - 1 */
    uint64_t seed;
    struct lru_entry **bucket;
    struct lru_entry *head, *tail;
};

/* lru_hash - FNV-1a of key, started from the map's seed. */
static uint64_t
lru_hash(const struct lru *l, const char *key)
{
    uint64_t h = 1469598103934665603ULL ^ l->seed;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

struct lru *
lru_new(size_t max, size_t value_size)
{
    struct lru *l = xcalloc(1, sizeof(*l));
    size_t nb = 16;

    l->max = max > 0 ? max : 1;
    l->value_size = value_size;
    while (nb < l->max)
        nb *= 2;
    l->mask = nb - 1;
    l->bucket = xcalloc(nb, sizeof(*l->bucket));
    if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != (ssize_t)sizeof(l->seed))
        l->seed = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ULL;
    return l;
}

/* lru_remove - take e out of its chain and the use order, and free it. */
static void
lru_remove(struct lru *l, struct lru_entry *e)
{
    struct lru_entry **pp = &l->bucket[e->hash & l->mask];

    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    l->n--;
    free(e->key);
    free(e);
}

/* lru_front - make e the most recently used. */
static void
lru_front(struct lru *l, struct lru_entry *e)
{
    if (l->head == e)
        return;
    if (e->prev != NULL || e->next != NULL || l->tail == e) { /* linked: unlink */
        if (e->prev != NULL)
            e->prev->next = e->next;
        if (e->next != NULL)
            e->next->prev = e->prev;
        else
            l->tail = e->prev;
    }
    e->prev = NULL;
    e->next = l->head;
    if (l->head != NULL)
        l->head->prev = e;
    l->head = e;
    if (l->tail == NULL)
        l->tail = e;
}

/* lru_find - key's entry, expired or not, or NULL. */
static struct lru_entry *
lru_find(const struct lru *l, const char *key, uint64_t h)
{
    for (struct lru_entry *e = l->bucket[h & l->mask]; e != NULL; e = e->chain)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

void *
lru_get(struct lru *l, const char *key, uint64_t now)
{
    uint64_t h = lru_hash(l, key);
    struct lru_entry *e = lru_find(l, key, h);

    if (e == NULL)
        return NULL;
    if (e->expires <= now) {
        lru_remove(l, e);
        return NULL;
    }
    lru_front(l, e);
    return e->value;
}

void *
lru_put(struct lru *l, const char *key, uint64_t expires, uint64_t now, bool *fresh)
{
    uint64_t h = lru_hash(l, key);
    struct lru_entry *e = lru_find(l, key, h);

    if (e != NULL && e->expires <= now) {
        lru_remove(l, e);
        e = NULL;
    }
    if (fresh != NULL)
        *fresh = e == NULL;
    if (e == NULL) {
        if (l->n >= l->max)
            lru_remove(l, l->tail);
        e = xcalloc(1, sizeof(*e) + l->value_size);
        e->hash = h;
        e->key = xstrdup(key);
        e->chain = l->bucket[h & l->mask];
        l->bucket[h & l->mask] = e;
        l->n++;
    }
    e->expires = expires;
    lru_front(l, e);
    return e->value;
}

void
lru_del(struct lru *l, const char *key)
{
    struct lru_entry *e = lru_find(l, key, lru_hash(l, key));

    if (e != NULL)
        lru_remove(l, e);
}

size_t
lru_count(const struct lru *l)
{
    return l->n;
}

void
lru_each(struct lru *l, uint64_t now, bool (*fn)(const char *key, void *value, void *arg),
         void *arg)
{
    struct lru_entry *e = l->head, *next;

    for (; e != NULL; e = next) {
        next = e->next;
        if (e->expires <= now || !fn(e->key, e->value, arg))
            lru_remove(l, e);
    }
}

void
lru_free(struct lru **lp)
{
    struct lru *l = *lp;

    if (l == NULL)
        return;
    *lp = NULL;
    while (l->head != NULL) {
        struct lru_entry *e = l->head;
        l->head = e->next;
        free(e->key);
        free(e);
    }
    free(l->bucket);
    free(l);
}
