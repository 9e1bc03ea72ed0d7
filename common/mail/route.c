/*
 * route - the forward table of a snapshot and the expansion of a recipient. See route.h.
 *
 * Layout: every string lives in an arena of 256 KB blocks (a string never spans two, so
 * nothing is ever copied to grow it). An alias is its key ("local@domain", local part
 * unquoted and lower-cased; "@domain" for a catch-all). A destination list is the
 * canonical addresses, each NUL-terminated, and an empty string; identical lists are
 * stored once.
 * Entries (key offset, list offset) sit in an array in file order. route_finish builds,
 * in one go once the number is known, an open-addressing index of entry numbers at most
 * half full (a word-at-a-time multiplicative hash, linear probing), finding repeated
 * aliases on the way.
 */
#include "route.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "alias.h"
#include "conf.h"
#include "xmem.h"

#define ROUTE_DIAG_MAX 20     /* problem lines of one kind reported one by one */
#define ROUTE_VISITS_MAX 1000 /* addresses looked at while expanding one recipient */
#define ROUTE_BLOCK_BITS 18
#define ROUTE_BLOCK ((size_t)1 << ROUTE_BLOCK_BITS) /* arena block bytes */
#define ROUTE_BLOCKS_MAX ((size_t)1 << (32 - ROUTE_BLOCK_BITS))
#define ROUTE_CHUNK_BITS 14
#define ROUTE_CHUNK ((size_t)1 << ROUTE_CHUNK_BITS) /* entries per chunk */
#define ROUTE_LIST_MAX (ROUTE_EXPAND_MAX * (ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8) + 2)

struct route_entry {
    uint32_t key;   /* arena offset of the key */
    uint32_t dests; /* arena offset of the destination list */
};

struct route_origin {
    uint32_t file, line;
};

struct route {
    char **blocks; /* the arena */
    size_t nblocks, bused, lastcap;
    struct route_entry **e;   /* chunks of ROUTE_CHUNK entries: growing never copies */
    size_t n, nchunks, elast; /* elast: entries the last chunk has room for */
    uint32_t *slots;          /* entry number + 1; 0 is empty; NULL until route_finish */
    size_t nslots;            /* a power of two */
    uint64_t digest;
    const char *what; /* "forward" or "alias", for messages */
    /* while building only (route_finish frees them) */
    struct route_origin **orig; /* chunks, like e */
    char **files;
    size_t nfiles;
    uint32_t *dslots; /* distinct destination lists: their arena offsets + 1 */
    size_t ndslots, nd;
    char *scratch; /* one line's destination list */
};

/* route_str - the arena bytes at offset off. */
static inline char *
route_str(const struct route *rt, uint32_t off)
{
    return rt->blocks[off >> ROUTE_BLOCK_BITS] + (off & (ROUTE_BLOCK - 1));
}

/* route_ent - entry k. */
static inline struct route_entry *
route_ent(const struct route *rt, size_t k)
{
    return &rt->e[k >> ROUTE_CHUNK_BITS][k & (ROUTE_CHUNK - 1)];
}

/* route_org - where entry k was written (while building). */
static inline struct route_origin *
route_org(const struct route *rt, size_t k)
{
    return &rt->orig[k >> ROUTE_CHUNK_BITS][k & (ROUTE_CHUNK - 1)];
}

