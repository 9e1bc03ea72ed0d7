/*
 * drop - mailbox paths, unique names and mbox delivery (contract in drop.h); the mbox
 * locks are in droplock.c, maildir delivery in dropdir.c.
 *
 * Every function here blocks; dsmtp calls drop_deliver_many from the thread pool. No state
 * is kept between calls except what unique names need: a counter, the pid, random bits.
 */
#include "drop.h"
#include "drop_int.h"
#include "file.h"
#include "log.h"
#include "vdomain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DROP_NAME_MAX 512 /* user@domain as a file name */
#define DROP_SENDER_MAX 512
#define DROP_REOPEN_MAX 4 /* times the mbox may be replaced under us while we wait */

static atomic_uint drop_counter;

/* drop_err - format a reason into err, followed by ": strerror(errnum)" if errnum. */
void
drop_err(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (errnum != 0 && n >= 0 && (size_t)n < errlen) {
        char eb[128];
        snprintf(err + n, errlen - (size_t)n, ": %s", strerror_r(errnum, eb, sizeof eb));
    }
}

/* drop_errno_result - whether an errno is worth retrying (most are) or final. */
enum drop_result
drop_errno_result(int e)
{
    switch (e) {
    case ELOOP:
    case EISDIR:
    case ENOTDIR:
    case ENXIO:
    case ENAMETOOLONG:
        return DROP_PERM;
    default:
        return DROP_TEMP;
    }
}

/* drop_node - the node name to use: node, else the host name. */
const char *
drop_node(const char *node, char *buf, size_t len)
{
    if (node != NULL && node[0] != '\0')
        return node;
    file_hostname(buf, len);
    return buf;
}

static _Atomic pid_t drop_pid_cache;
static void drop_pid_atfork(void); /* 0: not known (yet, or since a fork) */

/* drop_pid_forgotten - in the child of a fork: our pid changed. */
static void
drop_pid_forgotten(void)
{
    drop_pid_cache = 0;
}

/* drop_pid_atfork - register the reset for fork children (once). */
static void
drop_pid_atfork(void)
{
    pthread_atfork(NULL, NULL, drop_pid_forgotten);
}

/* drop_pid - getpid(), asked once per process (a fork resets it): it is in every UID. */
pid_t
drop_pid(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pid_t p = drop_pid_cache;

    if (p == 0) {
        pthread_once(&once, drop_pid_atfork);
        p = getpid();
        drop_pid_cache = p;
    }
    return p;
}

/* drop_random32 - 32 random bits: a per-thread splitmix64 stream seeded once from getrandom
 * (else clock, pid and thread), not one system call per message. */
uint32_t
drop_random32(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local bool seeded;
    uint64_t z;

    if (!seeded) {
        if (getrandom(&state, sizeof state, GRND_NONBLOCK) != (ssize_t)sizeof state) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                    ((uint64_t)getpid() * 2654435761u) ^ (uint64_t)(uintptr_t)&state;
        }
        seeded = true;
    }
    z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* drop_unique - "<time>.<pid>_<counter>_<random>.<node>" in at most DROP_UNIQUE_MAX
 * characters drawn from [A-Za-z0-9._-], so it is a valid file name and POP3 UID. */
void
drop_unique(char *buf, size_t len, const char *node)
{
    char host[256];
    unsigned cnt = atomic_fetch_add(&drop_counter, 1);
    size_t max = len - 1 < DROP_UNIQUE_MAX ? len - 1 : DROP_UNIQUE_MAX;
    int n;

    node = drop_node(node, host, sizeof host);
    n = snprintf(buf, len, "%lld.%ld_%u_%08x.", (long long)time(NULL), (long)drop_pid(), cnt,
                 (unsigned)drop_random32());
    if (n < 0 || (size_t)n >= max)
        return;
    for (size_t i = (size_t)n; i < max && *node != '\0'; i++, node++) {
        unsigned char c = (unsigned char)*node;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
        buf[i] = ok ? (char)c : '_';
        buf[i + 1] = '\0';
    }
}

/* drop_name_ok - a user or domain is safe as (part of) a file name. */
static bool
drop_name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '.')
        return false; /* also "." and ".." */
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* drop_hash_char - a name byte as a hash directory character (ASCII letters, digits, '-'
 * stay, anything else becomes '_'). */
static char
drop_hash_char(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return c;
    return '_';
}

