/*
 * dane - usable TLSA records and OpenSSL's DANE verification for outbound SMTP. See
 * dane.h.
 */
#include "dane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509_vfy.h>

#include "xmem.h"

/* dane_usable - a record OpenSSL can use for SMTP (RFC 7672 3.1). */
static bool
dane_usable(const struct dns_tlsa *t)
{
    if (t->usage != 2 && t->usage != 3)
        return false;
    if (t->selector > 1)
        return false;
    switch (t->mtype) {
    case 0:
        return t->len > 0;
    case 1:
        return t->len == 32;
    case 2:
        return t->len == 64;
    default:
        return false;
    }
}

/* dane_from - see dane.h. */
struct dane *
dane_from(const struct dns_result *r, const char *host, bool *present)
{
    struct dane *d;

    *present = r->status == DNS_OK && r->n > 0;
    if (!*present)
        return NULL;
    d = xcalloc(1, sizeof(*d));
    snprintf(d->base, sizeof(d->base), "%s", host);
    d->tlsa = xcalloc(r->n, sizeof(*d->tlsa));
    for (size_t i = 0; i < r->n; i++) {
        struct dns_tlsa *t;
        if (!dane_usable(&r->tlsa[i]))
            continue;
        t = &d->tlsa[d->n++];
        *t = r->tlsa[i];
        t->data = xmalloc(t->len);
        memcpy(t->data, r->tlsa[i].data, t->len);
    }
    if (d->n == 0)
        dane_free(&d);
    return d;
}

/* dane_dup - see dane.h. */
struct dane *
dane_dup(const struct dane *d)
{
    struct dane *c;

    if (d == NULL)
        return NULL;
    c = xcalloc(1, sizeof(*c));
    memcpy(c->base, d->base, sizeof(c->base));
    memcpy(c->alt, d->alt, sizeof(c->alt));
    c->tlsa = xcalloc(d->n > 0 ? d->n : 1, sizeof(*c->tlsa));
    for (size_t i = 0; i < d->n; i++) {
        c->tlsa[i] = d->tlsa[i];
        c->tlsa[i].data = xmalloc(d->tlsa[i].len);
        memcpy(c->tlsa[i].data, d->tlsa[i].data, d->tlsa[i].len);
    }
    c->n = d->n;
    return c;
}

/* dane_free - see dane.h. */
void
dane_free(struct dane **dp)
{
    struct dane *d = *dp;

    if (d == NULL)
        return;
    *dp = NULL;
    for (size_t i = 0; i < d->n; i++)
        free(d->tlsa[i].data);
    free(d->tlsa);
    free(d);
}

/* dane_ctx_init - see dane.h. */
int
dane_ctx_init(SSL_CTX *ctx)
{
    if (SSL_CTX_dane_enable(ctx) <= 0)
        return -1;
    SSL_CTX_dane_set_flags(ctx, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    return 0;
}

/* dane_ssl_setup - see dane.h. */
int
dane_ssl_setup(SSL *ssl, const struct dane *d)
{
    int added = 0;

    if (SSL_dane_enable(ssl, d->base) <= 0)
        return -1;
    if (d->alt[0] != '\0' && SSL_add1_host(ssl, d->alt) != 1)
        return -1;
    for (size_t i = 0; i < d->n; i++) {
        const struct dns_tlsa *t = &d->tlsa[i];
        if (SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len) > 0)
            added++;
    }
    return added > 0 ? 0 : -1;
}

/* dane_ssl_auth - see dane.h. */
const char *
dane_ssl_auth(SSL *ssl)
{
    uint8_t usage = 0, selector = 0, mtype = 0;

    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    if (SSL_get0_dane_authority(ssl, NULL, NULL) < 0)
        return NULL;
    if (SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, NULL, NULL) < 0)
        return NULL;
    return usage == 3 ? "dane-ee" : usage == 2 ? "dane-ta" : NULL;
}
