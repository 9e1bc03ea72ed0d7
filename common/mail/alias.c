/*
 * alias - alias files into route.c tables, and their lookups. See alias.h.
 *
 * Each file is one route table: keys "local@domain" for a domain's file, "local@" for
 * the global one, the catch-all "*" as "@domain" / "@". An entry's text (its lines joined)
 * is cut at unquoted commas; each destination becomes an address or a type-byte entry
 * (route.h) of the list handed to route_add_list.
 */
#include "alias.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "addr.h"
#include "conf.h"
#include "conf_int.h"
#include "file.h"
#include "route.h"
#include "xmem.h"

#define ALIAS_LIST_MAX (ROUTE_EXPAND_MAX * (ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8) + 2)
#define ALIAS_INCLUDE_MAX (1u << 20) /* largest :include: file */
#define ALIAS_DIAG_MAX 50            /* problems of one file reported one by one */

struct alias_domain {
    char *domain;
    struct route *rt;
};

struct alias_set {
    const struct conf *cf;
    struct route *global;     /* alias_file */
    struct alias_domain *dom; /* alias_file_domain, in the order given */
    size_t ndom;
    bool fallthrough;
};

/* One entry's list being built. */
struct alias_list {
    char *buf;
    size_t len, count;
};

/* alias_trim - s without blanks on either side (the end cut in place). */
static char *
alias_trim(char *s)
{
    size_t n;

    s += strspn(s, " \t");
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* alias_cut - the end of the token at s: the first unquoted c (or the NUL). */
static char *
alias_cut(char *s, char c)
{
    bool quoted = false;

    for (; *s != '\0'; s++) {
        if (quoted && *s == '\\' && s[1] != '\0')
            s++;
        else if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == c)
            break;
    }
    return s;
}

/* alias_put - one entry (type byte, or 0 for none; then text) into the list. */
static int
alias_put(struct alias_list *l, char type, const char *text, char *reason, size_t len)
{
    size_t n = strlen(text) + (type ? 1 : 0);

    if (++l->count > ROUTE_EXPAND_MAX) {
        snprintf(reason, len, "more than %d destinations", ROUTE_EXPAND_MAX);
        return -1;
    }
    if (l->len + n + 2 > ALIAS_LIST_MAX) {
        snprintf(reason, len, "the destinations are too long");
        return -1;
    }
    if (type)
        l->buf[l->len++] = type;
    memcpy(l->buf + l->len, text, n - (type ? 1 : 0) + 1);
    l->len += n - (type ? 1 : 0) + 1;
    return 0;
}