/* route_hash - a hash of n bytes, eight at a time, continuing from h. */
static uint64_t
route_hash(uint64_t h, const char *s, size_t n)
{
    uint64_t w;

    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

#define ROUTE_SEED 0xcbf29ce484222325ULL

/* route_list_len - bytes of a destination list after its status byte, final "" included. */
static size_t
route_list_len(const char *l)
{
    const char *p = l;

    while (*p != '\0')
        p += strlen(p) + 1;
    return (size_t)(p - l) + 1;
}

/* route_slot - the slot holding key (hash h), or the empty one where it would go. */
static uint32_t *
route_slot(const struct route *rt, const char *key, uint64_t h)
{
    size_t mask = rt->nslots - 1, i = (size_t)h & mask;

    for (; rt->slots[i] != 0; i = (i + 1) & mask)
        if (strcmp(route_str(rt, route_ent(rt, rt->slots[i] - 1)->key), key) == 0)
            break;
    return &rt->slots[i];
}

/* route_find - the entry number of key, or -1 (also before route_finish). */
static long
route_find(const struct route *rt, const char *key)
{
    uint32_t *slot;

    if (rt == NULL || rt->slots == NULL)
        return -1;
    slot = route_slot(rt, key, route_hash(ROUTE_SEED, key, strlen(key)));
    return (long)*slot - 1;
}

/* route_arena_add - n bytes (at most ROUTE_BLOCK) into the arena; their offset, or -1
 * when it is full. */
static long
route_arena_add(struct route *rt, const void *p, size_t n)
{
    if (rt->nblocks == 0 || rt->bused + n > ROUTE_BLOCK) {
        if (rt->nblocks == ROUTE_BLOCKS_MAX)
            return -1;
        rt->blocks = xrealloc(rt->blocks, (rt->nblocks + 1) * sizeof(*rt->blocks));
        rt->blocks[rt->nblocks++] = xmalloc(ROUTE_BLOCK);
        rt->bused = 0;
        rt->lastcap = ROUTE_BLOCK;
    }
    size_t off = ((rt->nblocks - 1) << ROUTE_BLOCK_BITS) | rt->bused;
    memcpy(rt->blocks[rt->nblocks - 1] + rt->bused, p, n);
    rt->bused += n;
    return (long)off;
}

/* route_dests_intern - the arena offset of a destination list equal to list (len bytes),
 * storing it if new; -1 when the arena is full. */
static long
route_dests_intern(struct route *rt, const char *list, size_t len)
{
    uint64_t h = route_hash(ROUTE_SEED, list, len);
    size_t mask, i;
    long off;

    if ((rt->nd + 1) * 2 > rt->ndslots) {
        size_t n = rt->ndslots ? rt->ndslots * 2 : 64;
        uint32_t *slots = xcalloc(n, sizeof(*slots));
        for (size_t k = 0; k < rt->ndslots; k++) {
            if (rt->dslots[k] == 0)
                continue;
            const char *l = route_str(rt, rt->dslots[k] - 1);
            size_t j = (size_t)route_hash(ROUTE_SEED, l, route_list_len(l)) & (n - 1);
            while (slots[j] != 0)
                j = (j + 1) & (n - 1);
            slots[j] = rt->dslots[k];
        }
        free(rt->dslots);
        rt->dslots = slots;
        rt->ndslots = n;
    }
    mask = rt->ndslots - 1;
    for (i = (size_t)h & mask; rt->dslots[i] != 0; i = (i + 1) & mask) {
        const char *l = route_str(rt, rt->dslots[i] - 1);
        if (route_list_len(l) == len && memcmp(l, list, len) == 0)
            return (long)(rt->dslots[i] - 1);
    }
    if ((off = route_arena_add(rt, list, len)) < 0)
        return -1;
    rt->dslots[i] = (uint32_t)off + 1;
    rt->nd++;
    return off;
}

/* route_key - "local@domain" with local lower-cased (ASCII) into key. */
static void
route_key(const char *local, const char *domain, char *key, size_t len)
{
    size_t o = 0;

    for (; *local != '\0' && o + 1 < len; local++)
        key[o++] = (*local >= 'A' && *local <= 'Z') ? (char)(*local - 'A' + 'a') : *local;
    if (o + 1 < len)
        key[o++] = '@';
    for (; *domain != '\0' && o + 1 < len; domain++)
        key[o++] = (*domain >= 'A' && *domain <= 'Z') ? (char)(*domain - 'A' + 'a') : *domain;
    key[o] = '\0';
}

/* route_token - the next token of s ending at an unquoted blank or comma; *s moves past
 * it. Its length (0 at the end). */
static size_t
route_token(const char **s, const char **start)
{
    const char *p = *s;
    bool quoted = false;

    *start = p;
    for (; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && (*p == ' ' || *p == '\t' || *p == ','))
            break;
    }
    *s = p;
    return (size_t)(p - *start);
}

