/*
 * test_net_client - outbound connections (net_connect) on a real libuv loop on 127.0.0.1
 * (and ::1 when the host has it): towards the harness's own listeners (net_harness) and
 * towards plain sockets the test holds; client STARTTLS and net_tls_verified.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <openssl/ssl.h>

#include "net_harness.h"
#include "tls.h"
#include "unit_util.h"

/* net_connect to a listener on the same loop: output held until connected goes first,
 * lines both ways, addresses, EOF and CLOSED; outbound connections are not counted */
static void
test_connect_echo(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    long now, total;

    (void)state;
    struct sess *o = out_ok(h, "127.0.0.1", port, NULL, WAIT);
    net_write(o->c, "early\r\n", 7);
    assert_int_equal(net_pending(o->c), 7); /* held until connected */
    net_close(o->c);                        /* before CONNECTED: an abort */
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(o->nev, 1);
    pump(h, 20);

    o = out_ok(h, "127.0.0.1", port, NULL, WAIT);
    net_write(o->c, "early\r\n", 7);
    RUN_UNTIL(h, o->n[NET_EV_CONNECTED] == 1, WAIT);
    assert_int_equal(o->ev[0], NET_EV_CONNECTED);
    net_printf(o->c, "%s\r\n", "hello");
    RUN_UNTIL(h, o->nlines == 2, WAIT);
    assert_string_equal(o->lines[0], "ECHO early");
    assert_string_equal(o->lines[1], "ECHO hello");
    struct sess *s = h->sess[h->nsess - 1];
    assert_int_equal(s->nlines, 2);
    assert_string_equal(o->peer, "127.0.0.1");
    assert_int_equal(o->peer_port, port);
    assert_string_equal(o->local, "127.0.0.1");
    assert_int_equal(o->local_port, s->peer_port);
    assert_string_equal(net_peer_ip(o->c), "127.0.0.1");
    net_server_counts(h->srv, &now, NULL, &total);
    assert_int_equal(now, 1); /* the accepted end only */
    assert_int_equal(total, 2);

    /* the peer closes: EOF, then CLOSED */
    net_write(o->c, "QUIT\r\n", 6);
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT);
    assert_string_equal(o->lines[2], "BYE");
    assert_int_equal(o->n[NET_EV_EOF], 1);
    assert_int_equal(o->n[NET_EV_ERROR], 0);
    assert_int_equal(o->ev[o->nev - 1], NET_EV_CLOSED);

    /* from a bound address; the idle timeout starts once connected */
    o = out_ok(h, "127.0.0.1", port, "127.0.0.1", WAIT);
    net_set_timeout(o->c, 100);
    RUN_UNTIL(h, o->n[NET_EV_CONNECTED] == 1, WAIT);
    uint64_t t0 = now_ms();
    assert_string_equal(o->local, "127.0.0.1");
    assert_true(o->local_port > 0);
    RUN_UNTIL(h, o->n[NET_EV_TIMEOUT] == 1, WAIT);
    assert_true(now_ms() - t0 >= 80);
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT); /* the handler closed it */
    harness_free(h);
}

/* net_connect over IPv6, and the requests it refuses at once (no event follows) */
static void
test_connect_ipv6_errors(void **state)
{
    struct harness *h = harness_new(0, 0);
    char err[256];

    (void)state;
    assert_null(out_connect(h, "mx.example", 25, NULL, WAIT, err, sizeof(err)));
    assert_string_equal(err, "connect mx.example: not an IPv4 or IPv6 address");
    assert_null(out_connect(h, "127.0.0.1", 0, NULL, WAIT, err, sizeof(err)));
    assert_null(out_connect(h, "127.0.0.1", 25, "::1", WAIT, err, sizeof(err)));
    assert_string_equal(err, "bind ::1: not the address family of the peer");
    assert_null(out_connect(h, "127.0.0.1", 25, "localhost", WAIT, err, sizeof(err)));
    assert_null(out_connect(h, "127.0.0.1", 25, "192.0.2.1", WAIT, err, sizeof(err)));
    assert_string_equal(err, "bind 192.0.2.1: address not available");

    int port = listen_on(h, "::1", 0, NULL, NULL);
    if (port > 0) {
        struct sess *o = out_ok(h, "::1", port, NULL, WAIT);
        RUN_UNTIL(h, o->n[NET_EV_CONNECTED] == 1, WAIT);
        assert_string_equal(o->peer, "::1");
        assert_string_equal(o->local, "::1");
        net_write(o->c, "six\r\n", 5);
        RUN_UNTIL(h, o->nlines == 1, WAIT);
        assert_string_equal(o->lines[0], "ECHO six");
        assert_string_equal(h->sess[0]->peer, "::1");
    }
    harness_free(h); /* aborts the open outbound connection too */
}

