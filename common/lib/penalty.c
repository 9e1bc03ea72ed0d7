/*
 * penalty - failed-login table (contract in penalty.h): a hash table of keys with a
 * doubly linked list in order of last failure, so the oldest entry is dropped first.
 */
#include "hash.h"
#include "penalty.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

#define PENALTY_BUCKETS 4096 /* power of two */

struct penalty_ent {
    char *key;
    unsigned fails;
    uint64_t last;                     /* ms of the last failure */
    uint64_t next;                     /* ms: the earliest check of the next attempt */
    struct penalty_ent *hnext;         /* bucket chain */
    struct penalty_ent *older, *newer; /* order of last failure */
};

struct penalty {
    struct penalty_ent *buckets[PENALTY_BUCKETS];
    struct penalty_ent *oldest, *newest;
    size_t n;
};

/* penalty_hash - the bucket of key. */
static size_t
penalty_hash(const char *key)
{
    return (size_t)(hash_str(key) & (PENALTY_BUCKETS - 1));
}

/* penalty_new - an empty penalty table. */
struct penalty *
penalty_new(void)
{
    return xcalloc(1, sizeof(struct penalty));
}

/* penalty_unlink - take e out of the age list. */
static void
penalty_unlink(struct penalty *p, struct penalty_ent *e)
{
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        p->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        p->newest = e->older;
    e->older = e->newer = NULL;
}

/* penalty_remove - delete e from the table. */
static void
penalty_remove(struct penalty *p, struct penalty_ent *e)
{
    struct penalty_ent **pp = &p->buckets[penalty_hash(e->key)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    penalty_unlink(p, e);
    free(e->key);
    free(e);
    p->n--;
}

/* penalty_expire - forget entries whose last failure is old. */
static void
penalty_expire(struct penalty *p, uint64_t now)
{
    while (p->oldest != NULL && now - p->oldest->last > PENALTY_FORGET_MS)
        penalty_remove(p, p->oldest);
}

/* penalty_find - the entry for key, or NULL. */
static struct penalty_ent *
penalty_find(struct penalty *p, const char *key)
{
    for (struct penalty_ent *e = p->buckets[penalty_hash(key)]; e != NULL; e = e->hnext)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* penalty_free - free the table. */
void
penalty_free(struct penalty **pp)
{
    struct penalty *p = *pp;

    if (p == NULL)
        return;
    while (p->oldest != NULL)
        penalty_remove(p, p->oldest);
    free(p);
    *pp = NULL;
}

/* penalty_ent_delay - base doubled per failure after the first, up to max. */
static uint64_t
penalty_ent_delay(const struct penalty_ent *e, uint64_t base_ms, uint64_t max_ms)
{
    uint64_t d = base_ms;

    for (unsigned i = 1; i < e->fails && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

/* penalty_delay - the wait before the next attempt for key. */
uint64_t
penalty_delay(struct penalty *p, const char *key, uint64_t now, uint64_t base_ms, uint64_t max_ms)
{
    struct penalty_ent *e;

    penalty_expire(p, now);
    if (base_ms == 0 || (e = penalty_find(p, key)) == NULL || e->fails == 0)
        return 0;
    return penalty_ent_delay(e, base_ms, max_ms);
}

/* penalty_reserve - the wait of an attempt queued behind those already waiting. */
uint64_t
penalty_reserve(struct penalty *p, const char *key, uint64_t now, uint64_t base_ms, uint64_t max_ms)
{
    struct penalty_ent *e;

    penalty_expire(p, now);
    if (base_ms == 0 || (e = penalty_find(p, key)) == NULL || e->fails == 0)
        return 0;
    uint64_t d = penalty_ent_delay(e, base_ms, max_ms), slot = now + d;
    if (e->next > slot)
        slot = e->next;
    e->next = slot + d;
    return slot - now;
}

/* penalty_fail - count one more failure for key. */
void
penalty_fail(struct penalty *p, const char *key, uint64_t now)
{
    struct penalty_ent *e;

    penalty_expire(p, now);
    e = penalty_find(p, key);
    if (e == NULL) {
        size_t h = penalty_hash(key);
        if (p->n >= PENALTY_MAX)
            penalty_remove(p, p->oldest);
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->hnext = p->buckets[h];
        p->buckets[h] = e;
        p->n++;
    } else {
        penalty_unlink(p, e);
    }
    if (e->fails < 64)
        e->fails++;
    e->last = now;
    e->older = p->newest;
    if (p->newest != NULL)
        p->newest->newer = e;
    else
        p->oldest = e;
    p->newest = e;
}

/* penalty_clear - a success: forget key. */
void
penalty_clear(struct penalty *p, const char *key)
{
    struct penalty_ent *e = penalty_find(p, key);

    if (e != NULL)
        penalty_remove(p, e);
}

/* penalty_count - failures remembered for key. */
unsigned
penalty_count(struct penalty *p, const char *key, uint64_t now)
{
    struct penalty_ent *e;

    penalty_expire(p, now);
    e = penalty_find(p, key);
    return e != NULL ? e->fails : 0;
}

/* penalty_size - keys in the table. */
size_t
penalty_size(const struct penalty *p)
{
    return p->n;
}

/* penalty_ip_key - an address, or an IPv6 address's /64. */
void
penalty_ip_key(const char *ip, char *buf, size_t len)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];

    if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, a) != 1) {
        snprintf(buf, len, "%s", ip);
        return;
    }
    memset(a + 8, 0, 8);
    inet_ntop(AF_INET6, a, text, sizeof(text));
    snprintf(buf, len, "ip6:%s/64", text);
}

/* penalty_login_wait - the guard's wait for an attempt from ip for acct. */
uint64_t
penalty_login_wait(struct penalty *p, const char *ip, const char *acct, uint64_t now,
                   uint64_t base_ms, uint64_t max_ms)
{
    char key[80];

    penalty_ip_key(ip, key, sizeof(key));
    if (penalty_count(p, key, now) == 0)
        return 0; /* a clean address: not even the account's failures slow it */
    uint64_t w = penalty_reserve(p, key, now, base_ms, max_ms);
    uint64_t a = acct != NULL ? penalty_delay(p, acct, now, base_ms, max_ms) : 0;
    return a > w ? a : w;
}

/* penalty_login_blocked - ip is cut off. */
bool
penalty_login_blocked(struct penalty *p, const char *ip, uint64_t now, unsigned fail_max)
{
    char key[80];

    penalty_ip_key(ip, key, sizeof(key));
    return fail_max > 0 && penalty_count(p, key, now) >= fail_max;
}

/* penalty_login_fail - a failed attempt counts for the address and the account. */
void
penalty_login_fail(struct penalty *p, const char *ip, const char *acct, uint64_t now)
{
    char key[80];

    penalty_ip_key(ip, key, sizeof(key));
    penalty_fail(p, key, now);
    if (acct != NULL)
        penalty_fail(p, acct, now);
}

/* penalty_login_ok - a success clears the address and the account. */
void
penalty_login_ok(struct penalty *p, const char *ip, const char *acct)
{
    char key[80];

    penalty_ip_key(ip, key, sizeof(key));
    penalty_clear(p, key);
    if (acct != NULL)
        penalty_clear(p, acct);
}
