/*
 * dropview - mailbox snapshots and the index file (contract in dropview.h; the mbox side
 * is in dropview_mbox.c, maildir in dropview_md.c, the client-form conversion in
 * dropview_conv.c).
 *
 * Index file (text, one record a line, numbers in decimal):
 *   dpopidx 1 mbox|maildir
 *   path PATH
 *   file DEV INO SIZE MTIME_SEC MTIME_NSEC TAIL_SHA256_HEX        (mbox)
 *   m OFF START END NEXT SIZE FLAGS UID                           (mbox, one per message)
 *   f SIZE FLAGS UID BASENAME                                     (maildir, one per file)
 *   end COUNT
 * A file that does not end with a matching "end" line is ignored (it is rebuilt).
 */
#include "hash.h"
#include "dropview.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "dropview_int.h"
#include "file.h"

/* dv_uid_ok - s[0..n) is a valid POP3 unique-id. */
bool
dv_uid_ok(const char *s, size_t n)
{
    if (n == 0 || n > DROPVIEW_UID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* dv_hex - n bytes as lower-case hex into out (2n + 1 bytes). */
void
dv_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* dv_sha256 - SHA-256 of p[0..n). */
void
dv_sha256(const void *p, size_t n, unsigned char md[32])
{
    unsigned int len = 32;

    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
}

/* dv_hash_uid - "h" + 40 hex digits of SHA-256 of the bytes. */
void
dv_hash_uid(const void *p, size_t n, char *uid)
{
    unsigned char md[32];

    dv_sha256(p, n, md);
    uid[0] = 'h';
    dv_hex(md, 20, uid + 1);
}

/* dv_new - an empty view for params. */
struct dropview *
dv_new(const struct dropview_params *p)
{
    struct dropview *v = calloc(1, sizeof *v);

    if (v == NULL)
        return NULL;
    v->path = strdup(p->path);
    v->format = p->format;
    v->lock_timeout = p->lock_timeout;
    v->fd = -1;
    if (v->path == NULL) {
        free(v);
        return NULL;
    }
    return v;
}

/* dropview_free - free a view and close its file. */
void
dropview_free(struct dropview **vp)
{
    struct dropview *v = *vp;

    if (v == NULL)
        return;
    if (v->fd >= 0)
        close(v->fd);
    free(v->path);
    free(v->index_path);
    free(v->m);
    free(v->pool);
    free(v->set);
    free(v);
    *vp = NULL;
}

/* dv_pool_add - copy s into the pool; returns its offset. Aborts on out of memory. */
static unsigned
dv_pool_add(struct dropview *v, const char *s)
{
    size_t n = strlen(s) + 1;
    unsigned off;

    if (v->plen + n > v->pcap) {
        size_t cap = v->pcap ? v->pcap * 2 : 256; /* small: idle sessions keep their view */
        while (cap < v->plen + n)
            cap *= 2;
        char *p = realloc(v->pool, cap);
        if (p == NULL)
            abort();
        v->pool = p;
        v->pcap = cap;
    }
    memcpy(v->pool + v->plen, s, n);
    off = (unsigned)v->plen;
    v->plen += n;
    return off;
}

/* dv_strhash - the hash of a string. */
static size_t
dv_strhash(const char *s)
{
    return (size_t)hash_str(s);
}

/* dv_set_put - enter message i into the UID table (which has room). */
static void
dv_set_put(struct dropview *v, size_t i)
{
    size_t mask = v->setcap - 1, h = dv_strhash(v->pool + v->m[i].uid_off) & mask;

    while (v->set[h] != 0)
        h = (h + 1) & mask;
    v->set[h] = (unsigned)i + 1;
}

/* dv_set_grow - make room for one more UID in the table. */
static void
dv_set_grow(struct dropview *v)
{
    size_t cap = v->setcap ? v->setcap : 8;

    if (v->setcap != 0 && (v->n + 1) * 2 <= v->setcap)
        return;
    while ((v->n + 1) * 2 > cap)
        cap *= 2;
    free(v->set);
    v->set = calloc(cap, sizeof *v->set);
    if (v->set == NULL)
        abort();
    v->setcap = cap;
    for (size_t i = 0; i < v->n; i++)
        dv_set_put(v, i);
}

/* dv_find - the index of the message with this UID, or -1. */
long
dv_find(struct dropview *v, const char *uid)
{
    size_t mask, h;

    if (v->setcap == 0)
        return -1;
    mask = v->setcap - 1;
    for (h = dv_strhash(uid) & mask; v->set[h] != 0; h = (h + 1) & mask)
        if (strcmp(v->pool + v->m[v->set[h] - 1].uid_off, uid) == 0)
            return (long)v->set[h] - 1;
    return -1;
}

/* dv_add - append a message with a UID made unique. */
struct dropview_msg *
dv_add(struct dropview *v, const struct dropview_msg *m, const char *uid, const char *file)
{
    char u[DROPVIEW_UID_MAX + 1];
    struct dropview_msg *nm;

    dv_set_grow(v);
    snprintf(u, sizeof u, "%s", uid);
    for (unsigned k = 2; dv_find(v, u) >= 0; k++) {
        char sfx[16];
        int sl = snprintf(sfx, sizeof sfx, "-%u", k);
        size_t keep = strlen(uid);
        if (keep > DROPVIEW_UID_MAX - (size_t)sl)
            keep = DROPVIEW_UID_MAX - (size_t)sl;
        snprintf(u, sizeof u, "%.*s%s", (int)keep, uid, sfx);
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct dropview_msg *p = realloc(v->m, cap * sizeof *p);
        if (p == NULL)
            abort();
        v->m = p;
        v->cap = cap;
    }
    nm = &v->m[v->n];
    *nm = *m;
    nm->uid_off = dv_pool_add(v, u);
    nm->file_off = file != NULL ? dv_pool_add(v, file) : 0;
    v->n++;
    dv_set_put(v, v->n - 1);
    v->total += nm->size;
    return nm;
}

/* dropview_count - messages in the snapshot. */
size_t
dropview_count(const struct dropview *v)
{
    return v->n;
}

/* dropview_msg - message i, or NULL. */
const struct dropview_msg *
dropview_msg(const struct dropview *v, size_t i)
{
    return i < v->n ? &v->m[i] : NULL;
}

/* dropview_uid - the UID of message i, or NULL. */
const char *
dropview_uid(const struct dropview *v, size_t i)
{
    return i < v->n ? v->pool + v->m[i].uid_off : NULL;
}

/* dropview_total - the sum of all sizes. */
unsigned long long
dropview_total(const struct dropview *v)
{
    return v->total;
}

/* dropview_format - the snapshot's mailbox format. */
int
dropview_format(const struct dropview *v)
{
    return v->format;
}

/* dropview_index_path - the index file of a mailbox path. */
int
dropview_index_path(const char *index_dir, const char *path, char *buf, size_t len)
{
    unsigned char md[32];
    char hex[65];
    int n;

    dv_sha256(path, strlen(path), md);
    dv_hex(md, 32, hex);
    n = snprintf(buf, len, "%s/%.2s/%s.idx", index_dir, hex, hex);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---- the index file ---- */

/* dv_index_parse_line - one record line of an index into v; -1 if it does not parse. */
static int
dv_index_parse_line(struct dropview *v, char *line)
{
    struct dropview_msg m = {0};
    char uid[DROPVIEW_UID_MAX + 2], name[1024], tail[65];
    unsigned long long dev, ino, size, sec, nsec;
    int pos = 0;

    if (strncmp(line, "m ", 2) == 0 && v->format == MBOX_FORMAT_MBOX) {
        if (sscanf(line, "m %llu %llu %llu %llu %llu %u %71s%n", &m.off, &m.start, &m.end, &m.next,
                   &m.size, &m.flags, uid, &pos) != 7 ||
            line[pos] != '\0' || !dv_uid_ok(uid, strlen(uid)))
            return -1;
        if (m.off > m.start || m.start > m.end || m.end > m.next || m.next > v->size ||
            (v->n > 0 && v->m[v->n - 1].next != m.off) || dv_find(v, uid) >= 0)
            return -1;
        dv_add(v, &m, uid, NULL);
        return 0;
    }
    if (strncmp(line, "f ", 2) == 0 && v->format == MBOX_FORMAT_MAILDIR) {
        if (sscanf(line, "f %llu %u %71s %1023s%n", &m.size, &m.flags, uid, name, &pos) != 4 ||
            line[pos] != '\0' || !dv_uid_ok(uid, strlen(uid)))
            return -1;
        dv_add(v, &m, uid, name);
        return 0;
    }
    if (strncmp(line, "file ", 5) == 0 && v->format == MBOX_FORMAT_MBOX) {
        if (sscanf(line, "file %llu %llu %llu %llu %llu %64s%n", &dev, &ino, &size, &sec, &nsec,
                   tail, &pos) != 6 ||
            line[pos] != '\0' || strlen(tail) != 64)
            return -1;
        v->exists = true;
        v->dev = (dev_t)dev;
        v->ino = (ino_t)ino;
        v->size = size;
        v->mtime.tv_sec = (time_t)sec;
        v->mtime.tv_nsec = (long)nsec;
        for (int i = 0; i < 32; i++) {
            unsigned x;
            if (sscanf(tail + 2 * i, "%2x", &x) != 1)
                return -1;
            v->tail[i] = (unsigned char)x;
        }
        return 0;
    }
    return -1;
}

/* dv_index_load - read an index file into a view. */
struct dropview *
dv_index_load(const struct dropview_params *p, const char *index_path)
{
    const char *fmt = p->format == MBOX_FORMAT_MAILDIR ? "maildir" : "mbox";
    struct dropview *v;
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int state = 0; /* 0 header, 1 path, 2 records, 3 end seen */
    bool bad = false;

    if (index_path == NULL || (f = fopen(index_path, "re")) == NULL)
        return NULL;
    v = dv_new(p);
    if (v == NULL) {
        fclose(f);
        return NULL;
    }
    while (!bad && (len = getline(&line, &cap, f)) > 0) {
        unsigned long long count;
        int pos = 0;
        if (line[len - 1] != '\n') {
            bad = true;
            break;
        }
        line[len - 1] = '\0';
        if (state == 0) {
            char want[32];
            snprintf(want, sizeof want, "dpopidx 1 %s", fmt);
            bad = strcmp(line, want) != 0;
            state = 1;
        } else if (state == 1) {
            bad = strncmp(line, "path ", 5) != 0 || strcmp(line + 5, p->path) != 0;
            state = 2;
        } else if (state == 2 && strncmp(line, "end ", 4) == 0) {
            bad = sscanf(line, "end %llu%n", &count, &pos) != 1 || line[pos] != '\0' ||
                  count != v->n || (v->format == MBOX_FORMAT_MBOX && !v->exists) ||
                  (v->format == MBOX_FORMAT_MBOX && v->n > 0 && v->m[v->n - 1].next != v->size);
            state = 3;
        } else if (state == 2) {
            bad = dv_index_parse_line(v, line) != 0;
        } else {
            bad = true;
        }
    }
    free(line);
    fclose(f);
    if (bad || state != 3) {
        dropview_free(&v);
        return NULL;
    }
    return v;
}

/* dv_parent_mkdirs - create the directories above path (0700). */
static int
dv_parent_mkdirs(const char *path)
{
    char dir[DV_PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof dir) {
        errno = ENOENT;
        return -1;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return file_mkdirs(dir, 0700);
}

/* dv_index_save - write a view's index file atomically. */
void
dv_index_save(const struct dropview *v)
{
    char tmp[DV_PATH_MAX + 160], uq[128], hex[65];
    FILE *f;
    int fd;

    if (v->index_path == NULL)
        return;
    file_unique_name(uq, sizeof uq, NULL);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%s.tmp", v->index_path, uq) >= sizeof tmp)
        return;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && dv_parent_mkdirs(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return;
    }
    fprintf(f, "dpopidx 1 %s\npath %s\n", v->format == MBOX_FORMAT_MAILDIR ? "maildir" : "mbox",
            v->path);
    if (v->format == MBOX_FORMAT_MBOX) {
        dv_hex(v->tail, 32, hex);
        fprintf(f, "file %llu %llu %llu %llu %ld %s\n", (unsigned long long)v->dev,
                (unsigned long long)v->ino, v->size, (unsigned long long)v->mtime.tv_sec,
                v->mtime.tv_nsec, hex);
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct dropview_msg *m = &v->m[i];
        if (v->format == MBOX_FORMAT_MBOX) {
            fprintf(f, "m %llu %llu %llu %llu %llu %u %s\n", m->off, m->start, m->end, m->next,
                    m->size, m->flags, v->pool + m->uid_off);
        } else {
            const char *name = v->pool + m->file_off;
            const char *base = strchr(name, '/');
            base = base != NULL ? base + 1 : name;
            fprintf(f, "f %llu %u %s %.*s\n", m->size, m->flags & ~(unsigned)DV_SEEN,
                    v->pool + m->uid_off, (int)strcspn(base, ":"), base);
        }
    }
    fprintf(f, "end %zu\n", v->n);
    if (fflush(f) != 0 || ferror(f)) {
        fclose(f);
        unlink(tmp);
        return;
    }
    fclose(f);
    if (rename(tmp, v->index_path) != 0)
        unlink(tmp);
}

/* dropview_open - take a snapshot of a mailbox. */
enum drop_result
dropview_open(const struct dropview_params *p, struct dropview **out, char *err, size_t errlen)
{
    char ipath[DV_PATH_MAX];
    struct dropview *v;
    enum drop_result res;

    *out = NULL;
    if (p->format != MBOX_FORMAT_MBOX && p->format != MBOX_FORMAT_MAILDIR) {
        drop_err(err, errlen, 0, "unknown mailbox format %d", p->format);
        return DROP_PERM;
    }
    v = dv_new(p);
    if (v == NULL) {
        drop_err(err, errlen, ENOMEM, "dropview");
        return DROP_TEMP;
    }
    if (p->index_dir != NULL && p->index_dir[0] != '\0' &&
        dropview_index_path(p->index_dir, p->path, ipath, sizeof ipath) == 0)
        v->index_path = strdup(ipath);
    if (p->format == MBOX_FORMAT_MBOX)
        res = dv_mbox_open(p, v, err, errlen);
    else
        res = dv_md_open(v, err, errlen);
    if (res != DROP_OK) {
        dropview_free(&v);
        return res;
    }
    *out = v;
    return DROP_OK;
}

/* ---- reading ---- */

/* dropview_read - raw bytes of message i from pos. */
long
dropview_read(struct dropview *v, size_t i, unsigned long long pos, char *buf, size_t len)
{
    const struct dropview_msg *m = dropview_msg(v, i);

    if (m == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (v->format == MBOX_FORMAT_MAILDIR)
        return dv_md_read(v, i, pos, buf, len);
    return dv_mbox_read(v, m, pos, buf, len);
}

/* dropview_read_msgs - whole messages from i on, as many as fit. */
long
dropview_read_msgs(struct dropview *v, size_t i, char *buf, size_t len, struct dropview_span *span,
                   size_t max)
{
    size_t used = 0, k = 0;

    if (i >= v->n) {
        errno = EINVAL;
        return -1;
    }
    if (v->format != MBOX_FORMAT_MAILDIR)
        return dv_mbox_read_msgs(v, i, buf, len, span, max, false);
    for (; i + k < v->n && k < max; k++) {
        size_t start = used;
        long r;
        for (;;) {
            if (used == len) { /* full: the message fits only if it ends here */
                char probe;
                r = dropview_read(v, i + k, used - start, &probe, 1);
                break;
            }
            r = dropview_read(v, i + k, used - start, buf + used, len - used);
            if (r <= 0)
                break;
            used += (size_t)r;
        }
        if (r != 0) { /* > 0: it does not fit; < 0: it cannot be read */
            if (r < 0 && k == 0)
                return -1;
            break;
        }
        span[k].off = start;
        span[k].len = used - start;
    }
    return (long)k;
}

/* dropview_read_msgs_cached - dropview_read_msgs without waiting (mbox only). */
long
dropview_read_msgs_cached(struct dropview *v, size_t i, char *buf, size_t len,
                          struct dropview_span *span, size_t max)
{
    if (i >= v->n) {
        errno = EINVAL;
        return -1;
    }
    if (v->format == MBOX_FORMAT_MAILDIR) {
        errno = EAGAIN; /* every message is a file to open */
        return -1;
    }
    return dv_mbox_read_msgs(v, i, buf, len, span, max, true);
}

/* dropview_commit - UPDATE: delete and mark seen, crash-safe. */
enum drop_result
dropview_commit(struct dropview *v, const unsigned char *del, const unsigned char *seen, char *err,
                size_t errlen)
{
    bool any = false;

    for (size_t i = 0; i < v->n && !any; i++)
        any = (del != NULL && del[i]) || (seen != NULL && seen[i]);
    if (!any)
        return DROP_OK;
    if (v->fd >= 0) {
        close(v->fd);
        v->fd = -1;
    }
    if (v->format == MBOX_FORMAT_MAILDIR)
        return dv_md_commit(v, del, seen, err, errlen);
    return dv_mbox_commit(v, del, seen, err, errlen);
}

/* dv_count_fd - client size and flags of the text read from fd. */
int
dv_count_fd(int fd, bool mboxrd, unsigned long long *size, unsigned *flags)
{
    struct dropview_conv c;
    char buf[65536];

    dropview_conv_init(&c, mboxrd, false, NULL, -1);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        dropview_conv_feed(&c, buf, (size_t)r, NULL);
    }
    dropview_conv_finish(&c, NULL);
    *size = c.out;
    *flags = (c.has_status ? DV_HAS_STATUS : 0) | (c.has_body ? DV_HAS_BODY : 0);
    return 0;
}
