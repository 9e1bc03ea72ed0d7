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
 *   postmaster) there. "*@domain" is refused with a hint, since '*' is a valid local part.
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

struct route;
struct conf_diag;

/* route_add - one forward line's value ("ALIAS DEST[,DEST...]") from file:line into *rt
 * (made on first use). 0, or -1 with reason (nothing added). */
int route_add(struct route **rt, const char *file, int line, const char *value, char *reason,
              size_t len);

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
    char chain[400];                    /* ROUTE_LOOP/DEPTH: "a@x -> b@x -> a@x" */
};

/* route_expand - where local@domain goes by the forwards (see the contract). is_user may
 * be NULL (catch-alls then apply to every address without a forward of its own). The
 * dest pointers live as long as rt. */
void route_expand(const struct route *rt, const char *local, const char *domain,
                  route_user_fn is_user, void *arg, struct route_expansion *x);

/* route_status_text - "forwarding loop" etc., for replies and logs. */
const char *route_status_text(enum route_status s);

#endif
