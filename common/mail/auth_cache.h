/*
 * auth_cache - the cache of successful password checks, internal to auth.c.
 *
 * Contract:
 * - Entries are keyed by HMAC-SHA256(process secret, user NUL password NUL stored hash):
 *   neither passwords nor hashes are kept, and a changed password misses at once.
 * - Loop thread only, except auth_cache_key (any thread: it reads only the secret).
 * - At most max entries (the oldest goes first); each lives ttl_ms; expired ones are
 *   dropped when met. auth_cache_free while requests are pending (pending > 0) only marks
 *   the cache dying: the last request's end destroys it.
 */
#ifndef DMAIL_AUTH_CACHE_H
#define DMAIL_AUTH_CACHE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define AUTH_KEY_LEN 32

struct auth_cache_ent {
    unsigned char key[AUTH_KEY_LEN];
    uint64_t expires;                     /* uv_now() milliseconds */
    struct auth_cache_ent *hnext;         /* bucket chain */
    struct auth_cache_ent *older, *newer; /* insertion order */
};

struct auth_cache {
    unsigned char secret[AUTH_KEY_LEN];
    EVP_MAC *mac;
    struct auth_cache_ent **buckets;
    size_t nbuckets; /* power of two */
    size_t n;
    struct auth_cache_ent *oldest, *newest;
    unsigned long hits;
    unsigned pending; /* requests on the pool that will insert */
    bool dying;       /* auth_cache_free was called while requests were pending */
};

/* auth_cache_destroy - free everything now. */
void auth_cache_destroy(struct auth_cache *c);
/* auth_cache_find - the live entry for key, dropping it if expired. */
struct auth_cache_ent *auth_cache_find(struct auth_cache *c, const unsigned char *key,
                                       uint64_t now);
/* auth_cache_insert - remember key until now + ttl_ms, keeping at most max entries. */
void auth_cache_insert(struct auth_cache *c, const unsigned char *key, uint64_t now,
                       uint64_t ttl_ms, size_t max);
/* auth_cache_key - HMAC-SHA256(secret, user NUL password NUL hash) into key. */
bool auth_cache_key(struct auth_cache *c, const struct auth_user *u, const char *hash,
                    const char *password, size_t pwlen, unsigned char *key);

#endif
