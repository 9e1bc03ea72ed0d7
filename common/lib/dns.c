/*
 * dns.c - c-ares driven by the libuv loop; see dns.h for the contract.
 *
 * A lookup (struct dns_query) runs one or two c-ares queries (struct dns_sub): MX, TXT,
 * PTR, AAAA+A, MX then AAAA+A for an implicit MX, or PTR then AAAA+A of the PTR name
 * (FCrDNS). It is in one of three states: active (in
 * d->active, by deadline: every lookup has the same timeout, so the list is in start
 * order), done (in d->done, its result waiting for the idle handle to deliver it) or
 * detached (in no list: cancelled or delivered while c-ares still holds its subs; freed
 * when the last of them is answered, or by ares_destroy's ARES_EDESTRUCTION).
 *
 * The answers are parsed in dns_parse.c (dns_int.h), addresses here.
 *
 * c-ares only ever calls back into this file from ares_query/ares_process_fd/
 * ares_destroy; the user's callbacks run from the idle handle alone, so nothing the user
 * does can happen in the middle of c-ares's processing.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <arpa/nameser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <sys/socket.h>

#include "dns.h"
#include "dns_int.h"
#include "xmem.h"

#define DNS_MAXADDR 64     /* addresses kept per family */
#define DNS_EDNS_SIZE 1232 /* the UDP payload size announced (EDNS0, DNS flag day 2020) */
#define DNS_MAXSERVERS 16  /* entries of a server list */

enum { Q_ACTIVE, Q_DONE, Q_DETACHED };

struct dns_sock {
    uv_poll_t poll;
    ares_socket_t fd;
    struct dns *d;
    struct dns_sock *next;
};

struct dns_sub {
    struct dns_query *q;
    int type;   /* ns_t_mx, ns_t_txt, ns_t_aaaa, ns_t_a, DNS_T_TLSA */
    int status; /* ARES_* when answered */
    bool ad;    /* the answer had the AD bit (validated by the resolver) */
    size_t n;   /* addresses parsed (AAAA/A) */
    long ttl;   /* their least TTL */
    struct dns_addr *addr;
    char *owner; /* the owner of the records (AAAA/A): where a CNAME chain ended */
};

struct dns_query {
    struct dns *d;
    struct dns_query *prev, *next;
    int state;
    int refs;             /* subs c-ares has not answered yet, plus a hold while starting */
    bool implicit;        /* MX: the AAAA+A phase of an implicit MX; FCrDNS: of the PTR name */
    bool mx_ad;           /* implicit MX: the MX answer (no data) had the AD bit */
    char *ask;            /* the name the subs ask for when not r->name (FCrDNS) */
    unsigned char ip[16]; /* FCrDNS: the address to confirm, ipn bytes */
    size_t ipn;
    uint64_t deadline;
    dns_cb cb;
    void *arg;
    struct dns_result *r;
    struct dns_sub sub[2];
};

struct dns_list {
    struct dns_query *head, *tail;
};

struct dns {
    uv_loop_t *loop;
    ares_channel ch;
    bool ch_ok;
    bool closing;
    int handles; /* uv handles not closed yet; d is freed when the last one has closed */
    long timeout_ms;
    uv_timer_t timer;
    uv_idle_t idle;
    struct dns_sock *socks;
    struct dns_list active, done;
};

/* ---- lists ---- */

static void
dns_list_add(struct dns_list *l, struct dns_query *q)
{
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static void
dns_list_del(struct dns_list *l, struct dns_query *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->prev = q->next = NULL;
}

/* ---- results ---- */

const char *
dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return "ok";
    case DNS_IMPLICIT:
        return "implicit MX";
    case DNS_NULLMX:
        return "null MX";
    case DNS_NXDOMAIN:
        return "NXDOMAIN";
    case DNS_NODATA:
        return "no data";
    case DNS_TEMPFAIL:
        return "temporary failure";
    }
    return "?";
}

