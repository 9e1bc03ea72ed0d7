/*
 * dropview - the read side of the dropfile store: a snapshot of one mailbox (mbox or
 * maildir) as a POP3 server sees it, the persistent index behind it, the conversion of a
 * stored message to what the client receives, and the crash-safe update at QUIT.
 *
 * Contract:
 * - Owns: struct dropview (the message list of one snapshot, its strings, and the mbox
 *   descriptor opened lazily for reading). The caller frees it with dropview_free.
 * - Blocks on: dropview_open, dropview_read and dropview_commit do file I/O, take locks and
 *   fsync: run them on the thread pool (uv_queue_work), never on the event loop. The
 *   conversion functions (dropview_conv_*) are pure and may run anywhere.
 * - One view is used by one thread at a time.
 *
 * What the client sees of a stored message ("client form"): CRLF line ends (a LF becomes
 * CRLF, an existing CRLF stays), mboxrd quoting undone (a line ^>+From  loses one '>'), the
 * mbox "From " line and the X-UIDL: line that drop_deliver wrote right after it left out,
 * and a final CRLF added when the stored text does not end with a newline. A message's
 * size (LIST, STAT) is the exact length of its client form, without dot-stuffing.
 *
 * mbox:
 * - A message starts at a "From " line at the start of the file or after an empty line;
 *   the empty line before it (and one at the end of the file) separates messages and
 *   belongs to none. Bytes before the first "From " line belong to no message.
 * - UID: the value of an "X-UIDL:" line directly after the "From " line (as drop_deliver
 *   writes it; a later X-UIDL header, which a sender could forge, is ignored) when it is a
 *   valid POP3 unique-id; otherwise "h" + 40 hex digits of SHA-256 over the "From " line,
 *   the first 16 KiB of the stored message and its client size. The "From " line holds the
 *   sender and the delivery time, so identical texts delivered at different times get
 *   different UIDs. A UID already taken in the mailbox gets "-2", "-3"... appended.
 *   UIDs do not depend on a message's position, so deleting others never changes them.
 * - Index: index_dir/XX/<sha256(path)>.idx, a text file (format in dropview.c) written
 *   atomically (temp file + rename). It records the file's dev, inode, size, mtime, a
 *   digest of its last 4 KiB, and per message offsets, sizes, flags and UID. At open it is
 *   used as it is when size and mtime match; extended by scanning only the new bytes
 *   (from the last message on) when the file has the same inode, has not shrunk and its
 *   old tail is unchanged; rebuilt otherwise. The "seen" flags survive a rebuild (by UID).
 *   The index is a cache: deleting it loses nothing but the seen flags.
 * - Opening takes the mbox locks (drop_lock: dotlock + fcntl) only while it reads the new
 *   bytes, so a delivery in progress is never half seen; the session does not hold them.
 * - Commit (UPDATE): lock; bring the index up to date (so mail delivered since the
 *   snapshot is in it); copy every message except the deleted ones (by UID), with any bytes
 *   before the first message, into a temp file in the same directory; fsync; rename it over
 *   the mbox; fsync the directory; unlock. At every instant the path names the old or the
 *   new file. The new file keeps the old mode, and owner when it can be set; when it cannot
 *   (the mbox belongs to someone else and we are not root) the commit fails DROP_PERM and
 *   nothing changes. Stale temp files (".dpop.*.tmp" older than an hour) are removed.
 *
 * maildir:
 * - The messages are the files in new/ and cur/ (names starting with '.' skipped), in
 *   name order (strverscmp). UID: the base name up to the first ',' or ':' when that is a
 *   valid unique-id, else "h" + hex SHA-256 of the base name. Sizes need a read of each file
 *   once; they are cached in the index by base name. A message in cur/ with 'S' among its
 *   ":2," flags is seen.
 * - Commit: deleted files are unlinked (found again in new/ or cur/ by base name if another
 *   client renamed them); seen files in new/ are renamed to cur/NAME:2,S; both directories
 *   are fsynced.
 *
 * Returns: enum drop_result (DROP_OK, DROP_TEMP: lock busy, I/O error; DROP_PERM: not a
 * mailbox we can serve) with a reason in err.
 */
#ifndef DMAIL_DROPVIEW_H
#define DMAIL_DROPVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "drop.h"

#define DROPVIEW_UID_MAX 70

enum dropview_flag {
    DV_SEEN = 1,       /* retrieved in an earlier session (mbox: index; maildir: cur/ + S) */
    DV_HAS_STATUS = 2, /* the header has a Status: line already */
    DV_HAS_BODY = 4,   /* there is an empty line ending the header */
};

/* One message of a snapshot. Offsets are into the mbox file (unused for maildir). */
struct dropview_msg {
    unsigned long long off;   /* mbox: the "From " line */
    unsigned long long start; /* first byte served (after From and X-UIDL lines) */
    unsigned long long end;   /* one past the last byte served */
    unsigned long long next;  /* the next message's "From " line, or the end of the file */
    unsigned long long size;  /* octets of the client form (no added Status line) */
    unsigned flags;           /* DV_* */
    unsigned uid_off;         /* the UID in the view's string pool; see dropview_uid */
    unsigned file_off;        /* maildir: "new/NAME" or "cur/NAME" in the pool */
};

