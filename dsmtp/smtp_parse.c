/*
 * smtp_parse - pure parsing of SMTP command lines. See smtp_parse.h for the contract.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"

static const char *const smtp_parse_verbs[SMTP_V_COUNT] = {[SMTP_V_UNKNOWN] = "?",
#define SMTP_VERB_NAME(n) [SMTP_V_##n] = #n,
                                                           SMTP_VERBS(SMTP_VERB_NAME)
#undef SMTP_VERB_NAME
};

/* smtp_parse_err - fill e and return -1. */
static int __attribute__((format(printf, 4, 5)))
smtp_parse_err(struct smtp_perr *e, int code, const char *ecode, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    e->ecode = ecode;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    return -1;
}

/* smtp_parse_verb_name - the upper-case name of a verb. */
const char *
smtp_parse_verb_name(enum smtp_verb v)
{
    if ((int)v < 0 || v >= SMTP_V_COUNT)
        return "?";
    return smtp_parse_verbs[v];
}

/* smtp_parse_line - split a command line into verb and arguments. */
void
smtp_parse_line(const char *line, struct smtp_cmdline *out)
{
    size_t n = 0;

    while (line[n] != '\0' && line[n] != ' ')
        n++;
    out->verb = SMTP_V_UNKNOWN;
    out->verb_text = line;
    out->verb_len = n;
    for (int v = 1; v < SMTP_V_COUNT; v++) {
        if (strlen(smtp_parse_verbs[v]) == n && strncasecmp(line, smtp_parse_verbs[v], n) == 0) {
            out->verb = (enum smtp_verb)v;
            break;
        }
    }
    while (line[n] == ' ')
        n++;
    out->args = line + n;
}

/* smtp_parse_has_arg - anything but spaces in args. */
bool
smtp_parse_has_arg(const char *args)
{
    for (; *args; args++)
        if (*args != ' ')
            return true;
    return false;
}

/* smtp_parse_is_8bit - any byte >= 0x80. */
bool
smtp_parse_is_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* smtp_parse_prefix - args starts with word (case-insensitive); *rest after it and any
 * spaces behind it. */
static bool
smtp_parse_prefix(const char *args, const char *word, const char **rest)
{
    size_t n = strlen(word);

    if (strncasecmp(args, word, n) != 0)
        return false;
    args += n;
    while (*args == ' ')
        args++;
    *rest = args;
    return true;
}

/* Parameter keywords (RFC 5321 esmtp-keyword) of MAIL and RCPT. */
enum smtp_param {
    SP_SIZE,
    SP_BODY,
    SP_SMTPUTF8,
    SP_AUTH,
    SP_RET,
    SP_ENVID,
    SP_NOTIFY,
    SP_ORCPT,
    SP_REQUIRETLS,
    SP_XVERP,
    SP_XHEADER,
};
#define SP_COUNT (SP_XHEADER + 1)

static const struct {
    const char *name;
    bool value; /* needs "=value" */
    bool rcpt;  /* a RCPT parameter (else MAIL) */
} smtp_parse_params[SP_COUNT] = {
    [SP_SIZE] = {"SIZE", true, false},
    [SP_BODY] = {"BODY", true, false},
    [SP_SMTPUTF8] = {"SMTPUTF8", false, false},
    [SP_AUTH] = {"AUTH", true, false},
    [SP_RET] = {"RET", true, false},
    [SP_ENVID] = {"ENVID", true, false},
    [SP_NOTIFY] = {"NOTIFY", true, true},
    [SP_ORCPT] = {"ORCPT", true, true},
    [SP_REQUIRETLS] = {"REQUIRETLS", false, false},
    [SP_XVERP] = {"XVERP", false, false},   /* the value is optional (below) */
    [SP_XHEADER] = {"XHEADER", true, true}, /* dmail's: xheader.h */
};

/* smtp_parse_size - a SIZE value: 1 to 20 digits (RFC 1870); larger than an unsigned long
 * long saturates. */
static int
smtp_parse_size(const char *v, size_t n, unsigned long long *out)
{
    unsigned long long x = 0;

    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i]))
            return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (~0ULL - d) / 10)
            x = ~0ULL; /* 1*20DIGIT is valid syntax; too big is for the caller to say */
        else
            x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* smtp_parse_one_param - apply "KEY[=VALUE]" (k of klen, v of vlen or NULL) to m (MAIL)
 * or r (RCPT). */
