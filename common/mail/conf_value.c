/*
 * conf_value - single values of dmail.conf settings (contract in conf.h): text to value
 * for the loader in conf.c (numbers, sizes, times, booleans, choices, bounds, the checks
 * of list items), value to text (conf_format), and the matches of a value against a list
 * (conf_list_has, conf_is_local_domain, conf_domain_in, conf_ip_match).
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <idn2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alias.h"
#include "conf_int.h"
#include "dns.h"
#include "milter_addr.h"
#include "nexthop.h"
#include "dkim.h"
#include "route.h"
#include "vdomain.h"
#include "xmem.h"

/* conf_value_number - an unsigned decimal number at *s; moves *s past it. */
static int
conf_value_number(const char **s, unsigned long long *out)
{
    const char *p = *s;
    unsigned long long v = 0;

    *out = 0;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (__builtin_mul_overflow(v, 10ULL, &v) ||
            __builtin_add_overflow(v, (unsigned long long)(*p - '0'), &v))
            return -1;
    }
    *s = p;
    *out = v;
    return 0;
}

/* conf_value_bool - true/false, yes/no, on/off, 1/0. */
int
conf_value_bool(const char *v, bool *out, char *reason, size_t len)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(reason, len, "'%s' is not a boolean (true or false)", v);
    return -1;
}

/* conf_value_int - a whole decimal number, optionally signed. */
int
conf_value_int(const char *v, long *out, char *reason, size_t len)
{
    const char *p = v;
    unsigned long long u;
    bool neg = false;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (conf_value_number(&p, &u) < 0 || *p != '\0' ||
        u > (neg ? (unsigned long long)LONG_MAX + 1 : (unsigned long long)LONG_MAX)) {
        snprintf(reason, len, "'%s' is not a whole number", v);
        return -1;
    }
    *out = neg ? (long)(0 - u) : (long)u;
    return 0;
}

/* conf_value_size - bytes, with K/M/G (or KB/MB/GB, B) suffixes; bare is KB if kb. */
int
conf_value_size(const char *v, bool kb, unsigned long long *out, char *reason, size_t len)
{
    static const struct {
        const char *suffix;
        unsigned long long mult;
    } units[] = {
        {"", 1},           {"b", 1},           {"k", 1ULL << 10}, {"kb", 1ULL << 10},
        {"m", 1ULL << 20}, {"mb", 1ULL << 20}, {"g", 1ULL << 30}, {"gb", 1ULL << 30},
    };
    const char *p = v;
    unsigned long long n;

    if (conf_value_number(&p, &n) == 0) {
        while (*p == ' ' || *p == '\t')
            p++;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcasecmp(p, units[i].suffix) != 0)
                continue;
            unsigned long long mult = (i == 0 && kb) ? 1024 : units[i].mult;
            if (__builtin_mul_overflow(n, mult, out))
                break;
            return 0;
        }
    }
    snprintf(reason, len, "'%s' is not a size (a number with an optional K, M or G suffix)", v);
    return -1;
}

/* conf_value_time - seconds, with s/m/h/d suffixes. */
int
conf_value_time(const char *v, long *out, char *reason, size_t len)
{
    static const struct {
        const char *suffix;
        unsigned long long mult;
    } units[] = {
        {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400},
    };
    const char *p = v;
    unsigned long long n, r;

    if (conf_value_number(&p, &n) == 0) {
        while (*p == ' ' || *p == '\t')
            p++;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcasecmp(p, units[i].suffix) != 0)
                continue;
            if (__builtin_mul_overflow(n, units[i].mult, &r) || r > LONG_MAX)
                break;
            *out = (long)r;
            return 0;
        }
    }
    snprintf(reason, len, "'%s' is not a time (a number with an optional s, m, h or d suffix)", v);
    return -1;
}

/* conf_value_enum - the index of v among the row's choices "a|b|c". */
int
conf_value_enum(const struct conf_setting *row, const char *v, int *out, char *reason, size_t len)
{
    const char *p = row->choices;
    size_t vlen = strlen(v);

    for (int i = 0; p != NULL && *p != '\0'; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vlen && strncasecmp(p, v, n) == 0) {
            *out = i;
            return 0;
        }
        p += n + (bar != NULL);
    }
    if (strcmp(row->name, "authent_method") == 0 && strcasecmp(v, "nt_user") == 0) {
        snprintf(reason, len,
                 "'nt_user' (Windows accounts) is not supported on this system; use "
                 "users_file, unix_user or external");
        return -1;
    }
    snprintf(reason, len, "'%s' is not one of %s", v, row->choices);
    return -1;
}