/* dns_result_clear - drop the records of r (its status stays). */
static void
dns_result_clear(struct dns_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->mx != NULL)
            free(r->mx[i].host);
        if (r->txt != NULL)
            free(r->txt[i]);
        if (r->ptr != NULL)
            free(r->ptr[i]);
        if (r->tlsa != NULL)
            free(r->tlsa[i].data);
    }
    free(r->tlsa);
    r->tlsa = NULL;
    free(r->cname);
    r->cname = NULL;
    free(r->ptr);
    r->ptr = NULL;
    r->confirmed = false;
    free(r->mx);
    free(r->addr);
    free(r->txt);
    r->mx = NULL;
    r->addr = NULL;
    r->txt = NULL;
    r->n = 0;
}

void
dns_result_free(struct dns_result **rp)
{
    struct dns_result *r = *rp;

    if (r == NULL)
        return;
    *rp = NULL;
    dns_result_clear(r);
    free(r->name);
    free(r);
}

/* dns_class - the status class of a c-ares status, and its text in *why. */
static enum dns_status
dns_class(int st, const char **why)
{
    switch (st) {
    case ARES_SUCCESS:
        *why = "ok";
        return DNS_OK;
    case ARES_ENODATA:
        *why = "no data";
        return DNS_NODATA;
    case ARES_ENOTFOUND:
        *why = "NXDOMAIN";
        return DNS_NXDOMAIN;
    case ARES_EBADNAME:
        *why = "bad name";
        return DNS_NXDOMAIN;
    case ARES_ESERVFAIL:
        *why = "SERVFAIL";
        return DNS_TEMPFAIL;
    case ARES_EREFUSED:
        *why = "REFUSED";
        return DNS_TEMPFAIL;
    case ARES_ETIMEOUT:
        *why = "timeout";
        return DNS_TEMPFAIL;
    case ARES_ECONNREFUSED: /* also every server answering SERVFAIL or REFUSED (c-ares) */
        *why = "SERVFAIL or no server reachable";
        return DNS_TEMPFAIL;
    default:
        *why = ares_strerror(st);
        return DNS_TEMPFAIL;
    }
}

/* ---- parsing answers ---- */

/* dns_parse_addr - the A or AAAA records of an answer into s. */
static int
dns_parse_addr(struct dns_sub *s, const unsigned char *abuf, int alen)
{
    int n = DNS_MAXADDR, st;

    s->addr = xcalloc(DNS_MAXADDR, sizeof(*s->addr));
    if (s->type == ns_t_aaaa) {
        struct ares_addr6ttl a6[DNS_MAXADDR];
        st = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
        for (int i = 0; st == ARES_SUCCESS && i < n; i++) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->addr[i].sa;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, &a6[i].ip6addr, sizeof(sin6->sin6_addr));
            inet_ntop(AF_INET6, &sin6->sin6_addr, s->addr[i].text, sizeof(s->addr[i].text));
            s->addr[i].family = AF_INET6;
        }
    } else {
        struct ares_addrttl a4[DNS_MAXADDR];
        st = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
        for (int i = 0; st == ARES_SUCCESS && i < n; i++) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&s->addr[i].sa;
            sin->sin_family = AF_INET;
            sin->sin_addr = a4[i].ipaddr;
            inet_ntop(AF_INET, &sin->sin_addr, s->addr[i].text, sizeof(s->addr[i].text));
            s->addr[i].family = AF_INET;
            if (i == 0 || a4[i].ttl < s->ttl)
                s->ttl = a4[i].ttl;
        }
    }
    if (st == ARES_SUCCESS && n == 0)
        st = ARES_ENODATA;
    if (st == ARES_SUCCESS)
        s->owner = dns_parse_owner(abuf, alen, (unsigned)s->type);
    s->n = st == ARES_SUCCESS ? (size_t)n : 0;
    return st;
}

/* ---- the loop side: sockets and the timer ---- */

