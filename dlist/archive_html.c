/*
 * archive_html - the static HTML archive, updated one message at a time (see
 * archive_html.h).
 */
#include "archive_html.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "lists.h"
#include "mime.h"
#include "msg.h"
#include "xmem.h"

#define HTML_PAGE_MAX ((size_t)256 << 20)
#define HTML_DEPTH_MAX 30 /* thread indentation stops here */

/* One line of msgs.dat. */
struct html_entry {
    long n, parent;
    long long when;
    char *msgid, *from, *subject;
};

struct html_month {
    size_t n, cap;
    struct html_entry *v;
    char *text; /* msgs.dat, the entries point into it */
};

void
archive_html_esc(struct buf *b, const char *s, size_t len)
{
    size_t run = 0;

    for (size_t i = 0; i < len; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            continue;
        }
        buf_append(b, s + run, i - run);
        buf_append(b, e, strlen(e));
        run = i + 1;
    }
    buf_append(b, s + run, len - run);
}

/* html_esc_str - a NUL-terminated string escaped. */
static void
html_esc_str(struct buf *b, const char *s)
{
    archive_html_esc(b, s, strlen(s));
}

/* html_head - a page's beginning, title escaped. */
static void
html_head(struct buf *b, const char *title)
{
    buf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                  "style-src 'unsafe-inline'\">\n"
                  "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    html_esc_str(b, title);
    buf_printf(b, "</title>\n</head>\n<body>\n");
}

/* html_msgid - the first <...> of s (no blanks, no tabs) malloc'd, or "" when none; *next
 * after it. */
static char *
html_msgid(const char *s, const char **next)
{
    const char *a = strchr(s, '<'), *z;

    if (a == NULL || (z = strchr(a, '>')) == NULL) {
        *next = s + strlen(s);
        return xstrdup("");
    }
    *next = z + 1;
    if (strcspn(a, " \t\n") < (size_t)(z - a))
        return xstrdup("");
    return xstrndup(a, (size_t)(z - a + 1));
}

/* html_load - dir/msgs.dat into m (missing: empty). A torn last line is cut off the file. */
static int
html_load(const char *path, struct html_month *m)
{
    size_t len;
    char *p;

    memset(m, 0, sizeof(*m));
    if (file_read_all(path, HTML_PAGE_MAX, &m->text, &len) < 0) {
        if (errno != ENOENT)
            return -1;
        m->text = xstrdup("");
        return 0;
    }
    if (len > 0 && m->text[len - 1] != '\n') {
        char *last = memrchr(m->text, '\n', len);
        size_t keep = last != NULL ? (size_t)(last - m->text) + 1 : 0;
        if (truncate(path, (off_t)keep) < 0)
            return -1;
        m->text[keep] = '\0';
    }
    for (p = m->text; *p != '\0';) {
        char *nl = strchr(p, '\n'), *f[6];
        int k = 0;
        if (nl == NULL)
            break;
        *nl = '\0';
        f[k++] = p;
        for (char *q = p; *q != '\0' && k < 6; q++)
            if (*q == '\t') {
                *q = '\0';
                f[k++] = q + 1;
            }
        if (k == 6) {
            if (m->n == m->cap) {
                m->cap = m->cap ? m->cap * 2 : 64;
                m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
            }
            m->v[m->n++] =
                (struct html_entry){atol(f[0]), atol(f[3]), atoll(f[1]), f[2], f[4], f[5]};
        }
        p = nl + 1;
    }
    return 0;
}

/* html_nav - the links every month page has. */
static void
html_nav(struct buf *b)
{
    buf_printf(b, "<p class=\"nav\"><a href=\"date.html\">by date</a> | "
                  "<a href=\"thread.html\">by thread</a> | "
                  "<a href=\"../index.html\">all months</a></p>\n");
}

/* html_start - a month page's beginning: head, heading, the links. */
static void
html_start(struct buf *b, const char *title)
{
    html_head(b, title);
    buf_printf(b, "<h1>");
    html_esc_str(b, title);
    buf_printf(b, "</h1>\n");
    html_nav(b);
}

