/*
 * mime - headers, encodings, charsets and the part tree of a stored message (see mime.h).
 */
#include "mime.h"
#include "msg.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xmem.h"

#define MIME_TEXT_MAX ((size_t)1 << 30)

char *
mime_header(const char *hdr, size_t len, const char *name)
{
    size_t nlen = strlen(name), i = 0;

    while (i < len) {
        const char *nl = memchr(hdr + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - hdr) : len;
        if (end - i > nlen && strncasecmp(hdr + i, name, nlen) == 0 && hdr[i + nlen] == ':') {
            struct buf b;
            size_t p = i + nlen + 1;
            buf_init(&b, MIME_TEXT_MAX);
            for (;;) {
                size_t e = end;
                while (p < e && (hdr[p] == ' ' || hdr[p] == '\t') && b.len == 0)
                    p++;
                if (e > p && hdr[e - 1] == '\r')
                    e--;
                if (b.len > 0)
                    buf_append(&b, " ", 1);
                while (p < e && (hdr[p] == ' ' || hdr[p] == '\t'))
                    p++;
                buf_append(&b, hdr + p, e - p);
                if (nl == NULL || end + 1 >= len || (hdr[end + 1] != ' ' && hdr[end + 1] != '\t'))
                    break;
                p = end + 1;
                nl = memchr(hdr + p, '\n', len - p);
                end = nl != NULL ? (size_t)(nl - hdr) : len;
            }
            buf_append(&b, "", 1);
            return b.data;
        }
        i = nl != NULL ? end + 1 : len;
    }
    return NULL;
}

char *
mime_param(const char *value, const char *param)
{
    size_t plen = strlen(param);
    const char *p = strchr(value, ';');

    while (p != NULL) {
        p++;
        p += strspn(p, " \t");
        if (strncasecmp(p, param, plen) == 0) {
            const char *v = p + plen;
            v += strspn(v, " \t");
            if (*v == '=') {
                struct buf b;
                v++;
                v += strspn(v, " \t");
                buf_init(&b, MIME_TEXT_MAX);
                if (*v == '"') {
                    for (v++; *v != '\0' && *v != '"'; v++) {
                        if (*v == '\\' && v[1] != '\0')
                            v++;
                        buf_append(&b, v, 1);
                    }
                } else
                    buf_append(&b, v, strcspn(v, "; \t"));
                buf_append(&b, "", 1);
                return b.data;
            }
        }
        p = strchr(p, ';');
    }
    return NULL;
}

/* mime_utf8_len - the length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t
mime_utf8_len(const unsigned char *s, size_t n)
{
    size_t k;
    unsigned c = s[0];
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    /* C1 controls and the bidirectional overrides are shown as U+FFFD too */
    if ((k == 2 && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
        return 0;
    return k;
}

/* mime_clean - s[len] as clean UTF-8 into b; with latin1 a byte that is no UTF-8 is read
 * as ISO-8859-1. */
static void
mime_clean(struct buf *b, const char *s, size_t len, bool latin1)
{
    static const char repl[] = "\xef\xbf\xbd";
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t k = mime_utf8_len(u + i, len - i);
        if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f) && u[i] != '\n' && u[i] != '\t')
            k = 0;
        if (k == 1 && u[i] == '\r') /* CR LF: the line end is LF */
            k = 0;
        if (k > 0) {
            buf_append(b, s + i, k);
            i += k;
        } else {
            if (u[i] == '\r')
                ;
            else if (latin1 && u[i] >= 0xa0) {
                char two[2] = {(char)(0xc0 | u[i] >> 6), (char)(0x80 | (u[i] & 0x3f))};
                buf_append(b, two, 2);
            } else
                buf_append(b, repl, 3);
            i++;
        }
    }
}

char *
mime_utf8(const char *charset, const char *s, size_t len, size_t *outlen)
{
    struct buf b;
    iconv_t cd = (iconv_t)-1;

    buf_init(&b, MIME_TEXT_MAX);
    if (charset != NULL && *charset != '\0' && strcasecmp(charset, "utf-8") != 0 &&
        strcasecmp(charset, "us-ascii") != 0 && strcasecmp(charset, "utf8") != 0)
        cd = iconv_open("UTF-8", charset);
    if (cd != (iconv_t)-1) {
        char *in = (char *)s, tmp[4096];
        size_t inleft = len;
        struct buf conv;
        buf_init(&conv, MIME_TEXT_MAX);
        while (inleft > 0) {
            char *out = tmp;
            size_t outleft = sizeof(tmp);
            size_t r = iconv(cd, &in, &inleft, &out, &outleft);
            buf_append(&conv, tmp, (size_t)(out - tmp));
            if (r == (size_t)-1 && errno != E2BIG) {
                buf_append(&conv, "\xef\xbf\xbd", 3); /* a bad byte: skipped */
                in++;
                inleft--;
                iconv(cd, NULL, NULL, NULL, NULL);
            }
        }
        iconv_close(cd);
        mime_clean(&b, buf_peek(&conv), conv.len, false);
        buf_free(&conv);
    } else
        mime_clean(&b, s, len,
                   charset != NULL && *charset != '\0' && strcasecmp(charset, "utf-8") != 0 &&
                       strcasecmp(charset, "utf8") != 0);
    if (outlen != NULL)
        *outlen = b.len;
    buf_append(&b, "", 1);
    return b.data;
}

