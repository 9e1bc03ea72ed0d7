/*
 * test_pop3_parse - POP3 command lines through the bounded line reader and pop3_parse.
 * Every case is fed whole, byte by byte and in 7-byte chunks and must give the same
 * results; lines over 255 octets (RFC 2449) are refused and the reader stays in sync.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "../../dpop/pop3_parse.h"
#include "unit_util.h"

#define MAXCMD 4

/* One expected outcome: a parsed command (or an error). */
struct want {
    int rc;
    enum pop3_verb verb;
    enum pop3_perr err;
    const char *arg1, *arg2;
    bool has_num;
    unsigned long num, num2;
};

struct pcase {
    const char *name;
    const char *in;
    struct want w[MAXCMD];
    size_t nw;
};

#define OK(v)                                                                                      \
    {                                                                                              \
        0, POP3_V_##v, POP3_PERR_NONE, NULL, NULL, false, 0, 0                                     \
    }
#define OKA(v, a)                                                                                  \
    {                                                                                              \
        0, POP3_V_##v, POP3_PERR_NONE, a, NULL, false, 0, 0                                        \
    }
#define OKAB(v, a, b)                                                                              \
    {                                                                                              \
        0, POP3_V_##v, POP3_PERR_NONE, a, b, false, 0, 0                                           \
    }
#define OKN(v, n)                                                                                  \
    {                                                                                              \
        0, POP3_V_##v, POP3_PERR_NONE, NULL, NULL, true, n, 0                                      \
    }
#define OKTOP(n, m)                                                                                \
    {                                                                                              \
        0, POP3_V_TOP, POP3_PERR_NONE, NULL, NULL, true, n, m                                      \
    }
#define BAD(v, e)                                                                                  \
    {                                                                                              \
        -1, POP3_V_##v, POP3_PERR_##e, NULL, NULL, false, 0, 0                                     \
    }
#define BADU(e)                                                                                    \
    {                                                                                              \
        -1, POP3_V_UNKNOWN, POP3_PERR_##e, NULL, NULL, false, 0, 0                                 \
    }
#define TOOLONG                                                                                    \
    {                                                                                              \
        -1, POP3_V_UNKNOWN, POP3_PERR_TOOLONG, NULL, NULL, false, 0, 0                             \
    }

