/*
 * test_dns - the resolver against a real DNS server: Debian's dnsmasq, started here on
 * 127.0.0.1 with a free port and the records below (no upstream, no /etc/hosts, the
 * "test" domain answered from local data only, so unknown names are NXDOMAIN). Each test
 * has its own libuv loop; every wait is bounded. dnsmasq is killed at the end, by atexit
 * as well, and dies with the test process (PR_SET_PDEATHSIG) if the test itself is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "dns.h"
#include "unit_util.h"

#define WAIT 5000 /* ms: the longest any lookup may take here */

static pid_t dnsmasq_pid = -1;
static int dnsmasq_port;
static char servers[64]; /* "127.0.0.1:PORT" */
static const char dnsmasq_log[] = "/tmp/test_dns.dnsmasq.log";

static const char *const records[] = {
    "--local=/test/", "--mx-host=mx.test,mx1.mx.test,10", "--mx-host=mx.test,mx2.mx.test,20",
    "--mx-host=mx.test,mx3.mx.test,20", "--mx-host=mx.test,mx4.mx.test,30",
    "--host-record=mx1.mx.test,10.0.0.1", "--host-record=plain.test,1.2.3.4,::1",
    "--host-record=v4only.test,5.6.7.8", "--cname=alias.test,plain.test",
    "--cname=mxalias.test,mx.test", "--dns-rr=nullmx.test,15,000000",
    "--host-record=2.0.0.127.bl.test,127.0.0.2,300", "--host-record=multi.bl.test,127.0.0.4,120",
    "--host-record=multi.bl.test,127.0.0.10,60", "--host-record=v6only.test,2001:db8::1",
    "--txt-record=txt.test,v=spf1 -all",
    "--txt-record=txt.test,part one/,part two", /* one record, two strings */
    "--local=/in-addr.arpa/", "--local=/ip6.arpa/", "--ptr-record=9.9.9.9.in-addr.arpa,a.test",
    "--ptr-record=9.9.9.9.in-addr.arpa,b.test",
    /* TLSA 3 1 1 <32 bytes>, TLSA 2 0 2 <64 bytes> (RFC 6698 2.1) */
    "--dns-rr=_25._tcp.mx1.mx.test,52,030101"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "--dns-rr=_25._tcp.mx1.mx.test,52,020002"
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "--dns-rr=_25._tcp.short.test,52,0301", /* no association data: not a record */
};

/* ---- dnsmasq ---- */

static void
dnsmasq_stop(void)
{
    if (dnsmasq_pid <= 0)
        return;
    kill(dnsmasq_pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
            dnsmasq_pid = -1;
            return;
        }
        usleep(10000);
    }
    kill(dnsmasq_pid, SIGKILL);
    waitpid(dnsmasq_pid, NULL, 0);
    dnsmasq_pid = -1;
}

/* free_port - a port free for both UDP and TCP on 127.0.0.1, or one where nothing is. */
static int
free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), port = -1;
        if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(u, (struct sockaddr *)&sa, &len) == 0 &&
            bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            port = ntohs(sa.sin_port);
        close(u);
        close(t);
        if (port > 0)
            return port;
    }
    fail_msg("no free port");
    return -1;
}