/* route_parse_alias - the alias token into its key; 0 or -1 with reason. */
static int
route_parse_alias(const char *tok, char *key, size_t keylen, char *reason, size_t len)
{
    char err[100], local[ADDR_LOCAL_MAX * 2 + 3], dom[ADDR_DOMAIN_MAX + 1];
    struct addr a;

    if (tok[0] == '@' || strncmp(tok, "*@", 2) == 0) { /* "*@domain": DMail's catch-all */
        if (addr_domain_normalize(strchr(tok, '@') + 1, dom, sizeof(dom)) < 0) {
            snprintf(reason, len, "'%s' is not a catch-all (@domain)", tok);
            return -1;
        }
        route_key("", dom, key, keylen);
        return 0;
    }
    if (addr_parse_mailbox(tok, NULL, &a, err, sizeof(err)) < 0) {
        snprintf(reason, len, "'%s' is not a full address (%s)", tok, err);
        return -1;
    }
    addr_local_unquoted(&a, true, local, sizeof(local));
    route_key(local, a.domain, key, keylen);
    return 0;
}

/* route_parse_dests - the destinations after the alias (separated by commas and/or
 * blanks) into list (addresses, final ""); its length, or 0 with reason. A destination
 * may be of any domain: one of another domain is relayed. */
static size_t
route_parse_dests(const char *s, char *list, size_t cap, char *reason, size_t len)
{
    char tok[1100], err[100];
    size_t o = 0, count = 0;
    struct addr a;

    for (;;) {
        const char *start;
        s += strspn(s, ", \t");
        if (*s == '\0')
            break;
        size_t n = route_token(&s, &start);
        if (n >= sizeof(tok)) {
            snprintf(reason, len, "a destination is too long");
            return 0;
        }
        memcpy(tok, start, n);
        tok[n] = '\0';
        if (tok[0] == '@' || strncmp(tok, "*@", 2) == 0) {
            snprintf(reason, len, "destination '%s' must be a full address", tok);
            return 0;
        }
        if (addr_parse_mailbox(tok, NULL, &a, err, sizeof(err)) < 0) {
            snprintf(reason, len, "destination '%s' is not a full address (%s)", tok, err);
            return 0;
        }
        if (++count > ROUTE_EXPAND_MAX) {
            snprintf(reason, len, "more than %d destinations", ROUTE_EXPAND_MAX);
            return 0;
        }
        size_t ll = strlen(a.local), dl = strlen(a.domain); /* addr_format, inline */
        if (o + ll + dl + 3 > cap) {
            snprintf(reason, len, "the destinations are too long");
            return 0;
        }
        memcpy(list + o, a.local, ll);
        list[o + ll] = '@';
        memcpy(list + o + ll + 1, a.domain, dl + 1);
        o += ll + dl + 2;
    }
    if (count == 0) {
        snprintf(reason, len, "no destination");
        return 0;
    }
    list[o++] = '\0';
    return o;
}

/* route_store - the entry key -> list (listlen bytes) from file:line into rt. */
static int
route_store(struct route *rt, const char *file, int line, const char *key, const char *list,
            size_t listlen, char *reason, size_t len)
{
    long koff, doff = route_dests_intern(rt, list, listlen);

    koff = doff < 0 ? -1 : route_arena_add(rt, key, strlen(key) + 1);
    if (koff < 0) {
        snprintf(reason, len, "too many %ses", rt->what);
        return -1;
    }
    if (rt->nfiles == 0 || strcmp(rt->files[rt->nfiles - 1], file) != 0) {
        rt->files = xrealloc(rt->files, (rt->nfiles + 1) * sizeof(*rt->files));
        rt->files[rt->nfiles++] = xstrdup(file);
    }
    if ((rt->n & (ROUTE_CHUNK - 1)) == 0) {
        rt->e = xrealloc(rt->e, (rt->nchunks + 1) * sizeof(*rt->e));
        rt->orig = xrealloc(rt->orig, (rt->nchunks + 1) * sizeof(*rt->orig));
        rt->e[rt->nchunks] = xmalloc(ROUTE_CHUNK * sizeof(**rt->e));
        rt->orig[rt->nchunks++] = xmalloc(ROUTE_CHUNK * sizeof(**rt->orig));
        rt->elast = ROUTE_CHUNK;
    }
    *route_ent(rt, rt->n) = (struct route_entry){(uint32_t)koff, (uint32_t)doff};
    *route_org(rt, rt->n) = (struct route_origin){(uint32_t)(rt->nfiles - 1), (uint32_t)line};
    rt->n++;
    rt->digest = route_hash(rt->digest, key, strlen(key) + 1);
    rt->digest = route_hash(rt->digest, list, listlen);
    return 0;
}

