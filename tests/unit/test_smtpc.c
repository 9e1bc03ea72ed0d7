/*
 * test_smtpc - dsmtp's SMTP client (dsmtp/smtpc) against real SMTP servers on 127.0.0.1:
 * tests/unit/smtp_peer.py runs aiosmtpd (or plain asyncio for drops and silence) with a
 * scenario, prints its port and writes every byte it receives to a log the test reads.
 * smtpc runs on the net harness's loop (net_harness.h); every wait is bounded, every peer
 * is killed in its test (and at exit). The parser and the encoder alone: test_smtpc_reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_harness.h"
#include "smtpc.h"
#include "smtpc_int.h" /* smtpc_wire_size */
#include "tls.h"
#include "unit_util.h"
#include "xmem.h"

#define PEER_START_MS 15000 /* python3 and aiosmtpd starting on a busy machine */
#define DONE_MS 10000
#define MAXPEERS 64

static char sdir[UU_DIR_MAX]; /* the certificate, the peers' logs */
static pid_t peer_pids[MAXPEERS];

struct peer {
    pid_t pid;
    int port;
    int in; /* the peer's stdin: it exits when this closes */
    char log[UU_DIR_MAX + 64];
};

/* peer_kill_all - at exit or at the end of the group: no peer outlives the tests. */
static void
peer_kill_all(void)
{
    for (int i = 0; i < MAXPEERS; i++) {
        if (peer_pids[i] > 0) {
            kill(peer_pids[i], SIGKILL);
            waitpid(peer_pids[i], NULL, 0);
            peer_pids[i] = 0;
        }
    }
}

