/*
 * logq - quoted values for key=value log lines. See logq.h.
 */
#include <string.h>

#include "log.h"
#include "logq.h"

#define LOGQ_MAX 2048

/* logq_text - src[0..n) as a quoted, escaped log value into dst. */
char *
logq_text(char *dst, size_t len, const char *src, size_t n, size_t max)
{
    char esc[LOGQ_MAX];
    size_t o = 0;

    if (len < 3) {
        if (len > 0)
            dst[0] = '\0';
        return dst;
    }
    log_escape(esc, sizeof(esc), src, n, max);
    dst[o++] = '"';
    for (const char *p = esc; *p != '\0';) {
        /* one unit: \" for a quote, or a whole escape (\\ or \xNN) of log_escape */
        size_t unit = *p == '\\' ? (p[1] == 'x' ? 4 : 2) : 1;
        if (strnlen(p, unit) < unit)
            break;
        if (o + unit + (*p == '"') + 2 > len) /* + closing quote + NUL */
            break;
        if (*p == '"')
            dst[o++] = '\\';
        memcpy(dst + o, p, unit);
        o += unit;
        p += unit;
    }
    dst[o++] = '"';
    dst[o] = '\0';
    return dst;
}
