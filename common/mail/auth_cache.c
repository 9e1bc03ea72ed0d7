/*
 * auth_cache - the cache of successful password checks. See auth_cache.h.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "auth_cache.h"
#include "xmem.h"

/* auth_cache_new - an empty cache with a fresh random key. */
struct auth_cache *
auth_cache_new(void)
{
    struct auth_cache *c = xcalloc(1, sizeof *c);

    if (RAND_bytes(c->secret, sizeof c->secret) != 1 ||
        (c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
        OPENSSL_cleanse(c->secret, sizeof c->secret);
        free(c);
        return NULL;
    }
    c->nbuckets = 64;
    c->buckets = xcalloc(c->nbuckets, sizeof *c->buckets);
    return c;
}

/* auth_cache_destroy - free everything now. */
void
auth_cache_destroy(struct auth_cache *c)
{
    struct auth_cache_ent *e = c->oldest;

    while (e) {
        struct auth_cache_ent *next = e->newer;
        OPENSSL_cleanse(e, sizeof *e);
        free(e);
        e = next;
    }
    OPENSSL_cleanse(c->secret, sizeof c->secret);
    EVP_MAC_free(c->mac);
    free(c->buckets);
    free(c);
}

/* auth_cache_free - free the cache (later, if requests are still on the pool). */
void
auth_cache_free(struct auth_cache **cp)
{
    struct auth_cache *c = *cp;

    *cp = NULL;
    if (c == NULL)
        return;
    if (c->pending > 0) {
        c->dying = true;
        return;
    }
    auth_cache_destroy(c);
}

/* auth_cache_count - entries held. */
size_t
auth_cache_count(const struct auth_cache *c)
{
    return c ? c->n : 0;
}

/* auth_cache_hits - answers given from the cache. */
unsigned long
auth_cache_hits(const struct auth_cache *c)
{
    return c ? c->hits : 0;
}

/* auth_cache_bucket - the chain head for key. */
static struct auth_cache_ent **
auth_cache_bucket(struct auth_cache *c, const unsigned char *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* a keyed digest: already uniform */
    return &c->buckets[h & (c->nbuckets - 1)];
}

/* auth_cache_remove - take e out of its chain and the age list, and free it. */
static void
auth_cache_remove(struct auth_cache *c, struct auth_cache_ent *e)
{
    struct auth_cache_ent **pp = auth_cache_bucket(c, e->key);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->n--;
    OPENSSL_cleanse(e, sizeof *e);
    free(e);
}

/* auth_cache_find - the live entry for key, dropping it if expired. */
struct auth_cache_ent *
auth_cache_find(struct auth_cache *c, const unsigned char *key, uint64_t now)
{
    for (struct auth_cache_ent *e = *auth_cache_bucket(c, key); e; e = e->hnext) {
        if (CRYPTO_memcmp(e->key, key, AUTH_KEY_LEN) != 0)
            continue;
        if (e->expires > now)
            return e;
        auth_cache_remove(c, e);
        return NULL;
    }
    return NULL;
}

/* auth_cache_grow - double the buckets when the chains get long. */
static void
auth_cache_grow(struct auth_cache *c)
{
    size_t nb = c->nbuckets * 2;
    struct auth_cache_ent **b = xcalloc(nb, sizeof *b);

    for (struct auth_cache_ent *e = c->oldest; e; e = e->newer) {
        uint64_t h;
        memcpy(&h, e->key, sizeof h);
        e->hnext = b[h & (nb - 1)];
        b[h & (nb - 1)] = e;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* auth_cache_insert - remember key until now + ttl_ms, keeping at most max entries. */
void
auth_cache_insert(struct auth_cache *c, const unsigned char *key, uint64_t now, uint64_t ttl_ms,
                  size_t max)
{
    struct auth_cache_ent *e = auth_cache_find(c, key, now);

    if (e)
        auth_cache_remove(c, e);
    while (c->oldest && (c->oldest->expires <= now || c->n >= max))
        auth_cache_remove(c, c->oldest);
    /* grow before e is on the age list: auth_cache_grow rehashes that list, and e must
     * enter its chain once only (twice made it point to itself) */
    if (c->n + 1 > c->nbuckets)
        auth_cache_grow(c);
    e = xcalloc(1, sizeof *e);
    memcpy(e->key, key, AUTH_KEY_LEN);
    e->expires = now + ttl_ms;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->n++;
    struct auth_cache_ent **pp = auth_cache_bucket(c, key);
    e->hnext = *pp;
    *pp = e;
}

/* auth_cache_key - HMAC-SHA256(secret, user NUL password NUL hash) into key. */
bool
auth_cache_key(struct auth_cache *c, const struct auth_user *u, const char *hash,
               const char *password, size_t pwlen, unsigned char *key)
{
    char md[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->mac);
    size_t outlen = 0;
    bool ok = ctx != NULL && EVP_MAC_init(ctx, c->secret, sizeof c->secret, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)u->name, strlen(u->name)) == 1 &&
              (u->domain == NULL ||
               (EVP_MAC_update(ctx, (const unsigned char *)"@", 1) == 1 &&
                EVP_MAC_update(ctx, (const unsigned char *)u->domain, strlen(u->domain)) == 1)) &&
              EVP_MAC_update(ctx, (const unsigned char *)"", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)password, pwlen) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)"", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)hash, strlen(hash)) == 1 &&
              EVP_MAC_final(ctx, key, &outlen, AUTH_KEY_LEN) == 1 && outlen == AUTH_KEY_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok;
}
