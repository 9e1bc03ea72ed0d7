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
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;
    long now, peak, total;

    (void)state;
    assert_true(port > 0);
    cli_connect(&cl, port);
    cli_send(h, &cl, "hello\r\nworld\r\n");
    assert_true(cli_wait(h, &cl, "ECHO hello\r\nECHO world\r\n"));
    assert_int_equal(h->nsess, 1);
    struct sess *s = h->sess[0];
    assert_string_equal(s->peer, "127.0.0.1");
    assert_string_equal(s->local, "127.0.0.1");
    assert_int_equal(s->local_port, port);
    assert_true(s->peer_port > 0);
    net_server_counts(h->srv, &now, &peak, &total);
    assert_int_equal(now, 1);
    assert_int_equal(total, 1);

    cli_send(h, &cl, "QUIT\r\n");
    assert_true(cli_wait(h, &cl, "BYE\r\n"));
    assert_true(cli_wait_eof(h, &cl));
    cli_close(&cl);
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->ev[s->nev - 1], NET_EV_CLOSED);
    assert_int_equal(s->n[NET_EV_ERROR], 0);
    assert_int_equal(s->n[NET_EV_EOF], 0); /* we closed first: no events after net_close */
    net_server_counts(h->srv, &now, &peak, &total);
    assert_int_equal(now, 0);
    assert_int_equal(peak, 1);
    harness_free(h);
}

/* the peer closes: EOF, then CLOSED exactly once, and nothing after */
static void
test_eof_closed_once(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;
    long now;

    (void)state;
    cli_connect(&cl, port);
    cli_send(h, &cl, "last words\r\n");
    assert_true(cli_wait(h, &cl, "ECHO last words\r\n"));
    assert_int_equal(h->nsess, 1);
    cli_close(&cl);
    struct sess *s = h->sess[0];
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, WAIT);
    pump(h, 50);
    assert_int_equal(s->n[NET_EV_DATA], 1);
    assert_int_equal(s->n[NET_EV_EOF], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->nev, 3);
    assert_int_equal(s->ev[0], NET_EV_DATA);
    assert_int_equal(s->ev[1], NET_EV_EOF);
    assert_int_equal(s->ev[2], NET_EV_CLOSED);
    assert_string_equal(s->lines[0], "last words");
    net_server_counts(h->srv, &now, NULL, NULL);
    assert_int_equal(now, 0);

    /* closing with our reply unread makes a reset: ERROR, then CLOSED once */
    cli_connect(&cl, port);
    cli_send(h, &cl, "unread\r\n");
    RUN_UNTIL(h, h->nsess == 2 && h->sess[1]->nlines == 1, WAIT);
    pump(h, 20);
    cli_close(&cl);
    s = h->sess[1];
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, WAIT);
    pump(h, 50);
    assert_int_equal(s->n[NET_EV_ERROR] + s->n[NET_EV_EOF], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->ev[s->nev - 1], NET_EV_CLOSED);
    if (s->n[NET_EV_ERROR] == 1)
        assert_non_null(strstr(s->error, "read: "));
    harness_free(h);
}

/* net_abort inside the DATA callback: the rest of the input is not processed, only
 * CLOSED follows */
static void
test_abort_in_callback(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;

    (void)state;
    cli_connect(&cl, port);
    cli_send(h, &cl, "ABORT\r\nnever\r\n");
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->n[NET_EV_CLOSED] == 1, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->nev, 2);
    assert_int_equal(s->ev[0], NET_EV_DATA);
    assert_int_equal(s->ev[1], NET_EV_CLOSED);
    assert_int_equal(count_lines(s, "never"), 0);
    assert_true(cli_wait_eof(h, &cl));
    cli_close(&cl);
    harness_free(h);
}

/* output back-pressure: a big write stays pending while the client does not read, and
 * DRAIN comes only after everything left */
