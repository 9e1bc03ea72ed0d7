/*
 * dropview_conv - stored message text to the client form, in pieces of any size
 * (contract in dropview.h). Pure: no I/O, no allocation.
 *
 * At most a few bytes are held back between calls: a CR (it may start a CRLF), one leading
 * '>' and up to four characters of "From" (the line may be a quoted "From " line). Every
 * further leading '>' is written at once: all '>' are alike, so holding back only the
 * first one and dropping it when "From " follows gives the same bytes as removing any one.
 */
#include <ctype.h>
#include <string.h>

#include "dropview.h"

static const char dropview_conv_from[] = "From ";
static const char dropview_conv_status[] = "status:";

/* dropview_conv_put - append n bytes to out (if any) at *w and count them. */
static void
dropview_conv_put(struct dropview_conv *c, char *out, size_t *w, const char *p, size_t n)
{
    if (out != NULL)
        memcpy(out + *w, p, n);
    *w += n;
    c->out += n;
}

/* dropview_conv_release - write what a pending quoted-From match holds back. */
static void
dropview_conv_release(struct dropview_conv *c, char *out, size_t *w)
{
    if (!c->gt)
        return;
    dropview_conv_put(c, out, w, ">", 1);
    dropview_conv_put(c, out, w, dropview_conv_from, c->from);
    c->gt = false;
    c->from = 0;
}

/* dropview_conv_char - one byte of line content (not LF; a CR only once known not to
 * start a CRLF). */
static void
dropview_conv_char(struct dropview_conv *c, char *out, size_t *w, char b)
{
    bool first = c->bol;

    c->bol = false;
    c->content = true;
    if (c->in_header && c->stat < sizeof dropview_conv_status - 1) {
        if (tolower((unsigned char)b) == dropview_conv_status[c->stat]) {
            if (++c->stat == sizeof dropview_conv_status - 1)
                c->has_status = true;
        } else {
            c->stat = sizeof dropview_conv_status; /* no longer matching */
        }
    }
    if (c->gt) {
        if (c->from == 0 && b == '>') {
            dropview_conv_put(c, out, w, ">", 1);
            return;
        }
        if (b == dropview_conv_from[c->from]) {
            if (++c->from == sizeof dropview_conv_from - 1) {
                /* ^>+From : one '>' (the held one) goes */
                dropview_conv_put(c, out, w, dropview_conv_from, c->from);
                c->gt = false;
                c->from = 0;
            }
            return;
        }
        dropview_conv_release(c, out, w);
    }
    if (first) {
        if (b == '.' && c->dotstuff)
            dropview_conv_put(c, out, w, ".", 1);
        if (b == '>' && c->mboxrd) {
            c->gt = true;
            c->from = 0;
            return;
        }
    }
    dropview_conv_put(c, out, w, &b, 1);
}

/* dropview_conv_eol - the end of a line: CRLF, the Status line before the empty line that
 * ends the header, and the TOP line count. */
static void
dropview_conv_eol(struct dropview_conv *c, char *out, size_t *w)
{
    dropview_conv_release(c, out, w);
    if (c->in_header && !c->content) {
        c->in_header = false;
        c->has_body = true;
        if (c->status != NULL)
            dropview_conv_put(c, out, w, c->status, c->status_len);
        dropview_conv_put(c, out, w, "\r\n", 2);
        if (c->top == 0)
            c->done = true;
    } else {
        dropview_conv_put(c, out, w, "\r\n", 2);
        if (!c->in_header && c->top >= 0 && ++c->lines >= c->top)
            c->done = true;
    }
    c->bol = true;
    c->content = false;
    c->stat = 0;
}

/* dropview_conv_init - set up a conversion. */
void
dropview_conv_init(struct dropview_conv *c, bool mboxrd, bool dotstuff, const char *status,
                   long top)
{
    memset(c, 0, sizeof *c);
    c->mboxrd = mboxrd;
    c->dotstuff = dotstuff;
    c->status = status;
    c->status_len = status != NULL ? strlen(status) : 0;
    c->top = top;
    c->bol = true;
    c->in_header = true;
}

/* dropview_conv_feed - convert a piece of stored text. */
size_t
dropview_conv_feed(struct dropview_conv *c, const char *in, size_t n, char *out)
{
    size_t w = 0;

    for (size_t i = 0; i < n && !c->done; i++) {
        char b = in[i];
        if (c->cr) {
            c->cr = false;
            if (b == '\n') {
                dropview_conv_eol(c, out, &w);
                continue;
            }
            dropview_conv_char(c, out, &w, '\r');
        }
        if (b == '\r') {
            c->cr = true;
        } else if (b == '\n') {
            dropview_conv_eol(c, out, &w);
        } else {
            /* fast path: plain bytes in the middle of a line */
            if (!c->bol && !c->gt && !(c->in_header && c->stat < sizeof dropview_conv_status - 1)) {
                size_t j = i;
                while (j < n && in[j] != '\r' && in[j] != '\n')
                    j++;
                dropview_conv_put(c, out, &w, in + i, j - i);
                i = j - 1;
                continue;
            }
            dropview_conv_char(c, out, &w, b);
        }
    }
    return w;
}

/* dropview_conv_finish - flush and end an unterminated last line. */
size_t
dropview_conv_finish(struct dropview_conv *c, char *out)
{
    size_t w = 0;

    if (c->done)
        return 0;
    if (c->cr) {
        c->cr = false;
        dropview_conv_char(c, out, &w, '\r');
    }
    dropview_conv_release(c, out, &w);
    if (!c->bol) {
        dropview_conv_put(c, out, &w, "\r\n", 2);
        c->bol = true;
        c->content = false;
    }
    return w;
}
