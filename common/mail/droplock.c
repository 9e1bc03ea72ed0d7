/*
 * droplock - the mbox locks of the drop module (contract in drop.h): a dotlock PATH.lock
 * holding "PID NODE [SIZE]" and an fcntl write lock on the mbox, both retried until a
 * timeout; a stale dotlock is broken, and one left by an appender that died mid-write is
 * taken over and the torn tail cut off.
 */
#include "drop.h"
#include "drop_int.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DROPLOCK_STALE_SECS 300 /* a dotlock older than this is abandoned */

/* how one attempt at a lock went */
enum droplock_outcome { DROPLOCK_OK, DROPLOCK_BUSY, DROPLOCK_ERR };

/* droplock_stale - whether lock (as lstat'ed into *st) is abandoned: older than
 * DROPLOCK_STALE_SECS, empty for more than 10 s, or naming a dead process of this node. A lock
 * abandoned in the middle of an append names the mbox size before it ("PID NODE SIZE"):
 * *size gets it, else -1. */
static bool
droplock_stale(const char *lock, const char *node, struct stat *st, long long *size)
{
    bool stale;

    *size = -1;
    if (lstat(lock, st) != 0)
        return false;
    stale = time(NULL) - st->st_mtime > DROPLOCK_STALE_SECS;
    if (!stale && S_ISREG(st->st_mode) && st->st_size == 0 && time(NULL) - st->st_mtime > 10)
        stale = true; /* another program died between creating and filling it */
    if (S_ISREG(st->st_mode)) {
        char buf[320], owner[257];
        long pid = 0;
        ssize_t r = -1;
        int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            r = read(fd, buf, sizeof buf - 1);
            close(fd);
        }
        if (r > 0) {
            buf[r] = '\0';
            int f = sscanf(buf, "%ld %256s %lld", &pid, owner, size);
            if (!stale && f >= 2 && pid > 0 && strcmp(owner, node) == 0 &&
                kill((pid_t)pid, 0) != 0 && errno == ESRCH)
                stale = true;
            if (f < 3 || *size < 0)
                *size = -1;
        }
    }
    return stale;
}

/* droplock_same - lock is still the file st described. */
static bool
droplock_same(const char *lock, const struct stat *st)
{
    struct stat again;

    return lstat(lock, &again) == 0 && again.st_ino == st->st_ino &&
           again.st_mtime == st->st_mtime && again.st_size == st->st_size;
}

/* droplock_note_size - record in our dotlock the mbox size before an append, so that
 * whoever breaks the lock after a crash (kill -9 mid-write) cuts the torn message off. The
 * new content is longer than the old, so one pwrite replaces it whole. */
void
droplock_note_size(const char *path, const char *node, off_t size)
{
    char lock[DROP_PATH_MAX], buf[360];
    int fd, n;

    if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock)
        return;
    fd = open(lock, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    n = snprintf(buf, sizeof buf, "%ld %.256s %lld\n", (long)drop_pid(), node, (long long)size);
    if (pwrite(fd, buf, (size_t)n, 0) != n)
        log_warne("cannot note the size in %s", lock);
    close(fd);
}

/* droplock_recover_tail - after breaking a dead appender's lock: cut the mbox back to the size
 * it had before that append. */
static void
droplock_recover_tail(const char *path, int fd, off_t recover)
{
    struct stat st;

    if (recover < 0 || fstat(fd, &st) != 0 || st.st_size <= recover)
        return;
    if (ftruncate(fd, recover) != 0 || fsync(fd) != 0) {
        log_warne("cannot cut the torn tail of %s back to %lld bytes", path, (long long)recover);
        return;
    }
    log_warn("%s: removed %lld bytes of a delivery interrupted by a crash", path,
             (long long)(st.st_size - recover));
}

/* droplock_tmp - a private temporary file beside lock holding "PID NODE\n", its name
 * into tmp. 0, or -1 with *errp. */
static int
droplock_tmp(const char *lock, const char *node, char *tmp, size_t tmplen, int *errp)
{
    static _Atomic unsigned long seq;
    char buf[320];
    int fd, n;

    if (snprintf(tmp, tmplen, "%s.%ld.%lu", lock, (long)drop_pid(), ++seq) >= (int)tmplen) {
        *errp = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        *errp = errno;
        return -1;
    }
    n = snprintf(buf, sizeof buf, "%ld %.256s\n", (long)drop_pid(), node);
    if (write(fd, buf, (size_t)n) != n) {
        *errp = errno != 0 ? errno : ENOSPC;
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    return 0;
}

/* droplock_try - create the dotlock holding "PID NODE\n". The content is written to
 * a private temporary name first and then link(2)ed to the lock name, so the lock never
 * exists empty (a kill -9 mid-way leaves no anonymous lock) and creation is atomic on NFS
 * too. */
static enum droplock_outcome
droplock_try(const char *lock, const char *node, int *errp)
{
    char tmp[PATH_MAX];
    struct stat st;
    int rc;

    if (droplock_tmp(lock, node, tmp, sizeof tmp, errp) != 0)
        return DROPLOCK_ERR;
    rc = link(tmp, lock);
    if (rc != 0 && errno != EEXIST) {
        *errp = errno;
        unlink(tmp);
        return DROPLOCK_ERR;
    }
    /* link() may succeed on NFS while reporting failure: the link count decides. */
    if (rc != 0 && (stat(tmp, &st) != 0 || st.st_nlink != 2)) {
        unlink(tmp);
        return DROPLOCK_BUSY;
    }
    unlink(tmp);
    return DROPLOCK_OK;
}

/* droplock_fcntl - set or clear the write lock on the whole file. An open-file-description lock
 * where the kernel has them: it conflicts with the classic fcntl locks of mutt and procmail
 * and also with other threads of this process, and closing another descriptor of the same
 * file does not drop it. */
static enum droplock_outcome
droplock_fcntl(int fd, short type, int *errp)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int r;

#ifdef F_OFD_SETLK
    r = fcntl(fd, F_OFD_SETLK, &fl);
    if (r != 0 && errno == EINVAL) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = type;
        fl.l_whence = SEEK_SET;
        r = fcntl(fd, F_SETLK, &fl);
    }