static void
test_backpressure_drain(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;
    char cmd[64];

    (void)state;
    cli_connect(&cl, port);
    snprintf(cmd, sizeof(cmd), "BIG %u\r\n", BIGN);
    cli_send(h, &cl, cmd);
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->nlines == 1, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->pend_big, BIGN + 2);
    pump(h, 200);
    assert_int_equal(s->n[NET_EV_DRAIN], 0);
    assert_true(net_pending(s->c) > 0);
    assert_int_equal(cli_count(h, &cl, BIGN + 2), BIGN + 2);
    RUN_UNTIL(h, s->n[NET_EV_DRAIN] == 1, WAIT);
    assert_int_equal(s->n[NET_EV_DRAIN], 1);
    assert_int_equal(net_pending(s->c), 0);

    /* cork: writes are held and counted, then go out together */
    cl.len = 0;
    cli_send(h, &cl, "CORK\r\n");
    assert_true(cli_wait(h, &cl, "A\r\nB\r\n"));
    assert_int_equal(s->pend_cork, 6);
    cli_close(&cl);
    harness_free(h);
}

/* net_close flushes a big queue before closing */
static void
test_close_flushes(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;

    (void)state;
    cli_connect(&cl, port);
    cli_send(h, &cl, "BIGQUIT 4000000\r\n");
    assert_int_equal(cli_count(h, &cl, 4000002 + 1), 4000002); /* all of it, then EOF */
    assert_true(cl.eof);
    cli_close(&cl);
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->n[NET_EV_CLOSED] == 1, 1000);
    assert_int_equal(h->sess[0]->n[NET_EV_CLOSED], 1);
    assert_int_equal(h->sess[0]->n[NET_EV_ERROR], 0);
    harness_free(h);
}

/* input back-pressure: a protocol that takes nothing gets no more than the buffer's cap;
 * a paused one gets nothing, and resuming announces what is buffered */
static void
test_input_cap_pause(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;
    static char junk[100001];

    (void)state;
    h->inbuf_cap = 1000;
    cli_connect(&cl, port);
    cli_send(h, &cl, "HOLD\r\n");
    assert_true(cli_wait(h, &cl, "HOLDING\r\n"));
    memset(junk, 'y', sizeof(junk) - 3);
    memcpy(junk + sizeof(junk) - 3, "\r\n", 3);
    cli_send(h, &cl, junk);
    cli_send(h, &cl, "after\r\n");
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
    assert_true(cli_wait(h, &cl, "ECHO after\r\n"));
    assert_int_equal(s->toolong, 1);
    assert_int_equal(count_lines(s, "after"), 1);

    /* paused with a line still buffered: nothing until the resume announces it */
    cl.len = 0;
    cli_send(h, &cl, "PAUSE\r\nqueued\r\n");
    assert_true(cli_wait(h, &cl, "PAUSED\r\n"));
    pump(h, 100);
    assert_int_equal(count_lines(s, "queued"), 0);
    datas = s->n[NET_EV_DATA];
    net_resume_read(s->c);
    assert_int_equal(s->n[NET_EV_DATA], datas); /* from the loop, not from inside the call */
    assert_true(cli_wait(h, &cl, "ECHO queued\r\n"));
    assert_int_equal(count_lines(s, "queued"), 1);
    cli_close(&cl);
    harness_free(h);
}

/* idle timeout: fires after the configured quiet time, input restarts it */
static void
test_idle_timeout(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;

    (void)state;
    h->timeout_ms = 150;
    cli_connect(&cl, port);
    for (int i = 0; i < 3; i++) {
        pump(h, 80);
        cli_send(h, &cl, "tick\r\n");
    }
    RUN_UNTIL(h, h->nsess == 1 && h->sess[0]->nlines == 3, WAIT);
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_TIMEOUT], 0); /* 240 ms in, but never 150 ms quiet */
    uint64_t t0 = now_ms();
    assert_true(cli_wait(h, &cl, "TIMEOUT\r\n"));
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 100 && dt < 1000);
    assert_true(cli_wait_eof(h, &cl));
    cli_close(&cl);
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, 1000);
    assert_int_equal(s->n[NET_EV_TIMEOUT], 1);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    harness_free(h);
}