static int
smtp_parse_one_param(struct smtp_mail *m, struct smtp_rcpt *r, const char *k, size_t klen,
                     const char *v, size_t vlen, unsigned *seen, struct smtp_perr *e)
{
    const char *why;
    int p;

    for (p = 0; p < SP_COUNT; p++)
        if (strlen(smtp_parse_params[p].name) == klen &&
            strncasecmp(k, smtp_parse_params[p].name, klen) == 0 &&
            smtp_parse_params[p].rcpt == (r != NULL))
            break;
    if (p == SP_COUNT)
        return smtp_parse_err(e, 555, "5.5.4", "Unsupported %s parameter %.*s",
                              r != NULL ? "RCPT" : "MAIL", (int)(klen > 40 ? 40 : klen), k);
    if (*seen & (1u << p))
        return smtp_parse_err(e, 501, "5.5.4", "Duplicate %s parameter", smtp_parse_params[p].name);
    *seen |= 1u << p;
    if (smtp_parse_params[p].value && v == NULL)
        return smtp_parse_err(e, 501, "5.5.4", "%s needs a value", smtp_parse_params[p].name);
    if (!smtp_parse_params[p].value && v != NULL && p != SP_XVERP)
        return smtp_parse_err(e, 501, "5.5.4", "%s takes no value", smtp_parse_params[p].name);
    switch (p) {
    case SP_SIZE:
        if (smtp_parse_size(v, vlen, &m->size) < 0)
            return smtp_parse_err(e, 501, "5.5.4", "Bad SIZE value");
        m->size_set = true;
        break;
    case SP_BODY:
        if (vlen == 4 && strncasecmp(v, "7BIT", 4) == 0)
            m->body = SMTP_BODY_7BIT;
        else if (vlen == 8 && strncasecmp(v, "8BITMIME", 8) == 0)
            m->body = SMTP_BODY_8BITMIME;
        else
            return smtp_parse_err(e, 555, "5.5.4", "Unsupported BODY type");
        break;
    case SP_SMTPUTF8:
        m->smtputf8 = true;
        break;
    case SP_REQUIRETLS: /* RFC 8689; the caller refuses it outside TLS */
        m->requiretls = true;
        break;
    case SP_XVERP: /* XVERP or XVERP=XY (Postfix); the caller checks who and which */
        if (v != NULL && vlen != 2)
            return smtp_parse_err(e, 501, "5.5.4", "Bad XVERP delimiters: two characters");
        m->xverp = true;
        if (v != NULL)
            snprintf(m->verp, sizeof(m->verp), "%.2s", v);
        break;
    case SP_AUTH: /* RFC 4954 5: accepted, and we trust nobody's claim: ignored */
        break;
    case SP_RET:
        m->ret = dsnparam_ret_parse(v, vlen);
        if (m->ret == DSN_RET_UNSET)
            return smtp_parse_err(e, 501, "5.5.4", "Bad RET value: FULL or HDRS");
        break;
    case SP_ENVID:
        if (dsnparam_envid_check(v, vlen, &why) < 0)
            return smtp_parse_err(e, 501, "5.5.4", "Bad ENVID: %s", why);
        memcpy(m->envid, v, vlen);
        m->envid[vlen] = '\0';
        break;
    case SP_NOTIFY:
        if (dsnparam_notify_parse(v, vlen, &r->notify, &why) < 0)
            return smtp_parse_err(e, 501, "5.5.4", "Bad NOTIFY: %s", why);
        break;
    case SP_ORCPT:
        if (dsnparam_orcpt_check(v, vlen, &why) < 0)
            return smtp_parse_err(e, 501, "5.5.4", "Bad ORCPT: %s", why);
        memcpy(r->orcpt, v, vlen);
        r->orcpt[vlen] = '\0';
        break;
    case SP_XHEADER: /* the caller checks that the transaction is XVERP's */
        if (xheader_check(v, vlen, &why) < 0)
            return smtp_parse_err(e, 501, "5.5.4", "Bad XHEADER: %s", why);
        memcpy(r->xheader, v, vlen);
        r->xheader[vlen] = '\0';
        break;
    }
    return 0;
}

