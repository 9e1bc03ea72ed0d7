/*
 * xheader - dsmtp's XHEADER extension: a recipient's own header fields, which a client
 * allowed to use XVERP gives with RCPT TO:<addr> XHEADER=xtext in an XVERP transaction
 * (dlist's RFC 8058 one-click List-Unsubscribe, one URL per subscriber, in a post that is
 * one transaction). dsmtp keeps the value as given (the queue file's "xheader" line) and
 * puts the decoded fields at the top of that recipient's copy, as it writes the VERP
 * sender of that copy.
 *
 * Contract:
 * - Owns: nothing but xheader_decode's result. No globals: any thread.
 * - The value is xtext (RFC 3461 4: bytes 0x21..0x7e but '+' and '=', those and others as
 *   "+XX"), at most XHEADER_MAX octets encoded. Decoded it is one or more header fields:
 *   lines ended by CRLF or LF (the last one may lack it), no empty line, only printable
 *   ASCII, SP and HTAB, each line at most 998 octets; a field's first line is "Name:"
 *   with Name 1..76 octets of 0x21..0x7e but ':', its continuation lines start with SP or
 *   HTAB. Return-Path, Received and DKIM-Signature are refused: those are the server's to
 *   write.
 * - Error texts (why) are static strings fit for an SMTP reply.
 */
#ifndef DMAIL_XHEADER_H
#define DMAIL_XHEADER_H

#include <stddef.h>

#define XHEADER_MAX 1500 /* octets of the xtext value */

/* xheader_check - s (n octets) is a usable XHEADER value; 0, or -1 with why. */
int xheader_check(const char *s, size_t n, const char **why);
/* xheader_decode - the fields of a value xheader_check accepts, LF-ended lines,
 * NUL-terminated, malloc'd (*len octets); NULL (nothing allocated) for a bad value. */
char *xheader_decode(const char *s, size_t *len);

#endif
