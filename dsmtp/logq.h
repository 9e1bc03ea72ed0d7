/*
 * logq - quoted values for key=value log lines.
 *
 * Contract:
 * - Pure string work, no allocation, never blocks.
 * - logq_text writes "TEXT" into dst (always NUL-terminated, at most len bytes): the text
 *   goes through log_escape (bytes outside 0x20..0x7e as \xNN, '\' as \\, cut with "..."
 *   past max bytes of input) and '"' becomes \", so a value with spaces stays one field.
 *   Use it for free text (reply texts, command lines, error messages); never for AUTH
 *   data or passwords.
 */
#ifndef DSMTP_LOGQ_H
#define DSMTP_LOGQ_H

#include <stddef.h>

/* logq_text - src[0..n) as a quoted, escaped log value into dst. Returns dst. */
char *logq_text(char *dst, size_t len, const char *src, size_t n, size_t max);

#endif
