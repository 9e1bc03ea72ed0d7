/*
 * members - a list's subscribers (see members.h).
 */
#include "members.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "file.h"
#include "xmem.h"

/* members_find - the index of addr, or where it would go (*found false). */
static size_t
members_find(const struct members *m, const char *addr, bool *found)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(m->v[mid], addr);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* members_canon - addr in canonical form into buf; 0 or -1 (err). */
static int
members_canon(const char *addr, char *buf, size_t len, char *err, size_t errlen)
{
    struct addr a;

    if (addr_parse_mailbox(addr, NULL, &a, err, errlen) < 0)
        return -1;
    if (a.domain[0] == '[') {
        snprintf(err, errlen, "an address literal is no subscriber");
        return -1;
    }
    addr_format(&a, buf, len);
    return 0;
}

int
members_add(struct members *m, const char *addr, char *err, size_t errlen)
{
    char buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
    bool found;
    size_t i;

    if (members_canon(addr, buf, sizeof(buf), err, errlen) < 0)
        return -1;
    i = members_find(m, buf, &found);
    if (found)
        return 0;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof(*m->v));
    m->v[i] = xstrdup(buf);
    m->n++;
    return 1;
}

int
members_remove(struct members *m, const char *addr)
{
    char buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8], err[200];
    bool found;
    size_t i;

    if (members_canon(addr, buf, sizeof(buf), err, sizeof(err)) < 0)
        return 0;
    i = members_find(m, buf, &found);
    if (!found)
        return 0;
    free(m->v[i]);
    memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof(*m->v));
    m->n--;
    return 1;
}

bool
members_has(const struct members *m, const char *addr)
{
    char buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8], err[200];
    bool found;

    if (members_canon(addr, buf, sizeof(buf), err, sizeof(err)) < 0)
        return false;
    members_find(m, buf, &found);
    return found;
}

void
members_free(struct members *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

void
members_parse(struct members *m, const char *file, const char *text, size_t len,
              struct conf_diag *diag)
{
    const char *s = text, *end = text + len;
    int line = 0;

    members_free(m);
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl != NULL ? nl : end;
        char one[600], err[200];
        size_t n;

        line++;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        n = (size_t)(e - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        if (n > 0 && s[0] != '#') {
            int r = -1;
            if (n >= sizeof(one) || memchr(s, '\0', n) != NULL)
                snprintf(err, sizeof(err), "not an address");
            else {
                memcpy(one, s, n);
                one[n] = '\0';
                r = members_add(m, one, err, sizeof(err));
            }
            if (r < 0 && diag != NULL)
                conf_diag_add(diag, false, file, line, "%s", err);
            else if (r == 0 && diag != NULL)
                conf_diag_add(diag, true, file, line, "%.*s is listed already", (int)n, s);
        }
        s = e + 1;
    }
}

int
members_load(struct members *m, const char *path, struct conf_diag *diag)
{
    char *text = NULL;
    size_t len = 0;

    members_free(m);
    if (file_read_all(path, MEMBERS_FILE_MAX, &text, &len) < 0)
        return errno == ENOENT ? 0 : -1;
    members_parse(m, path, text, len, diag);
    free(text);
    return 0;
}

int
members_save(const struct members *m, const char *path)
{
    char dir[4096], *text, *o;
    size_t len = 0;
    int rc;

    if (file_dirname(path, dir, sizeof(dir)) < 0 || file_mkdirs(dir, 0700) < 0)
        return -1;
    for (size_t i = 0; i < m->n; i++)
        len += strlen(m->v[i]) + 1;
    o = text = xmalloc(len + 1);
    for (size_t i = 0; i < m->n; i++) {
        size_t n = strlen(m->v[i]);
        memcpy(o, m->v[i], n);
        o[n] = '\n';
        o += n + 1;
    }
    rc = file_write_atomic(path, text, len, 0600);
    free(text);
    return rc;
}
