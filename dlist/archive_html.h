/*
 * archive_html - the static HTML archive of a list: ARCHIVE/html/index.html (the months),
 * and per month ARCHIVE/html/YYYY-MM/ with date.html (by date), thread.html (by thread:
 * In-Reply-To, else the last known References entry, within the month) and N.html, one
 * page per message, N counting from 1.
 *
 * Contract:
 * - Owns: ARCHIVE/html/ (ARCHIVE = dlist_path/archive/LIST, archive.h).
 * - Blocks on: everything (flock, file writes, fsync): the thread pool or the command line.
 * - Incremental: an add writes the new message page and its month's two index pages, and
 *   index.html only when the month is new; nothing else is read but the month's record
 *   YYYY-MM/msgs.dat (one line per message: N, time, Message-ID, parent N, From, Subject;
 *   tab-separated, appended with fsync). Pages are replaced atomically (file_write_atomic).
 *   Adds of one list exclude each other (flock on html/.lock), also across processes.
 * - Safety: nothing of a message reaches a page unescaped: headers are RFC 2047-decoded,
 *   bodies of text/plain parts decoded (quoted-printable, base64) and converted to UTF-8
 *   (mime.h: control characters and invalid bytes become U+FFFD), then every character is
 *   HTML-escaped (& < > " '). Other parts (text/html too) are only listed by type, name and
 *   size. No link is ever made from message content; the only links are the archive's own
 *   relative ones. Every page carries a Content-Security-Policy that forbids scripts and
 *   every remote load, and no-referrer.
 * - Crash: a crash between the page and its msgs.dat line leaves a page that the next add
 *   overwrites; a torn last line of msgs.dat is cut off before the next append.
 */
#ifndef DLIST_ARCHIVE_HTML_H
#define DLIST_ARCHIVE_HTML_H

#include <stddef.h>
#include <time.h>

#define ARCHIVE_HTML_TEXT_MAX (1u << 20) /* text of one part shown; the rest is cut */

struct buf;
struct lists_def;

/* archive_html_esc - s[len] HTML-escaped (& < > " ') into b (also for dlist's other pages). */
void archive_html_esc(struct buf *b, const char *s, size_t len);

/* archive_html_add - the message text[len] stored at when into month (YYYY-MM) of the HTML
 * archive under dir (the list's archive directory). 0, or -1 with a reason in err. */
int archive_html_add(const char *dir, const struct lists_def *def, const char *month,
                     const char *text, size_t len, time_t when, char *err, size_t errlen);

#endif
