/*
 * digest_build - one issue's text, MIME or RFC 1153 (see digest_build.h).
 */
#include "digest_build.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "drop.h"
#include "lists.h"
#include "mime.h"
#include "msg.h"
#include "xmem.h"

#define DIGEST_RULE "------------------------------" /* RFC 1153: 30 dashes */

/* One post of the issue. */
struct digest_post {
    char *text; /* malloc'd, unquoted, no X-UIDL */
    size_t len;
};

/* digest_split - the posts of the mbox; *n gets their number. */
static struct digest_post *
digest_split(const char *mbox, size_t len, size_t *n)
{
    struct digest_post *v = NULL;
    size_t cap = 0, i = 0, start = (size_t)-1;

    *n = 0;
    while (i <= len) {
        bool from = i < len && len - i >= 5 && memcmp(mbox + i, "From ", 5) == 0 &&
                    (i == 0 || (i >= 2 && mbox[i - 1] == '\n' && mbox[i - 2] == '\n'));
        if (from || i == len) {
            if (start != (size_t)-1) {
                size_t e = i;
                if (e > start && mbox[e - 1] == '\n' && e - 1 > start && mbox[e - 2] == '\n')
                    e--; /* the separating blank line */
                if (*n == cap) {
                    cap = cap ? cap * 2 : 16;
                    v = xrealloc(v, cap * sizeof(*v));
                }
                v[*n].text = xstrndup(mbox + start, e - start);
                v[*n].len = drop_mboxrd_unquote(v[*n].text, e - start);
                if (strncasecmp(v[*n].text, "X-UIDL:", 7) == 0) {
                    char *nl = memchr(v[*n].text, '\n', v[*n].len);
                    size_t cut = nl != NULL ? (size_t)(nl - v[*n].text) + 1 : v[*n].len;
                    memmove(v[*n].text, v[*n].text + cut, v[*n].len - cut);
                    v[*n].len -= cut;
                    v[*n].text[v[*n].len] = '\0';
                }
                (*n)++;
            }
            if (i == len)
                break;
            {
                const char *nl = memchr(mbox + i, '\n', len - i);
                i = nl != NULL ? (size_t)(nl - mbox) + 1 : len;
                start = i;
            }
            continue;
        }
        {
            const char *nl = memchr(mbox + i, '\n', len - i);
            i = nl != NULL ? (size_t)(nl - mbox) + 1 : len;
        }
    }
    return v;
}

/* digest_field - a header of the post as one UTF-8 line. */
static char *
digest_field(const struct digest_post *p, const char *name)
{
    return mime_field(p->text, msg_body(p->text, p->len), name);
}

/* digest_headers - the issue's own headers. */
static void
digest_headers(struct buf *b, const struct lists_def *def, const char *domain, long n, time_t now,
               const char *subject)
{
    char date[64];
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf_printf(b,
               "From: %s-request@%s\nTo: %s@%s\nSubject: %s\nDate: %s\n"
               "Message-ID: <digest.%ld.%s@%s>\nList-Id: <%s.%s>\nPrecedence: list\n"
               "MIME-Version: 1.0\n",
               def->name, domain, def->name, domain, subject, date, n, def->name, domain, def->name,
               domain);
}

/* digest_text_part - mime_walk's callback for RFC 1153: text shown, the rest named. */
static void
digest_text_part(const struct mime_part *p, void *arg)
{
    struct buf *b = arg;

    if (strcmp(p->type, "text/plain") == 0) {
        size_t n;
        char *u = mime_utf8(p->charset, p->body, p->len, &n);
        for (char *line = u; line < u + n;) {
            char *nl = memchr(line, '\n', (size_t)(u + n - line));
            size_t l = nl != NULL ? (size_t)(nl - line) : (size_t)(u + n - line);
            if (l == strlen(DIGEST_RULE) && memcmp(line, DIGEST_RULE, l) == 0)
                buf_append(b, " ", 1);
            buf_append(b, line, l);
            buf_append(b, "\n", 1);
            line += l + 1;
        }
        free(u);
    } else
        buf_printf(b, "[not included: %s%s%s]\n", p->type, p->name[0] != '\0' ? " " : "", p->name);
}

/* digest_contents - the table of contents: one subject a line. */
static void
digest_contents(struct buf *b, const struct digest_post *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *s = digest_field(&v[i], "Subject"), *f = digest_field(&v[i], "From");
        buf_printf(b, "  %zu. %s (%s)\n", i + 1, s[0] != '\0' ? s : "(no subject)", f);
        free(s);
        free(f);
    }
}

