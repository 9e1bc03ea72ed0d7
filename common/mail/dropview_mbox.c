/*
 * dropview_mbox - the mbox side of dropview (contract in dropview.h): scanning a file into
 * an index (whole or from the last message on), reading, and the compaction at UPDATE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "dropview_int.h"
#include "file.h"

#define DV_CHUNK (256 * 1024) /* bytes read at a time while scanning or copying */
#define DV_HEAD 96            /* bytes of a line looked at to classify it */
#define DV_HASHED 16384       /* bytes of a message that go into a derived UID */
#define DV_TMP_STALE 3600     /* seconds after which a left-over temp file is removed */
#define DV_REOPEN_MAX 4

/* ---- mbox: scanning ---- */

/* What to do with the rest of the current line once its head is classified. */
enum dv_linemode { DV_L_HEAD, DV_L_SKIP, DV_L_FEED, DV_L_HASH };

struct dv_scan {
    struct dropview *v;
    const struct dropview *old; /* seen flags carried over by UID; may be NULL */
    unsigned long long pos;     /* offset of the next byte */
    unsigned long long line_off;
    char head[DV_HEAD];
    size_t hlen;
    enum dv_linemode mode;
    bool prev_empty, this_empty;
    bool in_msg, first_line, from_line;
    struct dropview_msg cur;
    char uid[DROPVIEW_UID_MAX + 1];
    struct dropview_conv conv;
    EVP_MD_CTX *md;
    unsigned long long hashed;
    bool held; /* an empty line is held back: it separates messages if "From " follows */
    unsigned long long held_off;
    char held_bytes[2];
    size_t held_len;
};

/* dv_scan_feed - bytes of the current message that the client will see. */
static void
dv_scan_feed(struct dv_scan *s, const char *p, size_t n)
{
    dropview_conv_feed(&s->conv, p, n, NULL);
    if (s->hashed < DV_HASHED) {
        size_t k = n < DV_HASHED - s->hashed ? n : (size_t)(DV_HASHED - s->hashed);
        EVP_DigestUpdate(s->md, p, k);
        s->hashed += k;
    }
}

/* dv_scan_end_msg - the current message ends at boundary (the next "From " line or EOF). */
static void
dv_scan_end_msg(struct dv_scan *s, unsigned long long boundary)
{
    char uid[DROPVIEW_UID_MAX + 1], num[32];
    struct dropview_msg *m;

    if (!s->in_msg)
        return;
    if (s->from_line) /* a "From " line without a newline at the end of the file */
        s->cur.start = boundary;
    s->cur.end = s->held ? s->held_off : boundary;
    s->cur.next = boundary;
    if (s->cur.end < s->cur.start) /* "From " line then an empty line: nothing served */
        s->cur.end = s->cur.start;
    dropview_conv_finish(&s->conv, NULL);
    s->cur.size = s->conv.out;
    s->cur.flags = (s->conv.has_status ? DV_HAS_STATUS : 0) | (s->conv.has_body ? DV_HAS_BODY : 0);
    if (s->uid[0] != '\0') {
        snprintf(uid, sizeof uid, "%s", s->uid);
    } else {
        unsigned char md[32];
        unsigned len = 32;
        int n = snprintf(num, sizeof num, " %llu", s->cur.size);
        EVP_DigestUpdate(s->md, num, (size_t)n);
        EVP_DigestFinal_ex(s->md, md, &len);
        uid[0] = 'h';
        dv_hex(md, 20, uid + 1);
    }
    if (s->old != NULL) {
        long j = dv_find((struct dropview *)s->old, uid);
        if (j >= 0)
            s->cur.flags |= s->old->m[j].flags & DV_SEEN;
    }
    m = dv_add(s->v, &s->cur, uid, NULL);
    (void)m;
    s->in_msg = false;
    s->held = false;
}

