/*
 * net_harness - what the net tests share (the contract is in net_harness.h).
 */
#include "net_harness.h"
#include "unit_util.h"

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

char tmpdir[64];
char cert_path[128], key_path[128], key2_path[128];
SSL_CTX *client_ctx;

/* ---- harness ---- */

uint64_t
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
void
step(struct harness *h)
{
    uv_run(&h->loop, UV_RUN_ONCE);
}

/* pump - run the loop for ms */
void
pump(struct harness *h, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end)
        step(h);
}

struct harness *
harness_new(long max_conn, long max_ip)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct net_limits lim = {max_conn, max_ip, 0};

    assert_non_null(h);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->tick);
    uv_timer_start(&h->tick, tick_cb, 2, 2);
    h->srv = net_server_new(&h->loop, &lim);
    assert_non_null(h->srv);
    return h;
}

void
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
    for (int i = 0; i < h->nout; i++) {
        assert_int_equal(h->out[i]->n[NET_EV_CLOSED], 1);
        free(h->out[i]);
    }
    SSL_CTX_free(h->tls);
    free(h);
}

/* ---- the test protocol ---- */

void
sess_line(struct sess *s, char *line)
{
    struct net_conn *c = s->c;
    unsigned long n;

    if (s->nlines < MAXLINES)
        snprintf(s->lines[s->nlines++], sizeof(s->lines[0]), "%s", line);
    if (s->outbound) {
        if (strcmp(line, "GO") == 0 && s->cli_tls != NULL) {
            assert_int_equal(net_starttls_client(c, s->cli_tls, s->sni), 0);
            assert_int_equal(net_starttls_client(c, s->cli_tls, s->sni), -1);
        }
        return;
    }
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

void
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

void
sess_event(struct net_conn *c, enum net_event ev, void *arg)
{
    struct sess *s = arg;

    assert_ptr_equal(c, s->c);
    assert_int_equal(s->n[NET_EV_CLOSED], 0); /* nothing after CLOSED */
    if (s->nev < MAXEV && ev != NET_EV_DRAIN) /* the sequence leaves DRAIN out */
        s->ev[s->nev++] = ev;
    s->n[ev]++;
    switch (ev) {
    case NET_EV_CONNECTED:
        assert_true(s->outbound);
        assert_int_equal(s->nev, 1); /* the first event */
        snprintf(s->peer, sizeof(s->peer), "%s", net_peer_ip(c));
        snprintf(s->local, sizeof(s->local), "%s", net_local_ip(c));
        s->peer_port = net_peer_port(c);
        s->local_port = net_local_port(c);
        break;
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
        s->verified = net_tls_verified(c);
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

void
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
int
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

/* out_connect - net_connect from the harness's server; NULL with err filled */
struct sess *
out_connect(struct harness *h, const char *ip, int port, const char *bind_ip, uint64_t ms,
            char *err, size_t errlen)
{
    struct sess *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    assert_true(h->nout < MAXSESS);
    s->h = h;
    s->outbound = true;
    linereader_init(&s->lr, 512);
    s->c = net_connect(h->srv, ip, port, bind_ip, ms, sess_event, s, err, errlen);
    if (s->c == NULL) {
        free(s);
        return NULL;
    }
    assert_int_equal(s->nev, 0); /* nothing from inside net_connect */
    h->out[h->nout++] = s;
    return s;
}

/* out_ok - out_connect that must not fail */
struct sess *
out_ok(struct harness *h, const char *ip, int port, const char *bind_ip, uint64_t ms)
{
    char err[256] = "";
    struct sess *s = out_connect(h, ip, port, bind_ip, ms, err, sizeof(err));

    if (s == NULL)
        fail_msg("net_connect %s %d: %s", ip, port, err);
    return s;
}

/* raw_listen - a plain listening socket on 127.0.0.1 (non-blocking); its port in *port */
int
raw_listen(int backlog, int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* raw_accept - accept on a raw listener, the loop stepping meanwhile */
int
raw_accept(struct harness *h, int lfd)
{
    uint64_t end = now_ms() + WAIT;
    int fd = -1;

    while (fd < 0 && now_ms() < end) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            step(h);
    }
    assert_true(fd >= 0);
    return fd;
}

/* ---- client ---- */

void
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

void
cli_connect(struct cli *cl, int port)
{
    cli_connect_fam(cl, AF_INET, port);
}

void
cli_close(struct cli *cl)
{
    if (cl->ssl != NULL)
        SSL_free(cl->ssl);
    cl->ssl = NULL;
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
}

void
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
void
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
bool
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
bool
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
size_t
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
bool
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

int
count_lines(const struct sess *s, const char *line)
{
    int n = 0;
    for (int i = 0; i < s->nlines; i++)
        n += strcmp(s->lines[i], line) == 0;
    return n;
}

void
cli_expect(struct harness *h, struct cli *cl, const char *s, const char *want)
{
    cli_send(h, cl, s);
    if (!cli_wait(h, cl, want))
        fail_msg("sent \"%s\": no \"%s\" in \"%s\"", s, want, cl->buf);
}

void
cli_open(struct harness *h, struct cli *cl, const char *s, const char *want)
{
    cli_connect(cl, h->port);
    cli_expect(h, cl, s, want);
}

void
cli_quit(struct harness *h, struct cli *cl)
{
    cli_expect(h, cl, "QUIT\r\n", "BYE\r\n");
    assert_true(cli_wait_eof(h, cl));
}

void
sess_closed(struct harness *h, struct sess *s, uint64_t ms)
{
    RUN_UNTIL(h, s->n[NET_EV_CLOSED] == 1, ms);
    assert_int_equal(s->n[NET_EV_CLOSED], 1);
}

void
sess_events_are(const struct sess *s, const enum net_event *want, int n)
{
    assert_int_equal(s->nev, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(s->ev[i], want[i]);
}

/* ---- the per-test fixture ---- */

int
harness_setup(void **state)
{
    static const struct harness_opts none;
    const struct harness_opts *o = *state != NULL ? *state : &none;
    struct harness *h = harness_new(o->max_conn, o->max_ip);

    if (o->tls || o->starttls)
        h->tls = server_ctx();
    h->inbuf_cap = o->inbuf_cap;
    h->timeout_ms = o->timeout_ms;
    h->port = listen_on(h, "127.0.0.1", 0, o->tls ? h->tls : NULL, o->refuse);
    assert_true(h->port > 0);
    for (size_t i = 0; i < sizeof(h->more) / sizeof(h->more[0]); i++)
        h->more[i].fd = -1;
    cli_connect(&h->cl, h->port);
    *state = h;
    return 0;
}

int
harness_teardown(void **state)
{
    struct harness *h = *state;

    cli_close(&h->cl);
    for (size_t i = 0; i < sizeof(h->more) / sizeof(h->more[0]); i++)
        cli_close(&h->more[i]);
    harness_free(h);
    return 0;
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
int
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

int
group_teardown(void **state)
{
    (void)state;
    uu_rmtree(tmpdir);
    SSL_CTX_free(client_ctx);
    return 0;
}

SSL_CTX *
server_ctx(void)
{
    char err[256];
    SSL_CTX *ctx = tls_server_ctx(cert_path, key_path, NULL, err, sizeof(err));
    if (ctx == NULL)
        fail_msg("tls_server_ctx: %s", err);
    return ctx;
}
