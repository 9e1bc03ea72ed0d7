/*
 * txdedup - dlist's transactions remembered to drop a resend. See txdedup.h.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "session.h"
#include "txdedup.h"
#include "xmem.h"

struct txdedup_ent {
    char *envid;
    time_t when;
    bool done;
};

static struct txdedup_ent txdedup_tab[TXDEDUP_MAX];
static size_t txdedup_next; /* the slot replaced next (oldest first) */

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

enum txdedup_state
txdedup_begin(const char *envid, time_t now)
{
    struct txdedup_ent *e = txdedup_find(envid);

    if (e != NULL && now - e->when < TXDEDUP_TTL)
        return e->done ? TXDEDUP_DONE : TXDEDUP_BUSY;
    if (e == NULL) {
        e = &txdedup_tab[txdedup_next];
        txdedup_next = (txdedup_next + 1) % TXDEDUP_MAX;
        free(e->envid);
        e->envid = xstrdup(envid);
    }
    e->when = now;
    e->done = false;
    return TXDEDUP_NEW;
}

void
txdedup_end(const char *envid, bool delivered, time_t now)
{
    struct txdedup_ent *e = txdedup_find(envid);

    if (e == NULL || e->done)
        return;
    if (delivered) {
        e->done = true;
        e->when = now;
    } else {
        free(e->envid);
        e->envid = NULL;
    }
}
