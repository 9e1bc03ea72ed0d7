/*
 * drop - the dropfile store: where a user's mailbox is, and durable delivery into it
 * (mbox or maildir), with locking that interoperates with mail(1), mutt and procmail.
 *
 * Contract:
 * - Owns: nothing between calls; every call opens, locks, writes, fsyncs and closes.
 * - Batches: drop_deliver_many appends several messages to one mailbox as that many
 *   drop_deliver calls would, in order, but under one lock and with one fsync (mbox) or one
 *   fsync of new/ (maildir; each file is still fsynced). Every message has its own result:
 *   one that does not fit (drop_max, EFBIG, ENOSPC, ...) leaves nothing behind and the next
 *   one is tried; if the final fsync fails, every message of the batch fails and the mbox
 *   is cut back to its size before the batch. The dotlock records that size, so a crash in
 *   the middle of a batch is cut back by the next locker like a crash in one append.
 * - Blocks on: everything (open, locks, write, fsync). Run these on the thread pool
 *   (uv_queue_work) or in a command-line tool, never on the event loop.
 * - Message text given to drop_deliver is in local form: LF line ends, no dot-stuffing,
 *   no envelope "From " line. The store adds what the format needs.
 * - mbox: lock = dotlock PATH.lock (O_EXCL create, holding "PID NODE\n"; stale after 5
 *   minutes, or at once when NODE is ours and PID is dead) AND an fcntl write lock on the
 *   mbox, both retried until lock_timeout. The fcntl lock is an open-file-description lock
 *   (F_OFD_SETLK) where the kernel has them: it conflicts with the classic fcntl locks of
 *   mail(1), mutt and procmail, and also with other threads of this process. After locking,
 *   the locked file must still be the one at PATH (a compaction may have renamed a new one in
 *   meanwhile); otherwise it is reopened. Only a regular file with one link is written
 *   (a symlink, FIFO, directory or hard-linked file is DROP_PERM).
 *   Append "From SENDER DATE" (SENDER "MAILER-DAEMON" for <>, blanks and control characters
 *   as '_'; DATE asctime-style in UTC), "X-UIDL: <unique>", the prepend headers, the message
 *   with mboxrd quoting (^>*From  gets one more '>'), a newline if the text lacks one, and a
 *   blank line; fsync; on any error ftruncate back to the old size (and fsync), so a failed
 *   delivery leaves nothing. A file that does not end with a blank line gets one first.
 *   The output goes out in a few writev calls, whatever the size of the message.
 * - maildir: write tmp/UNIQUE,S=SIZE, fsync, link into new/ (rename if link is not
 *   supported), fsync new/, unlink tmp. tmp/, new/, cur/ are created (0700) as needed. The file
 *   holds the prepend headers and the text as given (no From line, no quoting, no X-UIDL).
 * - UNIQUE is "<time>.<pid>_<counter>_<random>.<node>", at most 70 characters of
 *   [A-Za-z0-9._-] (a valid POP3 UID). In mbox it is the X-UIDL value; in maildir it is the
 *   file name up to the first ',' (the UID stays the same when ":2,FLAGS" is added in cur/).
 * - drop_max: the mailbox may not grow beyond it (mbox: file size; maildir: the sizes in
 *   new/ and cur/); exceeding it is DROP_TEMP "mailbox full" (RFC 3463 4.2.2 is temporary).
 * - Errors: DROP_PERM for what retrying cannot fix (not a regular file, symlink, bad name,
 *   unknown format); everything else (lock busy, ENOSPC, EDQUOT, EFBIG, EIO, EACCES, ...)
 *   is DROP_TEMP. A process with RLIMIT_FSIZE should ignore SIGXFSZ so an oversized write
 *   fails with EFBIG instead of killing it.
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
    DROP_PERM = -2, /* will not work: path is not a regular file, a symlink... */
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
 * user is "user@domain" as file name). The hash directories use ASCII letters, digits and '-'
 * as they are, anything else as '_'; a one-letter name pads the second level with '_'
 * (DROP/a/a_/a). Returns 0, or -1 if it does not fit, hash_spool is not 0-2, or a name is
 * unsafe (empty, '/', leading '.' (so also ".."), control characters). A user of a vdomain
 * (vdomain.h) is "PREFIX<vdomain_separator>user" instead, or PREFIX/ as a directory before
 * the hash directories with drop_prefix, or has its domain's alt_drop_path as the root and
 * "user" as name; the hash directories then come from that name. */
int drop_path_for(const struct conf *cf, const char *user, const char *domain, char *buf,
                  size_t len);

/* drop_deliver - append msg to the mailbox at path in format fmt (MBOX_FORMAT_*).
 * lock_timeout in seconds; drop_max in bytes (0 = none); node names maildir files and
 * dotlock owners (lock_id or hostname). uidl (may be NULL) gets the UID written (size
 * >= 80; "" on failure). err gets a reason on failure. Missing parent directories are
 * created (0700). */
enum drop_result drop_deliver(const char *path, int fmt, const struct drop_msg *msg,
                              long lock_timeout, unsigned long long drop_max, const char *node,
                              char *uidl, char *err, size_t errlen);

/* One message of a drop_deliver_many batch: msg in; res, uidl (the UID written) and err
 * (the reason of a failure) out. */
struct drop_item {
    struct drop_msg msg;
    enum drop_result res;
    char uidl[80];
    char err[200];
};

/* drop_deliver_many - deliver the n items to the mailbox at path (as above), each getting
 * its own res/uidl/err. Parameters as for drop_deliver. Returns the number delivered. */
size_t drop_deliver_many(const char *path, int fmt, struct drop_item *items, size_t n,
                         long lock_timeout, unsigned long long drop_max, const char *node);

/* drop_lock / drop_unlock - the mbox locks alone (dotlock + fcntl on fd), for readers
 * and compaction. fd must be open for writing. drop_lock returns DROP_OK or DROP_TEMP after
 * timeout seconds (the dotlock names this host); the caller should then check that fd is
 * still the file at path (fstat vs lstat) and start over if not. drop_unlock releases both
 * (and removes PATH.lock). */
enum drop_result drop_lock(const char *path, int fd, long timeout, char *err, size_t errlen);
void drop_unlock(const char *path, int fd);

/* drop_mboxrd_write - write text with mboxrd quoting to fd (helper, exposed for tests):
 * returns 0 or -1 with errno. drop_mboxrd_unquote undoes it in place, returning the new
 * length (and NUL-terminating when that is shorter). */
int drop_mboxrd_write(int fd, const char *text, size_t len);
size_t drop_mboxrd_unquote(char *text, size_t len);

#endif