struct dropview;

struct dropview_params {
    const char *path;      /* the mbox file or the maildir directory */
    int format;            /* MBOX_FORMAT_MBOX or MBOX_FORMAT_MAILDIR */
    const char *index_dir; /* where index files go; NULL or "" keeps none */
    long lock_timeout;     /* seconds */
};

/* dropview_open - take a snapshot of the mailbox (see above). A missing mbox or maildir is
 * an empty mailbox. On success *out is the view. */
enum drop_result dropview_open(const struct dropview_params *p, struct dropview **out, char *err,
                               size_t errlen);
void dropview_free(struct dropview **v);

size_t dropview_count(const struct dropview *v);
const struct dropview_msg *dropview_msg(const struct dropview *v, size_t i);
const char *dropview_uid(const struct dropview *v, size_t i);
/* dropview_total - sum of the sizes of all messages. */
unsigned long long dropview_total(const struct dropview *v);
int dropview_format(const struct dropview *v);

/* dropview_read - read up to len raw bytes of message i starting at raw offset pos (0 = the
 * first byte served) into buf. Returns the number read (0 at the end of the message) or -1
 * with errno (ESTALE when the file is no longer the snapshot's). Opens what it needs on
 * first use and keeps it open until dropview_free or the next message (maildir). */
long dropview_read(struct dropview *v, size_t i, unsigned long long pos, char *buf, size_t len);

/* Where one message lies in a buffer filled by dropview_read_msgs. */
struct dropview_span {
    size_t off, len;
};

/* dropview_read_msgs - read messages i, i + 1, ... whole (raw, as dropview_read gives
 * them), as many as fit in len bytes, at most max, into buf; span[k] tells where message
 * i + k is. mbox: one read of the file range they cover (the bytes between them are read
 * too and belong to none); maildir: one read per file. Returns the count read (0 when
 * message i alone does not fit in len), or -1 with errno (as dropview_read) when message i
 * cannot be read; a later message that cannot be read just ends the run. */
long dropview_read_msgs(struct dropview *v, size_t i, char *buf, size_t len,
                        struct dropview_span *span, size_t max);
/* dropview_read_msgs_cached - the same, but only what needs no waiting: it opens no file
 * and reads with RWF_NOWAIT, so it may run on an event loop. -1 with EAGAIN when that is
 * not enough (maildir, the mbox not opened by an earlier read yet, bytes not in the page
 * cache, a kernel or file system without RWF_NOWAIT): read on the pool then. */
long dropview_read_msgs_cached(struct dropview *v, size_t i, char *buf, size_t len,
                               struct dropview_span *span, size_t max);

/* dropview_commit - UPDATE: delete the messages with del[i] set, mark those with seen[i]
 * set as seen (either array may be NULL). See above for the crash story. */
enum drop_result dropview_commit(struct dropview *v, const unsigned char *del,
                                 const unsigned char *seen, char *err, size_t errlen);

/* Conversion of stored text to the client form, fed in pieces of any size. */
struct dropview_conv {
    /* settings (dropview_conv_init) */
    bool mboxrd;        /* undo mboxrd quoting */
    bool dotstuff;      /* double a leading '.' (POP3 multi-line responses) */
    const char *status; /* inserted before the empty line ending the header, or NULL */
    size_t status_len;
    long top; /* lines of body after the header (TOP); -1 for all */
    /* results */
    unsigned long long out; /* bytes produced so far */
    bool has_status;        /* a header line starting "Status:" was seen */
    bool has_body;          /* the empty line ending the header was seen */
    bool done;              /* top lines are out: feed no more */
    /* state */
    bool bol;       /* at the start of a line */
    bool in_header; /* before the first empty line */
    bool cr;        /* a CR is held back (it may start a CRLF) */
    bool gt;        /* a leading '>' is held back (it may quote "From ") */
    bool content;   /* the current line has content */
    unsigned from;  /* characters of "From " matched after leading '>'s (0: not matching) */
    unsigned stat;  /* characters of "status:" matched at the line start */
    long lines;     /* body lines produced */
};

/* DROPVIEW_CONV_BOUND - room dropview_conv_feed may need for n input bytes. */
#define DROPVIEW_CONV_BOUND(c, n) (2 * (n) + 16 + (c)->status_len)

void dropview_conv_init(struct dropview_conv *c, bool mboxrd, bool dotstuff, const char *status,
                        long top);
/* dropview_conv_feed - convert in[0..n) into out (NULL: count only), which has room for
 * DROPVIEW_CONV_BOUND(c, n) bytes. Returns the bytes written. Once c->done, input is
 * ignored. */
size_t dropview_conv_feed(struct dropview_conv *c, const char *in, size_t n, char *out);
/* dropview_conv_finish - flush what is held back and end an unterminated last line with
 * CRLF (room for 16 + status_len bytes). Returns the bytes written. */
size_t dropview_conv_finish(struct dropview_conv *c, char *out);

/* dropview_index_path - the index file of mailbox path under index_dir, into buf.
 * Returns 0 or -1 when it does not fit. */
int dropview_index_path(const char *index_dir, const char *path, char *buf, size_t len);

#endif
