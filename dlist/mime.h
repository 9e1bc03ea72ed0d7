/*
 * mime - reading a stored message for display: header values (unfolded, RFC 2047 words
 * decoded), the parts of a MIME tree, their transfer encodings undone and their text
 * turned into UTF-8. Used by the HTML archive (archive_html.c) and the digests (digest.c).
 *
 * Contract:
 * - Owns: nothing between calls; every result is malloc'd for the caller.
 * - Blocks on: nothing (memory and iconv only); callers run it on the thread pool.
 * - Input: a message in local form (LF or CRLF line ends), any bytes; broken MIME never
 *   fails: a multipart without a boundary, or without its closing delimiter, ends at the
 *   end of the text; nesting deeper than MIME_DEPTH_MAX and parts beyond MIME_PARTS_MAX
 *   are not walked.
 * - Output text is always valid UTF-8 with no control characters other than LF and TAB
 *   (others become U+FFFD); an unknown charset is read as UTF-8, then as ISO-8859-1.
 */
#ifndef DLIST_MIME_H
#define DLIST_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DEPTH_MAX 8
#define MIME_PARTS_MAX 100

/* One leaf part, as mime_walk reports it. */
struct mime_part {
    const char *type;    /* lower case, "text/plain" when none is given */
    const char *name;    /* filename or name parameter, UTF-8, or "" */
    const char *body;    /* decoded (base64, quoted-printable), still in its charset */
    size_t len;          /* of body */
    const char *charset; /* lower case, "us-ascii" when none is given */
};

/* mime_header - the first header called name (any case) of the header block hdr[len],
 * unfolded (line breaks with their following blanks as one space), raw bytes; malloc'd, or
 * NULL when absent. */
char *mime_header(const char *hdr, size_t len, const char *name);

/* mime_field - the header called name of hdr[len] as one line of UTF-8 text (mime_words,
 * tabs and line breaks as blanks), malloc'd; "" when absent. */
char *mime_field(const char *hdr, size_t len, const char *name);

/* mime_hex - a hex digit's value, or -1. */
int mime_hex(int c);

/* mime_param - parameter param (any case) of a structured value such as a Content-Type
 * (quoted strings unquoted); malloc'd, or NULL. */
char *mime_param(const char *value, const char *param);

/* mime_words - a header value as UTF-8 text: RFC 2047 encoded words (B and Q, any
 * charset iconv knows) decoded, blanks between adjacent encoded words dropped. */
char *mime_words(const char *value);

/* mime_utf8 - len bytes in charset as clean UTF-8 (see the contract), NUL-terminated;
 * *outlen (may be NULL) its length. */
char *mime_utf8(const char *charset, const char *s, size_t len, size_t *outlen);

/* mime_decode - s[len] with transfer encoding cte ("base64", "quoted-printable"; anything
 * else: as is) undone; malloc'd, *outlen its length. Bad input is skipped, never an error. */
char *mime_decode(const char *cte, const char *s, size_t len, size_t *outlen);

/* mime_walk - each leaf part of the message text[len] in order: fn(part, arg). A
 * message/rfc822 part is a leaf (listed, not opened). Returns the number of parts. */
size_t mime_walk(const char *text, size_t len, void (*fn)(const struct mime_part *p, void *arg),
                 void *arg);

#endif