int
mime_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* mime_b64 - base64 into b, skipping what is not of the alphabet. */
static void
mime_b64(struct buf *b, const char *s, size_t len)
{
    unsigned long acc = 0;
    int bits = 0;

    for (size_t i = 0; i < len; i++) {
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = s[i] != '\0' ? strchr(alpha, s[i]) : NULL;
        if (s[i] == '=')
            break;
        if (p == NULL)
            continue;
        acc = (acc << 6 | (unsigned long)(p - alpha)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            char c = (char)(acc >> (bits - 8));
            bits -= 8;
            buf_append(b, &c, 1);
        }
    }
}

/* mime_qp - quoted-printable into b; words: RFC 2047's Q ('_' is a space). */
static void
mime_qp(struct buf *b, const char *s, size_t len, bool words)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '=' && i + 2 < len && mime_hex(s[i + 1]) >= 0 && mime_hex(s[i + 2]) >= 0) {
            c = (char)(mime_hex(s[i + 1]) << 4 | mime_hex(s[i + 2]));
            i += 2;
        } else if (c == '=' && !words) {
            /* a soft line break: '=' then blanks to the end of the line */
            size_t j = i + 1;
            while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
                j++;
            if (j >= len || s[j] == '\n') {
                i = j;
                continue;
            }
        } else if (c == '_' && words)
            c = ' ';
        buf_append(b, &c, 1);
    }
}

char *
mime_decode(const char *cte, const char *s, size_t len, size_t *outlen)
{
    struct buf b;

    buf_init(&b, MIME_TEXT_MAX);
    if (cte != NULL && strncasecmp(cte, "base64", 6) == 0)
        mime_b64(&b, s, len);
    else if (cte != NULL && strncasecmp(cte, "quoted-printable", 16) == 0)
        mime_qp(&b, s, len, false);
    else
        buf_append(&b, s, len);
    *outlen = b.len;
    buf_append(&b, "", 1);
    return b.data;
}

/* mime_word - an encoded word =?charset?E?text?= at s: decoded into b (NULL: only
 * measured), its length; 0 if s holds none. */
static size_t
mime_word(struct buf *b, const char *s)
{
    const char *cs, *enc, *txt, *end;
    char charset[64];
    struct buf raw;
    char *u;
    size_t n;

    if (s[0] != '=' || s[1] != '?')
        return 0;
    cs = s + 2;
    enc = strchr(cs, '?');
    if (enc == NULL || enc - cs == 0 || (size_t)(enc - cs) >= sizeof(charset) ||
        strchr("BbQq", enc[1]) == NULL || enc[1] == '\0' || enc[2] != '?')
        return 0;
    txt = enc + 3;
    end = strstr(txt, "?=");
    if (end == NULL || memchr(txt, ' ', (size_t)(end - txt)) != NULL)
        return 0;
    if (b == NULL)
        return (size_t)(end + 2 - s);
    memcpy(charset, cs, (size_t)(enc - cs));
    charset[enc - cs] = '\0';
    charset[strcspn(charset, "*")] = '\0'; /* RFC 2231 language */
    buf_init(&raw, MIME_TEXT_MAX);
    if (enc[1] == 'B' || enc[1] == 'b')
        mime_b64(&raw, txt, (size_t)(end - txt));
    else
        mime_qp(&raw, txt, (size_t)(end - txt), true);
    u = mime_utf8(charset, buf_peek(&raw), raw.len, &n);
    buf_append(b, u, n);
    free(u);
    buf_free(&raw);
    return (size_t)(end + 2 - s);
}

char *
mime_words(const char *value)
{
    struct buf b;
    char *out;
    size_t n;

    buf_init(&b, MIME_TEXT_MAX);
    for (const char *p = value; *p != '\0';) {
        size_t k = mime_word(&b, p), blank;
        if (k > 0) {
            p += k;
            blank = strspn(p, " \t");
            /* blanks between two encoded words vanish (RFC 2047 6.2) */
            if (blank > 0 && mime_word(NULL, p + blank) > 0)
                p += blank;
            continue;
        }
        buf_append(&b, p, 1);
        p++;
    }
    out = mime_utf8("utf-8", buf_peek(&b), b.len, &n);
    buf_free(&b);
    return out;
}

