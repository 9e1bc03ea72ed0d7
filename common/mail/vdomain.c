/*
 * vdomain - DMail's virtual domains. See vdomain.h.
 */
#include "vdomain.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "xmem.h"

/* vdomain_ip_canon - an address string in its canonical text form (an IPv4-mapped IPv6
 * address as IPv4); false when it is not an address. */
static bool
vdomain_ip_canon(const char *ip, char *out, size_t outlen)
{
    unsigned char a[16];

    if (ip == NULL || outlen < VDOMAIN_IP_MAX)
        return false;
    if (strncasecmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.') != NULL)
        ip += 7;
    if (inet_pton(AF_INET, ip, a) == 1)
        return inet_ntop(AF_INET, a, out, (socklen_t)outlen) != NULL;
    if (inet_pton(AF_INET6, ip, a) == 1)
        return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) != NULL;
    return false;
}

/* vdomain_prefix_ok - a prefix is [a-z0-9._-] (lower-cased in place), not starting with
 * '.', 1 to VDOMAIN_PREFIX_MAX characters. */
static bool
vdomain_prefix_ok(char *p)
{
    size_t n = strlen(p);

    if (n == 0 || n > VDOMAIN_PREFIX_MAX || p[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        p[i] = (char)tolower((unsigned char)p[i]);
        if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '_' && p[i] != '-')
            return false;
    }
    return true;
}

