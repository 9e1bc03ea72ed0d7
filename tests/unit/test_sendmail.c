/*
 * test_sendmail - sendmail's pure parts: address lists of headers, the command line, the
 * input reader, the header fix-ups and the qualification of bare header addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dsnparam.h"
#include "../../sendmail/smaddr.h"
#include "../../sendmail/smmsg.h"
#include "../../sendmail/smopt.h"
#include "../../sendmail/smqual.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Header values and the addresses they hold, "|"-separated; NULL: a syntax error. */
static const struct {
    const char *in, *out;
} addr_cases[] = {
    {"a@example.org", "a@example.org"},
    {"  a@example.org  ", "a@example.org"},
    {"a@example.org, b@example.org", "a@example.org|b@example.org"},
    {"Alice <alice@example.org>", "alice@example.org"},
    {"\"Smith, John\" <john@example.org>, x@y", "john@example.org|x@y"},
    {"\"quoted <not@addr>\" <real@example.org>", "real@example.org"},
    {"a@example.org (comment, with comma)", "a@example.org"},
    {"a@example.org (nested (comment) here), b@c", "a@example.org|b@c"},
    {"Name (c) <x@y> (d)", "x@y"},
    {"team: a@b, C <c@d>;, e@f", "a@b|c@d|e@f"},
    {"undisclosed-recipients:;", ""},
    {"", ""},
    {" , ,a@b,, ", "a@b"},
    {"<@relay.example,@other.example:user@example.org>", "user@example.org"},
    {"<\"odd>local\"@example.org>", "\"odd>local\"@example.org"},
    {"\"quoted local\"@example.org", "\"quoted local\"@example.org"},
    {"First\n Second <folded@example.org>,\n\tnext@example.org\n",
     "folded@example.org|next@example.org"},
    {"bare, names", "bare|names"},
    {"<>", ""},
    {"\"unterminated", NULL},
    {"(unterminated comment", NULL},
    {"<unterminated@angle", NULL},
    {"<a@b> <c@d>", NULL},
    {"<a<b>", NULL},
};

/* join - a list as "a|b|c" into buf. */
static const char *
join(const struct smaddr_list *l, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            strncat(buf, "|", len - strlen(buf) - 1);
        strncat(buf, l->v[i], len - strlen(buf) - 1);
    }
    return buf;
}

/* test_addr_lists - every case of the table. */
static void
test_addr_lists(void **state)
{
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        struct smaddr_list l = {0};
        char err[128] = "", got[512];
        int rc = smaddr_extract(addr_cases[i].in, strlen(addr_cases[i].in), &l, err, sizeof err);

        if (addr_cases[i].out == NULL) {
            if (rc != -1 || err[0] == '\0')
                fail_msg("case %zu \"%s\": accepted", i, addr_cases[i].in);
        } else if (rc != 0 || strcmp(join(&l, got, sizeof got), addr_cases[i].out) != 0) {
            fail_msg("case %zu \"%s\": got \"%s\" (%s), want \"%s\"", i, addr_cases[i].in,
                     rc == 0 ? got : "error", err, addr_cases[i].out);
        }
        smaddr_free(&l);
        assert_int_equal(l.n, 0);
    }
}

/* test_addr_append - a second call appends to the same list. */
static void
test_addr_append(void **state)
{
    struct smaddr_list l = {0};
    char err[64], got[128];

    assert_int_equal(smaddr_extract("a@b", 3, &l, err, sizeof err), 0);
    assert_int_equal(smaddr_extract("c@d, e@f", 8, &l, err, sizeof err), 0);
    /* len bounds the value: "g@h" is not read */
    assert_int_equal(smaddr_extract("x@yg@h", 3, &l, err, sizeof err), 0);
    assert_string_equal(join(&l, got, sizeof got), "a@b|c@d|e@f|x@y");
    smaddr_free(&l);
}

