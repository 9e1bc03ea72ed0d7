/*
 * nexthop - smarthost and gateway specs: parsing, canonical form, the route of a
 * domain. See nexthop.h.
 */
#include "nexthop.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf.h"

/* nexthop_name_ok - an ASCII host name: LDH (and '_') labels of 1..63 octets. */
static bool
nexthop_name_ok(const char *h)
{
    size_t n = strlen(h), label = 0;

    if (n == 0 || n > NEXTHOP_HOST_MAX || h[0] == '.' || h[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
        if (++label > 63)
            return false;
    }
    return true;
}

/* nexthop_port - "PORT" in 1..65535; 0 when not. */
static int
nexthop_port(const char *s)
{
    long v = 0;

    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return 0;
    }
    return (int)v;
}

/* nexthop_parse - see nexthop.h. */
int
nexthop_parse(const char *spec, struct nexthop *nh, char *reason, size_t len)
{
    unsigned char bin[16];
    const char *host = spec, *port = NULL;
    size_t hlen;

    memset(nh, 0, sizeof(*nh));
    if (*spec == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            snprintf(reason, len, "'%.200s' is not HOST, HOST:PORT, [HOST] or [HOST]:PORT", spec);
            return -1;
        }
        host = spec + 1;
        hlen = (size_t)(end - host);
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strchr(spec, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            snprintf(reason, len, "'%.200s': an IPv6 address goes in brackets: [ADDRESS]:PORT",
                     spec);
            return -1;
        }
        hlen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
        port = colon != NULL ? colon + 1 : NULL;
        nh->mx = true;
    }
    if (hlen == 0 || hlen >= sizeof(nh->host)) {
        snprintf(reason, len, "'%.200s' has no valid host", spec);
        return -1;
    }
    memcpy(nh->host, host, hlen);
    nh->host[hlen] = '\0';
    if (inet_pton(AF_INET, nh->host, bin) == 1 ||
        (!nh->mx && inet_pton(AF_INET6, nh->host, bin) == 1)) {
        nh->ip = true;
        nh->mx = false;
    } else if (nexthop_name_ok(nh->host)) {
        for (char *p = nh->host; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else {
        snprintf(reason, len, "'%.200s': '%.200s' is not a host name or IP address", spec,
                 nh->host);
        return -1;
    }
    if (port != NULL && (nh->port = nexthop_port(port)) == 0) {
        snprintf(reason, len, "'%.200s': '%.20s' is not a port (1 to 65535)", spec, port);
        return -1;
    }
    return 0;
}

/* nexthop_format - see nexthop.h. */
int
nexthop_format(const struct nexthop *nh, char *buf, size_t len)
{
    bool brackets = !nh->mx; /* a name in brackets, or any IP address */
    int n;

    n = snprintf(buf, len, "%s%s%s", brackets ? "[" : "", nh->host, brackets ? "]" : "");
    if (n >= 0 && (size_t)n < len && nh->port > 0)
        n += snprintf(buf + n, len - (size_t)n, ":%d", nh->port);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* nexthop_entry - the spec of the gateway entry whose key is exactly key[0..klen). */
static const char *
nexthop_entry(const struct conf *cf, const char *key, size_t klen)
{
    for (size_t i = 0; i < cf->gateway.n; i++) {
        const char *e = cf->gateway.v[i];
        size_t n = strcspn(e, " ");
        if (n == klen && strncasecmp(e, key, klen) == 0 && e[n] == ' ')
            return e + n + 1;
    }
    return NULL;
}

/* nexthop_route - see nexthop.h. */
const char *
nexthop_route(const struct conf *cf, const char *domain)
{
    const char *spec = NULL;

    if (domain != NULL && *domain != '\0' && cf->gateway.n > 0) {
        spec = nexthop_entry(cf, domain, strlen(domain));
        /* ".parent" entries, nearest first: for a.b.c try ".b.c", then ".c" */
        for (const char *p = strchr(domain, '.'); spec == NULL && p != NULL; p = strchr(p + 1, '.'))
            spec = nexthop_entry(cf, p, strlen(p));
    }
    if (spec == NULL && cf->smarthost != NULL && cf->smarthost[0] != '\0')
        spec = cf->smarthost;
    return spec;
}
