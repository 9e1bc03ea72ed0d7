/*
 * data - DATA scanner and Received: header. See data.h for the contract.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data.h"
#include "dkim.h"
#include "xmem.h"

/* data_rx_charge - take more octets of the budget for the buffer; false if they are not
 * there. */
static bool
data_rx_charge(struct data_rx *rx, size_t more)
{
    struct data_budget *b = rx->budget;

    if (b == NULL)
        return true;
    if (b->max > 0 && b->used + more > b->max)
        return false;
    b->used += more;
    rx->charged += more;
    return true;
}

/* data_rx_release - free the buffer and return its charge. */
static void
data_rx_release(struct data_rx *rx)
{
    free(rx->text);
    rx->text = NULL;
    rx->len = rx->size = 0;
    if (rx->budget != NULL)
        rx->budget->used -= rx->charged;
    rx->charged = 0;
}

/* data_rx_over - the budget is spent: the message is refused, its memory given back. */
static void
data_rx_over(struct data_rx *rx)
{
    rx->errors |= DATA_ERR_MEM;
    rx->budget->refused++;
    data_rx_release(rx);
}

/* data_rx_init - an empty scanner with the prefix stored. */
void
data_rx_init(struct data_rx *rx, bool normalize, unsigned long long max_size, size_t max_line,
             const char *prefix, struct data_budget *budget)
{
    size_t plen = prefix != NULL ? strlen(prefix) : 0;

    memset(rx, 0, sizeof(*rx));
    rx->normalize = normalize;
    rx->max_size = max_size;
    rx->max_line = max_line;
    rx->budget = budget;
    rx->bol = true;
    rx->limit = plen + (size_t)max_size + 1;
    rx->size = plen + 4096 < rx->limit ? plen + 4096 : rx->limit;
    if (!data_rx_charge(rx, rx->size)) {
        rx->size = 0;
        data_rx_over(rx);
        return;
    }
    rx->text = xmalloc(rx->size);
    if (plen > 0)
        memcpy(rx->text, prefix, plen);
    rx->len = rx->prefix_len = plen;
}