/* conf_value_bounds - min/max of a numeric row (0,0 = unbounded). */
int
conf_value_bounds(const struct conf_setting *row, long long v, unsigned long long u,
                  bool isunsigned, const char *text, char *reason, size_t len)
{
    if (row->min == 0 && row->max == 0)
        return 0;
    bool low = isunsigned ? u < (unsigned long long)row->min : v < row->min;
    bool high = isunsigned ? u > (unsigned long long)row->max : v > row->max;
    if (!low && !high)
        return 0;
    if (row->type == CT_SIZE || row->type == CT_TIME)
        snprintf(reason, len, "'%s' is out of range (%lld to %lld %s)", text, row->min, row->max,
                 row->type == CT_SIZE ? "bytes" : "seconds");
    else
        snprintf(reason, len, "'%s' is out of range (%lld to %lld)", text, row->min, row->max);
    return -1;
}

/* conf_value_domain - a host_domain entry as a lower-case A-label without a final dot. */
static int
conf_value_domain(char **item, char *reason, size_t len)
{
    char *d = *item, *ascii = NULL;
    size_t n = strlen(d);
    bool nonascii = false;

    if (n > 1 && d[n - 1] == '.')
        d[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        nonascii |= (unsigned char)d[i] >= 0x80;
    if (nonascii) {
        int rc = idn2_to_ascii_8z(d, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rc != IDN2_OK) {
            snprintf(reason, len, "'%s' is not a valid domain (%s)", d, idn2_strerror(rc));
            return -1;
        }
        free(*item);
        *item = xstrdup(ascii);
        idn2_free(ascii);
        d = *item;
        n = strlen(d);
    }
    bool ok = n > 0 && n <= 253 && d[0] != '.' && d[0] != '-' && strstr(d, "..") == NULL;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        d[i] = (char)tolower(c);
        ok = isalnum(c) || c == '-' || c == '.' || c == '_';
    }
    if (!ok) {
        snprintf(reason, len, "'%s' is not a valid domain", *item);
        return -1;
    }
    return 0;
}

/* conf_value_ipaddr - an IPv4 or IPv6 address literal. */
static int
conf_value_ipaddr(char **item, char *reason, size_t len)
{
    unsigned char bin[16];

    if (inet_pton(AF_INET, *item, bin) == 1 || inet_pton(AF_INET6, *item, bin) == 1)
        return 0;
    snprintf(reason, len, "'%s' is not an IPv4 or IPv6 address", *item);
    return -1;
}

/* conf_value_cidr - "addr/bits" into family, address and prefix length. */
static int
conf_value_cidr(const char *s, int *family, unsigned char bin[16], int *bits)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    const char *p;
    unsigned long long n;

    if (slash == NULL || (size_t)(slash - s) >= sizeof(addr))
        return -1;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    if (inet_pton(AF_INET, addr, bin) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
        *family = AF_INET6;
    else
        return -1;
    p = slash + 1;
    if (conf_value_number(&p, &n) < 0 || *p != '\0' || n > (*family == AF_INET ? 32u : 128u))
        return -1;
    *bits = (int)n;
    return 0;
}

/* conf_value_ippattern - "!"? then "*", a wildcard like "10.1.*", an address or a CIDR. */
static int
conf_value_ippattern(char **item, char *reason, size_t len)
{
    const char *p = *item + (**item == '!');
    unsigned char bin[16];
    int family, bits;
    bool ok = *p != '\0';

    if (strchr(p, '/') != NULL) {
        ok = conf_value_cidr(p, &family, bin, &bits) == 0;
    } else {
        for (const char *q = p; ok && *q; q++)
            ok = isxdigit((unsigned char)*q) || *q == '.' || *q == ':' || *q == '*';
    }
    if (ok)
        return 0;
    snprintf(reason, len, "'%s' is not an IP address, wildcard or CIDR range", *item);
    return -1;
}

/* conf_value_hostpattern - "!"? then a host name wildcard ("*.example.org"): letters,
 * digits, '-', '.', '_' and '*'. */
