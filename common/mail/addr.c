/*
 * addr - RFC 5321 paths and mailboxes; domains as lower-case A-labels (libidn2).
 *
 * Grammar (RFC 5321 4.1.2, RFC 6531 for UTF-8):
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l      = At-domain *( "," At-domain ),  At-domain = "@" Domain
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 * The local part is kept "as it must be written": a quoted local part whose content is a
 * valid Dot-string is written unquoted, any other is re-quoted with only '"' and '\'
 * escaped.
 */
#include <arpa/inet.h>
#include <idn2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

/* Longest domain text handed to libidn2 (a U-label domain is longer than its A-label). */
#define ADDR_DOMAIN_RAW_MAX 1024

/* addr_fail - put msg into err and return -1. */
static int
addr_fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* addr_utf8_len - length of the valid non-ASCII UTF-8 sequence at p, or 0. */
static size_t
addr_utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    uint32_t cp;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* addr_is_atext - RFC 5322 atext (ASCII). */
static bool
addr_is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* addr_dot_string_len - length of the Dot-string at s (stops at the first byte that
 * cannot continue it), or 0 with *why set if it is malformed or empty. */
static size_t
addr_dot_string_len(const char *s, bool utf8, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    bool need_atom = true;

    for (;;) {
        size_t k;
        if (addr_is_atext(p[i])) {
            i++;
            need_atom = false;
        } else if (p[i] >= 0x80) {
            if (!utf8) {
                *why = "8-bit local part needs SMTPUTF8";
                return 0;
            }
            if ((k = addr_utf8_len(p + i)) == 0) {
                *why = "invalid UTF-8 in local part";
                return 0;
            }
            i += k;
            need_atom = false;
        } else if (p[i] == '.') {
            if (need_atom) {
                *why = i == 0 ? "local part starts with a dot" : "two dots in local part";
                return 0;
            }
            i++;
            need_atom = true;
        } else {
            break;
        }
    }
    if (need_atom) {
        *why = i == 0 ? "empty local part" : "local part ends with a dot";
        return 0;
    }
    return i;
}

/* addr_parse_local - the local part at *pp into out (written form); advances *pp. */
static int
addr_parse_local(const char **pp, bool utf8, char *out, char *err, size_t errlen)
{
    const char *s = *pp;
    const char *why = NULL;

    if (*s != '"') {
        size_t n = addr_dot_string_len(s, utf8, &why);
        if (n == 0)
            return addr_fail(err, errlen, why);
        if (n > ADDR_LOCAL_MAX)
            return addr_fail(err, errlen, "local part longer than 64 octets");
        memcpy(out, s, n);
        out[n] = '\0';
        *pp = s + n;
        return 0;
    }

    /* Quoted-string: collect the content, then write it back in canonical form. */
    char content[ADDR_LOCAL_MAX + 8];
    size_t clen = 0;
    const unsigned char *p = (const unsigned char *)s + 1;
    for (;;) {
        size_t k = 1;
        if ((size_t)((const char *)p - s) >= ADDR_LOCAL_MAX)
            return addr_fail(err, errlen, "local part longer than 64 octets");
        if (*p == '"') {
            break;
        } else if (*p == '\\') {
            if (p[1] < 32 || p[1] > 126)
                return addr_fail(err, errlen, "bad quoted-pair in local part");
            p++;
        } else if (*p >= 0x80) {
            if (!utf8)
                return addr_fail(err, errlen, "8-bit local part needs SMTPUTF8");
            if ((k = addr_utf8_len(p)) == 0)
                return addr_fail(err, errlen, "invalid UTF-8 in local part");
        } else if (*p == '\0') {
            return addr_fail(err, errlen, "unterminated quoted local part");
        } else if (*p < 32 || *p == 127) {
            return addr_fail(err, errlen, "control character in quoted local part");
        }
        memcpy(content + clen, p, k);
        clen += k;
        p += k;
    }
    content[clen] = '\0';
    *pp = (const char *)p + 1;
    if ((size_t)(*pp - s) > ADDR_LOCAL_MAX)
        return addr_fail(err, errlen, "local part longer than 64 octets");

    if (clen > 0 && addr_dot_string_len(content, true, &why) == clen) {
        memcpy(out, content, clen + 1);
        return 0;
    }
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < clen; i++) {
        if (content[i] == '"' || content[i] == '\\')
            out[o++] = '\\';
        out[o++] = content[i];
    }
    out[o++] = '"';
    out[o] = '\0';
    return 0;
}

/* addr_label_ok - one ASCII label: LDH, 1..63, no hyphen at either end; an A-label must
 * decode as Punycode. */
