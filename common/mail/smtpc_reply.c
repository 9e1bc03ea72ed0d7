/*
 * smtpc_reply - the SMTP client's parsing and encoding: reply lines, EHLO keywords, and
 * the message text as it goes on the wire. See smtpc_int.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpc_int.h"

/* smtpc_reply_status - the length of an enhanced status "c.sss.ddd" of class cls at p
 * (followed by a space or the end), or 0. */
static size_t
smtpc_reply_status(const char *p, size_t len, int cls)
{
    size_t i = 0;

    if (len < 5 || p[0] != (char)('0' + cls) || p[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && i - start < 3 && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == start)
            return 0;
        if (part == 0) {
            if (i >= len || p[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && p[i] != ' ')
        return 0;
    return i;
}

/* smtpc_reply_add - append one line's text to the reply's, bounded, controls made
 * spaces. */
static void
smtpc_reply_add(struct smtpc_rx *rx, const char *p, size_t len)
{
    struct smtpc_reply *r = &rx->r;
    size_t max = sizeof(r->text) - 1;

    if (rx->tlen > 0 && len > 0) {
        for (const char *sep = "; "; *sep != '\0' && rx->tlen < max; sep++)
            r->text[rx->tlen++] = *sep;
    }
    for (size_t i = 0; i < len && rx->tlen < max; i++) {
        unsigned char ch = (unsigned char)p[i];
        r->text[rx->tlen++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    r->text[rx->tlen] = '\0';
}

/* smtpc_reply_line - see smtpc_int.h. */
int
smtpc_reply_line(struct smtpc_rx *rx, const char *line, size_t len, const char **text)
{
    struct smtpc_reply *r = &rx->r;
    int code;
    bool last;
    size_t sl;

    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
        goto bad;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    last = len == 3 || line[3] == ' ';
    line += len > 3 ? 4 : 3;
    len -= len > 3 ? 4 : 3;
    if (text != NULL)
        *text = line;
    if (rx->nlines == 0) {
        memset(r, 0, sizeof(*r));
        rx->tlen = 0;
        r->code = code;
        sl = code / 100 == 3 ? 0 : smtpc_reply_status(line, len, code / 100);
        if (sl > 0)
            memcpy(r->status, line, sl);
        else if (code / 100 != 3)
            snprintf(r->status, sizeof(r->status), "%d.0.0", code / 100);
    } else if (code != r->code || rx->nlines >= SMTPC_MAX_LINES) {
        goto bad;
    }
    rx->nlines++;
    sl = strlen(r->status);
    if (sl > 0 && len >= sl && memcmp(line, r->status, sl) == 0 && (len == sl || line[sl] == ' ')) {
        line += sl;
        len -= sl;
    }
    while (len > 0 && line[0] == ' ') {
        line++;
        len--;
    }
    smtpc_reply_add(rx, line, len);
    if (!last)
        return 0;
    rx->nlines = 0;
    return 1;
bad:
    rx->nlines = 0;
    return -1;
}

/* smtpc_reply_make - see smtpc_int.h. */
void
smtpc_reply_make(struct smtpc_reply *r, int code, const char *status, const char *fmt, ...)
{
    va_list ap;

    memset(r, 0, sizeof(*r));
    r->code = code;
    snprintf(r->status, sizeof(r->status), "%s", status);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    for (char *p = r->text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

/* smtpc_ehlo_word - the keyword at *p (its length), *p advanced past it and the spaces
 * or '=' after it. */
static size_t
smtpc_ehlo_word(const char **p)
{
    const char *s = *p;
    size_t n = strcspn(s, " =");

    *p = s + n;
    while (**p == ' ' || **p == '=')
        (*p)++;
    return n;
}

/* smtpc_ehlo_is - the keyword of length n at w is kw (any case). */
static bool
smtpc_ehlo_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* smtpc_ehlo_line - see smtpc_int.h. */
void
smtpc_ehlo_line(struct smtpc_info *info, unsigned *ext, const char *text)
{
    const char *p = text, *w = text;
    size_t n = smtpc_ehlo_word(&p);

    if (smtpc_ehlo_is(w, n, "PIPELINING")) {
        info->pipelining = true;
    } else if (smtpc_ehlo_is(w, n, "8BITMIME")) {
        info->eightbitmime = true;
    } else if (smtpc_ehlo_is(w, n, "SMTPUTF8")) {
        info->smtputf8 = true;
    } else if (smtpc_ehlo_is(w, n, "DSN")) {
        info->dsn = true;
    } else if (smtpc_ehlo_is(w, n, "CHUNKING")) {
        info->chunking = true;
    } else if (smtpc_ehlo_is(w, n, "REQUIRETLS")) {
        info->requiretls = true;
    } else if (smtpc_ehlo_is(w, n, "XVERP")) {
        info->xverp = true;
    } else if (smtpc_ehlo_is(w, n, "XHEADER")) {
        info->xheader = true;
    } else if (smtpc_ehlo_is(w, n, "STARTTLS")) {
        *ext |= SMTPC_X_STARTTLS;
    } else if (smtpc_ehlo_is(w, n, "SIZE")) {
        char *end;
        *ext |= SMTPC_X_SIZE;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        info->size_max = (errno == 0 && end != p && *p >= '0' && *p <= '9') ? v : 0;
    } else if (smtpc_ehlo_is(w, n, "AUTH")) {
        while (*p != '\0') {
            const char *m = p;
            size_t mn = strcspn(m, " ");
            if (smtpc_ehlo_is(m, mn, "PLAIN"))
                *ext |= SMTPC_X_PLAIN;
            else if (smtpc_ehlo_is(m, mn, "LOGIN"))
                *ext |= SMTPC_X_LOGIN;
            p = m + mn;
            while (*p == ' ')
                p++;
        }
    }
}

/* smtpc_enc_chunk - see smtpc_int.h. */
size_t
smtpc_enc_chunk(struct smtpc_enc *e, const char *text, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    while (e->pos < len && cap - o >= 5) {
        char ch = text[e->pos];
        if (ch == '\r' && e->pos + 1 < len && text[e->pos + 1] == '\n') {
            e->pos++;
            continue;
        }
        if (ch == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            e->col = 0;
            e->pos++;
            continue;
        }
        if (e->col >= SMTPC_LINE_MAX) {
            memcpy(out + o, "\r\n ", 3);
            o += 3;
            e->col = 1;
        }
        if (e->col == 0 && ch == '.') {
            out[o++] = '.';
            e->col++;
        }
        /* the rest of the line up to its end, the fold, or the room */
        size_t run = len - e->pos, room = cap - o, left = SMTPC_LINE_MAX - e->col;
        if (run > room)
            run = room;
        if (run > left)
            run = left;
        const char *nl = memchr(text + e->pos, '\n', run), *cr = memchr(text + e->pos, '\r', run);
        if (nl != NULL)
            run = (size_t)(nl - (text + e->pos));
        if (cr != NULL && (size_t)(cr - (text + e->pos)) < run)
            run = (size_t)(cr - (text + e->pos));
        if (run == 0) /* a bare CR goes out as it is */
            run = 1;
        memcpy(out + o, text + e->pos, run);
        o += run;
        e->pos += run;
        e->col += run;
    }
    if (e->pos >= len && !e->done && !e->more && cap - o >= 5) {
        if (e->col > 0) {
            out[o++] = '\r';
            out[o++] = '\n';
            e->col = 0;
        }
        memcpy(out + o, ".\r\n", 3);
        o += 3;
        e->done = true;
    }
    return o;
}

/* smtpc_wire_size - see smtpc_int.h. */
unsigned long long
smtpc_wire_size(const char *text, size_t len)
{
    unsigned long long n = len;
    const char *p = text, *end = text + len;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (p == text || p[-1] != '\r')
            n++;
        p++;
    }
    if (len > 0 && text[len - 1] != '\n')
        n += 2;
    return n;
}
