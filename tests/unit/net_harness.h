/*
 * net_harness - what the net tests share (test_net: the server side; test_net_client:
 * outbound connections): a libuv loop with a net_server, a small line protocol on the
 * server side (echo, QUIT, BIG n, STARTTLS...), plain-socket and OpenSSL clients in the
 * same thread (non-blocking, the loop stepped while they wait), and a self-signed
 * certificate in a temp directory (group_setup). Every wait is bounded. Outbound
 * connections (net_connect) run the same session code as a client: an "outbound"
 * session records what it gets and answers nothing, but for the server's "GO" to STARTTLS
 * (net_starttls_client with its cli_tls and sni). harness_setup/harness_teardown make a
 * per-test fixture of a harness, its listener and a client; cli_expect, cli_open,
 * cli_quit, sess_closed and SESS_EVENTS state the usual steps and checks in one line.
 */
#ifndef DMAIL_NET_HARNESS_H
#define DMAIL_NET_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "net.h"

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
    bool outbound;    /* made by net_connect */
    bool verified;    /* net_tls_verified at NET_EV_TLS_READY */
    SSL_CTX *cli_tls; /* outbound: on the line "GO", net_starttls_client with it */
    const char *sni;  /* and this host */
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

struct harness {
    uv_loop_t loop;
    uv_timer_t tick;
    struct net_server *srv;
    SSL_CTX *tls;
    struct sess *sess[MAXSESS];
    int nsess;
    struct sess *out[MAXSESS]; /* outbound sessions */
    int nout;
    uint64_t timeout_ms; /* given to every accepted connection */
    size_t inbuf_cap;    /* likewise, when not 0 */
    /* harness_setup's listener and clients */
    int port;
    struct cli cl;
    struct cli more[3];
};

extern char tmpdir[64];
extern char cert_path[128], key_path[128], key2_path[128];
extern SSL_CTX *client_ctx;

#define RUN_UNTIL(h, cond, ms)                                                                     \
    do {                                                                                           \
        uint64_t end_ = now_ms() + (ms);                                                           \
        while (!(cond) && now_ms() < end_)                                                         \
            step(h);                                                                               \
    } while (0)

/* the loop: now_ms - a monotonic clock; step - one loop iteration (a few ms at most);
 * pump - run the loop for ms */
uint64_t now_ms(void);
void step(struct harness *h);
void pump(struct harness *h, uint64_t ms);
/* harness_new/harness_free - a loop and a server with these caps; harness_free frees the
 * server, checks that every handle closed and every session got NET_EV_CLOSED once */
struct harness *harness_new(long max_conn, long max_ip);
void harness_free(struct harness *h);
/* the server side's line protocol; on_accept starts a session, listen_on listens on addr
 * (port 0: any) and returns the bound port or a negative uv error */
void sess_line(struct sess *s, char *line);
void sess_input(struct sess *s);
void sess_event(struct net_conn *c, enum net_event ev, void *arg);
void on_accept(struct net_conn *c, void *arg);
int listen_on(struct harness *h, const char *addr, int port, SSL_CTX *tls, const char *refuse);
/* plain-socket clients (cli_tls: OpenSSL over the socket) */
void cli_connect_fam(struct cli *cl, int fam, int port);
void cli_connect(struct cli *cl, int port);
void cli_close(struct cli *cl);
void cli_send(struct harness *h, struct cli *cl, const char *s);
void cli_read(struct cli *cl, bool count);
bool cli_wait(struct harness *h, struct cli *cl, const char *needle);
bool cli_wait_eof(struct harness *h, struct cli *cl);
size_t cli_count(struct harness *h, struct cli *cl, size_t n);
bool cli_tls(struct harness *h, struct cli *cl, SSL_CTX *ctx);
/* out_connect - net_connect from the harness's server to an outbound session; NULL with
 * err filled (then no event came); out_ok - the same, failing the test on NULL */
struct sess *out_connect(struct harness *h, const char *ip, int port, const char *bind_ip,
                         uint64_t ms, char *err, size_t errlen);
struct sess *out_ok(struct harness *h, const char *ip, int port, const char *bind_ip, uint64_t ms);
/* raw_listen - a plain non-blocking socket bound to 127.0.0.1 port 0, listening with
 * backlog unless backlog < 0; its port in *port. raw_accept - accept on it, the loop
 * stepping meanwhile */
int raw_listen(int backlog, int *port);
int raw_accept(struct harness *h, int lfd);
/* count_lines - how many times a session got line */
int count_lines(const struct sess *s, const char *line);
/* cli_expect - send s; the replies read so far come to hold want (fails the test if not);
 * cli_quit - QUIT, then BYE and EOF */
void cli_expect(struct harness *h, struct cli *cl, const char *s, const char *want);
void cli_quit(struct harness *h, struct cli *cl);
/* cli_open - connect cl to harness_setup's listener (h->port), then cli_expect s, want */
void cli_open(struct harness *h, struct cli *cl, const char *s, const char *want);
/* sess_closed - run until s got CLOSED (ms at most): it got it exactly once.
 * sess_events - s got exactly these events (DRAIN left out), in this order */
void sess_closed(struct harness *h, struct sess *s, uint64_t ms);
void sess_events_are(const struct sess *s, const enum net_event *want, int n);
#define SESS_EVENTS(s, ...)                                                                        \
    sess_events_are(s, (const enum net_event[]){__VA_ARGS__},                                      \
                    (int)(sizeof((const enum net_event[]){__VA_ARGS__}) / sizeof(enum net_event)))

/* A per-test fixture, harness_setup/harness_teardown as cmocka setup and teardown: *state
 * is a harness (harness_new(max_conn, max_ip)) with one listener on 127.0.0.1 port 0 (its
 * port in port, checked > 0) and a client cl connected to it (not yet accepted: the loop
 * has not run), and room for more clients (more[], fd -1 until connected). The prestate,
 * a struct harness_opts (NULL: all zero), says what differs; inbuf_cap and timeout_ms are
 * set before the client connects. harness_teardown closes every client (a no-op for those
 * the test closed) and frees the harness with harness_free's checks. */
struct harness_opts {
    long max_conn, max_ip;
    bool tls;           /* h->tls = server_ctx(), and the listener speaks implicit TLS */
    bool starttls;      /* h->tls = server_ctx(), for STARTTLS on the plain listener */
    const char *refuse; /* the listener's refusal line */
    size_t inbuf_cap;
    uint64_t timeout_ms;
};
int harness_setup(void **state);
int harness_teardown(void **state);

/* group_setup/group_teardown - the certificate and keys (cert_path, key_path, key2_path)
 * and client_ctx; server_ctx - tls_server_ctx for them */
int group_setup(void **state);
int group_teardown(void **state);
SSL_CTX *server_ctx(void);

#endif
