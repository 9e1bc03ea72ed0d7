/*
 * drop_int - what the files of the drop module share (drop.c: paths, unique names, mbox;
 * droplock.c: the mbox locks; dropdir.c: maildir). Not for use outside the module.
 */
#ifndef DMAIL_DROP_INT_H
#define DMAIL_DROP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "drop.h"

#define DROP_UNIQUE_MAX 70 /* a POP3 UID has at most 70 characters (RFC 1939) */
#define DROP_PATH_MAX 4096
#define DROP_IOV 64 /* pieces gathered per writev */

/* Gathered output: pieces point into the caller's buffers until flushed. */
struct drop_out {
    int fd;
    int n;
    int err; /* errno of the first failure, 0 if none */
    struct iovec iov[DROP_IOV];
};

/* drop_err - format a reason into err, then ": strerror(errnum)" if errnum is not 0. */
void drop_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* drop_errno_result - DROP_PERM for the errno values retrying cannot fix, else DROP_TEMP. */
enum drop_result drop_errno_result(int e);
/* drop_unique - a unique name (the UID) as described in drop.h. */
void drop_unique(char *buf, size_t len, const char *node);
/* drop_node - node when it is set (not NULL, not ""), else the host name (into buf). */
const char *drop_node(const char *node, char *buf, size_t len);
/* drop_pid - getpid(), asked once per process (a fork resets it). */
pid_t drop_pid(void);
/* drop_random32 - 32 random bits from a per-thread stream (not for secrets). */
uint32_t drop_random32(void);
/* drop_out_add / drop_out_flush - gather pieces (valid until the flush) and writev them,
 * retrying short writes; flush is 0 or -1 with o->err. */
void drop_out_add(struct drop_out *o, const void *p, size_t len);
int drop_out_flush(struct drop_out *o);
/* drop_items_fail - items i..n-1 fail with res and err. */
void drop_items_fail(struct drop_item *it, size_t i, size_t n, enum drop_result res,
                     const char *err);
/* droplock_take - drop_lock with node as the dotlock's owner (see drop.h). */
enum drop_result droplock_take(const char *path, int fd, long timeout, const char *node, char *err,
                               size_t errlen);
/* droplock_note_size - record in our dotlock of path the mbox size before an append, so
 * that whoever breaks the lock after a crash cuts the torn message off. */
void droplock_note_size(const char *path, const char *node, off_t size);
/* dropdir_deliver - the items into the maildir dir (drop_deliver_many for maildir). */
void dropdir_deliver(const char *dir, struct drop_item *it, size_t n, unsigned long long max,
                     const char *node);

#endif
