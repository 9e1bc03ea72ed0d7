/*
 * conf - dmail.conf into an immutable, reference-counted snapshot (contract in conf.h):
 * the settings table, loading, #include, diagnostics and the snapshot's life. Single
 * values (parsing, list item checks, conf_format, the list matches) are in conf_value.c.
 *
 * The settings live in one table generated from settings.def. Loading starts from the
 * table's defaults, then reads the file line by line (following #include), reporting
 * every problem as "file:line: reason" and going on, so one run shows them all.
 */
#include "conf.h"
#include "tls.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alias.h"
#include "lists.h"
#include "conf_int.h"
#include "file.h"
#include "dkim.h"
#include "milter_addr.h"
#include "route.h"
#include "vdomain.h"
#include "xmem.h"

#define CONF_FILE_MAX (16u << 20) /* largest file conf_load reads */
#define CONF_INCLUDE_DEPTH 16     /* deepest #include nesting */

/* CT_ENUM rows carry their choices in the "min" column; everything else a number. */
#define CONF_CHOICES(m) _Generic((m), char * : (m), default : (const char *)0)
#define CONF_MIN(m) _Generic((m), char * : 0, default : (m))

const struct conf_setting conf_settings[CONF_NSETTINGS] = {
#define SETTING(name, type, def, min, max, flags)                                                  \
    [CONF_##name] = {#name, type, def, CONF_CHOICES(min), CONF_MIN(min), max, flags},
#include "settings.def"
};

static const size_t conf_offsets[CONF_NSETTINGS] = {
#define SETTING(name, type, def, min, max, flags) [CONF_##name] = offsetof(struct conf, name),
#include "settings.def"
};

static const struct conf_synonym {
    const char *alias;
    enum conf_setting_id id;
} conf_synonyms[] = {
#define SETTING(name, type, def, min, max, flags)
#define SYNONYM(alias, name) {#alias, CONF_##name},
#include "settings.def"
};

static const char *const conf_notes[CONF_NSETTINGS] = {
#define SETTING(name, type, def, min, max, flags)
#define SYNONYM(alias, name)
#define NOTE(name, text) [CONF_##name] = text,
#include "settings.def"
};

/* One parse: the snapshot being built and what is known about each setting so far. */
struct conf_parser {
    struct conf *c;
    struct conf_diag *diag;
    bool set[CONF_NSETTINGS];   /* given in the file (a list's first line replaces the default) */
    bool noted[CONF_NSETTINGS]; /* its NOTE warning was given */
    char *stack[CONF_INCLUDE_DEPTH + 2]; /* canonical names of the files being read */
    int depth;
    const char *file; /* the line being parsed, for CT_ROUTE entries */
    int line;
};

/* conf_field - the struct conf field of setting id. */
void *
conf_field(const struct conf *c, int id)
{
    return (char *)c + conf_offsets[id];
}

/* conf_diag_add - record one "file:line: reason" (line 0: "file: reason"). */
void
conf_diag_add(struct conf_diag *d, bool warning, const char *file, int line, const char *fmt, ...)
{
    char reason[CONF_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    for (char *r = reason; *r != '\0'; r++)
        if ((unsigned char)*r < 0x20 || *r == 0x7f)
            *r = '?'; /* one message, one line, no terminal controls */
    if (warning)
        d->warnings++;
    else
        d->errors++;
    d->msgs = xrealloc(d->msgs, (d->n + 1) * sizeof(*d->msgs));
    if (line > 0)
        d->msgs[d->n++] = xasprintf("%s:%d: %s%s", file, line, warning ? "warning: " : "", reason);
    else
        d->msgs[d->n++] = xasprintf("%s: %s%s", file, warning ? "warning: " : "", reason);
}

/* conf_diag_free - free the messages and zero the counters. */
void
conf_diag_free(struct conf_diag *diag)
{
    if (diag == NULL)
        return;
    for (size_t i = 0; i < diag->n; i++)
        free(diag->msgs[i]);
    free(diag->msgs);
    memset(diag, 0, sizeof(*diag));
}

/* conf_default_path - -c/-i, else $DMAIL_CONF, else /etc/dmail/dmail.conf, else DMail's. */
const char *
conf_default_path(const char *cli)
{
    const char *env = getenv("DMAIL_CONF");

    if (cli != NULL && *cli != '\0')
        return cli;
    if (env != NULL && *env != '\0')
        return env;
    if (access("/etc/dmail/dmail.conf", F_OK) == 0)
        return "/etc/dmail/dmail.conf";
    return "/etc/dmail.conf";
}

/* conf_lookup - the row for a setting name or synonym (any case); NULL if unknown. */
const struct conf_setting *
conf_lookup(const char *name)
{
    for (int i = 0; i < CONF_NSETTINGS; i++)
        if (strcasecmp(conf_settings[i].name, name) == 0)
            return &conf_settings[i];
    for (size_t i = 0; i < sizeof(conf_synonyms) / sizeof(conf_synonyms[0]); i++)
        if (strcasecmp(conf_synonyms[i].alias, name) == 0)
            return &conf_settings[conf_synonyms[i].id];
    return NULL;
}

/* conf_note - the NOTE text of setting id, or NULL. */
const char *
conf_note(enum conf_setting_id id)
{
    return (unsigned)id < CONF_NSETTINGS ? conf_notes[id] : NULL;
}

/* conf_list_free - free every item of a list. */
static void
conf_list_free(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* conf_list_add - append one item (taking ownership). */
static void
conf_list_add(struct conf_list *l, char *item)
{
    /* capacity doubles at every power of two, so 100,000 items cost no quadratic copying */
    if ((l->n & (l->n - 1)) == 0)
        l->v = xrealloc(l->v, (l->n ? l->n * 2 : 1) * sizeof(*l->v));
    l->v[l->n++] = item;
}

/* conf_set_list - add the comma- or space-separated items of v; 0 or -1 (reason set). */
static int
conf_set_list(struct conf_parser *p, int id, const char *v, char *reason, size_t len)
{
    struct conf_list *l = conf_field(p->c, id);
    int rc = 0;

    while (*v != '\0') {
        size_t n = strcspn(v, ", \t");
        if (n > 0) {
            char *item = xstrndup(v, n);
            char why[CONF_REASON_MAX];
            if (conf_value_item(id, &item, why, sizeof(why)) < 0) {
                if (rc == 0)
                    snprintf(reason, len, "%s", why);
                rc = -1;
                free(item);
            } else {
                conf_list_add(l, item);
            }
        }
        v += n;
        v += strspn(v, ", \t");
    }
    return rc;
}

/* conf_set_table - one "KEY VALUE" line of a CF_TABLE list; 0 or -1 (reason set). */
static int
conf_set_table(struct conf_parser *p, int id, const char *v, char *reason, size_t len)
{
    struct conf_list *l = conf_field(p->c, id);
    char *item = xmalloc(strlen(v) + 1), *o = item;
    size_t klen;

    for (; *v != '\0'; v++) /* runs of blanks become one space */
        if ((*v != ' ' && *v != '\t') || (o > item && o[-1] != ' '))
            *o++ = *v == '\t' ? ' ' : *v;
    *o = '\0';
    if (conf_value_item(id, &item, reason, len) < 0) {
        free(item);
        return -1;
    }
    klen = strcspn(item, " ");
    for (size_t i = 0; !(conf_settings[id].flags & CF_PAIRS) && i < l->n; i++)
        if (strncasecmp(l->v[i], item, klen) == 0 && l->v[i][klen] == ' ') {
            snprintf(reason, len, "%.*s is given twice (first: %.*s)", (int)klen, item, 300,
                     l->v[i]);
            free(item);
            return -1;
        }
    conf_list_add(l, item);
    return 0;
}

/* conf_set_value - parse v for setting id and store it; 0 or -1 with reason. */
static int
conf_set_value(struct conf_parser *p, int id, const char *v, char *reason, size_t len)
{
    const struct conf_setting *row = &conf_settings[id];
    void *field = conf_field(p->c, id);
    unsigned long long u;
    long l;
    bool b;
    int e;

    switch (row->type) {
    case CT_BOOL:
        if (conf_value_bool(v, &b, reason, len) < 0)
            return -1;
        *(bool *)field = b;
        return 0;
    case CT_INT:
        if (conf_value_int(v, &l, reason, len) < 0 ||
            conf_value_bounds(row, l, 0, false, v, reason, len) < 0)
            return -1;
        *(long *)field = l;
        return 0;
    case CT_SIZE:
        if (conf_value_size(v, id == CONF_drop_max, &u, reason, len) < 0 ||
            conf_value_bounds(row, 0, u, true, v, reason, len) < 0)
            return -1;
        *(unsigned long long *)field = u;
        return 0;
    case CT_TIME:
        if (conf_value_time(v, &l, reason, len) < 0 ||
            conf_value_bounds(row, l, 0, false, v, reason, len) < 0)
            return -1;
        *(long *)field = l;
        return 0;
    case CT_STR: {
        char *s = xstrdup(v);
        if (conf_value_item(id, &s, reason, len) < 0) {
            free(s);
            return -1;
        }
        free(*(char **)field);
        *(char **)field = s;
        return 0;
    }
    case CT_LIST:
        if (row->flags & (CF_TABLE | CF_PAIRS))
            return *v != '\0' ? conf_set_table(p, id, v, reason, len) : 0;
        return conf_set_list(p, id, v, reason, len);
    case CT_ROUTE:
        return route_add(field, p->file, p->line, v, reason, len);
    case CT_DKIM:
        return dkim_keys_add(field, p->file, v, reason, len);
    case CT_ENUM:
        if (conf_value_enum(row, v, &e, reason, len) < 0)
            return -1;
        *(int *)field = e;
        return 0;
    }
    snprintf(reason, len, "internal error: unknown type");
    return -1;
}

/* conf_trim - v without leading and trailing blanks (modifies the end in place). */
static char *
conf_trim(char *v)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
        v[--n] = '\0';
    return v;
}

static void conf_parse_text(struct conf_parser *p, const char *file, char *text, size_t len);

/* conf_include - read the file named by an #include line of file:line. */
static void
conf_include(struct conf_parser *p, const char *file, int line, char *arg)
{
    char *path, *canon, *text;
    size_t n = strlen(arg), len;

    if (n >= 2 && ((arg[0] == '"' && arg[n - 1] == '"') || (arg[0] == '<' && arg[n - 1] == '>'))) {
        arg[n - 1] = '\0';
        arg++;
    }
    if (*arg == '\0') {
        conf_diag_add(p->diag, false, file, line, "#include needs a file name");
        return;
    }
    if (arg[0] == '/') {
        path = xstrdup(arg);
    } else {
        const char *slash = strrchr(file, '/');
        path = slash ? xasprintf("%.*s/%s", (int)(slash - file), file, arg) : xstrdup(arg);
    }
    if (p->depth >= CONF_INCLUDE_DEPTH) {
        conf_diag_add(p->diag, false, file, line, "#include %s: nested deeper than %d files", arg,
                      CONF_INCLUDE_DEPTH);
        free(path);
        return;
    }
    canon = realpath(path, NULL);
    if (canon == NULL) {
        conf_diag_add(p->diag, false, file, line, "#include %s: %s", arg,
                      errno == EINVAL ? "not a regular file" : strerror(errno));
        free(path);
        return;
    }
    for (int i = 0; i <= p->depth; i++) {
        if (p->stack[i] != NULL && strcmp(p->stack[i], canon) == 0) {
            conf_diag_add(p->diag, false, file, line,
                          "#include %s: include loop (%s is already being read)", arg, path);
            free(canon);
            free(path);
            return;
        }
    }
    if (file_read_all(path, CONF_FILE_MAX, &text, &len) < 0) {
        conf_diag_add(p->diag, false, file, line, "#include %s: %s", arg,
                      errno == EINVAL ? "not a regular file" : strerror(errno));
        free(canon);
        free(path);
        return;
    }
    p->stack[++p->depth] = canon;
    conf_parse_text(p, path, text, len);
    p->stack[p->depth--] = NULL;
    free(canon);
    free(text);
    free(path);
}

/* conf_parse_line - one line of file (already without its newline). */
static void
conf_parse_line(struct conf_parser *p, const char *file, int line, char *s)
{
    char reason[CONF_REASON_MAX];
    const struct conf_setting *row;
    char *name, *value;
    int id;

    s = conf_trim(s);
    if (*s == '\0')
        return;
    if (*s == '#') {
        if (strncmp(s, "#include", 8) == 0 && (s[8] == ' ' || s[8] == '\t' || s[8] == '\0'))
            conf_include(p, file, line, conf_trim(s + 8));
        return;
    }
    name = s;
    value = s + strcspn(s, " \t");
    if (*value != '\0')
        *value++ = '\0';
    value = conf_trim(value);
    row = conf_lookup(name);
    if (row == NULL) {
        conf_diag_add(p->diag, true, file, line, "unknown setting '%s'", name);
        return;
    }
    id = (int)(row - conf_settings);
    if (*value == '\0' && row->type != CT_LIST) {
        conf_diag_add(p->diag, false, file, line, "%s: missing value", name);
        return;
    }
    if (row->type == CT_LIST && !p->set[id]) {
        conf_list_free(conf_field(p->c, id)); /* the file's lines replace the default */
        p->set[id] = true;
    } else if (row->type != CT_LIST && row->type != CT_ROUTE && row->type != CT_DKIM &&
               p->set[id]) {
        conf_diag_add(p->diag, true, file, line, "%s is already set at %s; this value wins", name,
                      p->c->origin[id]);
    }
    if (conf_notes[id] != NULL && !p->noted[id] && strcasecmp(value, row->def) != 0) {
        p->noted[id] = true;
        conf_diag_add(p->diag, true, file, line, "%s%s: %s", row->name,
                      row->flags & CF_NOEFFECT ? " is accepted but has no effect" : "",
                      conf_notes[id]);
    }
    p->file = file;
    p->line = line;
    if (conf_set_value(p, id, value, reason, sizeof(reason)) < 0) {
        conf_diag_add(p->diag, false, file, line, "%s: %s", name, reason);
        /* a list keeps the good items of a line with a bad one: they come from here too
         * (the checks after parsing name their origin) */
        if (row->type != CT_LIST)
            return;
    }
    p->set[id] = true;
    free(p->c->origin[id]);
    p->c->origin[id] = xasprintf("%s:%d", file, line);
}

/* conf_parse_text - every line of one file's text (modified in place). */
static void
conf_parse_text(struct conf_parser *p, const char *file, char *text, size_t len)
{
    char *s = text, *end = text + len;
    int line = 0;

    while (s < end) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *eol = nl ? nl : end;
        line++;
        if (memchr(s, '\0', (size_t)(eol - s)) != NULL) {
            conf_diag_add(p->diag, false, file, line, "line holds a NUL byte");
        } else {
            *eol = '\0';
            conf_parse_line(p, file, line, s);
        }
        s = eol + 1;
    }
}

/* conf_apply_defaults - every setting from its table default. */
static void
conf_apply_defaults(struct conf_parser *p)
{
    char reason[CONF_REASON_MAX];

    for (int id = 0; id < CONF_NSETTINGS; id++) {
        const struct conf_setting *row = &conf_settings[id];
        if (row->type != CT_STR && row->type != CT_LIST && row->def[0] == '\0')
            continue;
        if (conf_set_value(p, id, row->def, reason, sizeof(reason)) < 0)
            conf_diag_add(p->diag, false, "(defaults)", 0, "%s: %s", row->name, reason);
    }
}

/* conf_free - free a snapshot and all it holds. */
static void
conf_free(struct conf *c)
{
    for (int id = 0; id < CONF_NSETTINGS; id++) {
        if (conf_settings[id].type == CT_STR)
            free(*(char **)conf_field(c, id));
        else if (conf_settings[id].type == CT_LIST)
            conf_list_free(conf_field(c, id));
        else if (conf_settings[id].type == CT_ROUTE)
            route_free(conf_field(c, id));
        else if (conf_settings[id].type == CT_DKIM)
            dkim_keys_free(conf_field(c, id));
        free(c->origin[id]);
    }
    alias_free(&c->aliases);
    lists_free(&c->lists);
    free(c->milter_opts);
    free(c->path);
    free(c->main_domain);
    free(c);
}

/* conf_check_host - dsmtp_host / dpop_host: an IP address replaces listen for that server;
 * a host name (DMail's default was the machine's name) is kept out with a warning. */
static void
conf_check_host(struct conf_parser *p, int id, const char *prog)
{
    char **host = conf_field(p->c, id);
    unsigned char bin[sizeof(struct in6_addr)];

    if (*host == NULL || **host == '\0' || inet_pton(AF_INET, *host, bin) == 1 ||
        inet_pton(AF_INET6, *host, bin) == 1)
        return;
    conf_diag_add(p->diag, true, p->c->origin[id], 0,
                  "%s %s is not an IP address; %s listens on the listen addresses",
                  conf_settings[id].name, *host, prog);
    free(*host);
    *host = xstrdup("");
}

/* conf_hash_usable - a crypt(3) hash libxcrypt can check ("$id$..."), as the manager
 * password must be: one crypt of the empty password. */
static bool
conf_hash_usable(const char *hash)
{
    struct crypt_data *cd;
    bool ok;

    if (hash == NULL || hash[0] != '$')
        return false;
    cd = xcalloc(1, sizeof(*cd));
    const char *r = crypt_rn("", hash, cd, sizeof(*cd));
    ok = r != NULL && r[0] != '*';
    free(cd);
    return ok;
}

/* conf_check_manager - a manager port (smtp_manager_port, pop_manager_port) needs a
 * crypt(3) manager_password and TLS (tls_cert and tls_key) unless manager_plaintext_loopback
 * allows plaintext on loopback: errors at the lines at fault, so -t and a reload see them
 * as start-up would. */
static void
conf_check_manager(struct conf_parser *p)
{
    static const int ports[] = {CONF_smtp_manager_port, CONF_pop_manager_port};
    const struct conf *c = p->c;

    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        int id = ports[i];
        long port = *(const long *)conf_field(c, id);
        const char *at = c->origin[id];
        if (port == 0)
            continue;
        if (!conf_hash_usable(c->manager_password))
            conf_diag_add(p->diag, false,
                          c->origin[CONF_manager_password] ? c->origin[CONF_manager_password] : at,
                          0,
                          "%s %ld: manager_password must be set to a crypt(3) hash (make one "
                          "with: openssl passwd -6)",
                          conf_settings[id].name, port);
        if ((c->tls_cert == NULL || c->tls_cert[0] == '\0' || c->tls_key == NULL ||
             c->tls_key[0] == '\0') &&
            !c->manager_plaintext_loopback)
            conf_diag_add(p->diag, false, at, 0,
                          "%s %ld: no tls_cert/tls_key, and the manager password must not "
                          "travel in plaintext (manager_plaintext_loopback = true allows it on "
                          "127.0.0.1 and ::1 only)",
                          conf_settings[id].name, port);
    }
}

