/*
 * milter_addr - parsing of a filter's address and of its overrides. See milter_addr.h.
 */
#include "milter_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
fail(const char **why, const char *reason)
{
    *why = reason;
    return false;
}

/* milter_addr_host - a numeric host (or localhost) into a->where. */
static bool
milter_addr_host(const char *host, size_t hlen, struct milter_addr *a, const char **why)
{
    unsigned char bin[16];

    if (hlen == 0)
        return fail(why, "empty host");
    if (hlen >= sizeof(a->where))
        return fail(why, "host too long");
    memcpy(a->where, host, hlen);
    a->where[hlen] = '\0';
    if (strcasecmp(a->where, "localhost") == 0)
        snprintf(a->where, sizeof(a->where), "127.0.0.1");
    if (inet_pton(AF_INET, a->where, bin) != 1 && inet_pton(AF_INET6, a->where, bin) != 1)
        return fail(why, "the host must be a numeric address (or localhost)");
    return true;
}

bool
milter_addr_parse(const char *s, struct milter_addr *a, const char **why)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(s, "unix:", 5) == 0) {
        s += 5;
        if (s[0] != '/')
            return fail(why, "unix: needs an absolute path");
        if (strlen(s) >= sizeof(a->where))
            return fail(why, "socket path too long");
        a->unix_sock = true;
        strcpy(a->where, s);
        return true;
    }
    if (strncmp(s, "inet:", 5) != 0)
        return fail(why, "expected unix:/path or inet:host:port");
    s += 5;
    const char *host = s, *colon;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return fail(why, "unclosed '['");
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':')
            return fail(why, "expected inet:host:port");
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return fail(why, "expected inet:host:port");
        hlen = (size_t)(colon - s);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535)
        return fail(why, "port must be 1..65535");
    a->port = (int)port;
    return milter_addr_host(host, hlen, a, why);
}

/* milter_opts_time - "30", "30s", "2m", "1h": seconds in 1..3600, or -1. */
static long
milter_opts_time(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10), mul = 1;

    if (v[0] < '0' || v[0] > '9')
        return -1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mul = 60, end++;
    else if (*end == 'h')
        mul = 3600, end++;
    if (*end != '\0' || n < 1 || n > 3600 / mul)
        return -1;
    return n * mul;
}

bool
milter_opts_parse(const char *line, char *addr, size_t addrlen, struct milter_opts *o, char *reason,
                  size_t len)
{
    static const char *const actions[] = {"tempfail", "accept", "reject"};
    static const char *const keys[] = {"connect_timeout", "command_timeout", "content_timeout"};
    long *times[] = {&o->connect_timeout, &o->command_timeout, &o->content_timeout};
    size_t n = strcspn(line, " \t");
    struct milter_addr a;
    const char *why, *p;

    *o = (struct milter_opts){-1, -1, -1, -1};
    if (n >= addrlen) {
        snprintf(reason, len, "the milter address is too long");
        return false;
    }
    memcpy(addr, line, n);
    addr[n] = '\0';
    if (!milter_addr_parse(addr, &a, &why)) {
        snprintf(reason, len, "milter address '%s': %s", addr, why);
        return false;
    }
    for (p = line + n; *(p += strspn(p, " \t")) != '\0'; p += n) {
        char word[80], *eq;
        n = strcspn(p, " \t");
        snprintf(word, sizeof(word), "%.*s", (int)n, p);
        eq = strchr(word, '=');
        if (eq == NULL || n >= sizeof(word)) {
            snprintf(reason, len, "'%s' is not key=value", word);
            return false;
        }
        *eq++ = '\0';
        bool known = false;
        if (strcmp(word, "default_action") == 0) {
            for (int i = 0; i < 3; i++)
                if (strcasecmp(eq, actions[i]) == 0)
                    o->default_action = i, known = true;
            if (!known) {
                snprintf(reason, len, "default_action=%s: tempfail, accept or reject", eq);
                return false;
            }
            continue;
        }
        for (int i = 0; i < 3; i++)
            if (strcmp(word, keys[i]) == 0) {
                known = true;
                if ((*times[i] = milter_opts_time(eq)) < 0) {
                    snprintf(reason, len, "%s=%s: a time from 1s to 1h", word, eq);
                    return false;
                }
            }
        if (!known) {
            snprintf(reason, len,
                     "unknown option '%s' (default_action, connect_timeout, command_timeout, "
                     "content_timeout)",
                     word);
            return false;
        }
    }
    return true;
}
