/*
 * net - libuv TCP listeners and connections, inbound (accepted) and outbound
 * (net_connect): input buffer, write queue with back-pressure, idle timeout, connection
 * caps, descriptor budget and TLS (implicit or STARTTLS, server or client side).
 *
 * Contract:
 * - Owns: struct net_server, its listeners and every struct net_conn it accepted or
 *   opened, and their uv handles. Protocol code sees only the opaque pointers and this API.
 * - Blocks on: nothing; everything runs on the loop given to net_server_new.
 * - One callback per connection receives enum net_event. NET_EV_CLOSED is delivered
 *   exactly once, last; after the callback returns the connection is freed (the protocol
 *   frees its session there and must not touch the conn again).
 * - Input: bytes (decrypted under TLS) accumulate in the connection's struct buf (cap
 *   set by net_set_inbuf_cap, default 64 KiB); reading pauses while the buffer is full or
 *   net_pause_read() is in force. The protocol takes lines with buf_getline(net_inbuf(c))
 *   and calls net_resume_read() when it wants more.
 * - Output: net_write/net_printf queue bytes and never fail for lack of space; the
 *   protocol watches net_pending() against its own high-water mark and waits for
 *   NET_EV_DRAIN (queue fell to 0) before producing more. A plaintext send of at most
 *   NET_DIRECT_MAX bytes (one write, or what a cork held) while nothing is queued goes to
 *   the socket at once (uv_try_write): what the kernel takes is never pending and brings
 *   no NET_EV_DRAIN, so a protocol's high-water mark must be at least NET_DIRECT_MAX.
 * - net_close() flushes queued output, then closes; net_abort() closes at once.
 * - Caps: max_connections and max_per_ip are checked at accept; a refused client gets the
 *   listener's refusal line and is closed. The last `reserved` slots of max_connections
 *   (at most a fifth of them) are for trusted addresses and reserved listeners only. EMFILE/ENFILE
 * pauses accepting for a second instead of spinning.
 * - Outbound: net_connect() opens a connection to a numeric address (no DNS here) that
 *   is then like an accepted one, with the same API. Its first event is NET_EV_CONNECTED,
 *   or NET_EV_ERROR ("connect: connection refused", "connect: timed out") then
 *   NET_EV_CLOSED. Outbound connections never count toward the caps (max_connections,
 *   max_per_ip) nor in net_server_counts; net_server_free aborts them like the others.
 * - STARTTLS: net_starttls() (server side) and net_starttls_client() discard every
 *   buffered input byte (CVE-2011-0411), then handshake; NET_EV_TLS_READY or NET_EV_ERROR
 *   follows.
 * - Client TLS verifies nothing by itself (a context from tls_client_ctx() has
 *   SSL_VERIFY_NONE: opportunistic STARTTLS must work with self-signed certificates,
 *   RFC 7435); net_tls_verified() tells afterwards whether the chain verified against the
 *   context's trust store and matched the host named in net_starttls_client(), for a
 *   policy that demands it (which then closes the connection itself).
 *
 * Details:
 * - Events are never delivered from inside a net_* call the protocol makes; they come from
 *   the loop. After net_close()/net_abort() only NET_EV_CLOSED is delivered.
 * - net_resume_read() after net_pause_read() announces input still in the buffer once more
 *   (a NET_EV_DATA from the loop), so parsing can go on from the event handler.
 * - NET_EV_TIMEOUT fires once per idle period; input or net_set_timeout() re-arms it.
 * - Writes made while corked, before an outbound connection is up, or before the
 *   handshake of STARTTLS/implicit TLS is done, are held (and counted by net_pending) and
 *   sent together afterwards (held before NET_EV_CONNECTED: sent before what the
 *   NET_EV_CONNECTED handler writes).
 * - Before NET_EV_CONNECTED: no input, no NET_EV_TIMEOUT (net_set_timeout takes effect
 *   once connected; the connect has its own timeout), and net_close() is net_abort().
 * - net_close() sends the held output, a TLS close_notify and a FIN, then waits up to 2 s
 *   for the peer's FIN (discarding its input) so the last reply is not lost to a reset;
 *   net_close() as a whole gives up after 30 s of a peer that does not read.
 * - Refusals: the refusal line is sent on plaintext listeners only; an implicit-TLS
 *   listener just closes.
 * - Listening sockets are watched with uv_poll (accept4 here), so EMFILE stops the watch
 *   for a second and the backlog waits instead of being dropped. IPv6 listeners are
 *   IPV6_V6ONLY, so "0.0.0.0" and "::" can share a port. net_server_new() ignores SIGPIPE
 *   and opens /dev/null on any closed descriptor 0-2 (no socket may land there).
 */