/* route_new - *rtp, made on first use for the table named what. */
static struct route *
route_new(struct route **rtp, const char *what)
{
    if (*rtp == NULL) {
        *rtp = xcalloc(1, sizeof(**rtp));
        (*rtp)->what = what;
    }
    return *rtp;
}

/* route_add - one forward line into the table. */
int
route_add(struct route **rtp, const char *file, int line, const char *value, char *reason,
          size_t len)
{
    char tok[1100], key[ROUTE_KEY_MAX];
    const char *s = value, *start;
    size_t n = route_token(&s, &start), listlen;
    struct route *rt;

    if (n == 0 || n >= sizeof(tok)) {
        snprintf(reason, len,
                 n == 0 ? "write forward ALIAS DESTINATION[,DESTINATION...]"
                        : "the alias is too long");
        return -1;
    }
    memcpy(tok, start, n);
    tok[n] = '\0';
    if (route_parse_alias(tok, key, sizeof(key), reason, len) < 0)
        return -1;
    s += strspn(s, " \t");
    if (*s == '\0') {
        snprintf(reason, len, "%s has no destination", tok);
        return -1;
    }
    rt = route_new(rtp, "forward");
    if (rt->scratch == NULL)
        rt->scratch = xmalloc(ROUTE_LIST_MAX);
    if ((listlen = route_parse_dests(s, rt->scratch, ROUTE_LIST_MAX, reason, len)) == 0)
        return -1;
    return route_store(rt, file, line, key, rt->scratch, listlen, reason, len);
}

/* route_add_list - an alias-file entry into the table. */
int
route_add_list(struct route **rtp, const char *file, int line, const char *local,
               const char *domain, const char *list, size_t listlen, const char *what, char *reason,
               size_t len)
{
    char key[ROUTE_KEY_MAX];

    route_key(local, domain, key, sizeof(key));
    return route_store(route_new(rtp, what), file, line, key, list, listlen, reason, len);
}

/* route_index_build - the index of every entry; a repeated alias is an error. */
static int
route_index_build(struct route *rt, struct conf_diag *diag)
{
    int errors = 0;

    rt->nslots = 16;
    while (rt->nslots < rt->n * 2)
        rt->nslots *= 2;
    rt->slots = xcalloc(rt->nslots, sizeof(*rt->slots));
    for (size_t k = 0; k < rt->n; k++) {
        const char *key = route_str(rt, route_ent(rt, k)->key);
        uint32_t *slot = route_slot(rt, key, route_hash(ROUTE_SEED, key, strlen(key)));
        if (*slot == 0) {
            *slot = (uint32_t)k + 1;
            continue;
        }
        const struct route_origin *o = route_org(rt, k), *p = route_org(rt, *slot - 1);
        if (errors++ < ROUTE_DIAG_MAX)
            conf_diag_add(diag, false, rt->files[o->file], (int)o->line,
                          "%s: %s is already %sed at %s:%" PRIu32, rt->what, key, rt->what,
                          rt->files[p->file], p->line);
    }
    if (errors > ROUTE_DIAG_MAX)
        conf_diag_add(diag, false, rt->files[0], 0, "%s: %d more aliases given twice", rt->what,
                      errors - ROUTE_DIAG_MAX);
    return errors;
}