/* a port nobody listens on: ERROR "connect: connection refused", then CLOSED */
static void
test_connect_refused(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port, fd = raw_listen(-1, &port); /* bound, not listening: the port stays ours */

    (void)state;
    struct sess *o = out_ok(h, "127.0.0.1", port, NULL, WAIT);
    net_set_timeout(o->c, 10); /* no idle timeout before connected */
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(o->nev, 2);
    assert_int_equal(o->ev[0], NET_EV_ERROR);
    assert_int_equal(o->ev[1], NET_EV_CLOSED);
    assert_string_equal(o->error, "connect: connection refused");
    close(fd);
    harness_free(h);
}

/* the connect timeout. Loopback has no unreachable address, so the peer is a listener
 * whose accept queue is full (backlog 0, one connection never accepted): Linux drops
 * further SYNs and the connect hangs. Where the kernel accepts anyway the test skips. */
static void
test_connect_timeout(void **state)
{
    struct harness *h = harness_new(0, 0);
    int port, lfd = raw_listen(0, &port), fill[4], nfill = 0;
    bool full = false;

    (void)state;
    while (!full && nfill < 4) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        struct pollfd pfd;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fill[nfill++] = fd;
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            continue;
        assert_int_equal(errno, EINPROGRESS);
        pfd.fd = fd;
        pfd.events = POLLOUT;
        full = poll(&pfd, 1, 200) == 0; /* still connecting: the queue is full */
    }
    if (!full) {
        for (int i = 0; i < nfill; i++)
            close(fill[i]);
        close(lfd);
        harness_free(h);
        skip();
    }
    uint64_t t0 = now_ms();
    struct sess *o = out_ok(h, "127.0.0.1", port, NULL, 200);
    struct sess *stuck = out_ok(h, "127.0.0.1", port, NULL, 0); /* no timeout of its own */
    net_write(stuck->c, "never sent\r\n", 12);
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 180 && dt < 1500);
    assert_int_equal(o->nev, 2);
    assert_int_equal(o->ev[0], NET_EV_ERROR);
    assert_string_equal(o->error, "connect: timed out");
    assert_int_equal(stuck->nev, 0);
    harness_free(h); /* aborts the one still connecting: CLOSED once, nothing leaks */
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
}

/* outbound connections take no slot: with max_connections 1 and max_per_ip 1, a client
 * from 127.0.0.1 is accepted while two outbound ones to 127.0.0.1 are open */
static void
test_connect_not_counted(void **state)
{
    struct harness *h = harness_new(1, 1);
    int port = listen_on(h, "127.0.0.1", 0, NULL, "421 busy\r\n");
    int rport, lfd = raw_listen(8, &rport);
    struct cli cl;
    long now;

    (void)state;
    struct sess *o1 = out_ok(h, "127.0.0.1", rport, NULL, WAIT);
    struct sess *o2 = out_ok(h, "127.0.0.1", rport, "127.0.0.1", WAIT);
    RUN_UNTIL(h, o1->n[NET_EV_CONNECTED] == 1 && o2->n[NET_EV_CONNECTED] == 1, WAIT);
    int a1 = raw_accept(h, lfd), a2 = raw_accept(h, lfd);
    net_server_counts(h->srv, &now, NULL, NULL);
    assert_int_equal(now, 0);
    cli_connect(&cl, port);
    cli_send(h, &cl, "in\r\n");
    assert_true(cli_wait(h, &cl, "ECHO in\r\n"));
    net_server_counts(h->srv, &now, NULL, NULL);
    assert_int_equal(now, 1);

    /* data the other way on an outbound one */
    assert_int_equal(send(a1, "from afar\r\n", 11, 0), 11);
    RUN_UNTIL(h, o1->nlines == 1, WAIT);
    assert_string_equal(o1->lines[0], "from afar");
    cli_close(&cl);
    harness_free(h); /* frees the two outbound connections still open */
    close(a1);
    close(a2);
    close(lfd);
}

/* client STARTTLS against the server side's: TLS_READY on both ends, data after it, and
 * net_tls_verified: false for a self-signed certificate, true once the client trusts it
 * and the name matches, false for another name or none */