static const struct pcase cases[] = {
    {"user", "USER bob\r\n", {OKA(USER, "bob")}, 1},
    {"user lower case", "user Bob@Example.org\r\n", {OKA(USER, "Bob@Example.org")}, 1},
    {"user no arg", "USER\r\n", {BAD(USER, NOARG)}, 1},
    {"user two args", "USER a b\r\n", {BAD(USER, TOOMANY)}, 1},
    {"user trailing space", "USER a \r\n", {OKA(USER, "a")}, 1},
    {"pass with spaces", "PASS  my secret \r\n", {OKA(PASS, " my secret ")}, 1},
    {"pass", "pass s3cret\r\n", {OKA(PASS, "s3cret")}, 1},
    {"pass empty", "PASS\r\n", {BAD(PASS, NOARG)}, 1},
    {"pass only space", "PASS \r\n", {BAD(PASS, NOARG)}, 1},
    {"apop",
     "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
     {OKAB(APOP, "mrose", "c4c9334bac560ecc979e58001b3e22fb")},
     1},
    {"apop short digest", "APOP mrose c4c9334bac560ecc\r\n", {BAD(APOP, BADAPOP)}, 1},
    {"apop non-hex digest",
     "APOP mrose c4c9334bac560ecc979e58001b3e22fg\r\n",
     {BAD(APOP, BADAPOP)},
     1},
    {"apop one arg", "APOP mrose\r\n", {BAD(APOP, NOARG)}, 1},
    {"stat", "STAT\r\n", {OK(STAT)}, 1},
    {"stat arg", "STAT 1\r\n", {BAD(STAT, TOOMANY)}, 1},
    {"list", "LIST\r\n", {OK(LIST)}, 1},
    {"list n", "LIST 2\r\n", {OKN(LIST, 2)}, 1},
    {"list zero", "LIST 0\r\n", {BAD(LIST, BADNUM)}, 1},
    {"list negative", "LIST -1\r\n", {BAD(LIST, BADNUM)}, 1},
    {"list plus", "LIST +1\r\n", {BAD(LIST, BADNUM)}, 1},
    {"list huge", "LIST 1234567890\r\n", {BAD(LIST, BADNUM)}, 1},
    {"list max", "LIST 999999999\r\n", {OKN(LIST, 999999999)}, 1},
    {"list word", "LIST one\r\n", {BAD(LIST, BADNUM)}, 1},
    {"list two", "LIST 1 2\r\n", {BAD(LIST, TOOMANY)}, 1},
    {"uidl", "uidl\r\n", {OK(UIDL)}, 1},
    {"uidl n", "UIDL 17\r\n", {OKN(UIDL, 17)}, 1},
    {"retr", "RETR 1\r\n", {OKN(RETR, 1)}, 1},
    {"retr leading zeros", "RETR 007\r\n", {OKN(RETR, 7)}, 1},
    {"retr none", "RETR\r\n", {BAD(RETR, NOARG)}, 1},
    {"retr two", "RETR 1 2\r\n", {BAD(RETR, TOOMANY)}, 1},
    {"dele", "DELE 3\r\n", {OKN(DELE, 3)}, 1},
    {"dele zero", "DELE 0\r\n", {BAD(DELE, BADNUM)}, 1},
    {"top", "TOP 1 10\r\n", {OKTOP(1, 10)}, 1},
    {"top zero lines", "TOP 2 0\r\n", {OKTOP(2, 0)}, 1},
    {"top one arg", "TOP 1\r\n", {BAD(TOP, NOARG)}, 1},
    {"top three args", "TOP 1 2 3\r\n", {BAD(TOP, TOOMANY)}, 1},
    {"top bad lines", "TOP 1 x\r\n", {BAD(TOP, BADNUM)}, 1},
    {"top zero msg", "TOP 0 1\r\n", {BAD(TOP, BADNUM)}, 1},
    {"noop rset quit", "NOOP\r\nRSET\r\nQUIT\r\n", {OK(NOOP), OK(RSET), OK(QUIT)}, 3},
    {"capa stls last", "CAPA\r\nSTLS\r\nLAST\r\n", {OK(CAPA), OK(STLS), OK(LAST)}, 3},
    {"auth bare", "AUTH\r\n", {OK(AUTH)}, 1},
    {"auth mech", "AUTH PLAIN\r\n", {OKA(AUTH, "PLAIN")}, 1},
    {"auth initial",
     "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n",
     {OKAB(AUTH, "PLAIN", "AGJvYgBzZWNyZXQ=")},
     1},
    {"auth too many", "AUTH PLAIN a b\r\n", {BAD(AUTH, TOOMANY)}, 1},
    {"bare lf", "STAT\nNOOP\n", {OK(STAT), OK(NOOP)}, 2},
    {"empty line", "\r\n", {BADU(EMPTY)}, 1},
    {"spaces only", "   \r\n", {BADU(EMPTY)}, 1},
    {"leading space", " STAT\r\n", {BADU(UNKNOWN)}, 1},
    {"unknown", "HELO x\r\n", {BADU(UNKNOWN)}, 1},
    {"prefix is not a keyword", "STATS\r\n", {BADU(UNKNOWN)}, 1},
    {"short prefix", "STA\r\n", {BADU(UNKNOWN)}, 1},
    {"bare cr", "ST\rAT\r\n", {BADU(BADCHAR)}, 1},
    {"nul", "NOOP\0x\r\nSTAT\r\n", {BADU(BADCHAR), OK(STAT)}, 2},
    {"tab is not a separator", "RETR\t1\r\n", {BADU(UNKNOWN)}, 1},
    {"multiple spaces", "TOP  1   2 \r\n", {OKTOP(1, 2)}, 1},
    {"pipelined",
     "USER a\r\nPASS b\r\nSTAT\r\nLIST 1\r\n",
     {OKA(USER, "a"), OKA(PASS, "b"), OK(STAT), OKN(LIST, 1)},
     4},
};

