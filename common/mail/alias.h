/*
 * alias - DMail's alias files (`alias_file`, `alias_file_domain`) in the sendmail
 * /etc/aliases format, read into route.c tables, and the lookups route_expand_aliases makes
 * in them after the `forward` lines.
 *
 * Contract:
 * - Owns: struct alias_set, one per configuration snapshot: conf.c builds it at the end of
 *   every load (start-up, -t, reload, clear_cache_all), so a reload re-reads every alias
 *   file, and a broken one makes the load fail (the old snapshot stays in force). conf_unref
 *   frees it with the snapshot.
 * - Blocks on: the file reads of alias_build (it runs where the snapshot is built: start-up
 *   or the thread pool). The lookups only read the immutable tables, on any thread.
 * - Format: `name: destination[, destination...]`. Lines opening with '#' are comments,
 *   blank lines are skipped, a line opening with a blank continues the entry above. name is
 *   a local part (quoted if it must be: "bob smith"), any case; `*` is the catch-all of the
 *   domain. A destination is a full address (of any domain: another domain is relayed), a
 *   bare local part (that user of the recipient's domain), `|command` or `/path` (kept as
 *   such, see route.h: dsmtp's delivery agent runs them; only in a file owned by root,
 *   else an error; quote them when they hold commas), or `:include:/file`: the addresses of that
 * file (commas or newlines between them, '#' comments), read at load, and honoured only when the
 * alias file and the included file are owned by root and the included one is not group- or
 *   world-writable (otherwise an error). Includes do not nest.
 * - Errors are `file:line: reason` in the diag (file not readable, bad name, bad
 *   destination, a name given twice, an include refused); at most ALIAS_FILE_MAX bytes.
 * - Lookups (local unquoted, any case; domain a lower-case A-label): alias_match gives the
 *   domain file's entry, else (no domain file, or alias_fallthrough) the global file's when
 *   the domain is local, else the first wildcard `alias` whose pattern matches.
 *   alias_catchall gives the domain file's `*`, else the global file's (same conditions),
 *   else `alias *@domain`.
 */
#ifndef DMAIL_ALIAS_H
#define DMAIL_ALIAS_H

#include <stdbool.h>
#include <stddef.h>

#define ALIAS_FILE_MAX (64u << 20) /* largest alias file read */

struct alias_set;
struct conf;
struct conf_diag;
struct route;

/* alias_build - the alias files of snapshot c (which it points back to, and must not
 * outlive). NULL when no alias setting is used. Problems go to diag. */
struct alias_set *alias_build(const struct conf *c, struct conf_diag *diag);

/* alias_free - the set; sets *al to NULL. */
void alias_free(struct alias_set **al);

/* alias_count - entries of all the files and wildcard aliases. */
size_t alias_count(const struct alias_set *al);

/* alias_match - the destination list (route.h's form) of local@domain, or NULL. */
const char *alias_match(const struct alias_set *al, const char *local, const char *domain);

/* alias_catchall - the catch-all list of domain, or NULL. */
const char *alias_catchall(const struct alias_set *al, const char *domain);

/* alias_parse - one alias file's text (modified in place) into *rt under domain ("" for
 * the global file); includes are honoured only when trusted (the file is root's). Each
 * problem goes to diag as file:line. Returns the number of errors. */
int alias_parse(struct route **rt, const char *file, const char *domain, char *text, size_t len,
                bool trusted, struct conf_diag *diag);

/* alias_file_arg - an alias_file_domain value "DOMAIN FILE" or "FILE DOMAIN" (the file is
 * the word holding a '/') into "domain file" (domain a lower-case A-label), malloc'd; NULL
 * with reason. */
char *alias_file_arg(const char *value, char *reason, size_t len);

#endif
