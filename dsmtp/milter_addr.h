/*
 * milter_addr - a filter's address as written in the milters setting, in Postfix's
 * syntax: "unix:/path/to/socket" or "inet:host:port" ("inet:[::1]:port" for IPv6).
 *
 * Contract:
 * - Owns: nothing; fills the caller's struct, copying the path or host into it.
 * - Blocks on: nothing (no name lookup: the host is kept as written).
 * - Returns false, with a short reason, for any other form: unknown scheme, empty or
 *   relative path, path or host too long, port not 1..65535, an unclosed '['.
 */
#ifndef DSMTP_MILTER_ADDR_H
#define DSMTP_MILTER_ADDR_H

#include <stdbool.h>

#define MILTER_ADDR_MAX 108 /* sizeof(sun_path) */

struct milter_addr {
    bool unix_sock;
    char where[MILTER_ADDR_MAX]; /* the socket path, or the host */
    int port;                    /* inet only */
};

/* milter_addr_parse - parses s into a; on failure *why says what is wrong. */
bool milter_addr_parse(const char *s, struct milter_addr *a, const char **why);

#endif