/* peer_start - smtp_peer.py with a scenario; its port read from its first line. */
static struct peer *
peer_start(const char *scen)
{
    static int seq;
    struct peer *p = xcalloc(1, sizeof(*p));
    char *script = xstrdup(__FILE__), *slash = strrchr(script, '/'), line[32] = "";
    int out[2], in[2];
    size_t got = 0;

    if (slash != NULL)
        slash[1] = '\0';
    char *spath = xasprintf("%ssmtp_peer.py", slash != NULL ? script : "tests/unit/");
    snprintf(p->log, sizeof(p->log), "%s/%s.%d.log", sdir, scen, seq++);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    char *errlog = xasprintf("%s.err", p->log);
    fflush(stdout);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        int efd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (efd >= 0)
            dup2(efd, 2);
        execl("/usr/bin/python3", "python3", spath, scen, p->log, sdir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < MAXPEERS; i++) {
        if (peer_pids[i] == 0) {
            peer_pids[i] = p->pid;
            break;
        }
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    uint64_t end = now_ms() + PEER_START_MS;
    while (got < sizeof(line) - 1 && strchr(line, '\n') == NULL && now_ms() < end) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read(out[0], line + got, sizeof(line) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        line[got] = '\0';
    }
    close(out[0]);
    p->port = atoi(line);
    if (p->port <= 0) {
        char *e = uu_read_or_empty(errlog, NULL);
        print_message("smtp_peer %s did not start: %s\n", scen, e);
        free(e);
    }
    free(errlog);
    free(spath);
    free(script);
    assert_true(p->port > 0);
    return p;
}

/* peer_stop - kill the peer and forget it. */
static void
peer_stop(struct peer *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    for (int i = 0; i < MAXPEERS; i++)
        if (peer_pids[i] == p->pid)
            peer_pids[i] = 0;
    close(p->in);
    free(p);
}

/* peer_log - what the peer received so far (".chunks": the words of each read). */
static char *
peer_log(const struct peer *p, const char *suffix)
{
    char *path = xasprintf("%s%s", p->log, suffix);
    char *s = uu_read_or_empty(path, NULL);
    free(path);
    return s;
}

/* log_has - the peer's log (suffix "" or ".chunks") holds needle. */
static bool
log_has(const struct peer *p, const char *suffix, const char *needle)
{
    char *s = peer_log(p, suffix);
    bool has = strstr(s, needle) != NULL;

    if (!has)
        print_message("no \"%s\" in the peer's log%s:\n%s\n", needle, suffix, s);
    free(s);
    return has;
}

/* log_count - how many times needle occurs in the peer's log. */
static int
log_count(const struct peer *p, const char *needle)
{
    char *s = peer_log(p, "");
    int n = 0;

    for (const char *q = s; (q = strstr(q, needle)) != NULL; q += strlen(needle))
        n++;
    free(s);
    return n;
}

/* one client on its own loop */
struct run {
    struct harness *h;
    struct smtpc *c;
    bool inside; /* in smtpc_open/smtpc_send: no callback may come */
    int nready, ndone;
    struct smtpc_info info;
    bool broken;
    struct peer *peer; /* peer_setup's */
    const char *scen;  /* and its scenario */
};

static void
on_ready(struct smtpc *c, void *arg, const struct smtpc_info *info)
{
    struct run *r = arg;

    assert_false(r->inside);
    assert_ptr_equal(c, r->c);
    r->nready++;
    r->info = *info;
}

static void
on_done(struct smtpc *c, void *arg, struct smtpc_msg *m, bool broken)
{
    struct run *r = arg;

    assert_false(r->inside);
    r->ndone++;
    r->broken = broken;
}

static struct smtpc_opts
opts(void)
{
    return (struct smtpc_opts){.helo = "client.test", .timeout_ms = WAIT, .data_timeout_ms = WAIT};
}

/* run_open - a client for port: ready must come (from the loop) within the bound. */
static void
run_open(struct run *r, int port, const struct smtpc_opts *o)
{
    char err[200];

    r->h = harness_new(0, 0);
    r->inside = true;
    r->c = smtpc_open(r->h->srv, "127.0.0.1", port, o, on_ready, r, err, sizeof(err));
    r->inside = false;
    assert_non_null(r->c);
    RUN_UNTIL(r->h, r->nready == 1, DONE_MS);
    assert_int_equal(r->nready, 1);
}

/* run_peer - a peer for scen and a client ready on it (default options). */
static struct peer *
run_peer(struct run *r, const char *scen)
{
    struct peer *p = peer_start(scen);
    struct smtpc_opts o = opts();

    memset(r, 0, sizeof(*r));
    run_open(r, p->port, &o);
    return p;
}

/* run_send - one transaction to its end. */
static void
run_send(struct run *r, struct smtpc_msg *m)
{
    int want = r->ndone + 1;

    r->inside = true;
    assert_int_equal(smtpc_send(r->c, m, on_done, r), 0);
    r->inside = false;
    RUN_UNTIL(r->h, r->ndone == want, DONE_MS);
    assert_int_equal(r->ndone, want);
}

/* run_end - close the client (when not done yet) and free the loop: every handle closed. */
static void
run_end(struct run *r, struct peer *p)
{
    if (r->c != NULL)
        smtpc_close(r->c);
    if (p != NULL && r->c != NULL && r->nready == 1 && r->info.reply.code / 100 == 2 && !r->broken)
        RUN_UNTIL(r->h, log_count(p, "QUIT\r\n") > 0, WAIT);
    pump(r->h, 20);
    harness_free(r->h);
    if (p != NULL)
        peer_stop(p);
}

/* peer_setup/peer_teardown - the per-test fixture of most tests: a peer for the scenario
 * given as prestate and a client ready on it (run_peer), then run_end. */
static int
peer_setup(void **state)
{
    const char *scen = *state;
    struct run *r = malloc(sizeof(*r));

    assert_non_null(r);
    struct peer *p = run_peer(r, scen);
    r->peer = p;
    r->scen = scen;
    *state = r;
    return 0;
}

static int
peer_teardown(void **state)
{
    struct run *r = *state;

    run_end(r, r->peer);
    free(r);
    return 0;
}

/* PEER_TEST - test t with the fixture on scenario scen (a string literal); named after both */
#define PEER_TEST(t, scen)                                                                         \
    {                                                                                              \
        .name = #t " (" scen ")", .test_func = t, .setup_func = peer_setup,                        \
        .teardown_func = peer_teardown, .initial_state = (void *)(scen)                            \
    }

static void
check_reply(const struct smtpc_reply *r, int code, const char *status, const char *text)
{
    if (r->code != code || strcmp(r->status, status) != 0 || strstr(r->text, text) == NULL)
        print_message("reply: %d %s %s\n", r->code, r->status, r->text);
    assert_int_equal(r->code, code);
    assert_string_equal(r->status, status);
    assert_non_null(strstr(r->text, text));
    assert_null(strpbrk(r->text, "\r\n"));
}

/* check_answer - a recipient's answer, as check_reply. */
static void
check_answer(const struct smtpc_answer *a, int code, const char *status, const char *text)
{
    struct smtpc_reply r;

    smtpc_answer_reply(a, &r);
    check_reply(&r, code, status, text);
}

/* ---- against real servers ---- */

#define RCPT(a)                                                                                    \
    {                                                                                              \
        .addr = (a)                                                                                \
    }

/* with PIPELINING: MAIL, both RCPTs and DATA in one write; the exact envelope (no DSN
 * parameters, the server has no DSN); the text dot-stuffed, CRLF, a 2,000-octet line
 * folded; 250 for both; QUIT on close */
static void
test_pipelined(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {{.addr = "a@x.test", .notify = "SUCCESS"}, RCPT("b@x.test")};
    char text[3000], want[3100];
    int n = snprintf(text, sizeof(text), "Subject: t\n\n.dot line\nline2\n");
    int w = snprintf(want, sizeof(want), "Subject: t\r\n\r\n..dot line\r\nline2\r\n");

    memset(text + n, 'y', 2000);
    n += 2000;
    n += snprintf(text + n, sizeof(text) - (size_t)n, "\n..two\nend");
    memset(want + w, 'y', 998);
    w += 998;
    w += snprintf(want + w, sizeof(want) - (size_t)w, "\r\n ");
    memset(want + w, 'y', 997);
    w += 997;
    w += snprintf(want + w, sizeof(want) - (size_t)w, "\r\n yyyyy\r\n...two\r\nend\r\n.\r\n");
    struct smtpc_msg m = {.sender = "s@x.test",
                          .ret = "HDRS",
                          .envid = "e1",
                          .rcpt = rc,
                          .nrcpt = 2,
                          .text = text,
                          .len = (size_t)n};

    check_reply(&r->info.reply, 250, "2.0.0", "peer.test");
    assert_true(r->info.esmtp && r->info.pipelining && r->info.eightbitmime);
    assert_false(r->info.dsn || r->info.smtputf8 || r->info.tls);
    assert_int_equal(r->info.size_max, 33554432);
    char peer[40];
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", p->port);
    assert_string_equal(smtpc_peer(r->c), peer);
    run_send(r, &m);
    assert_false(r->broken);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued as 1234");
    check_answer(&rc[1].reply, 250, "2.0.0", "queued as 1234");
    char env[200];
    snprintf(env, sizeof(env),
             "MAIL FROM:<s@x.test> SIZE=%llu\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n"
             "DATA\r\n",
             smtpc_wire_size(text, (size_t)n));
    assert_true(log_has(p, "", "EHLO client.test\r\n"));
    assert_true(log_has(p, "", env));
    assert_true(log_has(p, ".chunks", "\nMAIL RCPT RCPT DATA\n"));
    char *got = peer_log(p, "");
    assert_non_null(memmem(got, strlen(got), want, (size_t)w));
    free(got);
    smtpc_msg_clear(&m);
}

/* 2,500 recipients (more than SMTPC_PIPE_WINDOW: the pipeline topped up as replies come)
 * answered alike hold one copy of the reply's text (the message's pool),
 * not one SMTPC_TEXT_MAX buffer each; smtpc_msg_clear frees it */
static void
test_answers_share_text(void **state)
{
    struct run *r = *state;
    enum { N = 2500 };
    struct smtpc_rcpt *rc = calloc(N, sizeof(*rc));
    char(*addr)[32] = calloc(N, sizeof(*addr));

    assert_non_null(rc);
    assert_non_null(addr);
    for (size_t i = 0; i < N; i++) {
        snprintf(addr[i], sizeof(addr[i]), "ok%zu@x.test", i);
        rc[i].addr = addr[i];
    }
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = N, .text = "hi\n", .len = 3};
    run_send(r, &m);
    assert_false(r->broken);
    for (size_t i = 0; i < N; i++) {
        check_answer(&rc[i].reply, 250, "2.0.0", "queued");
        assert_ptr_equal(rc[i].reply.text, rc[0].reply.text);
    }
    assert_true(m.npool >= 1 && m.npool <= 2); /* the RCPTs' text, then DATA's */
    smtpc_msg_clear(&m);
    assert_int_equal(m.npool, 0);
    assert_null(m.pool);
    assert_string_equal(rc[0].reply.text, "");
    free(rc);
    free(addr);
}