static bool
addr_label_ok(const char *l, size_t n)
{
    if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = l[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    if (n > 4 && memcmp(l, "xn--", 4) == 0) {
        char label[64], *u = NULL;
        memcpy(label, l, n);
        label[n] = '\0';
        int rc = idn2_to_unicode_8z8z(label, &u, 0);
        idn2_free(u);
        if (rc != IDN2_OK)
            return false;
    }
    return true;
}

/* addr_domain_check - lower-case the ASCII domain in[0..n) into out and check its
 * labels and length. */
static int
addr_domain_check(const char *in, size_t n, char *out, size_t outlen)
{
    if (n == 0 || n > ADDR_DOMAIN_MAX || n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    const char *l = out;
    for (;;) {
        const char *dot = strchr(l, '.');
        size_t ln = dot ? (size_t)(dot - l) : strlen(l);
        if (!addr_label_ok(l, ln))
            return -1;
        if (!dot)
            break;
        l = dot + 1;
    }
    return 0;
}

/* addr_domain_normalize - a domain (U-label or A-label, any case) to its lower-case
 * A-label into out. Returns 0 or -1. */
int
addr_domain_normalize(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    bool ascii = true;

    if (n == 0 || n > ADDR_DOMAIN_RAW_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            ascii = false;
        else if (c <= 0x20 || c == 0x7f)
            return -1;
    }
    if (ascii)
        return addr_domain_check(in, n, out, outlen);

    for (size_t i = 0; i < n;) {
        size_t k = (unsigned char)in[i] < 0x80 ? 1 : addr_utf8_len((const unsigned char *)in + i);
        if (k == 0)
            return -1;
        i += k;
    }
    char *a = NULL;
    int rc = idn2_to_ascii_8z(in, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK || a == NULL) {
        idn2_free(a);
        return -1;
    }
    rc = addr_domain_check(a, strlen(a), out, outlen);
    idn2_free(a);
    return rc;
}

/* addr_parse_literal - "[...]" at *pp into out; advances *pp past "]". */
static int
addr_parse_literal(const char **pp, char *out, char *err, size_t errlen)
{
    const char *s = *pp + 1;
    const char *close = strchr(s, ']');
    char tmp[64]; /* "IPv6:" and the longest IPv6 text fit */
    unsigned char bin[16];

    if (close == NULL)
        return addr_fail(err, errlen, "unterminated address literal");
    size_t n = (size_t)(close - s);
    if (n >= sizeof tmp)
        return addr_fail(err, errlen, "bad address literal");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (n > 5 && strncasecmp(tmp, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, tmp + 5, bin) != 1)
            return addr_fail(err, errlen, "bad IPv6 address literal");
        snprintf(out, ADDR_DOMAIN_MAX + 1, "[IPv6:%s]", tmp + 5);
    } else if (inet_pton(AF_INET, tmp, bin) == 1) {
        snprintf(out, ADDR_DOMAIN_MAX + 1, "[%s]", tmp);
    } else {
        return addr_fail(err, errlen, "bad address literal");
    }
    *pp = close + 1;
    return 0;
}

/* addr_parse_domain - a Domain at *pp ending at any byte of stops (or NUL), or an
 * address literal if literal_ok; into out; advances *pp. */
static int
addr_parse_domain(const char **pp, const char *stops, bool literal_ok, char *out, char *err,
                  size_t errlen)
{
    const char *s = *pp;
    char raw[ADDR_DOMAIN_RAW_MAX + 1];

    if (*s == '[') {
        if (!literal_ok)
            return addr_fail(err, errlen, "address literal not allowed here");
        return addr_parse_literal(pp, out, err, errlen);
    }
    size_t n = strcspn(s, stops);
    if (n == 0)
        return addr_fail(err, errlen, "empty domain");
    if (n > ADDR_DOMAIN_RAW_MAX)
        return addr_fail(err, errlen, "domain longer than 255 octets");
    memcpy(raw, s, n);
    raw[n] = '\0';
    if (addr_domain_normalize(raw, out, ADDR_DOMAIN_MAX + 1) < 0) {
        /* Say why, for the common cases. */
        size_t ln = 0;
        for (size_t i = 0; i <= n; i++) {
            if (raw[i] == '.' || raw[i] == '\0') {
                if (ln > 63)
                    return addr_fail(err, errlen, "domain label longer than 63 octets");
                ln = 0;
            } else {
                ln++;
            }
        }
        if (n > ADDR_DOMAIN_MAX && strspn(raw, "abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n)
            return addr_fail(err, errlen, "domain longer than 255 octets");
        return addr_fail(err, errlen, "invalid domain");
    }
    *pp = s + n;
    return 0;
}

/* addr_parse_route - skip a source route "@a,@b:" at *pp (each hop must be a domain). */
static int
addr_parse_route(const char **pp, char *err, size_t errlen)
{
    const char *p = *pp;
    char scratch[ADDR_DOMAIN_MAX + 1];

    for (;;) {
        if (*p != '@')
            return addr_fail(err, errlen, "bad source route");
        p++;
        if (addr_parse_domain(&p, ",:> ", false, scratch, err, errlen) < 0)
            return -1;
        if (*p == ':')
            break;
        if (*p != ',')
            return addr_fail(err, errlen, "bad source route");
        p++;
    }
    *pp = p + 1;
    return 0;
}

/* addr_parse_path - parse "<...>" at s (leading spaces skipped), see addr.h. */
int
addr_parse_path(const char *s, bool allow_null, bool utf8, struct addr *out, const char **end,
                char *err, size_t errlen)
{
    struct addr a;
    const char *p = s;

    while (*p == ' ')
        p++;
    if (*p != '<')
        return addr_fail(err, errlen, "path must be in angle brackets");
    p++;
    if (*p == '>') {
        if (!allow_null)
            return addr_fail(err, errlen, "null path not allowed here");
        out->local[0] = '\0';
        out->domain[0] = '\0';
        if (end)
            *end = p + 1;
        return 0;
    }
    if (*p == '@' && addr_parse_route(&p, err, errlen) < 0)
        return -1;
    if (addr_parse_local(&p, utf8, a.local, err, errlen) < 0)
        return -1;
    if (*p != '@')
        return addr_fail(err, errlen,
                         *p == '>' || *p == '\0' ? "missing @domain"
                                                 : "invalid character in local part");
    p++;
    if (addr_parse_domain(&p, "> ", true, a.domain, err, errlen) < 0)
        return -1;
    if (*p != '>')
        return addr_fail(err, errlen, "missing closing '>'");
    *out = a;
    if (end)
        *end = p + 1;
    return 0;
}

/* addr_parse_mailbox - "local@domain" without brackets, see addr.h. */
int
addr_parse_mailbox(const char *s, const char *default_domain, struct addr *out, char *err,
                   size_t errlen)
{
    struct addr a;
    const char *p = s;

    if (addr_parse_local(&p, true, a.local, err, errlen) < 0)
        return -1;
    if (*p == '\0') {
        if (default_domain == NULL)
            return addr_fail(err, errlen, "missing @domain");
        if (addr_domain_normalize(default_domain, a.domain, sizeof a.domain) < 0)
            return addr_fail(err, errlen, "invalid default domain");
    } else if (*p == '@') {
        p++;
        if (addr_parse_domain(&p, "", true, a.domain, err, errlen) < 0)
            return -1;
        if (*p != '\0')
            return addr_fail(err, errlen, "trailing characters after the address");
    } else {
        return addr_fail(err, errlen, "invalid character in local part");
    }
    *out = a;
    return 0;
}

/* addr_format - "local@domain" (or "" for the null path) into buf. */
char *
addr_format(const struct addr *a, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    if (addr_is_null(a))
        buf[0] = '\0';
    else
        snprintf(buf, len, "%s@%s", a->local, a->domain);
    return buf;
}

/* addr_verp - sender with rcpt folded into its local part, or sender. */
char *
addr_verp(const char *sender, const char *rcpt, const char *delim, char *buf, size_t len)
{
    const char *sat = strrchr(sender, '@'), *rat = strrchr(rcpt, '@'), *at;
    int n;

    if (len == 0)
        return buf;
    if (delim == NULL || strlen(delim) != 2 || sat == NULL || rat == NULL)
        goto plain;
    n = snprintf(buf, len, "%.*s%c%.*s%c%s%s", (int)(sat - sender), sender, delim[0],
                 (int)(rat - rcpt), rcpt, delim[1], rat + 1, sat);
    if (n < 0 || (size_t)n >= len)
        goto plain;
    /* the local part must stand unquoted (a dot-atom: no quoted part, no address literal
     * from the recipient's domain); its length may pass 64 octets, as in Postfix */
    at = strrchr(buf, '@');
    for (const char *p = buf; p < at; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("\"(),:;<>@[\\]", *p) != NULL)
            goto plain;
    return buf;
plain:
    snprintf(buf, len, "%s", sender);
    return buf;
}

/* addr_is_null - the null reverse path <>. */
bool
addr_is_null(const struct addr *a)
{
    return a->local[0] == '\0' && a->domain[0] == '\0';
}

/* addr_local_unquoted - the local part without quoting into buf, lower-cased (ASCII) if
 * fold. Returns buf. */
char *
addr_local_unquoted(const struct addr *a, bool fold, char *buf, size_t len)
{
    const char *s = a->local;
    size_t o = 0;

    if (len == 0)
        return buf;
    if (*s == '"') {
        s++;
        for (; *s && *s != '"' && o + 1 < len; s++) {
            if (*s == '\\' && s[1])
                s++;
            buf[o++] = *s;
        }
    } else {
        for (; *s && o + 1 < len; s++)
            buf[o++] = *s;
    }
    buf[o] = '\0';
    if (fold)
        for (size_t i = 0; i < o; i++)
            if (buf[i] >= 'A' && buf[i] <= 'Z')
                buf[i] = (char)(buf[i] - 'A' + 'a');
    return buf;
}
