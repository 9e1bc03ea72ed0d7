/*
 * test_net - listeners and accepted connections on a real libuv loop on 127.0.0.1 (and
 * ::1 when the host has it), port 0, driven by the clients of net_harness.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net.h"
#include "tls.h"
#include "unit_util.h"

#include "net_harness.h"

/* ---- tests ---- */

/* echo, peer/local addresses, QUIT flushes then closes: DATA .. CLOSED, once */
static void
test_echo_quit(void **state)
{
    struct harness *h = *state;
    long now, peak, total;

    cli_expect(h, &h->cl, "hello\r\nworld\r\n", "ECHO hello\r\nECHO world\r\n");
    assert_int_equal(h->nsess, 1);
    struct sess *s = h->sess[0];
    assert_string_equal(s->peer, "127.0.0.1");
    assert_string_equal(s->local, "127.0.0.1");
    assert_int_equal(s->local_port, h->port);
    assert_true(s->peer_port > 0);
    net_server_counts(h->srv, &now, &peak, &total);
    assert_int_equal(now, 1);
    assert_int_equal(total, 1);

    cli_quit(h, &h->cl);
    cli_close(&h->cl);
    sess_closed(h, s, WAIT);
    assert_int_equal(s->ev[s->nev - 1], NET_EV_CLOSED);
    assert_int_equal(s->n[NET_EV_ERROR], 0);
    assert_int_equal(s->n[NET_EV_EOF], 0); /* we closed first: no events after net_close */
    net_server_counts(h->srv, &now, &peak, &total);
    assert_int_equal(now, 0);
    assert_int_equal(peak, 1);
}

/* the peer closes: EOF, then CLOSED exactly once, and nothing after */
static void
test_eof_closed_once(void **state)
{
    struct harness *h = *state;
    long now;

    cli_expect(h, &h->cl, "last words\r\n", "ECHO last words\r\n");
    assert_int_equal(h->nsess, 1);
    cli_close(&h->cl);
    struct sess *s = h->sess[0];
    sess_closed(h, s, WAIT);
    pump(h, 50);
    assert_int_equal(s->n[NET_EV_DATA], 1);
    assert_int_equal(s->n[NET_EV_EOF], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    SESS_EVENTS(s, NET_EV_DATA, NET_EV_EOF, NET_EV_CLOSED);
    assert_string_equal(s->lines[0], "last words");
    net_server_counts(h->srv, &now, NULL, NULL);
    assert_int_equal(now, 0);

    /* closing with our reply unread makes a reset: ERROR, then CLOSED once */
    cli_connect(&h->cl, h->port);
    cli_send(h, &h->cl, "unread\r\n");
    RUN_UNTIL(h, h->nsess == 2 && h->sess[1]->nlines == 1, WAIT);
    pump(h, 20);
    cli_close(&h->cl);
    s = h->sess[1];
    sess_closed(h, s, WAIT);
    pump(h, 50);
    assert_int_equal(s->n[NET_EV_ERROR] + s->n[NET_EV_EOF], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->ev[s->nev - 1], NET_EV_CLOSED);
    if (s->n[NET_EV_ERROR] == 1)
        assert_non_null(strstr(s->error, "read: "));
}

/* net_abort inside the DATA callback: the rest of the input is not processed, only
 * CLOSED follows */
static void
test_abort_in_callback(void **state)
{
    struct harness *h = *state;

    cli_send(h, &h->cl, "ABORT\r\nnever\r\n");
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->n[NET_EV_CLOSED] == 1, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    SESS_EVENTS(s, NET_EV_DATA, NET_EV_CLOSED);
    assert_int_equal(count_lines(s, "never"), 0);
    assert_true(cli_wait_eof(h, &h->cl));
}

/* output back-pressure: a big write stays pending while the client does not read, and
 * DRAIN comes only after everything left */
static void
test_backpressure_drain(void **state)
{
    struct harness *h = *state;
    char cmd[64];

    snprintf(cmd, sizeof(cmd), "BIG %u\r\n", BIGN);
    cli_send(h, &h->cl, cmd);
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->nlines == 1, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->pend_big, BIGN + 2);
    pump(h, 200);
    assert_int_equal(s->n[NET_EV_DRAIN], 0);
    assert_true(net_pending(s->c) > 0);
    assert_int_equal(cli_count(h, &h->cl, BIGN + 2), BIGN + 2);
    RUN_UNTIL(h, s->n[NET_EV_DRAIN] == 1, WAIT);
    assert_int_equal(s->n[NET_EV_DRAIN], 1);
    assert_int_equal(net_pending(s->c), 0);

    /* cork: writes are held and counted, then go out together */
    h->cl.len = 0;
    cli_expect(h, &h->cl, "CORK\r\n", "A\r\nB\r\n");
    assert_int_equal(s->pend_cork, 6);
}

