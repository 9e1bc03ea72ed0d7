/*
 * tls - OpenSSL contexts: a server's from settings, and the one for outbound connections.
 *
 * Contract:
 * - Owns: nothing beyond the SSL_CTX it returns (the caller frees it with SSL_CTX_free;
 *   net takes its own references).
 * - Blocks on: reading the certificate and key files, or the system's CA store (start-up
 *   or reload, off the loop).
 * - Contexts allow TLS 1.2 and 1.3 only and disable compression and renegotiation; a
 *   server context prefers the server's cipher order and, unless its policy says
 *   otherwise, offers forward-secret AEAD suites only (TLS_DEFAULT_CIPHERS).
 * - A client context trusts the system's CA store but verifies in SSL_VERIFY_NONE mode:
 *   opportunistic STARTTLS must not fail on a self-signed or expired certificate (RFC
 *   7435). The result is kept all the same: net_tls_verified() (net.h) tells whether the
 *   chain verified and matched the host, for a policy that demands it. A caller may add
 *   trust (SSL_CTX_load_verify_locations) or demand verification (SSL_CTX_set_verify).
 */
#ifndef DMAIL_TLS_H
#define DMAIL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

/* The server's protocol and cipher policy (settings tls_min_version, tls_ciphers,
 * tls_ciphersuites); a NULL or empty field keeps the default below. */
struct tls_policy {
    bool tls13_only;          /* tls_min_version TLSv1.3; else TLS 1.2 and 1.3 */
    const char *ciphers;      /* TLS 1.2 cipher list, default TLS_DEFAULT_CIPHERS */
    const char *ciphersuites; /* TLS 1.3 suites, default OpenSSL's (all AEAD) */
};
/* Mozilla's "intermediate" list: forward-secret key exchange, AEAD ciphers only. */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-"            \
    "SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-"         \
    "POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* tls_server_ctx - a context for cert/key (PEM; the cert file may hold the chain) under
 * policy pol (NULL: the defaults). Returns NULL with err filled ("tls_cert /path: reason",
 * "tls_ciphers 'LIST': reason"); a file that cannot be opened or read gives the OS reason
 * ("tls_key /path: Permission denied"). */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const struct tls_policy *pol, char *err,
                        size_t errlen);
/* tls_client_ctx - a context for net_starttls_client (see above). Returns NULL with err
 * filled ("TLS client context: reason"). */
SSL_CTX *tls_client_ctx(char *err, size_t errlen);

#endif
