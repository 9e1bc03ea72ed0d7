/*
 * net_tls - the TLS layer of connections (the contract is in net.h; net.c holds the
 * connections themselves): implicit TLS and STARTTLS, server and client side, the
 * handshake, SSL_read and SSL_write, the peer's verification.
 *
 * TLS runs over two memory BIOs: ciphertext read from the socket goes into the read BIO,
 * SSL_read moves plaintext into the input buffer, and whatever OpenSSL puts into the
 * write BIO is handed to uv_write. Both sides share all of it but the first step: the
 * server waits for the ClientHello, the client's handshake is started from the deferred
 * work (net_defer) so that its first flight, and any failure, come from the loop.
 */
#include "net.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "net_int.h"

#define NET_TLS_CHUNK (16 * 1024)   /* one SSL_read */
#define NET_TLS_WRITE_MAX (1 << 20) /* one SSL_write */

/* net_tls_reason - OpenSSL's reason for the failure just seen, then a clean queue. */
static const char *
net_tls_reason(int sslerr)
{
    unsigned long e = ERR_get_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    if (why != NULL)
        return why;
    return sslerr == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "unknown error";
}

/* net_tls_flush - send whatever OpenSSL wrote into the write BIO. */
static void
net_tls_flush(struct net_conn *c)
{
    BIO *wb = SSL_get_wbio(c->ssl);
    size_t n;

    while ((n = BIO_ctrl_pending(wb)) > 0) {
        struct net_wreq *w = net_wreq_new(c, n);
        int r = BIO_read(wb, w->data, (int)n);
        if (r <= 0) {
            free(w);
            break;
        }
        w->len = (size_t)r;
        if (c->state == NET_CS_DEAD)
            free(w);
        else
            net_wreq_send(c, w);
    }
}

/* net_tls_fail - the handshake or a record failed: warn, report, close. */
static void
net_tls_fail(struct net_conn *c, const char *what, int sslerr)
{
    const char *why = net_tls_reason(sslerr);

    net_set_error(c, "TLS %s failed: %s", what, why);
    log_warn("TLS %s with %s failed: %s", what, c->peer_ip, why);
    net_tls_flush(c); /* the alert, if OpenSSL wrote one */
    net_emit(c, NET_EV_ERROR);
    net_abort(c);
}

/* net_tls_attach - an SSL over memory BIOs for either side; 0, or -1 with net_error. */
static int
net_tls_attach(struct net_conn *c, SSL_CTX *ctx)
{
    BIO *rb, *wb;

    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL) {
        net_set_error(c, "SSL_new: %s", net_tls_reason(0));
        return -1;
    }
    rb = BIO_new(BIO_s_mem());
    wb = BIO_new(BIO_s_mem());
    if (rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(c->ssl);
        c->ssl = NULL;
        net_set_error(c, "BIO_new: %s", net_tls_reason(0));
        return -1;
    }
    BIO_set_mem_eof_return(rb, -1); /* empty means "wait for more", not EOF */
    BIO_set_mem_eof_return(wb, -1);
    SSL_set_bio(c->ssl, rb, wb);
    return 0;
}

/* net_tls_begin - attach a server-side SSL over memory BIOs; the handshake follows. */
int
net_tls_begin(struct net_conn *c, SSL_CTX *ctx)
{
    if (net_tls_attach(c, ctx) < 0)
        return -1;
    SSL_set_accept_state(c->ssl);
    c->tls = NET_TLS_HANDSHAKE;
    return 0;
}

/* net_tls_client_host - what the certificate must match: a name also goes out as SNI, an
 * IP literal is only matched (RFC 6066 allows no address in SNI). 0, or -1. */
static int
net_tls_client_host(struct net_conn *c, const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];

    if (host == NULL || *host == '\0')
        return 0;
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_set1_host(c->ssl, host) != 1)
        return -1;
    return 0;
}

/* net_tls_handshake - advance the handshake with what the read BIO holds; 1 done,
 * 0 wants more input, -1 failed (the connection is closing). */
static int
net_tls_handshake(struct net_conn *c)
{
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls = NET_TLS_ON;
        snprintf(c->tls_desc, sizeof(c->tls_desc), "%s cipher=%s", SSL_get_version(c->ssl),
                 SSL_get_cipher_name(c->ssl));
        net_tls_flush(c);
        return 1;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        net_tls_flush(c);
        return 0;
    }
    net_tls_fail(c, "handshake", e);
    return -1;
}

/* net_tls_read - handshake if needed, then move plaintext into the input buffer as far
 * as it fits (and only while reading is not paused); announce new input. */
