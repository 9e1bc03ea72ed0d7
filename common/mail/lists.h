/*
 * lists - DList's lists.dat (REFERENCE 6.1): the mailing lists of one configuration
 * snapshot, and which list an address of dlist_domain belongs to.
 *
 * Contract:
 * - Owns: struct list_set. conf.c builds one at the end of every load (start-up, -t,
 *   reload) from dlist_path/lists.dat when dlist_path is set, and keeps it as cf->lists;
 *   conf_unref frees it with the snapshot. NULL is "no lists" (no dlist_path, or no
 *   lists.dat in it: DList's directory may exist before its first list).
 * - Blocks on: the file read of lists_build (where the snapshot is built: start-up or the
 *   thread pool). lists_parse and the lookups do no I/O; lookups only read the immutable
 *   set, on any thread.
 * - Format: a list opens with `list NAME` (the first line of each list); its settings
 *   follow one per line, `SETTING VALUE`, leading blanks ignored; `#` opens a comment
 *   line; blank lines are skipped. Settings (DMail's names): title, moderator (addresses,
 *   comma-separated; DMail's old `addr:password` form only with a crypt(3) hash), password
 *   (a crypt(3) hash, never plain text), archive, reply_to_user (a boolean or an address),
 *   max_size (K/M/G suffixes; default 1M), status_interval (days; default 7),
 *   subject_prefix, access_join|post|who|leave|get|list (anyone, members, moderator, or a
 *   '*' wildcard on the address), join_cookie, footer, welcome_file, leave_file (absolute
 *   paths, or relative to dlist_path), digest_format (mime, the default, or rfc1153),
 *   digest_size (default 30K; 0: not by size), digest_interval (hours, default 24; 0:
 *   not by time), dmarc_rewrite (auto, the default; always; never), bounce_score_threshold (default
 * 5), bounce_stale_days (7), bounce_warnings (3), bounce_warn_interval (days, 7). Defaults safer
 * than DMail's: access_leave member (only oneself; moderators anyone), join_cookie true (double
 * opt-in), access_who and access_get members.
 * - NAME: 1..LISTS_NAME_MAX of [a-z0-9._+-] (any case, kept lower case), not ending in
 *   -request, -owner, -bounces (those are the list's own addresses).
 * - Errors are `file:line: reason` into the diag: an unknown setting, a bad value, a
 *   setting before the first list, a list given twice (naming the first), a NUL byte, a
 *   line longer than LISTS_LINE_MAX. An unreadable
 *   file (other than missing) is an error; at most LISTS_FILE_MAX bytes.
 * - Addresses of a list NAME at dlist_domain (default main_domain): NAME (posts),
 *   NAME-request (commands), NAME-owner (to the moderators), NAME-bounces and
 *   NAME-bounces+ANYTHING (VERP bounces). Local parts compare without regard to case.
 */
#ifndef DMAIL_LISTS_H
#define DMAIL_LISTS_H

#include <stdbool.h>
#include <stddef.h>

#define LISTS_FILE "lists.dat"
#define LISTS_FILE_MAX (4u << 20) /* largest lists.dat read */
#define LISTS_NAME_MAX 64
#define LISTS_LINE_MAX 8192 /* longest lists.dat line, newline excluded */
#define LISTS_MODERATORS_MAX 32

struct conf;
struct conf_diag;

/* Who may do a thing (access_*). */
enum lists_access {
    LISTS_ANYONE,
    LISTS_MEMBERS,   /* subscribers (access_leave: only oneself) */
    LISTS_MODERATOR, /* the moderators only */
    LISTS_PATTERN,   /* addresses matching pattern ('*' any run, any case) */
};

struct lists_rule {
    enum lists_access who;
    char *pattern; /* LISTS_PATTERN only */
};

enum lists_rule_id {
    LISTS_JOIN,
    LISTS_POST,
    LISTS_WHO,
    LISTS_LEAVE,
    LISTS_GET,
    LISTS_LIST,
    LISTS_NRULES
};

/* dmarc_rewrite: rewrite From: to the list's address when the poster's domain publishes
 * p=quarantine or p=reject (auto, the default), for every post (always), or never. */
