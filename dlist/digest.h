/*
 * digest - a list's digests: subscribers who asked for `digest on` get, instead of each
 * post, one message now and then holding the posts since the last one: as MIME
 * (multipart/mixed: a table of contents, then a multipart/digest of message/rfc822
 * parts, RFC 2046 5.1.5) or as RFC 1153 plain text (lists.dat digest_format). A digest
 * goes out when the pending posts reach digest_size or the first of them is
 * digest_interval hours old.
 *
 * Contract:
 * - Owns: under work_path/dlist/LIST/ the file digest.members (the digest subscribers, in
 *   the members format, members.h) and the directory digest/: pending (an mbox of the
 *   posts since the last issue), issue (the last issue's number), closing.N (the posts of
 *   issue N), N.msg (issue N as it is sent).
 * - Blocks on: everything (locks, file I/O, fsync): the thread pool only.
 * - Durability (kill -9 at any moment): digest_add appends with drop_deliver (locked,
 *   fsynced, cut back on error), so an acknowledged post is in pending. digest_take closes
 *   an issue by renaming pending to closing.N (new posts start a new pending), records N,
 *   writes N.msg atomically, and returns it; digest_sent removes N.msg and closing.N. A
 *   crash anywhere in between makes the next digest_take return the same issue N (the
 *   same posts and Message-ID), so a post is never lost and never in two issues; at worst
 *   an issue is sent twice to some subscribers after a crash during the sending.
 * - Exclusion: every function takes an flock on digest/.lock (processes) and the members
 *   lock (admin.h) where it touches a members file.
 * - Wiring: a post distributed to list L is added with digest_add for the digest members
 *   (post.c: they do not get it one by one); every spool scan (spool.c) calls digest_run,
 *   which takes each list's due issue, puts it in the outbox for the digest members and
 *   marks it sent; `digest on|off` by mail (request.c) calls digest_set_locked for the
 *   sender.
 */
#ifndef DLIST_DIGEST_H
#define DLIST_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DIGEST_PENDING_MAX (256u << 20) /* the largest pending digest read */

struct conf;
struct lists_def;
struct members;

/* An issue ready to send. */
struct digest_issue {
    long n;          /* its number */
    char path[4400]; /* N.msg: the whole message, LF line ends */
};

/* digest_set - addr's digest mode on list def: on needs addr to be a member. 1 changed, 0
 * it was so already, -1 (reason in err): not a member, a bad address, a file error. */
int digest_set(const struct conf *cf, const struct lists_def *def, const char *addr, bool on,
               char *err, size_t errlen);

/* digest_recipients - the members of def who take the digest, into *m (made empty
 * first): digest.members that are still members. 0, or -1 when a file cannot be read. */
int digest_recipients(const struct conf *cf, const struct lists_def *def, struct members *m);

/* digest_recipients_of, digest_set_locked - the same for a caller that holds the members
 * lock (a work job, work.h) and has the members in all. */
int digest_recipients_of(const struct conf *cf, const struct lists_def *def,
                         const struct members *all, struct members *m);
int digest_set_locked(const struct conf *cf, const struct lists_def *def, const struct members *all,
                      const char *addr, bool on, char *err, size_t errlen);

/* digest_run - the scan's turn (pool, spool.h): for each list, an issue that is due (or was
 * left by a crash) into the outbox (outdir, under the key LIST.digest.N, one XVERP
 * transaction from LIST-bounces to the digest members), then marked sent. */
void digest_run(const struct conf *cf, const char *outdir, time_t now);

/* digest_add - the post text[len] (local form) appended to the pending digest at when.
 * 0, or -1 with err. */
int digest_add(const struct conf *cf, const struct lists_def *def, const char *text, size_t len,
               char *err, size_t errlen);

/* digest_take - the issue to send now into *out: one left from before (a crash), else the
 * pending posts made an issue when due at now (or force and any are pending). 1 an issue
 * is in *out, 0 none is due, -1 with err. */
int digest_take(const struct conf *cf, const struct lists_def *def, time_t now, bool force,
                struct digest_issue *out, char *err, size_t errlen);

/* digest_sent - issue is sent: its files go. 0 or -1 with err. */
int digest_sent(const struct conf *cf, const struct lists_def *def,
                const struct digest_issue *issue, char *err, size_t errlen);

#endif