static void
dns_handle_closed(uv_handle_t *h)
{
    struct dns *d = h->data;

    if (h->type == UV_POLL)
        free(h); /* the struct dns_sock it is the first member of */
    if (--d->handles == 0 && d->closing)
        free(d);
}

static void dns_arm(struct dns *d);

static void
dns_poll_cb(uv_poll_t *h, int status, int events)
{
    struct dns_sock *s = (struct dns_sock *)h;
    struct dns *d = s->d;
    ares_socket_t fd = s->fd;
    bool rd = status < 0 || (events & UV_READABLE);
    bool wr = status < 0 || (events & UV_WRITABLE);

    /* s may be closed by c-ares from here on */
    ares_process_fd(d->ch, rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
    dns_arm(d);
}

/* dns_sock_state - c-ares wants fd watched for reading and/or writing, or not at all. */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock **pp = &d->socks, *s;

    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    s = *pp;
    if (!readable && !writable) {
        if (s != NULL) {
            *pp = s->next;
            uv_close((uv_handle_t *)&s->poll, dns_handle_closed);
        }
        return;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        if (uv_poll_init_socket(d->loop, &s->poll, fd) != 0) {
            free(s); /* c-ares's own timeout ends the queries on this socket */
            return;
        }
        s->fd = fd;
        s->d = d;
        s->poll.data = d;
        s->next = d->socks;
        d->socks = s;
        d->handles++;
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  dns_poll_cb);
}

static void dns_expire(struct dns *d);

static void
dns_timer_cb(uv_timer_t *t)
{
    struct dns *d = t->data;

    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_expire(d);
    dns_arm(d);
}

/* dns_arm - the timer for the sooner of c-ares's next timeout and the first deadline. */
static void
dns_arm(struct dns *d)
{
    struct timeval tv, *tvp;
    uint64_t wait = UINT64_MAX, now = uv_now(d->loop);

    if (d->closing)
        return;
    if (d->active.head != NULL)
        wait = d->active.head->deadline > now ? d->active.head->deadline - now : 0;
    tvp = ares_timeout(d->ch, NULL, &tv);
    if (tvp != NULL) {
        uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
        if (ms < wait)
            wait = ms;
    }
    if (wait == UINT64_MAX)
        uv_timer_stop(&d->timer);
    else
        uv_timer_start(&d->timer, dns_timer_cb, wait, 0);
}

/* ---- lookups ---- */

static void
dns_query_free(struct dns_query *q)
{
    for (int i = 0; i < 2; i++) {
        free(q->sub[i].addr);
        free(q->sub[i].owner);
    }
    dns_result_free(&q->r);
    free(q->ask);
    free(q);
}

/* dns_detach - take q out of its list; free it now if c-ares holds none of its subs. */
static void
dns_detach(struct dns_query *q)
{
    if (q->state == Q_ACTIVE)
        dns_list_del(&q->d->active, q);
    else if (q->state == Q_DONE)
        dns_list_del(&q->d->done, q);
    q->state = Q_DETACHED;
    if (q->refs == 0)
        dns_query_free(q);
}

static void
dns_deliver(uv_idle_t *h)
{
    struct dns *d = h->data;

    while (d->done.head != NULL && !d->closing) {
        struct dns_query *q = d->done.head;
        struct dns_result *r = q->r;
        dns_cb cb = q->cb;
        void *arg = q->arg;

        q->r = NULL;
        dns_detach(q);
        cb(r, arg);
    }
    if (!d->closing)
        uv_idle_stop(h);
}

/* dns_finish - q's result is final: queue it for delivery. */
static void
dns_finish(struct dns_query *q)
{
    struct dns *d = q->d;

    dns_list_del(&d->active, q);
    dns_list_add(&d->done, q);
    q->state = Q_DONE;
    if (!d->closing)
        uv_idle_start(&d->idle, dns_deliver);
}

