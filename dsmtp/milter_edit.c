/*
 * milter_edit - header fields of a message, and a filter's changes applied. See
 * milter_edit.h.
 */
#include "milter_edit.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmem.h"

bool
milter_field_next(const char *text, size_t len, size_t off, struct milter_field *f, size_t *body)
{
    size_t i = off, colon;

    *body = off;
    if (off >= len)
        return false;
    if (text[off] == '\n') { /* the empty line */
        *body = off + 1;
        return false;
    }
    if (text[off] == ' ' || text[off] == '\t')
        return false;
    for (colon = off; colon < len && text[colon] != ':' && text[colon] != '\n'; colon++)
        if (text[colon] == ' ' || text[colon] == '\t')
            break;
    /* "Name:" or "Name :" (obsolete syntax); anything else starts the body */
    while (colon < len && (text[colon] == ' ' || text[colon] == '\t'))
        colon++;
    if (colon >= len || text[colon] != ':' || colon == off)
        return false;
    f->start = off;
    f->value = colon + 1;
    for (f->name_len = 0; off + f->name_len < colon && text[off + f->name_len] != ' ' &&
                          text[off + f->name_len] != '\t';
         f->name_len++)
        ;
    for (i = colon;;) {
        const char *nl = memchr(text + i, '\n', len - i);
        i = nl ? (size_t)(nl - text) + 1 : len;
        if (i >= len || (text[i] != ' ' && text[i] != '\t'))
            break;
    }
    f->end = i;
    return true;
}

void
milter_edits_header(struct milter_edits *m, enum milter_edit_kind kind, uint32_t index,
                    const char *name, const char *value)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4;
        m->e = xrealloc(m->e, m->cap * sizeof(*m->e));
    }
    m->e[m->n++] = (struct milter_edit){kind, index, xstrdup(name), xstrdup(value)};
    m->bytes += strlen(name) + strlen(value) + 4;
}

void
milter_edits_body(struct milter_edits *m, const char *p, size_t n)
{
    m->body = xrealloc(m->body, m->body_len + n + 1);
    for (size_t i = 0; i < n; i++)
        if (!(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n'))
            m->body[m->body_len++] = p[i];
    m->body_set = true;
    m->bytes += n;
}

size_t
milter_edits_bytes(const struct milter_edits *m)
{
    return m->bytes;
}

bool
milter_edits_any(const struct milter_edits *m)
{
    return m->n > 0 || m->body_set;
}

void
milter_edits_clear(struct milter_edits *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].name);
        free(m->e[i].value);
    }
    free(m->e);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

/* a field of the new header: a slice of the old text, or a new one (own) */
struct milter_slot {
    const char *p;
    size_t n;
    char *own;
};

struct milter_slots {
    struct milter_slot *v;
    size_t n, cap;
};

static void
milter_slot_insert(struct milter_slots *s, size_t at, const char *p, size_t n, char *own)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    if (at > s->n)
        at = s->n;
    memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof(*s->v));
    s->v[at] = (struct milter_slot){p, n, own};
    s->n++;
}

/* milter_field_text - "name: value\n" with CRLF in value made LF. */
static char *
milter_field_text(const char *name, const char *value, bool leadspc, size_t *n)
{
    size_t nl = strlen(name), vl = strlen(value), o;
    char *t = xmalloc(nl + vl + 4);

    memcpy(t, name, nl);
    o = nl;
    t[o++] = ':';
    if (!leadspc)
        t[o++] = ' ';
    for (size_t i = 0; i < vl; i++)
        if (!(value[i] == '\r' && value[i + 1] == '\n'))
            t[o++] = value[i];
    t[o++] = '\n';
    *n = o;
    return t;
}

/* milter_slot_name_is - the slot is a field named name (any case). */
static bool
milter_slot_name_is(const struct milter_slot *s, const char *name)
{
    size_t nl = strlen(name);

    return s->n > nl && strncasecmp(s->p, name, nl) == 0 &&
           (s->p[nl] == ':' || s->p[nl] == ' ' || s->p[nl] == '\t');
}

char *
milter_edit_apply(const char *text, size_t len, const struct milter_edits *m, bool leadspc,
                  size_t *outlen)
{
    struct milter_slots s = {0};
    struct milter_field f;
    size_t off = 0, body, blen, o = 0, total = 0;
    const char *bp;
    char *out;

    while (milter_field_next(text, len, off, &f, &body)) {
        milter_slot_insert(&s, s.n, text + f.start, f.end - f.start, NULL);
        off = f.end;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct milter_edit *e = &m->e[i];
        size_t n, at = s.n;
        uint32_t seen = 0, want = e->index ? e->index : 1;
        char *t;
        if (e->kind == ME_CHANGE) {
            for (at = 0; at < s.n; at++)
                if (milter_slot_name_is(&s.v[at], e->name) && ++seen == want)
                    break;
            if (at < s.n) {
                free(s.v[at].own);
                memmove(s.v + at, s.v + at + 1, (s.n - at - 1) * sizeof(*s.v));
                s.n--;
            }
            if (e->value[0] == '\0')
                continue;
        } else if (e->kind == ME_INSERT) {
            at = e->index;
        }
        t = milter_field_text(e->name, e->value, leadspc, &n);
        milter_slot_insert(&s, at, t, n, t);
    }
    bp = m->body_set ? m->body : text + body;
    blen = m->body_set ? m->body_len : len - body;
    for (size_t i = 0; i < s.n; i++)
        total += s.v[i].n;
    out = xmalloc(total + blen + 2);
    for (size_t i = 0; i < s.n; i++) {
        memcpy(out + o, s.v[i].p, s.v[i].n);
        o += s.v[i].n;
        free(s.v[i].own);
    }
    free(s.v);
    out[o++] = '\n';
    if (blen > 0)
        memcpy(out + o, bp, blen);
    o += blen;
    if (m->body_set && blen > 0 && bp[blen - 1] != '\n')
        out[o++] = '\n';
    *outlen = o;
    return out;
}
