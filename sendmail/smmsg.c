/*
 * smmsg - reading the submitted message and fixing up its header block.
 */
#include "smmsg.h"

#include "xmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* smmsg_add - append len bytes to the text, keeping it NUL-terminated. */
static void
smmsg_add(struct smmsg *m, const char *p, size_t len)
{
    if (m->len + len + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len + 1)
            cap *= 2;
        m->text = xrealloc(m->text, cap);
        m->cap = cap;
    }
    memcpy(m->text + m->len, p, len);
    m->len += len;
    m->text[m->len] = '\0';
}

/* The reader's line state: CRLF is folded to LF first, then the lone-dot rule applies. */
struct smmsg_rd {
    bool cr; /* a CR was seen and may start a CRLF */
    bool line_start;
    bool dot;  /* a "." was seen at the start of a line and held back */
    bool done; /* the lone "." line ended the input */
};

/* smmsg_rd_char - feed one logical character (after CRLF folding) into m. */
static void
smmsg_rd_char(struct smmsg_rd *rd, struct smmsg *m, bool dot_ends, char c)
{
    if (rd->dot) {
        rd->dot = false;
        if (c == '\n') {
            rd->done = true;
            return;
        }
        smmsg_add(m, ".", 1);
    } else if (dot_ends && rd->line_start && c == '.') {
        rd->dot = true;
        rd->line_start = false;
        return;
    }
    smmsg_add(m, &c, 1);
    rd->line_start = c == '\n';
}

/* smmsg_read - read fd to end of file (or a lone "." line) into m, at most max bytes. */
int
smmsg_read(int fd, bool dot_ends, unsigned long long max, struct smmsg *m)
{
    struct smmsg_rd rd = {.line_start = true};
    char buf[65536];

    memset(m, 0, sizeof *m);
    smmsg_add(m, "", 0);
    while (!rd.done) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SMMSG_IOERR;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n && !rd.done; i++) {
            char c = buf[i];
            if (rd.cr) {
                rd.cr = false;
                if (c == '\n') {
                    smmsg_rd_char(&rd, m, dot_ends, '\n');
                    continue;
                }
                smmsg_rd_char(&rd, m, dot_ends, '\r');
            }
            if (c == '\r')
                rd.cr = true;
            else
                smmsg_rd_char(&rd, m, dot_ends, c);
        }
        if (m->len > max)
            return SMMSG_TOO_BIG;
    }
    if (!rd.done && rd.cr)
        smmsg_rd_char(&rd, m, dot_ends, '\r');
    /* a "." alone on the last, unterminated line ends the input as well: drop it */
    if (m->len > max)
        return SMMSG_TOO_BIG;
    return SMMSG_OK;
}

/* smmsg_set_text - use a copy of text as the message. */
void
smmsg_set_text(struct smmsg *m, const char *text, size_t len)
{
    memset(m, 0, sizeof *m);
    smmsg_add(m, text, len);
}

/* smmsg_field_name_len - length of "name" if the line at p starts "name:" (RFC 5322
 * ftext, obsolete white space before the colon allowed), else 0. */
static size_t
smmsg_field_name_len(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && *q >= 33 && *q <= 126 && *q != ':')
        q++;
    size_t n = (size_t)(q - p);
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    return n > 0 && q < end && *q == ':' ? n : 0;
}

