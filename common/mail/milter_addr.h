/*
 * milter_addr - a filter's address as written in the milters setting, in Postfix's
 * syntax: "unix:/path/to/socket" or "inet:host:port" ("inet:[::1]:port" for IPv6), and
 * the per-filter overrides of a milter_options line ("ADDRESS key=value ...").
 *
 * Contract:
 * - Owns: nothing; fills the caller's structs, copying the path or host into them.
 * - Blocks on: nothing (no name lookup: the host must be a numeric address or
 *   "localhost", which means 127.0.0.1).
 * - Returns false, with a short reason, for any other form: unknown scheme, empty or
 *   relative path, path or host too long, a host that is not numeric, port not 1..65535,
 *   an unclosed '['; for options, an unknown key or a bad value.
 */
#ifndef DMAIL_MILTER_ADDR_H
#define DMAIL_MILTER_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MILTER_ADDR_MAX 108 /* sizeof(sun_path) */

struct milter_addr {
    bool unix_sock;
    char where[MILTER_ADDR_MAX]; /* the socket path, or the numeric host */
    int port;                    /* inet only */
};

/* What milter_default_action may say (its choices, in this order). */
enum milter_action { MILTER_TEMPFAIL, MILTER_ACCEPT, MILTER_REJECT };

/* Per-filter overrides; -1: not given (the global setting applies). */
struct milter_opts {
    int default_action;                                     /* enum milter_action */
    long connect_timeout, command_timeout, content_timeout; /* seconds */
};

/* milter_addr_parse - parses s into a; on failure *why says what is wrong. */
bool milter_addr_parse(const char *s, struct milter_addr *a, const char **why);

/* milter_opts_parse - a milter_options line: the address (its text up to the first blank
 * into addr, at most addrlen octets with its NUL) and the key=value words after it
 * (default_action=tempfail|accept|reject, connect_timeout=, command_timeout=,
 * content_timeout= with s/m/h suffixes, 1 s to 1 h). False with reason filled. */
bool milter_opts_parse(const char *line, char *addr, size_t addrlen, struct milter_opts *o,
                       char *reason, size_t len);

#endif