/* input length of a case: the NUL case has an embedded NUL */
static size_t
case_len(const struct pcase *pc)
{
    if (strcmp(pc->name, "nul") == 0)
        return sizeof("NOOP\0x\r\nSTAT\r\n") - 1;
    return strlen(pc->in);
}

/* check_arg - an argument as parsed (arg, len) is want (NULL: none) */
static void
check_arg(const char *arg, size_t len, const char *want)
{
    if (want == NULL) {
        assert_null(arg);
        return;
    }
    assert_non_null(arg);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(arg, want, len);
}

/* check_one - compare a parse result with the expectation. */
static void
check_one(const char *name, size_t i, int rc, const struct pop3_cmd *c, const struct want *w)
{
    if (rc != w->rc || c->verb != w->verb || c->err != w->err)
        fail_msg("%s[%zu]: rc %d verb %s err %d, want rc %d verb %s err %d", name, i, rc,
                 pop3_parse_verb_name(c->verb), c->err, w->rc, pop3_parse_verb_name(w->verb),
                 w->err);
    if (w->rc != 0)
        return;
    check_arg(c->arg1, c->arg1_len, w->arg1);
    check_arg(c->arg2, c->arg2_len, w->arg2);
    assert_int_equal(c->has_num, w->has_num);
    assert_int_equal(c->num, w->num);
    assert_int_equal(c->num2, w->num2);
}

/* drain - take every complete line out of b and check it against w[*got...]. */
static void
drain(const struct pcase *pc, struct buf *b, struct linereader *r, size_t *got)
{
    for (;;) {
        char *line;
        size_t len;
        struct pop3_cmd c;
        enum buf_line k = buf_getline(b, r, &line, &len, NULL);
        if (k == BUF_NONE)
            return;
        if (*got >= pc->nw)
            fail_msg("%s: more commands than expected", pc->name);
        if (k == BUF_TOOLONG) {
            memset(&c, 0, sizeof c);
            c.err = POP3_PERR_TOOLONG;
            check_one(pc->name, *got, -1, &c, &pc->w[*got]);
        } else {
            int rc = pop3_parse(line, len, &c);
            check_one(pc->name, *got, rc, &c, &pc->w[*got]);
        }
        (*got)++;
    }
}

/* run_case - feed pc->in in pieces of step bytes (0 = whole). */
static void
run_case(const struct pcase *pc, size_t step)
{
    struct buf b;
    struct linereader r;
    size_t len = case_len(pc), got = 0;

    buf_init(&b, 4096);
    linereader_init(&r, POP3_LINE_MAX);
    for (size_t i = 0; i < len;) {
        size_t n = step == 0 ? len : (len - i < step ? len - i : step);
        assert_int_equal(buf_append(&b, pc->in + i, n), 0);
        i += n;
        drain(pc, &b, &r, &got);
    }
    if (got != pc->nw)
        fail_msg("%s (step %zu): %zu commands, want %zu", pc->name, step, got, pc->nw);
    buf_free(&b);
}

/* test_case - one case of the table (a test each), fed whole, byte by byte and in chunks
 * of 7 bytes. */
static void
test_case(void **state)
{
    static const size_t steps[] = {0, 1, 7};

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        run_case(*state, steps[i]);
}

/* mkline - "USER " + n-5 'a' characters + term, into a malloc'd string. */
static char *
mkline(size_t n, const char *term)
{
    char *s = malloc(n + strlen(term) + 1);
    assert_non_null(s);
    memcpy(s, "USER ", 5);
    memset(s + 5, 'a', n - 5);
    strcpy(s + n, term);
    return s;
}

