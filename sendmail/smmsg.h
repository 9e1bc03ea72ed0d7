/*
 * smmsg - the message sendmail submits: read from a descriptor with sendmail's rules,
 * then its header block inspected and fixed up the way an MTA's cleanup stage does.
 *
 * Contract:
 * - Owns: the text buffer and header index in struct smmsg (smmsg_free releases them).
 * - Blocks on: read(2) of the input descriptor (command-line tool only).
 * - Text is in local form: CRLF becomes LF (a bare CR is kept as it is); nothing is
 *   dot-stuffed. Without -i a line holding only "." ends the input; with -i only end of
 *   file does.
 * - Headers are the lines from the start up to the first empty line (or the first line
 *   that is neither a header nor a continuation: then an empty line is inserted before it).
 *   A leading mbox "From " line is dropped.
 */
#ifndef DMAIL_SMMSG_H
#define DMAIL_SMMSG_H

#include <stdbool.h>
#include <stddef.h>

struct smmsg_hdr {
    size_t off, len; /* the whole field in text, continuation lines and final LF included */
    size_t namelen;  /* the field name is text[off .. off+namelen) */
    bool removed;
    char *repl; /* malloc'd replacement of the whole field (smmsg_set_value), or NULL */
};

struct smmsg {
    char *text;
    size_t len, cap;
    size_t hdr_end;  /* offset where the header block ends (the empty line or body) */
    bool need_blank; /* no empty line separates headers from body: insert one */
    size_t nhdr;
    struct smmsg_hdr *hdr;
};

enum smmsg_rc { SMMSG_OK = 0, SMMSG_TOO_BIG = -1, SMMSG_IOERR = -2 };

/* smmsg_read - read fd to end of file (or a lone "." line when dot_ends) into m, at most
 * max bytes of text (else SMMSG_TOO_BIG, input left unread). SMMSG_IOERR with errno. */
int smmsg_read(int fd, bool dot_ends, unsigned long long max, struct smmsg *m);
/* smmsg_set_text - use a copy of text[0..len) (already in local form) as the message. */
void smmsg_set_text(struct smmsg *m, const char *text, size_t len);
/* smmsg_parse_headers - index the header block (also drops a leading "From " line). */
void smmsg_parse_headers(struct smmsg *m);
/* smmsg_find - the first header named name (case-insensitive), or NULL. */
struct smmsg_hdr *smmsg_find(struct smmsg *m, const char *name);
/* smmsg_value - a header's value: the bytes after the colon, through the last line end. */
const char *smmsg_value(const struct smmsg *m, const struct smmsg_hdr *h, size_t *len);
/* smmsg_name_is - the header is called name (case-insensitive). */
bool smmsg_name_is(const struct smmsg *m, const struct smmsg_hdr *h, const char *name);
/* smmsg_set_value - replace the header's value (what follows the colon, line end
 * included) by val; smmsg_finish writes the name as it was and val instead of the old
 * value. smmsg_value still returns the old one. */
void smmsg_set_value(struct smmsg *m, struct smmsg_hdr *h, const char *val);
/* smmsg_finish - rebuild the text: headers not removed, then each of the NULL-terminated
 * added header lines (each a complete "Name: value" without line end; CR, LF and other
 * control characters in them become spaces), the empty line if one was missing, the body.
 * Ends the text with LF if it did not. The header index is cleared. */
void smmsg_finish(struct smmsg *m, char *const *added);
void smmsg_free(struct smmsg *m);

#endif