/* dns_expire - the lookups past their deadline fail with "timeout". */
static void
dns_expire(struct dns *d)
{
    uint64_t now = uv_now(d->loop);

    while (d->active.head != NULL && d->active.head->deadline <= now) {
        struct dns_query *q = d->active.head;
        dns_result_clear(q->r);
        q->r->status = DNS_TEMPFAIL;
        q->r->why = "timeout";
        dns_finish(q);
    }
}

static void dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* dns_sent - ares_send's callback: the answer's RCODE as ares_query would give it (c-ares
 * itself turns SERVFAIL, NOTIMP and REFUSED into the next server or a failure), and its AD
 * bit. */
static void
dns_sent(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_sub *s = arg;

    if (status == ARES_SUCCESS && (abuf == NULL || alen < 12))
        status = ARES_EBADRESP;
    if (status == ARES_SUCCESS) {
        unsigned an = (unsigned)abuf[6] << 8 | abuf[7];
        s->ad = (abuf[3] & 0x20) != 0;
        switch (abuf[3] & 0x0f) {
        case ns_r_noerror:
            status = an > 0 ? ARES_SUCCESS : ARES_ENODATA;
            break;
        case ns_r_formerr:
            status = ARES_EFORMERR;
            break;
        case ns_r_servfail:
            status = ARES_ESERVFAIL;
            break;
        case ns_r_nxdomain:
            status = ARES_ENOTFOUND;
            break;
        case ns_r_notimpl:
            status = ARES_ENOTIMP;
            break;
        default:
            status = ARES_EREFUSED;
            break;
        }
    }
    dns_answer(arg, status, timeouts, abuf, alen);
}

/* dns_ask - one query of q (sub i), with EDNS0 and the AD bit set (RFC 6840 5.7: a
 * validating resolver then says whether it validated the answer). */
static void
dns_ask(struct dns_query *q, int i, int type)
{
    struct dns_sub *s = &q->sub[i];
    unsigned char *qbuf = NULL;
    int qlen = 0, st;

    s->q = q;
    s->type = type;
    s->status = -1;
    s->ad = false;
    q->refs++;
    st = ares_create_query(q->ask != NULL ? q->ask : q->r->name, ns_c_in, type, 0, 1, &qbuf, &qlen,
                           DNS_EDNS_SIZE);
    if (st != ARES_SUCCESS) {
        dns_answer(s, st, 0, NULL, 0);
        return;
    }
    qbuf[3] |= 0x20;
    ares_send(q->d->ch, qbuf, qlen, dns_sent, s);
    ares_free_string(qbuf);
}

/* dns_settle_addr - the result of an AAAA+A pair: IPv6 first. */
static void
dns_settle_addr(struct dns_query *q)
{
    struct dns_result *r = q->r;
    struct dns_sub *s6 = &q->sub[0], *s4 = &q->sub[1];
    const char *why6, *why4;
    enum dns_status c6 = dns_class(s6->status, &why6), c4 = dns_class(s4->status, &why4);

    if (s6->n + s4->n > 0) {
        r->status = DNS_OK;
        r->why = "ok";
    } else if (c6 == DNS_TEMPFAIL || c4 == DNS_TEMPFAIL) {
        r->status = DNS_TEMPFAIL;
        r->why = c6 == DNS_TEMPFAIL ? why6 : why4;
    } else if (c6 == DNS_NXDOMAIN || c4 == DNS_NXDOMAIN) {
        r->status = DNS_NXDOMAIN;
        r->why = c6 == DNS_NXDOMAIN ? why6 : why4;
    } else {
        r->status = DNS_NODATA;
        r->why = "no data";
    }
    if (r->kind == DNS_ADDR && r->status == DNS_OK) {
        const char *owner = s6->n > 0 ? s6->owner : s4->owner;
        size_t len = strlen(r->name);
        if (len > 1 && r->name[len - 1] == '.')
            len--;
        if (owner != NULL && (strlen(owner) != len || strncasecmp(owner, r->name, len) != 0))
            r->cname = xstrdup(owner);
        r->addr = xcalloc(s6->n + s4->n, sizeof(*r->addr));
        for (size_t i = 0; i < s6->n; i++)
            r->addr[r->n++] = s6->addr[i];
        for (size_t i = 0; i < s4->n; i++)
            r->addr[r->n++] = s4->addr[i];
    } else if (r->kind == DNS_MX && r->status == DNS_OK) {
        size_t len = strlen(r->name);
        if (len > 1 && r->name[len - 1] == '.')
            len--;
        r->status = DNS_IMPLICIT;
        r->why = "implicit MX";
        r->mx = xcalloc(1, sizeof(*r->mx));
        r->mx[0].host = xstrndup(r->name, len);
        r->n = 1;
    }
}