/* parse - run smopt_parse on a NULL-terminated word list. */
static int
parse(struct smopt *o, char *err, size_t errlen, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;

    va_start(ap, errlen);
    while ((argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    return smopt_parse(argc, argv, o, err, errlen);
}

/* test_options - modern, historic, clustered and misplaced options. */
static void
test_options(void **state)
{
    struct smopt o;
    char err[128];

    assert_int_equal(parse(&o, err, sizeof err, "/usr/sbin/sendmail", "-t", "-i", "-f",
                           "bob@example.org", "-FJane Doe", "-Cconf", "-v", "a", "b", NULL),
                     0);
    assert_int_equal(o.mode, SMOPT_DELIVER);
    assert_true(o.extract && o.ignore_dots && o.verbose);
    assert_string_equal(o.sender, "bob@example.org");
    assert_string_equal(o.fullname, "Jane Doe");
    assert_string_equal(o.config, "conf");
    assert_int_equal(o.nrcpt, 2);
    assert_string_equal(o.rcpt[1], "b");
    smopt_free(&o);

    /* historic options and their arguments never become recipients */
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-oem", "-odb", "-U", "-h", "12", "-N",
                           "never", "-R", "full", "-V", "id", "-X", "log", "-L", "lab", "-O", "A=b",
                           "-B", "8BITMIME", "-n", "-G", "-d0.1", "-Am", "-oi", "x", NULL),
                     0);
    assert_int_equal(o.nrcpt, 1);
    assert_string_equal(o.rcpt[0], "x");
    assert_true(o.ignore_dots);
    assert_false(o.extract);
    /* -N, -R, -V are DSN's (RFC 3461), as in Postfix */
    assert_int_equal(o.notify, DSN_NOTIFY_NEVER);
    assert_int_equal(o.ret, DSN_RET_FULL);
    assert_string_equal(o.envid, "id");
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-N", "Success,delay", "-Rhdrs", "-V",
                           "a+b c=d", "x", NULL),
                     0);
    assert_int_equal(o.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
    assert_int_equal(o.ret, DSN_RET_HDRS);
    assert_string_equal(o.envid, "a+2Bb+20c+3Dd");
    smopt_free(&o);
    static const char *const bad_dsn[][2] = {
        {"-N", "never,success"}, {"-N", "sometimes"}, {"-N", ""}, {"-R", "body"}, {"-V", ""},
        {"-V", "tab\there"},     {"-V", "\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof bad_dsn / sizeof bad_dsn[0]; i++) {
        err[0] = '\0';
        assert_int_equal(
            parse(&o, err, sizeof err, "sendmail", bad_dsn[i][0], bad_dsn[i][1], "x", NULL), -1);
        assert_non_null(strstr(err, bad_dsn[i][0]));
        smopt_free(&o);
    }
    char longid[80];
    memset(longid, '+', 40); /* 40 x "+2B": 120 octets of xtext */
    longid[40] = '\0';
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-V", longid, "x", NULL), -1);
    smopt_free(&o);
    longid[33] = '\0'; /* 99 */
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-V", longid, "x", NULL), 0);
    assert_int_equal(strlen(o.envid), 99);
    smopt_free(&o);

    /* clustered, GNU order, -- ends options, -r spelling */
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "a", "-tir", "s@x", "--", "-b", NULL),
                     0);
    assert_true(o.extract && o.ignore_dots);
    assert_string_equal(o.sender, "s@x");
    assert_int_equal(o.nrcpt, 2);
    assert_string_equal(o.rcpt[1], "-b");
    smopt_free(&o);

    /* modes */
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-bp", NULL), 0);
    assert_int_equal(o.mode, SMOPT_MAILQ);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-bs", NULL), 0);
    assert_int_equal(o.mode, SMOPT_SMTP);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-q30m", NULL), 0);
    assert_int_equal(o.mode, SMOPT_QRUN);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "/x/mailq", NULL), 0);
    assert_int_equal(o.mode, SMOPT_MAILQ);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "newaliases", NULL), 0);
    assert_int_equal(o.mode, SMOPT_NEWALIASES);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "-I", NULL), 0);
    assert_int_equal(o.mode, SMOPT_NEWALIASES);
    smopt_free(&o);
    assert_int_equal(parse(&o, err, sizeof err, "sendmail", "--help", "-x", NULL), 0);
    assert_int_equal(o.mode, SMOPT_HELP);
    smopt_free(&o);
}

/* test_option_errors - each is a usage error with a reason. */
static void
test_option_errors(void **state)
{
    static const char *const bad[][3] = {
        {"-x", NULL}, {"-bd", NULL},    {"-bt", NULL},    {"-bz", NULL},
        {"-f", NULL}, {"--long", NULL}, {"-t\xc3", NULL},
    };
    struct smopt o;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[128] = "";
        if (parse(&o, err, sizeof err, "sendmail", bad[i][0], NULL) != -1 || err[0] == '\0')
            fail_msg("\"%s\" accepted", bad[i][0]);
        smopt_free(&o);
    }
    assert_string_equal(smopt_progname("/usr/lib/sendmail"), "sendmail");
    assert_string_equal(smopt_progname(""), "sendmail");
}

