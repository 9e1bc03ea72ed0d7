/*
 * msg - dlist's message toolkit. See msg.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "file.h"
#include "msg.h"
#include "xmem.h"

/* msg_body - past the first empty line. */
size_t
msg_body(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        if (end == i || (end == i + 1 && text[i] == '\r'))
            return end < len ? end + 1 : len;
        i = end + 1;
    }
    return len;
}

/* msg_next - the end of the header field starting at i (past its folded lines). */
static size_t
msg_next(const char *text, size_t hend, size_t i)
{
    do {
        const char *nl = memchr(text + i, '\n', hend - i);
        i = nl != NULL ? (size_t)(nl - text) + 1 : hend;
    } while (i < hend && (text[i] == ' ' || text[i] == '\t'));
    return i;
}

/* msg_is - the field at i is called name. */
static bool
msg_is(const char *text, size_t i, size_t end, const char *name)
{
    size_t n = strlen(name);

    return end - i > n && text[i + n] == ':' && strncasecmp(text + i, name, n) == 0;
}

char *
msg_header(const char *text, size_t len, const char *name)
{
    size_t hend = msg_body(text, len), i = 0;

    while (i < hend) {
        size_t end = msg_next(text, hend, i);
        if (msg_is(text, i, end, name)) {
            char *v = xmalloc(end - i + 1);
            size_t o = 0;
            for (size_t k = i + strlen(name) + 1; k < end; k++) {
                char ch = text[k];
                if (ch == '\r' || ch == '\n' || ch == '\t')
                    ch = ' ';
                if (ch == ' ' && (o == 0 || v[o - 1] == ' '))
                    continue;
                v[o++] = ch;
            }
            while (o > 0 && v[o - 1] == ' ')
                o--;
            v[o] = '\0';
            return v;
        }
        i = end;
    }
    return NULL;
}

bool
msg_addr(const char *value, char *out, size_t len)
{
    char tok[600], err[100];
    const char *lt = strchr(value, '<'), *p, *e;
    struct addr a;

    if (lt != NULL && (e = strchr(lt, '>')) != NULL) {
        p = lt + 1;
    } else {
        /* the first word with an '@' */
        p = value;
        for (;;) {
            p += strspn(p, " \t,");
            if (*p == '\0')
                return false;
            e = p + strcspn(p, " \t,");
            if (memchr(p, '@', (size_t)(e - p)) != NULL)
                break;
            p = e;
        }
    }
    if ((size_t)(e - p) >= sizeof(tok) || e == p)
        return false;
    memcpy(tok, p, (size_t)(e - p));
    tok[e - p] = '\0';
    if (addr_parse_mailbox(tok, NULL, &a, err, sizeof(err)) < 0 || addr_is_null(&a))
        return false;
    addr_format(&a, out, len);
    return true;
}

void
msg_copy_headers(struct buf *b, const char *text, size_t len, const char *const *drop)
{
    size_t hend = msg_body(text, len), i = 0;

    while (i < hend) {
        size_t end = msg_next(text, hend, i);
        bool keep = !(end - i <= 2 && (text[i] == '\n' || text[i] == '\r'));
        for (size_t k = 0; keep && drop[k] != NULL; k++)
            if (msg_is(text, i, end, drop[k]))
                keep = false;
        if (keep) {
            buf_append(b, text + i, end - i);
            if (text[end - 1] != '\n')
                buf_append(b, "\n", 1);
        }
        i = end;
    }
}

void
msg_new_id(char *out, size_t len, const char *domain)
{
    char u[128];

    file_unique_name(u, sizeof(u), NULL);
    for (char *p = u; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            *p = '.';
    snprintf(out, len, "<dlist.%s@%s>", u, domain);
}

void
msg_date(char *out, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

const char *
msg_strip_subject(const char *s)
{
    static const char *const pre[] = {"re:", "fwd:", "fw:", "aw:", "sv:"};
    bool again = true;

    while (again) {
        again = false;
        s += strspn(s, " \t");
        for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
            if (strncasecmp(s, pre[i], strlen(pre[i])) == 0) {
                s += strlen(pre[i]);
                again = true;
            }
    }
    return s;
}