char *
mime_field(const char *hdr, size_t len, const char *name)
{
    char *raw = mime_header(hdr, len, name), *v;

    if (raw == NULL)
        return xstrdup("");
    v = mime_words(raw);
    free(raw);
    for (char *c = v; *c != '\0'; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    return v;
}

/* One part being walked. */
struct mime_walker {
    void (*fn)(const struct mime_part *p, void *arg);
    void *arg;
    size_t nparts;
};

static void mime_entity(struct mime_walker *w, const char *text, size_t len, int depth,
                        const char *deftype);

/* mime_lower - s lower-cased in place; s. */
static char *
mime_lower(char *s)
{
    for (char *p = s; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* mime_multipart - the parts between the delimiters of boundary. */
static void
mime_multipart(struct mime_walker *w, const char *body, size_t len, const char *boundary, int depth,
               const char *deftype)
{
    size_t blen = strlen(boundary), i = 0, start = 0;
    bool in = false;

    while (i <= len && w->nparts < MIME_PARTS_MAX) {
        const char *nl = i < len ? memchr(body + i, '\n', len - i) : NULL;
        size_t end = nl != NULL ? (size_t)(nl - body) : len;
        bool delim = end - i >= blen + 2 && body[i] == '-' && body[i + 1] == '-' &&
                     memcmp(body + i + 2, boundary, blen) == 0;
        if (delim || nl == NULL) {
            bool last = !delim || (end - i >= blen + 4 && body[i + blen + 2] == '-' &&
                                   body[i + blen + 3] == '-');
            if (in) {
                size_t e = delim ? i : len;
                /* the line end before a delimiter belongs to it */
                if (delim && e > start && body[e - 1] == '\n')
                    e--;
                if (delim && e > start && body[e - 1] == '\r')
                    e--;
                mime_entity(w, body + start, e - start, depth + 1, deftype);
            }
            if (last)
                return;
            in = true;
            start = nl != NULL ? end + 1 : len;
        }
        if (nl == NULL)
            break;
        i = end + 1;
    }
}

/* mime_entity - one entity (headers and body). */
static void
mime_entity(struct mime_walker *w, const char *text, size_t len, int depth, const char *deftype)
{
    size_t off = msg_body(text, len);
    char *ct = mime_header(text, off, "Content-Type");
    char *cte = mime_header(text, off, "Content-Transfer-Encoding");
    char *type, *charset = NULL, *name = NULL, *boundary = NULL, *body;
    size_t blen;

    type = ct != NULL ? xstrndup(ct, strcspn(ct, "; \t")) : xstrdup(deftype);
    mime_lower(type);
    if (strchr(type, '/') == NULL) { /* broken: as RFC 2045 5.2 says, text/plain */
        free(type);
        type = xstrdup("text/plain");
    }
    if (ct != NULL) {
        charset = mime_param(ct, "charset");
        boundary = mime_param(ct, "boundary");
        name = mime_param(ct, "name");
    }
    if (strncmp(type, "multipart/", 10) == 0 && boundary != NULL && *boundary != '\0' &&
        depth < MIME_DEPTH_MAX) {
        mime_multipart(w, text + off, len - off, boundary, depth,
                       strcmp(type, "multipart/digest") == 0 ? "message/rfc822" : "text/plain");
    } else if (w->nparts < MIME_PARTS_MAX) {
        char *cd = mime_header(text, off, "Content-Disposition"), *fname = NULL, *uname;
        struct mime_part p = {0};
        if (cd != NULL)
            fname = mime_param(cd, "filename");
        uname = mime_words(fname != NULL ? fname : name != NULL ? name : "");
        if (strncmp(type, "multipart/", 10) == 0) { /* no boundary: shown as text */
            free(type);
            type = xstrdup("text/plain");
        }
        body = mime_decode(cte, text + off, len - off, &blen);
        p.type = type;
        p.name = uname;
        p.body = body;
        p.len = blen;
        p.charset = charset != NULL ? mime_lower(charset) : "us-ascii";
        w->nparts++;
        w->fn(&p, w->arg);
        free(body);
        free(uname);
        free(fname);
        free(cd);
    }
    free(type);
    free(charset);
    free(name);
    free(boundary);
    free(ct);
    free(cte);
}

size_t
mime_walk(const char *text, size_t len, void (*fn)(const struct mime_part *p, void *arg), void *arg)
{
    struct mime_walker w = {fn, arg, 0};

    mime_entity(&w, text, len, 0, "text/plain");
    return w.nparts;
}
