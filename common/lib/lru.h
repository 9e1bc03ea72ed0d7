/*
 * lru - a bounded map from string keys to small fixed-size values, each with an expiry
 * time, the least recently used entry evicted first when it is full: DNSBL results per
 * client address, message counts per client address, mail-bomb counters.
 *
 * Contract:
 * - Owns: struct lru, its entries and their keys and values (value_size bytes each,
 *   zeroed when an entry is made). A value pointer returned by lru_get/lru_put is valid
 *   until the next lru_put, lru_del, lru_expire or lru_free on the same map.
 * - Blocks on: nothing; not thread-safe (one loop thread). Times are the caller's clock
 *   in ms (uv_now); an entry whose expiry is <= now is gone for lru_get.
 * - Bounded: at most max entries; keys from clients are hashed with a per-map random
 *   seed, so nobody can aim at one chain.
 */
#ifndef DMAIL_LRU_H
#define DMAIL_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lru;

/* lru_new - a map of at most max (>= 1) entries of value_size bytes each. */
struct lru *lru_new(size_t max, size_t value_size);
/* lru_free - every entry and the map; sets *l to NULL. */
void lru_free(struct lru **l);

/* lru_get - key's value, or NULL when absent or expired (then removed); a hit becomes the
 * most recently used. */
void *lru_get(struct lru *l, const char *key, uint64_t now);
/* lru_put - key's value, made (zeroed) if absent or expired, evicting the least recently
 * used entry when full; its expiry becomes expires and it is the most recently used.
 * *fresh (may be NULL) tells whether the value was just made. Never NULL. */
void *lru_put(struct lru *l, const char *key, uint64_t expires, uint64_t now, bool *fresh);
/* lru_del - forget key (nothing if absent). */
void lru_del(struct lru *l, const char *key);
/* lru_count - entries now (expired ones included until they are looked at). */
size_t lru_count(const struct lru *l);

/* lru_each - fn(key, value, arg) for every live entry, most recently used first; an
 * entry for which fn returns false is removed. Expired entries are removed unseen. fn must
 * not change the map otherwise. */
void lru_each(struct lru *l, uint64_t now, bool (*fn)(const char *key, void *value, void *arg),
              void *arg);

#endif
