/*
 * outbox - the mail dlist has made and not yet handed to dsmtp: one file per SMTP
 * transaction in spool_dir/dlist/out/, named "KEY.N" after the spooled message KEY that
 * caused it (the Nth mail made for it).
 *
 * Contract:
 * - Blocks on: every function does file I/O: the thread pool or start-up only.
 * - File: "S <sender>\n", "T <made>\n" (when it was first made, seconds since the epoch;
 *   kept by a rewrite), "E <envid>\n" (the transaction's DSN ENVID "dlist-" and 24 hex
 *   digits, made once with the file: dsmtp knows a resend by it, txdedup.h), "V\n" when the
 *   transaction asks for XVERP, "L <list>\n" when the recipients are members of that list
 *   whose copies each get their own List-Unsubscribe fields (the one-click URL names the
 *   member: unsub.h, smtpout.h; a file without "L", as older dlists wrote, is sent as it
 *   is), one "R <rcpt>\n" per recipient, an empty line, then the message (LF line ends).
 *   Written whole with file_write_atomic (temp, fsync, rename, fsync of the directory): a
 *   file in out/ is complete or absent, also after kill -9.
 * - outbox_read refuses (-1, EINVAL) a file that is not in this form.
 * - outbox_drop_key removes every KEY.N (a message processed again after a crash makes
 *   its mail anew).
 */
#ifndef DLIST_OUTBOX_H
#define DLIST_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#define OUTBOX_DIR "out"
#define OUTBOX_FILE_MAX (256u << 20)
#define OUTBOX_TEXT_MAX (200u << 20) /* a message dlist makes */

struct outbox_msg {
    char *sender;   /* "" for <> */
    char *envid;    /* outbox_write makes it when NULL */
    long long made; /* outbox_write: now when 0 */
    bool xverp;
    char *list; /* "L": the list whose members get one-click fields per copy, or NULL */
    size_t nrcpt;
    char **rcpt;
    char *text; /* the message, LF line ends */
    size_t len;
    char *file; /* outbox_read: the whole file (text points into it) */
};

/* outbox_write - m as dir/name. 0, or -1 with errno. */
int outbox_write(const char *dir, const char *name, const struct outbox_msg *m);

/* outbox_read - path into *m (outbox_free it). 0, or -1 with errno. */
int outbox_read(const char *path, struct outbox_msg *m);

/* outbox_free - what outbox_read gave. */
void outbox_free(struct outbox_msg *m);

/* outbox_drop_key - remove dir/KEY.N for every N; the number removed, or -1. */
int outbox_drop_key(const char *dir, const char *key);

#endif