static int
conf_value_hostpattern(char **item, char *reason, size_t len)
{
    const char *p = *item + (**item == '!');
    bool ok = *p != '\0';

    for (const char *q = p; ok && *q; q++)
        ok = isalnum((unsigned char)*q) || strchr("-._*", *q) != NULL;
    if (ok)
        return 0;
    snprintf(reason, len, "'%s' is not a host name or host name wildcard", *item);
    return -1;
}

/* conf_value_addrpattern - "!"? then an address wildcard ("*@spam.example",
 * "*.example.org", "user@*"): printable, no blanks, not empty. */
static int
conf_value_addrpattern(char **item, char *reason, size_t len)
{
    const char *p = *item + (**item == '!');
    bool ok = *p != '\0';

    for (const char *q = p; ok && *q; q++)
        ok = (unsigned char)*q > 0x20 && *q != 0x7f && *q != '<' && *q != '>';
    if (ok)
        return 0;
    snprintf(reason, len, "'%s' is not an address or address wildcard", *item);
    return -1;
}

/* conf_value_rbl_pair - "ZONE ENTRY" of an rbl_except_* line: ZONE a DNSBL zone (as
 * rbl_ban writes it) or "*" for every zone, ENTRY checked by check. */
static int
conf_value_rbl_pair(char **item, char *reason, size_t len, int (*check)(char **, char *, size_t))
{
    char *v = *item, *sp = strchr(v, ' ');
    char *zone, *entry;
    int rc = 0;

    if (sp == NULL || strchr(sp + 1, ' ') != NULL) {
        snprintf(reason, len, "'%s' is not ZONE ENTRY (a DNSBL zone or *, then one entry)", v);
        return -1;
    }
    zone = xstrndup(v, (size_t)(sp - v));
    entry = xstrdup(sp + 1);
    if (strcmp(zone, "*") != 0)
        rc = conf_value_domain(&zone, reason, len);
    if (rc == 0)
        rc = check(&entry, reason, len);
    if (rc == 0) {
        free(*item);
        *item = xasprintf("%s %s", zone, entry);
    }
    free(zone);
    free(entry);
    return rc;
}

/* conf_value_rbl_ip - rbl_except_ip: ZONE IP-ENTRY. */
static int
conf_value_rbl_ip(char **item, char *reason, size_t len)
{
    return conf_value_rbl_pair(item, reason, len, conf_value_ippattern);
}

/* conf_value_rbl_addr - rbl_except_mail, rbl_except_rcpt: ZONE ADDRESS-PATTERN. */
static int
conf_value_rbl_addr(char **item, char *reason, size_t len)
{
    return conf_value_rbl_pair(item, reason, len, conf_value_addrpattern);
}

/* conf_value_dnshost - a DNS server: an IP address with an optional port (dns.h). */
static int
conf_value_dnshost(char **item, char *reason, size_t len)
{
    return dns_servers_check(*item, reason, len);
}

/* conf_value_spec - a smarthost or gateway spec (nexthop.h) in canonical form. */
static int
conf_value_spec(char **item, char *reason, size_t len)
{
    struct nexthop nh;
    char buf[NEXTHOP_HOST_MAX + 16];

    if (nexthop_parse(*item, &nh, reason, len) < 0 || nexthop_format(&nh, buf, sizeof(buf)) < 0)
        return -1;
    free(*item);
    *item = xstrdup(buf);
    return 0;
}

/* conf_value_smarthost - empty (every domain by MX), or a spec. */
static int
conf_value_smarthost(char **item, char *reason, size_t len)
{
    return **item == '\0' ? 0 : conf_value_spec(item, reason, len);
}

/* conf_value_gateway - "DOMAIN SPEC" or ".DOMAIN SPEC" (conf.c made the blanks one space):
 * the domain as a lower-case A-label, the spec canonical. */
static int
conf_value_gateway(char **item, char *reason, size_t len)
{
    char *sp = strchr(*item, ' '), *dom, *spec;
    bool dot = **item == '.';
    int rc;

    if (sp == NULL || strchr(sp + 1, ' ') != NULL) {
        snprintf(reason, len, "'%s' is not DOMAIN HOST[:PORT] (or .DOMAIN, [HOST])", *item);
        return -1;
    }
    dom = xstrndup(*item + dot, (size_t)(sp - *item) - dot);
    spec = xstrdup(sp + 1);
    rc = dom[0] == '.' ? -1 : conf_value_domain(&dom, reason, len);
    if (dom[0] == '.')
        snprintf(reason, len, "'%s' is not a valid domain", dom);
    if (rc == 0)
        rc = conf_value_spec(&spec, reason, len);
    if (rc == 0) {
        free(*item);
        *item = xasprintf("%s%s %s", dot ? "." : "", dom, spec);
    }
    free(dom);
    free(spec);
    return rc;
}