/* vdomain_conf_item - conf hook of `vdomain`, see vdomain.h. */
int
vdomain_conf_item(char **item, char *reason, size_t len)
{
    char *copy = xstrdup(*item), *save = NULL, *w[4];
    char dom[256], ip[VDOMAIN_IP_MAX] = "", prefix[VDOMAIN_PREFIX_MAX + 1] = "";
    int n = 0, rc = -1;

    for (char *t = strtok_r(copy, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        if (n == 3) {
            snprintf(reason, len, "'%s': too many words (vdomain DOMAIN [IP] [PREFIX])", *item);
            goto out;
        }
        w[n++] = t;
    }
    if (n == 0) {
        snprintf(reason, len, "a domain is needed (vdomain DOMAIN [IP] [PREFIX])");
        goto out;
    }
    if (strchr(w[0], '@') != NULL || addr_domain_normalize(w[0], dom, sizeof dom) < 0) {
        snprintf(reason, len, "'%s' is not a valid domain", w[0]);
        goto out;
    }
    for (int i = 1; i < n; i++) {
        char canon[VDOMAIN_IP_MAX];
        if (vdomain_ip_canon(w[i], canon, sizeof canon)) {
            if (ip[0] != '\0') {
                snprintf(reason, len, "%s: two IP addresses (%s, %s)", dom, ip, w[i]);
                goto out;
            }
            snprintf(ip, sizeof ip, "%s", canon);
        } else {
            if (prefix[0] != '\0') {
                snprintf(reason, len, "%s: '%s' is neither an IP address nor a second prefix", dom,
                         w[i]);
                goto out;
            }
            if (strlen(w[i]) > VDOMAIN_PREFIX_MAX || !vdomain_prefix_ok(w[i])) {
                snprintf(reason, len,
                         "%s: prefix '%s' must be 1 to %d of a-z 0-9 . _ - and not start with '.'",
                         dom, w[i], VDOMAIN_PREFIX_MAX);
                goto out;
            }
            snprintf(prefix, sizeof prefix, "%s", w[i]);
        }
    }
    if (prefix[0] == '\0') {
        if (strlen(dom) > VDOMAIN_PREFIX_MAX) {
            snprintf(reason, len, "%s: the domain is too long to be the prefix; give one", dom);
            goto out;
        }
        memcpy(prefix, dom, strlen(dom) + 1); /* checked above: it fits */
    }
    free(*item);
    *item = xasprintf("%s %s %s", dom, ip[0] ? ip : "*", prefix);
    rc = 0;
out:
    free(copy);
    return rc;
}

/* vdomain_conf_alt - conf hook of `alt_drop_path DOMAIN PATH`. */
int
vdomain_conf_alt(char **item, char *reason, size_t len)
{
    char dom[256];
    const char *sp = strchr(*item, ' ');
    size_t dlen = sp != NULL ? (size_t)(sp - *item) : strlen(*item);
    char *d = xstrndup(*item, dlen);
    int rc = addr_domain_normalize(d, dom, sizeof dom);

    free(d);
    if (rc < 0 || dlen == 0) {
        snprintf(reason, len, "'%.*s' is not a valid domain (alt_drop_path DOMAIN PATH)", (int)dlen,
                 *item);
        return -1;
    }
    if (sp == NULL || sp[1] != '/' || strchr(sp + 1, ' ') != NULL) {
        snprintf(reason, len, "%s: an absolute directory is needed (alt_drop_path DOMAIN PATH)",
                 dom);
        return -1;
    }
    char *canon = xasprintf("%s %s", dom, sp + 1);
    free(*item);
    *item = canon;
    return 0;
}

/* vdomain_conf_sep - conf hook of `vdomain_separator`. */
int
vdomain_conf_sep(char **item, char *reason, size_t len)
{
    const char *s = *item;
    size_t n = strlen(s);

    bool ok = n >= 1 && n <= 8;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || strchr("._+=~-", s[i]) != NULL;
    if (!ok) {
        snprintf(reason, len, "'%s' must be 1 to 8 of A-Z a-z 0-9 . _ + = ~ -", s);
        return -1;
    }
    return 0;
}

/* vdomain_parse - a stored `vdomain` item ("DOMAIN IP PREFIX") into out. */
static bool
vdomain_parse(const char *item, struct vdomain *out)
{
    char ip[VDOMAIN_IP_MAX];

    if (sscanf(item, "%255s %45s %64s", out->domain, ip, out->prefix) != 3)
        return false;
    snprintf(out->ip, sizeof out->ip, "%s", strcmp(ip, "*") == 0 ? "" : ip);
    return true;
}

/* vdomain_norm - domain as stored: lower-case A-label without a final dot. */
static bool
vdomain_norm(const char *domain, char *out, size_t outlen)
{
    char tmp[256];
    size_t n;

    if (domain == NULL || (n = strlen(domain)) == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, domain, n + 1);
    if (n > 1 && tmp[n - 1] == '.')
        tmp[n - 1] = '\0';
    return addr_domain_normalize(tmp, out, outlen) == 0;
}

/* vdomain_find - the vdomain line of domain. */
bool
vdomain_find(const struct conf *cf, const char *domain, struct vdomain *out)
{
    char d[256];
    struct vdomain tmp;

    if (cf == NULL || cf->vdomain.n == 0 || !vdomain_norm(domain, d, sizeof d))
        return false;
    if (out == NULL)
        out = &tmp;
    for (size_t i = 0; i < cf->vdomain.n; i++)
        if (vdomain_parse(cf->vdomain.v[i], out) && strcmp(out->domain, d) == 0)
            return true;
    return false;
}

/* vdomain_by_ip - the vdomain line whose IP is ip. */
bool
vdomain_by_ip(const struct conf *cf, const char *ip, struct vdomain *out)
{
    char canon[VDOMAIN_IP_MAX];

    if (cf == NULL || cf->vdomain.n == 0 || !vdomain_ip_canon(ip, canon, sizeof canon))
        return false;
    for (size_t i = 0; i < cf->vdomain.n; i++)
        if (vdomain_parse(cf->vdomain.v[i], out) && strcmp(out->ip, canon) == 0)
            return true;
    return false;
}

/* vdomain_alt_path - the alt_drop_path directory of domain, or NULL. */
const char *
vdomain_alt_path(const struct conf *cf, const char *domain)
{
    char d[256];
    size_t n;

    if (cf == NULL || cf->alt_drop_path.n == 0 || !vdomain_norm(domain, d, sizeof d))
        return NULL;
    n = strlen(d);
    for (size_t i = 0; i < cf->alt_drop_path.n; i++) {
        const char *e = cf->alt_drop_path.v[i];
        if (strncmp(e, d, n) == 0 && e[n] == ' ')
            return e + n + 1;
    }
    return NULL;
}

/* vdomain_check - whole-snapshot checks, see vdomain.h. */
void
vdomain_check(const struct conf *c, struct conf_diag *d)
{
    const char *vo = c->origin[CONF_vdomain];
    struct vdomain a, b;

    for (size_t i = 0; i < c->vdomain.n; i++) {
        if (!vdomain_parse(c->vdomain.v[i], &a))
            continue;
        if (conf_list_has(&c->host_domain, a.domain))
            conf_diag_add(d, false, vo, 0,
                          "vdomain %s is also a host_domain (a host_domain shares the main "
                          "domain's users; a vdomain has its own)",
                          a.domain);
        for (size_t j = i + 1; j < c->vdomain.n; j++) {
            if (!vdomain_parse(c->vdomain.v[j], &b))
                continue;
            if (strcmp(a.prefix, b.prefix) == 0)
                conf_diag_add(d, false, vo, 0,
                              "vdomain %s and %s have the same prefix %s: their users' "
                              "dropfiles would mix",
                              a.domain, b.domain, a.prefix);
            if (a.ip[0] != '\0' && strcmp(a.ip, b.ip) == 0)
                conf_diag_add(d, false, vo, 0, "vdomain %s and %s have the same IP %s", a.domain,
                              b.domain, a.ip);
        }
    }
    for (size_t i = 0; i < c->alt_drop_path.n; i++) {
        const char *e = c->alt_drop_path.v[i];
        int n = (int)strcspn(e, " ");
        char dom[256];
        snprintf(dom, sizeof dom, "%.*s", n, e);
        if (!conf_is_local_domain(c, dom))
            conf_diag_add(d, true, c->origin[CONF_alt_drop_path], 0,
                          "alt_drop_path %s: not a host_domain or vdomain, never used", dom);
    }
    if (c->alt_drop_path.n > 0 && c->authent_method == AUTHENT_EXTERNAL)
        conf_diag_add(d, true, c->origin[CONF_alt_drop_path], 0,
                      "alt_drop_path is not used with authent_method external (the program "
                      "names each dropfile)");
}

/* vdomain_login - the login name for auth_verify, see vdomain.h. */
enum vdomain_form
vdomain_login(const struct conf *cf, const char *login, const char *local_ip, char *out,
              size_t outlen)
{
    const char *pct;
    struct vdomain v;
    int n;

    if (outlen == 0)
        return VDOMAIN_FORM_PLAIN;
    snprintf(out, outlen, "%s", login != NULL ? login : "");
    if (login == NULL)
        return VDOMAIN_FORM_PLAIN;
    if (strchr(login, '@') != NULL)
        return VDOMAIN_FORM_ADDRESS;
    if ((pct = strrchr(login, '%')) != NULL && pct > login && conf_is_local_domain(cf, pct + 1)) {
        n = snprintf(out, outlen, "%.*s@%s", (int)(pct - login), login, pct + 1);
        if (n < 0 || (size_t)n >= outlen) {
            snprintf(out, outlen, "%s", login);
            return VDOMAIN_FORM_PLAIN;
        }
        return VDOMAIN_FORM_PERCENT;
    }
    if (local_ip != NULL && vdomain_by_ip(cf, local_ip, &v)) {
        n = snprintf(out, outlen, "%s@%s", login, v.domain);
        if (n >= 0 && (size_t)n < outlen)
            return VDOMAIN_FORM_IP;
        snprintf(out, outlen, "%s", login);
    }
    return VDOMAIN_FORM_PLAIN;
}

/* vdomain_form_name - the form for the log. */
const char *
vdomain_form_name(enum vdomain_form f)
{
    switch (f) {
    case VDOMAIN_FORM_ADDRESS:
        return "address";
    case VDOMAIN_FORM_PERCENT:
        return "percent";
    case VDOMAIN_FORM_IP:
        return "ip";
    case VDOMAIN_FORM_PLAIN:
        break;
    }
    return "plain";
}
