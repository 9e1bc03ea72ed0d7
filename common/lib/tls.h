/*
 * tls - OpenSSL server contexts from settings.
 *
 * Contract:
 * - Owns: nothing beyond the SSL_CTX it returns (the caller frees it with SSL_CTX_free;
 *   net takes its own references).
 * - Blocks on: reading the certificate and key files (start-up or reload, off the loop).
 * - Contexts allow TLS 1.2 and 1.3 only, prefer the server's cipher order, and disable
 *   compression and renegotiation.
 */
#ifndef DMAIL_TLS_H
#define DMAIL_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* tls_server_ctx - a context for cert/key (PEM; the cert file may hold the chain).
 * Returns NULL with err filled ("tls_cert /path: reason"). */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);

#endif