static void
test_client_starttls(void **state)
{
    struct harness *h = harness_new(0, 0);
    char err[256];
    SSL_CTX *plain = tls_client_ctx(err, sizeof(err)), *trust = tls_client_ctx(err, sizeof(err));
    struct {
        SSL_CTX *ctx;
        const char *sni;
        bool verified;
    } cases[] = {
        {plain, "localhost", false},
        {trust, "localhost", true},
        {trust, "other.example", false},
        {trust, NULL, false},
    };

    (void)state;
    assert_non_null(plain);
    assert_non_null(trust);
    assert_int_equal(SSL_CTX_load_verify_locations(trust, cert_path, NULL), 1);
    h->tls = server_ctx();
    int port = listen_on(h, "127.0.0.1", 0, NULL, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sess *o = out_ok(h, "127.0.0.1", port, NULL, WAIT);
        o->cli_tls = cases[i].ctx;
        o->sni = cases[i].sni;
        assert_int_equal(net_starttls_client(o->c, o->cli_tls, o->sni), -1); /* not yet */
        net_write(o->c, "STARTTLS\r\n", 10);
        RUN_UNTIL(h, o->n[NET_EV_TLS_READY] == 1, WAIT);
        assert_int_equal(o->n[NET_EV_TLS_READY], 1);
        net_write(o->c, "after\r\n", 7);
        RUN_UNTIL(h, o->nlines == 2, WAIT);
        assert_string_equal(o->lines[1], "ECHO tls after");
        struct sess *s = h->sess[i];
        assert_int_equal(s->n[NET_EV_TLS_READY], 1);
        assert_false(s->verified); /* the server side asked for no certificate */
        assert_true(strncmp(o->tls_desc, "TLSv1.3 cipher=", 15) == 0);
        assert_string_equal(o->tls_desc, s->tls_desc);
        assert_int_equal(o->verified, cases[i].verified);
        assert_int_equal(o->n[NET_EV_ERROR] + s->n[NET_EV_ERROR], 0);
        if (i == 0) { /* close_notify and FIN: the server sees the end */
            net_close(o->c);
            RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1 && s->n[NET_EV_CLOSED] == 1, WAIT);
            assert_int_equal(s->n[NET_EV_EOF], 1);
        }
    }
    harness_free(h); /* three TLS connections still open on both ends */
    SSL_CTX_free(plain);
    SSL_CTX_free(trust);
}

/* client TLS towards a server that answers the hello with plaintext: ERROR, CLOSED */
static void
test_client_tls_garbage(void **state)
{
    struct harness *h = harness_new(0, 0);
    int rport, lfd = raw_listen(8, &rport);
    char err[256], hello[4096];

    (void)state;
    SSL_CTX *ctx = tls_client_ctx(err, sizeof(err));
    assert_non_null(ctx);
    struct sess *o = out_ok(h, "127.0.0.1", rport, NULL, WAIT);
    RUN_UNTIL(h, o->n[NET_EV_CONNECTED] == 1, WAIT);
    int fd = raw_accept(h, lfd);
    assert_int_equal(net_starttls_client(o->c, ctx, "mx.example"), 0);
    assert_int_equal(o->nev, 1); /* the hello goes out from the loop */
    ssize_t r = -1;
    uint64_t end = now_ms() + WAIT;
    while (r <= 0 && now_ms() < end) {
        r = recv(fd, hello, sizeof(hello), MSG_DONTWAIT);
        if (r <= 0)
            step(h);
    }
    assert_true(r > 5);
    assert_int_equal(hello[0], 0x16); /* a handshake record */
    assert_int_equal(send(fd, "500 what is this?\r\n", 19, 0), 19);
    RUN_UNTIL(h, o->n[NET_EV_CLOSED] == 1, WAIT);
    assert_int_equal(o->n[NET_EV_ERROR], 1);
    assert_int_equal(o->n[NET_EV_TLS_READY], 0);
    assert_int_equal(o->n[NET_EV_DATA], 0);
    assert_true(strncmp(o->error, "TLS handshake failed: ", 22) == 0);
    close(fd);
    close(lfd);
    SSL_CTX_free(ctx);
    harness_free(h);
}

UU_MAIN(group_setup, group_teardown, cmocka_unit_test(test_connect_echo),
        cmocka_unit_test(test_connect_ipv6_errors), cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout), cmocka_unit_test(test_connect_not_counted),
        cmocka_unit_test(test_client_starttls), cmocka_unit_test(test_client_tls_garbage))
