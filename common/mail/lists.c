/*
 * lists - lists.dat into a set of list definitions (see lists.h).
 */
#include "lists.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "conf.h"
#include "file.h"
#include "xmem.h"

#define LISTS_REASON_MAX 300

struct lists_parser {
    const char *file, *dir;
    int line;
    struct conf_diag *diag;
    struct lists_set *ls;
    struct lists_def *cur; /* the list being read, or NULL before the first */
    int errors;
};

static const char *const lists_rule_names[LISTS_NRULES] = {
    [LISTS_JOIN] = "access_join",   [LISTS_POST] = "access_post", [LISTS_WHO] = "access_who",
    [LISTS_LEAVE] = "access_leave", [LISTS_GET] = "access_get",   [LISTS_LIST] = "access_list",
};

/* lists_error - one file:line error. */
static void __attribute__((format(printf, 2, 3)))
lists_error(struct lists_parser *p, const char *fmt, ...)
{
    char reason[LISTS_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    conf_diag_add(p->diag, false, p->file, p->line, "%s", reason);
    p->errors++;
}

/* lists_bool - DMail's booleans. */
static int
lists_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

/* lists_count - a whole number 0..max into *out; 0, or -1 (*out unchanged). */
static int
lists_count(const char *v, long max, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);

    if (!isdigit((unsigned char)v[0]) || *end != '\0' || n > max)
        return -1;
    *out = n;
    return 0;
}

/* lists_size - bytes with K/M/G (KB/MB/GB, B) suffixes. */
static int
lists_size(const char *v, unsigned long long *out)
{
    char *end;
    unsigned long long n, mul = 1;

    if (!isdigit((unsigned char)v[0]))
        return -1;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        mul = 1024, end++;
        break;
    case 'M':
        mul = 1024 * 1024, end++;
        break;
    case 'G':
        mul = 1024ull * 1024 * 1024, end++;
        break;
    }
    if (toupper((unsigned char)*end) == 'B')
        end++;
    if (*end != '\0' || n > (1ull << 40) / mul)
        return -1;
    *out = n * mul;
    return 0;
}

/* lists_name_ok - a list name: [a-z0-9._+-], not one of the list's own suffixes. */
static const char *
lists_name_check(const char *name)
{
    static const char *const suffixes[] = {"-request", "-owner", "-bounces"};
    size_t n = strlen(name);

    if (n == 0 || n > LISTS_NAME_MAX)
        return "a list name has 1 to 64 characters";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && strchr("._+-", name[i]) == NULL)
            return "a list name has only letters, digits and . _ + -";
    if (name[0] == '.' || name[0] == '-' || name[n - 1] == '.')
        return "a list name does not begin with . or - nor end with .";
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcasecmp(name + n - k, suffixes[i]) == 0)
            return "a list name does not end in -request, -owner or -bounces (the list's own "
                   "addresses)";
    }
    if (strchr(name, '+') != NULL && strstr(name, "-bounces+") != NULL)
        return "a list name does not hold -bounces+";
    return NULL;
}

/* lists_defaults - a new list's settings (lists.h: safer than DMail where it says so). */
static void
lists_defaults(struct lists_def *d)
{
    d->title = xstrdup("");
    d->subject_prefix = xstrdup("");
    d->max_size = 1024 * 1024;
    d->status_interval = 7;
    d->join_cookie = true;
    d->digest_mime = true;
    d->digest_size = 30 * 1024;
    d->digest_interval = 24;
    d->bounce_score_threshold = 5; /* Mailman 3's defaults */
    d->bounce_stale_days = 7;
    d->bounce_warnings = 3;
    d->bounce_warn_interval = 7;
    d->access[LISTS_JOIN].who = LISTS_ANYONE;
    d->access[LISTS_POST].who = LISTS_MEMBERS;
    d->access[LISTS_WHO].who = LISTS_MEMBERS;
    d->access[LISTS_LEAVE].who = LISTS_MEMBERS;
    d->access[LISTS_GET].who = LISTS_MEMBERS;
    d->access[LISTS_LIST].who = LISTS_ANYONE;
}

/* lists_def_free - what one definition holds. */
static void
lists_def_free(struct lists_def *d)
{
    free(d->name);
    free(d->title);
    for (size_t i = 0; i < d->nmoderators; i++)
        free(d->moderators[i]);
    free(d->moderators);
    free(d->password);
    free(d->reply_to);
    free(d->subject_prefix);
    for (size_t i = 0; i < LISTS_NRULES; i++)
        free(d->access[i].pattern);
    free(d->footer);
    free(d->welcome_file);
    free(d->leave_file);
    free(d->origin);
}