void
net_tls_read(struct net_conn *c)
{
    char tmp[NET_TLS_CHUNK];
    bool got = false;

    if (c->tls == NET_TLS_HANDSHAKE) {
        if (net_tls_handshake(c) <= 0)
            return;
        if (c->cork == 0)
            net_stage_flush(c); /* written during the handshake: goes out first */
        net_emit(c, NET_EV_TLS_READY);
        if (c->state != NET_CS_OPEN)
            return;
    }
    c->tls_more = true;
    while (c->state == NET_CS_OPEN && !c->paused) {
        size_t room = buf_room(&c->in);
        int r, e;

        if (room == 0)
            break;
        ERR_clear_error();
        r = SSL_read(c->ssl, tmp, room < sizeof(tmp) ? (int)room : (int)sizeof(tmp));
        if (r > 0) {
            buf_append(&c->in, tmp, (size_t)r);
            got = true;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        net_tls_flush(c); /* key updates and the like */
        if (e == SSL_ERROR_WANT_READ) {
            c->tls_more = false;
            break;
        }
        c->tls_more = false;
        if (got)
            net_emit(c, NET_EV_DATA);
        if (e == SSL_ERROR_ZERO_RETURN) /* close_notify: the peer is done */
            net_input_end(c, UV_EOF);
        else if (c->state == NET_CS_OPEN)
            net_tls_fail(c, "read", e);
        return;
    }
    if (got)
        net_emit(c, NET_EV_DATA);
}

/* net_tls_input - ciphertext from the socket into the read BIO, then on with it. */
void
net_tls_input(struct net_conn *c, const char *p, size_t n)
{
    BIO_write(SSL_get_rbio(c->ssl), p, (int)n);
    net_tls_read(c);
}

/* net_tls_write - plaintext through SSL_write, the records out; a failure is reported
 * from the deferred work. */
void
net_tls_write(struct net_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > NET_TLS_WRITE_MAX ? NET_TLS_WRITE_MAX : (int)n;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, chunk);
        if (r <= 0) {
            unsigned long e = ERR_get_error();
            const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
            net_set_error(c, "TLS write: %s", why != NULL ? why : "failed");
            ERR_clear_error();
            c->err_pending = true;
            net_defer(c);
            break;
        }
        p += r;
        n -= (size_t)r;
    }
    net_tls_flush(c);
}

/* net_tls_shutdown - our close_notify out (net_close). */
void
net_tls_shutdown(struct net_conn *c)
{
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    net_tls_flush(c);
}

/* net_tls_switch - STARTTLS on either side: an SSL is attached (a client's also told the
 * host), plaintext output goes out, buffered plaintext input is thrown away
 * (CVE-2011-0411), and the handshake starts: a server waits for the hello, a client sends
 * it from the deferred work. 0, or -1 with nothing changed. */
static int
net_tls_switch(struct net_conn *c, SSL_CTX *tls, bool client, const char *host)
{
    if (c->state != NET_CS_OPEN || c->connecting || c->ssl != NULL || tls == NULL)
        return -1;
    if (net_tls_attach(c, tls) < 0) {
        log_warn("STARTTLS with %s: %s", c->peer_ip, c->error);
        return -1;
    }
    if (client && net_tls_client_host(c, host) < 0) {
        net_set_error(c, "TLS host %s: %s", host, net_tls_reason(0));
        log_warn("STARTTLS with %s: %s", c->peer_ip, c->error);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    net_stage_flush(c);
    buf_reset(&c->in);
    c->announce = false;
    if (client) {
        SSL_set_connect_state(c->ssl);
        net_defer(c);
    } else {
        SSL_set_accept_state(c->ssl);
    }
    c->tls = NET_TLS_HANDSHAKE;
    net_update_read(c);
    return 0;
}

/* net_starttls - server side. */
int
net_starttls(struct net_conn *c, SSL_CTX *tls)
{
    return net_tls_switch(c, tls, false, NULL);
}

/* net_starttls_client - client side: SNI and the name to verify. */
int
net_starttls_client(struct net_conn *c, SSL_CTX *tls, const char *sni_host)
{
    return net_tls_switch(c, tls, true, sni_host);
}

/* net_is_tls - the handshake is done and TLS carries the session. */
bool
net_is_tls(const struct net_conn *c)
{
    return c->tls == NET_TLS_ON;
}

/* net_tls_verified - the peer's chain verified and matched the host (name or address)
 * net_starttls_client was given; false when it was given none. */
bool
net_tls_verified(const struct net_conn *c)
{
    X509_VERIFY_PARAM *vp;
    char *ip;
    bool named;

    if (c->tls != NET_TLS_ON || SSL_get0_peer_certificate(c->ssl) == NULL ||
        SSL_get_verify_result(c->ssl) != X509_V_OK)
        return false;
    vp = SSL_get0_param(c->ssl);
    ip = X509_VERIFY_PARAM_get1_ip_asc(vp);
    named = X509_VERIFY_PARAM_get0_host(vp, 0) != NULL || ip != NULL;
    OPENSSL_free(ip);
    return named;
}

/* net_tls_ssl - see net.h. */
SSL *
net_tls_ssl(const struct net_conn *c)
{
    return c->ssl;
}

/* net_tls_desc - protocol and cipher, "" without TLS. */
const char *
net_tls_desc(const struct net_conn *c)
{
    return c->tls == NET_TLS_ON ? c->tls_desc : "";
}
