/*
 * archive - a list's archive (`archive true` in lists.dat, REFERENCE 6.3): every
 * distributed post appended to an mbox per month, dlist_path/archive/LIST/YYYY-MM, and the
 * static HTML archive beside it (archive_html.h) brought up to date; what the -request
 * commands `index` and `get FILE` answer from.
 *
 * Contract:
 * - Owns: the files under dlist_path/archive/LIST/ (the month mboxes and html/).
 * - Blocks on: everything (locks, writes, fsync): call these on the thread pool (the post
 *   path's job) or from the command line (`dlist archive LIST FILE...`), never on the loop.
 * - archive_store: the month is the UTC month of `when`; the append is drop_deliver's
 *   (drop.h): dotlock + fcntl lock, mboxrd quoting, fsync, cut back on any error, so after
 *   a crash a month mbox holds whole messages only. Only then is the HTML archive updated;
 *   an HTML failure is logged and does not fail the store (the mbox is the record;
 *   `dlist archive` can import the month again into a fresh html/).
 * - Names: a file of the archive is named YYYY-MM (a year 1970..9999, a month 01..12) and
 *   nothing else is served: no '/', no "..", no other file of the list's directory.
 * - Lists without `archive true` have no archive: store is a no-op (1), index and get
 *   refuse.
 * - Wiring (post path): after a post went out, archive_store(cf, def, sender, text, len,
 *   time(NULL), err, sizeof(err)) in the post's pool job; `index` answers with
 *   archive_index's text, `get FILE` with archive_get's (access_get checked by the caller).
 */
#ifndef DLIST_ARCHIVE_H
#define DLIST_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ARCHIVE_GET_MAX (64u << 20) /* the largest month `get` mails back */

struct conf;
struct lists_def;

/* archive_dir - dlist_path/archive/LIST into buf; 0, or -1 when it does not fit. */
int archive_dir(const struct conf *cf, const struct lists_def *def, char *buf, size_t len);

/* archive_name_ok - name is a month file name YYYY-MM (see Names). */
bool archive_name_ok(const char *name);

/* archive_store - the post text[len] (local form: LF line ends, no "From " line) from
 * envelope sender (may be "") into its month's mbox and the HTML archive. 0 stored, 1 the
 * list keeps no archive, -1 failed (nothing stored; reason in err). */
int archive_store(const struct conf *cf, const struct lists_def *def, const char *sender,
                  const char *text, size_t len, time_t when, char *err, size_t errlen);

/* archive_index - the archive's files, one line "YYYY-MM SIZE" each, oldest first
 * (malloc'd; "" when empty), or NULL with a reason in err (no archive kept). */
char *archive_index(const struct conf *cf, const struct lists_def *def, char *err, size_t errlen);

/* archive_get - the month mbox name (see Names) into *out (malloc'd, *outlen bytes). 0, or
 * -1 with a reason in err: a bad name, no such file, larger than ARCHIVE_GET_MAX. */
int archive_get(const struct conf *cf, const struct lists_def *def, const char *name, char **out,
                size_t *outlen, char *err, size_t errlen);

#endif