/* lists_is_hash - a crypt(3) string of a modern method ("$id$..."). */
static bool
lists_is_hash(const char *s)
{
    return s[0] == '$' && strlen(s) >= 8 && strchr(s + 1, '$') != NULL &&
           strpbrk(s, " \t,:") == NULL;
}

/* lists_address - one address into canonical form; 0 or -1 (error given). */
static int
lists_address(struct lists_parser *p, const char *what, const char *v, char *out, size_t len)
{
    struct addr a;
    char err[200];

    if (addr_parse_mailbox(v, NULL, &a, err, sizeof(err)) < 0) {
        lists_error(p, "%s %s: %s", what, v, err);
        return -1;
    }
    addr_format(&a, out, len);
    return 0;
}

/* lists_moderators - "addr[,addr...]", DMail's old addr:HASH form too. */
static void
lists_moderators(struct lists_parser *p, struct lists_def *d, char *v)
{
    char *save = NULL;

    for (char *tok = strtok_r(v, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
        char *colon;

        while (*tok == ' ' || *tok == '\t')
            tok++;
        if (*tok == '\0')
            continue;
        if ((colon = strchr(tok, ':')) != NULL) {
            *colon = '\0';
            if (!lists_is_hash(colon + 1)) {
                lists_error(p,
                            "moderator %s: a password is kept only as a crypt(3) hash "
                            "(make one with mkpasswd; or use the password setting)",
                            tok);
                continue;
            }
            if (d->password == NULL)
                d->password = xstrdup(colon + 1);
        }
        if (d->nmoderators == LISTS_MODERATORS_MAX) {
            lists_error(p, "moderator: at most %d moderators", LISTS_MODERATORS_MAX);
            return;
        }
        if (lists_address(p, "moderator", tok, buf, sizeof(buf)) < 0)
            continue;
        d->moderators = xrealloc(d->moderators, (d->nmoderators + 1) * sizeof(char *));
        d->moderators[d->nmoderators++] = xstrdup(buf);
    }
}

/* lists_rule - an access_* value. */
static void
lists_rule(struct lists_parser *p, struct lists_rule *r, const char *key, const char *v)
{
    free(r->pattern);
    r->pattern = NULL;
    if (strcasecmp(v, "anyone") == 0 || strcasecmp(v, "all") == 0)
        r->who = LISTS_ANYONE;
    else if (strcasecmp(v, "members") == 0 || strcasecmp(v, "member") == 0)
        r->who = LISTS_MEMBERS;
    else if (strcasecmp(v, "moderator") == 0 || strcasecmp(v, "moderators") == 0)
        r->who = LISTS_MODERATOR;
    else if (strpbrk(v, "*@.") != NULL && strpbrk(v, " \t,") == NULL) {
        r->who = LISTS_PATTERN;
        r->pattern = xstrdup(v);
    } else
        lists_error(p,
                    "%s %s: anyone, members, moderator or an address pattern such as "
                    "*@example.com",
                    key, v);
}

/* lists_path - a file setting: absolute, or relative to the file's directory. */
static void
lists_path(struct lists_parser *p, char **field, const char *v)
{
    free(*field);
    *field = v[0] == '/' || p->dir == NULL ? xstrdup(v) : xasprintf("%s/%s", p->dir, v);
}

/* lists_new - `list NAME`. */
static void
lists_new(struct lists_parser *p, const char *name)
{
    const char *why = lists_name_check(name);
    struct lists_def *d;

    p->cur = NULL;
    if (why != NULL) {
        lists_error(p, "list %s: %s", name, why);
        return;
    }
    for (size_t i = 0; i < p->ls->n; i++)
        if (strcasecmp(p->ls->v[i].name, name) == 0) {
            lists_error(p, "list %s is already defined at %s", name, p->ls->v[i].origin);
            return;
        }
    p->ls->v = xrealloc(p->ls->v, (p->ls->n + 1) * sizeof(*p->ls->v));
    d = &p->ls->v[p->ls->n++];
    memset(d, 0, sizeof(*d));
    lists_defaults(d);
    d->name = xstrdup(name);
    for (char *c = d->name; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    d->origin = xasprintf("%s:%d", p->file, p->line);
    p->cur = d;
}

/* lists_setting - one `KEY VALUE` line of the current list. */
static void
lists_setting(struct lists_parser *p, const char *key, char *v)
{
    struct lists_def *d = p->cur;
    char buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
    bool b;

    for (size_t i = 0; i < LISTS_NRULES; i++)
        if (strcasecmp(key, lists_rule_names[i]) == 0) {
            lists_rule(p, &d->access[i], key, v);
            return;
        }
    if (strcasecmp(key, "title") == 0) {
        free(d->title);
        d->title = xstrdup(v);
    } else if (strcasecmp(key, "subject_prefix") == 0) {
        free(d->subject_prefix);
        d->subject_prefix = xstrdup(v);
    } else if (strcasecmp(key, "moderator") == 0) {
        lists_moderators(p, d, v);
    } else if (strcasecmp(key, "password") == 0) {
        if (!lists_is_hash(v))
            lists_error(p, "password: give a crypt(3) hash (make one with mkpasswd), never "
                           "the password itself");
        else {
            free(d->password);
            d->password = xstrdup(v);
        }
    } else if (strcasecmp(key, "archive") == 0 || strcasecmp(key, "join_cookie") == 0) {
        if (lists_bool(v, &b) < 0)
            lists_error(p, "%s %s: true or false", key, v);
        else
            *(key[0] == 'a' || key[0] == 'A' ? &d->archive : &d->join_cookie) = b;
    } else if (strcasecmp(key, "reply_to_user") == 0) {
        free(d->reply_to);
        d->reply_to = NULL;
        if (lists_bool(v, &b) == 0)
            d->reply_to_user = b;
        else if (strchr(v, '@') != NULL && lists_address(p, key, v, buf, sizeof(buf)) == 0) {
            d->reply_to_user = false;
            d->reply_to = xstrdup(buf);
        } else if (strchr(v, '@') == NULL)
            lists_error(p, "reply_to_user %s: true, false or an address", v);
    } else if (strcasecmp(key, "max_size") == 0) {
        if (lists_size(v, &d->max_size) < 0 || d->max_size == 0)
            lists_error(p, "max_size %s: a size such as 100K or 1M", v);
    } else if (strcasecmp(key, "status_interval") == 0) {
        if (lists_count(v, 3650, &d->status_interval) < 0)
            lists_error(p, "status_interval %s: days, 0 to 3650 (0: none)", v);
    } else if (strcasecmp(key, "bounce_score_threshold") == 0 ||
               strcasecmp(key, "bounce_stale_days") == 0 ||
               strcasecmp(key, "bounce_warnings") == 0 ||
               strcasecmp(key, "bounce_warn_interval") == 0) {
        long *to = strcasecmp(key, "bounce_score_threshold") == 0 ? &d->bounce_score_threshold
                   : strcasecmp(key, "bounce_stale_days") == 0    ? &d->bounce_stale_days
                   : strcasecmp(key, "bounce_warnings") == 0      ? &d->bounce_warnings
                                                                  : &d->bounce_warn_interval;
        if (lists_count(v, 3650, to) < 0 || (*to == 0 && to != &d->bounce_warnings))
            lists_error(p, "%s %s: a number, 1 to 3650%s", key, v,
                        to == &d->bounce_warnings ? " (or 0)" : "");
    } else if (strcasecmp(key, "dmarc_rewrite") == 0) {
        if (strcasecmp(v, "auto") == 0)
            d->dmarc_rewrite = LISTS_DMARC_AUTO;
        else if (strcasecmp(v, "always") == 0)
            d->dmarc_rewrite = LISTS_DMARC_ALWAYS;
        else if (strcasecmp(v, "never") == 0)
            d->dmarc_rewrite = LISTS_DMARC_NEVER;
        else
            lists_error(p, "dmarc_rewrite %s: auto, always or never", v);
    } else if (strcasecmp(key, "digest_format") == 0) {
        if (strcasecmp(v, "mime") == 0 || strcasecmp(v, "rfc1153") == 0)
            d->digest_mime = strcasecmp(v, "mime") == 0;
        else
            lists_error(p, "digest_format %s: mime or rfc1153", v);
    } else if (strcasecmp(key, "digest_size") == 0) {
        if (lists_size(v, &d->digest_size) < 0)
            lists_error(p, "digest_size %s: a size such as 30K (0: not by size)", v);
    } else if (strcasecmp(key, "digest_interval") == 0) {
        if (lists_count(v, 8760, &d->digest_interval) < 0)
            lists_error(p, "digest_interval %s: hours, 0 to 8760 (0: not by time)", v);
    } else if (strcasecmp(key, "footer") == 0) {
        lists_path(p, &d->footer, v);
    } else if (strcasecmp(key, "welcome_file") == 0) {
        lists_path(p, &d->welcome_file, v);
    } else if (strcasecmp(key, "leave_file") == 0) {
        lists_path(p, &d->leave_file, v);
    } else
        lists_error(p, "unknown list setting %s", key);
}

/* lists_line - one line (terminated, no newline). */
static void
lists_line(struct lists_parser *p, char *s)
{
    char *key, *v, *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    if (*s == '\0' || *s == '#')
        return;
    key = s;
    s += strcspn(s, " \t");
    if (*s != '\0')
        *s++ = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    v = s;
    if (strcasecmp(key, "list") == 0) {
        if (*v == '\0')
            lists_error(p, "list: give the list's name");
        else if (strpbrk(v, " \t") != NULL)
            lists_error(p, "list %s: a list name has no blanks", v);
        else
            lists_new(p, v);
        return;
    }
    if (p->ls->n == 0) {
        lists_error(p, "%s: a list's settings follow its `list NAME` line", key);
        return;
    }
    if (p->cur == NULL)
        return; /* the settings of a refused list: its error is given */
    if (*v == '\0' && strcasecmp(key, "title") != 0 && strcasecmp(key, "subject_prefix") != 0) {
        lists_error(p, "%s: no value", key);
        return;
    }
    lists_setting(p, key, v);
}

int
lists_parse(const char *file, const char *dir, const char *domain, const char *text, size_t len,
            struct conf_diag *diag, struct lists_set **out)
{
    struct lists_parser p = {.file = file, .dir = dir, .diag = diag};
    char *copy = xmalloc(len + 1), *s;

    memcpy(copy, text, len);
    copy[len] = '\0';
    p.ls = xcalloc(1, sizeof(*p.ls));
    p.ls->domain = xstrdup(domain != NULL ? domain : "");
    s = copy;
    while (s < copy + len) {
        char *nl = memchr(s, '\n', (size_t)(copy + len - s));
        size_t n = nl != NULL ? (size_t)(nl - s) : (size_t)(copy + len - s);
        p.line++;
        s[n] = '\0';
        if (memchr(s, '\0', n) != NULL)
            lists_error(&p, "a NUL byte in the line");
        else if (n > LISTS_LINE_MAX)
            lists_error(&p, "a line of %zu bytes: at most %u", n, LISTS_LINE_MAX);
        else
            lists_line(&p, s);
        s += n + 1;
    }
    free(copy);
    if (p.errors > 0 || p.ls->n == 0)
        lists_free(&p.ls);
    *out = p.ls;
    return p.errors;
}

int
lists_smtp_host(const char *spec, char *host, size_t len, int *port)
{
    const char *end, *colon;
    char *e;
    long n = 0;

    if (spec == NULL || spec[0] == '\0')
        return -1;
    if (spec[0] == '[') {
        if ((end = strchr(spec, ']')) == NULL || end == spec + 1)
            return -1;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return -1;
        spec++;
    } else {
        colon = strchr(spec, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return -1; /* a bare IPv6 address: write [::1]:25 */
        end = colon != NULL ? colon : spec + strlen(spec);
    }
    if (end == spec || strpbrk(spec, " \t/") != NULL)
        return -1;
    if (colon != NULL) {
        n = strtol(colon + 1, &e, 10);
        if (!isdigit((unsigned char)colon[1]) || *e != '\0' || n < 1 || n > 65535)
            return -1;
    }
    if (host != NULL) {
        if ((size_t)(end - spec) >= len)
            return -1;
        memcpy(host, spec, (size_t)(end - spec));
        host[end - spec] = '\0';
    }
    if (port != NULL)
        *port = (int)n;
    return 0;
}

struct lists_set *
lists_build(const struct conf *c, struct conf_diag *diag)
{
    struct lists_set *ls = NULL;
    char *path, *text = NULL, dom[ADDR_DOMAIN_MAX + 1];
    const char *domain = c->main_domain;
    size_t len = 0;

    if (c->dlist_domain != NULL && c->dlist_domain[0] != '\0') {
        if (addr_domain_normalize(c->dlist_domain, dom, sizeof(dom)) < 0) {
            conf_diag_add(diag, false, c->origin[CONF_dlist_domain], 0,
                          "dlist_domain %s: not a domain name", c->dlist_domain);
            return NULL;
        }
        domain = dom;
    }
    if (lists_smtp_host(c->dlist_smtp_host, NULL, 0, NULL) < 0)
        conf_diag_add(diag, false, c->origin[CONF_dlist_smtp_host], 0,
                      "dlist_smtp_host %s: HOST or HOST:PORT ([IPv6]:PORT)", c->dlist_smtp_host);
    if (c->dlist_path == NULL || c->dlist_path[0] == '\0')
        return NULL;
    path = xasprintf("%s/%s", c->dlist_path, LISTS_FILE);
    if (file_read_all(path, LISTS_FILE_MAX, &text, &len) < 0) {
        if (errno != ENOENT)
            conf_diag_add(diag, false, path, 0, "cannot read: %s",
                          errno == EFBIG ? "larger than 4 MB" : strerror(errno));
        free(path);
        return NULL;
    }
    lists_parse(path, c->dlist_path, domain, text, len, diag, &ls);
    free(text);
    free(path);
    return ls;
}

void
lists_free(struct lists_set **lsp)
{
    struct lists_set *ls = *lsp;

    if (ls == NULL)
        return;
    *lsp = NULL;
    for (size_t i = 0; i < ls->n; i++)
        lists_def_free(&ls->v[i]);
    free(ls->v);
    free(ls->domain);
    free(ls);
}

const struct lists_def *
lists_find(const struct lists_set *ls, const char *name)
{
    for (size_t i = 0; ls != NULL && i < ls->n; i++)
        if (strcasecmp(ls->v[i].name, name) == 0)
            return &ls->v[i];
    return NULL;
}

/* lists_find_n - the list called name[0..n), any case. */
static const struct lists_def *
lists_find_n(const struct lists_set *ls, const char *name, size_t n)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strlen(ls->v[i].name) == n && strncasecmp(ls->v[i].name, name, n) == 0)
            return &ls->v[i];
    return NULL;
}

enum lists_role
lists_role(const struct lists_set *ls, const char *local, const char *domain,
           const struct lists_def **defp, const char **verp)
{
    static const struct {
        const char *suffix;
        enum lists_role role;
    } roles[] = {{"-request", LISTS_ROLE_REQUEST},
                 {"-owner", LISTS_ROLE_OWNER},
                 {"-bounces", LISTS_ROLE_BOUNCES}};
    const struct lists_def *d;
    const char *plus;
    size_t n;

    if (defp != NULL)
        *defp = NULL;
    if (ls == NULL || strcasecmp(domain, ls->domain) != 0)
        return LISTS_NONE;
    if ((d = lists_find(ls, local)) != NULL) {
        if (defp != NULL)
            *defp = d;
        return LISTS_ROLE_POST;
    }
    n = strlen(local);
    for (plus = local; (plus = strchr(plus, '+')) != NULL; plus++)
        if (plus - local > 8 && strncasecmp(plus - 8, "-bounces", 8) == 0 &&
            (d = lists_find_n(ls, local, (size_t)(plus - local - 8))) != NULL) {
            if (defp != NULL)
                *defp = d;
            if (verp != NULL)
                *verp = plus + 1;
            return LISTS_ROLE_BOUNCES;
        }
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        size_t k = strlen(roles[i].suffix);
        if (n > k && strcasecmp(local + n - k, roles[i].suffix) == 0 &&
            (d = lists_find_n(ls, local, n - k)) != NULL) {
            if (defp != NULL)
                *defp = d;
            if (verp != NULL)
                *verp = local + n;
            return roles[i].role;
        }
    }
    return LISTS_NONE;
}