#else
    r = fcntl(fd, F_SETLK, &fl);
#endif
    if (r == 0)
        return DROPLOCK_OK;
    if (errno == EAGAIN || errno == EACCES)
        return DROPLOCK_BUSY;
    *errp = errno;
    return DROPLOCK_ERR;
}

/* droplock_nap - sleep a little before retrying a lock: 10 ms growing to about 100 ms. */
static void
droplock_nap(unsigned tries)
{
    long ms = tries < 4 ? 10L << tries : 80;
    struct timespec ts;

    ms += (long)(drop_random32() % 20);
    ts.tv_sec = 0;
    ts.tv_nsec = ms * 1000000L;
    nanosleep(&ts, NULL);
}

/* droplock_elapsed - seconds since start on the monotonic clock. */
static double
droplock_elapsed(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* droplock_break - deal with a busy dotlock that may be abandoned. A plain stale lock
 * is removed (the caller tries again). One abandoned mid-append is taken over instead:
 * under the fcntl lock (which serialises breakers, since appenders cannot pass the dotlock
 * that still exists) it is replaced in one rename by ours, and the torn tail is cut off.
 * Nobody can append between the dead writer and the cut. DROPLOCK_OK: both locks are now
 * ours. */
static enum droplock_outcome
droplock_break(const char *path, const char *lock, int fd, const char *node)
{
    char tmp[PATH_MAX];
    struct stat st;
    long long size;
    int e = 0;

    if (!droplock_stale(lock, node, &st, &size))
        return DROPLOCK_BUSY;
    if (size < 0) {
        if (droplock_same(lock, &st))
            unlink(lock);
        return DROPLOCK_BUSY;
    }
    if (droplock_fcntl(fd, F_WRLCK, &e) != DROPLOCK_OK)
        return DROPLOCK_BUSY;
    if (droplock_same(lock, &st) && droplock_tmp(lock, node, tmp, sizeof tmp, &e) == 0) {
        if (rename(tmp, lock) == 0) {
            droplock_recover_tail(path, fd, (off_t)size);
            return DROPLOCK_OK;
        }
        unlink(tmp);
    }
    droplock_fcntl(fd, F_UNLCK, &e);
    return DROPLOCK_BUSY;
}

/* droplock_take - drop_lock with the node name written into the dotlock. */
enum drop_result
droplock_take(const char *path, int fd, long timeout, const char *node, char *err, size_t errlen)
{
    char lock[DROP_PATH_MAX];
    struct timespec start;
    const char *busy = "dotlock";
    int n = snprintf(lock, sizeof lock, "%s.lock", path);

    if (n < 0 || (size_t)n >= sizeof lock) {
        drop_err(err, errlen, ENAMETOOLONG, "%s", path);
        return DROP_PERM;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned tries = 0;; tries++) {
        int e = 0;
        enum droplock_outcome t = droplock_try(lock, node, &e);
        if (t == DROPLOCK_ERR) {
            drop_err(err, errlen, e, "cannot create %s", lock);
            return DROP_TEMP;
        }
        if (t == DROPLOCK_OK) {
            t = droplock_fcntl(fd, F_WRLCK, &e);
            if (t == DROPLOCK_OK)
                return DROP_OK;
            unlink(lock); /* never sit on one lock while waiting for the other */
            if (t == DROPLOCK_ERR) {
                drop_err(err, errlen, e, "cannot lock %s", path);
                return DROP_TEMP;
            }
            busy = "fcntl lock";
        } else {
            busy = "dotlock";
            if (droplock_break(path, lock, fd, node) == DROPLOCK_OK)
                return DROP_OK;
        }
        if (droplock_elapsed(&start) >= (double)timeout) {
            drop_err(err, errlen, 0, "mailbox locked: %s on %s held for %lds", busy, path, timeout);
            return DROP_TEMP;
        }
        droplock_nap(tries);
    }
}

enum drop_result
drop_lock(const char *path, int fd, long timeout, char *err, size_t errlen)
{
    char host[256];

    return droplock_take(path, fd, timeout, drop_node(NULL, host, sizeof host), err, errlen);
}

void
drop_unlock(const char *path, int fd)
{
    char lock[DROP_PATH_MAX];
    int e = 0;

    if (fd >= 0)
        droplock_fcntl(fd, F_UNLCK, &e);
    if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) < sizeof lock)
        unlink(lock);
}
