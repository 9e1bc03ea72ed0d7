/*
 * test_net - listeners and connections on a real libuv loop on 127.0.0.1 (and ::1 when
 * the host has it), port 0. The server side runs a small line protocol (echo, QUIT,
 * BIG n, STARTTLS...); the client side is plain sockets (and OpenSSL) in the same
 * thread, made non-blocking, with the loop stepped while the client waits. Every wait
 * is bounded.
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

#define MAXSESS 64
#define MAXEV 64
#define MAXLINES 32
#define BIGN (32u << 20) /* more than loopback's socket buffers hold */
#define WAIT 3000        /* ms: the longest any single step may take */

/* the server side of one accepted connection */
struct sess {
    struct harness *h;
    struct net_conn *c;
    struct linereader lr;
    enum net_event ev[MAXEV];
    int nev;
    int n[NET_EV_CLOSED + 1]; /* count per event */
    char lines[MAXLINES][64];
    int nlines;
    int toolong;
    bool hold;        /* take no input (the buffer fills up) */
    size_t pend_big;  /* net_pending right after BIG */
    size_t pend_cork; /* net_pending while corked */
    char peer[64], local[64];
    int peer_port, local_port;
    char tls_desc[128];
    char error[200];
};

struct harness {
    uv_loop_t loop;
    uv_timer_t tick;
    struct net_server *srv;
    SSL_CTX *tls;
    struct sess *sess[MAXSESS];
    int nsess;
    uint64_t timeout_ms; /* given to every accepted connection */
    size_t inbuf_cap;    /* likewise, when not 0 */
};

/* one client connection */
struct cli {
    int fd;
    SSL *ssl;
    char buf[8192];
    size_t len;
    size_t count; /* bytes read in counting mode */
    bool eof;
};

static char tmpdir[64];
static char cert_path[128], key_path[128], key2_path[128];
static SSL_CTX *client_ctx;

/* ---- harness ---- */

static uint64_t
now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void
tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* step - one loop iteration; the tick timer bounds it to a few ms */
static void
step(struct harness *h)
{
    uv_run(&h->loop, UV_RUN_ONCE);
}

#define RUN_UNTIL(h, cond, ms)                                                                     \
    do {                                                                                           \
        uint64_t end_ = now_ms() + (ms);                                                           \
        while (!(cond) && now_ms() < end_)                                                         \
            step(h);                                                                               \
    } while (0)

/* pump - run the loop for ms */
static void
pump(struct harness *h, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        step(h);
}

static struct harness *
harness_new(long max_conn, long max_ip)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct net_limits lim = {max_conn, max_ip};

    assert_non_null(h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->tick);
    uv_timer_start(&h->tick, tick_cb, 2, 2);
    h->srv = net_server_new(&h->loop, &lim);
    assert_non_null(h->srv);
    return h;
}

