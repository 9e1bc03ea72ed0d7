/*
 * msg - the small message toolkit of dlist: header lookup and removal in a spooled
 * message, the poster's address, and the text of the mail dlist writes itself.
 *
 * Contract:
 * - Pure functions on memory (no I/O), any thread. Text has LF line ends (the spool's
 *   form); the header ends at the first empty line (or the end of the text).
 * - Header names compare without regard to ASCII case; values are unfolded (CR/LF and
 *   the fold's blanks become one space) and trimmed.
 * - Strings returned are malloc'd (the caller frees them); NULL means "none".
 */
#ifndef DLIST_MSG_H
#define DLIST_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* msg_body - the offset of the body (past the empty line), or len when there is none. */
size_t msg_body(const char *text, size_t len);

/* msg_header - the unfolded value of the first header name, malloc'd, or NULL. */
char *msg_header(const char *text, size_t len, const char *name);

/* msg_addr - the first address (local@domain, canonical: addr.h) in a header value such
 * as "Bob <bob@x>" or "bob@x (Bob)", into out; false when there is none. */
bool msg_addr(const char *value, char *out, size_t len);

/* msg_copy_headers - the header of text into b without the headers named in drop (a
 * NULL-ended list; each header with its folded lines), the empty line not included. */
void msg_copy_headers(struct buf *b, const char *text, size_t len, const char *const *drop);

/* msg_new_id - a fresh Message-ID value "<...@domain>" into out. */
void msg_new_id(char *out, size_t len, const char *domain);

/* msg_date - an RFC 5322 Date value for now into out. */
void msg_date(char *out, size_t len);

/* msg_strip_subject - s without its leading "Re:", "Fwd:", "Fw:", "AW:" and blanks (as
 * the replies to a confirmation quote it): a pointer into s. */
const char *msg_strip_subject(const char *s);

#endif
