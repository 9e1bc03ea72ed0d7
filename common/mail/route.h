/*
 * route - dmail.conf's `forward ALIAS DESTINATION[,DESTINATION...]` lines: the alias
 * table of one configuration snapshot, and the expansion of one recipient through it.
 *
 * Contract:
 * - Owns: struct route. conf.c builds one per snapshot (route_add for each forward line,
 *   route_finish once the whole file is read) and keeps it as cf->forward; conf_unref
 *   frees it with the snapshot (route_free). NULL is the empty table.
 * - Blocks on: nothing. Building runs wherever the snapshot is built (start-up, or a
 *   reload on the thread pool); route_expand and route_lookup only read the immutable
 *   table and may run on any thread.
 * - Keys: an alias is a full address. Its local part is compared without quoting and
 *   without regard to ASCII case ("Bob.Smith"@x = bob.smith@x), as user names are; the
 *   domain as a lower-case A-label. "@domain" is the catch-all of the domain: it applies
 *   to an address of that domain that has no forward of its own and is not a user (nor
 *   postmaster) there. "*@domain" is the same catch-all, written as DMail did.
 * - Alias files (alias.h) put their tables here too (route_add_list): keys "local@domain",
 *   "local@" for the global file, "@domain" / "@" for their catch-all "*". Their
 *   destination lists may hold, besides addresses, entries opening with a type byte:
 *   ROUTE_D_LOCAL (a bare local part, in written form: that user of the recipient's domain),
 *   ROUTE_D_PROGRAM ("|command") and ROUTE_D_FILE ("/path"). A program or file met while
 *   expanding is a final destination as it is (type byte first) among the dest of the
 *   expansion: dsmtp's delivery agent runs it (dsmtp/lda.h).
 * - Destinations are full addresses of any domain (one of another domain is relayed by
 *   dsmtp), at most ROUTE_EXPAND_MAX per line, kept in canonical written form (addr_format). A
 * destination that is itself an alias is expanded again, at most ROUTE_DEPTH_MAX aliases deep; a
 * destination equal to the alias it belongs to is final (the alias's own mailbox: "keep a copy").
 * An alias met again on the same chain is a forwarding loop. One recipient expands to at most
 * ROUTE_EXPAND_MAX distinct addresses.
 * - route_add reports a bad line in reason. route_finish reports into diag, each with its
 *   file:line, an alias given twice (naming the earlier line); at most 20 one by one.
 * - Memory: the strings of all lines in an arena, destination lists stored once per
 *   distinct list, an 8-byte entry per alias and a 4-byte slot index at most half full:
 *   about 4 MB for 100,000 lines of the form aliasN@domain user@domain. While building,
 *   8 more bytes per line say where it was written.
 */
#ifndef DMAIL_ROUTE_H
#define DMAIL_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_DEPTH_MAX 8    /* aliases on one chain */
#define ROUTE_EXPAND_MAX 100 /* addresses one recipient (or one line) expands to */
#define ROUTE_KEY_MAX (64 + 1 + 255 + 1)

#define ROUTE_D_PROGRAM '\x01' /* "|command": run by a local delivery agent */
#define ROUTE_D_FILE '\x02'    /* "/path": appended to by a local delivery agent */
#define ROUTE_D_LOCAL '\x03'   /* a bare local part: that user of the recipient's domain */

struct route;
struct conf_diag;
struct alias_set;

/* route_add - one forward line's value ("ALIAS DEST[,DEST...]") from file:line into *rt
 * (made on first use). 0, or -1 with reason (nothing added). */
int route_add(struct route **rt, const char *file, int line, const char *value, char *reason,
              size_t len);

/* route_add_list - one entry whose key and destinations are already parsed: local
 * (unquoted; "" the catch-all) at domain ("" for the global alias file), list the
 * destinations (addresses in canonical form or type-byte entries, each NUL-terminated, then
 * an empty string; listlen bytes in all). what names the table in messages ("alias"). 0,
 * or -1 with reason. */
int route_add_list(struct route **rt, const char *file, int line, const char *local,
                   const char *domain, const char *list, size_t listlen, const char *what,
                   char *reason, size_t len);

/* route_finish - the table is complete: index it (repeated aliases are errors, into diag
 * with file:line), drop what only building needed. Returns the number of errors. rt may
 * be NULL. */
int route_finish(struct route *rt, struct conf_diag *diag);

/* route_free - free the table; sets *rt to NULL. */
void route_free(struct route **rt);

/* route_count - aliases in the table (catch-alls included). */
size_t route_count(const struct route *rt);

/* route_bytes - heap bytes the finished table holds. */
size_t route_bytes(const struct route *rt);

/* route_format - "" for no forwards, else "N forwards, digest HEX" (the digest changes
 * with any line) into buf; 0, or -1 if buf is too small. */
int route_format(const struct route *rt, char *buf, size_t len);

/* route_lookup - the destinations of the exact alias local@domain (local unquoted, any
 * case; domain an A-label, any case; local "" asks for the catch-all "@domain") as a list
 * of NUL-terminated canonical addresses ended by an empty string, or NULL. */
const char *route_lookup(const struct route *rt, const char *local, const char *domain);

/* route_glob_lookup - the destinations of the first key (in file order) whose domain is
 * domain and whose local part, a pattern with '*' and '?', matches local (any case);
 * catch-alls ("@domain") never match. NULL if none. Linear: for the few `alias` lines. */
const char *route_glob_lookup(const struct route *rt, const char *local, const char *domain);

enum route_status {
    ROUTE_NONE,      /* no forward applies: deliver to the address itself */
    ROUTE_FORWARDED, /* dest[0..n) are the final addresses */
    ROUTE_LOOP,      /* an alias leads back to itself */
    ROUTE_DEPTH,     /* more than ROUTE_DEPTH_MAX aliases on one chain */
    ROUTE_TOO_MANY,  /* more than ROUTE_EXPAND_MAX addresses */
};

/* route_expand's question: is local@domain (local unquoted) a user or postmaster here?
 * A catch-all applies only when it is not. */
typedef bool (*route_user_fn)(void *arg, const char *local, const char *domain);

struct route_expansion {
    enum route_status status;
    size_t n;
    const char *dest[ROUTE_EXPAND_MAX]; /* canonical addresses, in the table's memory */
    char chain[400];                    /* ROUTE_LOOP/DEPTH: "a@x -> b@x -> a@x";
                                         */
    size_t made_len;
    char made[8192]; /* addresses made from ROUTE_D_LOCAL entries */
};

/* route_expand - where local@domain goes by the forwards (see the contract). is_user may
 * be NULL (catch-alls then apply to every address without a forward of its own). The
 * dest pointers live as long as rt. */
void route_expand(const struct route *rt, const char *local, const char *domain,
                  route_user_fn is_user, void *arg, struct route_expansion *x);

/* route_expand_aliases - the same, with the alias files al (NULL: none) after the
 * forwards: a forward of the address, else its domain's alias file, else (alias_fallthrough)
 * the global one, else a wildcard `alias`, else (not a user) a catch-all: the forward's,
 * the domain file's, the global file's, then `alias *@domain`. */
void route_expand_aliases(const struct route *rt, const struct alias_set *al, const char *local,
                          const char *domain, route_user_fn is_user, void *arg,
                          struct route_expansion *x);

/* route_status_text - "forwarding loop" etc., for replies and logs. */
const char *route_status_text(enum route_status s);

#endif