/* read_input - smmsg_read over a pipe holding data. */
static int
read_input(const char *data, size_t len, bool dot_ends, unsigned long long max, struct smmsg *m)
{
    int fds[2], rc;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], data, len), (ssize_t)len);
    close(fds[1]);
    rc = smmsg_read(fds[0], dot_ends, max, m);
    close(fds[0]);
    return rc;
}

/* Inputs and what the reader keeps, with and without the lone-dot rule. */
static const struct {
    const char *in, *dot, *nodot;
} read_cases[] = {
    {"a\nb\n", "a\nb\n", "a\nb\n"},
    {"a\r\nb\r\n", "a\nb\n", "a\nb\n"},
    {"a\n.\nb\n", "a\n", "a\n.\nb\n"},
    {"a\r\n.\r\nb\r\n", "a\n", "a\n.\nb\n"},
    {".\n", "", ".\n"},
    {"a\n.", "a\n", "a\n."},
    {"a\n..\n.b\n", "a\n..\n.b\n", "a\n..\n.b\n"},
    {"a\rb\r", "a\rb\r", "a\rb\r"},
    {"a\r\r\nb", "a\r\nb", "a\r\nb"},
    {"x.\n. \n", "x.\n. \n", "x.\n. \n"},
    {"", "", ""},
};

/* test_read - the table, with and without -i. */
static void
test_read(void **state)
{
    for (size_t i = 0; i < sizeof read_cases / sizeof read_cases[0]; i++) {
        for (int dot = 0; dot < 2; dot++) {
            struct smmsg m;
            const char *want = dot ? read_cases[i].dot : read_cases[i].nodot;
            assert_int_equal(read_input(read_cases[i].in, strlen(read_cases[i].in), dot, 1000, &m),
                             SMMSG_OK);
            if (m.len != strlen(want) || memcmp(m.text, want, m.len) != 0)
                fail_msg("case %zu dot=%d: got \"%.*s\"", i, dot, (int)m.len, m.text);
            smmsg_free(&m);
        }
    }
}

