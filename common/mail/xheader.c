/*
 * xheader - a recipient's own header fields (dsmtp's XHEADER). See xheader.h.
 */
#include "xheader.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmem.h"

static const char *const xheader_refused[] = {"Return-Path", "Received", "DKIM-Signature"};

/* xheader_hex - the value of hex digit c, or -1. */
static int
xheader_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* xheader_unxtext - s (n octets) decoded into out (room for n + 1); its length, or -1 with
 * why when it is not xtext. */
static long
xheader_unxtext(const char *s, size_t n, char *out, const char **why)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            int hi = i + 2 < n ? xheader_hex(s[i + 1]) : -1;
            int lo = hi >= 0 ? xheader_hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "'+' must be followed by two hexadecimal digits (xtext)";
                return -1;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            *why = "a character not allowed in xtext";
            return -1;
        } else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

/* xheader_fields - the decoded text d (n octets) is header fields (xheader.h). */
static bool
xheader_fields(const char *d, size_t n, const char **why)
{
    size_t i = 0;

    if (n == 0) {
        *why = "no header field";
        return false;
    }
    while (i < n) {
        size_t end = i, len;
        while (end < n && d[end] != '\r' && d[end] != '\n')
            end++;
        len = end - i;
        if (len == 0 || len > 998) {
            *why = len == 0 ? "an empty line" : "a line longer than 998 octets";
            return false;
        }
        for (size_t k = i; k < end; k++)
            if (((unsigned char)d[k] < 0x20 && d[k] != '\t') || (unsigned char)d[k] > 0x7e) {
                *why = "a control or non-ASCII octet in a header field";
                return false;
            }
        if (d[i] != ' ' && d[i] != '\t') { /* a field's first line: Name: */
            const char *colon = memchr(d + i, ':', len);
            size_t nl = colon != NULL ? (size_t)(colon - (d + i)) : 0;
            if (nl == 0 || nl > 76 || memchr(d + i, ' ', nl) != NULL ||
                memchr(d + i, '\t', nl) != NULL) {
                *why = "a line that is neither \"Name: value\" nor a continuation";
                return false;
            }
            for (size_t r = 0; r < sizeof(xheader_refused) / sizeof(xheader_refused[0]); r++)
                if (strlen(xheader_refused[r]) == nl &&
                    strncasecmp(d + i, xheader_refused[r], nl) == 0) {
                    *why = "a header field the server writes itself";
                    return false;
                }
        } else if (i == 0) {
            *why = "a continuation line without its field";
            return false;
        }
        if (end < n && d[end] == '\r') {
            if (end + 1 >= n || d[end + 1] != '\n') {
                *why = "a bare CR";
                return false;
            }
            end++;
        }
        i = end + 1;
    }
    return true;
}

int
xheader_check(const char *s, size_t n, const char **why)
{
    char d[XHEADER_MAX + 1];
    long dl;

    if (n == 0 || n > XHEADER_MAX) {
        *why = n == 0 ? "an empty value" : "a value longer than 1500 octets";
        return -1;
    }
    if ((dl = xheader_unxtext(s, n, d, why)) < 0)
        return -1;
    return xheader_fields(d, (size_t)dl, why) ? 0 : -1;
}

char *
xheader_decode(const char *s, size_t *len)
{
    const char *why;
    char d[XHEADER_MAX + 1], *out;
    size_t n = strlen(s), o = 0;
    long dl;

    if (xheader_check(s, n, &why) < 0 || (dl = xheader_unxtext(s, n, d, &why)) < 0)
        return NULL;
    out = xmalloc((size_t)dl + 2);
    for (long i = 0; i < dl; i++)
        if (d[i] != '\r')
            out[o++] = d[i];
    if (o > 0 && out[o - 1] != '\n')
        out[o++] = '\n';
    out[o] = '\0';
    *len = o;
    return out;
}
