/*
 * auth_ext - remembered answers of the external-authentication helpers. See auth_ext.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "auth_ext.h"
#include "xmem.h"

struct auth_ext_ent {
    char *key;
    char *drop; /* NULL: no such user */
    char *fwd;  /* NULL: none */
    uint64_t expires;
    struct auth_ext_ent *next; /* newest first */
};

struct auth_ext_dir {
    pthread_mutex_t mu;
    struct auth_ext_ent *head;
    size_t n;
};

static _Thread_local struct {
    struct auth_user u;
    char name[600];
    char drop[4096];
    char fwd[1024];
    char missed[600];
} auth_ext_tl;

static uint64_t
auth_ext_now(void)
{
    return uv_hrtime() / 1000000;
}

struct auth_ext_dir *
auth_ext_new(void)
{
    struct auth_ext_dir *d = xcalloc(1, sizeof *d);

    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void
auth_ext_ent_free(struct auth_ext_ent *e)
{
    free(e->key);
    free(e->drop);
    free(e->fwd);
    free(e);
}

void
auth_ext_free(struct auth_ext_dir *d)
{
    if (d == NULL)
        return;
    while (d->head != NULL) {
        struct auth_ext_ent *e = d->head;
        d->head = e->next;
        auth_ext_ent_free(e);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const struct auth_user *
auth_ext_find(struct auth_ext_dir *d, const char *key, bool *found)
{
    const struct auth_user *u = NULL;
    uint64_t now = auth_ext_now();

    *found = false;
    pthread_mutex_lock(&d->mu);
    for (struct auth_ext_ent *e = d->head; e != NULL; e = e->next) {
        if (e->expires <= now || strcmp(e->key, key) != 0)
            continue;
        *found = true;
        if (e->drop != NULL) {
            memset(&auth_ext_tl.u, 0, sizeof auth_ext_tl.u);
            snprintf(auth_ext_tl.name, sizeof auth_ext_tl.name, "%s", e->key);
            snprintf(auth_ext_tl.drop, sizeof auth_ext_tl.drop, "%s", e->drop);
            snprintf(auth_ext_tl.fwd, sizeof auth_ext_tl.fwd, "%s", e->fwd ? e->fwd : "");
            auth_ext_tl.u.name = auth_ext_tl.name;
            auth_ext_tl.u.hash = (char *)"";
            auth_ext_tl.u.drop = auth_ext_tl.drop;
            auth_ext_tl.u.fwd = e->fwd ? auth_ext_tl.fwd : NULL;
            u = &auth_ext_tl.u;
        }
        break;
    }
    pthread_mutex_unlock(&d->mu);
    if (!*found)
        snprintf(auth_ext_tl.missed, sizeof auth_ext_tl.missed, "%s", key);
    return u;
}

const char *
auth_ext_missed(void)
{
    return auth_ext_tl.missed;
}

void
auth_ext_add(struct auth_ext_dir *d, const char *key, const char *drop, const char *fwd,
             uint64_t ttl_ms)
{
    struct auth_ext_ent *e = xcalloc(1, sizeof *e), **pp;
    uint64_t now = auth_ext_now();
    size_t kept = 0;

    e->key = xstrdup(key);
    e->drop = drop != NULL ? xstrdup(drop) : NULL;
    e->fwd = fwd != NULL && fwd[0] != '\0' ? xstrdup(fwd) : NULL;
    e->expires = now + (ttl_ms < AUTH_EXT_TTL_MIN ? AUTH_EXT_TTL_MIN : ttl_ms);
    pthread_mutex_lock(&d->mu);
    e->next = d->head;
    d->head = e;
    /* the older answers for key, expired ones and those beyond the bound go */
    pp = &e->next;
    while (*pp != NULL) {
        struct auth_ext_ent *o = *pp;
        if (o->expires <= now || strcmp(o->key, key) == 0 || kept + 1 >= AUTH_EXT_MAX) {
            *pp = o->next;
            auth_ext_ent_free(o);
            continue;
        }
        kept++;
        pp = &o->next;
    }
    d->n = kept + 1;
    pthread_mutex_unlock(&d->mu);
}