/* net_close flushes a big queue before closing */
static void
test_close_flushes(void **state)
{
    struct harness *h = *state;

    cli_send(h, &h->cl, "BIGQUIT 4000000\r\n");
    assert_int_equal(cli_count(h, &h->cl, 4000002 + 1), 4000002); /* all of it, then EOF */
    assert_true(h->cl.eof);
    cli_close(&h->cl);
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->n[NET_EV_CLOSED] == 1, 1000);
    assert_int_equal(h->sess[0]->n[NET_EV_CLOSED], 1);
    assert_int_equal(h->sess[0]->n[NET_EV_ERROR], 0);
}

/* HOLD, then a line longer than the input cap and one more: the session's buffer fills to
 * the cap and stays there; once the protocol takes input again and resumes reading, the
 * long line counts as too long and the next comes through (echoed as ECHO[ tls] after) */
static struct sess *
hold_overflow_resume(struct harness *h, char *junk, size_t size, const char *after)
{
    cli_expect(h, &h->cl, "HOLD\r\n", "HOLDING\r\n");
    memset(junk, 'y', size - 3);
    memcpy(junk + size - 3, "\r\n", 3);
    cli_send(h, &h->cl, junk);
    cli_send(h, &h->cl, "after\r\n");
    pump(h, 150);
    struct sess *s = h->sess[0];
    assert_int_equal(net_inbuf(s->c)->len, 1000);
    int datas = s->n[NET_EV_DATA];
    pump(h, 50);
    assert_int_equal(s->n[NET_EV_DATA], datas); /* full: no reading */
    assert_int_equal(net_inbuf(s->c)->len, 1000);

    /* the protocol takes the input again and asks for more */
    s->hold = false;
    sess_input(s);
    net_resume_read(s->c);
    assert_true(cli_wait(h, &h->cl, after));
    assert_int_equal(s->toolong, 1);
    assert_int_equal(count_lines(s, "after"), 1);
    return s;
}

/* PAUSE with a line still buffered: nothing until the resume announces it (from the loop,
 * not from inside net_resume_read) */
static void
pause_resume(struct harness *h, struct sess *s, const char *queued)
{
    h->cl.len = 0;
    cli_expect(h, &h->cl, "PAUSE\r\nqueued\r\n", "PAUSED\r\n");
    pump(h, 100);
    assert_int_equal(count_lines(s, "queued"), 0);
    int datas = s->n[NET_EV_DATA];
    net_resume_read(s->c);
    assert_int_equal(s->n[NET_EV_DATA], datas);
    assert_true(cli_wait(h, &h->cl, queued));
    assert_int_equal(count_lines(s, "queued"), 1);
}

/* input back-pressure: a protocol that takes nothing gets no more than the buffer's cap;
 * a paused one gets nothing, and resuming announces what is buffered */
static void
test_input_cap_pause(void **state)
{
    struct harness *h = *state;
    static char junk[100001];

    struct sess *s = hold_overflow_resume(h, junk, sizeof(junk), "ECHO after\r\n");
    pause_resume(h, s, "ECHO queued\r\n");
}

/* idle timeout: fires after the configured quiet time, input restarts it */
static void
test_idle_timeout(void **state)
{
    struct harness *h = *state;

    for (int i = 0; i < 3; i++) {
        pump(h, 80);
        cli_send(h, &h->cl, "tick\r\n");
    }
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->nlines == 3, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_TIMEOUT], 0); /* 240 ms in, but never 150 ms quiet */
    uint64_t t0 = now_ms();
    assert_true(cli_wait(h, &h->cl, "TIMEOUT\r\n"));
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 100 && dt < 1000);
    assert_true(cli_wait_eof(h, &h->cl));
    cli_close(&h->cl);
    sess_closed(h, s, 1000);
    assert_int_equal(s->n[NET_EV_TIMEOUT], 1);
}

