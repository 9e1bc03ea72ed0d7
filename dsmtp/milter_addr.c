/*
 * milter_addr - parsing of a filter's address. See milter_addr.h.
 */
#include "milter_addr.h"

#include <stdlib.h>
#include <string.h>

static bool
fail(const char **why, const char *reason)
{
    *why = reason;
    return false;
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
    if (hlen == 0)
        return fail(why, "empty host");
    if (hlen >= sizeof(a->where))
        return fail(why, "host too long");
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535)
        return fail(why, "port must be 1..65535");
    memcpy(a->where, host, hlen);
    a->where[hlen] = '\0';
    a->port = (int)port;
    return true;
}
