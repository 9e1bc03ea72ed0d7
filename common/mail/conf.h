/*
 * conf - dmail.conf into an immutable, reference-counted snapshot.
 *
 * Contract:
 * - Owns: struct conf and everything it points to. A snapshot is never modified after
 *   conf_load() returns it; readers hold a reference (conf_ref) for as long as they use it,
 *   so a reload builds a new snapshot while sessions keep the old one.
 * - Blocks on: file reads (conf_load). Call it at start-up, or on the thread pool for a
 *   reload, never on the event loop.
 * - Frees: conf_unref frees the snapshot when the last reference goes.
 * - Format (REFERENCE 2.1): `setting value` lines; `#` starts a comment line; `#include FILE`
 *   (relative to the including file's directory; loops and depth > 16 are errors);
 *   multi-valued settings repeat lines and also accept comma lists; booleans true/false
 *   (also yes/no/on/off/1/0); sizes take K/M/G suffixes (KB/MB/GB too); times take s/m/h/d;
 *   a single-valued setting given twice is a warning and the last one wins.
 * - Diagnostics are `file:line: reason`: an unknown setting is a warning, a bad value an
 *   error. conf_load() reads the whole file and reports every problem, not just the first.
 *   `drop_max` with no suffix is in KB, as in DMail.
 * - CT_ROUTE (`forward`): one `ALIAS DESTINATION,...` entry per line, built into the alias
 *   table of common/route.c while loading; conf_format gives a summary of it ("N forwards,
 *   digest HEX") for comparing snapshots, not a value to write back.
 * - CT_DKIM (`dkim_sign`): one `DOMAIN SELECTOR KEYFILE` per line (KEYFILE relative to the
 *   file's directory); the private key is read and checked while loading (dkim.h), so a
 *   bad key is `file:line: reason` at -t and on reload; conf_format lists DOMAIN/SELECTOR/ALG.
 * - A setting with a NOTE row in settings.def (DMail names dmail accepts with another meaning
 *   or none, CF_NOEFFECT) gives one warning naming what dmail does instead when a file sets
 *   it to another value than its default (as written: `dlist_rotate 50000` says nothing). allow_dds
 * true is an error (user names with ../ are path traversal).
 * - milter_options lines are checked while loading and parsed into c->milter_opts, one
 *   entry per milters item, so sessions never parse them.
 * - Alias files (alias.h): alias_file and alias_file_domain are read at the end of every
 *   load into c->aliases; an unreadable or broken file is an error of the load, so a
 *   reload that meets one keeps the old snapshot, aliases included.
 * - lists.dat (lists.h): read from dlist_path at the end of every load into c->lists, with
 *   the same rule: a broken one fails the load.
 * - CF_PAIRS lists (`rbl_except_ip`): as CF_TABLE, but a KEY may come on several lines.
 * - CF_TABLE lists (`gateway`): one `KEY VALUE` item per line, blanks inside kept as one
 *   space, a KEY given twice an error naming the first; conf_format joins them with ",".
 * - Checked while loading (nexthop.h): the smarthost spec, each gateway line (a domain or
 *   ".domain" and a spec), smarthost_auth as `USER FILE` with FILE an absolute path. The
 *   password file itself is not read here (dsmtp reads it; other programs need not).
 */
#ifndef DMAIL_CONF_H
#define DMAIL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "log.h"

struct conf_list {
    size_t n;
    char **v;
};

enum conf_type { CT_BOOL, CT_INT, CT_SIZE, CT_TIME, CT_STR, CT_LIST, CT_ENUM, CT_ROUTE, CT_DKIM };
enum { CF_RELOAD = 1, CF_RESTART = 2, CF_TABLE = 4, CF_PAIRS = 8, CF_NOEFFECT = 16 };

/* The enum settings' values, in the order of their choices in settings.def. */
enum { MBOX_FORMAT_MBOX, MBOX_FORMAT_MAILDIR };
/* log_level: LOGLVL_* of log.h, in the same order */
enum { AUTHENT_USERS_FILE, AUTHENT_UNIX_USER, AUTHENT_EXTERNAL };
enum { BARE_NL_REJECT, BARE_NL_NORMALIZE };
enum { SMARTHOST_TLS_MAY, SMARTHOST_TLS_REQUIRE };
enum { TLS_MIN_12, TLS_MIN_13 };

#define CTYPE_CT_BOOL bool
#define CTYPE_CT_INT long
#define CTYPE_CT_SIZE unsigned long long
#define CTYPE_CT_TIME long
#define CTYPE_CT_STR char *
#define CTYPE_CT_LIST struct conf_list
#define CTYPE_CT_ENUM int
#define CTYPE_CT_ROUTE struct route *    /* common/route.h: built while loading, owned */
#define CTYPE_CT_DKIM struct dkim_keys * /* common/dkim.h: keys read while loading, owned */

struct route;
struct dkim_keys;
struct alias_set;
struct lists_set;
struct milter_opts;

enum conf_setting_id {
#define SETTING(name, type, def, min, max, flags) CONF_##name,
#include "settings.def"
    CONF_NSETTINGS
};

