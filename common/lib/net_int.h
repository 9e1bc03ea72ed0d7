/*
 * net_int - what the files of the net module share (net.c: connections; net_tls.c: their
 * TLS layer; net_server.c: listeners and caps; net_client.c: outbound connections).
 * Nothing outside net includes this.
 */
#ifndef DMAIL_NET_INT_H
#define DMAIL_NET_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net.h"

#define NET_READ_CHUNK (64 * 1024) /* one socket read */

struct net_listener;

/* one address with connections that count toward max_per_ip */
struct net_ipent {
    struct net_ipent *next; /* hash chain */
    struct net_conn *conns; /* those connections, linked by net.c */
    long n;                 /* how many */
    char ip[INET6_ADDRSTRLEN];
};

struct net_server {
    uv_loop_t *loop;
    struct net_limits lim;
    bool (*trusted)(void *arg, const char *ip); /* exempt from max_per_ip */
    void *trusted_arg;
    struct net_listener *listeners; /* in net_listen order */
    struct net_conn *conns;         /* linked by net.c */
    long now, peak, total;
    struct net_ipent **ipt;
    size_t ipt_size, ipt_count;
    bool freeing;
    bool suspended;            /* net_server_suspend: the listeners are not watched */
    char rbuf[NET_READ_CHUNK]; /* socket reads land here; the loop is single-threaded */
};

/* a connection's life: see net.c */
enum net_state {
    NET_CS_OPEN,
    NET_CS_CLOSING,
    NET_CS_LINGER,
    NET_CS_DEAD,
};

/* where TLS stands on a connection: see net_tls.c */
enum net_tls {
    NET_TLS_NONE,
    NET_TLS_HANDSHAKE,
    NET_TLS_ON,
};

/* one uv_write of a connection, the bytes inline */
struct net_wreq {
    uv_write_t req;
    struct net_conn *c;
    size_t len;
    char data[];
};

/* one connection; net.c owns it, net_tls.c runs its TLS layer */
struct net_conn {
    struct net_server *srv;
    struct net_conn *prev, *next;       /* all of the server's */
    struct net_ipent *ipe;              /* counted (now, max_per_ip) while not NULL */
    struct net_conn *ip_prev, *ip_next; /* in ipe->conns */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_idle_t defer;
    uv_shutdown_t shut;
    int handles;
    int refs;
    enum net_state state;
    net_event_cb cb;
    void *arg;
    struct buf in;
    bool paused;      /* net_pause_read in force */
    bool reading;     /* uv_read_start in force */
    bool eof;         /* no more input from the peer */
    bool announce;    /* buffered input to announce with NET_EV_DATA */
    bool err_pending; /* a failure to report from the deferred callback */
    bool tls_more;    /* the TLS layer may hold more plaintext than the buffer took */
    bool closed_sent;
    bool connecting; /* net_connect under way: output held, no input, no idle timer */
    uint64_t timeout_ms;
    size_t pending; /* bytes in uv_write requests */
    int cork;
    char *stage; /* output held while corked or during a handshake */
    size_t stage_len, stage_size;
    SSL *ssl;
    enum net_tls tls;
    char tls_desc[96];
    char error[160];
    char peer_ip[INET6_ADDRSTRLEN];
    char local_ip[INET6_ADDRSTRLEN];
    int peer_port, local_port;
};

/* net_server.c */
/* net_addr_parse - ss and its length for a numeric IPv4 or IPv6 address and a port; 0,
 * or -1 when addr is neither. */
int net_addr_parse(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl);
/* net_addr_format - numeric address and port of ss; IPv4-mapped IPv6 shown as IPv4. */
void net_addr_format(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port);
/* net_ip_lookup - the entry of ip, NULL when no connection from it counts. */
struct net_ipent *net_ip_lookup(struct net_server *s, const char *ip);
/* net_ip_hold - count one connection more for ip; its entry. */
struct net_ipent *net_ip_hold(struct net_server *s, const char *ip);
/* net_ip_release - count one connection less; the entry is freed with the last. */
void net_ip_release(struct net_server *s, struct net_ipent *e);
/* net_server_maybe_free - free a server being freed once nothing of it is open. */
void net_server_maybe_free(struct net_server *s);

/* net.c */
/* net_conn_new - wrap a socket (an accepted one, or one net_connect is connecting) in a
 * connection that counts toward no cap; peer ip:port as given, the local address as the
 * socket has it now. NULL on failure, the socket closed and the reason in err. */
struct net_conn *net_conn_new(struct net_server *s, int fd, const char *ip, int port, char *err,
                              size_t errlen);
/* net_conn_accept - make a connection of an accepted socket (closed on failure), start
 * implicit TLS when tls != NULL, and call cb. */
void net_conn_accept(struct net_server *s, int fd, const char *ip, int port, SSL_CTX *tls,
                     net_accept_cb cb, void *arg);
/* net_conn_recount_ip - connections of e still counting, after giving up the slots of
 * those whose peer has already gone (checked with MSG_PEEK). e may be freed meanwhile. */
long net_conn_recount_ip(struct net_ipent *e);
/* net_conn_abort_all - net_abort every connection of s. */
void net_conn_abort_all(struct net_server *s);
/* net_set_error - remember why the connection failed (net_error). */
void net_set_error(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* net_defer - run the deferred work (a failure to report with c->err_pending, plaintext
 * the TLS layer still holds, input to announce) on the next loop iteration. */
void net_defer(struct net_conn *c);
/* net_emit - deliver one event, if the connection still takes events. */
void net_emit(struct net_conn *c, enum net_event ev);
/* net_unref - drop a reference taken (c->refs++) around callbacks from the loop; frees
 * the connection if its handles closed meanwhile. */
void net_unref(struct net_conn *c);
/* net_local_update - read the local address of the socket again (after a connect). */
void net_local_update(struct net_conn *c);
/* net_update_read - read from the socket exactly when input is wanted and fits. */
void net_update_read(struct net_conn *c);
/* net_input_end - the peer closed its side (err UV_EOF: NET_EV_EOF, then net_close) or
 * the read failed (NET_EV_ERROR, then net_abort). */
void net_input_end(struct net_conn *c, int err);
/* net_stage_flush - send the output held while corked or during a handshake. */
void net_stage_flush(struct net_conn *c);
/* net_wreq_new / net_wreq_send - a write request with room for n bytes; hand it filled
 * to libuv (counted in c->pending; a failure is reported from the deferred work). */
struct net_wreq *net_wreq_new(struct net_conn *c, size_t n);
void net_wreq_send(struct net_conn *c, struct net_wreq *w);

/* net_tls.c */
/* net_tls_begin - attach a server-side SSL over memory BIOs (c->tls becomes
 * NET_TLS_HANDSHAKE); 0, or -1 with net_error set. */
int net_tls_begin(struct net_conn *c, SSL_CTX *ctx);
/* net_tls_input - n bytes of ciphertext from the socket: handshake or read on. */
void net_tls_input(struct net_conn *c, const char *p, size_t n);
/* net_tls_read - handshake if needed (NET_EV_TLS_READY), then move plaintext into the
 * input buffer as far as it fits and reading is not paused; NET_EV_DATA for new input. */
void net_tls_read(struct net_conn *c);
/* net_tls_write - n bytes of plaintext out through TLS (c->tls is NET_TLS_ON). */
void net_tls_write(struct net_conn *c, const char *p, size_t n);
/* net_tls_shutdown - send our close_notify (c->tls is NET_TLS_ON). */
void net_tls_shutdown(struct net_conn *c);

#endif
