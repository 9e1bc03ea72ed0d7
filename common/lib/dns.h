/*
 * dns - asynchronous DNS lookups on the libuv loop (c-ares): MX with the RFC 5321 rules,
 * addresses (A and AAAA), A alone with its TTL (DNSBL), TXT, PTR, TLSA, each with whether
 * the resolver validated it (DNSSEC's AD bit).
 *
 * Contract:
 * - Owns: struct dns, its c-ares channel, the uv handles that drive it (one uv_poll per
 *   c-ares socket, a timer for c-ares's timeouts and the lookups' deadlines, an idle
 *   handle that delivers results) and every struct dns_query until its callback has run.
 * - Blocks on: nothing, and starts no thread: c-ares's sockets are watched by the loop
 *   given to dns_new. dns_new reads /etc/resolv.conf when no servers are given.
 * - Callbacks: each lookup's callback is called exactly once, from the loop, never from
 *   inside the dns_* call that started it, unless the lookup is cancelled first
 *   (dns_cancel, dns_free): then it is never called.
 * - Frees: the struct dns_result handed to a callback belongs to the callback, which frees
 *   it with dns_result_free (at once or later). The struct dns_query is freed by dns after
 *   the callback returns, or by dns_cancel: the handle is valid only until then.
 * - Deadline: a lookup ends within the timeout given to dns_new (DNS_TEMPFAIL, "timeout"
 *   if no answer came by then), whatever the number of servers and tries; an MX lookup
 *   that falls back to the domain's addresses has the same single deadline.
 * - dns_free drops every pending lookup without calling its callback (as dns_cancel does);
 *   the callers free their own contexts. The memory is released on the loop's next turn:
 *   run the loop once more (uv_run) before uv_loop_close.
 *
 * Details:
 * - Names are looked up as given (no search list, no /etc/hosts); a final dot is allowed.
 *   The server follows CNAMEs (recursive resolvers do): the records of the name the CNAME
 *   chain ends at are returned, under the name that was asked; for addresses r->cname
 *   also names where the chain ended (DANE's TLSA base name, RFC 7672 2.2.3).
 * - Status classes: DNS_OK; for MX also DNS_IMPLICIT and DNS_NULLMX; DNS_NXDOMAIN and
 *   DNS_NODATA are permanent (the name does not exist / has no such records);
 *   DNS_TEMPFAIL is SERVFAIL, REFUSED, a timeout, no server reachable, a malformed
 *   answer: try again later. A syntactically impossible name is DNS_NXDOMAIN ("bad name").
 * - MX: exchangers by preference, lowest first, equal preferences in a random order
 *   (RFC 5321 5.1). No MX record but an A or AAAA record: DNS_IMPLICIT, one exchanger,
 *   the domain itself with preference 0. Neither: DNS_NODATA. Only MX records whose
 *   exchange is "." (RFC 7505 null MX): DNS_NULLMX, no exchangers; "." records next to real
 *   ones are left out.
 * - Addresses: A and AAAA are asked in parallel; IPv6 addresses come first, then IPv4, each
 *   family in the server's order. One family answering is enough for DNS_OK (the other's
 *   failure is ignored); otherwise a temporary failure of either wins over NXDOMAIN, which
 *   wins over NODATA.
 * - A (dns_a): IPv4 addresses only, and the least TTL of the records (a DNSBL's listing
 *   codes and how long they may be cached); NXDOMAIN / NODATA as above.
 * - TXT: one string per record, its character-strings joined (as SPF needs); a string is
 *   cut at a NUL byte in the record.
 * - PTR: the names of the PTR records of a name (dns_reverse_name makes it from an
 *   address), without final dots, duplicates left out, at most DNS_MAXPTR of them.
 * - FCrDNS (dns_fcrdns): an address's first PTR name, then that name's addresses (AAAA+A)
 *   under the same single deadline; confirmed when one of them is the address (an
 *   IPv4-mapped IPv6 address counts as IPv4). Only the first PTR name is tried (as
 *   Postfix does); a name that is not a plain host name (letters, digits, '-', '_', '.')
 *   counts as none (DNS_NODATA, "bad-name").
 * - TLSA (dns_tlsa, RFC 6698): the records of the name asked ("_25._tcp.mx.example"), the
 *   association data as bytes; at most DNS_MAXTLSA_KEPT of them.
 * - DNSSEC: every query goes out with EDNS0 and the AD bit set (RFC 6840 5.7); r->secure
 *   says the resolver set AD on every answer the result was made of (for addresses, the
 *   families that gave records; for an implicit MX, also the MX answer's denial). Only a
 *   local validating resolver's AD bit means anything (RFC 6698 4.1: the path to it must
 *   be trusted): dns_host names it. A bogus answer comes from such a resolver as
 *   SERVFAIL: DNS_TEMPFAIL (c-ares asks the next server then; when every server has
 *   failed the why is "SERVFAIL or no server reachable").
 */
#ifndef DMAIL_DNS_H
#define DMAIL_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <uv.h>

struct dns;
struct dns_query;

enum dns_status {
    DNS_OK,       /* records found */
    DNS_IMPLICIT, /* MX: no MX records, the domain has addresses: it is its own exchanger */
    DNS_NULLMX,   /* MX: null MX (RFC 7505), the domain takes no mail: permanent */
    DNS_NXDOMAIN, /* no such name: permanent */
    DNS_NODATA,   /* the name exists without such records: permanent */
    DNS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, no server: try later */
};

enum dns_kind { DNS_MX, DNS_ADDR, DNS_TXT, DNS_PTR, DNS_A, DNS_FCRDNS, DNS_TLSA };

