/*
 * qfile - the on-disk format of a queued message: dsmtp's queue (spool_dir/queue/) and the
 * sendmail drop (spool_dir/maildrop/) share it. Documented in man/dmail-queue.5.
 *
 * Contract:
 * - Owns: the struct qfile it fills (qfile_free releases it).
 * - Blocks on: file I/O. Thread pool or command-line tools only.
 * - qfile_write: written as TMPDIR/ID (TMPDIR on the same file system, e.g. DIR/../tmp),
 *   or as DIR/.ID when TMPDIR is NULL or DIR itself (the maildrop: readers skip dot-files),
 *   with O_EXCL, fsynced, renamed to DIR/ID, DIR fsynced: a reader sees either no file or
 *   the whole file, also after kill -9. Rewriting an existing ID (to record attempts)
 *   replaces it the same way. One writer per ID at a time: a temporary file of that ID is
 *   taken to be a crash's leftover and replaced. Values that could break the line format
 *   (CR or LF in sender, origin, an address or an error text; a bad id; a header line
 *   over 4096 bytes; no recipients without QF_RCPT_FROM_HEADERS; DSN values that
 *   dsnparam.h would refuse) make it fail with EINVAL before anything is written.
 * - DSN (RFC 3461): the message's RET, ENVID and default NOTIFY go into an optional "dsn"
 *   line, each recipient's NOTIFY and ORCPT into an optional "notify" line after its rcpt
 *   line; both are written only when something is set, so a file without DSN parameters
 *   is the same as before them, and files written before them read as "nothing set".
 * - VERP (Postfix's XVERP): the two delimiters go into an optional "verp" line after
 *   "flags", written only when set; files without it read as "no VERP". A recipient's own
 *   header fields (XHEADER, xtext as received) go into an optional "xheader" line after
 *   its rcpt (and notify) line.
 * - qfile_read refuses anything the format does not allow (wrong version, keywords out of
 *   order, rcpt lines not matching "rcpts", text shorter or longer than "size", the "end"
 *   trailer missing or followed by anything) with "line N: reason" in err.
 * - The message text is kept in local form (LF line ends, not dot-stuffed).
 */
#ifndef DMAIL_QFILE_H
#define DMAIL_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dsn.h"

enum qfile_rstate { QR_PENDING, QR_DONE, QR_FAILED };

struct qfile_rcpt {
    char *addr; /* local@domain */
    enum qfile_rstate state;
    int attempts;
    time_t next_try;  /* 0: as soon as possible */
    char *last_error; /* may be NULL */
    int notify;       /* DSN NOTIFY (DSN_NOTIFY_* of dsnparam.h), 0: not given */
    char *orcpt;      /* DSN ORCPT as received (xtext), or NULL */
    char *xheader;    /* its own header fields (XHEADER, xheader.h) as received, or NULL */
};

struct qfile {
    char id[96]; /* unique name (file_unique_name); set by qfile_write if empty */
    time_t arrival;
    char *sender;     /* envelope sender, "" for <> */
    char *origin;     /* "smtp 192.0.2.1 sid=..." or "sendmail uid=1000 user=bob" */
    int flags;        /* QF_* */
    enum dsn_ret ret; /* DSN RET */
    char *envid;      /* DSN ENVID as received (xtext), or NULL */
    int notify;       /* NOTIFY for recipients taken from the headers (sendmail -t -N) */
    char verp[3];     /* XVERP delimiters ("+="; addr_verp), "" for no VERP */
    size_t nrcpt;
    struct qfile_rcpt *rcpt;
    char *text; /* headers + body, LF line ends */
    size_t text_len;
};

enum {
    QF_HOLD = 1,
    QF_RCPT_FROM_HEADERS = 2, /* sendmail -t: take To/Cc/Bcc at pickup */
    QF_WARNED = 4,            /* the delay notice (queue_warn) went to the sender */
    QF_REQUIRETLS = 8,        /* MAIL FROM ... REQUIRETLS (RFC 8689): relayed only over
                               * verified TLS, and REQUIRETLS passed on */
};

/* qfile_verp_ok - v is "" or two delimiters a queue file can hold (printable, not space). */
bool qfile_verp_ok(const char *v);
/* qfile_add_rcpt - append a pending recipient (copies addr), no DSN parameters. */
void qfile_add_rcpt(struct qfile *q, const char *addr);
/* qfile_write - into dir (spool_dir/queue or spool_dir/maildrop); tmpdir is the temp
 * directory on the same file system. mode for the file. 0 or -1 with errno. */
int qfile_write(const char *dir, const char *tmpdir, struct qfile *q, int mode);
/* qfile_read - parse a file; 0, or -1 with a reason in err (a torn or foreign file). */
int qfile_read(const char *path, struct qfile *q, char *err, size_t errlen);
void qfile_free(struct qfile *q);
/* qfile_state_name - "pending", "done" or "failed"; NULL for an unknown state. */
const char *qfile_state_name(enum qfile_rstate s);
/* qfile_new_id - a fresh id from file_unique_name(node), made an RFC 5322 atom ('.' turned
 * into '-') that is safe as a file name. */
void qfile_new_id(char *id, size_t len, const char *node);
/* qfile_id_valid - id is usable as a queue file name ([A-Za-z0-9._-], no leading '.'). */
bool qfile_id_valid(const char *id);

#endif