/* dv_scan_xuidl - the complete line head[0..n) is "X-UIDL: value" with a valid value. */
static bool
dv_scan_xuidl(const char *head, size_t n, char *uid)
{
    size_t i = 7, end = n;

    if (n < 8 || strncasecmp(head, "X-UIDL:", 7) != 0)
        return false;
    if (end > 0 && head[end - 1] == '\n')
        end--;
    if (end > 0 && head[end - 1] == '\r')
        end--;
    while (i < end && (head[i] == ' ' || head[i] == '\t'))
        i++;
    while (end > i && (head[end - 1] == ' ' || head[end - 1] == '\t'))
        end--;
    if (!dv_uid_ok(head + i, end - i))
        return false;
    memcpy(uid, head + i, end - i);
    uid[end - i] = '\0';
    return true;
}

/* dv_scan_eol - the current line ended at s->pos. */
static void
dv_scan_eol(struct dv_scan *s)
{
    if (s->from_line) {
        s->cur.start = s->pos;
        s->from_line = false;
    }
    s->prev_empty = s->this_empty;
    s->line_off = s->pos;
    s->hlen = 0;
    s->mode = DV_L_HEAD;
}

/* dv_scan_decide - classify the current line by its head (complete: the head holds the
 * whole line with its LF). */
static void
dv_scan_decide(struct dv_scan *s, bool complete)
{
    bool empty = complete && (s->hlen == 1 || (s->hlen == 2 && s->head[0] == '\r'));

    s->this_empty = empty;
    if (s->prev_empty && s->hlen >= 5 && memcmp(s->head, "From ", 5) == 0) {
        dv_scan_end_msg(s, s->line_off);
        memset(&s->cur, 0, sizeof s->cur);
        s->cur.off = s->line_off;
        s->in_msg = true;
        s->first_line = true;
        s->from_line = true;
        s->uid[0] = '\0';
        s->hashed = 0;
        dropview_conv_init(&s->conv, true, false, NULL, -1);
        EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
        EVP_DigestUpdate(s->md, s->head, s->hlen);
        s->mode = DV_L_HASH;
    } else if (!s->in_msg) {
        s->mode = DV_L_SKIP;
    } else if (s->first_line && complete && dv_scan_xuidl(s->head, s->hlen, s->uid)) {
        s->first_line = false;
        s->cur.start = s->line_off + s->hlen;
        s->mode = DV_L_SKIP;
    } else {
        s->first_line = false;
        if (s->held) {
            dv_scan_feed(s, s->held_bytes, s->held_len);
            s->held = false;
        }
        if (empty) {
            s->held = true;
            s->held_off = s->line_off;
            memcpy(s->held_bytes, s->head, s->hlen);
            s->held_len = s->hlen;
            s->mode = DV_L_SKIP;
        } else {
            dv_scan_feed(s, s->head, s->hlen);
            s->mode = DV_L_FEED;
        }
    }
    if (complete)
        dv_scan_eol(s);
}

/* dv_scan_bytes - consume p[0..n), the bytes at s->pos. */
static void
dv_scan_bytes(struct dv_scan *s, const char *p, size_t n)
{
    while (n > 0) {
        if (s->mode == DV_L_HEAD) {
            size_t room = DV_HEAD - s->hlen, look = n < room ? n : room;
            const char *lf = memchr(p, '\n', look);
            size_t take = lf != NULL ? (size_t)(lf - p) + 1 : look;
            memcpy(s->head + s->hlen, p, take);
            s->hlen += take;
            s->pos += take;
            p += take;
            n -= take;
            if (lf != NULL || s->hlen == DV_HEAD)
                dv_scan_decide(s, lf != NULL);
            continue;
        }
        const char *lf = memchr(p, '\n', n);
        size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
        if (s->mode == DV_L_FEED)
            dv_scan_feed(s, p, take);
        else if (s->mode == DV_L_HASH)
            EVP_DigestUpdate(s->md, p, take);
        s->pos += take;
        p += take;
        n -= take;
        if (lf != NULL)
            dv_scan_eol(s);
    }
}