/* per-recipient replies at RCPT (one accepted: DATA goes, the refused keep theirs);
 * none accepted (pipelined: DATA refused by the server, no text); the next transaction
 * on the same connection starts with RSET, the one after that does not */
static void
test_rcpt_replies(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("ok@x.test"), RCPT("bad@x.test"), RCPT("busy@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 3, .text = "hi\n", .len = 3};

    run_send(r, &m);
    assert_false(r->broken);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    check_answer(&rc[1].reply, 550, "5.1.1", "no such user");
    check_answer(&rc[2].reply, 450, "4.2.1", "mailbox busy");
    assert_int_equal(log_count(p, "DATA\r\n"), 1);

    m.rcpt = rc + 1;
    m.nrcpt = 2;
    run_send(r, &m);
    assert_false(r->broken);
    check_answer(&rc[1].reply, 550, "5.1.1", "no such user");
    check_answer(&rc[2].reply, 450, "4.2.1", "mailbox busy");
    assert_int_equal(log_count(p, "DATA\r\n"), 2); /* pipelined; refused with 503 */
    assert_int_equal(log_count(p, "hi\r\n"), 1);
    assert_int_equal(log_count(p, "RSET\r\n"), 0);

    m.rcpt = rc;
    m.nrcpt = 1;
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, ".chunks", "\nRSET MAIL RCPT DATA\n"));
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_int_equal(log_count(p, "RSET\r\n"), 1);
    assert_int_equal(log_count(p, "hi\r\n"), 3);
    smtpc_msg_clear(&m);
}