/* conf_value_abspath - empty, or an absolute path (mta_sts_ca). */
static int
conf_value_abspath(char **item, char *reason, size_t len)
{
    if ((*item)[0] != '\0' && (*item)[0] != '/') {
        snprintf(reason, len, "'%s' is not an absolute path", *item);
        return -1;
    }
    return 0;
}

/* conf_value_mailbox - empty, or one address local@domain without white space or
 * control characters (tls_rpt_from). */
static int
conf_value_mailbox(char **item, char *reason, size_t len)
{
    const char *v = *item, *at = strrchr(v, '@');

    if (*v == '\0')
        return 0;
    for (const char *c = v; *c != '\0'; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '<' || *c == '>') {
            snprintf(reason, len, "'%s' is not an address (white space, a control or <>)", v);
            return -1;
        }
    if (at == NULL || at == v || at[1] == '\0') {
        snprintf(reason, len, "'%s' is not an address local@domain", v);
        return -1;
    }
    return 0;
}

/* conf_value_http_url - empty, or an http:// or https:// URL with a host, printable
 * ASCII without blanks, quotes, <>, a query or a fragment (dlist_http_url: dlist appends
 * its own path and query); a trailing '/' is dropped. */
static int
conf_value_http_url(char **item, char *reason, size_t len)
{
    char *v = *item, *host;
    size_t n;

    if (*v == '\0')
        return 0;
    if (strncasecmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncasecmp(v, "http://", 7) == 0)
        host = v + 7;
    else {
        snprintf(reason, len, "'%s' is not an http:// or https:// URL", v);
        return -1;
    }
    for (const char *c = v; *c != '\0'; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || strchr("\"'<>\\?#`", *c)) {
            snprintf(reason, len, "'%s': a URL without blanks, quotes, <>, ? or #", v);
            return -1;
        }
    if (*host == '\0' || *host == '/' || *host == ':') {
        snprintf(reason, len, "'%s' names no host", v);
        return -1;
    }
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        v[--n] = '\0';
    return 0;
}

/* conf_value_tls_policy - "DOMAIN LEVEL [match=NAME]" or ".DOMAIN ...": the domain as a
 * lower-case A-label, LEVEL one of tls_policy's levels (dsmtp/tls_policy.h), NAME a host
 * name the certificate must match (verify and secure only). */
static int
conf_value_tls_policy(char **item, char *reason, size_t len)
{
    static const char *const levels[] = {"none",      "may",    "encrypt", "dane",
                                         "dane-only", "verify", "secure"};
    char *sp = strchr(*item, ' '), *dom, *lvl, *match = NULL;
    bool dot = **item == '.', known = false;
    int rc;

    if (sp == NULL) {
        snprintf(reason, len, "'%s' is not DOMAIN LEVEL [match=NAME]", *item);
        return -1;
    }
    dom = xstrndup(*item + dot, (size_t)(sp - *item) - dot);
    lvl = xstrdup(sp + 1);
    if ((sp = strchr(lvl, ' ')) != NULL) {
        *sp = '\0';
        match = sp + 1;
    }
    rc = dom[0] == '.' ? -1 : conf_value_domain(&dom, reason, len);
    if (dom[0] == '.')
        snprintf(reason, len, "'%s' is not a valid domain", dom);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        known = known || strcmp(lvl, levels[i]) == 0;
    if (rc == 0 && !known) {
        snprintf(reason, len,
                 "'%s' is not a TLS level (none, may, encrypt, dane, dane-only, verify, secure)",
                 lvl);
        rc = -1;
    }
    if (rc == 0 && match != NULL) {
        char *name = NULL;
        if (strncmp(match, "match=", 6) == 0 && match[6] != '\0')
            name = xstrdup(match + 6);
        if (name == NULL || strchr(name, ' ') != NULL ||
            conf_value_domain(&name, reason, len) < 0) {
            snprintf(reason, len, "'%s' is not match=HOSTNAME", match);
            rc = -1;
        } else if (strcmp(lvl, "verify") != 0 && strcmp(lvl, "secure") != 0) {
            snprintf(reason, len, "match= is for the levels verify and secure, not %s", lvl);
            rc = -1;
        } else {
            free(*item);
            *item = xasprintf("%s%s %s match=%s", dot ? "." : "", dom, lvl, name);
        }
        free(name);
    } else if (rc == 0) {
        free(*item);
        *item = xasprintf("%s%s %s", dot ? "." : "", dom, lvl);
    }
    free(dom);
    free(lvl);
    return rc;
}