/* dns_ip_bytes - an address as 4 or 16 bytes (IPv4-mapped as IPv4); the length, or 0. */
static size_t
dns_ip_bytes(const char *ip, unsigned char *b)
{
    if (inet_pton(AF_INET, ip, b) == 1)
        return 4;
    if (inet_pton(AF_INET6, ip, b) != 1)
        return 0;
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)b)) {
        memmove(b, b + 12, 4);
        return 4;
    }
    return 16;
}

/* dns_hostname_ok - a plain host name: labels of letters, digits, '-' and '_'. */
static bool
dns_hostname_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len > 253 || n[0] == '.' || strstr(n, "..") != NULL)
        return false;
    return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

/* dns_settle_fcrdns - FCrDNS: the PTR phase starts the forward phase; the forward phase
 * confirms (or not) the first PTR name. False while the forward phase runs. */
static bool
dns_settle_fcrdns(struct dns_query *q)
{
    struct dns_result *r = q->r;
    unsigned char got[16];

    if (!q->implicit) {
        r->status = dns_class(q->sub[0].status, &r->why);
        if (r->status != DNS_OK)
            return true;
        if (r->n == 0 || !dns_hostname_ok(r->ptr[0])) {
            dns_result_clear(r);
            r->status = DNS_NODATA;
            r->why = "bad-name";
            return true;
        }
        for (size_t i = 1; i < r->n; i++)
            free(r->ptr[i]);
        r->n = 1;
        q->implicit = true;
        free(q->ask);
        q->ask = xstrdup(r->ptr[0]);
        q->refs++;
        dns_ask(q, 0, ns_t_aaaa);
        dns_ask(q, 1, ns_t_a);
        if (--q->refs == 0)
            return dns_settle_fcrdns(q);
        return false;
    }
    dns_settle_addr(q);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < q->sub[s].n && !r->confirmed; i++)
            r->confirmed = dns_ip_bytes(q->sub[s].addr[i].text, got) == q->ipn &&
                           memcmp(got, q->ip, q->ipn) == 0;
    if (r->status == DNS_TEMPFAIL) {
        dns_result_clear(r);
    } else {
        r->status = DNS_OK;
        r->why = r->confirmed ? "ok" : "not-confirmed";
    }
    return true;
}

/* dns_secure - every answer that made q's result had the AD bit: for addresses the
 * families that gave records (at least one), for an implicit MX also the MX answer. */
static bool
dns_secure(const struct dns_query *q)
{
    const struct dns_result *r = q->r;
    bool any = false;

    if (r->kind != DNS_ADDR && !(r->kind == DNS_MX && q->implicit))
        return q->sub[0].ad;
    if (r->kind == DNS_MX && !q->mx_ad)
        return false;
    for (int i = 0; i < 2; i++) {
        if (q->sub[i].n == 0)
            continue;
        if (!q->sub[i].ad)
            return false;
        any = true;
    }
    return any;
}