/* dv_pread_all - read exactly n bytes at off (fewer only at EOF); -1 on error. */
ssize_t
dv_pread_all(int fd, void *buf, size_t n, unsigned long long off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* dv_tail_digest - SHA-256 of the DV_TAIL bytes before size. */
static int
dv_tail_digest(int fd, unsigned long long size, unsigned char md[32])
{
    char buf[DV_TAIL];
    unsigned long long from = size > DV_TAIL ? size - DV_TAIL : 0;
    ssize_t r = dv_pread_all(fd, buf, (size_t)(size - from), from);

    if (r != (ssize_t)(size - from)) {
        if (r >= 0)
            errno = EIO;
        return -1;
    }
    dv_sha256(buf, (size_t)r, md);
    return 0;
}

/* dv_mbox_scan - index the bytes [from, to) of fd into v, as messages begin at from. */
static int
dv_mbox_scan(struct dropview *v, const struct dropview *old, int fd, unsigned long long from,
             unsigned long long to)
{
    struct dv_scan s = {.v = v, .old = old, .pos = from, .line_off = from, .prev_empty = true};
    char *buf = malloc(DV_CHUNK);
    int rc = 0;

    s.md = EVP_MD_CTX_new();
    if (buf == NULL || s.md == NULL) {
        free(buf);
        EVP_MD_CTX_free(s.md);
        errno = ENOMEM;
        return -1;
    }
    while (s.pos < to) {
        size_t want = to - s.pos < DV_CHUNK ? (size_t)(to - s.pos) : DV_CHUNK;
        ssize_t r = dv_pread_all(fd, buf, want, s.pos);
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* the file shrank while locked */
            rc = -1;
            break;
        }
        dv_scan_bytes(&s, buf, (size_t)r);
    }
    if (rc == 0) {
        if (s.mode == DV_L_HEAD && s.hlen > 0)
            dv_scan_decide(&s, false); /* a last line without a newline */
        dv_scan_end_msg(&s, to);
    }
    free(buf);
    EVP_MD_CTX_free(s.md);
    return rc;
}

/* dv_mbox_refresh - index the mbox open (and locked) as fd with status st into the empty
 * view v: reuse old where the file has only grown since, else scan it all. */
static enum drop_result
dv_mbox_refresh(struct dropview *v, const struct dropview *old, int fd, const struct stat *st,
                char *err, size_t errlen)
{
    unsigned long long from = 0, size = (unsigned long long)st->st_size;
    unsigned char md[32];
    char five[5];

    v->exists = true;
    v->dev = st->st_dev;
    v->ino = st->st_ino;
    v->mtime = st->st_mtim;
    v->size = size;
    if (old != NULL && old->exists && old->dev == st->st_dev && old->ino == st->st_ino &&
        old->size <= size && old->n > 0 && dv_tail_digest(fd, old->size, md) == 0 &&
        memcmp(md, old->tail, 32) == 0 && dv_pread_all(fd, five, 5, old->m[old->n - 1].off) == 5 &&
        memcmp(five, "From ", 5) == 0) {
        for (size_t i = 0; i + 1 < old->n; i++)
            dv_add(v, &old->m[i], old->pool + old->m[i].uid_off, NULL);
        from = old->m[old->n - 1].off;
    }
    if (dv_mbox_scan(v, old, fd, from, size) != 0 || dv_tail_digest(fd, size, v->tail) != 0) {
        drop_err(err, errlen, errno, "read %s", v->path);
        return DROP_TEMP;
    }
    return DROP_OK;
}

/* dv_mbox_open_locked - open path for reading and writing, lock it and make sure the
 * locked file is still the one at path. Returns the fd, -1 with *res, or -2 if it does
 * not exist. */
static int
dv_mbox_open_locked(const char *path, long timeout, struct stat *st, enum drop_result *res,
                    char *err, size_t errlen)
{
    for (int attempt = 0; attempt < DV_REOPEN_MAX; attempt++) {
        struct stat now;
        int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            if (errno == ENOENT)
                return -2;
            *res = drop_errno_result(errno);
            drop_err(err, errlen, errno, "cannot open %s", path);
            return -1;
        }
        if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
            *res = DROP_PERM;
            drop_err(err, errlen, 0, "%s is not a regular file", path);
            close(fd);
            return -1;
        }
        if (st->st_nlink != 1) { /* another name for someone else's file: as delivery */
            *res = DROP_PERM;
            drop_err(err, errlen, 0, "%s has %lu hard links", path, (unsigned long)st->st_nlink);
            close(fd);
            return -1;
        }
        *res = drop_lock(path, fd, timeout, err, errlen);
        if (*res != DROP_OK) {
            close(fd);
            return -1;
        }
        if (fstat(fd, st) == 0 && lstat(path, &now) == 0 && now.st_dev == st->st_dev &&
            now.st_ino == st->st_ino)
            return fd;
        drop_unlock(path, fd);
        close(fd);
    }
    *res = DROP_TEMP;
    drop_err(err, errlen, 0, "%s keeps being replaced", path);
    return -1;
}