enum lists_dmarc { LISTS_DMARC_AUTO, LISTS_DMARC_ALWAYS, LISTS_DMARC_NEVER };

struct lists_def {
    char *name;         /* lower case */
    char *title;        /* "" if none */
    size_t nmoderators; /* addresses in canonical form */
    char **moderators;
    char *password; /* crypt(3) hash, or NULL */
    bool archive;
    bool reply_to_user; /* Reply-To: the poster */
    char *reply_to;     /* Reply-To: this address (later DList's form), or NULL */
    unsigned long long max_size;
    long status_interval; /* days */
    char *subject_prefix; /* "" if none */
    struct lists_rule access[LISTS_NRULES];
    bool join_cookie;
    bool digest_mime;               /* digest_format mime (multipart/digest), else RFC 1153 */
    unsigned long long digest_size; /* a digest goes out at this size (0: not by size) */
    long digest_interval;           /* hours: ... or when its first post is this old (0: no) */
    enum lists_dmarc dmarc_rewrite; /* From: rewriting for DMARC (dlist/dmarc.h) */
    /* bounce processing (dlist/vbounce.h): disabled at this score (a hard bounce counts 1,
     * a soft one 0.5, once a day), forgotten after stale days without one, warned this many
     * times every warn_interval days, then removed */
    long bounce_score_threshold, bounce_stale_days, bounce_warnings, bounce_warn_interval;
    char *footer, *welcome_file, *leave_file; /* absolute paths, or NULL */
    char *origin;                             /* "file:line" of its `list` line */
};

struct lists_set {
    size_t n;
    struct lists_def *v; /* in file order */
    char *domain;        /* dlist_domain (or main_domain), lower-case A-label */
};

/* The role of an address of a list. */
enum lists_role {
    LISTS_NONE,
    LISTS_ROLE_POST,
    LISTS_ROLE_REQUEST,
    LISTS_ROLE_OWNER,
    LISTS_ROLE_BOUNCES
};

/* lists_build - the lists of snapshot c (see the contract); NULL when none. Problems go
 * to diag. */
struct lists_set *lists_build(const struct conf *c, struct conf_diag *diag);

/* lists_parse - lists.dat's text (len bytes, need not be terminated) named file into a new
 * set; relative file names resolve against dir. Returns the number of errors (into diag);
 * *out is the set (NULL after errors or with no lists). domain is kept as the set's. */
int lists_parse(const char *file, const char *dir, const char *domain, const char *text, size_t len,
                struct conf_diag *diag, struct lists_set **out);

/* lists_smtp_host - dlist_smtp_host: HOST, HOST:PORT or [IPV6]:PORT. The host into
 * host[len] and the port into *port (0: none given) when they are not NULL. 0, or -1 when
 * spec is malformed. */
int lists_smtp_host(const char *spec, char *host, size_t len, int *port);

/* lists_free - the set; sets *ls to NULL. */
void lists_free(struct lists_set **ls);

/* lists_find - the list called name (any case), or NULL. */
const struct lists_def *lists_find(const struct lists_set *ls, const char *name);

/* lists_role - which list local@domain (local unquoted, domain a lower-case A-label)
 * addresses and as what; LISTS_NONE (and NULL) when it is no list address. For
 * LISTS_ROLE_BOUNCES, *verp (if not NULL) points at what followed "-bounces+" in local
 * ("" for none). */
enum lists_role lists_role(const struct lists_set *ls, const char *local, const char *domain,
                           const struct lists_def **def, const char **verp);

/* lists_access_text - "anyone", "members", "moderator" or the pattern. */
const char *lists_access_text(const struct lists_rule *r);

/* lists_may - may addr (canonical "local@domain") do what r guards? member says whether
 * addr is subscribed, moderator whether it is a moderator (moderators may everything). */
bool lists_may(const struct lists_rule *r, const char *addr, bool member, bool moderator);

/* lists_is_moderator - addr (any case) is one of def's moderators. */
bool lists_is_moderator(const struct lists_def *def, const char *addr);

#endif
