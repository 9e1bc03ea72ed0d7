/*
 * extauth_proto - the external-authentication line protocol. See extauth_proto.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extauth_proto.h"

/* extauth_word_ok - w may be sent as one protocol word. */
static int
extauth_word_ok(const char *w)
{
    size_t n = 0;

    if (w == NULL || w[0] == '\0')
        return 0;
    for (const unsigned char *p = (const unsigned char *)w; *p != '\0'; p++, n++)
        if (*p <= ' ' || *p == 0x7f || n >= EXTAUTH_WORD_MAX)
            return 0;
    return 1;
}

int
extauth_format_check(char *buf, size_t len, const char *user, const char *password, const char *ip)
{
    int n;

    if (!extauth_word_ok(user) || !extauth_word_ok(password))
        return -1;
    if (ip != NULL && ip[0] != '\0' && extauth_word_ok(ip))
        n = snprintf(buf, len, "check %s %s %s\n", user, password, ip);
    else
        n = snprintf(buf, len, "check %s %s\n", user, password);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int
extauth_format_lookup(char *buf, size_t len, const char *user)
{
    int n;

    if (!extauth_word_ok(user))
        return -1;
    n = snprintf(buf, len, "lookup %s\n", user);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* extauth_word - the next blank-separated word of [*p, end) into out (truncation is an
 * error); 0 at the end of the line, -1 if too long. */
static int
extauth_word(const char **p, const char *end, char *out, size_t outlen)
{
    const char *s = *p;
    size_t n;

    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    n = 0;
    while (s + n < end && s[n] != ' ' && s[n] != '\t')
        n++;
    *p = s + n;
    if (n == 0)
        return 0;
    if (n >= outlen)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

/* extauth_text - the rest of the line as a printable reason. */
static void
extauth_text(const char *p, const char *end, char *out, size_t outlen)
{
    size_t n = 0;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    for (; p < end && n + 1 < outlen; p++)
        out[n++] = (*p >= ' ' && *p < 0x7f) ? *p : '?';
    out[n] = '\0';
}

/* extauth_info - label="value" fields: keep fwd. -1 on a malformed field. */
static int
extauth_info(const char *p, const char *end, struct extauth_answer *a)
{
    for (;;) {
        const char *label, *val;
        size_t llen, vlen;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= end)
            return 0;
        label = p;
        while (p < end && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        llen = (size_t)(p - label);
        if (p >= end || *p != '=' || llen == 0)
            return -1;
        p++;
        if (p < end && *p == '"') {
            val = ++p;
            while (p < end && *p != '"')
                p++;
            if (p >= end)
                return -1;
            vlen = (size_t)(p - val);
            p++;
        } else {
            val = p;
            while (p < end && *p != ' ' && *p != '\t')
                p++;
            vlen = (size_t)(p - val);
        }
        if (llen == 3 && strncmp(label, "fwd", 3) == 0) {
            if (vlen >= sizeof a->fwd)
                return -1;
            memcpy(a->fwd, val, vlen);
            a->fwd[vlen] = '\0';
        }
    }
}

enum extauth_kind
extauth_parse(const char *line, size_t len, struct extauth_answer *a)
{
    const char *end = line + len, *p;
    char uid[32];
    int r;

    memset(a, 0, sizeof *a);
    a->kind = EA_BAD;
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\0' || line[i] == '\n' || line[i] == '\r')
            return EA_BAD;
    if (len >= 5 && memcmp(line, "+DATA", 5) == 0 && (len == 5 || line[5] == ' '))
        return a->kind = EA_DATA;
    if (len >= 4 && memcmp(line, "-ERR", 4) == 0 && (len == 4 || line[4] == ' ')) {
        extauth_text(line + 4, end, a->reason, sizeof a->reason);
        return a->kind = EA_ERR;
    }
    if (len >= 5 && memcmp(line, "-DEAD", 5) == 0 && (len == 5 || line[5] == ' ')) {
        extauth_text(line + 5, end, a->reason, sizeof a->reason);
        return a->kind = EA_DEAD;
    }
    if (len < 4 || memcmp(line, "+OK ", 4) != 0)
        return EA_BAD;
    p = line + 4;
    if (extauth_word(&p, end, a->user, sizeof a->user) != 1 ||
        extauth_word(&p, end, a->drop, sizeof a->drop) != 1)
        goto bad;
    r = extauth_word(&p, end, uid, sizeof uid);
    if (r < 0)
        goto bad;
    if (r == 1) {
        char *e;
        a->uid = strtol(uid, &e, 10);
        if (*e != '\0' || a->uid < 0)
            goto bad;
        if (extauth_info(p, end, a) < 0)
            goto bad;
    }
    return a->kind = EA_OK;
bad:
    memset(a, 0, sizeof *a);
    return a->kind = EA_BAD;
}