const char *
lists_access_text(const struct lists_rule *r)
{
    switch (r->who) {
    case LISTS_ANYONE:
        return "anyone";
    case LISTS_MEMBERS:
        return "members";
    case LISTS_MODERATOR:
        return "moderator";
    case LISTS_PATTERN:
        return r->pattern;
    }
    return "?";
}

/* lists_glob - '*' any run, the rest itself in any case. */
static bool
lists_glob(const char *pat, const char *s)
{
    for (; *pat != '\0'; pat++, s++) {
        if (*pat == '*') {
            for (const char *t = s;; t++) {
                if (lists_glob(pat + 1, t))
                    return true;
                if (*t == '\0')
                    return false;
            }
        }
        if (*s == '\0' || tolower((unsigned char)*pat) != tolower((unsigned char)*s))
            return false;
    }
    return *s == '\0';
}

bool
lists_may(const struct lists_rule *r, const char *addr, bool member, bool moderator)
{
    if (moderator)
        return true;
    switch (r->who) {
    case LISTS_ANYONE:
        return true;
    case LISTS_MEMBERS:
        return member;
    case LISTS_MODERATOR:
        return false;
    case LISTS_PATTERN:
        return lists_glob(r->pattern, addr);
    }
    return false;
}

bool
lists_is_moderator(const struct lists_def *def, const char *addr)
{
    for (size_t i = 0; i < def->nmoderators; i++)
        if (strcasecmp(def->moderators[i], addr) == 0)
            return true;
    return false;
}