/* conf_check_allow - allow_mail_to_commands / allow_mail_to_files: each value is alias or
 * forward (Postfix's names; empty: none). */
static void
conf_check_allow(struct conf_parser *p, int id)
{
    const struct conf_list *l = conf_field(p->c, id);

    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], "alias") != 0 && strcasecmp(l->v[i], "forward") != 0)
            conf_diag_add(p->diag, false, p->c->origin[id], 0,
                          "%s: '%s' is neither alias nor forward (leave it empty for none)",
                          conf_settings[id].name, l->v[i]);
}

/* conf_finish_use_drop - DMail's use_drop: mbox/maildir set mailbox_format (unless it is
 * given too); false asked DMail to keep mail in its bins, which dmail never does: say so. */
static void
conf_finish_use_drop(struct conf *c, struct conf_diag *d)
{
    const char *v = c->use_drop, *o = c->origin[CONF_use_drop];

    if (v == NULL || v[0] == '\0')
        return;
    if (strcmp(v, "mbox") == 0 || strcmp(v, "maildir") == 0) {
        if (c->origin[CONF_mailbox_format] == NULL) {
            c->mailbox_format = v[1] == 'b' ? MBOX_FORMAT_MBOX : MBOX_FORMAT_MAILDIR;
            c->origin[CONF_mailbox_format] = xstrdup(o);
        }
        return;
    }
    if (strcmp(v, "false") == 0)
        conf_diag_add(d, true, o, 0,
                      "use_drop false: DMail moved mail into its bins; dmail has none and always "
                      "serves the dropfile in place (mailbox_format %s)",
                      c->mailbox_format == MBOX_FORMAT_MAILDIR ? "maildir" : "mbox");
}

