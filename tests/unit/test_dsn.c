/*
 * test_dsn - delivery status notifications (common/mail/dsn.c): each report made here is
 * also read by Python's email package (tests/unit/dsn_check.py), which checks its MIME
 * structure, its status fields and its line lengths independently of the C code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dsn.h"
#include "xmem.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define NOW_DATE "Tue, 14 Nov 2023 22:13:20 +0000"
#define ARRIVAL ((time_t)1699990000) /* Tue, 14 Nov 2023 19:26:40 +0000 */
#define ARRIVAL_DATE "Tue, 14 Nov 2023 19:26:40 +0000"
#define RETRY ((time_t)1700400000) /* Sun, 19 Nov 2023 13:20:00 +0000 */
#define RETRY_DATE "Sun, 19 Nov 2023 13:20:00 +0000"
#define ID "1700000000.A1b2.node"

static const char orig[] = "From: Alice <alice@example.org>\n"
                           "To: bob@example.net\n"
                           "Subject: hello\n"
                           "Message-ID: <1@example.org>\n"
                           "\n"
                           "Hi Bob,\n"
                           "the body.\n";

/* base - a report on orig from mail.example.org to alice about the recipients r. */
static struct dsn_msg
base(const struct dsn_rcpt *r, size_t n)
{
    struct dsn_msg m = {
        .hostname = "mail.example.org",
        .postmaster = "MAILER-DAEMON@mail.example.org",
        .to = "alice@example.org",
        .arrival = ARRIVAL,
        .now = NOW,
        .id = ID,
        .rcpt = r,
        .nrcpt = n,
        .text = orig,
        .text_len = sizeof orig - 1,
    };
    return m;
}

static const struct dsn_rcpt nouser = {
    .final_rcpt = "bob@example.net",
    .action = DSN_FAILED,
    .status = "5.1.1",
    .remote_mta = "mx.example.net",
    .diagnostic = "smtp; 550 5.1.1 <bob@example.net>: no such user",
    .last_attempt = NOW - 10,
};

