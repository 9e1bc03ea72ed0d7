/*
 * tls_policy - an outbound destination's TLS policy from the tls_policy table and
 * smarthost_tls. See tls_policy.h.
 */
#include "tls_policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf.h"

static const char *const tlspol_names[] = {"none",      "may",    "encrypt", "dane",
                                           "dane-only", "verify", "secure"};

/* tlspol_level_name - see tls_policy.h. */
const char *
tlspol_level_name(enum tlspol_level level)
{
    return (size_t)level < sizeof(tlspol_names) / sizeof(tlspol_names[0]) ? tlspol_names[level]
                                                                          : "?";
}

/* tlspol_entry - the table entry whose key is exactly key[0..klen), its value or NULL. */
static const char *
tlspol_entry(const struct conf *cf, const char *key, size_t klen)
{
    for (size_t i = 0; i < cf->tls_policy.n; i++) {
        const char *e = cf->tls_policy.v[i];
        size_t n = strcspn(e, " ");
        if (n == klen && strncasecmp(e, key, klen) == 0 && e[n] == ' ')
            return e + n + 1;
    }
    return NULL;
}

/* tlspol_parse - "LEVEL [match=NAME]" (checked at load) into p. */
static void
tlspol_parse(const char *v, struct tlspol *p)
{
    size_t n = strcspn(v, " ");

    p->level = TLSPOL_MAY;
    for (size_t i = 0; i < sizeof(tlspol_names) / sizeof(tlspol_names[0]); i++)
        if (strlen(tlspol_names[i]) == n && strncmp(v, tlspol_names[i], n) == 0)
            p->level = (enum tlspol_level)i;
    if (strncmp(v + n, " match=", 7) == 0)
        snprintf(p->match, sizeof(p->match), "%s", v + n + 7);
}

/* tlspol_for - see tls_policy.h. */
void
tlspol_for(const struct conf *cf, const char *domain, bool relay, struct tlspol *p)
{
    const char *v = NULL;

    memset(p, 0, sizeof(*p));
    if (domain != NULL && *domain != '\0') {
        v = tlspol_entry(cf, domain, strlen(domain));
        for (const char *d = strchr(domain, '.'); v == NULL && d != NULL; d = strchr(d + 1, '.'))
            v = tlspol_entry(cf, d, strlen(d));
    }
    if (v != NULL) {
        tlspol_parse(v, p);
        p->source = "tls_policy";
    } else if (relay) {
        p->level = cf->smarthost_tls == SMARTHOST_TLS_REQUIRE ? TLSPOL_ENCRYPT : TLSPOL_MAY;
        p->source = "smarthost_tls";
    } else {
        p->level = TLSPOL_MAY;
        p->source = "default";
    }
}

/* tlspol_mandatory - see tls_policy.h. */
bool
tlspol_mandatory(const struct tlspol *p)
{
    return p->level != TLSPOL_NONE && p->level != TLSPOL_MAY && p->level != TLSPOL_DANE;
}

/* tlspol_smtpc - see tls_policy.h. */
enum smtpc_tls
tlspol_smtpc(const struct tlspol *p, const char *host, const char *domain, const char **name)
{
    *name = host;
    switch (p->level) {
    case TLSPOL_NONE:
        return SMTPC_TLS_NONE;
    case TLSPOL_MAY:
    case TLSPOL_DANE:
        return SMTPC_TLS_MAY;
    case TLSPOL_ENCRYPT:
    case TLSPOL_DANE_ONLY:
        return SMTPC_TLS_REQUIRE;
    case TLSPOL_VERIFY:
        if (p->match[0] != '\0')
            *name = p->match;
        return SMTPC_TLS_VERIFY;
    case TLSPOL_SECURE:
        *name = p->match[0] != '\0' ? p->match : domain;
        return SMTPC_TLS_VERIFY;
    }
    return SMTPC_TLS_MAY;
}

/* tlspol_dane - see tls_policy.h. */
bool
tlspol_dane(const struct conf *cf, const struct tlspol *p)
{
    if (p->level == TLSPOL_DANE || p->level == TLSPOL_DANE_ONLY)
        return true;
    return cf->smtp_dane && strcmp(p->source, "default") == 0;
}