#define DNS_MAXPTR 16       /* PTR names kept */
#define DNS_MAXTLSA_KEPT 32 /* TLSA records kept */
#define DNS_REVERSE_MAX 80  /* dns_reverse_name's buffer, final NUL included */

struct dns_mx {
    char *host; /* without a final dot */
    int pref;
};

struct dns_addr {
    int family;                  /* AF_INET6 or AF_INET */
    struct sockaddr_storage sa;  /* sockaddr_in6 or sockaddr_in, port 0 */
    char text[INET6_ADDRSTRLEN]; /* "2001:db8::1", "192.0.2.1" */
};

struct dns_tlsa {
    unsigned char usage, selector, mtype; /* RFC 6698 2.1.1-2.1.3 */
    unsigned char *data;                  /* the certificate association data */
    size_t len;
};

struct dns_result {
    enum dns_kind kind;
    enum dns_status status;
    const char *why; /* static text for logs: "ok", "NXDOMAIN", "timeout", "SERVFAIL"... */
    char *name;      /* the name asked, as given */
    size_t n;        /* entries in the one array of this kind (0 unless OK/IMPLICIT) */
    struct dns_mx *mx;
    struct dns_addr *addr;
    char **txt;
    char **ptr;            /* DNS_PTR */
    long ttl;              /* DNS_A with DNS_OK: the least TTL of the records, in seconds; else 0 */
    bool confirmed;        /* DNS_FCRDNS with DNS_OK: ptr[0]'s addresses include the address */
    struct dns_tlsa *tlsa; /* DNS_TLSA */
    char *cname;           /* DNS_ADDR with DNS_OK: the name a CNAME chain ended at (the
                            * records' owner, no final dot), NULL when it is the name asked */
    bool secure;           /* DNSSEC-validated (the AD bit): see above */
};

typedef void (*dns_cb)(struct dns_result *r, void *arg);

/* dns_new - a resolver on loop. servers: dns_host's list, "host[:port]" items separated
 * by commas and/or white space, IPv4 ("192.0.2.53", "192.0.2.53:5353") or IPv6 ("::1",
 * "[::1]:5353"); NULL or "" uses /etc/resolv.conf. timeout_ms: the longest a lookup takes
 * (at least 100); tries: how often each server is asked within it (1 to 10). Returns NULL
 * with err filled on a bad server list or a c-ares failure. */
struct dns *dns_new(uv_loop_t *loop, const char *servers, long timeout_ms, int tries, char *err,
                    size_t errlen);
/* dns_servers_check - 0 if dns_new would take servers, else -1 with err filled ("'x' is
 * not an IP address with an optional port"); for checking dns_host when a file is read. */
int dns_servers_check(const char *servers, char *err, size_t errlen);
/* dns_free - drop every pending lookup (no callback), close; sets *d to NULL. */
void dns_free(struct dns **d);

/* dns_mx, dns_addr, dns_txt - start a lookup of name; cb(result, arg) follows from the
 * loop. Never NULL. */
struct dns_query *dns_mx(struct dns *d, const char *domain, dns_cb cb, void *arg);
struct dns_query *dns_addr(struct dns *d, const char *host, dns_cb cb, void *arg);
struct dns_query *dns_txt(struct dns *d, const char *name, dns_cb cb, void *arg);
/* dns_ptr - the PTR names of name ("7.2.0.192.in-addr.arpa"); as dns_txt. */
struct dns_query *dns_ptr(struct dns *d, const char *name, dns_cb cb, void *arg);
/* dns_reverse_name - the PTR name of an IPv4 or IPv6 address in text ("192.0.2.7" ->
 * "7.2.0.192.in-addr.arpa"; an IPv4-mapped IPv6 address is taken as IPv4) into buf of
 * at least DNS_REVERSE_MAX bytes; 0, or -1 if ip is not an address. */
int dns_reverse_name(const char *ip, char *buf, size_t len);
/* dns_fcrdns - forward-confirmed reverse DNS of ip ("192.0.2.7", "2001:db8::1"): r->name
 * is ip; DNS_OK: the PTR name in r->ptr[0] (r->n 1) and r->confirmed whether its addresses
 * include ip (no addresses: not confirmed); DNS_NXDOMAIN / DNS_NODATA: no usable PTR name;
 * DNS_TEMPFAIL: either lookup failed temporarily or the deadline passed. NULL (and no
 * callback) if ip is not an IP address. */
struct dns_query *dns_fcrdns(struct dns *d, const char *ip, dns_cb cb, void *arg);
/* dns_a - A records only (no AAAA asked), with their TTL (r->ttl): DNSBL queries. The
 * addresses come in r->addr, in the server's order. */
struct dns_query *dns_a(struct dns *d, const char *name, dns_cb cb, void *arg);

/* dns_tlsa - the TLSA records of name ("_25._tcp.mx.example.org"); r->secure says
 * whether they (or their absence) were validated. */
struct dns_query *dns_tlsa(struct dns *d, const char *name, dns_cb cb, void *arg);

/* dns_cancel - forget a lookup whose callback has not run: it never will. The handle is
 * invalid afterwards. Calling it from the lookup's own callback is a mistake. */
void dns_cancel(struct dns_query *q);

/* dns_result_free - free a result given to a callback; sets *r to NULL. */
void dns_result_free(struct dns_result **r);

/* dns_status_name - "ok", "implicit MX", "null MX", "NXDOMAIN", "no data", "temporary
 * failure". */
const char *dns_status_name(enum dns_status s);

#endif