/* route_finish - index the aliases, free the building aids. */
int
route_finish(struct route *rt, struct conf_diag *diag)
{
    int errors;

    if (rt == NULL)
        return 0;
    errors = route_index_build(rt, diag);
    for (size_t i = 0; i < rt->nfiles; i++)
        free(rt->files[i]);
    free(rt->files);
    for (size_t i = 0; i < rt->nchunks; i++)
        free(rt->orig[i]);
    free(rt->orig);
    free(rt->dslots);
    free(rt->scratch);
    rt->scratch = NULL;
    rt->files = NULL;
    rt->orig = NULL;
    rt->dslots = NULL;
    rt->nfiles = rt->ndslots = 0;
    size_t used = rt->nchunks ? rt->n - ((rt->nchunks - 1) << ROUTE_CHUNK_BITS) : 0;
    if (used > 0 && used < rt->elast) {
        rt->e[rt->nchunks - 1] = xrealloc(rt->e[rt->nchunks - 1], used * sizeof(**rt->e));
        rt->elast = used;
    }
    if (rt->nblocks > 0 && rt->bused > 0 && rt->bused < rt->lastcap) {
        rt->blocks[rt->nblocks - 1] = xrealloc(rt->blocks[rt->nblocks - 1], rt->bused);
        rt->lastcap = rt->bused;
    }
    return errors;
}

/* route_free - the table and everything in it. */
void
route_free(struct route **rtp)
{
    struct route *rt = *rtp;

    if (rt == NULL)
        return;
    *rtp = NULL;
    for (size_t i = 0; i < rt->nfiles; i++)
        free(rt->files[i]);
    free(rt->files);
    for (size_t i = 0; rt->orig != NULL && i < rt->nchunks; i++)
        free(rt->orig[i]);
    free(rt->orig);
    free(rt->dslots);
    free(rt->scratch);
    for (size_t i = 0; i < rt->nchunks; i++)
        free(rt->e[i]);
    for (size_t i = 0; i < rt->nblocks; i++)
        free(rt->blocks[i]);
    free(rt->blocks);
    free(rt->e);
    free(rt->slots);
    free(rt);
}

/* route_count - aliases. */
size_t
route_count(const struct route *rt)
{
    return rt ? rt->n : 0;
}

/* route_bytes - heap the table holds. */
size_t
route_bytes(const struct route *rt)
{
    if (rt == NULL)
        return 0;
    return sizeof(*rt) + rt->nblocks * sizeof(*rt->blocks) +
           (rt->nblocks ? (rt->nblocks - 1) * ROUTE_BLOCK + rt->lastcap : 0) +
           rt->nchunks * sizeof(*rt->e) +
           (rt->nchunks ? (rt->nchunks - 1) * ROUTE_CHUNK + rt->elast : 0) *
               (sizeof(**rt->e) + (rt->orig ? sizeof(**rt->orig) : 0)) +
           rt->nslots * sizeof(*rt->slots) + rt->ndslots * sizeof(*rt->dslots);
}

/* route_format - a summary that changes with the table. */
int
route_format(const struct route *rt, char *buf, size_t len)
{
    int n;

    if (len == 0)
        return -1;
    if (rt == NULL || rt->n == 0) {
        buf[0] = '\0';
        return 0;
    }
    n = snprintf(buf, len, "%zu forward%s, digest %016" PRIx64, rt->n, rt->n == 1 ? "" : "s",
                 rt->digest);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* route_lookup - the destination list of an exact alias (local "" = catch-all). */
const char *
route_lookup(const struct route *rt, const char *local, const char *domain)
{
    char key[ROUTE_KEY_MAX];
    long k;

    if (rt == NULL || rt->n == 0)
        return NULL;
    route_key(local, domain, key, sizeof(key));
    if ((k = route_find(rt, key)) < 0)
        return NULL;
    return route_str(rt, route_ent(rt, k)->dests);
}

/* route_glob - the lower-case pattern [p, pe) ('*', '?') matches s in full (ASCII case
 * folded). */
static bool
route_glob(const char *p, const char *pe, const char *s)
{
    const char *star = NULL, *back = NULL;

    while (*s != '\0') {
        char c = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
        if (p < pe && *p == '*') {
            star = ++p;
            back = s;
        } else if (p < pe && (*p == '?' || *p == c)) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star;
            s = ++back;
        } else {
            return false;
        }
    }
    while (p < pe && *p == '*')
        p++;
    return p == pe;
}