/* dv_same_stat - the file is exactly as the view describes it. */
static bool
dv_same_stat(const struct dropview *v, const struct stat *st)
{
    return v->exists && v->dev == st->st_dev && v->ino == st->st_ino &&
           v->size == (unsigned long long)st->st_size && v->mtime.tv_sec == st->st_mtim.tv_sec &&
           v->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* dv_mbox_open - dropview_open for mbox. */
enum drop_result
dv_mbox_open(const struct dropview_params *p, struct dropview *v, char *err, size_t errlen)
{
    struct dropview *old = dv_index_load(p, v->index_path);
    enum drop_result res = DROP_OK;
    struct stat st;
    int fd;

    if (old != NULL && lstat(p->path, &st) == 0 && S_ISREG(st.st_mode) && dv_same_stat(old, &st)) {
        /* unchanged since the index was written: no lock, no read */
        for (size_t i = 0; i < old->n; i++)
            dv_add(v, &old->m[i], old->pool + old->m[i].uid_off, NULL);
        v->exists = true;
        v->dev = old->dev;
        v->ino = old->ino;
        v->size = old->size;
        v->mtime = old->mtime;
        memcpy(v->tail, old->tail, 32);
        dropview_free(&old);
        return DROP_OK;
    }
    fd = dv_mbox_open_locked(p->path, p->lock_timeout, &st, &res, err, errlen);
    if (fd == -2) {
        dropview_free(&old);
        return DROP_OK; /* no mailbox yet: empty */
    }
    if (fd >= 0) {
        res = dv_mbox_refresh(v, old, fd, &st, err, errlen);
        drop_unlock(p->path, fd);
        close(fd);
        if (res == DROP_OK)
            dv_index_save(v);
    }
    dropview_free(&old);
    return res;
}

/* dv_mbox_fd - open the snapshot's file for reading once: 0, or -1 with errno (ESTALE
 * when the path no longer names the file the snapshot describes, up to m). */
static int
dv_mbox_fd(struct dropview *v, const struct dropview_msg *m)
{
    struct stat st;

    if (v->fd >= 0)
        return 0;
    v->fd = open(v->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (v->fd < 0)
        return -1;
    if (fstat(v->fd, &st) != 0 || st.st_dev != v->dev || st.st_ino != v->ino ||
        (unsigned long long)st.st_size < m->next) {
        close(v->fd);
        v->fd = -1;
        errno = ESTALE;
        return -1;
    }
    return 0;
}

/* dv_pread_nowait - dv_pread_all from the page cache only (RWF_NOWAIT): -1 with EAGAIN
 * when the disk would be needed. */
static ssize_t
dv_pread_nowait(int fd, void *buf, size_t n, unsigned long long off)
{
    size_t got = 0;

    while (got < n) {
        struct iovec iov = {(char *)buf + got, n - got};
        ssize_t r = preadv2(fd, &iov, 1, (off_t)(off + got), RWF_NOWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)
                errno = EAGAIN; /* no RWF_NOWAIT here: the pool it is */
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* dv_mbox_read_msgs - dropview_read_msgs for mbox: one pread of the range (from the page
 * cache only, on an open descriptor, when nowait). */
long
dv_mbox_read_msgs(struct dropview *v, size_t i, char *buf, size_t len, struct dropview_span *span,
                  size_t max, bool nowait)
{
    unsigned long long base = v->m[i].start, want;
    size_t k = 0;
    ssize_t r;

    while (i + k < v->n && k < max && v->m[i + k].end - base <= len)
        k++;
    if (k == 0)
        return 0;
    if (nowait && v->fd < 0) {
        errno = EAGAIN; /* opening may wait for the disk */
        return -1;
    }
    if (dv_mbox_fd(v, &v->m[i]) != 0)
        return -1;
    want = v->m[i + k - 1].end - base;
    r = nowait ? dv_pread_nowait(v->fd, buf, (size_t)want, base)
               : dv_pread_all(v->fd, buf, (size_t)want, base);
    if (r < 0)
        return -1;
    if ((unsigned long long)r < want) {
        errno = ESTALE; /* the file shrank under us */
        return -1;
    }
    for (size_t j = 0; j < k; j++) {
        span[j].off = (size_t)(v->m[i + j].start - base);
        span[j].len = (size_t)(v->m[i + j].end - v->m[i + j].start);
    }
    return (long)k;
}

/* dv_mbox_read - dropview_read for mbox. */
long
dv_mbox_read(struct dropview *v, const struct dropview_msg *m, unsigned long long pos, char *buf,
             size_t len)
{
    unsigned long long avail;
    ssize_t r;

    if (dv_mbox_fd(v, m) != 0)
        return -1;
    avail = m->end - m->start;
    if (pos >= avail)
        return 0;
    if (len > avail - pos)
        len = (size_t)(avail - pos);
    r = dv_pread_all(v->fd, buf, len, m->start + pos);
    if (r >= 0 && (size_t)r < len) {
        errno = ESTALE; /* the file shrank under us */
        return -1;
    }
    return (long)r;
}

/* ---- mbox: commit ---- */

/* dv_copy - copy [from, to) of in to the end of out. */
static int
dv_copy(int in, int out, unsigned long long from, unsigned long long to, char *buf)
{
    while (from < to) {
        size_t want = to - from < DV_CHUNK ? (size_t)(to - from) : DV_CHUNK;
        ssize_t r = dv_pread_all(in, buf, want, from);
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            done += w;
        }
        from += (unsigned long long)r;
    }
    return 0;
}

/* dv_split - the directory and base name of path. */
static int
dv_split(const char *path, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);

    if (n >= dlen)
        return -1;
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    *base = slash == NULL ? path : slash + 1;
    return 0;
}

/* dv_clean_stale - remove temp files of earlier commits to base that a crash left. */
static void
dv_clean_stale(const char *dir, const char *base)
{
    char prefix[DV_PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t pl;
    time_t now = time(NULL);

    if (d == NULL)
        return;
    pl = (size_t)snprintf(prefix, sizeof prefix, ".dpop.%s.", base);
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t nl = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, pl) != 0 || nl < 4 ||
            strcmp(e->d_name + nl - 4, ".tmp") != 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > DV_TMP_STALE)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* dv_mbox_rewrite - write every message of cur not marked in gone (and the bytes before
 * the first message) to a temp file beside the mbox, fsync it and rename it over the mbox;
 * into nv the index of the new file. fd is the locked old file with status st. */
static enum drop_result
dv_mbox_rewrite(struct dropview *cur, const unsigned char *gone, int fd, const struct stat *st,
                struct dropview *nv, char *err, size_t errlen)
{
    char dir[DV_PATH_MAX], tmp[DV_PATH_MAX + 160], uq[128];
    const char *base;
    unsigned long long at = 0;
    struct stat nst;
    char *buf = NULL;
    int tfd = -1, e = 0;
    enum drop_result res = DROP_TEMP;

    if (dv_split(cur->path, dir, sizeof dir, &base) != 0) {
        drop_err(err, errlen, ENAMETOOLONG, "%s", cur->path);
        return DROP_PERM;
    }
    dv_clean_stale(dir, base);
    file_unique_name(uq, sizeof uq, NULL);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.dpop.%s.%s.tmp", dir, base, uq) >= sizeof tmp) {
        drop_err(err, errlen, ENAMETOOLONG, "%s", cur->path);
        return DROP_PERM;
    }
    tfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (tfd < 0) {
        drop_err(err, errlen, errno, "cannot create %s", tmp);
        return drop_errno_result(errno);
    }
    if ((st->st_uid != geteuid() || st->st_gid != getegid()) &&
        fchown(tfd, st->st_uid, st->st_gid) != 0) {
        drop_err(err, errlen, errno, "cannot give the new %s its owner", cur->path);
        res = DROP_PERM;
        goto fail;
    }
    if (fchmod(tfd, st->st_mode & 07777) != 0 || (buf = malloc(DV_CHUNK)) == NULL) {
        e = errno;
        goto io;
    }
    /* bytes before the first message stay */
    if (cur->n > 0 && dv_copy(fd, tfd, 0, cur->m[0].off, buf) != 0) {
        e = errno;
        goto io;
    }
    at = cur->n > 0 ? cur->m[0].off : 0;
    nv->exists = true;
    for (size_t i = 0; i < cur->n; i++) {
        const struct dropview_msg *m = &cur->m[i];
        struct dropview_msg nm = *m;
        if (gone[i])
            continue;
        if (dv_copy(fd, tfd, m->off, m->next, buf) != 0) {
            e = errno;
            goto io;
        }
        nm.off = at;
        nm.start = at + (m->start - m->off);
        nm.end = at + (m->end - m->off);
        nm.next = at + (m->next - m->off);
        at = nm.next;
        dv_add(nv, &nm, cur->pool + m->uid_off, NULL);
    }
    if (fsync(tfd) != 0 || fstat(tfd, &nst) != 0 || dv_tail_digest(tfd, at, nv->tail) != 0) {
        e = errno;
        goto io;
    }
    nv->dev = nst.st_dev;
    nv->ino = nst.st_ino;
    nv->size = at;
    nv->mtime = nst.st_mtim;
    if (rename(tmp, cur->path) != 0) {
        e = errno;
        goto io;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove any more */
    if (file_fsync_dir(dir) != 0) {
        e = errno;
        goto io;
    }
    free(buf);
    close(tfd);
    return DROP_OK;
io:
    drop_err(err, errlen, e, "rewriting %s", cur->path);
    res = drop_errno_result(e);
fail:
    free(buf);
    if (tfd >= 0)
        close(tfd);
    if (tmp[0] != '\0')
        unlink(tmp);
    return res;
}

/* dv_mbox_commit - dropview_commit for mbox. */
enum drop_result
dv_mbox_commit(struct dropview *v, const unsigned char *del, const unsigned char *seen, char *err,
               size_t errlen)
{
    struct dropview_params p = {v->path, v->format, NULL, v->lock_timeout};
    struct dropview *cur = NULL, *nv = NULL;
    unsigned char *gone = NULL;
    enum drop_result res = DROP_OK;
    size_t ngone = 0;
    struct stat st;
    int fd;

    fd = dv_mbox_open_locked(v->path, v->lock_timeout, &st, &res, err, errlen);
    if (fd == -2)
        return DROP_OK; /* the mailbox is gone: nothing to delete */
    if (fd < 0)
        return res;
    cur = dv_new(&p);
    if (cur == NULL) {
        res = DROP_TEMP;
        drop_err(err, errlen, ENOMEM, "dropview");
        goto out;
    }
    cur->index_path = v->index_path != NULL ? strdup(v->index_path) : NULL;
    /* bring the snapshot up to date: mail delivered since is in cur, kept */
    res = dv_mbox_refresh(cur, v, fd, &st, err, errlen);
    if (res != DROP_OK)
        goto out;
    gone = calloc(cur->n + 1, 1);
    if (gone == NULL) {
        res = DROP_TEMP;
        drop_err(err, errlen, ENOMEM, "dropview");
        goto out;
    }
    for (size_t i = 0; i < v->n; i++) {
        long j = (del && del[i]) || (seen && seen[i]) ? dv_find(cur, dropview_uid(v, i)) : -1;
        if (j < 0)
            continue;
        if (seen != NULL && seen[i])
            cur->m[j].flags |= DV_SEEN;
        if (del != NULL && del[i] && !gone[j]) {
            gone[j] = 1;
            ngone++;
        }
    }
    if (ngone == 0) {
        dv_index_save(cur);
        goto out;
    }
    nv = dv_new(&p);
    if (nv == NULL) {
        res = DROP_TEMP;
        drop_err(err, errlen, ENOMEM, "dropview");
        goto out;
    }
    nv->index_path = cur->index_path != NULL ? strdup(cur->index_path) : NULL;
    res = dv_mbox_rewrite(cur, gone, fd, &st, nv, err, errlen);
    if (res == DROP_OK)
        dv_index_save(nv);
out:
    drop_unlock(v->path, fd);
    close(fd);
    free(gone);
    dropview_free(&cur);
    dropview_free(&nv);
    return res;
}
