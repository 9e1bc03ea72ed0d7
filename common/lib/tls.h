/*
 * tls - OpenSSL contexts: a server's from settings, and the one for outbound connections.
 *
 * Contract:
 * - Owns: nothing beyond the SSL_CTX it returns (the caller frees it with SSL_CTX_free;
 *   net takes its own references).
 * - Blocks on: reading the certificate and key files, or the system's CA store (start-up
 *   or reload, off the loop).
 * - Contexts allow TLS 1.2 and 1.3 only and disable compression and renegotiation; a
 *   server context prefers the server's cipher order.
 * - A client context trusts the system's CA store but verifies in SSL_VERIFY_NONE mode:
 *   opportunistic STARTTLS must not fail on a self-signed or expired certificate (RFC
 *   7435). The result is kept all the same: net_tls_verified() (net.h) tells whether the
 *   chain verified and matched the host, for a policy that demands it. A caller may add
 *   trust (SSL_CTX_load_verify_locations) or demand verification (SSL_CTX_set_verify).
 */
#ifndef DMAIL_TLS_H
#define DMAIL_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* tls_server_ctx - a context for cert/key (PEM; the cert file may hold the chain).
 * Returns NULL with err filled ("tls_cert /path: reason"). */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);
/* tls_client_ctx - a context for net_starttls_client (see above). Returns NULL with err
 * filled ("TLS client context: reason"). */
SSL_CTX *tls_client_ctx(char *err, size_t errlen);

#endif
