/*
 * addr - RFC 5321 paths and mailboxes; domains as lower-case A-labels (libidn2).
 *
 * Contract:
 * - Owns: nothing; results go into caller-provided struct addr.
 * - Blocks on: nothing.
 * - Parsing follows RFC 5321 4.1.2: Dot-string or Quoted-string local parts (at most 64
 *   octets), domains or address literals ([192.0.2.1], [IPv6:...]) at most 255 octets,
 *   a source route (@a,@b:) is accepted and dropped. UTF-8 in the local part is accepted
 *   only when utf8 is true (SMTPUTF8); U-label domains are converted to A-labels.
 * - The local part keeps its case and is stored in canonical written form: a quoted local
 *   part whose content is a valid Dot-string loses its quotes ("john"@x -> john@x), any
 *   other is re-quoted with only '"' and '\' escaped. The 64-octet limit applies to the
 *   local part as the client wrote it.
 * - Domains: LDH labels of 1..63 octets, no empty label (no trailing dot), at most 255
 *   octets as A-labels; an "xn--" label must decode. Address literals must pass
 *   inet_pton(); "IPv6:" is written in that case; general (tagged) literals are refused.
 * - The RFC 5321 special case RCPT TO:<Postmaster> (no domain) is refused here ("missing
 *   @domain"); the SMTP session handles it.
 * - addr_parse_mailbox accepts UTF-8 local parts (local input: sendmail, users file).
 */
#ifndef DMAIL_ADDR_H
#define DMAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255

struct addr {
    char local[ADDR_LOCAL_MAX * 2 + 3]; /* as it must be written: quoted if needed */
    char domain[ADDR_DOMAIN_MAX + 1];   /* lower-case A-label or [literal]; "" for <> */
};

/* addr_parse_path - parse "<...>" at s (leading spaces skipped). allow_null accepts "<>"
 * (reverse path). *end points past ">". Returns 0, or -1 with a reason in err. */
int addr_parse_path(const char *s, bool allow_null, bool utf8, struct addr *out, const char **end,
                    char *err, size_t errlen);
/* addr_parse_mailbox - "local@domain" without brackets (whole string); a missing
 * "@domain" is an error unless default_domain is given. */
int addr_parse_mailbox(const char *s, const char *default_domain, struct addr *out, char *err,
                       size_t errlen);
/* addr_domain_normalize - a domain (U-label or A-label, any case) to its lower-case
 * A-label into out. Returns 0 or -1. */
int addr_domain_normalize(const char *in, char *out, size_t outlen);
/* addr_format - "local@domain" (or "" for the null path) into buf. */
char *addr_format(const struct addr *a, char *buf, size_t len);
/* addr_is_null - the null reverse path <>. */
bool addr_is_null(const struct addr *a);
/* addr_local_unquoted - the local part with quoting removed, into buf; lower-cased if
 * fold. Returns buf. */
char *addr_local_unquoted(const struct addr *a, bool fold, char *buf, size_t len);
/* addr_verp - the VERP sender (Postfix's XVERP) of sender for rcpt, both "local@domain":
 * sender's local part, delim[0], rcpt's local part, delim[1], rcpt's domain, '@', sender's
 * domain ("list-bounces+user=example.org@dom"), into buf. When that is no valid address
 * (a quoted local part, too long, no '@') or delim is NULL or "", sender as it is. Returns
 * buf. */
char *addr_verp(const char *sender, const char *rcpt, const char *delim, char *buf, size_t len);

#endif
