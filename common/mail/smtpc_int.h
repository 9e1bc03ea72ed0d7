/*
 * smtpc_int - what smtpc.c (the session and its transactions) and smtpc_reply.c (reply
 * lines, EHLO keywords, the message text's encoding) share. Not for other modules.
 *
 * Contract:
 * - smtpc_reply_line takes a reply one line at a time (CRLF removed): 3 digits 200..599,
 *   then '-' (more lines follow), ' ' or nothing (the last line). Every line must carry
 *   the first line's code. The enhanced status is taken from the first line when it
 *   starts "c.s.d" with c the code's class, and removed from every line that repeats it;
 *   the text keeps only bytes other than controls (those become spaces), lines are
 *   joined by "; " and the whole is cut at SMTPC_TEXT_MAX - 1 bytes.
 * - smtpc_enc produces the text on the wire in pieces: LF (or CRLF) line ends become
 *   CRLF, a line starting with '.' gets another, a line reaching 998 octets is broken by
 *   CRLF SP (Postfix's smtp_line_length_limit: the rest reads as a continuation), a last
 *   line without its LF gets a CRLF, and ".\r\n" ends it all.
 */
#ifndef DSMTP_SMTPC_INT_H
#define DSMTP_SMTPC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpc.h"

#define SMTPC_LINE_MAX 998     /* octets of a line on the wire, CRLF not counted */
#define SMTPC_MAX_LINES 512    /* lines of one reply */
#define SMTPC_PIPE_WINDOW 1000 /* pipelined commands unanswered at most (smtpc_tx_pipe) */

/* what a server announced beyond struct smtpc_info: AUTH mechanisms, STARTTLS, SIZE
 * (with or without a limit) */
enum { SMTPC_X_PLAIN = 1, SMTPC_X_LOGIN = 2, SMTPC_X_STARTTLS = 4, SMTPC_X_SIZE = 8 };

/* a reply being read */
struct smtpc_rx {
    int nlines; /* lines taken so far (0: a new reply starts) */
    size_t tlen;
    struct smtpc_reply r;
};

/* smtpc_reply_line - one line of a reply: 1 when it was the last (rx->r complete; the
 * next call starts a new reply), 0 when more lines follow, -1 when it is malformed.
 * *text (may be NULL) gets the line's text after the code and its separator. */
int smtpc_reply_line(struct smtpc_rx *rx, const char *line, size_t len, const char **text);
/* smtpc_reply_make - a reply made up here: code, status and formatted text. */
void smtpc_reply_make(struct smtpc_reply *r, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* smtpc_ehlo_line - one line of an EHLO reply after the first: the extension it
 * announces goes into info, or into *ext (SMTPC_X_*). */
void smtpc_ehlo_line(struct smtpc_info *info, unsigned *ext, const char *text);

/* the encoder's position in a message text */
struct smtpc_enc {
    size_t pos; /* next byte of the text */
    size_t col; /* octets on the current wire line */
    bool done;  /* ".\r\n" produced */
    bool more;  /* the text goes on in another buffer: its end is not the message's end */
};

/* smtpc_enc_chunk - encode more of text[0..len) into out (cap >= 8); the bytes made. */
size_t smtpc_enc_chunk(struct smtpc_enc *e, const char *text, size_t len, char *out, size_t cap);
/* smtpc_wire_size - what SIZE= declares: the text's length with CRLF line ends. */
unsigned long long smtpc_wire_size(const char *text, size_t len);

#endif