/* conf_value_smarthost_auth - empty, or "USER FILE": a user without controls and the
 * absolute path of the file holding the password. */
static int
conf_value_smarthost_auth(char **item, char *reason, size_t len)
{
    char *v = *item, *sp;
    size_t ulen;

    if (*v == '\0')
        return 0;
    sp = v + strcspn(v, " \t");
    ulen = (size_t)(sp - v);
    sp += strspn(sp, " \t");
    if (*sp == '\0' || sp[strcspn(sp, " \t")] != '\0') {
        snprintf(reason, len, "'%s' is not USER FILE (the user, then the password file)", v);
        return -1;
    }
    for (size_t i = 0; i < ulen; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            snprintf(reason, len, "the user holds a control character");
            return -1;
        }
    if (*sp != '/') {
        snprintf(reason, len, "the password file '%s' is not an absolute path", sp);
        return -1;
    }
    *item = xasprintf("%.*s %s", (int)ulen, v, sp);
    free(v);
    return 0;
}

/* conf_value_milter - a milter address (milter_addr.h). */
static int
conf_value_milter(char **item, char *reason, size_t len)
{
    struct milter_addr a;
    const char *why;

    if (milter_addr_parse(*item, &a, &why))
        return 0;
    snprintf(reason, len, "milter address '%s': %s", *item, why);
    return -1;
}

/* conf_value_milter_options - "ADDRESS key=value ..." (milter_addr.h). */
static int
conf_value_milter_options(char **item, char *reason, size_t len)
{
    struct milter_opts o;
    char addr[MILTER_ADDR_MAX + 8];

    return milter_opts_parse(*item, addr, sizeof(addr), &o, reason, len) ? 0 : -1;
}

/* conf_value_alias_domain - alias_file_domain "DOMAIN FILE", either order (alias.h). */
static int
conf_value_alias_domain(char **item, char *reason, size_t len)
{
    char *v = alias_file_arg(*item, reason, len);

    if (v == NULL)
        return -1;
    free(*item);
    *item = v;
    return 0;
}

/* conf_value_use_drop - DMail's use_drop: true/false (and the boolean spellings) stored as
 * "true"/"false"; mbox or maildir (this project's older meaning: mailbox_format) kept. */
