/*
 * smqual - bare addresses in address header values get the local domain.
 *
 * One pass with the states of smaddr.c (text, quoted string, nested comment, angle
 * address). Each element (ended by a top-level ',' or a group's ';') remembers its words
 * outside angle brackets and its angle address; at its end, where "@domain" would go is
 * recorded when the element is one plain word or has a plain angle address. The output is
 * the input with the domain inserted at those places.
 */
#include "smqual.h"

#include "xmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SMQUAL_MAX_INSERT 1024

enum smqual_state { SQ_TEXT, SQ_QUOTE, SQ_COMMENT, SQ_ANGLE, SQ_ANGLE_QUOTE };

/* What one element of the list held. */
struct smqual_elem {
    int words;            /* words outside angle brackets and comments */
    bool quoted;          /* a quoted string outside the angle address */
    bool sep;             /* the last thing seen was a separator: the next char starts a word */
    size_t word, wordend; /* the last word: val[word..wordend) */
    bool angle;           /* an angle address was seen */
    bool angle_odd;       /* it holds a comment or a quoted string */
    size_t lt, gt;        /* its '<' and '>' */
};

/* smqual_dot_atom - s[0..n) is a dot-atom without '@' (RFC 5322 3.2.3). */
static bool
smqual_dot_atom(const char *s, size_t n)
{
    static const char atext[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789!#$%&'*+-/=?^_`{|}~";

    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' ? s[i + 1] == '.' : strchr(atext, s[i]) == NULL || s[i] == '\0')
            return false;
    }
    return true;
}

/* smqual_end - the element is over: where its "@domain" goes, or 0 for none. */
static size_t
smqual_end(const char *val, struct smqual_elem *e)
{
    size_t at = 0;

    if (e->angle) {
        if (!e->angle_odd && smqual_dot_atom(val + e->lt + 1, e->gt - e->lt - 1))
            at = e->gt;
    } else if (e->words == 1 && !e->quoted &&
               smqual_dot_atom(val + e->word, e->wordend - e->word)) {
        at = e->wordend;
    }
    *e = (struct smqual_elem){.sep = true};
    return at;
}

/* smqual_value - val with "@domain" after each bare address; NULL if none or unparsable. */
char *
smqual_value(const char *val, size_t len, const char *domain)
{
    size_t at[SMQUAL_MAX_INSERT], nat = 0, dlen = strlen(domain), p;
    struct smqual_elem e = {.sep = true};
    enum smqual_state st = SQ_TEXT, before = SQ_TEXT;
    int depth = 0;
    bool group = false;
    char *out;

    for (size_t i = 0; i < len; i++) {
        char c = val[i];
        size_t pos = 0;

        if (c == '\0')
            return NULL;
        switch (st) {
        case SQ_QUOTE:
        case SQ_ANGLE_QUOTE:
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                st = st == SQ_QUOTE ? SQ_TEXT : SQ_ANGLE;
            break;
        case SQ_COMMENT:
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')' && --depth == 0)
                st = before;
            break;
        case SQ_ANGLE:
            if (c == '>') {
                e.gt = i;
                st = SQ_TEXT;
                e.sep = true;
            } else if (c == '"' || c == '(') {
                e.angle_odd = true;
                st = c == '"' ? SQ_ANGLE_QUOTE : SQ_COMMENT;
                before = SQ_ANGLE;
                depth = 1;
            } else if (c == '<') {
                return NULL;
            }
            break;
        case SQ_TEXT:
            if (c == '"') {
                e.quoted = true;
                st = SQ_QUOTE;
            } else if (c == '(') {
                before = SQ_TEXT;
                st = SQ_COMMENT;
                depth = 1;
                e.sep = true;
            } else if (c == '<') {
                if (e.angle)
                    return NULL;
                e.angle = true;
                e.lt = i;
                st = SQ_ANGLE;
            } else if (c == ',' || (c == ';' && group)) {
                pos = smqual_end(val, &e);
                group = c == ',' && group;
            } else if (c == ':' && !e.angle && !group) {
                e = (struct smqual_elem){.sep = true}; /* that was a group's name */
                group = true;
            } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                e.sep = true;
            } else {
                if (e.sep) {
                    e.words++;
                    e.word = i;
                    e.sep = false;
                }
                e.wordend = i + 1;
            }
            break;
        }
        if (pos > 0) {
            if (nat == SMQUAL_MAX_INSERT)
                return NULL;
            at[nat++] = pos;
        }
    }
    if (st != SQ_TEXT)
        return NULL;
    if ((p = smqual_end(val, &e)) > 0 && nat < SMQUAL_MAX_INSERT)
        at[nat++] = p;
    if (nat == 0)
        return NULL;
    out = xmalloc(len + nat * (dlen + 1) + 1);
    p = 0;
    for (size_t i = 0, k = 0; i <= len; i++) {
        while (k < nat && at[k] == i) {
            out[p++] = '@';
            memcpy(out + p, domain, dlen);
            p += dlen;
            k++;
        }
        if (i < len)
            out[p++] = val[i];
    }
    out[p] = '\0';
    return out;
}
