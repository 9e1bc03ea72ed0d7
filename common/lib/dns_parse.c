/*
 * dns_parse - DNS answers into struct dns_result: MX, TXT, PTR (c-ares's parsers) and TLSA
 * (read here: c-ares 1.18 has no TLSA parser). See dns_int.h.
 */
#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns_int.h"
#include "xmem.h"

static int
dns_pref_cmp(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* dns_shuffle - put runs of equal preference in a random order (Fisher-Yates). */
static void
dns_shuffle(struct dns_mx *mx, size_t n)
{
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && mx[hi].pref == mx[lo].pref; hi++)
            ;
        for (size_t i = hi - 1; i > lo; i--) {
            size_t j = lo + arc4random_uniform((uint32_t)(i - lo + 1));
            struct dns_mx t = mx[i];
            mx[i] = mx[j];
            mx[j] = t;
        }
    }
}

/* dns_parse_mx - r gets the exchangers; returns the c-ares status, ARES_ENODATA when
 * there is no MX record, ARES_SUCCESS with r->status DNS_NULLMX for a null MX. */
int
dns_parse_mx(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *list = NULL;
    int st = ares_parse_mx_reply(abuf, alen, &list);
    size_t n = 0, nnull = 0;

    if (st != ARES_SUCCESS)
        return st;
    for (struct ares_mx_reply *m = list; m != NULL; m = m->next)
        n++;
    if (n == 0)
        return ARES_ENODATA;
    r->mx = xcalloc(n, sizeof(*r->mx));
    for (struct ares_mx_reply *m = list; m != NULL; m = m->next) {
        if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
            nnull++;
            continue;
        }
        size_t len = strlen(m->host);
        if (len > 1 && m->host[len - 1] == '.')
            len--;
        r->mx[r->n].host = xstrndup(m->host, len);
        r->mx[r->n++].pref = m->priority;
    }
    ares_free_data(list);
    if (r->n == 0 && nnull > 0) {
        r->status = DNS_NULLMX;
        r->why = "null MX";
        return ARES_SUCCESS;
    }
    qsort(r->mx, r->n, sizeof(*r->mx), dns_pref_cmp);
    dns_shuffle(r->mx, r->n);
    return ARES_SUCCESS;
}

int
dns_parse_txt(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *list = NULL;
    int st = ares_parse_txt_reply_ext(abuf, alen, &list);
    size_t n = 0;

    if (st != ARES_SUCCESS)
        return st;
    for (struct ares_txt_ext *t = list; t != NULL; t = t->next)
        n += t->record_start != 0;
    r->txt = xcalloc(n + 1, sizeof(*r->txt));
    for (struct ares_txt_ext *t = list; t != NULL; t = t->next) {
        const char *s = (const char *)t->txt;
        size_t len = strnlen(s, t->length);
        if (t->record_start || r->n == 0) {
            r->txt[r->n++] = xstrndup(s, len);
        } else {
            char *prev = r->txt[r->n - 1];
            size_t plen = strlen(prev);
            prev = xrealloc(prev, plen + len + 1);
            memcpy(prev + plen, s, len);
            prev[plen + len] = '\0';
            r->txt[r->n - 1] = prev;
        }
    }
    ares_free_data(list);
    return n == 0 ? ARES_ENODATA : ARES_SUCCESS;
}

/* dns_parse_ptr - the names of a PTR answer, without final dots or duplicates. */
int
dns_parse_ptr(struct dns_result *r, const unsigned char *abuf, int alen)
{
    struct hostent *h = NULL;
    struct in_addr any = {0}; /* c-ares copies an address into the hostent */
    int st = ares_parse_ptr_reply(abuf, alen, &any, sizeof(any), AF_INET, &h);

    if (st != ARES_SUCCESS)
        return st;
    r->ptr = xcalloc(DNS_MAXPTR, sizeof(*r->ptr));
    for (int i = -1; r->n < DNS_MAXPTR; i++) {
        const char *name = i < 0 ? h->h_name : h->h_aliases ? h->h_aliases[i] : NULL;
        size_t len, k;
        if (name == NULL) {
            if (i < 0)
                continue;
            break;
        }
        len = strlen(name);
        if (len > 1 && name[len - 1] == '.')
            len--;
        for (k = 0; k < r->n; k++)
            if (strlen(r->ptr[k]) == len && strncasecmp(r->ptr[k], name, len) == 0)
                break;
        if (len > 0 && k == r->n)
            r->ptr[r->n++] = xstrndup(name, len);
    }
    ares_free_hostent(h);
    return r->n == 0 ? ARES_ENODATA : ARES_SUCCESS;
}