static int
conf_value_use_drop(char **item, char *reason, size_t len)
{
    bool b;
    char why[CONF_REASON_MAX];

    if ((*item)[0] == '\0') /* unset */
        return 0;
    if (strcasecmp(*item, "mbox") == 0 || strcasecmp(*item, "maildir") == 0) {
        for (char *p = *item; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        return 0;
    }
    if (conf_value_bool(*item, &b, why, sizeof why) < 0) {
        snprintf(reason, len, "'%s' is not true, false, mbox or maildir", *item);
        return -1;
    }
    free(*item);
    *item = xstrdup(b ? "true" : "false");
    return 0;
}

/* Checks and normalisation of single list items (and strings), by setting. */
typedef int (*conf_value_fn)(char **item, char *reason, size_t len);

static const conf_value_fn conf_value_hooks[CONF_NSETTINGS] = {
    [CONF_host_domain] = conf_value_domain,
    [CONF_listen] = conf_value_ipaddr,
    [CONF_forward_from_ip] = conf_value_ippattern,
    [CONF_forward_from] = conf_value_domain,
    [CONF_ban_ip] = conf_value_ippattern,
    [CONF_ban_ip_except] = conf_value_ippattern,
    [CONF_ban_mailfrom] = conf_value_addrpattern,
    [CONF_ban_rcptto] = conf_value_addrpattern,
    [CONF_fromip_nolimit] = conf_value_ippattern,
    [CONF_user_ip_address] = conf_value_ippattern,
    [CONF_manager_ip_address] = conf_value_ippattern,
    [CONF_manager_ip_name] = conf_value_hostpattern,
    [CONF_bomb_exception_ip] = conf_value_ippattern,
    [CONF_bomb_exception_from] = conf_value_addrpattern,
    [CONF_bomb_exception_to] = conf_value_addrpattern,
    [CONF_rbl_ban] = conf_value_domain,
    [CONF_rbl_reject] = conf_value_domain,
    [CONF_rbl_vanish] = conf_value_domain,
    [CONF_rbl_except_ip] = conf_value_rbl_ip,
    [CONF_rbl_except_mail] = conf_value_rbl_addr,
    [CONF_rbl_except_rcpt] = conf_value_rbl_addr,
    [CONF_relay_to] = conf_value_domain,
    [CONF_dns_host] = conf_value_dnshost,
    [CONF_smarthost] = conf_value_smarthost,
    [CONF_gateway] = conf_value_gateway,
    [CONF_tls_policy] = conf_value_tls_policy,
    [CONF_smarthost_auth] = conf_value_smarthost_auth,
    [CONF_milters] = conf_value_milter,
    [CONF_milter_options] = conf_value_milter_options,
    [CONF_alias_file_domain] = conf_value_alias_domain,
    [CONF_vdomain] = vdomain_conf_item,
    [CONF_alt_drop_path] = vdomain_conf_alt,
    [CONF_vdomain_separator] = vdomain_conf_sep,
    [CONF_use_drop] = conf_value_use_drop,
    [CONF_mta_sts_ca] = conf_value_abspath,
    [CONF_tls_rpt_from] = conf_value_mailbox,
    [CONF_dlist_http_url] = conf_value_http_url,
};

/* conf_value_item - check and normalise one list item of setting id (most have no check). */
int
conf_value_item(int id, char **item, char *reason, size_t len)
{
    if (conf_value_hooks[id] == NULL)
        return 0;
    return conf_value_hooks[id](item, reason, len);
}

/* conf_value_format_size - bytes with the largest exact suffix (bare numbers for drop_max are KB).
 */
static int
conf_value_format_size(unsigned long long v, bool kb, char *buf, size_t len)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        unsigned long long m = 1ULL << (10 * (3 - i));
        if (v != 0 && v % m == 0)
            return snprintf(buf, len, "%llu%c", v / m, units[i]);
    }
    return snprintf(buf, len, kb && v != 0 ? "%lluB" : "%llu", v);
}