/* html_when - a time as "YYYY-MM-DD HH:MM" UTC. */
static void
html_when(long long when, char *buf, size_t len)
{
    time_t t = (time_t)when;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
}

/* html_item - one index entry: time, linked subject, from. */
static void
html_item(struct buf *b, const struct html_entry *e, int depth)
{
    char when[32];

    html_when(e->when, when, sizeof(when));
    if (depth > 0)
        buf_printf(b, "<li style=\"margin-left:%dem\">", depth * 2);
    else
        buf_printf(b, "<li>");
    buf_printf(b, "<a href=\"%ld.html\">", e->n);
    html_esc_str(b, e->subject[0] != '\0' ? e->subject : "(no subject)");
    buf_printf(b, "</a> <span class=\"from\">");
    html_esc_str(b, e->from);
    buf_printf(b, "</span> <span class=\"date\">%s</span></li>\n", when);
}

/* html_indexes - the month's date.html and thread.html. */
static int
html_indexes(const char *mdir, const struct lists_def *def, const char *month,
             const struct html_month *m)
{
    struct buf b;
    char title[256], path[4400];
    long *first, *next, *stack, *depth;
    size_t top = 0;
    int rc;

    snprintf(title, sizeof(title), "%s archive %s, by date", def->name, month);
    buf_init(&b, HTML_PAGE_MAX);
    html_start(&b, title);
    buf_printf(&b, "<ul class=\"date\">\n");
    for (size_t i = 0; i < m->n; i++)
        html_item(&b, &m->v[i], 0);
    buf_printf(&b, "</ul>\n</body>\n</html>\n");
    snprintf(path, sizeof(path), "%s/date.html", mdir);
    rc = file_write_atomic(path, buf_peek(&b), b.len, 0644);
    buf_free(&b);
    if (rc < 0)
        return -1;

    /* thread order: entries are by N; a parent is always an earlier entry */
    first = xcalloc(m->n + 1, sizeof(long));
    next = xcalloc(m->n + 1, sizeof(long));
    depth = xcalloc(m->n + 1, sizeof(long));
    stack = xcalloc(m->n + 1, sizeof(long));
    for (size_t i = m->n; i-- > 0;) {
        long p = m->v[i].parent;
        if (p > 0 && (size_t)p <= m->n && p < m->v[i].n) {
            next[i + 1] = first[p];
            first[p] = (long)i + 1;
        }
    }
    snprintf(title, sizeof(title), "%s archive %s, by thread", def->name, month);
    buf_init(&b, HTML_PAGE_MAX);
    html_start(&b, title);
    buf_printf(&b, "<ul class=\"thread\">\n");
    for (size_t i = m->n; i-- > 0;) { /* roots, pushed so the first pops first */
        long p = m->v[i].parent;
        if (!(p > 0 && (size_t)p <= m->n && p < m->v[i].n))
            stack[top++] = (long)i + 1;
    }
    while (top > 0) {
        long k = stack[--top], kids = 0;
        html_item(&b, &m->v[k - 1], (int)depth[k]);
        for (long c = first[k]; c != 0; c = next[c])
            kids++;
        /* push the children in reverse, so they come out in order */
        for (long c = first[k], j = 0; c != 0; c = next[c], j++) {
            stack[top + (size_t)(kids - 1 - j)] = c;
            depth[c] = depth[k] < HTML_DEPTH_MAX ? depth[k] + 1 : HTML_DEPTH_MAX;
        }
        top += (size_t)kids;
    }
    buf_printf(&b, "</ul>\n</body>\n</html>\n");
    snprintf(path, sizeof(path), "%s/thread.html", mdir);
    rc = file_write_atomic(path, buf_peek(&b), b.len, 0644);
    buf_free(&b);
    free(first);
    free(next);
    free(depth);
    free(stack);
    return rc;
}

