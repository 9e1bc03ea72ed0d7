/*
 * test_smtp_maildrop - recipients from To/Cc/Bcc (sendmail -t) and Bcc removal
 * (dsmtp/maildrop.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../dsmtp/maildrop.h"
#include "unit_util.h"

struct collect {
    char out[1024];
};

/* collect_cb - join the addresses with '|'. */
static void
collect_cb(void *arg, const char *addr)
{
    struct collect *c = arg;
    size_t n = strlen(c->out);

    snprintf(c->out + n, sizeof(c->out) - n, "%s%s", n ? "|" : "", addr);
}

struct rcpt_case {
    const char *text;
    const char *want;
};

static const struct rcpt_case rcpt_cases[] = {
    {"To: bob@example.org\n\nbody\n", "bob@example.org"},
    {"to: bob@example.org\nCC: carol@example.org\nbcc: dave\n\nTo: not@header.example\n",
     "bob@example.org|carol@example.org|dave"},
    {"To: Bob Smith <bob@example.org>, \"Doe, Jane\" <jane@example.org>\n\n",
     "bob@example.org|jane@example.org"},
    {"To: bob@example.org (Bob, the builder), carol@example.org\n\n",
     "bob@example.org|carol@example.org"},
    {"To: bob@example.org,\n carol@example.org,\n\tdave@example.org\nSubject: x\n\n",
     "bob@example.org|carol@example.org|dave@example.org"},
    {"To: friends: bob@example.org, carol@example.org;, dave@example.org\n\n",
     "bob@example.org|carol@example.org|dave@example.org"},
    {"To: undisclosed-recipients:;\n\n", ""},
    {"Subject: To: trap@example.org\nFrom: x@example.org\nReply-To: r@example.org\n\n", ""},
    {"X-To: trap@example.org\nTo : spaced@example.org\n\n", "spaced@example.org"},
    {"To: \"quoted local\"@example.org\n\n", "\"quoted local\"@example.org"},
    {"To: <@relay.example:bob@example.org>\n\n", "@relay.example:bob@example.org"},
    {"To: bob@example.org", "bob@example.org"},
    {"\nTo: after-empty-line@example.org\n", ""},
};

static void
test_header_rcpts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        struct collect c = {{0}};
        size_t n =
            maildrop_header_rcpts(rcpt_cases[i].text, strlen(rcpt_cases[i].text), collect_cb, &c);
        if (strcmp(c.out, rcpt_cases[i].want) != 0)
            fail_msg("case %zu: got \"%s\" want \"%s\"", i, c.out, rcpt_cases[i].want);
        size_t want_n = rcpt_cases[i].want[0] ? 1 : 0;
        for (const char *p = rcpt_cases[i].want; *p; p++)
            want_n += *p == '|';
        assert_int_equal(n, want_n);
    }
}

struct bcc_case {
    const char *in;
    const char *out;
};

static const struct bcc_case bcc_cases[] = {
    {"To: a\nBcc: b\nSubject: s\n\nBcc: body stays\n", "To: a\nSubject: s\n\nBcc: body stays\n"},
    {"Bcc: b,\n c,\n\td\nTo: a\n\nx\n", "To: a\n\nx\n"},
    {"To: a\nBCC: b\n\n", "To: a\n\n"},
    {"To: a\nbcc:\n\n", "To: a\n\n"},
    {"Bcc: only\n", ""},
    {"To: a\nBccX: keep\nX-Bcc: keep\n\n", "To: a\nBccX: keep\nX-Bcc: keep\n\n"},
    {"To: a\nBcc: b\nBcc: c\n\n", "To: a\n\n"},
};

static void
test_strip_bcc(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bcc_cases) / sizeof(bcc_cases[0]); i++) {
        char *t = strdup(bcc_cases[i].in);
        size_t n = maildrop_strip_bcc(t, strlen(t));
        if (n != strlen(bcc_cases[i].out) || memcmp(t, bcc_cases[i].out, n) != 0)
            fail_msg("case %zu: got \"%.*s\"", i, (int)n, t);
        free(t);
    }
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_header_rcpts), cmocka_unit_test(test_strip_bcc))