/* max_per_ip: the third client from one address gets the refusal line */
static void
test_max_per_ip(void **state)
{
    struct harness *h = harness_new(0, 2);
    int port = listen_on(h, "127.0.0.1", 0, NULL, "421 busy\r\n");
    struct cli a, b, c, d;
    long now, total;

    (void)state;
    cli_connect(&a, port);
    cli_connect(&b, port);
    RUN_UNTIL(h, h->nsess == 2, WAIT);
    assert_int_equal(h->nsess, 2);
    cli_connect(&c, port);
    assert_true(cli_wait(h, &c, "421 busy\r\n"));
    assert_true(cli_wait_eof(h, &c));
    assert_string_equal(c.buf, "421 busy\r\n");
    assert_int_equal(h->nsess, 2);
    net_server_counts(h->srv, &now, NULL, &total);
    assert_int_equal(now, 2);
    assert_int_equal(total, 2);

    /* one leaves: room again */
    cli_close(&a);
    RUN_UNTIL(h, h->sess[0]->n[NET_EV_CLOSED] == 1, WAIT);
    cli_connect(&d, port);
    cli_send(h, &d, "in\r\n");
    assert_true(cli_wait(h, &d, "ECHO in\r\n"));
    assert_int_equal(h->nsess, 3);
    cli_close(&b);
    cli_close(&c);
    cli_close(&d);
    harness_free(h);
}

/* a client that leaves and comes straight back gets its slot: the slot is free as soon
 * as its EOF is seen, not only when the old socket has finished closing */
static void
test_per_ip_quick_reconnect(void **state)
{
    struct harness *h = harness_new(0, 1);
    int port = listen_on(h, "127.0.0.1", 0, NULL, "421 busy\r\n");
    struct cli a, b;

    (void)state;
    for (int round = 0; round < 5; round++) {
        cli_connect(&a, port);
        cli_send(h, &a, "x\r\n");
        assert_true(cli_wait(h, &a, "ECHO x\r\n"));
        cli_close(&a);
        cli_connect(&b, port); /* before the loop has seen a's FIN */
        cli_send(h, &b, "y\r\n");
        assert_true(cli_wait(h, &b, "ECHO y\r\n"));
        cli_close(&b);
        RUN_UNTIL(h, h->nsess == 2 * (round + 1) && h->sess[h->nsess - 1]->n[NET_EV_CLOSED], WAIT);
    }
    assert_int_equal(h->nsess, 10);

    /* closed before the server even accepted it: its FIN is found by peeking */
    cli_connect(&a, port);
    cli_close(&a);
    cli_connect(&b, port);
    cli_send(h, &b, "z\r\n");
    assert_true(cli_wait(h, &b, "ECHO z\r\n"));
    assert_int_equal(h->nsess, 12);
    cli_close(&b);
    harness_free(h);
}

/* max_connections: over the cap, the refusal line; limits can change live */
static void
test_max_connections(void **state)
{
    struct harness *h = harness_new(1, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, "421 full\r\n");
    struct cli a, b, c;
    struct net_limits lim = {2, 0};

    (void)state;
    cli_connect(&a, port);
    RUN_UNTIL(h, h->nsess == 1, WAIT);
    cli_connect(&b, port);
    assert_true(cli_wait(h, &b, "421 full\r\n"));
    assert_true(cli_wait_eof(h, &b));
    assert_int_equal(h->nsess, 1);

    net_server_set_limits(h->srv, &lim);
    cli_connect(&c, port);
    cli_send(h, &c, "ok\r\n");
    assert_true(cli_wait(h, &c, "ECHO ok\r\n"));
    assert_int_equal(h->nsess, 2);
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    harness_free(h);
}