/* test_read_limit - more than max bytes is refused; exactly max is fine. */
static void
test_read_limit(void **state)
{
    char buf[300000];
    struct smmsg m;

    memset(buf, 'x', sizeof buf);
    assert_int_equal(read_input(buf, 100, false, 100, &m), SMMSG_OK);
    assert_int_equal(m.len, 100);
    smmsg_free(&m);
    assert_int_equal(read_input(buf, 101, false, 100, &m), SMMSG_TOO_BIG);
    smmsg_free(&m);
    /* a pipe holds less than this: write from a child */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        ssize_t n = write(fds[1], buf, sizeof buf);
        _exit(n == (ssize_t)sizeof buf ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(smmsg_read(fds[0], false, 200000, &m), SMMSG_TOO_BIG);
    close(fds[0]);
    smmsg_free(&m);
    waitpid(pid, NULL, 0);
}

/* finish - parse the headers of text, remove the named ones, add lines, rebuild. */
static char *
finish(const char *text, const char *remove, char *const *added)
{
    struct smmsg m;
    char *out;

    smmsg_set_text(&m, text, strlen(text));
    smmsg_parse_headers(&m);
    for (size_t i = 0; remove != NULL && i < m.nhdr; i++)
        if (smmsg_name_is(&m, &m.hdr[i], remove))
            m.hdr[i].removed = true;
    smmsg_finish(&m, added);
    out = strdup(m.text);
    smmsg_free(&m);
    return out;
}

/* test_headers - the header block is found, fields unfolded, Bcc removed, additions put
 * at its end, a missing separator inserted. */
static void
test_headers(void **state)
{
    struct smmsg m;
    size_t len;
    char *add[] = {"Date: now", "X-Inj: a\nBcc: b\r", NULL}, *out;
    const char *text = "From x Mon\nSubject: one\n two\nBcc: a@b,\n c@d\nTo : x@y\n\nBcc: body\n";

    smmsg_set_text(&m, text, strlen(text));
    smmsg_parse_headers(&m);
    assert_int_equal(m.nhdr, 3);
    assert_false(m.need_blank);
    struct smmsg_hdr *h = smmsg_find(&m, "bcc");
    assert_non_null(h);
    const char *v = smmsg_value(&m, h, &len);
    assert_int_equal(len, strlen(" a@b,\n c@d\n"));
    assert_memory_equal(v, " a@b,\n c@d\n", len);
    assert_non_null(smmsg_find(&m, "TO"));
    assert_null(smmsg_find(&m, "Cc"));
    smmsg_free(&m);

    out = finish(text, "Bcc", add);
    assert_string_equal(out, "Subject: one\n two\nTo : x@y\nDate: now\nX-Inj: a Bcc: b \n\n"
                             "Bcc: body\n");
    free(out);
    out = finish("no header here\nbody", NULL, add + 1);
    assert_string_equal(out, "X-Inj: a Bcc: b \n\nno header here\nbody\n");
    free(out);
    out = finish("Subject: only headers", NULL, add);
    assert_string_equal(out, "Subject: only headers\nDate: now\nX-Inj: a Bcc: b \n");
    free(out);
    out = finish(" starts with space\n", NULL, NULL);
    assert_string_equal(out, "\n starts with space\n");
    free(out);
    out = finish("", NULL, add);
    assert_string_equal(out, "Date: now\nX-Inj: a Bcc: b \n");
    free(out);
}

/* Header values and what smqual_value makes of them with domain example.test; NULL: left
 * as it is. */
static const struct {
    const char *in, *out;
} qual_cases[] = {
    {" demo\n", " demo@example.test\n"},
    {"demo", "demo@example.test"},
    {" demo, bob@other.example, first.last\n",
     " demo@example.test, bob@other.example, first.last@example.test\n"},
    {" Demo User <demo>\n", " Demo User <demo@example.test>\n"},
    {" \"Doe, John\" <jd>, x\n", " \"Doe, John\" <jd@example.test>, x@example.test\n"},
    {" demo (Demo User)\n", " demo@example.test (Demo User)\n"},
    {" (c) demo\n", " (c) demo@example.test\n"},
    {" team: a, B <b>;, c\n", " team: a@example.test, B <b@example.test>;, c@example.test\n"},
    {" First\n Second <folded>,\n\tnext\n",
     " First\n Second <folded@example.test>,\n\tnext@example.test\n"},
    {" a@b.example\n", NULL},
    {" Alice <alice@example.org>\n", NULL},
    {" undisclosed-recipients:;\n", NULL},
    {" <>\n", NULL},
    {" \"quoted\"\n", NULL},
    {" \"quoted local\"@x.example, <\"q\">\n", NULL},
    {" John Smith\n", NULL},           /* a phrase without an address */
    {" <demo (c)>\n", NULL},           /* comment in the angle address */
    {" <@relay:demo>\n", NULL},        /* source route */
    {" .demo, de..mo, demo.\n", NULL}, /* not dot-atoms */
    {" demo;\n", NULL},
    {" \"unterminated\n", NULL},
    {" (unterminated demo\n", NULL},
    {" <demo\n", NULL},
    {" <a> <b>\n", NULL},
    {" =?UTF-8?Q?D=C3=A9mo?= <demo>\n", " =?UTF-8?Q?D=C3=A9mo?= <demo@example.test>\n"},
    {"", NULL},
};

/* test_qualify - bare addresses get the domain; the rest is kept byte for byte. */
static void
test_qualify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof qual_cases / sizeof qual_cases[0]; i++) {
        const char *in = qual_cases[i].in;
        char *out = smqual_value(in, strlen(in), "example.test");
        if (qual_cases[i].out == NULL) {
            if (out != NULL)
                fail_msg("case %zu \"%s\": got \"%s\"", i, in, out);
        } else {
            if (out == NULL)
                fail_msg("case %zu \"%s\": left alone", i, in);
            assert_string_equal(out, qual_cases[i].out);
        }
        free(out);
    }
}

/* test_set_value - a replaced value is written in place, with the field's own name. */
static void
test_set_value(void **state)
{
    struct smmsg m;
    const char *text = "Subject: s\nTO: demo\nCc: x\n y\n\nbody\n";

    (void)state;
    smmsg_set_text(&m, text, strlen(text));
    smmsg_parse_headers(&m);
    smmsg_set_value(&m, smmsg_find(&m, "To"), " demo@example.test\n");
    smmsg_set_value(&m, smmsg_find(&m, "Cc"), " x@a.example,\n y@a.example"); /* no LF */
    smmsg_finish(&m, NULL);
    assert_string_equal(m.text, "Subject: s\nTO: demo@example.test\nCc: x@a.example,\n "
                                "y@a.example\n\nbody\n");
    smmsg_free(&m);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_addr_lists), cmocka_unit_test(test_addr_append),
        cmocka_unit_test(test_options), cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_read), cmocka_unit_test(test_read_limit),
        cmocka_unit_test(test_headers), cmocka_unit_test(test_qualify),
        cmocka_unit_test(test_set_value))