/* digest_rfc1153 - the plain text issue. */
static void
digest_rfc1153(struct buf *b, const struct lists_def *def, const char *domain, long n, time_t now,
               const struct digest_post *v, size_t np)
{
    char subject[200], date[64];
    struct tm tm;

    snprintf(subject, sizeof(subject), "%s Digest V1 #%ld", def->name, n);
    digest_headers(b, def, domain, n, now, subject);
    buf_printf(b, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y", &tm);
    buf_printf(b, "%s Digest\t\t%s\t\tVolume 1 : Issue %ld\n\nToday's Topics:\n\n", def->name, date,
               n);
    digest_contents(b, v, np);
    buf_printf(b, "\n----------------------------------------------------------------------\n\n");
    for (size_t i = 0; i < np; i++) {
        static const char *const show[] = {"Date", "From", "Subject"};
        for (int k = 0; k < 3; k++) {
            char *f = digest_field(&v[i], show[k]);
            buf_printf(b, "%s: %s\n", show[k], f);
            free(f);
        }
        buf_printf(b, "\n");
        mime_walk(v[i].text, v[i].len, digest_text_part, b);
        buf_printf(b, "\n" DIGEST_RULE "\n\n");
    }
    snprintf(subject, sizeof(subject), "End of %s Digest V1 #%ld", def->name, n);
    buf_printf(b, "%s\n", subject);
    for (size_t i = 0; i < strlen(subject); i++)
        buf_append(b, "*", 1);
    buf_append(b, "\n", 1);
}

/* digest_boundary_ok - no line of the posts starts with "--" boundary. */
static bool
digest_boundary_ok(const char *boundary, const struct digest_post *v, size_t n)
{
    char probe[128];

    snprintf(probe, sizeof(probe), "\n--%s", boundary);
    for (size_t i = 0; i < n; i++)
        if (memmem(v[i].text, v[i].len, probe, strlen(probe)) != NULL ||
            (v[i].len >= strlen(probe) - 1 && memcmp(v[i].text, probe + 1, strlen(probe) - 1) == 0))
            return false;
    return true;
}

/* digest_mime - the multipart issue. */
static void
digest_mime(struct buf *b, const struct lists_def *def, const char *domain, long n, time_t now,
            const struct digest_post *v, size_t np)
{
    char subject[200], outer[96], inner[96];
    unsigned k = 0;

    do { /* deterministic, so a rebuilt issue is the same */
        snprintf(outer, sizeof(outer), "=_dlist_%s_%ld_%u_mixed", def->name, n, k);
        snprintf(inner, sizeof(inner), "=_dlist_%s_%ld_%u_digest", def->name, n, k);
        k++;
    } while (!(digest_boundary_ok(outer, v, np) && digest_boundary_ok(inner, v, np)));
    snprintf(subject, sizeof(subject), "%s digest, issue %ld", def->name, n);
    digest_headers(b, def, domain, n, now, subject);
    buf_printf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", outer);
    buf_printf(b, "This is a MIME digest of the list %s: %zu message%s.\n\n--%s\n", def->name, np,
               np == 1 ? "" : "s", outer);
    buf_printf(b,
               "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
               "Content-Description: Today's Topics\n\n%s digest, issue %ld\n\nToday's Topics:\n\n",
               def->name, n);
    digest_contents(b, v, np);
    buf_printf(b, "\n--%s\nContent-Type: multipart/digest; boundary=\"%s\"\n\n", outer, inner);
    for (size_t i = 0; i < np; i++) {
        /* in a multipart/digest a part is message/rfc822 by default (RFC 2046 5.1.5) */
        buf_printf(b, "--%s\n\n", inner);
        buf_append(b, v[i].text, v[i].len);
        if (v[i].len == 0 || v[i].text[v[i].len - 1] != '\n')
            buf_append(b, "\n", 1);
    }
    buf_printf(b, "--%s--\n\n--%s--\n", inner, outer);
}

void
digest_build(const struct lists_def *def, const char *domain, long n, const char *mbox, size_t len,
             time_t now, struct buf *b)
{
    size_t np;
    struct digest_post *v = digest_split(mbox, len, &np);

    if (def->digest_mime)
        digest_mime(b, def, domain, n, now, v, np);
    else
        digest_rfc1153(b, def, domain, n, now, v, np);
    for (size_t i = 0; i < np; i++)
        free(v[i].text);
    free(v);
}