/* implicit TLS: TLS_READY before any DATA, the description, echo over TLS, QUIT */
static void
test_implicit_tls(void **state)
{
    struct harness *h = harness_new(0, 0);
    struct cli cl;

    (void)state;
    h->tls = server_ctx();
    int port = listen_on(h, "127.0.0.1", 0, h->tls, "421 plain refusal\r\n");
    assert_true(port > 0);
    cli_connect(&cl, port);
    assert_true(cli_tls(h, &cl, client_ctx));
    cli_send(h, &cl, "secret\r\n");
    assert_true(cli_wait(h, &cl, "ECHO tls secret\r\n"));
    struct sess *s = h->sess[0];
    assert_int_equal(s->ev[0], NET_EV_TLS_READY);
    assert_int_equal(s->n[NET_EV_TLS_READY], 1);
    assert_true(strncmp(s->tls_desc, "TLSv1.3 cipher=", 15) == 0);
    assert_string_equal(s->tls_desc + 15, SSL_get_cipher_name(cl.ssl));
    cli_send(h, &cl, "QUIT\r\n");
    assert_true(cli_wait(h, &cl, "BYE\r\n"));
    assert_true(cli_wait_eof(h, &cl));
    assert_int_equal(SSL_get_shutdown(cl.ssl) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN);
    cli_close(&cl); /* the server lingers for our FIN */
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, 1000);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_int_equal(s->n[NET_EV_ERROR], 0);
    harness_free(h);
}

/* TLS with a small input buffer: the TLS layer keeps what does not fit and hands it over
 * as the protocol takes input; big output goes out in full; pause/resume works the same */
static void
test_tls_backpressure(void **state)
{
    struct harness *h = harness_new(0, 0);
    struct cli cl;
    static char junk[200001];

    (void)state;
    h->tls = server_ctx();
    h->inbuf_cap = 1000;
    int port = listen_on(h, "127.0.0.1", 0, h->tls, NULL);
    cli_connect(&cl, port);
    assert_true(cli_tls(h, &cl, client_ctx));
    cli_send(h, &cl, "HOLD\r\n");
    assert_true(cli_wait(h, &cl, "HOLDING\r\n"));
    memset(junk, 'z', sizeof(junk) - 3);
    memcpy(junk + sizeof(junk) - 3, "\r\n", 3);
    cli_send(h, &cl, junk);
    cli_send(h, &cl, "after\r\n");
    pump(h, 150);
    struct sess *s = h->sess[0];
    assert_int_equal(net_inbuf(s->c)->len, 1000);
    s->hold = false;
    sess_input(s);
    net_resume_read(s->c);
    assert_true(cli_wait(h, &cl, "ECHO tls after\r\n"));
    assert_int_equal(s->toolong, 1);

    cl.len = 0;
    cli_send(h, &cl, "PAUSE\r\nqueued\r\n");
    assert_true(cli_wait(h, &cl, "PAUSED\r\n"));
    pump(h, 50);
    assert_int_equal(count_lines(s, "queued"), 0);
    net_resume_read(s->c);
    assert_true(cli_wait(h, &cl, "ECHO tls queued\r\n"));

    cli_send(h, &cl, "BIG 3000000\r\n");
    cl.count = 0;
    assert_int_equal(cli_count(h, &cl, 3000002), 3000002);
    RUN_UNTIL(h, s->n[NET_EV_DRAIN] > 0 && net_pending(s->c) == 0, WAIT);
    assert_int_equal(net_pending(s->c), 0);
    cli_close(&cl);
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(s->n[NET_EV_EOF] + s->n[NET_EV_ERROR], 1);
    harness_free(h);
}

/* net_close towards a client that never closes: given up after the linger time */
static void
test_close_linger_bounded(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;

    (void)state;
    cli_connect(&cl, port);
    cli_send(h, &cl, "QUIT\r\n");
    assert_true(cli_wait(h, &cl, "BYE\r\n"));
    assert_true(cli_wait_eof(h, &cl));
    struct sess *s = h->sess[0];
    uint64_t t0 = now_ms();
    assert_non_null(s->c);          /* lingering for our FIN */
    net_write(s->c, "late\r\n", 6); /* after net_close: ignored */
    assert_int_equal(net_pending(s->c), 0);
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
    assert_true(now_ms() - t0 >= 1500); /* it waited, but not for ever */
    assert_int_equal(s->nev, 2);        /* DATA, CLOSED: no EOF after net_close */
    cli_close(&cl);
    harness_free(h);
}

