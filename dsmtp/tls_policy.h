/*
 * tls_policy - the TLS policy of one outbound destination: how an SMTP session to it
 * must be protected (Postfix's smtp_tls_policy_maps levels), decided in one place for
 * outq_dest.c from the `tls_policy` table and the smarthost_tls setting; outq_dest.c
 * adds what DANE (dane.h) and MTA-STS (mtasts.h) find for a destination.
 *
 * Contract:
 * - Owns: nothing; results go into caller-provided storage. Blocks on nothing; pure.
 * - tlspol_for: a destination is a domain (delivered by its MX) or a smarthost/gateway
 *   spec (nexthop.h). The `tls_policy` entry whose key is the domain (for a spec: the
 *   spec's host) wins; else the nearest ".parent" entry; else, for a spec, smarthost_tls
 *   (require: encrypt, may: may); else may. The source says which one decided.
 * - Levels (as Postfix): none never STARTTLS; may STARTTLS when offered, plaintext when
 *   not (and once more in plaintext after a failed handshake); encrypt TLS mandatory, the
 *   certificate not checked; dane uses the MX host's DNSSEC-validated TLSA records when
 *   there are usable ones, else may; dane-only needs usable TLSA records (none: deferred
 *   4.7.5); verify TLS mandatory and the certificate must verify (smtp_tls_ca_file or the
 *   system's CA store) for the match name, by default the MX host's name (for a spec, its
 *   host); secure as verify, the match name by default the destination domain itself
 *   (the MX name taken from DNS is not trusted).
 * - tlspol_smtpc turns a policy into smtpc's (smtpc.h) for one host: the level, and the
 *   name for SNI and verification.
 * - Every refusal a level makes defers (4.7.x); none ever falls back to plaintext except
 *   may (and dane without usable TLSA, which is may).
 */
#ifndef DSMTP_TLS_POLICY_H
#define DSMTP_TLS_POLICY_H

#include <stdbool.h>

#include "smtpc.h"

struct conf;

#define TLSPOL_NAME_MAX 254

enum tlspol_level {
    TLSPOL_NONE,
    TLSPOL_MAY,
    TLSPOL_ENCRYPT,
    TLSPOL_DANE,
    TLSPOL_DANE_ONLY,
    TLSPOL_VERIFY,
    TLSPOL_SECURE,
};

struct tlspol {
    enum tlspol_level level;
    char match[TLSPOL_NAME_MAX]; /* match=NAME of the entry, "" the level's default */
    const char *source;          /* "tls_policy", "smarthost_tls" or "default" (static) */
};

/* tlspol_for - the policy of a destination: domain (by MX) or spec's host (relay). */
void tlspol_for(const struct conf *cf, const char *domain, bool relay, struct tlspol *p);
/* tlspol_level_name - "none", "may", ... */
const char *tlspol_level_name(enum tlspol_level level);
/* tlspol_smtpc - smtpc's policy for host (of the destination domain) under p, and in
 * *name the name for SNI and verification (p's, host's or domain's storage). */
enum smtpc_tls tlspol_smtpc(const struct tlspol *p, const char *host, const char *domain,
                            const char **name);
/* tlspol_mandatory - the level never sends in plaintext. */
bool tlspol_mandatory(const struct tlspol *p);

/* tlspol_dane - DANE is wanted under p: tls_policy dane or dane-only, or smtp_dane for a
 * destination no tls_policy line names (p's source is "default"). */
bool tlspol_dane(const struct conf *cf, const struct tlspol *p);

#endif