/* html_top - index.html: the months, newest first. */
static int
html_top(const char *hdir, const struct lists_def *def)
{
    struct buf b;
    char title[256], path[4400];
    size_t n;
    char **names = file_dir_names(hdir, NULL, &n);
    int rc;

    if (names == NULL)
        return -1;
    snprintf(title, sizeof(title), "%s archive", def->name);
    buf_init(&b, HTML_PAGE_MAX);
    html_head(&b, title);
    buf_printf(&b, "<h1>");
    html_esc_str(&b, title);
    buf_printf(&b, "</h1>\n");
    if (def->title[0] != '\0') {
        buf_printf(&b, "<p>");
        html_esc_str(&b, def->title);
        buf_printf(&b, "</p>\n");
    }
    buf_printf(&b, "<ul class=\"months\">\n");
    for (size_t i = n; i-- > 0;) {
        /* only month directories: names are YYYY-MM, nothing to escape */
        if (strlen(names[i]) == 7 && names[i][4] == '-' && strspn(names[i], "0123456789-") == 7)
            buf_printf(&b,
                       "<li>%s: <a href=\"%s/date.html\">by date</a> | "
                       "<a href=\"%s/thread.html\">by thread</a></li>\n",
                       names[i], names[i], names[i]);
        free(names[i]);
    }
    free(names);
    buf_printf(&b, "</ul>\n</body>\n</html>\n");
    snprintf(path, sizeof(path), "%s/index.html", hdir);
    rc = file_write_atomic(path, buf_peek(&b), b.len, 0644);
    buf_free(&b);
    return rc;
}

/* One message page being written. */
struct html_page {
    struct buf *b;
    size_t shown, listed;
};

/* html_part - mime_walk's callback: text/plain shown, the rest listed. */
static void
html_part(const struct mime_part *p, void *arg)
{
    struct html_page *pg = arg;
    struct buf *b = pg->b;

    if (strcmp(p->type, "text/plain") == 0) {
        size_t n, cut = p->len > ARCHIVE_HTML_TEXT_MAX ? ARCHIVE_HTML_TEXT_MAX : p->len;
        char *u = mime_utf8(p->charset, p->body, cut, &n);
        if (pg->shown++ > 0)
            buf_printf(b, "<hr>\n");
        buf_printf(b, "<pre class=\"body\">");
        archive_html_esc(b, u, n);
        if (cut < p->len)
            buf_printf(b, "\n[... %zu more bytes not shown]", p->len - cut);
        buf_printf(b, "</pre>\n");
        free(u);
        return;
    }
    if (pg->listed++ == 0)
        buf_printf(b, "<ul class=\"parts\">\n");
    buf_printf(b, "<li>not shown: ");
    html_esc_str(b, p->type);
    if (p->name[0] != '\0') {
        buf_printf(b, " &quot;");
        html_esc_str(b, p->name);
        buf_printf(b, "&quot;");
    }
    buf_printf(b, ", %zu bytes</li>\n", p->len);
}

/* html_page - the message's page N.html. */
static int
html_page(const char *mdir, const struct lists_def *def, const struct html_entry *e,
          const struct html_entry *parent, const char *text, size_t len, size_t hlen)
{
    static const char *const show[] = {"From", "To", "Cc", "Date", "Subject", "Message-ID"};
    struct buf b;
    struct html_page pg = {&b, 0, 0};
    char path[4400];
    int rc;

    buf_init(&b, HTML_PAGE_MAX);
    html_head(&b, e->subject[0] != '\0' ? e->subject : "(no subject)");
    html_nav(&b);
    buf_printf(&b, "<h1>");
    html_esc_str(&b, e->subject[0] != '\0' ? e->subject : "(no subject)");
    buf_printf(&b, "</h1>\n<table class=\"headers\">\n");
    for (size_t i = 0; i < sizeof(show) / sizeof(show[0]); i++) {
        char *v = mime_field(text, hlen, show[i]);
        if (v[0] != '\0') {
            buf_printf(&b, "<tr><th>%s</th><td>", show[i]);
            html_esc_str(&b, v);
            buf_printf(&b, "</td></tr>\n");
        }
        free(v);
    }
    buf_printf(&b, "</table>\n");
    if (parent != NULL) {
        buf_printf(&b, "<p class=\"reply\">In reply to <a href=\"%ld.html\">", parent->n);
        html_esc_str(&b, parent->subject[0] != '\0' ? parent->subject : "(no subject)");
        buf_printf(&b, "</a></p>\n");
    }
    mime_walk(text, len, html_part, &pg);
    if (pg.listed > 0)
        buf_printf(&b, "</ul>\n");
    buf_printf(&b, "</body>\n</html>\n");
    snprintf(path, sizeof(path), "%s/%ld.html", mdir, e->n);
    (void)def;
    rc = file_write_atomic(path, buf_peek(&b), b.len, 0644);
    buf_free(&b);
    return rc;
}

