/*
 * milter_edit - the message as the milter client shows it to a filter, and the
 * filter's changes applied to it: pure text work, no I/O.
 *
 * Contract:
 * - Owns: struct milter_edits (the changes a filter asked for, copied) until
 *   milter_edits_clear; milter_edit_apply returns a new buffer (malloc'd), the input is
 *   left alone.
 * - Blocks on: nothing.
 * - The message is in local form: LF line ends, the header up to the first empty line (or
 *   up to the first line that is neither a field "name: value" nor its continuation,
 *   which then starts the body). A field's value as sent to a filter has its leading
 *   blanks removed (unless the filter asked for SMFIP_HDR_LEADSPC) and its continuation
 *   lines joined by LF, without the last LF.
 * - Changes, applied in the order the filter sent them: add (at the end of the header),
 *   insert at index (0: the top; past the end: the end), change the index-th field of a
 *   name (1-based, any case; an empty value deletes it; a missing one with a value is
 *   added, as sendmail does), replace the body (the chunks in order). Values written back
 *   get CRLF turned into LF and one space after the colon unless leadspc.
 */
#ifndef DSMTP_MILTER_EDIT_H
#define DSMTP_MILTER_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* one header field of a message text */
struct milter_field {
    size_t start;    /* its first octet */
    size_t name_len; /* the name's octets */
    size_t value;    /* the first octet after the colon */
    size_t end;      /* one past its last LF */
};

/* milter_field_next - the field starting at off; false at the end of the header (*body
 * then gets where the body starts). */
bool milter_field_next(const char *text, size_t len, size_t off, struct milter_field *f,
                       size_t *body);

enum milter_edit_kind { ME_ADD, ME_INSERT, ME_CHANGE };

struct milter_edit {
    enum milter_edit_kind kind;
    uint32_t index;
    char *name, *value;
};

struct milter_edits {
    struct milter_edit *e;
    size_t n, cap;
    bool body_set; /* SMFIR_REPLBODY came: body replaces the message's body */
    char *body;    /* CRLF already turned into LF */
    size_t body_len;
    size_t bytes; /* what all the changes hold: header names and values, the body */
};

/* milter_edits_header - record a header change (name and value are copied). */
void milter_edits_header(struct milter_edits *m, enum milter_edit_kind kind, uint32_t index,
                         const char *name, const char *value);
/* milter_edits_body - append a body chunk (CRLF into LF). */
void milter_edits_body(struct milter_edits *m, const char *p, size_t n);
/* milter_edits_bytes - the bytes the changes recorded so far hold (a filter may not make
 * the message grow past the size limit). */
size_t milter_edits_bytes(const struct milter_edits *m);
/* milter_edits_any - anything to apply? */
bool milter_edits_any(const struct milter_edits *m);
void milter_edits_clear(struct milter_edits *m);

/* milter_edit_apply - text with the changes of m; *outlen its length. */
char *milter_edit_apply(const char *text, size_t len, const struct milter_edits *m, bool leadspc,
                        size_t *outlen);

#endif