/* data_rx_put - store n bytes unless an error already condemned the message. */
static void
data_rx_put(struct data_rx *rx, const char *p, size_t n)
{
    if (rx->errors != 0)
        return;
    if (rx->len + rx->spilled + n > rx->limit) {
        rx->errors |= DATA_ERR_SIZE;
        return;
    }
    if (rx->len + n > rx->size) {
        size_t sz = rx->size;
        while (sz < rx->len + n)
            sz *= 2;
        if (sz > rx->limit)
            sz = rx->limit;
        if (!data_rx_charge(rx, sz - rx->size)) {
            data_rx_over(rx);
            return;
        }
        rx->text = xrealloc(rx->text, sz);
        rx->size = sz;
    }
    memcpy(rx->text + rx->len, p, n);
    rx->len += n;
    if (rx->dkim != NULL)
        dkim_body_feed(rx->dkim, p, n);
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
        if (rx->bol && !rx->dot && c == '.' && !rx->chunked) {
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

/* data_rx_chunked - BDAT: the octet count ends the message, not a dot line. */
void
data_rx_chunked(struct data_rx *rx)
{
    rx->chunked = true;
}

/* data_rx_finish - end of the last chunk. */
void
data_rx_finish(struct data_rx *rx)
{
    if (rx->cr) {
        rx->cr = false;
        data_rx_bare(rx);
    }
    if (rx->len > rx->prefix_len && rx->text[rx->len - 1] != '\n' && rx->errors == 0)
        data_rx_put(rx, "\n", 1);
    rx->done = true;
}

/* data_hops - count Received: fields in the header. */
int
data_hops(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    int n = 0;

    while (p < end && *p != '\n') {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) >= 9 && strncasecmp(p, "Received:", 9) == 0)
            n++;
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return n;
}

size_t
data_rx_feed_room(const struct data_rx *rx)
{
    /* a fed octet stores at most one octet, but a pending CR or dot may add one; after an
     * error nothing is stored any more */
    if (rx->errors != 0)
        return SIZE_MAX;
    return rx->len + 2 >= DATA_SPILL_AT ? 0 : DATA_SPILL_AT - rx->len - 2;
}

bool
data_rx_spill_due(const struct data_rx *rx)
{
    return rx->errors == 0 && rx->len + 2 >= DATA_SPILL_AT;
}

const char *
data_rx_spill_part(const struct data_rx *rx, size_t *n)
{
    *n = rx->len - DATA_SPILL_KEEP;
    return rx->text + DATA_SPILL_KEEP;
}

void
data_rx_spilled(struct data_rx *rx)
{
    rx->spilled += rx->len - DATA_SPILL_KEEP;
    rx->len = DATA_SPILL_KEEP;
}

char *
data_rx_unspill(const char *head, size_t head_len, const char *mid, size_t mid_len, size_t *len)
{
    char *t = xmalloc(head_len + mid_len + 1);

    memcpy(t, head, DATA_SPILL_KEEP);
    memcpy(t + DATA_SPILL_KEEP, mid, mid_len);
    memcpy(t + DATA_SPILL_KEEP + mid_len, head + DATA_SPILL_KEEP, head_len - DATA_SPILL_KEEP);
    *len = head_len + mid_len;
    return t;
}

/* data_rx_take - give the buffer away. */
char *
data_rx_take(struct data_rx *rx, size_t *len)
{
    char *t = rx->text;

    *len = rx->len;
    rx->text = NULL;
    data_rx_release(rx);
    return t;
}

/* data_rx_free - release the buffer. */
void
data_rx_free(struct data_rx *rx)
{
    data_rx_release(rx);
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

/* data_is_domain - s is an RFC 5321 Domain: dot-separated labels of letters, digits and
 * inner hyphens. */
static bool
data_is_domain(const char *s)
{
    size_t label = 0;

    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
}

/* data_is_address_literal - s is an RFC 5321 address literal: [IPv4], [IPv6:addr] or
 * [tag:text] (General-address-literal). */
static bool
data_is_address_literal(const char *s)
{
    char in[256];
    unsigned char bin[16];
    size_t n = strlen(s);
    const char *colon;

    if (n < 3 || n >= sizeof(in) || s[0] != '[' || s[n - 1] != ']')
        return false;
    memcpy(in, s + 1, n - 2);
    in[n - 2] = '\0';
    if (strncasecmp(in, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, in + 5, bin) == 1;
    if (inet_pton(AF_INET, in, bin) == 1)
        return true;
    colon = strchr(in, ':');
    if (colon == NULL || colon == in || colon[1] == '\0' || colon[-1] == '-')
        return false;
    for (const char *p = in; p < colon; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    for (const char *p = colon + 1; *p != '\0'; p++)
        if (*p < 33 || *p > 126 || *p == '[' || *p == '\\' || *p == ']')
            return false;
    return true;
}

/* data_address_literal - the client address as an RFC 5321 address literal:
 * [192.0.2.1], [IPv6:2001:db8::1]; an IPv4-mapped IPv6 address is shown as IPv4. */
static void
data_address_literal(char *buf, size_t len, const char *ip)
{
    unsigned char bin[4];

    if (strncasecmp(ip, "::ffff:", 7) == 0 && inet_pton(AF_INET, ip + 7, bin) == 1)
        ip += 7;
    snprintf(buf, len, "[%s%s]", strchr(ip, ':') != NULL ? "IPv6:" : "", ip);
}

/* data_received - the trace header of RFC 5321 4.4. A HELO name that is neither a Domain
 * nor an address literal is not used as the From-domain (it would break the grammar and
 * could fake clauses); it goes into a comment with the characters a comment cannot hold
 * replaced. */
int
data_received(char *buf, size_t len, const char *helo, const char *ip, const char *host,
              const char *proto, const char *id, const char *tls, const char *rcpt, time_t when)
{
    return data_received_ptr(buf, len, helo, ip, NULL, host, proto, id, tls, rcpt, when);
}

/* data_received_ptr - data_received with the client's PTR name (NULL: none). */
int
data_received_ptr(char *buf, size_t len, const char *helo, const char *ip, const char *ptr,
                  const char *host, const char *proto, const char *id, const char *tls,
                  const char *rcpt, time_t when)
{
    char date[64], lit[80], from[400], tail[600];
    int n;

    data_rfc5322_date(date, sizeof(date), when);
    data_address_literal(lit, sizeof(lit), ip);
    if (data_is_domain(helo) || data_is_address_literal(helo)) {
        snprintf(from, sizeof(from), "%s (%s%s%s)", helo, ptr ? ptr : "", ptr ? " " : "", lit);
    } else {
        char odd[300];
        size_t i;
        for (i = 0; helo[i] != '\0' && i < sizeof(odd) - 1; i++)
            odd[i] =
                strchr("()\\", helo[i]) != NULL || helo[i] < 33 || helo[i] > 126 ? '?' : helo[i];
        odd[i] = '\0';
        snprintf(from, sizeof(from), "%s\n\t(%s%sHELO %s)", lit, ptr ? ptr : "", ptr ? ", " : "",
                 odd);
    }
    if (rcpt != NULL)
        snprintf(tail, sizeof(tail), "\n\tfor <%s>; %s", rcpt, date);
    else
        snprintf(tail, sizeof(tail), "; %s", date);
    if (tls[0] != '\0')
        n = snprintf(buf, len, "Received: from %s\n\tby %s (dsmtp) with %s id %s\n\t(%s)%s\n", from,
                     host, proto, id, tls, tail);
    else
        n = snprintf(buf, len, "Received: from %s\n\tby %s (dsmtp) with %s id %s%s\n", from, host,
                     proto, id, tail);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}
