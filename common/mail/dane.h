/*
 * dane - DANE for outbound SMTP (RFC 7672, RFC 6698, RFC 7671): which TLSA records of an
 * MX host are usable, and OpenSSL's DANE verification of one TLS session by them.
 *
 * Contract:
 * - Owns: struct dane (a copy of the usable records and the TLSA base name). Pure but for
 *   OpenSSL calls on the SSL objects given; blocks on nothing.
 * - Whether DANE is wanted for a destination is dsmtp's policy (tlspol_dane in
 *   dsmtp/tls_policy.h); this module is shared with the SMTP client (smtpc.h).
 * - dane_from: the records of a TLSA answer that OpenSSL can use for SMTP: DANE-TA(2) and
 *   DANE-EE(3), selector Cert(0) or SPKI(1), matching Full(0) (non-empty), SHA2-256(1)
 *   (32 bytes) or SHA2-512(2) (64 bytes). PKIX-TA(0) and PKIX-EE(1) are not used for
 *   SMTP (RFC 7672 3.1.3), nor unknown values. *present says whether the answer held any
 *   record at all (records but none usable: TLS is still mandatory, unauthenticated,
 *   RFC 7672 2.2).
 * - dane_ctx_init: the client context may carry DANE sessions (SSL_CTX_dane_enable), with
 *   DANE-EE matches exempt from name checks (RFC 7672 3.1.1: neither names nor dates of
 *   a DANE-EE certificate matter).
 * - dane_ssl_setup: before the handshake, the SSL verifies by the records (SSL_dane_enable
 *   with the base name as reference identifier and SNI, alt as a second reference
 *   identifier (RFC 7672 3.2.2), SSL_dane_tlsa_add). 0, or -1.
 * - dane_ssl_auth: after the handshake, how the peer was authenticated: "dane-ee",
 *   "dane-ta", or NULL (no record matched, or the chain did not verify to a DANE-TA
 *   trust anchor).
 */
#ifndef DMAIL_DANE_H
#define DMAIL_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "dns.h"

struct dane {
    char base[256]; /* the TLSA base name: the MX host, or its CNAME target */
    char alt[256];  /* the other of the two when the MX host is an alias, else "" */
    size_t n;
    struct dns_tlsa *tlsa; /* copies */
};

/* dane_from - the usable records of r (a DNS_TLSA result with DNS_OK) for host, or NULL
 * when none is usable; *present: r held records. */
struct dane *dane_from(const struct dns_result *r, const char *host, bool *present);
/* dane_dup - a copy of d (NULL for NULL). */
struct dane *dane_dup(const struct dane *d);
/* dane_free - free *d, set it to NULL. */
void dane_free(struct dane **d);
/* dane_ctx_init - allow DANE sessions on a client context; 0, or -1. */
int dane_ctx_init(SSL_CTX *ctx);
/* dane_ssl_setup - ssl (not handshaken yet) verifies by d's records; 0, or -1. */
int dane_ssl_setup(SSL *ssl, const struct dane *d);
/* dane_ssl_auth - "dane-ee", "dane-ta", or NULL: see above. */
const char *dane_ssl_auth(SSL *ssl);

#endif
