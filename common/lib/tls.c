/*
 * tls - OpenSSL server and client contexts (the contract is in tls.h).
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

/* tls_fail - "SETTING PATH: reason", the reason being the first error OpenSSL queued
 * (the root cause: "No such file or directory", "no start line", ...). */
static void
tls_fail(char *err, size_t errlen, const char *setting, const char *path, const char *dflt)
{
    unsigned long e = ERR_get_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(err, errlen, "%s %s: %s", setting, path, why != NULL ? why : dflt);
    ERR_clear_error();
}

/* tls_readable - 0 when path opens for reading; else -1 with err "SETTING PATH: strerror"
 * (OpenSSL's own message for a file it cannot open hides the OS reason). */
static int
tls_readable(const char *setting, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    char c;

    if (fd < 0 || read(fd, &c, 1) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "%s %s: %s", setting, path, strerror(e));
        return -1;
    }
    close(fd);
    return 0;
}

/* tls_set - v, or dflt when v is NULL or empty. */
static const char *
tls_set(const char *v, const char *dflt)
{
    return v != NULL && v[0] != '\0' ? v : dflt;
}

/* tls_server_policy - protocol floor and cipher lists of pol on ctx; -1 with err. */
static int
tls_server_policy(SSL_CTX *ctx, const struct tls_policy *pol, char *err, size_t errlen)
{
    const char *ciphers = tls_set(pol != NULL ? pol->ciphers : NULL, TLS_DEFAULT_CIPHERS);
    const char *suites = tls_set(pol != NULL ? pol->ciphersuites : NULL, NULL);
    bool v13 = pol != NULL && pol->tls13_only;

    if (SSL_CTX_set_min_proto_version(ctx, v13 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1) {
        tls_fail(err, errlen, "tls_min_version", v13 ? "TLSv1.3" : "TLSv1.2",
                 "cannot set the minimum TLS version");
        return -1;
    }
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        tls_fail(err, errlen, "tls_ciphers", ciphers, "no cipher matches");
        return -1;
    }
    if (suites != NULL && SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
        tls_fail(err, errlen, "tls_ciphersuites", suites, "no cipher suite matches");
        return -1;
    }
    SSL_CTX_set_dh_auto(ctx, 1); /* DHE suites get a safe group of the key's strength */
    return 0;
}

/* tls_server_ctx - a context for cert (PEM chain) and key: TLS 1.2 and 1.3 only (or 1.3
 * only), forward-secret AEAD ciphers unless pol says otherwise, the server's cipher order,
 * no compression, no renegotiation. */
SSL_CTX *
tls_server_ctx(const char *cert, const char *key, const struct tls_policy *pol, char *err,
               size_t errlen)
{
    static const unsigned char sid_ctx[] = "dmail";
    SSL_CTX *ctx;

    if (tls_readable("tls_cert", cert, err, errlen) < 0 ||
        tls_readable("tls_key", key, err, errlen) < 0)
        return NULL;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_fail(err, errlen, "tls_cert", cert, "cannot create a TLS context");
        return NULL;
    }
    if (tls_server_policy(ctx, pol, err, errlen) != 0)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* idle connections give their read/write buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_fail(err, errlen, "tls_cert", cert, "cannot load the certificate");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_fail(err, errlen, "tls_key", key, "cannot load the private key");
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(err, errlen, "tls_key", key, "does not match the certificate");
        goto fail;
    }
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_client_ctx - a client context: TLS 1.2 and 1.3 only, no compression, no
 * renegotiation, the system's CA store, verification recorded but not enforced. */
SSL_CTX *
tls_client_ctx(char *err, size_t errlen)
{
    SSL_CTX *ctx;
    const char *why;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    why = "cannot create a TLS context";
    if (ctx == NULL)
        goto fail;
    why = "cannot set the minimum TLS version";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    why = "cannot load the system's CA store";
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;

fail:
    tls_fail(err, errlen, "TLS client", "context", why);
    SSL_CTX_free(ctx);
    return NULL;
}