/* The 255-octet limit: 253 + CRLF passes, 254 + CRLF is refused, and whatever follows a
 * too-long line is parsed normally (the session stays in sync). */
static void
test_line_limit(void **state)
{
    (void)state;
    const struct {
        size_t n;
        const char *term;
        bool ok;
    } t[] = {
        {253, "\r\n", true}, {254, "\r\n", false},  {254, "\n", true},
        {255, "\n", false},  {1000, "\r\n", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *line = mkline(t[i].n, t[i].term);
        size_t len = strlen(line);
        char *in = malloc(len + 16);
        assert_non_null(in);
        memcpy(in, line, len);
        memcpy(in + len, "STAT\r\n", 7);
        for (size_t step = 0; step <= 1; step++) {
            struct pcase pc = {"limit", in, {{0}}, 2};
            pc.w[0] = t[i].ok ? (struct want)OK(USER) : (struct want)TOOLONG;
            pc.w[1] = (struct want)OK(STAT);
            /* the USER argument is long: check only the outcome, not the text */
            if (t[i].ok) {
                struct buf b;
                struct linereader r;
                char *l;
                size_t ll;
                struct pop3_cmd c;
                buf_init(&b, 4096);
                linereader_init(&r, POP3_LINE_MAX);
                assert_int_equal(buf_append(&b, in, len + 6), 0);
                assert_int_equal(buf_getline(&b, &r, &l, &ll, NULL), BUF_LINE);
                assert_int_equal(pop3_parse(l, ll, &c), 0);
                assert_int_equal(c.verb, POP3_V_USER);
                assert_int_equal(c.arg1_len, t[i].n - 5);
                assert_int_equal(buf_getline(&b, &r, &l, &ll, NULL), BUF_LINE);
                assert_int_equal(pop3_parse(l, ll, &c), 0);
                assert_int_equal(c.verb, POP3_V_STAT);
                buf_free(&b);
            } else {
                run_case(&pc, step);
            }
        }
        free(in);
        free(line);
    }
}

/* Every keyword is found by its name in any case, and its name round-trips. */
static void
test_verb_names(void **state)
{
    (void)state;
    for (int v = 1; v < POP3_V_COUNT; v++) {
        const char *name = pop3_parse_verb_name((enum pop3_verb)v);
        char lower[8];
        struct pop3_cmd c;
        size_t n = strlen(name);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        pop3_parse(lower, n, &c);
        assert_int_equal(c.verb, v);
    }
    assert_string_equal(pop3_parse_verb_name(POP3_V_UNKNOWN), "?");
    assert_string_equal(pop3_parse_verb_name((enum pop3_verb)999), "?");
    for (int e = 0; e < POP3_PERR_COUNT; e++)
        assert_non_null(pop3_parse_errtext((enum pop3_perr)e));
}

static void
test_uid_ok(void **state)
{
    (void)state;
    char seventy[71], seventyone[72];
    memset(seventy, 'x', 70);
    seventy[70] = '\0';
    memset(seventyone, 'x', 71);
    seventyone[71] = '\0';
    assert_true(pop3_parse_uid_ok("abc", 3));
    assert_true(pop3_parse_uid_ok("!~", 2));
    assert_true(pop3_parse_uid_ok(seventy, 70));
    assert_false(pop3_parse_uid_ok(seventyone, 71));
    assert_false(pop3_parse_uid_ok("", 0));
    assert_false(pop3_parse_uid_ok("a b", 3));
    assert_false(pop3_parse_uid_ok("a\x7f", 2));
    assert_false(pop3_parse_uid_ok("\xc3\xa9", 2));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_line_limit),
                                       cmocka_unit_test(test_verb_names),
                                       cmocka_unit_test(test_uid_ok)};

    return UU_RUN_CASES(tests, test_case, cases);
}
