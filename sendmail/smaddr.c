/*
 * smaddr - addresses out of RFC 5322 address-list header values.
 *
 * One pass over the value with an explicit state: plain text, inside a quoted string,
 * inside a (nested) comment, inside an angle address. Top-level ',' ends an element,
 * ':' starts a group (what came before it was the group's name), ';' ends one. An
 * element's address is its angle address if it had one, else its text without comments.
 */
#include "smaddr.h"

#include "xmem.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer for the element being scanned. */
struct smaddr_buf {
    char *s;
    size_t len, cap;
};

/* smaddr_buf_add - append one byte. */
static void
smaddr_buf_add(struct smaddr_buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->s = xrealloc(b->s, b->cap);
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

/* smaddr_trim - strip white space (including folding line ends) at both ends; returns the
 * start and sets *len. */
static const char *
smaddr_trim(const char *s, size_t *len)
{
    size_t n = *len;

    while (n > 0 && strchr(" \t\r\n", *s) != NULL) {
        s++;
        n--;
    }
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
        n--;
    *len = n;
    return s;
}

/* smaddr_strip_route - "@a,@b:local@dom" to "local@dom" (RFC 5321 source route). */
static const char *
smaddr_strip_route(const char *s)
{
    bool bracket = false;

    if (*s != '@')
        return s;
    for (const char *p = s; *p; p++) {
        if (*p == '[')
            bracket = true;
        else if (*p == ']')
            bracket = false;
        else if (*p == ':' && !bracket)
            return p + 1;
    }
    return s;
}

/* smaddr_push - finish an element: append its address (if any) to out. */
static void
smaddr_push(struct smaddr_list *out, struct smaddr_buf *text, struct smaddr_buf *angle,
            bool had_angle)
{
    const char *s;
    size_t n;

    if (had_angle) {
        s = angle->s ? smaddr_strip_route(angle->s) : "";
        n = strlen(s);
    } else {
        s = text->s ? text->s : "";
        n = text->len;
    }
    s = smaddr_trim(s, &n);
    if (n > 0) {
        out->v = xrealloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = xstrndup(s, n);
    }
    text->len = angle->len = 0;
    if (text->s)
        text->s[0] = '\0';
    if (angle->s)
        angle->s[0] = '\0';
}

enum smaddr_state { SA_TEXT, SA_QUOTE, SA_COMMENT, SA_ANGLE, SA_ANGLE_QUOTE };

/* smaddr_extract - append the addresses of the header value val[0..len) to out. */
int
smaddr_extract(const char *val, size_t len, struct smaddr_list *out, char *err, size_t errlen)
{
    struct smaddr_buf text = {0}, angle = {0};
    enum smaddr_state st = SA_TEXT, before_comment = SA_TEXT;
    int depth = 0;
    bool had_angle = false, in_group = false;
    const char *reason = NULL;

    for (size_t i = 0; i < len && reason == NULL; i++) {
        char c = val[i];
        struct smaddr_buf *cur = st == SA_ANGLE || st == SA_ANGLE_QUOTE ? &angle : &text;

        switch (st) {
        case SA_QUOTE:
        case SA_ANGLE_QUOTE:
            smaddr_buf_add(cur, c);
            if (c == '\\' && i + 1 < len)
                smaddr_buf_add(cur, val[++i]);
            else if (c == '"')
                st = st == SA_QUOTE ? SA_TEXT : SA_ANGLE;
            break;
        case SA_COMMENT:
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')' && --depth == 0) {
                st = before_comment;
                smaddr_buf_add(st == SA_ANGLE ? &angle : &text, ' ');
            }
            break;
        case SA_ANGLE:
            if (c == '>')
                st = SA_TEXT;
            else if (c == '"') {
                smaddr_buf_add(&angle, c);
                st = SA_ANGLE_QUOTE;
            } else if (c == '(') {
                before_comment = SA_ANGLE;
                st = SA_COMMENT;
                depth = 1;
            } else if (c == '<')
                reason = "'<' inside an angle address";
            else if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                smaddr_buf_add(&angle, c);
            break;
        case SA_TEXT:
            if (c == '"') {
                smaddr_buf_add(&text, c);
                st = SA_QUOTE;
            } else if (c == '(') {
                before_comment = SA_TEXT;
                st = SA_COMMENT;
                depth = 1;
            } else if (c == '<') {
                if (had_angle)
                    reason = "two angle addresses in one element";
                had_angle = true;
                angle.len = 0;
                st = SA_ANGLE;
            } else if (c == ',') {
                smaddr_push(out, &text, &angle, had_angle);
                had_angle = false;
            } else if (c == ':' && !had_angle && !in_group) {
                /* the text so far was a group's display name */
                text.len = 0;
                if (text.s)
                    text.s[0] = '\0';
                in_group = true;
            } else if (c == ';' && in_group) {
                smaddr_push(out, &text, &angle, had_angle);
                had_angle = false;
                in_group = false;
            } else {
                smaddr_buf_add(&text, c);
            }
            break;
        }
    }
    if (reason == NULL) {
        if (st == SA_QUOTE || st == SA_ANGLE_QUOTE)
            reason = "unterminated quoted string";
        else if (st == SA_COMMENT)
            reason = "unterminated comment";
        else if (st == SA_ANGLE)
            reason = "unterminated angle address";
        else
            smaddr_push(out, &text, &angle, had_angle);
    }
    free(text.s);
    free(angle.s);
    if (reason != NULL) {
        snprintf(err, errlen, "%s", reason);
        return -1;
    }
    return 0;
}

/* smaddr_free - release the list; it is empty afterwards. */
void
smaddr_free(struct smaddr_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
