/*
 * hash - string hashing for the in-memory tables of the servers.
 *
 * Contract:
 * - Pure functions, any thread, nothing allocated.
 * - FNV-1a, 64 bits: fast and well spread for paths, addresses and names. Not keyed: a
 *   table whose keys come from clients must bound its chains (or its size) itself.
 */
#ifndef DMAIL_HASH_H
#define DMAIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* hash_str - FNV-1a of a NUL-terminated string. */
static inline uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* hash_str_ci - FNV-1a of a NUL-terminated string with ASCII letters folded to lower
 * case: equal for strings that strcasecmp finds equal. */
static inline uint64_t
hash_str_ci(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = (h ^ (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)) * 1099511628211ULL;
    return h;
}

/* hash_mem - FNV-1a of n bytes. */
static inline uint64_t
hash_mem(const void *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *c = p, *end = c + n; c < end; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return h;
}

#endif