/* smtp_parse_params_list - the space-separated parameters after the path, of MAIL (m) or
 * RCPT (r). */
static int
smtp_parse_params_list(const char *s, bool esmtp, struct smtp_mail *m, struct smtp_rcpt *r,
                       struct smtp_perr *e)
{
    unsigned seen = 0;

    while (*s == ' ')
        s++;
    if (*s != '\0' && !esmtp)
        return smtp_parse_err(e, 555, "5.5.4", "Parameters need EHLO");
    while (*s != '\0') {
        const char *k = s, *eq = NULL, *v = NULL;
        size_t klen, vlen = 0;

        while (*s != '\0' && *s != ' ') {
            if (*s == '=' && eq == NULL)
                eq = s;
            if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
                return smtp_parse_err(e, 501, "5.5.4", "Bad character in parameters");
            s++;
        }
        if (eq != NULL) {
            klen = (size_t)(eq - k);
            v = eq + 1;
            vlen = (size_t)(s - v);
        } else {
            klen = (size_t)(s - k);
        }
        if (klen == 0)
            return smtp_parse_err(e, 501, "5.5.4", "Empty parameter name");
        if (smtp_parse_one_param(m, r, k, klen, v, vlen, &seen, e) < 0)
            return -1;
        while (*s == ' ')
            s++;
    }
    return 0;
}

/* smtp_parse_mail - MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [AUTH=x]. */
int
smtp_parse_mail(const char *args, bool esmtp, struct smtp_mail *m, struct smtp_perr *e)
{
    const char *s, *end;
    char why[120];

    memset(m, 0, sizeof(*m));
    if (!smtp_parse_prefix(args, "FROM:", &s) || *s != '<')
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
    if (addr_parse_path(s, true, true, &m->from, &end, why, sizeof(why)) < 0)
        return smtp_parse_err(e, 501, "5.1.7", "Bad sender address syntax: %s", why);
    if (*end != '\0' && *end != ' ')
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
    if (smtp_parse_params_list(end, esmtp, m, NULL, e) < 0)
        return -1;
    return 0;
}

/* smtp_parse_rcpt - RCPT TO:<path>, or TO:<postmaster>. */
int
smtp_parse_rcpt(const char *args, bool esmtp, struct smtp_rcpt *r, struct smtp_perr *e)
{
    const char *s, *end;
    char why[120];

    memset(r, 0, sizeof(*r));
    if (!smtp_parse_prefix(args, "TO:", &s) || *s != '<')
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: RCPT TO:<address>");
    if (strncasecmp(s, "<postmaster>", 12) == 0) {
        strcpy(r->to.local, "postmaster");
        r->to.domain[0] = '\0';
        r->bare_postmaster = true;
        end = s + 12;
    } else if (addr_parse_path(s, false, true, &r->to, &end, why, sizeof(why)) < 0) {
        return smtp_parse_err(e, 501, "5.1.3", "Bad recipient address syntax: %s", why);
    }
    if (*end != '\0' && *end != ' ')
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: RCPT TO:<address>");
    if (smtp_parse_params_list(end, esmtp, NULL, r, e) < 0)
        return -1;
    return 0;
}

/* smtp_parse_helo - one printable token of at most 255 octets. */
int
smtp_parse_helo(const char *args, char *out, size_t outlen, struct smtp_perr *e)
{
    size_t n = 0;

    while (args[n] != '\0' && args[n] != ' ') {
        unsigned char ch = (unsigned char)args[n];
        if (ch < 0x21 || ch > 0x7e)
            return smtp_parse_err(e, 501, "5.5.4", "Invalid domain name");
        n++;
    }
    if (n == 0)
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: EHLO hostname");
    if (n > 255 || n >= outlen)
        return smtp_parse_err(e, 501, "5.5.4", "Domain name too long");
    if (smtp_parse_has_arg(args + n))
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: EHLO hostname");
    memcpy(out, args, n);
    out[n] = '\0';
    return 0;
}

