/*
 * drop - the dropfile store: where a user's mailbox is, and durable delivery into it
 * (mbox or maildir), with locking that interoperates with mail(1), mutt and procmail.
 *
 * Contract:
 * - Owns: nothing between calls; every call opens, locks, writes, fsyncs and closes.
 * - Blocks on: everything (open, locks, write, fsync). Run these on the thread pool
 *   (uv_queue_work) or in a command-line tool, never on the event loop.
 * - Message text given to drop_deliver is in local form: LF line ends, no dot-stuffing,
 *   no envelope "From " line. The store adds what the format needs.
 * - mbox: lock = dotlock PATH.lock (O_EXCL create, stale after 5 minutes) AND fcntl write
 *   lock on the mbox, both retried until lock_timeout. Append "From SENDER DATE" line, the
 *   prepend headers, the message with mboxrd quoting (^>*From  gets one more '>'), and a
 *   blank line; fsync; on any error ftruncate back to the old size (and fsync), so a failed
 *   delivery leaves nothing. A file that does not end with a blank line gets one first.
 * - maildir: write tmp/UNIQUE, fsync, link into new/UNIQUE (rename if link fails), fsync
 *   new/, unlink tmp. tmp/, new/, cur/ are created as needed.
 * - X-UIDL: drop_deliver adds "X-UIDL: <unique>" at the top of the prepend headers (mbox) so
 *   POP3 UIDs are stable; in maildir the unique file name is the UID.
 */
#ifndef DMAIL_DROP_H
#define DMAIL_DROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"

enum drop_result {
    DROP_OK = 0,
    DROP_TEMP = -1, /* try again later: lock busy, disk full, I/O error */
    DROP_PERM = -2, /* will not work: path is not a regular file, over drop_max... */
};

struct drop_msg {
    const char *sender;  /* envelope sender, "" for <> */
    const char *headers; /* prepended header lines, LF-terminated (Return-Path, Received) */
    size_t headers_len;
    const char *text; /* the message, LF line ends */
    size_t text_len;
};

/* drop_path_for - the dropfile path of a users-file user under cf->drop_path, spread by
 * hash_spool: 0 DROP/user, 1 DROP/u/user, 2 DROP/u/us/user (name lower-cased; a domain
 * user is "user@domain" as file name). Returns 0, -1 if it does not fit or the name is
 * unsafe ('/', leading '.', control characters). */
int drop_path_for(const struct conf *cf, const char *user, const char *domain, char *buf,
                  size_t len);

/* drop_deliver - append msg to the mailbox at path in format fmt (MBOX_FORMAT_*).
 * lock_timeout in seconds; drop_max in bytes (0 = none); node names maildir files and
 * dotlock owners (lock_id or hostname). uidl (may be NULL) gets the UID written (size
 * >= 80). err gets a reason on failure. Missing parent directories are created. */
enum drop_result drop_deliver(const char *path, int fmt, const struct drop_msg *msg,
                              long lock_timeout, unsigned long long drop_max, const char *node,
                              char *uidl, char *err, size_t errlen);

/* drop_lock / drop_unlock - the mbox locks alone (dotlock + fcntl on fd), for readers
 * and compaction. drop_lock returns DROP_OK or DROP_TEMP after timeout seconds. */
enum drop_result drop_lock(const char *path, int fd, long timeout, char *err, size_t errlen);
void drop_unlock(const char *path, int fd);

/* drop_mboxrd_quote - write text with mboxrd quoting to fd (helper, exposed for tests):
 * returns 0 or -1. drop_mboxrd_unquote undoes it in place, returning the new length. */
int drop_mboxrd_write(int fd, const char *text, size_t len);
size_t drop_mboxrd_unquote(char *text, size_t len);

#endif