int
drop_path_for(const struct conf *cf, const char *user, const char *domain, char *buf, size_t len)
{
    char name[DROP_NAME_MAX], dir[DROP_NAME_MAX], h1, h2;
    const char *root, *alt;
    struct vdomain vd;
    size_t rootlen;
    int n;

    if (cf == NULL || user == NULL || buf == NULL || len == 0)
        return -1;
    root = cf->drop_path;
    if (root == NULL || root[0] == '\0' || !drop_name_ok(user))
        return -1;
    dir[0] = '\0';
    if (domain != NULL && domain[0] != '\0' && vdomain_find(cf, domain, &vd)) {
        /* a vdomain user: alt_drop_path/user, DROP/prefix/user or DROP/prefix<sep>user */
        if ((alt = vdomain_alt_path(cf, vd.domain)) != NULL) {
            root = alt;
            n = snprintf(name, sizeof name, "%s", user);
        } else if (cf->drop_prefix) {
            snprintf(dir, sizeof dir, "%s/", vd.prefix);
            n = snprintf(name, sizeof name, "%s", user);
        } else {
            n = snprintf(name, sizeof name, "%s%s%s", vd.prefix,
                         cf->vdomain_separator ? cf->vdomain_separator : "_", user);
        }
    } else if (domain != NULL && domain[0] != '\0') {
        if (!drop_name_ok(domain))
            return -1;
        n = snprintf(name, sizeof name, "%s@%s", user, domain);
    } else {
        n = snprintf(name, sizeof name, "%s", user);
    }
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    for (char *p = name; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    rootlen = strlen(root);
    while (rootlen > 1 && root[rootlen - 1] == '/')
        rootlen--;
    h1 = drop_hash_char(name[0]);
    h2 = name[1] != '\0' ? drop_hash_char(name[1]) : '_';
    switch (cf->hash_spool) {
    case 0:
        n = snprintf(buf, len, "%.*s/%s%s", (int)rootlen, root, dir, name);
        break;
    case 1:
        n = snprintf(buf, len, "%.*s/%s%c/%s", (int)rootlen, root, dir, h1, name);
        break;
    case 2:
        n = snprintf(buf, len, "%.*s/%s%c/%c%c/%s", (int)rootlen, root, dir, h1, h1, h2, name);
        break;
    default:
        return -1;
    }
    if (n < 0 || (size_t)n >= len)
        return -1;
    return 0;
}

/* drop_out_flush - write the gathered pieces, retrying short writes and EINTR. */
int
drop_out_flush(struct drop_out *o)
{
    struct iovec *v = o->iov;
    int n = o->n;

    while (n > 0 && o->err == 0) {
        ssize_t w = writev(o->fd, v, n);
        if (w < 0) {
            if (errno != EINTR)
                o->err = errno;
            continue;
        }
        if (w == 0) {
            o->err = EIO;
            break;
        }
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    o->n = 0;
    return o->err != 0 ? -1 : 0;
}

/* drop_out_add - gather len bytes at p (which must stay valid until the next flush). */
void
drop_out_add(struct drop_out *o, const void *p, size_t len)
{
    if (len == 0 || o->err != 0)
        return;
    if (o->n == DROP_IOV)
        drop_out_flush(o);
    o->iov[o->n].iov_base = (void *)p;
    o->iov[o->n].iov_len = len;
    o->n++;
}

/* drop_is_from - the line starting at p (len bytes left) matches ^>*From . */
static bool
drop_is_from(const char *p, size_t len)
{
    size_t i = 0;

    while (i < len && p[i] == '>')
        i++;
    return len - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

/* drop_quote - gather text into o (if not NULL) with mboxrd quoting; returns the number of
 * '>' added, so a NULL o just counts. */
static size_t
drop_quote(struct drop_out *o, const char *text, size_t len)
{
    size_t added = 0, start = 0, pos = 0;

    while (pos < len) {
        const char *nl;
        if ((text[pos] == 'F' || text[pos] == '>') && drop_is_from(text + pos, len - pos)) {
            if (o != NULL) {
                drop_out_add(o, text + start, pos - start);
                drop_out_add(o, ">", 1);
            }
            start = pos;
            added++;
        }
        nl = memchr(text + pos, '\n', len - pos);
        pos = nl != NULL ? (size_t)(nl - text) + 1 : len;
    }
    if (o != NULL)
        drop_out_add(o, text + start, len - start);
    return added;
}

int
drop_mboxrd_write(int fd, const char *text, size_t len)
{
    struct drop_out o = {.fd = fd};

    drop_quote(&o, text, len);
    if (drop_out_flush(&o) != 0) {
        errno = o.err;
        return -1;
    }
    return 0;
}

size_t
drop_mboxrd_unquote(char *text, size_t len)
{
    size_t r = 0, w = 0;

    while (r < len) {
        const char *nl;
        size_t end;
        if (text[r] == '>' && drop_is_from(text + r, len - r))
            r++;
        nl = memchr(text + r, '\n', len - r);
        end = nl != NULL ? (size_t)(nl - text) + 1 : len;
        memmove(text + w, text + r, end - r);
        w += end - r;
        r = end;
    }
    if (w < len)
        text[w] = '\0';
    return w;
}

/* drop_asctime - an asctime(3)-style UTC date without the newline, locale-independent:
 * "Thu Nov 25 09:00:00 2026". */
static void
drop_asctime(char *buf, size_t len, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday % 7], months[tm.tm_mon % 12],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

/* drop_from_line - "From SENDER DATE\n"; the sender's blanks and control characters become
 * '_' so the line stays one line of two fields. Returns its length. */
static size_t
drop_from_line(char *buf, size_t len, const char *sender)
{
    char date[64];
    size_t n;

    if (sender == NULL || sender[0] == '\0')
        sender = "MAILER-DAEMON";
    drop_asctime(date, sizeof date, time(NULL));
    memcpy(buf, "From ", 5);
    n = 5;
    for (const unsigned char *s = (const unsigned char *)sender;
         *s != '\0' && n < 5 + DROP_SENDER_MAX && n + 1 < len; s++)
        buf[n++] = *s <= ' ' || *s == 0x7f ? '_' : (char)*s;
    n += (size_t)snprintf(buf + n, len - n, " %s\n", date);
    return n < len ? n : len - 1;
}

/* drop_mbox_open - open (creating it and its parent directories if needed) the mbox for
 * append; only a regular file. The common case, an existing mbox, costs one open. */
static int
drop_mbox_open(const char *path, bool *created, enum drop_result *res, char *err, size_t errlen)
{
    int flags = O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    bool made = false;
    struct stat st;
    int fd = -1;

    *created = false;
    for (int i = 0; i < 4 && fd < 0; i++) {
        fd = open(path, flags);
        if (fd >= 0 || errno != ENOENT)
            break;
        fd = open(path, flags | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            *created = true;
        } else if (errno == ENOENT && !made) {
            char parent[DROP_PATH_MAX];
            if (file_dirname(path, parent, sizeof parent) != 0 || file_mkdirs(parent, 0700) != 0) {
                int e = errno;
                *res = drop_errno_result(e);
                drop_err(err, errlen, e, "cannot create the directory of %s", path);
                return -1;
            }
            made = true;
        } else if (errno != EEXIST) {
            break; /* EEXIST: created between the two opens, open it again */
        }
    }
    if (fd < 0) {
        int e = errno;
        *res = drop_errno_result(e);
        if (e == ELOOP)
            drop_err(err, errlen, 0, "%s is a symbolic link", path);
        else
            drop_err(err, errlen, e, "cannot open %s", path);
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *res = DROP_PERM;
        drop_err(err, errlen, 0, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (fcntl(fd, F_SETFL, O_APPEND) != 0) { /* clear O_NONBLOCK */
        int e = errno;
        *res = DROP_TEMP;
        drop_err(err, errlen, e, "fcntl %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* drop_mbox_lock - open and lock the mbox, making sure the locked file is still the one at
 * path (a compaction may have renamed a new one in while we waited). */
static int
drop_mbox_lock(const char *path, long timeout, const char *node, bool *created, struct stat *st,
               enum drop_result *res, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        struct stat now;
        int fd = drop_mbox_open(path, created, res, err, errlen);
        if (fd < 0)
            return -1;
        *res = droplock_take(path, fd, timeout, node, err, errlen);
        if (*res != DROP_OK) {
            close(fd);
            return -1;
        }
        if (fstat(fd, st) != 0) {
            *res = DROP_TEMP;
            drop_err(err, errlen, errno, "fstat %s", path);
        } else if (lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino) {
            if (st->st_nlink == 1)
                return fd;
            *res = DROP_PERM;
            drop_err(err, errlen, 0, "%s has %lu hard links", path, (unsigned long)st->st_nlink);
        } else if (attempt + 1 < DROP_REOPEN_MAX) {
            drop_unlock(path, fd);
            close(fd);
            continue;
        } else {
            *res = DROP_TEMP;
            drop_err(err, errlen, 0, "%s keeps being replaced", path);
        }
        drop_unlock(path, fd);
        close(fd);
        return -1;
    }
}

/* drop_separator - how many '\n' the mbox needs before a new "From " line so that the
 * previous message ends with a blank line. */
static int
drop_separator(int fd, off_t size, size_t *sep)
{
    char tail[2];
    size_t want = size >= 2 ? 2 : (size_t)size;
    ssize_t r;

    *sep = 0;
    if (size == 0)
        return 0;
    do
        r = pread(fd, tail, want, size - (off_t)want);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)want) {
        if (r >= 0)
            errno = EIO;
        return -1;
    }
    if (tail[want - 1] != '\n')
        *sep = 2;
    else if (want == 2 && tail[0] != '\n')
        *sep = 1;
    return 0;
}

/* drop_items_fail - the items from i on fail with res and the reason in err. */
void
drop_items_fail(struct drop_item *it, size_t i, size_t n, enum drop_result res, const char *err)
{
    for (; i < n; i++) {
        it[i].res = res;
        snprintf(it[i].err, sizeof it[i].err, "%s", err);
    }
}

/* drop_mbox_append - write one message (with sep newlines before it) at the end of the
 * locked mbox fd, whose size is *end. On success *end grows and the item is DROP_OK (still
 * to be fsynced). On failure the item gets its reason and the file is cut back to *end;
 * returns -1 only if even that failed (the file then has a torn tail). *touched is set
 * once the file was written to (it then needs an fsync, even if it was cut back). */
static int
drop_mbox_append(const char *path, int fd, off_t *end, size_t sep, unsigned long long max,
                 const char *node, struct drop_item *it, bool *touched)
{
    char unique[DROP_UNIQUE_MAX + 1], from[DROP_SENDER_MAX + 96], xuidl[DROP_UNIQUE_MAX + 16];
    const struct drop_msg *msg = &it->msg;
    struct drop_out o = {.fd = fd};
    size_t fromlen, xlen, qh, qt;
    unsigned long long add;
    bool hnl, tnl;

    drop_unique(unique, sizeof unique, node);
    fromlen = drop_from_line(from, sizeof from, msg->sender);
    xlen = (size_t)snprintf(xuidl, sizeof xuidl, "X-UIDL: %s\n", unique);
    qh = drop_quote(NULL, msg->headers, msg->headers_len);
    qt = drop_quote(NULL, msg->text, msg->text_len);
    hnl = msg->headers_len > 0 && msg->headers[msg->headers_len - 1] != '\n';
    tnl = msg->text_len > 0 && msg->text[msg->text_len - 1] != '\n';
    add = sep + fromlen + xlen + msg->headers_len + qh + hnl + msg->text_len + qt + tnl + 1;
    if (max != 0 && (unsigned long long)*end + add > max) {
        drop_err(it->err, sizeof it->err, 0, "mailbox full: %s has %llu bytes, limit %llu", path,
                 (unsigned long long)*end, max);
        it->res = DROP_TEMP;
        return 0;
    }
    *touched = true;
    drop_out_add(&o, "\n\n", sep);
    drop_out_add(&o, from, fromlen);
    drop_out_add(&o, xuidl, xlen);
    drop_quote(&o, msg->headers, msg->headers_len);
    drop_out_add(&o, "\n", hnl);
    drop_quote(&o, msg->text, msg->text_len);
    drop_out_add(&o, "\n", tnl);
    drop_out_add(&o, "\n", 1);
    if (drop_out_flush(&o) == 0) {
        *end += (off_t)add;
        it->res = DROP_OK;
        snprintf(it->uidl, sizeof it->uidl, "%s", unique);
        return 0;
    }
    it->res = drop_errno_result(o.err);
    drop_err(it->err, sizeof it->err, o.err, "write %s", path);
    if (ftruncate(fd, *end) != 0) {
        size_t n = strlen(it->err);
        drop_err(it->err + n, sizeof it->err - n, errno, "; truncating back failed");
        return -1;
    }
    return 0;
}

/* drop_mbox_many - append the items to the mbox at path under one lock, in order, with one
 * fsync. The dotlock notes the size before the first of them, so a crash anywhere in the
 * batch is cut back to it by the next locker. */
static void
drop_mbox_many(const char *path, struct drop_item *it, size_t n, long timeout,
               unsigned long long max, const char *node)
{
    enum drop_result res = DROP_OK;
    char err[sizeof it->err];
    struct stat st;
    bool created, touched = false;
    size_t sep, i;
    off_t end;
    int fd, e = 0;

    err[0] = '\0';
    fd = drop_mbox_lock(path, timeout, node, &created, &st, &res, err, sizeof err);
    if (fd < 0) {
        drop_items_fail(it, 0, n, res, err);
        return;
    }
    if (drop_separator(fd, st.st_size, &sep) != 0) {
        drop_err(err, sizeof err, errno, "read %s", path);
        drop_items_fail(it, 0, n, DROP_TEMP, err);
        goto out;
    }
    droplock_note_size(path, node, st.st_size);
    end = st.st_size;
    for (i = 0; i < n; i++) {
        if (drop_mbox_append(path, fd, &end, sep, max, node, &it[i], &touched) != 0) {
            drop_err(err, sizeof err, 0, "not written: an earlier append to %s failed", path);
            drop_items_fail(it, i + 1, n, DROP_TEMP, err);
            break;
        }
        if (it[i].res == DROP_OK)
            sep = 0;
    }
    if (!touched)
        goto out;
    if (fsync(fd) != 0) {
        e = errno;
        drop_err(err, sizeof err, e, "fsync %s", path);
    } else if (created && file_fsync_parent(path) != 0) {
        e = errno;
        drop_err(err, sizeof err, e, "fsync directory of %s", path);
    }
    if (e != 0) {
        for (i = 0; i < n; i++)
            if (it[i].res == DROP_OK) {
                it[i].res = drop_errno_result(e);
                it[i].uidl[0] = '\0';
                snprintf(it[i].err, sizeof it[i].err, "%s", err);
            }
        if (ftruncate(fd, st.st_size) != 0 || fsync(fd) != 0)
            log_warne("%s: cannot cut back a batch that failed to fsync", path);
    }
out:
    drop_unlock(path, fd);
    close(fd);
}

/* drop_item_bad - the item's message cannot be read. */
static bool
drop_item_bad(const struct drop_item *it)
{
    return (it->msg.headers == NULL && it->msg.headers_len > 0) ||
           (it->msg.text == NULL && it->msg.text_len > 0);
}

/* drop_many_run - items a..b-1 (all readable) into the mailbox. */
static void
drop_many_run(const char *path, int fmt, struct drop_item *it, size_t n, long lock_timeout,
              unsigned long long drop_max, const char *node)
{
    char err[64];

    if (fmt == MBOX_FORMAT_MAILDIR) {
        dropdir_deliver(path, it, n, drop_max, node);
    } else if (fmt == MBOX_FORMAT_MBOX) {
        drop_mbox_many(path, it, n, lock_timeout, drop_max, node);
    } else {
        snprintf(err, sizeof err, "unknown mailbox format %d", fmt);
        drop_items_fail(it, 0, n, DROP_PERM, err);
    }
}

size_t
drop_deliver_many(const char *path, int fmt, struct drop_item *it, size_t n, long lock_timeout,
                  unsigned long long drop_max, const char *node)
{
    char host[256];
    size_t ok = 0, a = 0;

    for (size_t i = 0; i < n; i++) {
        it[i].res = DROP_TEMP;
        it[i].uidl[0] = '\0';
        it[i].err[0] = '\0';
    }
    if (path == NULL || path[0] == '\0') {
        drop_items_fail(it, 0, n, DROP_PERM, "bad delivery request");
        return 0;
    }
    node = drop_node(node, host, sizeof host);
    while (a < n) { /* each run of readable items in one go (normally all of them) */
        size_t b = a;
        while (b < n && !drop_item_bad(&it[b]))
            b++;
        if (b > a)
            drop_many_run(path, fmt, it + a, b - a, lock_timeout, drop_max, node);
        if (b < n)
            drop_items_fail(it, b, b + 1, DROP_PERM, "bad delivery request");
        a = b + 1;
    }
    for (size_t i = 0; i < n; i++)
        ok += it[i].res == DROP_OK;
    return ok;
}
enum drop_result
drop_deliver(const char *path, int fmt, const struct drop_msg *msg, long lock_timeout,
             unsigned long long drop_max, const char *node, char *uidl, char *err, size_t errlen)
{
    struct drop_item it;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (uidl != NULL)
        uidl[0] = '\0';
    if (msg == NULL) {
        drop_err(err, errlen, 0, "bad delivery request");
        return DROP_PERM;
    }
    it.msg = *msg;
    drop_deliver_many(path, fmt, &it, 1, lock_timeout, drop_max, node);
    if (it.res == DROP_OK && uidl != NULL)
        snprintf(uidl, sizeof it.uidl, "%s", it.uidl); /* uidl has room for 80 */
    if (it.res != DROP_OK && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", it.err);
    return it.res;
}
