/*
 * members - a list's subscribers: the file work_path/dlist/LIST/members, one address a line,
 * in memory as a sorted set.
 *
 * Contract:
 * - Owns: struct members (the addresses, each malloc'd once).
 * - Blocks on: members_load and members_save do file I/O: dlist runs them on the thread
 *   pool or at start-up; the rest only touches memory.
 * - File: one address (local@domain) a line; '#' opens a comment line, blank lines and
 *   surrounding blanks are skipped; an address is kept in canonical form (addr.h: domain a
 *   lower-case A-label); a bad line or a repeated address is reported as `file:line:
 *   reason` and skipped (a hand-edited file never stops the list). A missing file is an
 *   empty list. At most MEMBERS_FILE_MAX bytes.
 * - Keys: addresses compare without regard to ASCII case (as mailbox providers do), so
 *   Bob@x and bob@x are one subscriber; the first spelling is kept.
 * - members_save writes the whole file atomically (file_write_atomic: temp, fsync, rename,
 *   fsync of the directory): after a crash it is the old or the new list, never a mix.
 */
#ifndef DLIST_MEMBERS_H
#define DLIST_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>

#define MEMBERS_FILE_MAX (64u << 20)

struct conf_diag;

struct members {
    size_t n, cap;
    char **v; /* canonical addresses, sorted case-insensitively */
};

/* members_load - path into *m (made empty first). Problems of lines go to diag (may be
 * NULL). 0, or -1 with errno when the file exists but cannot be read. */
int members_load(struct members *m, const char *path, struct conf_diag *diag);

/* members_parse - the same from len bytes of text named file. */
void members_parse(struct members *m, const char *file, const char *text, size_t len,
                   struct conf_diag *diag);

/* members_save - m into path atomically (its directory made if missing). 0 or -1. */
int members_save(const struct members *m, const char *path);

/* members_has - addr is a subscriber (any case). */
bool members_has(const struct members *m, const char *addr);

/* members_add - addr (any form local@domain) subscribed: 1 added, 0 already there, -1
 * not an address (reason in err). */
int members_add(struct members *m, const char *addr, char *err, size_t errlen);

/* members_remove - addr unsubscribed: 1 removed, 0 was not there. */
int members_remove(struct members *m, const char *addr);

/* members_free - every address; m is empty afterwards. */
void members_free(struct members *m);

#endif