static void
harness_free(struct harness *h)
{
    net_server_free(&h->srv);
    assert_null(h->srv);
    uv_timer_stop(&h->tick);
    uv_close((uv_handle_t *)&h->tick, NULL);
    for (int i = 0; i < 2000 && uv_loop_alive(&h->loop); i++) {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    /* every handle of the server and its connections is closed */
    assert_int_equal(uv_loop_close(&h->loop), 0);
    for (int i = 0; i < h->nsess; i++) {
        assert_int_equal(h->sess[i]->n[NET_EV_CLOSED], 1);
        free(h->sess[i]);
    }
    SSL_CTX_free(h->tls);
    free(h);
}

/* ---- the test protocol ---- */

static void
sess_line(struct sess *s, char *line)
{
    struct net_conn *c = s->c;
    unsigned long n;

    if (s->nlines < MAXLINES)
        snprintf(s->lines[s->nlines++], sizeof(s->lines[0]), "%s", line);
    if (strcmp(line, "QUIT") == 0) {
        net_write(c, "BYE\r\n", 5);
        net_close(c);
    } else if (strcmp(line, "ABORT") == 0) {
        net_abort(c);
    } else if (sscanf(line, "BIG %lu", &n) == 1 || sscanf(line, "BIGQUIT %lu", &n) == 1) {
        char *p = malloc(n + 2);
        assert_non_null(p);
        memset(p, 'x', n);
        memcpy(p + n, "\r\n", 2);
        net_write(c, p, n + 2);
        free(p);
        s->pend_big = net_pending(c);
        if (strncmp(line, "BIGQUIT", 7) == 0)
            net_close(c);
    } else if (strcmp(line, "STARTTLS") == 0) {
        net_write(c, "GO\r\n", 4);
        assert_int_equal(net_starttls(c, s->h->tls), 0);
        assert_int_equal(net_inbuf(c)->len, 0); /* what followed the command is gone */
        assert_int_equal(net_starttls(c, s->h->tls), -1);
    } else if (strcmp(line, "HOLD") == 0) {
        net_write(c, "HOLDING\r\n", 9);
        s->hold = true;
    } else if (strcmp(line, "PAUSE") == 0) {
        net_write(c, "PAUSED\r\n", 8);
        net_pause_read(c);
    } else if (strcmp(line, "CORK") == 0) {
        net_cork(c);
        net_cork(c);
        net_write(c, "A\r\n", 3);
        net_uncork(c);
        net_printf(c, "%s\r\n", "B");
        s->pend_cork = net_pending(c);
        net_uncork(c);
        net_uncork(c); /* one too many: harmless */
    } else {
        net_printf(c, "ECHO %s%s\r\n", net_is_tls(c) ? "tls " : "", line);
    }
}

static void
sess_input(struct sess *s)
{
    char *line;
    size_t len;
    enum buf_line r;

    while (s->c != NULL && (r = buf_getline(net_inbuf(s->c), &s->lr, &line, &len, NULL))) {
        if (r == BUF_TOOLONG) {
            s->toolong++;
            continue;
        }
        sess_line(s, line);
        /* after these nothing more is taken (after STARTTLS the buffer is empty) */
        if (strcmp(line, "QUIT") == 0 || strcmp(line, "ABORT") == 0 || strcmp(line, "PAUSE") == 0 ||
            strcmp(line, "HOLD") == 0 || strncmp(line, "BIGQUIT", 7) == 0)
            break;
    }
}

static void
sess_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct sess *s = arg;

    assert_ptr_equal(c, s->c);
    assert_int_equal(s->n[NET_EV_CLOSED], 0); /* nothing after CLOSED */
    if (s->nev < MAXEV && ev != NET_EV_DRAIN) /* the sequence leaves DRAIN out */
        s->ev[s->nev++] = ev;
    s->n[ev]++;
    switch (ev) {
    case NET_EV_DATA:
        if (!s->hold)
            sess_input(s);
        break;
    case NET_EV_TIMEOUT:
        net_write(c, "TIMEOUT\r\n", 9);
        net_close(c);
        break;
    case NET_EV_TLS_READY:
        snprintf(s->tls_desc, sizeof(s->tls_desc), "%s", net_tls_desc(c));
        assert_true(net_is_tls(c));
        break;
    case NET_EV_ERROR:
        snprintf(s->error, sizeof(s->error), "%s", net_error(c));
        break;
    case NET_EV_CLOSED:
        s->c = NULL;
        break;
    case NET_EV_DRAIN:
        assert_int_equal(net_pending(c), 0);
        break;
    case NET_EV_EOF:
        break;
    }
}

static void
on_accept(struct net_conn *c, void *arg)
{
    struct harness *h = arg;
    struct sess *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_true(h->nsess < MAXSESS);
    h->sess[h->nsess++] = s;
    s->h = h;
    s->c = c;
    linereader_init(&s->lr, 512);
    snprintf(s->peer, sizeof(s->peer), "%s", net_peer_ip(c));
    snprintf(s->local, sizeof(s->local), "%s", net_local_ip(c));
    s->peer_port = net_peer_port(c);
    s->local_port = net_local_port(c);
    assert_ptr_equal(net_loop(c), &h->loop);
    assert_string_equal(net_tls_desc(c), "");
    net_set_cb(c, sess_event, s);
    if (h->timeout_ms)
        net_set_timeout(c, h->timeout_ms);
    if (h->inbuf_cap)
        net_set_inbuf_cap(c, h->inbuf_cap);
}

/* listen - a listener on addr port 0 (or port); returns the bound port */
static int
listen_on(struct harness *h, const char *addr, int port, SSL_CTX *tls, const char *refuse)
{
    char err[256] = "";
    int rc = net_listen(h->srv, addr, port, tls, refuse, on_accept, h, err, sizeof(err));

    if (rc < 0)
        return rc;
    int idx = 0;
    while (net_listener_port(h->srv, idx + 1) > 0)
        idx++;
    return net_listener_port(h->srv, idx);
}

/* ---- client ---- */

static void
cli_connect_fam(struct cli *cl, int fam, int port)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    memset(cl, 0, sizeof(*cl));
    memset(&ss, 0, sizeof(ss));
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    cl->fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(cl->fd >= 0);
    /* loopback: the kernel completes the handshake from the backlog */
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&ss, sl), 0);
    fcntl(cl->fd, F_SETFL, fcntl(cl->fd, F_GETFL) | O_NONBLOCK);
}

static void
cli_connect(struct cli *cl, int port)
{
    cli_connect_fam(cl, AF_INET, port);
}

static void
cli_close(struct cli *cl)
{
    if (cl->ssl != NULL)
        SSL_free(cl->ssl);
    cl->ssl = NULL;
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
}