/* conf_milter_opts - each filter's milter_options line, parsed (the values were checked
 * while reading them). */
static void
conf_milter_opts(struct conf *c)
{
    char addr[MILTER_ADDR_MAX + 8], why[200];
    struct milter_opts o;

    if (c->milters.n == 0)
        return;
    c->milter_opts = xcalloc(c->milters.n, sizeof(*c->milter_opts));
    for (size_t i = 0; i < c->milters.n; i++)
        c->milter_opts[i] = (struct milter_opts){-1, -1, -1, -1};
    for (size_t j = 0; j < c->milter_options.n; j++) {
        if (!milter_opts_parse(c->milter_options.v[j], addr, sizeof(addr), &o, why, sizeof(why)))
            continue;
        for (size_t i = 0; i < c->milters.n; i++)
            if (strcmp(addr, c->milters.v[i]) == 0)
                c->milter_opts[i] = o;
    }
}

/* conf_verp_delims_ok - v is two characters of verp_delimiter_filter. */
bool
conf_verp_delims_ok(const struct conf *c, const char *v)
{
    const char *f = c->verp_delimiter_filter != NULL ? c->verp_delimiter_filter : "";

    return v != NULL && strlen(v) == 2 && v[0] != '\0' && v[1] != '\0' && strchr(f, v[0]) != NULL &&
           strchr(f, v[1]) != NULL;
}