/* compose - dsn_compose that must succeed. */
static struct dsn_out
compose(const struct dsn_msg *m)
{
    struct dsn_out out = {0};
    char err[200] = "";

    int rc = dsn_compose(m, &out, err, sizeof err);
    if (rc != 0)
        print_message("dsn_compose: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(out.text);
    assert_int_equal(strlen(out.text), out.len);
    return out;
}

/* python_check - write the report to a file and run dsn_check.py on it with the
 * expectations exp (NULL-terminated); its exit status must be 0. */
static void
python_check(const struct dsn_out *out, const char *const *exp)
{
    char path[] = "/tmp/test_dsn.XXXXXX";
    int fd = mkstemp(path);
    const char *argv[64];
    size_t n = 0;
    char *script = xstrdup(__FILE__);
    char *slash = strrchr(script, '/');
    char *spath;

    /* next to this file: the tests run from the top of the tree */
    if (slash != NULL)
        slash[1] = '\0';
    spath = xasprintf("%sdsn_check.py", slash != NULL ? script : "tests/unit/");
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out->text, out->len), (ssize_t)out->len);
    close(fd);
    argv[n++] = "/usr/bin/python3";
    argv[n++] = spath;
    argv[n++] = path;
    for (size_t i = 0; exp[i] != NULL && n < 63; i++)
        argv[n++] = exp[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        print_message("dsn_check failed on:\n%s\n", out->text);
    unlink(path);
    free(spath);
    free(script);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

#define PYCHECK(out, ...) python_check((out), (const char *const[]){__VA_ARGS__, NULL})

/* has_line - text has the line l (whole, LF-terminated). */
static bool
has_line(const char *text, const char *l)
{
    size_t n = strlen(l);

    for (const char *p = text; (p = strstr(p, l)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

/* test_failed - one recipient refused by the next hop; headers returned by default. */
static void
test_failed(void **state)
{
    struct dsn_msg m = base(&nouser, 1);
    struct dsn_out out = compose(&m);

    assert_true(has_line(out.text, "From: Mail Delivery System <MAILER-DAEMON@mail.example.org>"));
    assert_true(has_line(out.text, "To: <alice@example.org>"));
    assert_true(has_line(out.text, "Subject: Undelivered Mail Returned to Sender"));
    assert_true(has_line(out.text, "Date: " NOW_DATE));
    assert_true(has_line(out.text, "Message-ID: <dsn." ID "@mail.example.org>"));
    assert_true(has_line(out.text, "Auto-Submitted: auto-replied"));
    assert_true(has_line(out.text, "Reporting-MTA: dns; mail.example.org"));
    assert_true(has_line(out.text, "Final-Recipient: rfc822; bob@example.net"));
    assert_int_equal(out.returned, DSN_RETURNED_HEADERS);
    assert_false(out.eightbit);
    assert_null(strstr(out.text, "Hi Bob"));
    assert_null(strchr(out.text, '\r'));
    PYCHECK(&out, "h.Subject=Undelivered Mail Returned to Sender", "h.To~=alice@example.org",
            "h.From~=MAILER-DAEMON@mail.example.org", "h.Auto-Submitted=auto-replied",
            "h.MIME-Version=1.0", "h.Content-Transfer-Encoding!", "nrcpt=1",
            "m.Reporting-MTA=dns; mail.example.org", "m.Arrival-Date=" ARRIVAL_DATE,
            "m.Original-Envelope-Id!", "r0.Final-Recipient=rfc822; bob@example.net",
            "r0.Action=failed", "r0.Status=5.1.1", "r0.Remote-MTA=dns; mx.example.net",
            "r0.Diagnostic-Code=smtp; 550 5.1.1 <bob@example.net>: no such user",
            "r0.Last-Attempt-Date=Tue, 14 Nov 2023 22:13:10 +0000", "r0.Original-Recipient!",
            "r0.Will-Retry-Until!", "part3=text/rfc822-headers", "o.Subject=hello",
            "o.Message-ID=<1@example.org>",
            "text~=<bob@example.net>: failed, status 5.1.1 (address problem)",
            "text~=host mx.example.net said: 550 5.1.1 <bob@example.net>: no such user",
            "text~=The headers of the message are attached.");
    dsn_out_free(&out);
}

/* test_returned - RET and bounce_body decide between headers and the whole message. */
static void
test_returned(void **state)
{
    static const struct {
        enum dsn_ret ret;
        bool bounce_body;
        enum dsn_part3 want;
    } cases[] = {
        {DSN_RET_UNSET, false, DSN_RETURNED_HEADERS}, {DSN_RET_UNSET, true, DSN_RETURNED_FULL},
        {DSN_RET_HDRS, true, DSN_RETURNED_HEADERS},   {DSN_RET_FULL, false, DSN_RETURNED_FULL},
        {DSN_RET_HDRS, false, DSN_RETURNED_HEADERS},  {DSN_RET_FULL, true, DSN_RETURNED_FULL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dsn_msg m = base(&nouser, 1);
        m.ret = cases[i].ret;
        m.bounce_body = cases[i].bounce_body;
        struct dsn_out out = compose(&m);
        assert_int_equal(out.returned, cases[i].want);
        if (cases[i].want == DSN_RETURNED_FULL) {
            assert_non_null(strstr(out.text, "Hi Bob,\nthe body.\n"));
            PYCHECK(&out, "part3=message/rfc822", "o.Subject=hello", "body~=Hi Bob,\nthe body.",
                    "text~=The message is attached.", "r0.Action=failed");
        } else {
            assert_null(strstr(out.text, "Hi Bob"));
            PYCHECK(&out, "part3=text/rfc822-headers", "o.Subject=hello", "o.From~=alice");
        }
        dsn_out_free(&out);
    }
}

/* test_delayed - a delay notice: Will-Retry-Until, headers only even with RET=FULL. */
static void
test_delayed(void **state)
{
    struct dsn_rcpt r = {
        .final_rcpt = "carol@example.com",
        .action = DSN_DELAYED,
        .status = "4.4.1",
        .diagnostic = "X-Dmail; connection to mx.example.com timed out",
        .last_attempt = NOW - 60,
        .retry_until = RETRY,
    };
    struct dsn_msg m = base(&r, 1);
    m.ret = DSN_RET_FULL;
    struct dsn_out out = compose(&m);

    assert_int_equal(out.returned, DSN_RETURNED_HEADERS);
    PYCHECK(&out, "h.Subject=Delayed Mail (still being retried)", "r0.Action=delayed",
            "r0.Status=4.4.1", "r0.Will-Retry-Until=" RETRY_DATE, "r0.Remote-MTA!",
            "r0.Diagnostic-Code=X-Dmail; connection to mx.example.com timed out",
            "part3=text/rfc822-headers", "text~=has not been delivered yet",
            "text~=keeps trying until " RETRY_DATE,
            "text~=reason: connection to mx.example.com timed out",
            "text~=<carol@example.com>: delayed, status 4.4.1 (network or routing problem)");
    dsn_out_free(&out);
}

/* test_success - NOTIFY=SUCCESS reports: delivered, relayed, expanded. */
static void
test_success(void **state)
{
    struct dsn_rcpt r[] = {
        {.final_rcpt = "dave@example.org", .action = DSN_DELIVERED, .status = "2.0.0"},
        {.final_rcpt = "erin@example.com",
         .action = DSN_RELAYED,
         .status = "2.0.0",
         .remote_mta = "mx.example.com",
         .diagnostic = "smtp; 250 2.0.0 queued as 4711"},
        {.final_rcpt = "list@example.org", .action = DSN_EXPANDED, .status = "2.1.5"},
    };
    struct dsn_msg m = base(r, 3);
    m.bounce_body = true;
    struct dsn_out out = compose(&m);

    assert_int_equal(out.returned, DSN_RETURNED_HEADERS);
    PYCHECK(&out, "h.Subject=Successful Mail Delivery Report", "nrcpt=3", "r0.Action=delivered",
            "r0.Status=2.0.0", "r0.Final-Recipient=rfc822; dave@example.org", "r0.Remote-MTA!",
            "r0.Diagnostic-Code!", "r0.Last-Attempt-Date!", "r1.Action=relayed",
            "r1.Remote-MTA=dns; mx.example.com", "r2.Action=expanded", "r2.Status=2.1.5",
            "part3=text/rfc822-headers", "text~=was delivered to the recipients below",
            "text~=does not report deliveries", "text~=<list@example.org>: expanded, status 2.1.5");
    dsn_out_free(&out);
}

/* test_several - failed, delayed and failed again: one report, recipients in order. */
static void
test_several(void **state)
{
    struct dsn_rcpt r[] = {
        nouser,
        {.final_rcpt = "carol@example.com",
         .action = DSN_DELAYED,
         .status = "4.2.2",
         .remote_mta = "dns; mx.example.com",
         .diagnostic = "smtp; 452 4.2.2 mailbox full",
         .retry_until = RETRY},
        {.final_rcpt = "frank@example.net",
         .action = DSN_FAILED,
         .status = "5.7.1",
         .remote_mta = "mx.example.net",
         .diagnostic = "smtp; 554 5.7.1 rejected by policy"},
    };
    struct dsn_msg m = base(r, 3);
    struct dsn_out out = compose(&m);

    PYCHECK(&out, "h.Subject=Undelivered Mail Returned to Sender", "nrcpt=3",
            "r0.Final-Recipient=rfc822; bob@example.net", "r0.Action=failed",
            "r1.Final-Recipient=rfc822; carol@example.com", "r1.Action=delayed", "r1.Status=4.2.2",
            "r1.Remote-MTA=dns; mx.example.com", "r1.Will-Retry-Until=" RETRY_DATE,
            "r2.Final-Recipient=rfc822; frank@example.net", "r2.Action=failed", "r2.Status=5.7.1",
            "r2.Will-Retry-Until!", "text~=could not be delivered to the recipients below",
            "text~=has not been delivered yet", "text~=554 5.7.1 rejected by policy",
            "text~=host mx.example.com said: 452 4.2.2 mailbox full");
    /* the failed ones are listed together, before the delayed one */
    const char *b = strstr(out.text, "<bob@example.net>:");
    const char *f = strstr(out.text, "<frank@example.net>:");
    const char *c = strstr(out.text, "<carol@example.com>:");
    assert_true(b != NULL && f != NULL && c != NULL && b < f && f < c);
    dsn_out_free(&out);
}

/* test_envid_orcpt - ENVID and ORCPT are written decoded from xtext, and only when given. */
static void
test_envid_orcpt(void **state)
{
    struct dsn_rcpt r[] = {nouser, nouser};
    r[0].orcpt = "rfc822;Bob+2BTag@Example.NET";
    r[1].final_rcpt = "gina@example.net";
    struct dsn_msg m = base(r, 2);
    m.envid = "QQ+2B314+3D";
    struct dsn_out out = compose(&m);

    assert_true(has_line(out.text, "Original-Envelope-Id: QQ+314="));
    assert_true(has_line(out.text, "Original-Recipient: rfc822;Bob+Tag@Example.NET"));
    /* RFC 3464: the Original-Envelope-Id comes first, the Original-Recipient before the
     * Final-Recipient */
    assert_true(strstr(out.text, "Original-Envelope-Id:") < strstr(out.text, "Reporting-MTA:"));
    assert_true(strstr(out.text, "Original-Recipient:") < strstr(out.text, "Final-Recipient:"));
    PYCHECK(&out,
            "m.Original-Envelope-Id=QQ+314=", "r0.Original-Recipient=rfc822;Bob+Tag@Example.NET",
            "r0.Final-Recipient=rfc822; bob@example.net", "r1.Original-Recipient!",
            "r1.Final-Recipient=rfc822; gina@example.net", "nrcpt=2");
    dsn_out_free(&out);
}

/* test_long_diagnostic - 2,000 octets of reply are folded into lines of at most 998
 * octets and read back whole; a run without spaces is broken; past DSN_DIAG_MAX it is
 * cut. */
static void
test_long_diagnostic(void **state)
{
    char words[2001], *diag = NULL;
    struct dsn_rcpt r = nouser;
    size_t n = 0;

    n += (size_t)snprintf(words, sizeof words, "smtp; 550 5.1.1");
    for (int i = 0; n + 9 < sizeof words; i++)
        n += (size_t)snprintf(words + n, sizeof words - n, " word%04d", i);
    while (n < 2000)
        words[n++] = 'x';
    words[n] = '\0';
    assert_int_equal(strlen(words), 2000);
    r.diagnostic = words;
    struct dsn_msg m = base(&r, 1);
    struct dsn_out out = compose(&m);
    char *want = xasprintf("r0.Diagnostic-Code=%s", words);
    char *said = xasprintf("text~=%s", words + 6);
    PYCHECK(&out, want, said, "r0.Status=5.1.1");
    free(want);
    free(said);
    dsn_out_free(&out);

    /* 2,000 octets without a space: broken at the line limit, nothing lost */
    diag = xmalloc(2001);
    memcpy(diag, "smtp;", 5);
    memset(diag + 5, 'y', 1995);
    diag[2000] = '\0';
    r.diagnostic = diag;
    out = compose(&m);
    PYCHECK(&out, "r0.Diagnostic-Code~=smtp;yyyyyyyyyy", "r0.Action=failed");
    size_t ys = 0;
    for (const char *p = out.text; *p != '\0'; p++)
        ys += *p == 'y';
    assert_true(ys >= 1995 * 2); /* in the status field and in the explanation */
    dsn_out_free(&out);
    free(diag);

    /* 6,000 octets: cut at DSN_DIAG_MAX, "..." says so */
    diag = xmalloc(6001);
    for (size_t i = 0; i < 6000; i++)
        diag[i] = i % 10 == 9 ? ' ' : 'z';
    diag[6000] = '\0';
    r.diagnostic = diag;
    out = compose(&m);
    PYCHECK(&out, "r0.Diagnostic-Code~=zzzzzzz...", "text~=zzzzzzz...", "r0.Status=5.1.1");
    size_t zs = 0;
    for (const char *p = out.text; *p != '\0'; p++)
        zs += *p == 'z';
    assert_true(zs <= 2 * DSN_DIAG_MAX); /* not 2 * 5,400 */
    dsn_out_free(&out);
    free(diag);
}

/* test_injection - CR, LF and NUL from a remote reply cannot start a field or a part. */
static void
test_injection(void **state)
{
    static const char evil[] = "smtp; 550 no\r\nX-Injected: yes\r\n\r\n--dsn=_x\nContent-Type: "
                               "text/html\n\n<b>hi</b>\0Final-Recipient: rfc822; evil@x";
    struct dsn_rcpt r = nouser;
    r.diagnostic = evil;
    r.remote_mta = "mx.example.net\r\nX-Evil: 1";
    r.final_rcpt = "bob@example.net\nX-Rcpt: 1";
    struct dsn_msg m = base(&r, 1);
    m.envid = "id\r\nX-Envid: 1";
    struct dsn_out out = compose(&m);

    assert_null(strchr(out.text, '\r'));
    assert_null(strstr(out.text, "\nX-Injected"));
    assert_null(strstr(out.text, "\nX-Evil"));
    assert_null(strstr(out.text, "\nX-Rcpt"));
    assert_null(strstr(out.text, "\nX-Envid"));
    assert_null(strstr(out.text, "\n--dsn=_x\n"));
    assert_null(strstr(out.text, "\nContent-Type: text/html"));
    PYCHECK(&out, "nrcpt=1", "h.X-Injected!", "r0.X-Injected!", "r0.X-Evil!", "r0.X-Rcpt!",
            "m.X-Envid!", "r0.Diagnostic-Code~=smtp; 550 no X-Injected: yes --dsn=_x",
            "r0.Remote-MTA=dns; mx.example.net X-Evil: 1", "r0.Action=failed",
            "m.Original-Envelope-Id=id X-Envid: 1", "text~=550 no X-Injected: yes");
    dsn_out_free(&out);
}

/* test_eightbit - 8-bit bytes in the returned part are labelled 8bit, here and on the
 * multipart; headers-only of an 8-bit body is 7-bit; 8-bit in a reply becomes '?'. */
static void
test_eightbit(void **state)
{
    static const char text8[] = "From: alice@example.org\nSubject: Gr\xc3\xbc\xc3\x9f"
                                "e\n\nGr\xc3\xbc\xc3\x9f"
                                "e aus K\xc3\xb6ln\n";
    static const char body8[] = "From: alice@example.org\nSubject: hi\n\nK\xc3\xb6ln\n";
    struct dsn_rcpt r = nouser;
    r.diagnostic = "smtp; 550 unbekannter Empf\xc3\xa4nger";
    struct dsn_msg m = base(&r, 1);
    m.text = text8;
    m.text_len = sizeof text8 - 1;
    m.ret = DSN_RET_FULL;
    struct dsn_out out = compose(&m);

    assert_true(out.eightbit);
    assert_non_null(strstr(out.text, "K\xc3\xb6ln"));
    PYCHECK(&out, "part3=message/rfc822", "h.Content-Transfer-Encoding=8bit",
            "p3.Content-Transfer-Encoding=8bit", "p1.Content-Transfer-Encoding!",
            "body~=Gr\xc3\xbc\xc3\x9f"
            "e aus K\xc3\xb6ln",
            "r0.Diagnostic-Code=smtp; 550 unbekannter Empf??nger");
    dsn_out_free(&out);

    m.text = body8;
    m.text_len = sizeof body8 - 1;
    m.ret = DSN_RET_HDRS;
    out = compose(&m);
    assert_false(out.eightbit);
    assert_null(strstr(out.text, "Content-Transfer-Encoding"));
    PYCHECK(&out, "part3=text/rfc822-headers", "h.Content-Transfer-Encoding!", "o.Subject=hi");
    dsn_out_free(&out);

    m.text = text8; /* 8-bit in the headers: headers only is 8bit too */
    m.text_len = sizeof text8 - 1;
    out = compose(&m);
    assert_true(out.eightbit);
    PYCHECK(&out, "part3=text/rfc822-headers", "p3.Content-Transfer-Encoding=8bit");
    dsn_out_free(&out);
}

/* boundary_of - the boundary parameter of a report, into b. */
static void
boundary_of(const char *text, char *b, size_t len)
{
    const char *p = strstr(text, "boundary=\"");

    assert_non_null(p);
    p += 10;
    size_t n = strcspn(p, "\"");
    assert_true(n < len);
    memcpy(b, p, n);
    b[n] = '\0';
}

/* test_boundary - an original holding the boundary that would be used gets another. */
static void
test_boundary(void **state)
{
    struct dsn_msg m = base(&nouser, 1);
    struct dsn_out out = compose(&m);
    char first[80], second[80];

    boundary_of(out.text, first, sizeof first);
    assert_string_equal(first, "dsn=_" ID "/1700000000");
    dsn_out_free(&out);

    char *text = xasprintf("Subject: trap\nContent-Type: multipart/mixed; boundary=\"%s\"\n\n"
                           "--%s\nContent-Type: text/plain\n\nfake part\n--%s--\n",
                           first, first, first);
    m.text = text;
    m.text_len = strlen(text);
    m.bounce_body = true;
    out = compose(&m);
    boundary_of(out.text, second, sizeof second);
    assert_string_not_equal(first, second);
    assert_null(strstr(text, second));
    assert_true(strlen(second) <= 70);
    char *body = xasprintf("body~=--%s--", first);
    PYCHECK(&out, "part3=message/rfc822", "o.Subject=trap", body, "r0.Status=5.1.1");
    free(body);
    dsn_out_free(&out);

    /* the same for a boundary in a remote reply, and composing is repeatable */
    struct dsn_rcpt r = nouser;
    char *diag = xasprintf("smtp; 550 --%s", first);
    r.diagnostic = diag;
    m = base(&r, 1);
    out = compose(&m);
    boundary_of(out.text, second, sizeof second);
    assert_string_not_equal(first, second);
    struct dsn_out again = compose(&m);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.text, out.text, out.len);
    PYCHECK(&out, "r0.Status=5.1.1", "text~=550 --dsn=_");
    dsn_out_free(&again);
    dsn_out_free(&out);
    free(diag);
    free(text);
}

/* test_original_lines - long lines of the original are cut at 998 octets, NUL and CR
 * dropped, a missing last LF added; an original without a body or empty works. */
static void
test_original_lines(void **state)
{
    char *text = xmalloc(4200);
    size_t o = (size_t)sprintf(text, "Subject: long\nX-Long: ");
    memset(text + o, 'h', 1500);
    o += 1500;
    o += (size_t)sprintf(text + o, "\n\nA\rB");
    text[o++] = '\0';
    o += (size_t)sprintf(text + o, "C\n");
    memset(text + o, 'b', 2500);
    o += 2500;
    struct dsn_msg m = base(&nouser, 1);
    m.text = text;
    m.text_len = o;
    m.ret = DSN_RET_FULL;
    struct dsn_out out = compose(&m);
    PYCHECK(&out, "part3=message/rfc822", "o.Subject=long", "body~=ABC\n");
    dsn_out_free(&out);

    m.ret = DSN_RET_HDRS;
    out = compose(&m);
    PYCHECK(&out, "part3=text/rfc822-headers", "o.Subject=long", "o.X-Long~=hhhhhhhh");
    dsn_out_free(&out);

    m.text = "Subject: no body";
    m.text_len = strlen(m.text);
    out = compose(&m);
    PYCHECK(&out, "o.Subject=no body");
    dsn_out_free(&out);

    m.text = NULL;
    m.text_len = 0;
    out = compose(&m);
    PYCHECK(&out, "part3=text/rfc822-headers", "r0.Action=failed");
    dsn_out_free(&out);
    free(text);
}

/* test_double_bounce - the same report to the admin, about a message from <>; Message-ID
 * and From name given by the caller. */
static void
test_double_bounce(void **state)
{
    struct dsn_msg m = base(&nouser, 1);
    m.to = "postmaster@example.org";
    m.orig_sender = "";
    m.message_id = "given.1@mail.example.org";
    m.from_name = "Mail \"Robot\", Inc.";
    struct dsn_out out = compose(&m);

    assert_true(has_line(out.text, "Message-ID: <given.1@mail.example.org>"));
    assert_true(
        has_line(out.text, "From: \"Mail \\\"Robot\\\", Inc.\" <MAILER-DAEMON@mail.example.org>"));
    PYCHECK(&out, "h.To~=postmaster@example.org", "h.Message-ID=<given.1@mail.example.org>",
            "h.From~=MAILER-DAEMON@mail.example.org", "text~=for the postmaster",
            "text~=came from <>", "r0.Action=failed");
    dsn_out_free(&out);

    m.message_id = "<x.2@mail.example.org>";
    m.from_name = NULL;
    out = compose(&m);
    assert_true(has_line(out.text, "Message-ID: <x.2@mail.example.org>"));
    dsn_out_free(&out);
}

/* test_refused - unusable input is refused with a reason; out is untouched. */
static void
test_refused(void **state)
{
    static const char *const bad_status[] = {"5.1",  "x.1.1",  "5.1.1234", "3.1.1",
                                             "5..1", "5.1.1 ", ""};
    struct dsn_out out = {0};
    char err[200];

    for (size_t i = 0; i < sizeof bad_status / sizeof bad_status[0]; i++) {
        struct dsn_rcpt r = nouser;
        r.status = bad_status[i];
        struct dsn_msg m = base(&r, 1);
        err[0] = '\0';
        assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
        assert_non_null(strstr(err, "status"));
        assert_null(out.text);
    }
    struct dsn_rcpt r = nouser;
    r.action = (enum dsn_action)42;
    struct dsn_msg m = base(&r, 1);
    assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "action"));
    m = base(&nouser, 0);
    assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
    m = base(&nouser, 1);
    m.to = "";
    assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "null sender"));
    m = base(&nouser, 1);
    m.hostname = NULL;
    assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
    r = nouser;
    r.final_rcpt = "";
    m = base(&r, 1);
    assert_int_equal(dsn_compose(&m, &out, err, sizeof err), -1);
    assert_null(out.text);
    assert_string_equal(dsn_action_name(DSN_EXPANDED), "expanded");
    assert_null(dsn_action_name((enum dsn_action)5));
}