#ifndef DMAIL_NET_H
#define DMAIL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

#include "buf.h"

struct net_server;
struct net_conn;

#define NET_DIRECT_MAX 16384 /* plaintext sends tried on the socket at once (see Output) */

enum net_event {
    NET_EV_CONNECTED, /* an outbound connection (net_connect) is up */
    NET_EV_DATA,      /* new input is in net_inbuf() */
    NET_EV_DRAIN,     /* the write queue is empty */
    NET_EV_TIMEOUT,   /* no input for the idle timeout; the conn stays open */
    NET_EV_TLS_READY, /* handshake done (implicit TLS or STARTTLS) */
    NET_EV_ERROR,     /* connect, TLS, read or write failure; NET_EV_CLOSED follows */
    NET_EV_EOF,       /* the peer closed its side; NET_EV_CLOSED follows */
    NET_EV_CLOSED,    /* last event; the conn is freed after it */
};

typedef void (*net_event_cb)(struct net_conn *c, enum net_event ev, void *arg);
/* Called for each accepted connection; it must call net_set_cb. When the listener uses
 * implicit TLS, NET_EV_TLS_READY arrives before any NET_EV_DATA. */
typedef void (*net_accept_cb)(struct net_conn *c, void *listener_arg);

struct net_limits {
    long max_connections;
    long max_per_ip;
    long reserved; /* of max_connections, only for trusted clients and reserved listeners */
};

struct net_server *net_server_new(uv_loop_t *loop, const struct net_limits *lim);
void net_server_set_limits(struct net_server *s, const struct net_limits *lim);
/* net_server_set_trusted - addresses for which trusted(arg, ip) is true are never
 * refused for max_per_ip and may take the reserved slots (they still count toward
 * max_connections). NULL: nobody. */
void net_server_set_trusted(struct net_server *s, bool (*trusted)(void *arg, const char *ip),
                            void *arg);
/* net_server_set_tls - the context the implicit-TLS listeners (net_listen with tls) give
 * the connections they accept from now on (a renewed certificate after a reload);
 * connections already open keep theirs. NULL changes nothing: a listener that serves TLS
 * keeps its last context. */
void net_server_set_tls(struct net_server *s, SSL_CTX *tls);
/* net_listen - listen on addr:port ("0.0.0.0", "::", "127.0.0.1"...). tls != NULL makes it
 * an implicit-TLS listener (a reference is taken). refuse is the line sent when the caps
 * are reached, CRLF included. Returns 0 or a negative uv error with err filled. */
int net_listen(struct net_server *s, const char *addr, int port, SSL_CTX *tls, const char *refuse,
               net_accept_cb cb, void *arg, char *err, size_t errlen);
/* net_server_counts - accepted connections open now, peak, and accepted since start
 * (outbound ones are not counted). A connection stops counting (for now and for the caps)
 * as soon as the peer has gone or it is being closed, even if its socket lingers a moment
 * longer. */
void net_server_counts(const struct net_server *s, long *now, long *peak, long *total);
/* net_listener_set_reserved - the idx-th listener (net_listen order) may take the
 * reserved slots of max_connections for anybody (submission, where clients log in). */
void net_listener_set_reserved(struct net_server *s, int idx, bool on);
/* net_listener_port - the port the idx-th listener (net_listen order, from 0) is bound to
 * (useful with port 0); -1 if there is no such listener. */
int net_listener_port(const struct net_server *s, int idx);
/* net_server_stop_listening - close the listeners (graceful shutdown). */
void net_server_stop_listening(struct net_server *s);
/* net_server_suspend - on: accept nothing more (the listeners stay open, so new clients
 * wait in the kernel's backlog; open connections go on); off: accept again. */