/* 5xx and 4xx at the end of DATA apply to every accepted recipient, not to the refused */
static void
test_data_refused(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test"), RCPT("busy@x.test"), RCPT("b@x.test")};
    struct smtpc_msg m = {.sender = "rej5@x.test", .rcpt = rc, .nrcpt = 3, .text = "t\n", .len = 2};

    run_send(r, &m);
    check_answer(&rc[0].reply, 554, "5.7.1", "content rejected");
    check_answer(&rc[1].reply, 450, "4.2.1", "busy");
    check_answer(&rc[2].reply, 554, "5.7.1", "content rejected");
    m.sender = "rej4@x.test";
    run_send(r, &m);
    check_answer(&rc[0].reply, 451, "4.3.0", "try again later");
    check_answer(&rc[2].reply, 451, "4.3.0", "try again later");
    assert_false(r->broken);
    assert_int_equal(log_count(p, "RSET\r\n"), 0); /* both ended with the final reply */
    smtpc_msg_clear(&m);
}

/* EHLO refused with 502: HELO, and plain SMTP (no SIZE=) */
static void
test_helo_fallback(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
    struct smtpc_msg m = {.sender = "", .rcpt = rc, .nrcpt = 1, .text = "t\n", .len = 2};

    check_reply(&r->info.reply, 250, "2.0.0", "peer.test");
    assert_false(r->info.esmtp || r->info.pipelining);
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, "", "EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<>\r\n"));
    smtpc_msg_clear(&m);
}

/* no PIPELINING: one command per write; none accepted: no DATA at all */
static void
test_no_pipelining(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test"), RCPT("bad@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 2, .text = "t\n", .len = 2};

    assert_false(r->info.pipelining);
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    check_answer(&rc[1].reply, 550, "5.1.1", "no such user");
    assert_true(log_has(p, ".chunks", "\nMAIL\nRCPT\nRCPT\nDATA\n"));
    m.rcpt = rc + 1;
    m.nrcpt = 1;
    run_send(r, &m);
    check_answer(&rc[1].reply, 550, "5.1.1", "no such user");
    assert_int_equal(log_count(p, "DATA\r\n"), 1);
    m.rcpt = rc;
    run_send(r, &m); /* RSET first, alone */
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, ".chunks", "\nRSET\nMAIL\nRCPT\nDATA\n"));
    smtpc_msg_clear(&m);
}

/* xheader_of - an smtpc_msg's XHEADER callback: one for every recipient. */
static size_t
xheader_of(void *arg, size_t i, char *buf, size_t len)
{
    (void)arg;
    return (size_t)snprintf(buf, len, "X-Own:+20%zu", i);
}

/* a message larger than SIZE: 5.3.4 for all, nothing sent, the result from the loop; a
 * smaller one goes on the same connection with SIZE= */
