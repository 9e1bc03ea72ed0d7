/*
 * nexthop - where outbound mail goes when not to its domain's MX: the `smarthost
 * HOST[:PORT]` and `gateway DOMAIN HOST[:PORT]` settings, in Postfix's nexthop syntax
 * (relayhost, transport_maps).
 *
 * Contract:
 * - Owns: nothing; results go into caller-provided storage. Blocks on nothing; pure
 *   and thread-safe.
 * - A spec is HOST, HOST:PORT, [HOST] or [HOST]:PORT. HOST is a domain name (LDH labels,
 *   '_' allowed, no empty label, at most 253 octets, ASCII; kept in lower case) or an IP
 *   address; an IPv6 address only in brackets. Bare HOST: HOST's MX records are looked up
 *   (its own addresses when it has none), as Postfix does; [HOST]: HOST's own addresses,
 *   no MX lookup. An IP address is used as it is in either form. PORT is 1..65535; 0 in
 *   struct nexthop when not given (the caller uses remote_smtp_port).
 * - nexthop_format writes the canonical spec back: the name in lower case, in brackets
 *   when it was given in brackets, an IP address always in brackets, ":PORT" only when
 *   given.
 * - Gateway entries are "KEY SPEC" (the gateway setting, conf.c keeps them one per line,
 *   KEY a lower-case A-label): KEY "example.org" matches that domain only; ".example.org"
 *   matches every subdomain of it, not example.org itself (Postfix transport_maps with
 *   parent_domain_matches_transport_maps off). nexthop_route: the exact domain's entry,
 *   else the nearest parent's ".parent" entry, else the smarthost, else NULL (the
 *   domain's own MX).
 */
#ifndef DMAIL_NEXTHOP_H
#define DMAIL_NEXTHOP_H

#include <stdbool.h>
#include <stddef.h>

#define NEXTHOP_HOST_MAX 253

struct conf;

struct nexthop {
    char host[NEXTHOP_HOST_MAX + 1]; /* name (lower case) or IP address, no brackets */
    int port;                        /* 0: not given */
    bool mx;                         /* bare name: look its MX up */
    bool ip;                         /* host is an IP address */
};

/* nexthop_parse - spec into nh; 0, or -1 with a reason ("'x' is not ..."). */
int nexthop_parse(const char *spec, struct nexthop *nh, char *reason, size_t len);

/* nexthop_format - the canonical spec of nh into buf; 0, or -1 when buf is too small. */
int nexthop_format(const struct nexthop *nh, char *buf, size_t len);

/* nexthop_route - the spec outbound mail for domain (A-label, any case) goes to: its
 * gateway entry, else cf's smarthost; NULL: the domain's own MX. Points into cf. */
const char *nexthop_route(const struct conf *cf, const char *domain);

#endif