/* smmsg_parse_headers - index the header block. */
void
smmsg_parse_headers(struct smmsg *m)
{
    size_t pos = 0;

    for (size_t i = 0; i < m->nhdr; i++)
        free(m->hdr[i].repl);
    free(m->hdr);
    m->hdr = NULL;
    m->nhdr = 0;
    m->need_blank = false;
    if (m->len >= 5 && memcmp(m->text, "From ", 5) == 0) {
        const char *nl = memchr(m->text, '\n', m->len);
        size_t cut = nl ? (size_t)(nl - m->text) + 1 : m->len;
        memmove(m->text, m->text + cut, m->len - cut + 1);
        m->len -= cut;
    }
    while (pos < m->len) {
        const char *line = m->text + pos, *end = m->text + m->len;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t linelen = nl ? (size_t)(nl - line) + 1 : (size_t)(end - line);
        size_t namelen;

        if (line[0] == '\n') {
            m->hdr_end = pos;
            return;
        }
        if ((line[0] == ' ' || line[0] == '\t') && m->nhdr > 0) {
            m->hdr[m->nhdr - 1].len += linelen;
        } else if ((namelen = smmsg_field_name_len(line, line + linelen)) > 0) {
            m->hdr = xrealloc(m->hdr, (m->nhdr + 1) * sizeof *m->hdr);
            m->hdr[m->nhdr++] = (struct smmsg_hdr){.off = pos, .len = linelen, .namelen = namelen};
        } else {
            m->hdr_end = pos;
            m->need_blank = true;
            return;
        }
        pos += linelen;
    }
    m->hdr_end = m->len;
}

/* smmsg_name_is - the header is called name (case-insensitive). */
bool
smmsg_name_is(const struct smmsg *m, const struct smmsg_hdr *h, const char *name)
{
    return strlen(name) == h->namelen && strncasecmp(m->text + h->off, name, h->namelen) == 0;
}

/* smmsg_find - the first header named name that is not removed, or NULL. */
struct smmsg_hdr *
smmsg_find(struct smmsg *m, const char *name)
{
    for (size_t i = 0; i < m->nhdr; i++)
        if (!m->hdr[i].removed && smmsg_name_is(m, &m->hdr[i], name))
            return &m->hdr[i];
    return NULL;
}

/* smmsg_value - a header's value: the bytes after the colon. */
const char *
smmsg_value(const struct smmsg *m, const struct smmsg_hdr *h, size_t *len)
{
    const char *p = m->text + h->off, *colon = memchr(p, ':', h->len);

    *len = h->len - (size_t)(colon + 1 - p);
    return colon + 1;
}

/* smmsg_set_value - the header's name and colon, then val, as its new field. */
void
smmsg_set_value(struct smmsg *m, struct smmsg_hdr *h, const char *val)
{
    free(h->repl);
    h->repl = xasprintf("%.*s:%s", (int)h->namelen, m->text + h->off, val);
}

/* smmsg_finish - rebuild the text with removed headers left out and added ones appended
 * to the header block. */
void
smmsg_finish(struct smmsg *m, char *const *added)
{
    struct smmsg out = {0};

    smmsg_add(&out, "", 0);
    for (size_t i = 0; i < m->nhdr; i++) {
        const struct smmsg_hdr *h = &m->hdr[i];
        const char *f = h->repl != NULL ? h->repl : m->text + h->off;
        size_t n = h->repl != NULL ? strlen(h->repl) : h->len;
        if (h->removed)
            continue;
        smmsg_add(&out, f, n);
        if (n == 0 || f[n - 1] != '\n')
            smmsg_add(&out, "\n", 1);
    }
    for (size_t i = 0; added != NULL && added[i] != NULL; i++) {
        for (const char *p = added[i]; *p; p++) {
            char c = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
            smmsg_add(&out, &c, 1);
        }
        smmsg_add(&out, "\n", 1);
    }
    if (m->need_blank)
        smmsg_add(&out, "\n", 1);
    smmsg_add(&out, m->text + m->hdr_end, m->len - m->hdr_end);
    if (out.len > 0 && out.text[out.len - 1] != '\n')
        smmsg_add(&out, "\n", 1);
    smmsg_free(m);
    *m = out;
}

/* smmsg_free - release the text and the header index. */
void
smmsg_free(struct smmsg *m)
{
    for (size_t i = 0; i < m->nhdr; i++)
        free(m->hdr[i].repl);
    free(m->text);
    free(m->hdr);
    memset(m, 0, sizeof *m);
}