/* max_per_ip: the third client from one address gets the refusal line */
static void
test_max_per_ip(void **state)
{
    struct harness *h = *state;
    struct cli *b = &h->more[0], *c = &h->more[1], *d = &h->more[2];
    long now, total;

    cli_connect(b, h->port);
    RUN_UNTIL(h, h->nsess == 2, WAIT);
    assert_int_equal(h->nsess, 2);
    cli_connect(c, h->port);
    assert_true(cli_wait(h, c, "421 busy\r\n"));
    assert_true(cli_wait_eof(h, c));
    assert_string_equal(c->buf, "421 busy\r\n");
    assert_int_equal(h->nsess, 2);
    net_server_counts(h->srv, &now, NULL, &total);
    assert_int_equal(now, 2);
    assert_int_equal(total, 2);

    /* one leaves: room again */
    cli_close(&h->cl);
    RUN_UNTIL(h, h->sess[0]->n[NET_EV_CLOSED] == 1, WAIT);
    cli_open(h, d, "in\r\n", "ECHO in\r\n");
    assert_int_equal(h->nsess, 3);
}

/* a client that leaves and comes straight back gets its slot: the slot is free as soon
 * as its EOF is seen, not only when the old socket has finished closing */
static void
test_per_ip_quick_reconnect(void **state)
{
    struct harness *h = *state;
    struct cli *a = &h->cl, *b = &h->more[0];

    for (int round = 0; round < 5; round++) {
        if (round > 0)
            cli_connect(a, h->port);
        cli_expect(h, a, "x\r\n", "ECHO x\r\n");
        cli_close(a);
        cli_open(h, b, "y\r\n", "ECHO y\r\n"); /* before the loop has seen a's FIN */
        cli_close(b);
        RUN_UNTIL(h, h->nsess == 2 * (round + 1) && h->sess[h->nsess - 1]->n[NET_EV_CLOSED], WAIT);
    }
    assert_int_equal(h->nsess, 10);

    /* closed before the server even accepted it: its FIN is found by peeking */
    cli_connect(a, h->port);
    cli_close(a);
    cli_open(h, b, "z\r\n", "ECHO z\r\n");
    assert_int_equal(h->nsess, 12);
}

/* max_connections: over the cap, the refusal line; limits can change live */
static void
test_max_connections(void **state)
{
    struct harness *h = *state;
    struct cli *b = &h->more[0], *c = &h->more[1];
    struct net_limits lim = {2, 0, 0};

    RUN_UNTIL(h, h->nsess == 1, WAIT);
    cli_connect(b, h->port);
    assert_true(cli_wait(h, b, "421 full\r\n"));
    assert_true(cli_wait_eof(h, b));
    assert_int_equal(h->nsess, 1);

    net_server_set_limits(h->srv, &lim);
    cli_open(h, c, "ok\r\n", "ECHO ok\r\n");
    assert_int_equal(h->nsess, 2);
}

/* implicit TLS: TLS_READY before any DATA, the description, echo over TLS, QUIT */
static void
test_implicit_tls(void **state)
{
    struct harness *h = *state;

    assert_true(cli_tls(h, &h->cl, client_ctx));
    cli_expect(h, &h->cl, "secret\r\n", "ECHO tls secret\r\n");
    struct sess *s = h->sess[0];
    assert_int_equal(s->ev[0], NET_EV_TLS_READY);
    assert_int_equal(s->n[NET_EV_TLS_READY], 1);
    assert_true(strncmp(s->tls_desc, "TLSv1.3 cipher=", 15) == 0);
    assert_string_equal(s->tls_desc + 15, SSL_get_cipher_name(h->cl.ssl));
    cli_quit(h, &h->cl);
    assert_int_equal(SSL_get_shutdown(h->cl.ssl) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN);
    cli_close(&h->cl); /* the server lingers for our FIN */
    sess_closed(h, s, 1000);
    assert_int_equal(s->n[NET_EV_ERROR], 0);
}

/* TLS with a small input buffer: the TLS layer keeps what does not fit and hands it over
 * as the protocol takes input; big output goes out in full; pause/resume works the same */
