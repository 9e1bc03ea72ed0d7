/*
 * xmem - allocation that never returns NULL: out of memory is logged and fatal.
 *
 * Contract: the x* functions behave like their libc namesakes, except that failure ends
 * the process through log_fatal. Callers free with free(3).
 */
#ifndef DMAIL_XMEM_H
#define DMAIL_XMEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