void net_server_suspend(struct net_server *s, bool on);
/* net_server_free - close listeners and abort every connection; frees when all closed. */
void net_server_free(struct net_server **s);

/* net_connect - connect to ip:port (numeric IPv4 or IPv6), from bind_ip when not NULL
 * (same family; port chosen by the system). timeout_ms bounds the connect (0: the
 * system's own, minutes). cb gets the connection's events, the first being
 * NET_EV_CONNECTED or NET_EV_ERROR; none comes from inside this call. Returns the
 * connection (net_peer_ip/port are ip and port; net_local_ip/port are right once
 * connected), or NULL with err filled when it cannot even start (a bad address, no
 * socket, a server being freed): then no event follows. */
struct net_conn *net_connect(struct net_server *s, const char *ip, int port, const char *bind_ip,
                             uint64_t timeout_ms, net_event_cb cb, void *arg, char *err,
                             size_t errlen);

/* net_connect_unix - connect to the Unix stream socket at path. The connect completes (or
 * fails) at once, so a failure returns NULL with err filled ("connect PATH: no such file
 * or directory") and no event; otherwise the connection is like net_connect's, its first
 * event NET_EV_CONNECTED from the loop, net_peer_ip "unix" and port 0. */
struct net_conn *net_connect_unix(struct net_server *s, const char *path, net_event_cb cb,
                                  void *arg, char *err, size_t errlen);

void net_set_cb(struct net_conn *c, net_event_cb cb, void *arg);
struct buf *net_inbuf(struct net_conn *c);
void net_set_inbuf_cap(struct net_conn *c, size_t cap);
void net_pause_read(struct net_conn *c);
void net_resume_read(struct net_conn *c);
/* net_set_timeout - idle timeout in ms (0 = none), restarted by every input. */
void net_set_timeout(struct net_conn *c, uint64_t ms);
/* net_get_timeout - the idle timeout in force (0 = none). */
uint64_t net_get_timeout(const struct net_conn *c);

void net_write(struct net_conn *c, const void *p, size_t n);
void net_printf(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t net_pending(const struct net_conn *c);
/* net_cork/net_uncork - gather writes made between them into one send. */
void net_cork(struct net_conn *c);
void net_uncork(struct net_conn *c);

void net_close(struct net_conn *c);
void net_abort(struct net_conn *c);

/* net_starttls - server side: 0 when the handshake is under way, -1 (nothing changed)
 * when TLS is already on, the connection is closing, or OpenSSL could not set up. */
int net_starttls(struct net_conn *c, SSL_CTX *tls);
/* net_starttls_client - client side (a context from tls_client_ctx), the same way; also
 * -1 before NET_EV_CONNECTED. sni_host (may be NULL) is the name the certificate must
 * match for net_tls_verified; a name is also sent as SNI, an IP literal is matched
 * against the certificate's IP addresses and not sent. */
int net_starttls_client(struct net_conn *c, SSL_CTX *tls, const char *sni_host);
/* net_tls_verified - TLS is on, the peer's certificate chain verified against the
 * context's trust store, and it matched the sni_host of net_starttls_client. False
 * without TLS, without a host named, and on the server side. */
bool net_tls_verified(const struct net_conn *c);
/* net_tls_ssl - the connection's SSL from net_starttls_client until it closes (NULL
 * without one): for settings the handshake must see (DANE's records) and for what it
 * established. Its I/O is net's alone. */
SSL *net_tls_ssl(const struct net_conn *c);
bool net_is_tls(const struct net_conn *c);
/* net_tls_desc - "TLSv1.3 cipher=TLS_AES_256_GCM_SHA384", or "" without TLS. */
const char *net_tls_desc(const struct net_conn *c);

/* net_error - why the connection failed ("TLS handshake failed: wrong version number",
 * "write: connection reset by peer"), "" if it did not; for NET_EV_ERROR handlers. */
const char *net_error(const struct net_conn *c);

/* the peer is the client of an accepted connection, the server of an outbound one */
const char *net_peer_ip(const struct net_conn *c); /* "192.0.2.1" or "2001:db8::1" */
int net_peer_port(const struct net_conn *c);
const char *net_local_ip(const struct net_conn *c);
int net_local_port(const struct net_conn *c);
uv_loop_t *net_loop(const struct net_conn *c);

#endif