/* answers - dnsmasq takes TCP connections on the port. */
static bool
answers(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static int
group_setup(void **state)
{
    const char *args[64];
    char portarg[32];
    int n = 0;

    dnsmasq_port = free_port();
    snprintf(portarg, sizeof(portarg), "--port=%d", dnsmasq_port);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", dnsmasq_port);
    args[n++] = "dnsmasq";
    args[n++] = "--keep-in-foreground";
    args[n++] = "--no-daemon";
    args[n++] = "--no-resolv";
    args[n++] = "--no-hosts";
    args[n++] = "--conf-file=/dev/null";
    args[n++] = "--listen-address=127.0.0.1";
    args[n++] = "--bind-interfaces";
    args[n++] = "--pid-file=";
    args[n++] = "--log-facility=-";
    args[n++] = portarg;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        args[n++] = records[i];
    args[n] = NULL;

    atexit(dnsmasq_stop);
    dnsmasq_pid = fork();
    if (dnsmasq_pid < 0)
        return -1;
    if (dnsmasq_pid == 0) {
        int fd = open(dnsmasq_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv("/usr/sbin/dnsmasq", (char *const *)args);
        execvp("dnsmasq", (char *const *)args);
        fprintf(stderr, "dnsmasq: %s (install dnsmasq-base: make deps)\n", strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (answers(dnsmasq_port))
            return 0;
        if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
            dnsmasq_pid = -1;
            break;
        }
        usleep(10000);
    }
    fprintf(stderr, "dnsmasq did not start; see %s\n", dnsmasq_log);
    dnsmasq_stop();
    return -1;
}

static int
group_teardown(void **state)
{
    dnsmasq_stop();
    return 0;
}

/* ---- a loop and a resolver per test ---- */

struct got {
    int calls;
    struct dns_result *r;
};

struct t {
    uv_loop_t loop;
    uv_timer_t tick; /* bounds each uv_run(UV_RUN_ONCE) */
    struct dns *d;
};

static bool in_call; /* inside a dns_* call that starts a lookup */

static void
on_result(struct dns_result *r, void *arg)
{
    struct got *g = arg;

    assert_false(in_call);
    g->calls++;
    dns_result_free(&g->r);
    g->r = r;
}

static void
tick_cb(uv_timer_t *t)
{
}

static int
setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    char err[200];

    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_start(&t->tick, tick_cb, 20, 20);
    t->d = dns_new(&t->loop, servers, 3000, 2, err, sizeof(err));
    if (t->d == NULL)
        fail_msg("dns_new: %s", err);
    *state = t;
    return 0;
}

static void
loop_close(struct t *t)
{
    uv_close((uv_handle_t *)&t->tick, NULL);
    for (int i = 0; i < 100 && uv_run(&t->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

static int
teardown(void **state)
{
    struct t *t = *state;

    dns_free(&t->d);
    loop_close(t);
    free(t);
    return 0;
}

/* run_until - run the loop until *calls reaches want, at most ms; the ms it took. */
static uint64_t
run_until(struct t *t, const int *calls, int want, uint64_t ms)
{
    uv_update_time(&t->loop);
    uint64_t start = uv_now(&t->loop);
    while (*calls < want && uv_now(&t->loop) - start < ms)
        uv_run(&t->loop, UV_RUN_ONCE);
    return uv_now(&t->loop) - start;
}

enum { MX, ADDR, TXT, PTR, A, FCRDNS, TLSA };

/* lookup - one lookup of kind to its end; the result (free it). */
static struct dns_result *
lookup(struct t *t, int kind, const char *name)
{
    struct got g = {0};

    in_call = true;
    if (kind == MX)
        dns_mx(t->d, name, on_result, &g);
    else if (kind == ADDR)
        dns_addr(t->d, name, on_result, &g);
    else if (kind == PTR)
        dns_ptr(t->d, name, on_result, &g);
    else if (kind == A)
        dns_a(t->d, name, on_result, &g);
    else if (kind == FCRDNS)
        assert_non_null(dns_fcrdns(t->d, name, on_result, &g));
    else if (kind == TLSA)
        dns_tlsa(t->d, name, on_result, &g);
    else
        dns_txt(t->d, name, on_result, &g);
    in_call = false;
    assert_int_equal(g.calls, 0);
    run_until(t, &g.calls, 1, WAIT);
    if (g.calls != 1)
        fail_msg("%s: %d callbacks", name, g.calls);
    assert_string_equal(g.r->name, name);
    return g.r;
}

/* look - a lookup that ends with status and n records; the result (free it). */
static struct dns_result *
look(struct t *t, int kind, const char *name, enum dns_status status, size_t n)
{
    struct dns_result *r = lookup(t, kind, name);

    if (r->status != status)
        fail_msg("%s: %s, not %s", name, dns_status_name(r->status), dns_status_name(status));
    assert_int_equal(r->n, n);
    return r;
}

/* expect - a lookup that ends with status and no records. */
static void
expect(struct t *t, int kind, const char *name, enum dns_status status)
{
    struct dns_result *r = look(t, kind, name, status, 0);

    dns_result_free(&r);
}

/* ---- MX ---- */

static void
test_mx_order(void **state)
{
    struct t *t = *state;
    int seen23 = 0, seen32 = 0, runs = 0;

    while (runs < 60 && (seen23 == 0 || seen32 == 0)) {
        struct dns_result *r = lookup(t, MX, "mx.test");
        assert_int_equal(r->kind, DNS_MX);
        assert_int_equal(r->status, DNS_OK);
        assert_string_equal(r->why, "ok");
        assert_int_equal(r->n, 4);
        assert_string_equal(r->mx[0].host, "mx1.mx.test");
        assert_int_equal(r->mx[0].pref, 10);
        assert_int_equal(r->mx[1].pref, 20);
        assert_int_equal(r->mx[2].pref, 20);
        assert_string_equal(r->mx[3].host, "mx4.mx.test");
        assert_int_equal(r->mx[3].pref, 30);
        if (strcmp(r->mx[1].host, "mx2.mx.test") == 0) {
            assert_string_equal(r->mx[2].host, "mx3.mx.test");
            seen23++;
        } else {
            assert_string_equal(r->mx[1].host, "mx3.mx.test");
            assert_string_equal(r->mx[2].host, "mx2.mx.test");
            seen32++;
        }
        dns_result_free(&r);
        assert_null(r);
        runs++;
    }
    if (seen23 == 0 || seen32 == 0)
        fail_msg("equal preferences not shuffled: %d/%d in %d runs", seen23, seen32, runs);
}

/* A CNAME at the domain: the target's exchangers. */
static void
test_mx_cname(void **state)
{
    struct dns_result *r = look(*state, MX, "mxalias.test", DNS_OK, 4);

    assert_string_equal(r->mx[0].host, "mx1.mx.test");
    assert_string_equal(r->mx[3].host, "mx4.mx.test");
    dns_result_free(&r);
}

/* No MX: the host itself, at preference 0 (a final dot goes; CNAMEs are followed) */
static void
test_mx_implicit(void **state)
{
    static const struct {
        const char *name, *host;
    } cases[] = {
        {"plain.test", "plain.test"},
        {"plain.test.", "plain.test"},
        {"v4only.test", "v4only.test"},
        {"alias.test", "alias.test"}, /* a CNAME to a host without MX */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dns_result *r = look(*state, MX, cases[i].name, DNS_IMPLICIT, 1);
        assert_string_equal(r->mx[0].host, cases[i].host);
        assert_int_equal(r->mx[0].pref, 0);
        dns_result_free(&r);
    }
}

static void
test_mx_null(void **state)
{
    struct dns_result *r = look(*state, MX, "nullmx.test", DNS_NULLMX, 0);

    assert_string_equal(r->why, "null MX");
    assert_string_equal(dns_status_name(r->status), "null MX");
    dns_result_free(&r);
}

static void
test_mx_nxdomain_nodata(void **state)
{
    struct t *t = *state;
    struct dns_result *r = look(t, MX, "nosuch.test", DNS_NXDOMAIN, 0);

    assert_string_equal(r->why, "NXDOMAIN");
    dns_result_free(&r);

    expect(t, MX, "txt.test", DNS_NODATA); /* exists, with neither MX nor an address */

    r = look(t, MX, "bad..name", DNS_NXDOMAIN, 0); /* c-ares refuses it at once: from the loop */
    assert_string_equal(r->why, "bad name");
    dns_result_free(&r);
}

/* ---- addresses, TXT ---- */

static void
test_addr(void **state)
{
    struct t *t = *state;
    struct dns_result *r = look(t, ADDR, "plain.test", DNS_OK, 2);

    assert_int_equal(r->kind, DNS_ADDR);
    assert_int_equal(r->addr[0].family, AF_INET6); /* IPv6 first */
    assert_string_equal(r->addr[0].text, "::1");
    assert_int_equal(r->addr[0].sa.ss_family, AF_INET6);
    assert_int_equal(r->addr[1].family, AF_INET);
    assert_string_equal(r->addr[1].text, "1.2.3.4");
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&r->addr[1].sa;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x01020304);
    assert_int_equal(sin->sin_port, 0);
    dns_result_free(&r);

    r = look(t, ADDR, "v4only.test", DNS_OK, 1); /* AAAA: no data; A is enough */
    assert_string_equal(r->addr[0].text, "5.6.7.8");
    assert_null(r->cname); /* no CNAME */
    dns_result_free(&r);

    r = look(t, ADDR, "alias.test", DNS_OK, 2); /* CNAME followed */
    assert_string_equal(r->addr[0].text, "::1");
    assert_string_equal(r->addr[1].text, "1.2.3.4");
    assert_non_null(r->cname); /* where the chain ended */
    assert_string_equal(r->cname, "plain.test");
    dns_result_free(&r);

    expect(t, ADDR, "nosuch.test", DNS_NXDOMAIN);

    expect(t, ADDR, "txt.test", DNS_NODATA);
}

static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_txt(void **state)
{
    struct t *t = *state;
    struct dns_result *r = look(t, TXT, "txt.test", DNS_OK, 2);

    assert_int_equal(r->kind, DNS_TXT);
    qsort(r->txt, r->n, sizeof(*r->txt), str_cmp); /* records come in any order */
    assert_string_equal(r->txt[0], "part one/part two");
    assert_string_equal(r->txt[1], "v=spf1 -all");
    dns_result_free(&r);

    expect(t, TXT, "plain.test", DNS_NODATA);

    expect(t, TXT, "nosuch.test", DNS_NXDOMAIN);
}

/* ---- TLSA ---- */

static void
test_tlsa(void **state)
{
    struct t *t = *state;
    struct dns_result *r = look(t, TLSA, "_25._tcp.mx1.mx.test", DNS_OK, 2);
    static const unsigned char d311[32] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                           0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
                                           0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                           0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    size_t ee = r->tlsa[0].usage == 3 ? 0 : 1; /* records come in any order */

    assert_int_equal(r->kind, DNS_TLSA);
    assert_false(r->secure); /* dnsmasq does not validate: never AD */
    assert_int_equal(r->tlsa[ee].usage, 3);
    assert_int_equal(r->tlsa[ee].selector, 1);
    assert_int_equal(r->tlsa[ee].mtype, 1);
    assert_int_equal(r->tlsa[ee].len, 32);
    assert_memory_equal(r->tlsa[ee].data, d311, 32);
    assert_int_equal(r->tlsa[1 - ee].usage, 2);
    assert_int_equal(r->tlsa[1 - ee].selector, 0);
    assert_int_equal(r->tlsa[1 - ee].mtype, 2);
    assert_int_equal(r->tlsa[1 - ee].len, 64);
    assert_int_equal(r->tlsa[1 - ee].data[0], 0xff);
    assert_int_equal(r->tlsa[1 - ee].data[63], 0xef);
    dns_result_free(&r);

    expect(t, TLSA, "_25._tcp.short.test", DNS_NODATA); /* only a record too short */
    expect(t, TLSA, "plain.test", DNS_NODATA);          /* the name exists, no TLSA */
    expect(t, TLSA, "_25._tcp.nosuch.test", DNS_NXDOMAIN);

    r = look(t, MX, "mx.test", DNS_OK, 4); /* neither is validated here */
    assert_false(r->secure);
    dns_result_free(&r);
}

/* ---- PTR ---- */

static void
test_reverse_name(void **state)
{
    char b[DNS_REVERSE_MAX];

    assert_int_equal(dns_reverse_name("192.0.2.7", b, sizeof(b)), 0);
    assert_string_equal(b, "7.2.0.192.in-addr.arpa");
    assert_int_equal(dns_reverse_name("::ffff:192.0.2.7", b, sizeof(b)), 0);
    assert_string_equal(b, "7.2.0.192.in-addr.arpa");
    assert_int_equal(dns_reverse_name("2001:db8::1", b, sizeof(b)), 0);
    assert_string_equal(b,
                        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    assert_int_equal(strlen(b) + 1, 73);
    assert_int_equal(dns_reverse_name("host.test", b, sizeof(b)), -1);
    assert_int_equal(dns_reverse_name("192.0.2.7", b, 20), -1);
}

static void
test_ptr(void **state)
{
    struct t *t = *state;
    char name[DNS_REVERSE_MAX];
    struct dns_result *r;

    assert_int_equal(dns_reverse_name("1.2.3.4", name, sizeof(name)), 0);
    r = look(t, PTR, name, DNS_OK, 1);
    assert_int_equal(r->kind, DNS_PTR);
    assert_string_equal(r->ptr[0], "plain.test");
    dns_result_free(&r);

    r = look(t, PTR, "9.9.9.9.in-addr.arpa", DNS_OK, 2);
    qsort(r->ptr, r->n, sizeof(*r->ptr), str_cmp);
    assert_string_equal(r->ptr[0], "a.test");
    assert_string_equal(r->ptr[1], "b.test");
    dns_result_free(&r);

    assert_int_equal(dns_reverse_name("::1", name, sizeof(name)), 0);
    r = look(t, PTR, name, DNS_OK, 1);
    assert_string_equal(r->ptr[0], "plain.test");
    dns_result_free(&r);

    expect(t, PTR, "8.8.8.10.in-addr.arpa", DNS_NXDOMAIN);
}

/* dns_fcrdns: the first PTR name, confirmed by its addresses (both families). */
static void
test_fcrdns(void **state)
{
    struct t *t = *state;
    struct dns_result *r;
    struct got g = {0};

    r = look(t, FCRDNS, "1.2.3.4", DNS_OK, 1);
    assert_int_equal(r->kind, DNS_FCRDNS);
    assert_string_equal(r->ptr[0], "plain.test");
    assert_true(r->confirmed);
    dns_result_free(&r);
    r = look(t, FCRDNS, "::ffff:1.2.3.4", DNS_OK, 1); /* IPv4-mapped: as IPv4 */
    assert_true(r->confirmed);
    dns_result_free(&r);
    r = look(t, FCRDNS, "::1", DNS_OK, 1); /* the AAAA record confirms */
    assert_string_equal(r->ptr[0], "plain.test");
    assert_true(r->confirmed);
    dns_result_free(&r);
    r = look(t, FCRDNS, "9.9.9.9", DNS_OK, 1); /* a.test or b.test: no address */
    assert_false(r->confirmed);
    assert_string_equal(r->why, "not-confirmed");
    dns_result_free(&r);
    r = look(t, FCRDNS, "5.6.7.8", DNS_OK, 1); /* v4only.test: 5.6.7.8 itself */
    assert_true(r->confirmed);
    dns_result_free(&r);
    expect(t, FCRDNS, "10.8.8.8", DNS_NXDOMAIN);
    assert_null(dns_fcrdns(t->d, "host.test", on_result, &g));
    assert_null(dns_fcrdns(t->d, "", on_result, &g));
}

/* dns_a: A records only, with the least TTL (a DNSBL's answer). */
static void
test_a_ttl(void **state)
{
    struct t *t = *state;
    struct dns_result *r = look(t, A, "2.0.0.127.bl.test", DNS_OK, 1);

    assert_int_equal(r->kind, DNS_A);
    assert_string_equal(r->addr[0].text, "127.0.0.2");
    assert_int_equal(r->addr[0].family, AF_INET);
    assert_true(r->ttl > 0 && r->ttl <= 300);
    dns_result_free(&r);

    r = look(t, A, "multi.bl.test", DNS_OK, 2);
    assert_true(r->ttl > 0 && r->ttl <= 60); /* the least of 120 and 60 */
    dns_result_free(&r);

    r = look(t, A, "plain.test", DNS_OK, 1); /* the AAAA record is not asked for */
    assert_string_equal(r->addr[0].text, "1.2.3.4");
    dns_result_free(&r);

    r = look(t, A, "3.0.0.127.bl.test", DNS_NXDOMAIN, 0);
    assert_int_equal(r->ttl, 0);
    dns_result_free(&r);
    expect(t, A, "v6only.test", DNS_NODATA);
}

/* ---- failures, cancel, free ---- */

/* dead_or_silent - lookups through a server that refuses (nothing on the port) or never
 * answers (a UDP socket nobody reads): a temporary failure within the timeout. */
static void
test_dead_server(void **state)
{
    struct t *t = *state;
    char list[160], err[200];
    int silent = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            snprintf(list, sizeof(list), "127.0.0.1:%d", free_port());
        } else {
            assert_int_equal(bind(silent, (struct sockaddr *)&sa, sizeof(sa)), 0);
            assert_int_equal(getsockname(silent, (struct sockaddr *)&sa, &len), 0);
            snprintf(list, sizeof(list), "127.0.0.1:%d", ntohs(sa.sin_port));
        }
        dns_free(&t->d);
        t->d = dns_new(&t->loop, list, 700, 2, err, sizeof(err));
        assert_non_null(t->d);
        struct got g[3] = {{0}};
        dns_mx(t->d, "mx.test", on_result, &g[0]);
        dns_addr(t->d, "plain.test", on_result, &g[1]);
        dns_txt(t->d, "txt.test", on_result, &g[2]);
        uint64_t took = run_until(t, &g[2].calls, 1, WAIT);
        run_until(t, &g[1].calls, 1, 200);
        run_until(t, &g[0].calls, 1, 200);
        if (took > 700 + 300)
            fail_msg("%s: %llu ms for a 700 ms timeout", list, (unsigned long long)took);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(g[i].calls, 1);
            assert_int_equal(g[i].r->status, DNS_TEMPFAIL);
            assert_int_equal(g[i].r->n, 0);
            if (round == 1)
                assert_string_equal(g[i].r->why, "timeout");
            dns_result_free(&g[i].r);
        }
    }
    close(silent);

    /* a dead first server: the second answers */
    snprintf(list, sizeof(list), "127.0.0.1:%d, %s", free_port(), servers);
    dns_free(&t->d);
    t->d = dns_new(&t->loop, list, 3000, 2, err, sizeof(err));
    assert_non_null(t->d);
    struct dns_result *r = lookup(t, ADDR, "plain.test");
    assert_int_equal(r->status, DNS_OK);
    assert_int_equal(r->n, 2);
    dns_result_free(&r);
}

static void
test_cancel(void **state)
{
    struct t *t = *state;
    struct got a = {0}, b = {0}, c = {0}, done = {0};

    struct dns_query *qa = dns_addr(t->d, "plain.test", on_result, &a);
    struct dns_query *qb = dns_mx(t->d, "bad..name", on_result, &b); /* answered at once */
    dns_mx(t->d, "mx.test", on_result, &c);
    dns_cancel(qa);
    dns_cancel(qb);
    run_until(t, &c.calls, 1, WAIT);
    assert_int_equal(c.calls, 1);
    dns_txt(t->d, "txt.test", on_result, &done); /* let the cancelled ones' answers come */
    run_until(t, &done.calls, 1, WAIT);
    assert_int_equal(done.calls, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 0);
    dns_result_free(&c.r);
    dns_result_free(&done.r);
}

/* cancel_other - a callback that cancels another lookup (answered or not). */
struct pair {
    struct got g;
    struct dns_query *other;
};

static void
cancel_other(struct dns_result *r, void *arg)
{
    struct pair *p = arg;

    on_result(r, &p->g);
    if (p->other != NULL)
        dns_cancel(p->other);
    p->other = NULL;
}

static void
test_cancel_from_callback(void **state)
{
    struct t *t = *state;
    struct pair p1 = {{0}, NULL}, p2 = {{0}, NULL};

    struct dns_query *q1 = dns_addr(t->d, "plain.test", cancel_other, &p1);
    struct dns_query *q2 = dns_addr(t->d, "plain.test", cancel_other, &p2);
    p1.other = q2;
    p2.other = q1;
    int total = 0;
    for (int i = 0; i < 50 && total == 0; i++) {
        run_until(t, &p1.g.calls, 1, 100);
        total = p1.g.calls + p2.g.calls;
    }
    run_until(t, &total, 2, 300); /* nothing more may come */
    assert_int_equal(p1.g.calls + p2.g.calls, 1);
    dns_result_free(&p1.g.r);
    dns_result_free(&p2.g.r);
}

/* A callback may free the resolver; later callbacks are dropped. */
static void
free_in_callback(struct dns_result *r, void *arg)
{
    struct t *t = arg;

    dns_result_free(&r);
    dns_free(&t->d);
}

static void
test_free_pending(void **state)
{
    struct t *t = *state;
    struct got g[4] = {{0}};

    dns_mx(t->d, "mx.test", on_result, &g[0]);
    dns_addr(t->d, "plain.test", on_result, &g[1]);
    dns_txt(t->d, "txt.test", on_result, &g[2]);
    dns_mx(t->d, "plain.test", on_result, &g[3]);
    dns_free(&t->d);
    assert_null(t->d);
    uv_update_time(&t->loop);
    for (int i = 0; i < 20; i++)
        uv_run(&t->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g[i].calls, 0);

    char err[200];
    t->d = dns_new(&t->loop, servers, 3000, 2, err, sizeof(err));
    assert_non_null(t->d);
    int dummy = 0;
    dns_addr(t->d, "bad..name", free_in_callback, t); /* delivered first */
    dns_addr(t->d, "plain.test", on_result, &g[0]);
    dns_mx(t->d, "mx.test", on_result, &g[1]);
    for (int i = 0; i < 50 && t->d != NULL; i++)
        run_until(t, &dummy, 1, 50);
    assert_null(t->d);
    for (int i = 0; i < 20; i++)
        uv_run(&t->loop, UV_RUN_NOWAIT);
    assert_int_equal(g[0].calls + g[1].calls, 0);
}

static void
test_new(void **state)
{
    uv_loop_t loop;
    char err[200] = "";
    static const char *const good[] = {
        "127.0.0.1", "127.0.0.1:5353", "::1",
        "[::1]",     "[::1]:53",       "192.0.2.1, 192.0.2.2:54 [2001:db8::1]:55,,2001:db8::2",
    };
    static const char *const bad[] = {
        "localhost", "127.0.0.1:0",   "127.0.0.1:x",    "[::1",
        "[::1]x",    "1.2.3.4:65536", "[127.0.0.1:53]", "::1:99999999999999999999999999",
    };

    assert_int_equal(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct dns *d = dns_new(&loop, good[i], 1000, 2, err, sizeof(err));
        if (d == NULL)
            fail_msg("'%s': %s", good[i], err);
        assert_int_equal(dns_servers_check(good[i], err, sizeof(err)), 0);
        dns_free(&d);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        struct dns *d = dns_new(&loop, bad[i], 1000, 2, err, sizeof(err));
        if (d != NULL)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(err[0], '\'');
        char err2[200];
        assert_int_equal(dns_servers_check(bad[i], err2, sizeof(err2)), -1);
        assert_string_equal(err, err2);
    }
    /* /etc/resolv.conf (its servers are not asked here) */
    struct dns *d = dns_new(&loop, NULL, 1000, 2, err, sizeof(err));
    if (d == NULL)
        fail_msg("resolv.conf: %s", err);
    dns_free(&d);
    d = dns_new(&loop, "", 1000, 2, err, sizeof(err));
    assert_non_null(d);
    dns_free(&d);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

UU_MAIN(group_setup, group_teardown, cmocka_unit_test(test_new), UU_FX(test_mx_order),
        UU_FX(test_mx_cname), UU_FX(test_mx_implicit), UU_FX(test_mx_null),
        UU_FX(test_mx_nxdomain_nodata), UU_FX(test_addr), UU_FX(test_txt), UU_FX(test_tlsa),
        UU_FX(test_a_ttl), cmocka_unit_test(test_reverse_name), UU_FX(test_ptr), UU_FX(test_fcrdns),
        UU_FX(test_dead_server), UU_FX(test_cancel), UU_FX(test_cancel_from_callback),
        UU_FX(test_free_pending))