/* html_parent - the entry the message answers: In-Reply-To, else the last References
 * entry found in the month; NULL when none. */
static const struct html_entry *
html_parent(const struct html_month *m, const char *text, size_t hlen)
{
    const char *names[] = {"In-Reply-To", "References"};
    const struct html_entry *found = NULL;

    for (int h = 0; h < 2 && found == NULL; h++) {
        char *v = mime_header(text, hlen, names[h]);
        const char *p = v;
        while (p != NULL && *p != '\0') {
            char *id = html_msgid(p, &p);
            for (size_t i = 0; id[0] != '\0' && i < m->n; i++)
                if (strcmp(m->v[i].msgid, id) == 0)
                    found = &m->v[i]; /* the last match of References wins */
            free(id);
            if (h == 0 && found != NULL)
                break;
        }
        free(v);
    }
    return found;
}

int
archive_html_add(const char *dir, const struct lists_def *def, const char *month, const char *text,
                 size_t len, time_t when, char *err, size_t errlen)
{
    char hdir[4200], mdir[4300], path[4400];
    struct html_month m;
    struct html_entry e = {0};
    const struct html_entry *parent;
    struct stat st;
    size_t hlen = msg_body(text, len);
    char *mid_raw, *line = NULL;
    const char *dummy;
    bool new_month;
    int lock = -1, rc = -1, fd;

    snprintf(hdir, sizeof(hdir), "%s/html", dir);
    snprintf(mdir, sizeof(mdir), "%s/%s", hdir, month);
    new_month = stat(mdir, &st) < 0;
    if (file_mkdirs(mdir, 0755) < 0) {
        snprintf(err, errlen, "%s: %s", mdir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/.lock", hdir);
    if ((lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
        flock(lock, LOCK_EX) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/msgs.dat", mdir);
    if (html_load(path, &m) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    e.n = m.n > 0 ? m.v[m.n - 1].n + 1 : 1;
    e.when = (long long)when;
    mid_raw = mime_header(text, hlen, "Message-ID");
    e.msgid = html_msgid(mid_raw != NULL ? mid_raw : "", &dummy);
    free(mid_raw);
    e.from = mime_field(text, hlen, "From");
    e.subject = mime_field(text, hlen, "Subject");
    parent = html_parent(&m, text, hlen);
    e.parent = parent != NULL ? parent->n : 0;
    if (html_page(mdir, def, &e, parent, text, len, hlen) < 0) {
        snprintf(err, errlen, "%s/%ld.html: %s", mdir, e.n, strerror(errno));
        goto out_entry;
    }
    line = xasprintf("%ld\t%lld\t%s\t%ld\t%s\t%s\n", e.n, e.when, e.msgid, e.parent, e.from,
                     e.subject);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || file_write_all(fd, line, strlen(line)) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out_entry;
    }
    close(fd);
    if (m.n == m.cap) {
        m.cap = m.cap ? m.cap * 2 : 64;
        m.v = xrealloc(m.v, m.cap * sizeof(*m.v));
    }
    m.v[m.n++] = e;
    snprintf(path, sizeof(path), "%s/index.html", hdir);
    if (html_indexes(mdir, def, month, &m) < 0 ||
        ((new_month || access(path, F_OK) < 0) && html_top(hdir, def) < 0)) {
        m.n--;
        snprintf(err, errlen, "%s: index pages: %s", mdir, strerror(errno));
        goto out_entry;
    }
    m.n--;
    rc = 0;
out_entry:
    free(line);
    free(e.msgid);
    free(e.from);
    free(e.subject);
    free(m.v);
    free(m.text);
out:
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}
