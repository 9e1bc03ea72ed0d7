/*
 * net_int - what the two halves of the net module share (net.c: connections;
 * net_server.c: listeners and caps). Nothing outside net includes this.
 */
#ifndef DMAIL_NET_INT_H
#define DMAIL_NET_INT_H

#include <netinet/in.h>
#include <stdbool.h>
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
    struct net_listener *listeners; /* in net_listen order */
    struct net_conn *conns;         /* linked by net.c */
    long now, peak, total;
    struct net_ipent **ipt;
    size_t ipt_size, ipt_count;
    bool freeing;
    char rbuf[NET_READ_CHUNK]; /* socket reads land here; the loop is single-threaded */
};

/* net_server.c */
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
/* net_conn_accept - make a connection of an accepted socket (closed on failure), start
 * implicit TLS when tls != NULL, and call cb. */
void net_conn_accept(struct net_server *s, int fd, const char *ip, int port, SSL_CTX *tls,
                     net_accept_cb cb, void *arg);
/* net_conn_recount_ip - connections of e still counting, after giving up the slots of
 * those whose peer has already gone (checked with MSG_PEEK). e may be freed meanwhile. */
long net_conn_recount_ip(struct net_ipent *e);
/* net_conn_abort_all - net_abort every connection of s. */
void net_conn_abort_all(struct net_server *s);

#endif