/* STARTTLS: the plaintext sent behind the command never reaches the protocol */
static void
test_starttls_discards_injection(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    struct cli cl;

    (void)state;
    h->tls = server_ctx();
    cli_connect(&cl, port);
    cli_send(h, &cl, "plain\r\n");
    assert_true(cli_wait(h, &cl, "ECHO plain\r\n"));
    /* one segment: the server reads command and injection together */
    cli_send(h, &cl, "STARTTLS\r\nINJECTED\r\n");
    assert_true(cli_wait(h, &cl, "GO\r\n"));
    assert_string_equal(cl.buf, "ECHO plain\r\nGO\r\n");
    assert_true(cli_tls(h, &cl, client_ctx));
    cl.len = 0;
    cli_send(h, &cl, "after\r\n");
    assert_true(cli_wait(h, &cl, "ECHO tls after\r\n"));
    assert_string_equal(cl.buf, "ECHO tls after\r\n");
    struct sess *s = h->sess[0];
    assert_int_equal(s->n[NET_EV_TLS_READY], 1);
    assert_int_equal(count_lines(s, "INJECTED"), 0);
    assert_int_equal(s->nlines, 3);
    assert_string_equal(s->lines[0], "plain");
    assert_string_equal(s->lines[1], "STARTTLS");
    assert_string_equal(s->lines[2], "after");
    cli_close(&cl);
    harness_free(h);
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
    ctx = tls_server_ctx(cert_path, key_path, err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    uint64_t want =
        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
    assert_int_equal(SSL_CTX_get_options(ctx) & want, want);
    SSL_CTX_free(ctx);

    ctx = tls_client_ctx(err, sizeof(err));
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
    want = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    assert_int_equal(SSL_CTX_get_options(ctx) & want, want);
    SSL_CTX_free(ctx);

    ctx = tls_server_ctx("/nonexistent/cert.pem", key_path, err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_cert /nonexistent/cert.pem: ", 32) == 0);
    assert_true(strlen(err) > 32);

    ctx = tls_server_ctx(key_path, key_path, err, sizeof(err)); /* a key is no certificate */
    assert_null(ctx);
    assert_true(strncmp(err, "tls_cert ", 9) == 0);

    ctx = tls_server_ctx(cert_path, "/nonexistent/key.pem", err, sizeof(err));
    assert_null(ctx);
    assert_true(strncmp(err, "tls_key /nonexistent/key.pem: ", 30) == 0);

    ctx = tls_server_ctx(cert_path, key2_path, err, sizeof(err)); /* not the cert's key */
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
    struct harness *h = harness_new(0, 0);
    char err[256];
    int rc;

    (void)state;
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    assert_true(port > 0);
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
    struct cli cl;
    cli_connect(&cl, port);
    cli_send(h, &cl, "one\r\n");
    assert_true(cli_wait(h, &cl, "ECHO one\r\n"));
    net_server_stop_listening(h->srv);
    pump(h, 20);
    assert_int_equal(net_listener_port(h->srv, 0), -1);
    cli_send(h, &cl, "two\r\n");
    assert_true(cli_wait(h, &cl, "ECHO two\r\n"));
    struct cli late;
    memset(&late, 0, sizeof(late));
    late.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(late.fd, (struct sockaddr *)&sin, sizeof(sin)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(late.fd);
    cli_close(&cl);
    harness_free(h); /* aborts the open connection: CLOSED once (checked there) */
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_quit),
        cmocka_unit_test(test_eof_closed_once),
        cmocka_unit_test(test_abort_in_callback),
        cmocka_unit_test(test_backpressure_drain),
        cmocka_unit_test(test_close_flushes),
        cmocka_unit_test(test_close_linger_bounded),
        cmocka_unit_test(test_input_cap_pause),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_max_per_ip),
        cmocka_unit_test(test_per_ip_quick_reconnect),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_implicit_tls),
        cmocka_unit_test(test_tls_backpressure),
        cmocka_unit_test(test_starttls_discards_injection),
        cmocka_unit_test(test_tls_failures),
        cmocka_unit_test(test_tls_ctx),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_emfile_pause),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