static void
test_tls_backpressure(void **state)
{
    struct harness *h = *state;
    static char junk[200001];

    assert_true(cli_tls(h, &h->cl, client_ctx));
    struct sess *s = hold_overflow_resume(h, junk, sizeof(junk), "ECHO tls after\r\n");
    pause_resume(h, s, "ECHO tls queued\r\n");

    cli_send(h, &h->cl, "BIG 3000000\r\n");
    h->cl.count = 0;
    assert_int_equal(cli_count(h, &h->cl, 3000002), 3000002);
    RUN_UNTIL(h, s->n[NET_EV_DRAIN] > 0 && net_pending(s->c) == 0, WAIT);
    assert_int_equal(net_pending(s->c), 0);
    cli_close(&h->cl);
    sess_closed(h, s, WAIT);
    assert_int_equal(s->n[NET_EV_EOF] + s->n[NET_EV_ERROR], 1);
}

/* net_close towards a client that never closes: given up after the linger time */
static void
test_close_linger_bounded(void **state)
{
    struct harness *h = *state;

    cli_quit(h, &h->cl);
    struct sess *s = h->sess[0];
    uint64_t t0 = now_ms();
    assert_non_null(s->c);          /* lingering for our FIN */
    net_write(s->c, "late\r\n", 6); /* after net_close: ignored */
    assert_int_equal(net_pending(s->c), 0);
    sess_closed(h, s, WAIT);
    assert_true(now_ms() - t0 >= 1500); /* it waited, but not for ever */
    assert_int_equal(s->nev, 2);        /* DATA, CLOSED: no EOF after net_close */
}

/* STARTTLS: the plaintext sent behind the command never reaches the protocol */
static void
test_starttls_discards_injection(void **state)
{
    struct harness *h = *state;

    cli_expect(h, &h->cl, "plain\r\n", "ECHO plain\r\n");
    /* one segment: the server reads command and injection together */
    cli_expect(h, &h->cl, "STARTTLS\r\nINJECTED\r\n", "GO\r\n");
    assert_string_equal(h->cl.buf, "ECHO plain\r\nGO\r\n");
    assert_true(cli_tls(h, &h->cl, client_ctx));
    h->cl.len = 0;
    cli_expect(h, &h->cl, "after\r\n", "ECHO tls after\r\n");
    assert_string_equal(h->cl.buf, "ECHO tls after\r\n");
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_TLS_READY], 1);
    assert_int_equal(count_lines(s, "INJECTED"), 0);
    assert_int_equal(s->nlines, 3);
    assert_string_equal(s->lines[0], "plain");
    assert_string_equal(s->lines[1], "STARTTLS");
    assert_string_equal(s->lines[2], "after");
}

/* TLS failures: plaintext to the TLS port, plaintext after STARTTLS, a TLS 1.1 client */
static void
test_tls_failures(void **state)
{
    struct harness *h = harness_new(0, 0);
    struct cli a, b, c;

    (void)state;
    h->tls = server_ctx();
    int tport = listen_on(h, "127.0.0.1", 0, h->tls, NULL);
    int pport = listen_on(h, "127.0.0.1", 0, NULL, NULL);

    cli_connect(&a, tport);
    cli_send(h, &a, "EHLO plaintext.example\r\n");
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->n[NET_EV_CLOSED] == 1, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_ERROR], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->n[NET_EV_DATA], 0);
    assert_int_equal(s->n[NET_EV_TLS_READY], 0);
    assert_non_null(strstr(s->error, "TLS handshake failed: "));
    assert_true(cli_wait_eof(h, &a));

    /* plaintext arriving after the STARTTLS reply goes to the TLS layer and fails there */
    cli_connect(&b, pport);
    cli_send(h, &b, "STARTTLS\r\n");
    assert_true(cli_wait(h, &b, "GO\r\n"));
    cli_send(h, &b, "INJECTED\r\n");
    RUN_UNTIL(h, h->nsess == 2 && h->sess[1]->n[NET_EV_CLOSED] == 1, WAIT);
    s = h->sess[1];
    assert_int_equal(s->n[NET_EV_ERROR], 1);
    assert_int_equal(count_lines(s, "INJECTED"), 0);
    assert_int_equal(s->nlines, 1);

    /* below TLS 1.2 is refused */
    SSL_CTX *old = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(old, 0);
    SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
    cli_connect(&c, tport);
    assert_false(cli_tls(h, &c, old));
    RUN_UNTIL(h, h->nsess == 3 && h->sess[2]->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(h->sess[2]->n[NET_EV_ERROR], 1);
    assert_int_equal(h->sess[2]->n[NET_EV_TLS_READY], 0);
    SSL_CTX_free(old);
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    harness_free(h);
}

