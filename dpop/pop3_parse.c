/*
 * pop3_parse - POP3 command lines into struct pop3_cmd (contract in pop3_parse.h).
 */
#include "pop3_parse.h"

#include <string.h>
#include <strings.h>

/* One row per keyword: its name and the shape of its arguments. */
static const struct {
    const char *name;
    enum pop3_args args;
} pop3_parse_verbs[POP3_V_COUNT] = {[POP3_V_UNKNOWN] = {"?", POP3_A_NONE},
#define POP3_VERB_ROW(n, a) [POP3_V_##n] = {#n, a},
                                    POP3_VERBS(POP3_VERB_ROW)
#undef POP3_VERB_ROW
};

static const char *const pop3_parse_errs[POP3_PERR_COUNT] = {
    [POP3_PERR_NONE] = "ok",
    [POP3_PERR_EMPTY] = "empty command",
    [POP3_PERR_UNKNOWN] = "unknown command",
    [POP3_PERR_BADCHAR] = "invalid character in command",
    [POP3_PERR_NOARG] = "missing argument",
    [POP3_PERR_TOOMANY] = "too many arguments",
    [POP3_PERR_BADNUM] = "invalid message number",
    [POP3_PERR_BADAPOP] = "invalid APOP digest",
    [POP3_PERR_TOOLONG] = "line too long",
};

/* pop3_parse_verb_name - "USER" for POP3_V_USER; "?" for POP3_V_UNKNOWN. */
const char *
pop3_parse_verb_name(enum pop3_verb v)
{
    if ((unsigned)v >= POP3_V_COUNT)
        return "?";
    return pop3_parse_verbs[v].name;
}

/* pop3_parse_errtext - the reply text for an error ("unknown command"). */
const char *
pop3_parse_errtext(enum pop3_perr e)
{
    if ((unsigned)e >= POP3_PERR_COUNT)
        return "error";
    return pop3_parse_errs[e];
}

/* pop3_parse_uid_ok - s[0..n) is a valid unique-id (1..70 characters in 0x21..0x7E). */
bool
pop3_parse_uid_ok(const char *s, size_t n)
{
    if (n == 0 || n > POP3_UID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Tokens of a line, each a (pointer, length) pair. */
struct pop3_tok {
    const char *p;
    size_t n;
};

/* pop3_parse_tokens - split s[0..len) on spaces into at most max tokens; *count gets how
 * many there were in all (possibly more than max). */
static size_t
pop3_parse_tokens(const char *s, size_t len, struct pop3_tok *t, size_t max)
{
    size_t count = 0, i = 0;

    while (i < len) {
        size_t start;
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (count < max) {
            t[count].p = s + start;
            t[count].n = i - start;
        }
        count++;
    }
    return count;
}

/* pop3_parse_number - 1 to 9 decimal digits. Returns 0 or -1. */
static int
pop3_parse_number(const struct pop3_tok *t, unsigned long *out)
{
    unsigned long x = 0;

    if (t->n == 0 || t->n > 9)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->p[i] < '0' || t->p[i] > '9')
            return -1;
        x = x * 10 + (unsigned long)(t->p[i] - '0');
    }
    *out = x;
    return 0;
}

/* pop3_parse_msgno - a message number: a number of at least 1. */
static int
pop3_parse_msgno(const struct pop3_tok *t, unsigned long *out)
{
    return pop3_parse_number(t, out) == 0 && *out >= 1 ? 0 : -1;
}

/* pop3_parse_hex32 - exactly 32 hexadecimal digits (either case). */
static bool
pop3_parse_hex32(const struct pop3_tok *t)
{
    if (t->n != 32)
        return false;
    for (size_t i = 0; i < 32; i++) {
        char ch = t->p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
            return false;
    }
    return true;
}

/* pop3_parse_fail - record err and return -1. */
static int
pop3_parse_fail(struct pop3_cmd *c, enum pop3_perr err)
{
    c->err = err;
    return -1;
}

