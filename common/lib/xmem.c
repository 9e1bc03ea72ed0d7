/*
 * xmem - allocation that never returns NULL; out of memory is logged and fatal.
 */
#include "xmem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* xmem_oom - the one way out when memory runs out. */
static void __attribute__((noreturn)) xmem_oom(size_t n)
{
    log_fatal("out of memory (%zu bytes)", n);
}

/* xmalloc - malloc that never fails; xmalloc(0) returns a unique pointer. */
void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        xmem_oom(n);
    return p;
}

/* xcalloc - calloc that never fails and checks n * size for overflow. */
void *
xcalloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        n = size = 1;
    void *p = calloc(n, size);
    if (p == NULL)
        xmem_oom(n * size);
    return p;
}

/* xrealloc - realloc that never fails. */
void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        xmem_oom(n);
    return q;
}

/* xstrdup - strdup that never fails. */
char *
xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* xstrndup - at most n bytes of s, always NUL-terminated. */
char *
xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* xmemdup - a malloc'd copy of n bytes. */
void *
xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

/* xasprintf - a malloc'd formatted string. */
char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        xmem_oom(0);
    return s;
}