static void
test_size_limit(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test"), RCPT("b@x.test")};
    char big[2000];
    memset(big, 'z', sizeof(big));
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 2, .text = big, .len = 2000};

    assert_int_equal(r->info.size_max, 1000);
    run_send(r, &m);
    assert_false(r->broken);
    check_answer(&rc[0].reply, 552, "5.3.4", "exceeds");
    check_answer(&rc[1].reply, 552, "5.3.4", "exceeds");
    assert_int_equal(log_count(p, "MAIL"), 0);
    m.text = "short\n";
    m.len = 6;
    m.xverp = true; /* asked for, but this server does not announce XVERP: plain MAIL */
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, "", "MAIL FROM:<s@x.test> SIZE=7\r\n"));
    /* a copy's own head goes above the text and counts in SIZE; XHEADER= only to a server
     * that announced it (this one does not) */
    m.head = "X-Own: 1\n";
    m.head_len = 9;
    m.xheader = xheader_of;
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, "", "MAIL FROM:<s@x.test> SIZE=17\r\n"));
    assert_true(log_has(p, "", "\r\nX-Own: 1\r\nshort\r\n.\r\n"));
    assert_int_equal(log_count(p, "XHEADER"), 0);
    smtpc_msg_clear(&m);
}

/* BODY=8BITMIME only for 8-bit text to a server with 8BITMIME; without it the text goes
 * as it is */
static void
test_8bitmime(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    bool on = strcmp(r->scen, "no8bit") != 0;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test",
                          .eightbit = true,
                          .rcpt = rc,
                          .nrcpt = 1,
                          .text = "caf\xc3\xa9\n",
                          .len = 6};

    assert_int_equal(r->info.eightbitmime, on);
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_int_equal(log_count(p, "SIZE=7 BODY=8BITMIME\r\n"), on ? 1 : 0);
    assert_int_equal(log_count(p, "SIZE=7\r\n"), on ? 0 : 1);
    assert_true(log_has(p, "", "caf\xc3\xa9\r\n.\r\n"));
    smtpc_msg_clear(&m);
}

/* SMTPUTF8 needed: 5.6.7 before MAIL when the server lacks it; the parameter when not */
static void
test_smtputf8(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    bool on = strcmp(r->scen, "utf8") == 0;
    struct smtpc_rcpt rc[] = {RCPT("j\xc3\xb6rg@x.test")};
    struct smtpc_msg m = {
        .sender = "s@x.test", .smtputf8 = true, .rcpt = rc, .nrcpt = 1, .text = "t\n", .len = 2};

    assert_int_equal(r->info.smtputf8, on);
    run_send(r, &m);
    assert_false(r->broken);
    if (!on) {
        check_answer(&rc[0].reply, 553, "5.6.7", "SMTPUTF8");
        assert_int_equal(log_count(p, "MAIL"), 0);
    } else {
        check_answer(&rc[0].reply, 250, "2.0.0", "queued");
        assert_true(log_has(p, "", "MAIL FROM:<s@x.test> SIZE=3 SMTPUTF8\r\n"));
    }
    smtpc_msg_clear(&m);
}