/* tls_server_ctx: settings and error messages; tls_client_ctx: settings */
static void
test_tls_ctx(void **state)
{
    char err[256];
    SSL_CTX *ctx;

    (void)state;
    ctx = tls_server_ctx(cert_path, key_path, NULL, err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    uint64_t want =
        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
    assert_int_equal(SSL_CTX_get_options(ctx) & want, want);
    SSL_CTX_free(ctx);

    /* the policy: TLS 1.3 only; a chosen list; lists that match nothing */
    struct tls_policy pol = {.tls13_only = true, .ciphers = "ECDHE-RSA-AES256-GCM-SHA384"};
    ctx = tls_server_ctx(cert_path, key_path, &pol, err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    SSL_CTX_free(ctx);
    pol = (struct tls_policy){.ciphers = "NO-SUCH-CIPHER"};
    ctx = tls_server_ctx(cert_path, key_path, &pol, err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_ciphers NO-SUCH-CIPHER: ", 28) == 0);
    pol = (struct tls_policy){.ciphersuites = "TLS_NO_SUCH"};
    ctx = tls_server_ctx(cert_path, key_path, &pol, err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_ciphersuites TLS_NO_SUCH: ", 30) == 0);

    ctx = tls_client_ctx(err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
    want = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    assert_int_equal(SSL_CTX_get_options(ctx) & want, want);
    SSL_CTX_free(ctx);

    ctx = tls_server_ctx("/nonexistent/cert.pem", key_path, NULL, err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_cert /nonexistent/cert.pem: ", 32) == 0);
    assert_true(strlen(err) > 32);

    ctx = tls_server_ctx(key_path, key_path, NULL, err, sizeof(err)); /* a key is no certificate */
    assert_null(ctx);
    assert_true(strncmp(err, "tls_cert ", 9) == 0);

    ctx = tls_server_ctx(cert_path, "/nonexistent/key.pem", NULL, err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_key /nonexistent/key.pem: ", 30) == 0);

    ctx = tls_server_ctx(cert_path, key2_path, NULL, err, sizeof(err)); /* not the cert's key */
    assert_null(ctx);
    char want2[256];
    snprintf(want2, sizeof(want2), "tls_key %s: ", key2_path);
    assert_true(strncmp(err, want2, strlen(want2)) == 0);
    assert_true(strlen(err) > strlen(want2));
}

/* listener errors and net_listener_port */
static void
test_listen_errors(void **state)
{
    struct harness *h = *state;
    int port = h->port;
    char err[256];
    int rc;

    rc = net_listen(h->srv, "not-an-address", 25, NULL, NULL, on_accept, h, err, sizeof(err));
    assert_int_equal(rc, UV_EINVAL);
    assert_non_null(strstr(err, "not-an-address"));
    rc = net_listen(h->srv, "127.0.0.1", port, NULL, NULL, on_accept, h, err, sizeof(err));
    assert_int_equal(rc, UV_EADDRINUSE);
    assert_true(strncmp(err, "bind: ", 6) == 0);
    assert_int_equal(net_listener_port(h->srv, 0), port);
    assert_int_equal(net_listener_port(h->srv, 1), -1);
    assert_int_equal(net_listener_port(h->srv, -1), -1);

    /* graceful stop: listeners go, the open connection keeps working */
    cli_expect(h, &h->cl, "one\r\n", "ECHO one\r\n");
    net_server_stop_listening(h->srv);
    pump(h, 20);
    assert_int_equal(net_listener_port(h->srv, 0), -1);
    cli_expect(h, &h->cl, "two\r\n", "ECHO two\r\n");
    int late = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(late, (struct sockaddr *)&sin, sizeof(sin)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(late);
    /* harness_teardown aborts the open connection: CLOSED once (checked there) */
}

/* IPv6 ::1, next to 127.0.0.1 on the same port; skipped without IPv6 */
static void
test_ipv6(void **state)
{
    struct harness *h = harness_new(0, 0);
    struct cli cl;

    (void)state;
    int port = listen_on(h, "::1", 0, NULL, NULL);
    if (port < 0) {
        harness_free(h);
        skip();
    }
    assert_int_equal(listen_on(h, "127.0.0.1", port, NULL, NULL), port);
    cli_connect_fam(&cl, AF_INET6, port);
    cli_send(h, &cl, "six\r\n");
    assert_true(cli_wait(h, &cl, "ECHO six\r\n"));
    assert_string_equal(h->sess[0]->peer, "::1");
    assert_string_equal(h->sess[0]->local, "::1");
    cli_close(&cl);
    cli_connect(&cl, port);
    cli_send(h, &cl, "four\r\n");
    assert_true(cli_wait(h, &cl, "ECHO four\r\n"));
    assert_string_equal(h->sess[1]->peer, "127.0.0.1");
    cli_close(&cl);
    harness_free(h);
}

static uint64_t
cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* EMFILE: accepting pauses (no busy loop), the backlog waits, and accepting resumes */
static void
test_emfile_pause(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl[6];
    struct rlimit old, low;
    long total;

    (void)state;
    for (int i = 0; i < 6; i++)
        cli_connect(&cl[i], port);
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the lowest free descriptor */
    assert_true(probe >= 0);
    close(probe);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe + 2; /* room for two accepted sockets at most */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

    pump(h, 100);
    uint64_t cpu0 = cpu_ms();
    pump(h, 600);
    uint64_t cpu = cpu_ms() - cpu0;
    net_server_counts(h->srv, NULL, NULL, &total);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(total >= 1 && total <= 2);
    assert_true(cpu < 300); /* a spinning accept loop would burn the whole 600 ms */

    /* descriptors again: the waiting clients are accepted within the retry second */
    RUN_UNTIL(h, h->nsess == 6, WAIT);
    assert_int_equal(h->nsess, 6);
    for (int i = 0; i < 6; i++) {
        cl[i].len = 0;
        cli_send(h, &cl[i], "still here\r\n");
        assert_true(cli_wait(h, &cl[i], "ECHO still here\r\n"));
        cli_close(&cl[i]);
    }
    harness_free(h);
}

/* what differs between the tests' fixtures (harness_setup) */
static const struct harness_opts per_ip2 = {.max_ip = 2, .refuse = "421 busy\r\n"};
static const struct harness_opts per_ip1 = {.max_ip = 1, .refuse = "421 busy\r\n"};
static const struct harness_opts max_conn1 = {.max_conn = 1, .refuse = "421 full\r\n"};
static const struct harness_opts cap1000 = {.inbuf_cap = 1000};
static const struct harness_opts idle150 = {.timeout_ms = 150};
static const struct harness_opts tls = {.tls = true, .refuse = "421 plain refusal\r\n"};
static const struct harness_opts tls_cap1000 = {.tls = true, .inbuf_cap = 1000};
static const struct harness_opts starttls = {.starttls = true};

#define FX(test, opts)                                                                             \
    cmocka_unit_test_prestate_setup_teardown(test, harness_setup, harness_teardown, (void *)(opts))

UU_MAIN(group_setup, group_teardown, FX(test_echo_quit, NULL), FX(test_eof_closed_once, NULL),
        FX(test_abort_in_callback, NULL), FX(test_backpressure_drain, NULL),
        FX(test_close_flushes, NULL), FX(test_close_linger_bounded, NULL),
        FX(test_input_cap_pause, &cap1000), FX(test_idle_timeout, &idle150),
        FX(test_max_per_ip, &per_ip2), FX(test_per_ip_quick_reconnect, &per_ip1),
        FX(test_max_connections, &max_conn1), FX(test_implicit_tls, &tls),
        FX(test_tls_backpressure, &tls_cap1000), FX(test_starttls_discards_injection, &starttls),
        cmocka_unit_test(test_tls_failures), cmocka_unit_test(test_tls_ctx),
        FX(test_listen_errors, NULL), cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_emfile_pause))