/* dns_settle - every sub of q's phase has been answered: the result, or the next phase. */
static void
dns_settle(struct dns_query *q)
{
    struct dns_result *r = q->r;
    int st = q->sub[0].status;

    if (r->kind == DNS_MX && !q->implicit && st == ARES_ENODATA) {
        q->implicit = true; /* RFC 5321 5.1: the domain itself, if it has an address */
        q->mx_ad = q->sub[0].ad;
        q->refs++;
        dns_ask(q, 0, ns_t_aaaa);
        dns_ask(q, 1, ns_t_a);
        if (--q->refs == 0)
            dns_settle(q);
        return;
    }
    if (r->kind == DNS_FCRDNS) {
        if (!dns_settle_fcrdns(q))
            return;
    } else if (r->kind == DNS_A) {
        r->status = dns_class(st, &r->why);
        if (r->status == DNS_OK && q->sub[0].n > 0) {
            r->addr = q->sub[0].addr;
            r->n = q->sub[0].n;
            r->ttl = q->sub[0].ttl < 0 ? 0 : q->sub[0].ttl;
            q->sub[0].addr = NULL;
        }
    } else if (r->kind == DNS_ADDR || q->implicit)
        dns_settle_addr(q);
    else if (r->status != DNS_NULLMX)
        r->status = dns_class(st, &r->why);
    r->secure = dns_secure(q);
    dns_finish(q);
}

/* dns_answer - c-ares's callback for one sub. */
static void
dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_sub *s = arg;
    struct dns_query *q = s->q;

    if (q->state == Q_ACTIVE) {
        if (status == ARES_SUCCESS && s->type == ns_t_mx)
            status = dns_parse_mx(q->r, abuf, alen);
        else if (status == ARES_SUCCESS && s->type == ns_t_txt)
            status = dns_parse_txt(q->r, abuf, alen);
        else if (status == ARES_SUCCESS && s->type == ns_t_ptr)
            status = dns_parse_ptr(q->r, abuf, alen);
        else if (status == ARES_SUCCESS && s->type == DNS_T_TLSA)
            status = dns_parse_tlsa(q->r, abuf, alen);
        else if (status == ARES_SUCCESS)
            status = dns_parse_addr(s, abuf, alen);
        s->status = status;
        if (status != ARES_SUCCESS && s->type != ns_t_a && s->type != ns_t_aaaa)
            dns_result_clear(q->r);
    }
    if (--q->refs > 0)
        return;
    if (q->state == Q_ACTIVE)
        dns_settle(q);
    else if (q->state == Q_DETACHED)
        dns_query_free(q);
}

static struct dns_query *
dns_start(struct dns *d, enum dns_kind kind, const char *name, dns_cb cb, void *arg)
{
    struct dns_query *q = xcalloc(1, sizeof(*q));

    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->deadline = uv_now(d->loop) + (uint64_t)d->timeout_ms;
    q->r = xcalloc(1, sizeof(*q->r));
    q->r->kind = kind;
    q->r->name = xstrdup(name);
    q->state = Q_ACTIVE;
    dns_list_add(&d->active, q);
    if (kind == DNS_FCRDNS) {
        char rev[DNS_REVERSE_MAX];
        q->ipn = dns_ip_bytes(name, q->ip);
        dns_reverse_name(name, rev, sizeof(rev)); /* dns_fcrdns checked name */
        q->ask = xstrdup(rev);
    }
    q->refs = 1; /* hold: an answer given at once must not settle q half-started */
    if (kind == DNS_ADDR) {
        dns_ask(q, 0, ns_t_aaaa);
        dns_ask(q, 1, ns_t_a);
    } else if (kind == DNS_A) {
        dns_ask(q, 0, ns_t_a);
    } else if (kind == DNS_FCRDNS) {
        dns_ask(q, 0, ns_t_ptr);
    } else {
        dns_ask(q, 0,
                kind == DNS_MX     ? ns_t_mx
                : kind == DNS_PTR  ? ns_t_ptr
                : kind == DNS_TLSA ? DNS_T_TLSA
                                   : ns_t_txt);
    }
    if (--q->refs == 0)
        dns_settle(q);
    dns_arm(d);
    return q;
}

