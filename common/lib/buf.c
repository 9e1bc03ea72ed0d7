/*
 * buf - byte buffers with a hard cap, and a bounded line reader over them.
 *
 * The unconsumed bytes live at data[off .. off+len). Consuming only moves off; the
 * consumed front is reclaimed lazily, when an append needs the room (or at once when
 * the buffer becomes empty, which costs nothing). Memory grows geometrically up to
 * cap + 1 bytes (the extra byte holds the NUL that vsnprintf writes).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmem.h"

#define BUF_MIN_ALLOC 256

/* buf_init - an empty buffer that will hold at most cap bytes. */
void
buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->off = 0;
    b->size = 0;
    b->cap = cap;
}

/* buf_free - release the memory; the buffer is empty (and usable) afterwards. */
void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->off = b->size = 0;
}

/* buf_room - how many more bytes buf_append would take. */
size_t
buf_room(const struct buf *b)
{
    return b->len >= b->cap ? 0 : b->cap - b->len;
}

/* buf_reserve - make room for n more bytes (plus a NUL) after the unconsumed ones;
 * the caller has checked the cap. The consumed front is reclaimed only here, when the
 * tail has run out of room. */
static void
buf_reserve(struct buf *b, size_t n)
{
    size_t need = b->len + n + 1;

    if (b->off + need <= b->size)
        return;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        if (need <= b->size)
            return;
    }
    size_t nsize = b->size ? b->size : BUF_MIN_ALLOC;
    while (nsize < need)
        nsize = nsize > SIZE_MAX / 2 ? SIZE_MAX : nsize * 2;
    if (nsize > b->cap + 1)
        nsize = b->cap + 1;
    b->data = xrealloc(b->data, nsize);
    b->size = nsize;
}

/* buf_append - add n bytes; returns 0, or -1 (nothing added) if len would exceed cap. */
int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > buf_room(b))
        return -1;
    if (n == 0)
        return 0;
    buf_reserve(b, n);
    memcpy(b->data + b->off + b->len, p, n);
    b->len += n;
    return 0;
}

/* buf_consume - drop n bytes (at most len) from the front. */
void
buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = 0;
        b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

/* buf_reset - drop every byte, keeping the memory. */
void
buf_reset(struct buf *b)
{
    b->off = 0;
    b->len = 0;
}

/* buf_printf - append formatted text; -1 (nothing added) if it would exceed cap. */
int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > buf_room(b)) {
        va_end(ap2);
        return -1;
    }
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->off + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

/* linereader_init - a reader for lines of at most limit bytes, terminator included. */
void
linereader_init(struct linereader *r, size_t limit)
{
    r->limit = limit;
    r->skipping = false;
}

/* buf_lineinfo_fill - the facts about line p[0..n) (n includes the LF). */
static void
buf_lineinfo_fill(struct buf_lineinfo *info, const char *p, size_t n)
{
    size_t body = n - 1;

    info->crlf = body > 0 && p[body - 1] == '\r';
    if (info->crlf)
        body--;
    info->bare_cr = memchr(p, '\r', body) != NULL;
    info->nul = memchr(p, '\0', body) != NULL;
}

/* buf_getline - next line of b, see buf.h. */
enum buf_line
buf_getline(struct buf *b, struct linereader *r, char **line, size_t *len,
            struct buf_lineinfo *info)
{
    for (;;) {
        if (b->len == 0)
            return BUF_NONE;
        char *p = b->data + b->off;
        size_t n = b->len;
        char *lf = memchr(p, '\n', n);

        if (r->skipping) {
            if (lf == NULL) {
                buf_consume(b, n);
                return BUF_NONE;
            }
            buf_consume(b, (size_t)(lf - p) + 1);
            r->skipping = false;
            continue;
        }
        if (lf == NULL) {
            /* With limit bytes held and no LF, the line can only end up longer. */
            if (n >= r->limit) {
                buf_consume(b, n);
                r->skipping = true;
                return BUF_TOOLONG;
            }
            return BUF_NONE;
        }
        size_t total = (size_t)(lf - p) + 1;
        if (total > r->limit) {
            buf_consume(b, total);
            return BUF_TOOLONG;
        }
        struct buf_lineinfo li;
        buf_lineinfo_fill(&li, p, total);
        size_t body = total - 1 - (li.crlf ? 1 : 0);
        p[body] = '\0';
        *line = p;
        *len = body;
        if (info)
            *info = li;
        /* The line stays in place: only off moves, nothing is compacted before the
         * next call that changes the buffer. */
        b->off += total;
        b->len -= total;
        return BUF_LINE;
    }
}