/* route_glob_lookup - the first pattern entry of domain matching local. */
const char *
route_glob_lookup(const struct route *rt, const char *local, const char *domain)
{
    char dom[ADDR_DOMAIN_MAX + 2];

    if (rt == NULL || rt->n == 0)
        return NULL;
    route_key("", domain, dom, sizeof(dom)); /* "@domain" */
    size_t dl = strlen(dom);
    for (size_t k = 0; k < rt->n; k++) {
        const char *key = route_str(rt, route_ent(rt, k)->key);
        size_t kl = strlen(key);
        if (kl <= dl || strcmp(key + kl - dl, dom) != 0 || memchr(key, '@', kl - dl) != NULL)
            continue;
        if (route_glob(key, key + kl - dl, local))
            return route_str(rt, route_ent(rt, k)->dests);
    }
    return NULL;
}

/* One expansion in progress. */
struct route_walk {
    const struct route *rt;
    const struct alias_set *al;
    route_user_fn is_user;
    void *arg;
    struct route_expansion *x;
    char chain[ROUTE_DEPTH_MAX][ROUTE_KEY_MAX]; /* the aliases being expanded, outermost first */
    int depth;
    int visits;
};

/* route_match - the list local@domain (key given) is forwarded to: its own alias, else
 * its domain's catch-all unless it is a user; NULL if none. */
static const char *
route_match(struct route_walk *w, const char *key, const char *local, const char *domain)
{
    long k = route_find(w->rt, key);
    const char *catchall, *l;

    if (k >= 0)
        return route_str(w->rt, route_ent(w->rt, k)->dests);
    if (w->al != NULL && (l = alias_match(w->al, local, domain)) != NULL)
        return l;
    catchall = route_lookup(w->rt, "", domain);
    if (catchall == NULL && w->al != NULL)
        catchall = alias_catchall(w->al, domain);
    if (catchall == NULL)
        return NULL;
    if (w->is_user != NULL && w->is_user(w->arg, local, domain))
        return NULL;
    return catchall;
}

/* route_chain_text - the chain of aliases and then last, for the reply and the log. */
static void
route_chain_text(struct route_walk *w, const char *last)
{
    size_t o = 0, len = sizeof(w->x->chain);

    w->x->chain[0] = '\0';
    for (int i = 0; i < w->depth && o < len; i++) {
        int n = snprintf(w->x->chain + o, len - o, "%s -> ", w->chain[i]);
        o += n > 0 ? (size_t)n : 0;
    }
    if (o < len)
        snprintf(w->x->chain + o, len - o, "%s", last);
}

/* route_out - a final address (once). */
static void
route_out(struct route_walk *w, const char *dest)
{
    struct route_expansion *x = w->x;

    for (size_t i = 0; i < x->n; i++)
        if (x->dest[i] == dest || strcmp(x->dest[i], dest) == 0)
            return;
    if (x->n == ROUTE_EXPAND_MAX) {
        x->status = ROUTE_TOO_MANY;
        return;
    }
    x->dest[x->n++] = dest;
}

/* route_made - the address of the bare local part local in the domain of the alias being
 * expanded, kept in the expansion; NULL (status ROUTE_TOO_MANY) when it has no more room. */
static const char *
route_made(struct route_walk *w, const char *local)
{
    struct route_expansion *x = w->x;
    const char *dom = strrchr(w->chain[w->depth - 1], '@') + 1;
    size_t room = sizeof(x->made) - x->made_len;
    char *out = x->made + x->made_len;
    int n = snprintf(out, room, "%s@%s", local, dom);

    if (n < 0 || (size_t)n >= room) {
        x->status = ROUTE_TOO_MANY;
        return NULL;
    }
    x->made_len += (size_t)n + 1;
    return out;
}