struct dns_query *
dns_mx(struct dns *d, const char *domain, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_MX, domain, cb, arg);
}

struct dns_query *
dns_addr(struct dns *d, const char *host, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_ADDR, host, cb, arg);
}

struct dns_query *
dns_tlsa(struct dns *d, const char *name, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_TLSA, name, cb, arg);
}

struct dns_query *
dns_txt(struct dns *d, const char *name, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_TXT, name, cb, arg);
}

struct dns_query *
dns_ptr(struct dns *d, const char *name, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_PTR, name, cb, arg);
}

int
dns_reverse_name(const char *ip, char *buf, size_t len)
{
    unsigned char a[16];
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (len < DNS_REVERSE_MAX)
        return -1;
    if (inet_pton(AF_INET, ip, a) == 1) {
        snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, a) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a)) {
        snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[15], a[14], a[13], a[12]);
        return 0;
    }
    for (int i = 15; i >= 0; i--) {
        buf[o++] = hex[a[i] & 15];
        buf[o++] = '.';
        buf[o++] = hex[a[i] >> 4];
        buf[o++] = '.';
    }
    snprintf(buf + o, len - o, "ip6.arpa");
    return 0;
}

struct dns_query *
dns_fcrdns(struct dns *d, const char *ip, dns_cb cb, void *arg)
{
    char rev[DNS_REVERSE_MAX];

    if (dns_reverse_name(ip, rev, sizeof(rev)) < 0)
        return NULL;
    return dns_start(d, DNS_FCRDNS, ip, cb, arg);
}

struct dns_query *
dns_a(struct dns *d, const char *name, dns_cb cb, void *arg)
{
    return dns_start(d, DNS_A, name, cb, arg);
}

void
dns_cancel(struct dns_query *q)
{
    if (q == NULL || q->state == Q_DETACHED)
        return;
    dns_result_free(&q->r);
    dns_detach(q);
}

/* ---- the resolver ---- */

/* dns_parse_servers - servers into nodes (an array of DNS_MAXSERVERS, linked); returns
 * how many, or -1 with err filled. */
static int
dns_parse_servers(const char *servers, struct ares_addr_port_node *nodes, char *err, size_t errlen)
{
    int n = 0;
    const char *p = servers;

    while (*p != '\0') {
        size_t len = strcspn(p, ", \t");
        char item[80];
        const char *host = item, *port = NULL;
        if (len == 0) {
            p++;
            continue;
        }
        if (len >= sizeof(item) || n == DNS_MAXSERVERS) {
            snprintf(err, errlen,
                     len >= sizeof(item) ? "'%.*s...' is too long" : "more than %d servers",
                     len >= sizeof(item) ? 20 : DNS_MAXSERVERS, p);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        const char *given = p;
        p += len;
        char *colon = strchr(item, ':');
        if (item[0] == '[') {
            char *close = strchr(item, ']');
            if (close == NULL || (close[1] != '\0' && close[1] != ':'))
                goto bad;
            *close = '\0';
            host = item + 1;
            port = close[1] == ':' ? close + 2 : NULL;
        } else if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            *colon = '\0';
            port = colon + 1;
        }
        struct ares_addr_port_node *nd = &nodes[n];
        memset(nd, 0, sizeof(*nd));
        if (inet_pton(AF_INET, host, &nd->addr.addr4) == 1)
            nd->family = AF_INET;
        else if (inet_pton(AF_INET6, host, &nd->addr.addr6) == 1)
            nd->family = AF_INET6;
        else
            goto bad;
        if (port != NULL) {
            char *end;
            long v = strtol(port, &end, 10);
            if (*port < '0' || *port > '9' || *end != '\0' || v < 1 || v > 65535)
                goto bad;
            nd->udp_port = nd->tcp_port = (int)v;
        }
        if (n > 0)
            nodes[n - 1].next = nd;
        n++;
        continue;
    bad:
        snprintf(err, errlen, "'%.*s' is not an IP address with an optional port", (int)len, given);
        return -1;
    }
    return n;
}