/* conf_value_format_time - seconds with the largest exact unit. */
static int
conf_value_format_time(long v, char *buf, size_t len)
{
    static const struct {
        long secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    for (size_t i = 0; i < 3; i++)
        if (v != 0 && v % units[i].secs == 0)
            return snprintf(buf, len, "%ld%c", v / units[i].secs, units[i].unit);
    return snprintf(buf, len, "%ld", v);
}

/* conf_format - the value in force of one setting as it would be written, into buf. */
int
conf_format(const struct conf *c, enum conf_setting_id id, char *buf, size_t len)
{
    const struct conf_setting *row;
    const void *field;
    int n = 0;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    if ((int)id < 0 || id >= CONF_NSETTINGS || c == NULL)
        return -1;
    row = &conf_settings[id];
    field = conf_field(c, id);
    switch (row->type) {
    case CT_BOOL:
        n = snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    case CT_INT:
        n = snprintf(buf, len, "%ld", *(const long *)field);
        break;
    case CT_SIZE:
        n = conf_value_format_size(*(const unsigned long long *)field, id == CONF_drop_max, buf,
                                   len);
        break;
    case CT_TIME:
        n = conf_value_format_time(*(const long *)field, buf, len);
        break;
    case CT_STR: {
        const char *s = *(char *const *)field;
        n = snprintf(buf, len, "%s", s ? s : "");
        break;
    }
    case CT_LIST: {
        const struct conf_list *l = field;
        size_t off = 0;
        for (size_t i = 0; i < l->n; i++) {
            int k = snprintf(buf + off, len - off, "%s%s", i ? "," : "", l->v[i]);
            if (k < 0 || (size_t)k >= len - off)
                return -1;
            off += (size_t)k;
        }
        return 0;
    }
    case CT_ROUTE:
        return route_format(*(struct route *const *)field, buf, len);
    case CT_DKIM:
        return dkim_keys_format(*(struct dkim_keys *const *)field, buf, len);
    case CT_ENUM: {
        const char *p = row->choices;
        int want = *(const int *)field;
        for (int i = 0; i < want && p != NULL; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        if (p == NULL)
            return -1;
        n = snprintf(buf, len, "%.*s", (int)strcspn(p, "|"), p);
        break;
    }
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* conf_list_has - case-insensitive membership test. */
bool
conf_list_has(const struct conf_list *l, const char *s)
{
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0)
            return true;
    return false;
}

/* conf_domain_listed - domain, normalised as a host_domain entry, is in l (or, with
 * main_domain not NULL and l empty, equal to it). */
static bool
conf_domain_listed(const struct conf_list *l, const char *domain, const char *main_domain)
{
    char *d;
    char reason[CONF_REASON_MAX];
    bool listed;

    if (domain == NULL || *domain == '\0')
        return false;
    d = xstrdup(domain);
    if (conf_value_domain(&d, reason, sizeof(reason)) < 0) {
        free(d);
        return false;
    }
    listed = conf_list_has(l, d) ||
             (main_domain != NULL && l->n == 0 && strcasecmp(d, main_domain) == 0);
    free(d);
    return listed;
}

/* conf_is_local_domain - domain (A-label or U-label, any case, final dot allowed) is local. */
bool
conf_is_local_domain(const struct conf *c, const char *domain)
{
    return c != NULL && (conf_domain_listed(&c->host_domain, domain, c->main_domain) ||
                         vdomain_find(c, domain, NULL));
}

/* conf_domain_in - domain (as for conf_is_local_domain) is one of the domains of list
 * setting l (relay_to, forward_from). */
bool
conf_domain_in(const struct conf_list *l, const char *domain)
{
    return l != NULL && conf_domain_listed(l, domain, NULL);
}

/* conf_value_glob - '*' matches any run of characters; everything else itself, any case. */
static bool
conf_value_glob(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;

    while (*s != '\0') {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (tolower((unsigned char)*pat) == tolower((unsigned char)*s)) {
            pat++;
            s++;
        } else if (star != NULL) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* conf_value_ip_entry - one pattern (without "!") against the address text and its binary. */
static bool
conf_value_ip_entry(const char *pat, const char *ip, int family, const unsigned char *bin)
{
    unsigned char pbin[16];
    int pfamily, bits;

    if (strcmp(pat, "*") == 0)
        return true;
    if (strchr(pat, '/') != NULL) {
        if (family == 0 || conf_value_cidr(pat, &pfamily, pbin, &bits) < 0 || pfamily != family)
            return false;
        int full = bits / 8, rest = bits % 8;
        if (memcmp(pbin, bin, (size_t)full) != 0)
            return false;
        if (rest == 0)
            return true;
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        return (pbin[full] & mask) == (bin[full] & mask);
    }
    if (strchr(pat, '*') != NULL)
        return conf_value_glob(pat, ip);
    if (family != 0 && inet_pton(family, pat, pbin) == 1)
        return memcmp(pbin, bin, family == AF_INET ? 4 : 16) == 0;
    return strcasecmp(pat, ip) == 0;
}

/* conf_ip_rule - DMail wildcard list match; "!" negates; first matching entry wins: the
 * entry that matched positively, or NULL. */
const char *
conf_ip_rule(const struct conf_list *l, const char *ip)
{
    unsigned char bin[16];
    int family = 0;

    if (l == NULL || ip == NULL)
        return NULL;
    /* an IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d */
    if (strncasecmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.') != NULL &&
        inet_pton(AF_INET, ip + 7, bin) == 1)
        ip += 7;
    if (inet_pton(AF_INET, ip, bin) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, ip, bin) == 1)
        family = AF_INET6;
    for (size_t i = 0; i < l->n; i++) {
        const char *pat = l->v[i];
        bool neg = *pat == '!';
        if (conf_value_ip_entry(pat + neg, ip, family, bin))
            return neg ? NULL : pat;
    }
    return NULL;
}

/* conf_ip_match - conf_ip_rule found a positive entry. */
bool
conf_ip_match(const struct conf_list *l, const char *ip)
{
    return conf_ip_rule(l, ip) != NULL;
}

/* conf_addr_rule - address wildcard list match ('*' any run, any case; "!" negates; first
 * matching entry wins): the entry that matched positively, or NULL. */
const char *
conf_addr_rule(const struct conf_list *l, const char *addr)
{
    if (l == NULL || addr == NULL)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        const char *pat = l->v[i];
        bool neg = *pat == '!';
        if (conf_value_glob(pat + neg, addr))
            return neg ? NULL : pat;
    }
    return NULL;
}