struct conf {
    int refs;
    char *path;                /* the top-level file */
    time_t loaded;             /* when conf_load finished */
    char *main_domain;         /* first host_domain, lower case, A-label; "localhost" if none */
    struct alias_set *aliases; /* the alias files (alias.h); NULL if none */
    struct lists_set *lists;   /* dlist_path/lists.dat (lists.h); NULL if none */
    /* milter_options parsed once: one entry per milters item, in its order (fields -1 where
     * no line names that filter); NULL when milters is empty */
    struct milter_opts *milter_opts;
    /* where each setting came from: "file:line", or NULL for the default */
    char *origin[CONF_NSETTINGS];
#define SETTING(name, type, def, min, max, flags) CTYPE_##type name;
#include "settings.def"
};

/* One row of the settings table, for tools that list or explain settings. */
struct conf_setting {
    const char *name;
    enum conf_type type;
    const char *def;
    const char *choices; /* CT_ENUM only */
    long long min, max;
    int flags;
};
extern const struct conf_setting conf_settings[CONF_NSETTINGS];

/* Problems found while loading. */
struct conf_diag {
    int errors, warnings;
    size_t n;
    char **msgs; /* "file:line: reason" (warnings say "warning: ...") */
};

/* conf_default_path - the file to read: cli (from -c/-i) if given, else $DMAIL_CONF, else
 * /etc/dmail/dmail.conf if it exists, else DMail's /etc/dmail.conf. Returns a static or
 * the given string. */
const char *conf_default_path(const char *cli);

/* conf_load - parse path. Returns a snapshot with one reference, or NULL when there were
 * errors (a missing top-level file is an error). diag collects every message either way;
 * free it with conf_diag_free. diag must start zeroed ({0}); messages already in it are
 * kept and new ones appended, so one diag can gather the problems of several files. */
struct conf *conf_load(const char *path, struct conf_diag *diag);

/* conf_load_string - the same from a string (unit tests); name is used in messages. */
struct conf *conf_load_string(const char *name, const char *text, struct conf_diag *diag);

void conf_diag_free(struct conf_diag *diag);

/* conf_diag_add - record one "file:line: reason" (line 0: "file: reason"), an error or a
 * warning; for modules that check what they build from a snapshot (route.c). */
void conf_diag_add(struct conf_diag *d, bool warning, const char *file, int line, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

struct conf *conf_ref(struct conf *c);
void conf_unref(struct conf **c); /* sets *c to NULL */

/* conf_lookup - the table row for a setting name or synonym; NULL if unknown. */
const struct conf_setting *conf_lookup(const char *name);

/* conf_note - the NOTE text of setting id (what dmail does instead), or NULL. */
const char *conf_note(enum conf_setting_id id);

/* conf_format - the value in force of one setting as it would be written, into buf:
 * sizes and times with the largest exact suffix ("10M", "5d"), lists joined with ",".
 * Returns 0, or -1 when buf is too small (buf holds a cut, terminated value) or id is
 * unknown. host_domain entries read back as the lower-case A-labels they were stored as. */
int conf_format(const struct conf *c, enum conf_setting_id id, char *buf, size_t len);

/* conf_list_has - case-insensitive membership test. */
bool conf_list_has(const struct conf_list *l, const char *s);

/* conf_is_local_domain - domain (A-label, any case, a final dot allowed; a U-label is
 * converted) is one of host_domain. With no host_domain at all, main_domain "localhost" is
 * the one local domain. */
bool conf_is_local_domain(const struct conf *c, const char *domain);

/* conf_domain_in - domain (A-label or U-label, any case, a final dot allowed) is one of
 * the domains of a domain-list setting such as relay_to or forward_from: exact names, no
 * subdomains, no wildcards. */
bool conf_domain_in(const struct conf_list *l, const char *domain);

/* conf_ip_match - DMail wildcard list match for an address string: "1.2.3.*" prefix
 * match, "*" everything, a leading "!" negates (first matching entry wins), and CIDR
 * "10.0.0.0/8" or "::1/128" as a modern extension. */
bool conf_ip_match(const struct conf_list *l, const char *ip);
/* conf_ip_rule - the same, returning the entry that matched (for the log), or NULL when
 * none did or a "!" entry matched first. */
const char *conf_ip_rule(const struct conf_list *l, const char *ip);
/* conf_verp_delims_ok - v (XVERP=v, verp_delimiters) is two characters, each one of
 * verp_delimiter_filter (as Postfix's verp_delimiter_filter). */
bool conf_verp_delims_ok(const struct conf *c, const char *v);
/* conf_addr_rule - address wildcard list match for ban_mailfrom / ban_rcptto style lists:
 * '*' matches any run of characters, the rest itself in any case, against the whole
 * address ("user@domain"; "" for the null sender); a leading "!" negates; first matching
 * entry wins. Returns the entry that matched, or NULL. */
const char *conf_addr_rule(const struct conf_list *l, const char *addr);
/* conf_tls_policy - the server TLS policy of c (tls_min_version, tls_ciphers,
 * tls_ciphersuites) into *pol (tls.h); its strings point into c. */
struct tls_policy;
void conf_tls_policy(const struct conf *c, struct tls_policy *pol);

#endif