/* conf_finish - derived fields; returns the snapshot, or NULL (freed) after errors. */
static struct conf *
conf_finish(struct conf_parser *p, int errors_before)
{
    struct conf *c = p->c;

    c->main_domain = xstrdup(c->host_domain.n > 0 ? c->host_domain.v[0] : "localhost");
    if (c->hostname == NULL || c->hostname[0] == '\0') {
        char host[256];
        if (gethostname(host, sizeof(host)) < 0)
            strcpy(host, "localhost");
        host[sizeof(host) - 1] = '\0';
        free(c->hostname);
        c->hostname = xstrdup(host);
    }
    if (c->mail_spool == NULL || c->mail_spool[0] == '\0') {
        /* unix_user's mailboxes: DMail's drop_path when the file sets it, else /var/mail */
        const char *d = c->origin[CONF_drop_path] != NULL ? c->drop_path : "/var/mail";
        free(c->mail_spool);
        c->mail_spool = xstrdup(d);
    }
    route_finish(c->forward, p->diag);
    route_finish(c->alias, p->diag);
    c->aliases = alias_build(c, p->diag);
    c->lists = lists_build(c, p->diag);
    conf_milter_opts(c);
    for (size_t i = 0; i < c->relay_to.n; i++)
        if (conf_is_local_domain(c, c->relay_to.v[i]))
            conf_diag_add(p->diag, true, c->origin[CONF_relay_to], 0,
                          "relay_to %s is also a host_domain: its mail is delivered here",
                          c->relay_to.v[i]);
    if (c->forward_from.n > 0)
        conf_diag_add(p->diag, true, c->origin[CONF_forward_from], 0,
                      "forward_from: anyone who writes such an envelope sender may relay "
                      "through this server (it is forgeable; prefer forward_from_ip or AUTH)");
    if (c->rbl_vanish.n > 0)
        conf_diag_add(p->diag, true, c->origin[CONF_rbl_vanish], 0,
                      "rbl_vanish: mail from listed clients is refused as with rbl_reject, "
                      "never accepted and discarded");
    if (!conf_verp_delims_ok(c, c->verp_delimiters))
        conf_diag_add(p->diag, false,
                      c->origin[CONF_verp_delimiters] ? c->origin[CONF_verp_delimiters]
                      : c->origin[CONF_verp_delimiter_filter]
                          ? c->origin[CONF_verp_delimiter_filter]
                          : c->path,
                      0, "verp_delimiters \"%s\": two characters of verp_delimiter_filter \"%s\"",
                      c->verp_delimiters, c->verp_delimiter_filter);
    conf_check_host(p, CONF_dsmtp_host, "dsmtp");
    conf_check_host(p, CONF_dpop_host, "dpop");
    conf_check_allow(p, CONF_allow_mail_to_commands);
    conf_check_allow(p, CONF_allow_mail_to_files);
    if (c->allow_dds)
        conf_diag_add(p->diag, false, c->origin[CONF_allow_dds], 0,
                      "allow_dds true is refused: user names with ../ would reach files outside "
                      "drop_path (path traversal); remove it or write allow_dds false");
    if (c->error_soft_limit > c->error_hard_limit && c->origin[CONF_error_soft_limit] != NULL)
        conf_diag_add(p->diag, true, c->origin[CONF_error_soft_limit], 0,
                      "error_soft_limit %ld is above error_hard_limit %ld and never applies",
                      c->error_soft_limit, c->error_hard_limit);
    if (c->authent_method == AUTHENT_EXTERNAL) {
        const char *ap = c->authent_process != NULL ? c->authent_process : "";
        char prog[1024];
        size_t n = strcspn(ap + strspn(ap, " \t"), " \t");
        const char *org =
            c->origin[CONF_authent_method] ? c->origin[CONF_authent_method] : p->c->path;
        snprintf(prog, sizeof(prog), "%.*s", (int)n, ap + strspn(ap, " \t"));
        if (prog[0] == '\0')
            conf_diag_add(
                p->diag, false, org, 0,
                "authent_method external needs authent_process (the helper's command line)");
        else if (prog[0] != '/' || access(prog, X_OK) != 0)
            conf_diag_add(p->diag, false,
                          c->origin[CONF_authent_process] ? c->origin[CONF_authent_process] : org,
                          0, "authent_process: %s is not an executable absolute path", prog);
    }
    vdomain_check(c, p->diag);
    conf_check_manager(p);
    conf_finish_use_drop(c, p->diag);
    c->loaded = time(NULL);
    c->refs = 1;
    if (p->diag->errors > errors_before) {
        conf_free(c);
        return NULL;
    }
    return c;
}