static void
cli_send(struct harness *h, struct cli *cl, const char *s)
{
    size_t n = strlen(s), off = 0;
    uint64_t end = now_ms() + WAIT;

    while (off < n && now_ms() < end) {
        ssize_t r;
        if (cl->ssl != NULL) {
            size_t w = 0;
            r = SSL_write_ex(cl->ssl, s + off, n - off, &w) == 1 ? (ssize_t)w : -1;
        } else {
            r = send(cl->fd, s + off, n - off, MSG_NOSIGNAL);
        }
        if (r > 0)
            off += (size_t)r;
        else
            step(h);
    }
    assert_int_equal(off, n);
}

/* cli_read - one non-blocking read: keeps text (count == false) or counts bytes */
static void
cli_read(struct cli *cl, bool count)
{
    char tmp[65536];
    size_t want = count ? sizeof(tmp) : sizeof(cl->buf) - 1 - cl->len;
    ssize_t r;

    if (cl->eof || want == 0)
        return;
    if (cl->ssl != NULL) {
        size_t got = 0;
        ERR_clear_error();
        if (SSL_read_ex(cl->ssl, tmp, want, &got) == 1) {
            r = (ssize_t)got;
        } else {
            int e = SSL_get_error(cl->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            cl->eof = true;
            return;
        }
    } else {
        r = recv(cl->fd, tmp, want, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            cl->eof = true;
            return;
        }
    }
    if (count) {
        cl->count += (size_t)r;
    } else {
        memcpy(cl->buf + cl->len, tmp, (size_t)r);
        cl->len += (size_t)r;
        cl->buf[cl->len] = '\0';
    }
}

/* cli_wait - read until needle has arrived (true) or EOF/timeout (false) */
static bool
cli_wait(struct harness *h, struct cli *cl, const char *needle)
{
    uint64_t end = now_ms() + WAIT;

    cl->buf[cl->len] = '\0';
    while (strstr(cl->buf, needle) == NULL && !cl->eof && now_ms() < end) {
        cli_read(cl, false);
        if (strstr(cl->buf, needle) == NULL && !cl->eof)
            step(h);
    }
    return strstr(cl->buf, needle) != NULL;
}

/* cli_wait_eof - read (keeping text) until the server closed */
static bool
cli_wait_eof(struct harness *h, struct cli *cl)
{
    uint64_t end = now_ms() + WAIT;

    while (!cl->eof && now_ms() < end) {
        cli_read(cl, false);
        if (!cl->eof)
            step(h);
    }
    return cl->eof;
}

/* cli_count - read and count until n bytes arrived or EOF/timeout */
static size_t
cli_count(struct harness *h, struct cli *cl, size_t n)
{
    uint64_t end = now_ms() + 4 * WAIT;

    while (cl->count < n && !cl->eof && now_ms() < end) {
        size_t before = cl->count;
        cli_read(cl, true);
        if (cl->count == before)
            step(h);
    }
    return cl->count;
}

/* cli_tls - TLS handshake over the client's socket, the loop stepping meanwhile */
static bool
cli_tls(struct harness *h, struct cli *cl, SSL_CTX *ctx)
{
    uint64_t end = now_ms() + WAIT;

    cl->ssl = SSL_new(ctx);
    assert_non_null(cl->ssl);
    SSL_set_fd(cl->ssl, cl->fd);
    SSL_set_connect_state(cl->ssl);
    while (now_ms() < end) {
        ERR_clear_error();
        int r = SSL_connect(cl->ssl);
        if (r == 1)
            return true;
        int e = SSL_get_error(cl->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return false;
        step(h);
    }
    return false;
}

static int
count_lines(const struct sess *s, const char *line)
{
    int n = 0;
    for (int i = 0; i < s->nlines; i++)
        n += strcmp(s->lines[i], line) == 0;
    return n;
}

/* ---- certificates ---- */

static EVP_PKEY *
make_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void
write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* group_setup - a self-signed certificate and two keys in a temp directory */
static int
group_setup(void **state)
{
    EVP_PKEY *k = make_key(), *k2 = make_key();
    X509 *x = X509_new();
    X509_NAME *name;
    FILE *f;

    (void)state;
    /* as a server's start-up would: nothing of the loop may land on 0-2 */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n > 2)
                close(n);
        }
    }
    if (uu_tmpdir_into(tmpdir, sizeof(tmpdir), "test_net") < 0)
        return -1;
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
    snprintf(key2_path, sizeof(key2_path), "%s/key2.pem", tmpdir);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, k, EVP_sha256()) == 0)
        return -1;
    f = fopen(cert_path, "w");
    if (f == NULL)
        return -1;
    PEM_write_X509(f, x);
    fclose(f);
    write_key(key_path, k);
    write_key(key2_path, k2);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    uu_rmtree(tmpdir);
    SSL_CTX_free(client_ctx);
    return 0;
}

static SSL_CTX *
server_ctx(void)
{
    char err[256];
    SSL_CTX *ctx = tls_server_ctx(cert_path, key_path, err, sizeof(err));
    if (ctx == NULL)
        fail_msg("tls_server_ctx: %s", err);
    return ctx;
}

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

/* tls_server_ctx: settings and error messages */
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
