/*
 * txdedup - dlist's transactions remembered to drop a resend. See txdedup.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hash.h"
#include "session.h"
#include "txdedup.h"
#include "xmem.h"

struct txdedup_ent {
    char *envid;
    time_t when;
    bool done;
    uint64_t *h; /* the recipients of its deliveries (hash_str_ci), sorted when done */
    size_t n;
};

static struct txdedup_ent txdedup_tab[TXDEDUP_MAX];
static size_t txdedup_next;  /* the slot replaced next (oldest first) */
static size_t txdedup_total; /* recipients remembered in all entries */

bool
txdedup_applies(const struct smtp_session *s)
{
    const char *ip = s->base.ip;

    if (strncmp(s->tx.params.envid, TXDEDUP_PREFIX, strlen(TXDEDUP_PREFIX)) != 0)
        return false;
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           conf_ip_match(&s->base.cf->forward_from_ip, ip);
}

/* txdedup_find - envid's entry, or NULL. */
static struct txdedup_ent *
txdedup_find(const char *envid)
{
    for (size_t i = 0; i < TXDEDUP_MAX; i++)
        if (txdedup_tab[i].envid != NULL && strcmp(txdedup_tab[i].envid, envid) == 0)
            return &txdedup_tab[i];
    return NULL;
}

/* txdedup_forget - e is empty again. */
static void
txdedup_forget(struct txdedup_ent *e)
{
    txdedup_total -= e->n;
    free(e->envid);
    free(e->h);
    memset(e, 0, sizeof(*e));
}

enum txdedup_state
txdedup_begin(const char *envid, time_t now)
{
    struct txdedup_ent *e = txdedup_find(envid);

    if (e != NULL && now - e->when < TXDEDUP_TTL)
        return e->done ? TXDEDUP_DONE : TXDEDUP_BUSY;
    if (e != NULL)
        txdedup_forget(e);
    e = &txdedup_tab[txdedup_next];
    txdedup_next = (txdedup_next + 1) % TXDEDUP_MAX;
    txdedup_forget(e);
    e->envid = xstrdup(envid);
    e->when = now;
    return TXDEDUP_NEW;
}

/* txdedup_cmp - qsort/bsearch order of hashes. */
static int
txdedup_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

size_t
txdedup_filter(const char *envid, const char *const *addr, size_t n, bool *seen)
{
    struct txdedup_ent *e = txdedup_find(envid);
    size_t fresh = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t h = hash_str_ci(addr[i]);
        seen[i] = e != NULL && e->done &&
                  (e->n == 0 || bsearch(&h, e->h, e->n, sizeof(*e->h), txdedup_cmp) != NULL);
        fresh += !seen[i];
    }
    if (e != NULL && fresh > 0)
        e->done = false; /* the rest is delivered now: a resend meanwhile waits */
    return fresh;
}

size_t
txdedup_keep_fresh(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;
    const char **addr = xcalloc(tx->nrcpt + 1, sizeof(*addr));
    bool *seen = xcalloc(tx->nrcpt + 1, sizeof(*seen));
    size_t fresh, k = 0;

    for (size_t i = 0; i < tx->nrcpt; i++)
        addr[i] = tx->rcpt[i].addr;
    fresh = txdedup_filter(tx->params.envid, addr, tx->nrcpt, seen);
    for (size_t i = 0; fresh > 0 && i < tx->nrcpt; i++) {
        if (seen[i])
            session_rcpt_drop(&tx->rcpt[i]);
        else
            tx->rcpt[k++] = tx->rcpt[i];
    }
    if (fresh > 0)
        tx->nrcpt = k;
    free(addr);
    free(seen);
    return fresh;
}

void
txdedup_end_tx(const struct smtp_session *s, bool delivered)
{
    const struct smtp_tx *tx = &s->tx;
    const char **addr = xcalloc(tx->nrcpt + 1, sizeof(*addr));

    for (size_t i = 0; i < tx->nrcpt; i++)
        addr[i] = tx->rcpt[i].addr;
    txdedup_end(tx->params.envid, delivered, time(NULL), addr, tx->nrcpt);
    free(addr);
}

/* txdedup_room - make room for n more recipients: the oldest other entries go (their
 * resends are delivered in full). */
static void
txdedup_room(const struct txdedup_ent *keep, size_t n)
{
    for (size_t k = 0; k < TXDEDUP_MAX && txdedup_total + n > TXDEDUP_RCPTS_MAX; k++) {
        struct txdedup_ent *e = &txdedup_tab[(txdedup_next + k) % TXDEDUP_MAX];
        if (e != keep && e->done)
            txdedup_forget(e);
    }
}

void
txdedup_end(const char *envid, bool delivered, time_t now, const char *const *addr, size_t n)
{
    struct txdedup_ent *e = txdedup_find(envid);

    if (e == NULL || e->done)
        return;
    if (!delivered && e->n == 0) { /* nothing of it was delivered: a resend is */
        txdedup_forget(e);
        return;
    }
    e->done = true;
    if (!delivered) /* the rest was not delivered: what was stays remembered */
        return;
    e->when = now;
    if (n == 0)
        return;
    if (n > TXDEDUP_RCPTS_MAX) /* too many to remember: a resend gives the rest again */
        n = TXDEDUP_RCPTS_MAX;
    txdedup_room(e, n);
    e->h = xrealloc(e->h, (e->n + n) * sizeof(*e->h));
    for (size_t i = 0; i < n; i++)
        e->h[e->n + i] = hash_str_ci(addr[i]);
    e->n += n;
    txdedup_total += n;
    qsort(e->h, e->n, sizeof(*e->h), txdedup_cmp);
}