/* conf_parse_start - a parser with a fresh snapshot holding the defaults. */
static void
conf_parse_start(struct conf_parser *p, const char *path, struct conf_diag *diag)
{
    memset(p, 0, sizeof(*p));
    p->diag = diag;
    p->c = xcalloc(1, sizeof(*p->c));
    p->c->path = xstrdup(path);
    conf_apply_defaults(p);
    p->stack[0] = realpath(path, NULL);
}

/* conf_load - parse path into a snapshot; NULL after errors, every problem in diag. */
struct conf *
conf_load(const char *path, struct conf_diag *diag)
{
    struct conf_diag local = {0};
    struct conf_parser p;
    struct conf *c;
    char *text;
    size_t len;

    if (diag == NULL)
        diag = &local;
    int before = diag->errors;
    conf_parse_start(&p, path, diag);
    if (file_read_all(path, CONF_FILE_MAX, &text, &len) < 0) {
        conf_diag_add(diag, false, path, 0, "cannot read: %s",
                      errno == EINVAL ? "not a regular file" : strerror(errno));
    } else {
        conf_parse_text(&p, path, text, len);
        free(text);
    }
    free(p.stack[0]);
    c = conf_finish(&p, before);
    conf_diag_free(&local);
    return c;
}

/* conf_load_string - the same from text; includes are relative to name's directory. */
struct conf *
conf_load_string(const char *name, const char *text, struct conf_diag *diag)
{
    struct conf_diag local = {0};
    struct conf_parser p;
    struct conf *c;
    size_t len = strlen(text);
    char *copy = xmemdup(text, len + 1);

    if (diag == NULL)
        diag = &local;
    int before = diag->errors;
    conf_parse_start(&p, name, diag);
    conf_parse_text(&p, name, copy, len);
    free(copy);
    free(p.stack[0]);
    c = conf_finish(&p, before);
    conf_diag_free(&local);
    return c;
}

/* conf_ref - one more reference to a snapshot. */
struct conf *
conf_ref(struct conf *c)
{
    if (c != NULL)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

/* conf_unref - drop a reference, freeing the snapshot with the last; sets *c to NULL. */
void
conf_unref(struct conf **c)
{
    if (c == NULL || *c == NULL)
        return;
    if (__atomic_sub_fetch(&(*c)->refs, 1, __ATOMIC_ACQ_REL) == 0)
        conf_free(*c);
    *c = NULL;
}

/* conf_tls_policy - the server TLS policy of c into *pol (see conf.h). */
void
conf_tls_policy(const struct conf *c, struct tls_policy *pol)
{
    *pol = (struct tls_policy){
        .tls13_only = c->tls_min_version == TLS_MIN_13,
        .ciphers = c->tls_ciphers,
        .ciphersuites = c->tls_ciphersuites,
    };
}
