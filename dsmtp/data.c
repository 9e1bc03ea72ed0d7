/*
 * data - DATA scanner and Received: header. See data.h for the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "xmem.h"

/* data_rx_init - an empty scanner with the prefix stored. */
void
data_rx_init(struct data_rx *rx, bool normalize, unsigned long long max_size, size_t max_line,
             const char *prefix)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;

    memset(rx, 0, sizeof(*rx));
    rx->normalize = normalize;
    rx->max_size = max_size;
    rx->max_line = max_line;
    rx->limit = plen + (size_t)max_size + 1;
    rx->size = plen + 4096 < rx->limit ? plen + 4096 : rx->limit;
    rx->text = xmalloc(rx->size);
    if (plen > 0)
        memcpy(rx->text, prefix, plen);
    rx->len = rx->prefix_len = plen;
    rx->bol = true;
}

/* data_rx_put - store n bytes unless an error already condemned the message. */
static void
data_rx_put(struct data_rx *rx, const char *p, size_t n)
{
    if (rx->errors != 0)
        return;
    if (rx->len + n > rx->limit) {
        rx->errors |= DATA_ERR_SIZE;
        return;
    }
    if (rx->len + n > rx->size) {
        size_t sz = rx->size;
        while (sz < rx->len + n)
            sz *= 2;
        if (sz > rx->limit)
            sz = rx->limit;
        rx->text = xrealloc(rx->text, sz);
        rx->size = sz;
    }
    memcpy(rx->text + rx->len, p, n);
    rx->len += n;
}

/* data_rx_linebyte - count one octet of the current line against max_line. */
static void
data_rx_linebyte(struct data_rx *rx, size_t n)
{
    rx->linelen += n;
    if (rx->linelen > rx->max_line)
        rx->errors |= DATA_ERR_LONG;
}

/* data_rx_flushdot - a pending leading dot: dropped if more text follows on the line
 * (unstuffing), kept if the line ends right after it. */
static void
data_rx_flushdot(struct data_rx *rx, bool line_ends)
{
    if (!rx->dot)
        return;
    rx->dot = false;
    if (line_ends)
        data_rx_put(rx, ".", 1);
}

/* data_rx_bare - a bare CR or LF: an error in strict mode, a line end when normalizing. */
static void
data_rx_bare(struct data_rx *rx)
{
    if (rx->normalize) {
        data_rx_flushdot(rx, true);
        data_rx_put(rx, "\n", 1);
        rx->linelen = 0;
    } else {
        data_rx_flushdot(rx, false);
        rx->errors |= DATA_ERR_BARE;
        data_rx_linebyte(rx, 1);
    }
    rx->bol = false; /* the next line cannot start the terminator, nor be unstuffed */
}

/* data_rx_special - CR, LF or NUL in an ordinary position? */
static inline bool
data_rx_special(unsigned char c)
{
    return c == '\r' || c == '\n' || c == '\0';
}

/* data_rx_feed - the scanner proper. */
size_t
data_rx_feed(struct data_rx *rx, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && !rx->done) {
        unsigned char c = (unsigned char)p[i];

        if (rx->cr) {
            rx->cr = false;
            if (c == '\n') {
                i++;
                if (rx->dot && rx->bol) {
                    rx->done = true; /* <CRLF>.<CRLF> */
                    break;
                }
                data_rx_flushdot(rx, true);
                data_rx_put(rx, "\n", 1);
                rx->linelen = 0;
                rx->bol = true;
                continue;
            }
            data_rx_bare(rx); /* the CR before c was bare; now look at c */
        }
        if (c == '\r') {
            rx->cr = true;
            i++;
            continue;
        }
        if (c == '\n') {
            data_rx_bare(rx);
            i++;
            continue;
        }
        if (rx->bol && !rx->dot && c == '.') {
            rx->dot = true; /* the line starts with a dot; wait for what follows */
            data_rx_linebyte(rx, 1);
            i++;
            continue;
        }
        data_rx_flushdot(rx, false);
        rx->bol = false;
        if (c == '\0') {
            rx->errors |= DATA_ERR_NUL;
            data_rx_linebyte(rx, 1);
            i++;
            continue;
        }
        /* a run of ordinary bytes */
        size_t j = i + 1;
        while (j < n && !data_rx_special((unsigned char)p[j]))
            j++;
        data_rx_linebyte(rx, j - i);
        data_rx_put(rx, p + i, j - i);
        i = j;
    }
    rx->wire += i;
    if (rx->wire > rx->max_size)
        rx->errors |= DATA_ERR_SIZE;
    return i;
}

/* data_rx_take - give the buffer away. */
char *
data_rx_take(struct data_rx *rx, size_t *len)
{
    char *t = rx->text;

    *len = rx->len;
    rx->text = NULL;
    rx->len = rx->size = 0;
    return t;
}

/* data_rx_free - release the buffer. */
void
data_rx_free(struct data_rx *rx)
{
    free(rx->text);
    rx->text = NULL;
    rx->len = rx->size = 0;
}

/* data_rfc5322_date - the date-time of RFC 5322 3.3 in local time. */
char *
data_rfc5322_date(char *buf, size_t len, time_t when)
{
    struct tm tm;

    localtime_r(&when, &tm);
    if (strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && len > 0)
        buf[0] = '\0';
    return buf;
}

/* data_received - the trace header of RFC 5321 4.4. */
int
data_received(char *buf, size_t len, const char *helo, const char *ip, const char *host,
              const char *proto, const char *id, const char *tls, const char *rcpt, time_t when)
{
    char date[64];
    int n;

    data_rfc5322_date(date, sizeof(date), when);
    if (tls[0] != '\0' && rcpt != NULL)
        n = snprintf(buf, len,
                     "Received: from %s ([%s])\n\tby %s (dsmtp) with %s id %s\n\t(%s)\n"
                     "\tfor <%s>; %s\n",
                     helo, ip, host, proto, id, tls, rcpt, date);
    else if (tls[0] != '\0')
        n = snprintf(buf, len,
                     "Received: from %s ([%s])\n\tby %s (dsmtp) with %s id %s\n\t(%s); %s\n", helo,
                     ip, host, proto, id, tls, date);
    else if (rcpt != NULL)
        n = snprintf(buf, len,
                     "Received: from %s ([%s])\n\tby %s (dsmtp) with %s id %s\n\tfor <%s>; %s\n",
                     helo, ip, host, proto, id, rcpt, date);
    else
        n = snprintf(buf, len, "Received: from %s ([%s])\n\tby %s (dsmtp) with %s id %s; %s\n",
                     helo, ip, host, proto, id, date);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}