/* dns_skip_name - the length of the (possibly compressed) name at p, or -1. */
static long
dns_skip_name(const unsigned char *p, const unsigned char *abuf, int alen)
{
    char *name = NULL;
    long len = 0;

    if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
        return -1;
    ares_free_string(name);
    return len;
}

/* dns_rr_cb - one record of the answer section: its owner name (in abuf), type, data. */
typedef void (*dns_rr_cb)(const unsigned char *abuf, int alen, const unsigned char *owner,
                          unsigned type, const unsigned char *rd, unsigned rdlen, void *arg);

/* dns_walk - each record of the answer section to cb; ARES_SUCCESS or ARES_EBADRESP. */
static int
dns_walk(const unsigned char *abuf, int alen, dns_rr_cb cb, void *arg)
{
    const unsigned char *p = abuf + 12, *end = abuf + alen;
    unsigned qd, an;
    long n;

    if (alen < 12)
        return ARES_EBADRESP;
    qd = (unsigned)abuf[4] << 8 | abuf[5];
    an = (unsigned)abuf[6] << 8 | abuf[7];
    for (unsigned i = 0; i < qd; i++) {
        if ((n = dns_skip_name(p, abuf, alen)) < 0 || end - p < n + 4)
            return ARES_EBADRESP;
        p += n + 4;
    }
    for (unsigned i = 0; i < an; i++) {
        const unsigned char *owner = p;
        unsigned type, rdlen;
        if ((n = dns_skip_name(p, abuf, alen)) < 0 || end - p < n + 10)
            return ARES_EBADRESP;
        p += n;
        type = (unsigned)p[0] << 8 | p[1];
        rdlen = (unsigned)p[8] << 8 | p[9];
        p += 10;
        if (end - p < (long)rdlen)
            return ARES_EBADRESP;
        cb(abuf, alen, owner, type, p, rdlen, arg);
        p += rdlen;
    }
    return ARES_SUCCESS;
}

/* dns_tlsa_rr - a TLSA record into the result. */
static void
dns_tlsa_rr(const unsigned char *abuf, int alen, const unsigned char *owner, unsigned type,
            const unsigned char *rd, unsigned rdlen, void *arg)
{
    struct dns_result *r = arg;
    struct dns_tlsa *t;

    if (type != DNS_T_TLSA || rdlen <= 3 || r->n >= DNS_MAXTLSA)
        return;
    t = &r->tlsa[r->n++];
    t->usage = rd[0];
    t->selector = rd[1];
    t->mtype = rd[2];
    t->len = rdlen - 3;
    t->data = xmalloc(t->len);
    memcpy(t->data, rd + 3, t->len);
}

/* dns_parse_tlsa - see dns_int.h. */
int
dns_parse_tlsa(struct dns_result *r, const unsigned char *abuf, int alen)
{
    int st;

    r->tlsa = xcalloc(DNS_MAXTLSA, sizeof(*r->tlsa));
    if ((st = dns_walk(abuf, alen, dns_tlsa_rr, r)) != ARES_SUCCESS)
        return st;
    return r->n == 0 ? ARES_ENODATA : ARES_SUCCESS;
}

struct dns_owner {
    unsigned type;
    char *name;
};

/* dns_owner_rr - the owner of the first record of the type asked. */
static void
dns_owner_rr(const unsigned char *abuf, int alen, const unsigned char *owner, unsigned type,
             const unsigned char *rd, unsigned rdlen, void *arg)
{
    struct dns_owner *o = arg;
    char *name = NULL;
    long len = 0;

    if (type != o->type || o->name != NULL ||
        ares_expand_name(owner, abuf, alen, &name, &len) != ARES_SUCCESS)
        return;
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        n--;
    o->name = xstrndup(name, n);
    ares_free_string(name);
}

/* dns_parse_owner - see dns_int.h. */
char *
dns_parse_owner(const unsigned char *abuf, int alen, unsigned type)
{
    struct dns_owner o = {type, NULL};

    dns_walk(abuf, alen, dns_owner_rr, &o);
    return o.name;
}