/* DSN parameters when the server announced DSN (their absence otherwise: test_pipelined) */
static void
test_dsn_params(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {
        {.addr = "a@x.test", .notify = "SUCCESS,FAILURE", .orcpt = "rfc822;a@x.test"},
        RCPT("b@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test",
                          .envid = "QQ123",
                          .ret = "HDRS",
                          .rcpt = rc,
                          .nrcpt = 2,
                          .text = "t\n",
                          .len = 2};

    assert_true(r->info.dsn);
    run_send(r, &m);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(log_has(p, "",
                        "MAIL FROM:<s@x.test> SIZE=3 RET=HDRS ENVID=QQ123\r\n"
                        "RCPT TO:<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@x.test\r\n"
                        "RCPT TO:<b@x.test>\r\n"));
    smtpc_msg_clear(&m);
}

/* client_tls - a client context; trusting the peers' certificate when trust */
static SSL_CTX *
client_tls(bool trust)
{
    char err[200], *cert = uu_path(sdir, "cert.pem");
    SSL_CTX *ctx = tls_client_ctx(err, sizeof(err));

    assert_non_null(ctx);
    if (trust)
        assert_int_equal(SSL_CTX_load_verify_locations(ctx, cert, NULL), 1);
    free(cert);
    return ctx;
}

/* STARTTLS under MAY (self-signed: TLS, not verified; EHLO again, mail goes), REQUIRE
 * to a server without STARTTLS (4.7.4), VERIFY with the certificate trusted and the name
 * right (verified) and with it untrusted (4.7.5); a failed handshake (MAY 4.7.5, REQUIRE
 * 4.7.4); STARTTLS refused (MAY: plaintext, REQUIRE: 4.7.4) */
static void
test_starttls(void **state)
{
    struct {
        const char *scen;
        enum smtpc_tls policy;
        bool trust;
        int code;
        const char *status;
    } cases[] = {
        {"tls", SMTPC_TLS_MAY, false, 250, "2.0.0"},
        {"pipe", SMTPC_TLS_REQUIRE, true, 421, "4.7.4"},
        {"tls", SMTPC_TLS_VERIFY, true, 250, "2.0.0"},
        {"tls", SMTPC_TLS_VERIFY, false, 421, "4.7.5"},
        {"badtls", SMTPC_TLS_MAY, false, 421, "4.7.5"},
        {"badtls", SMTPC_TLS_REQUIRE, false, 421, "4.7.4"},
        {"notls", SMTPC_TLS_MAY, false, 250, "2.0.0"},
        {"notls", SMTPC_TLS_REQUIRE, false, 421, "4.7.4"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer *p = peer_start(cases[i].scen);
        struct run r = {0};
        struct smtpc_opts o = opts();
        struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
        struct smtpc_msg m = {
            .sender = "s@x.test", .rcpt = rc, .nrcpt = 1, .text = "tls\n", .len = 4};
        o.tls = client_tls(cases[i].trust);
        o.tls_policy = cases[i].policy;
        o.tls_name = "localhost";
        run_open(&r, p->port, &o);
        SSL_CTX_free(o.tls); /* smtpc holds its own reference */
        check_reply(&r.info.reply, cases[i].code, cases[i].status, "");
        if (cases[i].code != 250) {
            assert_string_equal(r.info.stage, "starttls");
            assert_int_equal(smtpc_send(r.c, &m, on_done, &r), -1);
            run_end(&r, p);
            continue;
        }
        if (strcmp(cases[i].scen, "notls") == 0) { /* MAY goes on in plaintext */
            assert_false(r.info.tls);
            assert_true(log_has(p, "", "STARTTLS\r\n"));
            run_send(&r, &m);
            check_answer(&rc[0].reply, 250, "2.0.0", "ok");
            run_end(&r, p);
            smtpc_msg_clear(&m);
            continue;
        }
        assert_true(r.info.tls);
        assert_int_equal(r.info.tls_verified, cases[i].policy == SMTPC_TLS_VERIFY);
        assert_non_null(strstr(r.info.tls_desc, "TLSv1."));
        assert_true(r.info.pipelining);
        assert_true(log_has(p, "", "EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\n"));
        run_send(&r, &m);
        check_answer(&rc[0].reply, 250, "2.0.0", "queued");
        assert_true(log_has(p, "", "tls\r\n.\r\n"));
        run_end(&r, p);
        smtpc_msg_clear(&m);
    }
}

/* AUTH PLAIN over TLS (235), a wrong password (535, stage auth), AUTH LOGIN when only it
 * is offered, and no credentials at all without TLS (4.7.0, no AUTH sent) */
static void
test_auth(void **state)
{
    struct {
        const char *scen, *pass;
        enum smtpc_tls policy;
        int code;
        const char *status, *sent;
    } cases[] = {
        {"tls-auth", "p", SMTPC_TLS_MAY, 235, "2.7.0", "AUTH PLAIN AHUAcA==\r\n"},
        {"tls-auth", "wrong", SMTPC_TLS_MAY, 535, "5.7.8", "AUTH PLAIN AHUAd3Jvbmc=\r\n"},
        {"tls-login", "p", SMTPC_TLS_MAY, 235, "2.7.0", "AUTH LOGIN\r\ndQ==\r\ncA==\r\n"},
        {"auth-notls", "p", SMTPC_TLS_NONE, 454, "4.7.0", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct peer *p = peer_start(cases[i].scen);
        struct run r = {0};
        struct smtpc_opts o = opts();
        o.tls = client_tls(false);
        o.tls_policy = cases[i].policy;
        o.auth_user = "u";
        o.auth_pass = cases[i].pass;
        run_open(&r, p->port, &o);
        SSL_CTX_free(o.tls);
        check_reply(&r.info.reply, cases[i].code, cases[i].status, "");
        if (cases[i].code != 235)
            assert_string_equal(r.info.stage, "auth");
        if (cases[i].sent != NULL) {
            assert_true(r.info.tls);
            assert_true(log_has(p, "", cases[i].sent));
        } else {
            assert_false(r.info.tls);
            assert_int_equal(log_count(p, "AUTH"), 0);
        }
        run_end(&r, p);
    }
}

/* big_text - n octets of 72-octet lines */
static char *big_text(size_t n);

/* big_msg - a message of len generated bytes from s@x.test to these recipients (free its
 * text) */
static struct smtpc_msg
big_msg(struct smtpc_rcpt *rc, size_t nrcpt, size_t len)
{
    return (struct smtpc_msg){
        .sender = "s@x.test", .rcpt = rc, .nrcpt = nrcpt, .text = big_text(len), .len = len};
}

static char *
big_text(size_t n)
{
    char *t = xmalloc(n);

    for (size_t i = 0; i < n; i++)
        t[i] = i % 73 == 72 ? '\n' : (char)('a' + i % 26);
    return t;
}

/* a 12 MB message streams under back-pressure (never copied whole) and arrives whole */
static void
test_large_message(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
    struct smtpc_msg m = big_msg(rc, 1, 12u << 20);

    run_send(r, &m);
    assert_false(r->broken);
    check_answer(&rc[0].reply, 250, "2.0.0", "queued");
    assert_true(uu_size(p->log) > (long long)smtpc_wire_size(m.text, m.len));
    free((char *)m.text);
    smtpc_msg_clear(&m);
}

/* the server drops the connection in the middle of a 4 MB message: 4.4.2 for all,
 * broken, and no more transactions */
static void
test_drop_mid_data(void **state)
{
    struct run *r = *state;
    struct peer *p = r->peer;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test"), RCPT("b@x.test")};
    struct smtpc_msg m = big_msg(rc, 2, 4u << 20);

    run_send(r, &m);
    assert_true(r->broken);
    check_answer(&rc[0].reply, 421, "4.4.2", "lost connection");
    check_answer(&rc[1].reply, 421, "4.4.2", "lost connection");
    assert_true(log_has(p, "", "(dropped)"));
    assert_int_equal(smtpc_send(r->c, &m, on_done, r), -1);
    free((char *)m.text);
    smtpc_msg_clear(&m);
}

/* a server that never speaks: the greeting times out (4.4.2, stage greeting) within the
 * bound; one that never answers the final dot: data_timeout_ms, 4.4.2, broken */
static void
test_timeouts(void **state)
{
    struct peer *p = peer_start("silent");
    struct run r = {0};
    struct smtpc_opts o = opts();

    (void)state;
    o.timeout_ms = 300;
    uint64_t t0 = now_ms();
    run_open(&r, p->port, &o);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 250 && dt < 2500);
    check_reply(&r.info.reply, 421, "4.4.2", "timeout");
    assert_string_equal(r.info.stage, "greeting");
    run_end(&r, p);

    p = peer_start("nodot");
    memset(&r, 0, sizeof(r));
    o.timeout_ms = WAIT;
    o.data_timeout_ms = 400;
    struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 1, .text = "t\n", .len = 2};
    run_open(&r, p->port, &o);
    t0 = now_ms();
    run_send(&r, &m);
    dt = now_ms() - t0;
    assert_true(dt >= 350 && dt < 3000);
    assert_true(r.broken);
    check_answer(&rc[0].reply, 421, "4.4.2", "end of the message");
    run_end(&r, p);
    smtpc_msg_clear(&m);
}

/* a port nobody listens on: ready with 4.4.1, stage connect */
static void
test_connect_refused(void **state)
{
    struct run r = {0};
    struct smtpc_opts o = opts();
    int port, fd = raw_listen(-1, &port);

    (void)state;
    run_open(&r, port, &o);
    check_reply(&r.info.reply, 421, "4.4.1", "connection refused");
    assert_string_equal(r.info.stage, "connect");
    close(fd);
    run_end(&r, NULL);
}

/* smtpc_close with something in flight: no callback afterwards, nothing leaks (ASan):
 * while connecting, while the server sits on the final dot, and while a local result
 * (5.3.4) waits on the timer */
static void
test_close_in_flight(void **state)
{
    struct peer *p = peer_start("nodot");
    struct run r = {0};
    struct smtpc_opts o = opts();
    char err[200];
    struct smtpc_rcpt rc[] = {RCPT("a@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 1, .text = "t\n", .len = 2};

    (void)state;
    r.h = harness_new(0, 0);
    r.c = smtpc_open(r.h->srv, "127.0.0.1", p->port, &o, on_ready, &r, err, sizeof(err));
    assert_non_null(r.c);
    smtpc_close(r.c);
    pump(r.h, 100);
    assert_int_equal(r.nready, 0);
    harness_free(r.h);

    memset(&r, 0, sizeof(r));
    run_open(&r, p->port, &o);
    assert_int_equal(smtpc_send(r.c, &m, on_done, &r), 0);
    assert_int_equal(smtpc_send(r.c, &m, on_done, &r), -1); /* busy */
    RUN_UNTIL(r.h, log_count(p, "(message of") == 1, WAIT);
    assert_int_equal(log_count(p, "(message of"), 1);
    smtpc_close(r.c);
    r.c = NULL;
    pump(r.h, 200);
    assert_int_equal(r.ndone, 0);
    run_end(&r, p);

    p = peer_start("small");
    memset(&r, 0, sizeof(r));
    char big[2000] = {0};
    m.text = big;
    m.len = sizeof(big);
    run_open(&r, p->port, &o);
    assert_int_equal(smtpc_send(r.c, &m, on_done, &r), 0);
    smtpc_close(r.c);
    r.c = NULL;
    pump(r.h, 100);
    assert_int_equal(r.ndone, 0);
    run_end(&r, p);
    smtpc_msg_clear(&m);
}

/* bad input never reaches the wire: CR/LF in an address, no options */
static void
test_bad_input(void **state)
{
    struct peer *p = peer_start("pipe");
    struct run r = {0};
    struct smtpc_opts o = opts();
    char err[200];
    struct smtpc_rcpt rc[] = {RCPT("a@x.test\r\nRSET"), RCPT("b@x.test")};
    struct smtpc_msg m = {.sender = "s@x.test", .rcpt = rc, .nrcpt = 2, .text = "t\n", .len = 2};

    (void)state;
    o.helo = "a\r\nb";
    r.h = harness_new(0, 0);
    assert_null(smtpc_open(r.h->srv, "127.0.0.1", p->port, &o, on_ready, &r, err, sizeof(err)));
    assert_null(smtpc_open(r.h->srv, "mx.test", 25, &o, on_ready, &r, err, sizeof(err)));
    harness_free(r.h);
    o = opts();
    run_open(&r, p->port, &o);
    run_send(&r, &m);
    check_answer(&rc[0].reply, 501, "5.1.3", "bad recipient");
    check_answer(&rc[1].reply, 250, "2.0.0", "queued");
    assert_int_equal(log_count(p, "RSET"), 0);
    m.sender = "s@x\ntest";
    run_send(&r, &m);
    check_answer(&rc[1].reply, 501, "5.1.7", "bad sender");
    run_end(&r, p);
    smtpc_msg_clear(&m);
}

/* the certificate the TLS peers serve, made with the openssl command */
static int
group_up(void **state)
{
    char cmd[1024];

    (void)state;
    atexit(peer_kill_all);
    if (uu_tmpdir_into(sdir, sizeof(sdir), "test_smtpc") < 0)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost >/dev/null 2>&1",
             sdir, sdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
group_down(void **state)
{
    (void)state;
    peer_kill_all();
    return uu_rmtree(sdir);
}

UU_MAIN(group_up, group_down, PEER_TEST(test_pipelined, "pipe"),
        PEER_TEST(test_rcpt_replies, "pipe"), PEER_TEST(test_answers_share_text, "pipe"),
        PEER_TEST(test_data_refused, "pipe"), PEER_TEST(test_helo_fallback, "noehlo"),
        PEER_TEST(test_no_pipelining, "plain"), PEER_TEST(test_size_limit, "small"),
        PEER_TEST(test_8bitmime, "pipe"), PEER_TEST(test_8bitmime, "no8bit"),
        PEER_TEST(test_smtputf8, "pipe"), PEER_TEST(test_smtputf8, "utf8"),
        PEER_TEST(test_dsn_params, "pipe-dsn"), cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_auth), PEER_TEST(test_large_message, "pipe"),
        PEER_TEST(test_drop_mid_data, "drop"), cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connect_refused), cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_bad_input))
