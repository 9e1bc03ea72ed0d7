/*
 * dsnparam - the DSN parameters of RFC 3461. See dsnparam.h.
 */
#include "dsnparam.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int bit;
} dsnparam_notify_words[] = {
    {"NEVER", DSN_NOTIFY_NEVER},
    {"SUCCESS", DSN_NOTIFY_SUCCESS},
    {"FAILURE", DSN_NOTIFY_FAILURE},
    {"DELAY", DSN_NOTIFY_DELAY},
};

#define DSNPARAM_NWORDS (sizeof dsnparam_notify_words / sizeof dsnparam_notify_words[0])

/* dsnparam_notify_parse - NEVER, or a comma list of SUCCESS, FAILURE, DELAY. */
int
dsnparam_notify_parse(const char *s, size_t n, int *notify, const char **why)
{
    int set = 0;
    size_t i = 0;

    if (n == 0) {
        *why = "NOTIFY needs a value";
        return -1;
    }
    while (i <= n) {
        size_t w = i, k;
        while (i < n && s[i] != ',')
            i++;
        for (k = 0; k < DSNPARAM_NWORDS; k++)
            if (strlen(dsnparam_notify_words[k].name) == i - w &&
                strncasecmp(s + w, dsnparam_notify_words[k].name, i - w) == 0)
                break;
        if (k == DSNPARAM_NWORDS) {
            *why = "NOTIFY takes NEVER, or SUCCESS, FAILURE and DELAY separated by commas";
            return -1;
        }
        if (set & dsnparam_notify_words[k].bit) {
            *why = "NOTIFY names a keyword twice";
            return -1;
        }
        set |= dsnparam_notify_words[k].bit;
        i++; /* past the comma (or the end) */
    }
    if ((set & DSN_NOTIFY_NEVER) && set != DSN_NOTIFY_NEVER) {
        *why = "NOTIFY=NEVER cannot be combined with other keywords";
        return -1;
    }
    *notify = set;
    return 0;
}

/* dsnparam_notify_format - the words of notify, comma-separated. */
char *
dsnparam_notify_format(int notify, bool lower, char *out, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return out;
    out[0] = '\0';
    for (size_t k = 0; k < DSNPARAM_NWORDS; k++) {
        if (!(notify & dsnparam_notify_words[k].bit))
            continue;
        int w = snprintf(out + o, len - o, "%s%s", o ? "," : "", dsnparam_notify_words[k].name);
        if (w < 0 || (size_t)w >= len - o)
            break;
        o += (size_t)w;
    }
    if (lower)
        for (size_t i = 0; i < o; i++)
            out[i] = (char)tolower((unsigned char)out[i]);
    return out;
}

/* dsnparam_notify_valid - a set the parser could give. */
bool
dsnparam_notify_valid(int notify)
{
    int all = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;

    return notify == 0 || notify == DSN_NOTIFY_NEVER || (notify > 0 && (notify & ~all) == 0);
}

/* dsnparam_wants - the default is FAILURE,DELAY. */
bool
dsnparam_wants(int notify, int kind)
{
    if (notify == 0)
        notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    return (notify & kind) != 0;
}

/* dsnparam_ret_parse - FULL or HDRS. */
enum dsn_ret
dsnparam_ret_parse(const char *s, size_t n)
{
    if (n == 4 && strncasecmp(s, "FULL", 4) == 0)
        return DSN_RET_FULL;
    if (n == 4 && strncasecmp(s, "HDRS", 4) == 0)
        return DSN_RET_HDRS;
    return DSN_RET_UNSET;
}

/* dsnparam_ret_name - the keyword of r. */
const char *
dsnparam_ret_name(enum dsn_ret r, bool lower)
{
    switch (r) {
    case DSN_RET_FULL:
        return lower ? "full" : "FULL";
    case DSN_RET_HDRS:
        return lower ? "hdrs" : "HDRS";
    default:
        return NULL;
    }
}

/* dsnparam_hex - the value of a hex digit, or -1. */
static int
dsnparam_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* dsnparam_xtext_check - s (n octets) is xtext whose decoded bytes are no controls (and,
 * ascii, no byte over 0x7e). */
static int
dsnparam_xtext_check(const char *s, size_t n, bool ascii, const char **why)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            int hi = i + 1 < n ? dsnparam_hex(s[i + 1]) : -1;
            int lo = hi >= 0 && i + 2 < n ? dsnparam_hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "'+' must be followed by two hexadecimal digits (xtext)";
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            if (c < 0x20 || c == 0x7f || (ascii && c > 0x7e)) {
                *why = "a control character is encoded in the xtext";
                return -1;
            }
            i += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            *why = "a character not allowed in xtext";
            return -1;
        }
    }
    return 0;
}

/* dsnparam_envid_check - xtext of at most DSNPARAM_ENVID_MAX octets, not empty. */
int
dsnparam_envid_check(const char *s, size_t n, const char **why)
{
    if (n == 0) {
        *why = "ENVID needs a value";
        return -1;
    }
    if (n > DSNPARAM_ENVID_MAX) {
        *why = "ENVID is longer than 100 characters";
        return -1;
    }
    return dsnparam_xtext_check(s, n, true, why);
}

/* dsnparam_orcpt_check - addr-type ";" xtext, at most DSNPARAM_ORCPT_MAX octets. */
int
dsnparam_orcpt_check(const char *s, size_t n, const char **why)
{
    size_t t = 0;

    if (n == 0) {
        *why = "ORCPT needs a value";
        return -1;
    }
    if (n > DSNPARAM_ORCPT_MAX) {
        *why = "ORCPT is longer than 500 characters";
        return -1;
    }
    /* addr-type: an atom (RFC 5322 atext) */
    while (t < n && (isalnum((unsigned char)s[t]) || strchr("!#$%&'*+-/=?^_`{|}~", s[t]) != NULL))
        t++;
    if (t == 0 || t >= n || s[t] != ';') {
        *why = "ORCPT must be addr-type;address (e.g. rfc822;user@example.org)";
        return -1;
    }
    if (t + 1 == n) {
        *why = "ORCPT has no address after the ';'";
        return -1;
    }
    return dsnparam_xtext_check(s + t + 1, n - t - 1, false, why);
}

/* dsnparam_xtext_encode - '+', '=', and bytes outside 0x21..0x7e as "+XX". */
int
dsnparam_xtext_encode(const char *s, char *out, size_t len)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return -1;
        if (*p == '+' || *p == '=' || *p < 0x21 || *p > 0x7e) {
            if (o + 3 >= len)
                return -1;
            snprintf(out + o, len - o, "+%02X", *p);
            o += 3;
        } else {
            if (o + 1 >= len)
                return -1;
            out[o++] = (char)*p;
        }
    }
    if (o >= len)
        return -1;
    out[o] = '\0';
    return 0;
}