/* test_bounceable - the null sender, reports and auto-submitted mail are not bounced. */
static void
test_bounceable(void **state)
{
    static const struct {
        const char *sender, *text;
        enum dsn_bounce want;
    } cases[] = {
        {"alice@example.org", orig, DSN_BOUNCE_OK},
        {"", orig, DSN_NULL_SENDER},
        {"<>", orig, DSN_NULL_SENDER},
        {NULL, orig, DSN_NULL_SENDER},
        {"a@x", "Subject: x\nAuto-Submitted: auto-replied\n\nbody\n", DSN_AUTO_SUBMITTED},
        {"a@x", "auto-submitted:Auto-Generated; owner-email=a@x\n\n", DSN_AUTO_SUBMITTED},
        {"a@x", "Subject: x\nAuto-Submitted: no\n\n", DSN_BOUNCE_OK},
        {"a@x", "Subject: x\nAuto-Submitted: No (a person)\n\n", DSN_BOUNCE_OK},
        {"a@x", "Subject: x\nAuto-Submitted: notify\n\n", DSN_AUTO_SUBMITTED},
        {"a@x", "Subject: x\n\nAuto-Submitted: auto-replied\n", DSN_BOUNCE_OK},
        {"a@x", "Subject: x\nX-Auto-Submitted: auto-replied\n\n", DSN_BOUNCE_OK},
        {"a@x",
         "Content-Type: multipart/report;\n\treport-type=\"delivery-status\";\n"
         " boundary=x\n\n",
         DSN_IS_REPORT},
        {"a@x", "Content-Type: multipart/report; report-type=disposition-notification\n\n",
         DSN_BOUNCE_OK},
        {"a@x", "Content-Type: multipart/mixed; boundary=delivery-status\n\n", DSN_BOUNCE_OK},
        {"a@x", "", DSN_BOUNCE_OK},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].text;
        enum dsn_bounce got = dsn_bounceable(cases[i].sender, t, strlen(t));
        if (got != cases[i].want)
            print_message("case %zu: %s\n", i, dsn_bounce_text(got));
        assert_int_equal(got, cases[i].want);
    }
    assert_int_equal(dsn_bounceable("a@x", NULL, 0), DSN_BOUNCE_OK);
    assert_string_equal(dsn_bounce_text(DSN_IS_REPORT), "delivery report");

    /* a report of ours is recognised as one */
    struct dsn_msg m = base(&nouser, 1);
    struct dsn_out out = compose(&m);
    assert_int_equal(dsn_bounceable("x@y", out.text, out.len), DSN_IS_REPORT);
    dsn_out_free(&out);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_failed), cmocka_unit_test(test_returned),
        cmocka_unit_test(test_delayed), cmocka_unit_test(test_success),
        cmocka_unit_test(test_several), cmocka_unit_test(test_envid_orcpt),
        cmocka_unit_test(test_long_diagnostic), cmocka_unit_test(test_injection),
        cmocka_unit_test(test_eightbit), cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_original_lines), cmocka_unit_test(test_double_bounce),
        cmocka_unit_test(test_refused), cmocka_unit_test(test_bounceable))
