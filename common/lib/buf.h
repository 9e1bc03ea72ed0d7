/*
 * buf - byte buffers with a hard cap, and a bounded line reader over them.
 *
 * Contract:
 * - Owns: the bytes of a struct buf (malloc'd, grown on demand up to cap, never beyond).
 * - Blocks on: nothing.
 * - buf_getline() never returns a line longer than the reader's limit. A line that is too
 *   long is reported once as BUF_TOOLONG -- when its newline arrives, or as soon as the
 *   buffered bytes reach the limit with no newline (the line with its terminator then
 *   exceeds the limit) -- and its bytes are skipped up to and including the next LF, so the
 *   protocol stays in sync with the client. Lines are split on LF only; CRLF, a bare CR
 *   inside and a NUL inside are reported in struct buf_lineinfo for the protocol to judge.
 * - Consumed space at the front is reclaimed lazily, when an append needs the room.
 * - Memory: at most cap + 1 bytes are allocated.
 * - A returned line points into the buffer and stays valid until the next call that
 *   changes the buffer (buf_append, buf_getline, buf_consume, buf_reset).
 */
#ifndef DMAIL_BUF_H
#define DMAIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;  /* bytes held, from data[off] */
    size_t off;  /* bytes already consumed at the front */
    size_t size; /* allocated */
    size_t cap;  /* hard limit on len */
};

void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);
/* buf_append - add n bytes; returns 0, or -1 (nothing added) if len would exceed cap. */
int buf_append(struct buf *b, const void *p, size_t n);
/* buf_room - how many more bytes buf_append would take. */
size_t buf_room(const struct buf *b);
/* buf_peek - the unconsumed bytes. */
static inline const char *
buf_peek(const struct buf *b)
{
    return b->data + b->off;
}
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* buf_printf - append formatted text; -1 if it would exceed cap. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum buf_line {
    BUF_NONE = 0, /* no complete line yet */
    BUF_LINE,     /* line and len set */
    BUF_TOOLONG,  /* the current line exceeded the limit and is being skipped */
};

/* Facts about a returned line. */
struct buf_lineinfo {
    bool crlf;    /* ended with CRLF (false: bare LF) */
    bool bare_cr; /* a CR not followed by LF inside the line */
    bool nul;     /* a NUL byte inside the line */
};

struct linereader {
    size_t limit;  /* longest line accepted, terminator included */
    bool skipping; /* inside a too-long line, discarding up to its LF */
};

void linereader_init(struct linereader *r, size_t limit);
/* buf_getline - next line of b: *line points at it (NUL-terminated in place, terminator
 * removed), *len is its length without CRLF/LF. info may be NULL. */
enum buf_line buf_getline(struct buf *b, struct linereader *r, char **line, size_t *len,
                          struct buf_lineinfo *info);

#endif