/* route_walk_list - expand every destination of list, the alias chain[depth-1]'s. */
static void
route_walk_list(struct route_walk *w, const char *list)
{
    for (const char *e = list; *e != '\0' && w->x->status == ROUTE_FORWARDED; e += strlen(e) + 1) {
        char local[ADDR_LOCAL_MAX * 2 + 3], key[ROUTE_KEY_MAX], err[100];
        const char *sub, *d = e;
        struct addr a;
        if (++w->visits > ROUTE_VISITS_MAX) {
            w->x->status = ROUTE_TOO_MANY;
            return;
        }
        if (*e == ROUTE_D_PROGRAM || *e == ROUTE_D_FILE) { /* final: the delivery agent's */
            route_out(w, e);
            continue;
        }
        if (*e == ROUTE_D_LOCAL && (d = route_made(w, e + 1)) == NULL)
            return;
        if (addr_parse_mailbox(d, NULL, &a, err, sizeof(err)) < 0)
            continue; /* cannot happen: checked by route_add */
        addr_local_unquoted(&a, false, local, sizeof(local));
        route_key(local, a.domain, key, sizeof(key));
        if (strcmp(key, w->chain[w->depth - 1]) == 0) { /* the alias's own mailbox */
            route_out(w, d);
            continue;
        }
        for (int i = 0; i < w->depth; i++) {
            if (strcmp(key, w->chain[i]) == 0) {
                route_chain_text(w, key);
                w->x->status = ROUTE_LOOP;
                return;
            }
        }
        if ((sub = route_match(w, key, local, a.domain)) == NULL) {
            route_out(w, d);
            continue;
        }
        if (w->depth == ROUTE_DEPTH_MAX) {
            route_chain_text(w, key);
            w->x->status = ROUTE_DEPTH;
            return;
        }
        memcpy(w->chain[w->depth++], key, sizeof(key));
        route_walk_list(w, sub);
        w->depth--;
    }
}

/* route_expand - the final addresses of local@domain. */
void
route_expand(const struct route *rt, const char *local, const char *domain, route_user_fn is_user,
             void *arg, struct route_expansion *x)
{
    route_expand_aliases(rt, NULL, local, domain, is_user, arg, x);
}

/* route_expand_aliases - the final addresses of local@domain, alias files included. */
void
route_expand_aliases(const struct route *rt, const struct alias_set *al, const char *local,
                     const char *domain, route_user_fn is_user, void *arg,
                     struct route_expansion *x)
{
    struct route_walk *w;
    const char *list;

    x->status = ROUTE_NONE;
    x->n = 0;
    x->chain[0] = '\0';
    x->made_len = 0;
    if ((rt == NULL || rt->n == 0) && (al == NULL || alias_count(al) == 0))
        return;
    w = xcalloc(1, sizeof(*w));
    w->rt = rt;
    w->al = al;
    w->is_user = is_user;
    w->arg = arg;
    w->x = x;
    route_key(local, domain, w->chain[0], sizeof(w->chain[0]));
    if ((list = route_match(w, w->chain[0], local, domain)) != NULL) {
        w->depth = 1;
        x->status = ROUTE_FORWARDED;
        route_walk_list(w, list);
        if (x->status != ROUTE_FORWARDED)
            x->n = 0;
    }
    free(w);
}

/* route_status_text - words for an expansion's outcome. */
const char *
route_status_text(enum route_status s)
{
    switch (s) {
    case ROUTE_NONE:
        return "not forwarded";
    case ROUTE_FORWARDED:
        return "forwarded";
    case ROUTE_LOOP:
        return "forwarding loop";
    case ROUTE_DEPTH:
        return "forwarding chain too long";
    case ROUTE_TOO_MANY:
        return "forwarding expands to too many addresses";
    }
    return "?";
}