/* smtp_parse_bdat - "count [LAST]". */
int
smtp_parse_bdat(const char *args, unsigned long long *size, bool *last, struct smtp_perr *e)
{
    size_t n = 0;
    const char *s;

    while (isdigit((unsigned char)args[n]))
        n++;
    if (n == 0 || n > 19 || (args[n] != ' ' && args[n] != '\0') ||
        smtp_parse_size(args, n, size) < 0)
        return smtp_parse_err(e, 521, "5.5.4", "Syntax: BDAT count [LAST]");
    s = args + n;
    while (*s == ' ')
        s++;
    *last = strncasecmp(s, "LAST", 4) == 0 && (s[4] == ' ' || s[4] == '\0');
    if (*last)
        s += 4;
    if (smtp_parse_has_arg(s))
        return smtp_parse_err(e, 521, "5.5.4", "Syntax: BDAT count [LAST]");
    return 0;
}

/* smtp_parse_auth - "MECH [initial-response]". */
int
smtp_parse_auth(const char *args, char *mech, size_t mechlen, const char **initial,
                struct smtp_perr *e)
{
    size_t n = 0;
    const char *s;

    *initial = NULL;
    while (args[n] != '\0' && args[n] != ' ') {
        unsigned char ch = (unsigned char)args[n];
        if (!(isalnum(ch) || ch == '-' || ch == '_') || n + 1 >= mechlen || n >= 20)
            return smtp_parse_err(e, 501, "5.5.4", "Invalid mechanism name");
        mech[n] = (char)toupper(ch);
        n++;
    }
    if (n == 0)
        return smtp_parse_err(e, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    mech[n] = '\0';
    s = args + n;
    while (*s == ' ')
        s++;
    if (*s != '\0') {
        size_t m = strcspn(s, " ");
        if (smtp_parse_has_arg(s + m))
            return smtp_parse_err(e, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        *initial = s;
    }
    return 0;
}

/* smtp_parse_b64val - the value of a base64 digit, or -1. */
static int
smtp_parse_b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* smtp_parse_base64 - strict base64 decoding; "=" is the empty string. */
long
smtp_parse_base64(const char *in, size_t inlen, char *out, size_t outlen)
{
    size_t o = 0;

    while (inlen > 0 && in[inlen - 1] == ' ')
        inlen--;
    if (inlen == 1 && in[0] == '=') {
        if (outlen < 1)
            return -1;
        out[0] = '\0';
        return 0;
    }
    if (inlen % 4 != 0)
        return -1;
    for (size_t i = 0; i < inlen; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)in[i + j];
            if (c == '=' && i + 4 == inlen && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad > 0)
                return -1; /* data after padding */
            v[j] = smtp_parse_b64val(c);
            if (v[j] < 0)
                return -1;
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                          ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        int nbytes = 3 - pad;
        if (o + (size_t)nbytes + 1 > outlen)
            return -1;
        out[o++] = (char)((w >> 16) & 0xff);
        if (nbytes > 1)
            out[o++] = (char)((w >> 8) & 0xff);
        if (nbytes > 2)
            out[o++] = (char)(w & 0xff);
    }
    if (o + 1 > outlen)
        return -1;
    out[o] = '\0';
    return (long)o;
}

/* smtp_parse_base64_encode - standard base64 with padding. */
long
smtp_parse_base64_encode(const void *in, size_t n, char *out, size_t outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    size_t need = (n + 2) / 3 * 4 + 1, o = 0;

    if (outlen < need)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long w = (unsigned long)p[i] << 16;
        if (i + 1 < n)
            w |= (unsigned long)p[i + 1] << 8;
        if (i + 2 < n)
            w |= p[i + 2];
        out[o++] = tab[(w >> 18) & 63];
        out[o++] = tab[(w >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[w & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}

/* smtp_parse_plain - authzid NUL authcid NUL passwd. */
int
smtp_parse_plain(const char *msg, size_t len, const char **authcid, const char **passwd)
{
    const char *z = msg, *end = msg + len, *c, *p;
    size_t zlen;

    c = memchr(z, '\0', len);
    if (c == NULL)
        return -1;
    zlen = (size_t)(c - z);
    c++;
    p = memchr(c, '\0', (size_t)(end - c));
    if (p == NULL)
        return -1;
    p++;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL)
        return -1; /* a third NUL */
    if (*c == '\0')
        return -1; /* empty authcid */
    if (zlen > 0 && (zlen != strlen(c) || memcmp(z, c, zlen) != 0))
        return -1; /* acting for someone else is not supported */
    *authcid = c;
    *passwd = p;
    return 0;
}