/* pop3_parse_args - apply the argument shape of c->verb to rest[0..len). */
static int
pop3_parse_args(struct pop3_cmd *c, enum pop3_args shape, const char *rest, size_t len)
{
    struct pop3_tok t[3];
    size_t n = pop3_parse_tokens(rest, len, t, 3);

    switch (shape) {
    case POP3_A_NONE:
        return n == 0 ? 0 : pop3_parse_fail(c, POP3_PERR_TOOMANY);
    case POP3_A_WORD:
        if (n == 0)
            return pop3_parse_fail(c, POP3_PERR_NOARG);
        if (n > 1)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        c->arg1 = t[0].p;
        c->arg1_len = t[0].n;
        return 0;
    case POP3_A_REST:
        /* rest starts right behind the keyword: one space, then the password as sent */
        if (len < 2 || rest[0] != ' ')
            return pop3_parse_fail(c, POP3_PERR_NOARG);
        c->arg1 = rest + 1;
        c->arg1_len = len - 1;
        return 0;
    case POP3_A_OPTNUM:
        if (n == 0)
            return 0;
        if (n > 1)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        if (pop3_parse_msgno(&t[0], &c->num) != 0)
            return pop3_parse_fail(c, POP3_PERR_BADNUM);
        c->has_num = true;
        return 0;
    case POP3_A_NUM:
        if (n == 0)
            return pop3_parse_fail(c, POP3_PERR_NOARG);
        if (n > 1)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        if (pop3_parse_msgno(&t[0], &c->num) != 0)
            return pop3_parse_fail(c, POP3_PERR_BADNUM);
        c->has_num = true;
        return 0;
    case POP3_A_TOP:
        if (n < 2)
            return pop3_parse_fail(c, POP3_PERR_NOARG);
        if (n > 2)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        if (pop3_parse_msgno(&t[0], &c->num) != 0 || pop3_parse_number(&t[1], &c->num2) != 0)
            return pop3_parse_fail(c, POP3_PERR_BADNUM);
        c->has_num = true;
        return 0;
    case POP3_A_APOP:
        if (n < 2)
            return pop3_parse_fail(c, POP3_PERR_NOARG);
        if (n > 2)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        if (!pop3_parse_hex32(&t[1]))
            return pop3_parse_fail(c, POP3_PERR_BADAPOP);
        c->arg1 = t[0].p;
        c->arg1_len = t[0].n;
        c->arg2 = t[1].p;
        c->arg2_len = t[1].n;
        return 0;
    case POP3_A_AUTH:
        if (n > 2)
            return pop3_parse_fail(c, POP3_PERR_TOOMANY);
        if (n >= 1) {
            c->arg1 = t[0].p;
            c->arg1_len = t[0].n;
        }
        if (n == 2) {
            c->arg2 = t[1].p;
            c->arg2_len = t[1].n;
        }
        return 0;
    }
    return pop3_parse_fail(c, POP3_PERR_UNKNOWN);
}

/* pop3_parse - one command line (len bytes, CRLF removed) into c; 0 or -1 with c->err. */
/* pop3_parse - one command line into c. */
int
pop3_parse(const char *line, size_t len, struct pop3_cmd *c)
{
    size_t klen = 0;

    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\0' || line[i] == '\r')
            return pop3_parse_fail(c, POP3_PERR_BADCHAR);
    while (klen < len && line[klen] != ' ')
        klen++;
    if (len == 0 || klen == 0) {
        /* an empty line, or one starting with a space */
        size_t i = 0;
        while (i < len && line[i] == ' ')
            i++;
        return pop3_parse_fail(c, i == len ? POP3_PERR_EMPTY : POP3_PERR_UNKNOWN);
    }
    for (int v = 1; v < POP3_V_COUNT; v++) {
        const char *name = pop3_parse_verbs[v].name;
        if (strlen(name) == klen && strncasecmp(line, name, klen) == 0) {
            c->verb = (enum pop3_verb)v;
            break;
        }
    }
    if (c->verb == POP3_V_UNKNOWN)
        return pop3_parse_fail(c, POP3_PERR_UNKNOWN);
    return pop3_parse_args(c, pop3_parse_verbs[c->verb].args, line + klen, len - klen);
}