/* alias_dest_addr - an address or bare local part into the list. */
static int
alias_dest_addr(struct alias_list *l, const char *tok, char *reason, size_t len)
{
    char err[100], out[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
    const char *at = alias_cut((char *)tok, '@');
    struct addr a;

    if (addr_parse_mailbox(tok, *at ? NULL : "alias.invalid", &a, err, sizeof(err)) < 0) {
        /* a destination may be as long as the line: name its start only */
        snprintf(reason, len, "destination '%.64s%s' is not an address (%s)", tok,
                 strlen(tok) > 64 ? "..." : "", err);
        return -1;
    }
    if (*at == '\0')
        return alias_put(l, ROUTE_D_LOCAL, a.local, reason, len);
    addr_format(&a, out, sizeof(out));
    return alias_put(l, 0, out, reason, len);
}

static int alias_dests(struct alias_list *l, char *s, const char *trusted_include, char *reason,
                       size_t len);

/* alias_include - the addresses of :include: file path (only when the alias file is
 * trusted, and the file is root's and not writable by others). */
static int
alias_include(struct alias_list *l, const char *path, char *reason, size_t len)
{
    struct stat st;
    char *text;
    size_t n;
    int rc;

    if (path[0] != '/') {
        snprintf(reason, len, ":include:%s: not an absolute path", path);
        return -1;
    }
    if (stat(path, &st) < 0 || file_read_all(path, ALIAS_INCLUDE_MAX, &text, &n) < 0) {
        snprintf(reason, len, ":include:%s: %s", path,
                 errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(reason, len, ":include:%s: refused: not owned by root, or group/world-writable",
                 path);
        free(text);
        return -1;
    }
    if (memchr(text, '\0', n) != NULL) {
        snprintf(reason, len, ":include:%s: holds a NUL byte", path);
        free(text);
        return -1;
    }
    for (char *p = text; *p != '\0'; p++) { /* comment lines out, newlines into commas */
        if (*p == '#' && (p == text || p[-1] == '\n'))
            while (*p != '\0' && *p != '\n')
                *p++ = ' ';
        if (*p == '\n')
            *p = ',';
        if (*p == '\0')
            break;
    }
    rc = alias_dests(l, text, NULL, reason, len);
    free(text);
    return rc;
}

/* alias_dests - the comma-separated destinations of s into the list; trusted_include: the
 * file's path when includes are honoured, "" when they are not, NULL inside an include. */
static int
alias_dests(struct alias_list *l, char *s, const char *trusted_include, char *reason, size_t len)
{
    while (*s != '\0') {
        char *end = alias_cut(s, ','), *tok;
        bool last = *end == '\0';
        *end = '\0';
        tok = alias_trim(s);
        s = last ? end : end + 1;
        if (*tok == '\0')
            continue;
        if (tok[0] == '"' && (tok[1] == '|' || tok[1] == '/') && strlen(tok) > 2 &&
            tok[strlen(tok) - 1] == '"') { /* "|command, with commas" */
            tok[strlen(tok) - 1] = '\0';
            tok++;
        }
        if (tok[0] == '|' || tok[0] == '/') {
            if (trusted_include == NULL) {
                snprintf(reason, len, "%s: programs and files are not allowed in :include:", tok);
                return -1;
            }
            if (tok[1] == '\0') {
                snprintf(reason, len, "destination '%s' is empty", tok);
                return -1;
            }
            if (trusted_include[0] == '\0') {
                snprintf(reason, len,
                         "%s: refused: programs and files only in alias files owned "
                         "by root",
                         tok);
                return -1;
            }
            if (alias_put(l, tok[0] == '|' ? ROUTE_D_PROGRAM : ROUTE_D_FILE, tok, reason, len) < 0)
                return -1;
        } else if (strncmp(tok, ":include:", 9) == 0) {
            if (trusted_include == NULL) {
                snprintf(reason, len, ":include: does not nest");
                return -1;
            }
            if (trusted_include[0] == '\0') {
                snprintf(reason, len, "%s: refused: the alias file is not owned by root", tok);
                return -1;
            }
            if (alias_include(l, alias_trim(tok + 9), reason, len) < 0)
                return -1;
        } else if (alias_dest_addr(l, tok, reason, len) < 0) {
            return -1;
        }
    }
    return 0;
}

/* alias_entry - one entry "name: dests" of file:line into *rt. */
static int
alias_entry(struct route **rt, const char *file, int line, const char *domain, char *s,
            bool trusted, char *buf, char *reason, size_t len)
{
    char *colon = alias_cut(s, ':'), *name, err[100], local[ADDR_LOCAL_MAX * 2 + 3];
    struct alias_list l = {buf, 0, 0};
    struct addr a;

    if (*colon == '\0') {
        snprintf(reason, len, "write NAME: DESTINATION[, DESTINATION...]");
        return -1;
    }
    *colon = '\0';
    name = alias_trim(s);
    if (strcmp(name, "*") == 0) {
        local[0] = '\0';
    } else if (*name == '\0' || *alias_cut(name, '@') != '\0' ||
               addr_parse_mailbox(name, "alias.invalid", &a, err, sizeof(err)) < 0) {
        snprintf(reason, len, "'%s' is not a local part", name);
        return -1;
    } else {
        addr_local_unquoted(&a, true, local, sizeof(local));
    }
    if (alias_dests(&l, colon + 1, trusted ? file : "", reason, len) < 0)
        return -1;
    if (l.count == 0) {
        snprintf(reason, len, "%s has no destination", name);
        return -1;
    }
    l.buf[l.len++] = '\0';
    return route_add_list(rt, file, line, local, domain, l.buf, l.len, "alias", reason, len);
}

/* alias_parse - every entry of one file's text. */
int
alias_parse(struct route **rt, const char *file, const char *domain, char *text, size_t len,
            bool trusted, struct conf_diag *diag)
{
    char *buf = xmalloc(ALIAS_LIST_MAX), reason[CONF_REASON_MAX];
    char *s = text, *end = text + len;
    int line = 0, errors = 0;

    while (s < end) {
        char *eol = memchr(s, '\n', (size_t)(end - s)), *e;
        int first = ++line;
        if (eol == NULL)
            eol = end;
        /* continuation lines (a blank first) and comment lines join the entry */
        while (eol < end && eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t' || eol[1] == '#')) {
            char *next = memchr(eol + 1, '\n', (size_t)(end - eol - 1));
            if (next == NULL)
                next = end;
            if (eol[1] == '#')
                memset(eol + 1, ' ', (size_t)(next - eol - 1));
            *eol = ' ';
            eol = next;
            line++;
        }
        e = s;
        s = eol + 1;
        if (eol < end)
            *eol = '\0';
        else
            *end = '\0'; /* text has room: callers give len + 1 bytes */
        if (memchr(e, '\0', (size_t)(eol - e)) != NULL) {
            if (errors++ < ALIAS_DIAG_MAX)
                conf_diag_add(diag, false, file, first, "line holds a NUL byte");
            continue;
        }
        e = alias_trim(e);
        if (*e == '\0' || *e == '#')
            continue;
        if (alias_entry(rt, file, first, domain, e, trusted, buf, reason, sizeof(reason)) < 0 &&
            errors++ < ALIAS_DIAG_MAX)
            conf_diag_add(diag, false, file, first, "%s", reason);
    }
    if (errors > ALIAS_DIAG_MAX)
        conf_diag_add(diag, false, file, 0, "%d more errors", errors - ALIAS_DIAG_MAX);
    free(buf);
    return errors + route_finish(*rt, diag);
}

/* alias_load - one file into *rt; the number of errors. */
static int
alias_load(struct route **rt, const char *path, const char *domain, const char *origin,
           struct conf_diag *diag)
{
    struct stat st;
    char *text;
    size_t len;
    int errors;

    if (strcmp(path, "/dev/null") == 0)
        return 0; /* no aliases */
    if (stat(path, &st) < 0 || file_read_all(path, ALIAS_FILE_MAX, &text, &len) < 0) {
        conf_diag_add(diag, false, origin, 0, "alias file %s: %s", path,
                      errno == EINVAL ? "not a regular file" : strerror(errno));
        return 1;
    }
    errors = alias_parse(rt, path, domain, text, len, st.st_uid == 0, diag);
    free(text);
    return errors;
}

/* alias_build - every alias file of c. */
struct alias_set *
alias_build(const struct conf *c, struct conf_diag *diag)
{
    struct alias_set *al;

    if ((c->alias_file == NULL || c->alias_file[0] == '\0') && c->alias_file_domain.n == 0 &&
        c->alias == NULL)
        return NULL;
    al = xcalloc(1, sizeof(*al));
    al->cf = c;
    al->fallthrough = c->alias_fallthrough;
    if (c->alias_file != NULL && c->alias_file[0] != '\0')
        alias_load(&al->global, c->alias_file, "", c->origin[CONF_alias_file], diag);
    al->dom = xcalloc(c->alias_file_domain.n + 1, sizeof(*al->dom));
    for (size_t i = 0; i < c->alias_file_domain.n; i++) {
        const char *v = c->alias_file_domain.v[i], *sp = strchr(v, ' ');
        struct alias_domain *d = &al->dom[al->ndom++];
        d->domain = xstrndup(v, (size_t)(sp - v));
        if (!conf_is_local_domain(c, d->domain))
            conf_diag_add(diag, true, c->origin[CONF_alias_file_domain], 0,
                          "alias_file_domain %s: not a host_domain, its file is never used",
                          d->domain);
        alias_load(&d->rt, sp + 1, d->domain, c->origin[CONF_alias_file_domain], diag);
    }
    return al;
}

/* alias_free - the set and its tables. */
void
alias_free(struct alias_set **alp)
{
    struct alias_set *al = *alp;

    if (al == NULL)
        return;
    *alp = NULL;
    route_free(&al->global);
    for (size_t i = 0; i < al->ndom; i++) {
        free(al->dom[i].domain);
        route_free(&al->dom[i].rt);
    }
    free(al->dom);
    free(al);
}

/* alias_count - entries in all tables. */
size_t
alias_count(const struct alias_set *al)
{
    size_t n;

    if (al == NULL)
        return 0;
    n = route_count(al->global) + route_count(al->cf->alias);
    for (size_t i = 0; i < al->ndom; i++)
        n += route_count(al->dom[i].rt);
    return n;
}

/* alias_domain_file - the table of domain's own file, or NULL; *has: there is one. */
static const struct route *
alias_domain_file(const struct alias_set *al, const char *domain, bool *has)
{
    for (size_t i = 0; i < al->ndom; i++)
        if (strcasecmp(al->dom[i].domain, domain) == 0) {
            *has = true;
            return al->dom[i].rt;
        }
    *has = false;
    return NULL;
}

/* alias_match - domain file, global file, wildcard alias. */
const char *
alias_match(const struct alias_set *al, const char *local, const char *domain)
{
    const char *l;
    bool has;
    const struct route *rt = alias_domain_file(al, domain, &has);

    if (local[0] == '\0')
        return NULL;
    if ((l = route_lookup(rt, local, domain)) != NULL)
        return l;
    if ((!has || al->fallthrough) && al->global != NULL && conf_is_local_domain(al->cf, domain) &&
        (l = route_lookup(al->global, local, "")) != NULL)
        return l;
    return route_glob_lookup(al->cf->alias, local, domain);
}

/* alias_catchall - domain file's "*", global file's "*", `alias *@domain`. */
const char *
alias_catchall(const struct alias_set *al, const char *domain)
{
    const char *l;
    bool has;
    const struct route *rt = alias_domain_file(al, domain, &has);

    if ((l = route_lookup(rt, "", domain)) != NULL)
        return l;
    if ((!has || al->fallthrough) && al->global != NULL && conf_is_local_domain(al->cf, domain) &&
        (l = route_lookup(al->global, "", "")) != NULL)
        return l;
    return route_lookup(al->cf->alias, "", domain);
}

/* alias_file_arg - "DOMAIN FILE" in either order into "domain file". */
char *
alias_file_arg(const char *value, char *reason, size_t len)
{
    char a[1024], b[1024], extra[2], dom[ADDR_DOMAIN_MAX + 1];
    const char *d, *f;

    if (sscanf(value, "%1023s %1023s %1s", a, b, extra) != 2) {
        snprintf(reason, len, "write alias_file_domain DOMAIN FILE");
        return NULL;
    }
    bool as = strchr(a, '/') != NULL, bs = strchr(b, '/') != NULL;
    if (as == bs) {
        snprintf(reason, len, "'%s': which is the file? write DOMAIN /path/to/file", value);
        return NULL;
    }
    d = as ? b : a;
    f = as ? a : b;
    if (addr_domain_normalize(d, dom, sizeof(dom)) < 0) {
        snprintf(reason, len, "'%s' is not a domain", d);
        return NULL;
    }
    return xasprintf("%s %s", dom, f);
}