int
dns_servers_check(const char *servers, char *err, size_t errlen)
{
    struct ares_addr_port_node nodes[DNS_MAXSERVERS];

    return dns_parse_servers(servers, nodes, err, errlen) < 0 ? -1 : 0;
}

/* dns_channel - d->ch for nservers servers (0: unknown yet), each tried tries times, all
 * within d->timeout_ms. */
static int
dns_channel(struct dns *d, int nservers, int tries)
{
    struct ares_options o;
    long per = d->timeout_ms / ((nservers > 0 ? nservers : 1) * ((1L << tries) - 1));

    memset(&o, 0, sizeof(o));
    o.sock_state_cb = dns_sock_state;
    o.sock_state_cb_data = d;
    o.timeout = per < 50 ? 50 : (int)per;
    o.tries = tries;
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    return ares_init_options(
        &d->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
}

/* dns_setup - the c-ares channel of d; 0 or -1 with err filled. */
static int
dns_setup(struct dns *d, const char *servers, int tries, char *err, size_t errlen)
{
    struct ares_addr_port_node nodes[DNS_MAXSERVERS], *got = NULL;
    int n = dns_parse_servers(servers != NULL ? servers : "", nodes, err, errlen), st;

    if (n < 0)
        return -1;
    if ((st = dns_channel(d, n, tries)) != ARES_SUCCESS)
        goto fail;
    d->ch_ok = true;
    if (n > 0 && (st = ares_set_servers_ports(d->ch, nodes)) != ARES_SUCCESS)
        goto fail;
    if (n == 0 && ares_get_servers_ports(d->ch, &got) == ARES_SUCCESS) {
        int m = 0;
        for (struct ares_addr_port_node *g = got; g != NULL; g = g->next)
            m++;
        ares_free_data(got);
        if (m > 1) { /* the per-try timeout for that many servers */
            ares_destroy(d->ch);
            d->ch_ok = false;
            if ((st = dns_channel(d, m, tries)) != ARES_SUCCESS)
                goto fail;
            d->ch_ok = true;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "dns: %s", ares_strerror(st));
    return -1;
}

struct dns *
dns_new(uv_loop_t *loop, const char *servers, long timeout_ms, int tries, char *err, size_t errlen)
{
    struct dns *d;
    int st = ares_library_init(ARES_LIB_INIT_ALL);

    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: %s", ares_strerror(st));
        return NULL;
    }
    d = xcalloc(1, sizeof(*d));
    d->loop = loop;
    d->timeout_ms = timeout_ms < 100 ? 100 : timeout_ms;
    tries = tries < 1 ? 1 : tries > 10 ? 10 : tries;
    if (dns_setup(d, servers, tries, err, errlen) < 0) {
        if (d->ch_ok)
            ares_destroy(d->ch);
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    uv_timer_init(loop, &d->timer);
    uv_idle_init(loop, &d->idle);
    d->timer.data = d->idle.data = d;
    d->handles = 2;
    return d;
}

void
dns_free(struct dns **dp)
{
    struct dns *d = *dp;

    if (d == NULL)
        return;
    *dp = NULL;
    d->closing = true;
    while (d->active.head != NULL)
        dns_cancel(d->active.head);
    while (d->done.head != NULL)
        dns_cancel(d->done.head);
    ares_destroy(d->ch); /* ARES_EDESTRUCTION frees the detached lookups */
    ares_library_cleanup();
    while (d->socks != NULL) { /* c-ares told of every socket it closed; in case not */
        struct dns_sock *s = d->socks;
        d->socks = s->next;
        uv_close((uv_handle_t *)&s->poll, dns_handle_closed);
    }
    uv_close((uv_handle_t *)&d->timer, dns_handle_closed);
    uv_close((uv_handle_t *)&d->idle, dns_handle_closed);
}
