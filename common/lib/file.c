/*
 * file - small blocking file helpers with a crash story.
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xmem.h"

/* file_write_all - write len bytes, retrying short writes and EINTR. */
int
file_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* file_dirname - the directory part of path into buf ("." when there is none). */
int
file_dirname(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        path = ".";
        n = 1;
    } else {
        while (slash > path && slash[-1] == '/')
            slash--;
        n = slash == path ? 1 : (size_t)(slash - path);
    }
    if (n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n);
    buf[n] = '\0';
    return 0;
}

/*
 * Group commit of directory fsyncs. Thread-pool workers that each rename a file into the
 * same directory (the queue, a maildir) would each fsync it; one fsync that starts after
 * a change covers it, so a caller waits for the first fsync that began after it asked,
 * and starts one itself only when none is running. A slot per directory by hash; an idle
 * slot is taken over by the next directory, one busy with another falls back to a plain
 * fsync.
 */
#define FILE_SYNC_SLOTS 16

struct file_sync_slot {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char dir[PATH_MAX];
    unsigned long started;  /* fsyncs begun */
    unsigned long done;     /* the newest finished */
    unsigned long fail_gen; /* the newest failed (0: none) */
    int fail_errno;
    int waiters; /* callers waiting for a running fsync */
    bool running;
};

static struct file_sync_slot file_sync_slots[FILE_SYNC_SLOTS];
static pthread_once_t file_sync_once = PTHREAD_ONCE_INIT;
static atomic_ulong file_sync_count;
void (*file_fsync_dir_hook)(void);

/* file_sync_init - the slots' locks. */
static void
file_sync_init(void)
{
    for (int i = 0; i < FILE_SYNC_SLOTS; i++) {
        pthread_mutex_init(&file_sync_slots[i].mu, NULL);
        pthread_cond_init(&file_sync_slots[i].cv, NULL);
    }
}

/* file_sync_now - one real fsync of dir. */
static int
file_sync_now(const char *dir)
{
    int fd, rc, saved;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    atomic_fetch_add(&file_sync_count, 1);
    if (file_fsync_dir_hook != NULL)
        file_fsync_dir_hook();
    rc = fsync(fd);
    saved = errno;
    close(fd);
    if (rc != 0 && saved == EINVAL)
        rc = 0; /* a file system that cannot fsync directories */
    errno = saved;
    return rc;
}

/* file_sync_group - fsync dir, or wait for an fsync of it that began after this call. */
static int
file_sync_group(const char *dir)
{
    unsigned long h = 5381, target;
    struct file_sync_slot *s;
    int rc;

    for (const char *p = dir; *p != '\0'; p++)
        h = h * 33 + (unsigned char)*p;
    pthread_once(&file_sync_once, file_sync_init);
    s = &file_sync_slots[h % FILE_SYNC_SLOTS];
    pthread_mutex_lock(&s->mu);
    if (strcmp(s->dir, dir) != 0) {
        if (s->running || s->waiters > 0) { /* busy with another directory */
            pthread_mutex_unlock(&s->mu);
            return file_sync_now(dir);
        }
        snprintf(s->dir, sizeof(s->dir), "%s", dir);
    }
    target = s->started + 1;
    while (s->done < target) {
        if (s->running) {
            s->waiters++;
            pthread_cond_wait(&s->cv, &s->mu);
            s->waiters--;
            continue;
        }
        unsigned long gen = ++s->started;
        s->running = true;
        pthread_mutex_unlock(&s->mu);
        rc = file_sync_now(dir);
        int saved = errno;
        pthread_mutex_lock(&s->mu);
        s->running = false;
        s->done = gen;
        if (rc != 0) {
            s->fail_gen = gen;
            s->fail_errno = saved;
        }
        pthread_cond_broadcast(&s->cv);
    }
    rc = s->fail_gen >= target ? -1 : 0;
    if (rc != 0)
        errno = s->fail_errno;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* file_fsync_dir_count - real directory fsyncs so far (group commit makes it <= calls). */
unsigned long
file_fsync_dir_count(void)
{
    return atomic_load(&file_sync_count);
}

/* file_fsync_dir - fsync the directory that holds path (or path itself if a dir); callers
 * in other threads asking for the same directory share one fsync (group commit). */
int
file_fsync_dir(const char *path)
{
    char dir[PATH_MAX];
    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (strlen(path) >= sizeof(dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(dir, path);
    } else if (file_dirname(path, dir, sizeof(dir)) < 0) {
        return -1;
    }
    return file_sync_group(dir);
}

/* file_fsync_parent - fsync the directory that holds path, even when path is a directory. */
int
file_fsync_parent(const char *path)
{
    char dir[PATH_MAX];

    if (file_dirname(path, dir, sizeof(dir)) < 0)
        return -1;
    return file_fsync_dir(dir);
}

/* file_mkdirs - mkdir -p with mode for created components. */
int
file_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    struct stat st;

    if (len == 0) {
        errno = ENOENT;
        return -1;
    }
    if (len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) == 0) {
            if (file_fsync_parent(buf) != 0) /* the new entry survives a crash */
                return -1;
        } else {
            if (errno != EEXIST)
                return -1;
            if (stat(buf, &st) < 0)
                return -1;
            if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                return -1;
            }
        }
        *p = c;
        if (c == '\0')
            break;
        while (p[1] == '/')
            p++;
        if (p[1] == '\0')
            break;
    }
    return 0;
}

/* file_write_atomic - temp file beside path, fsync, rename over path, fsync the dir. */
int
file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
    char dir[PATH_MAX], uniq[128], tmp[PATH_MAX];
    const char *base = strrchr(path, '/');
    int fd, saved;

    base = base ? base + 1 : path;
    if (*base == '\0') {
        errno = EISDIR;
        return -1;
    }
    if (file_dirname(path, dir, sizeof(dir)) < 0)
        return -1;
    file_unique_name(uniq, sizeof(uniq), NULL);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", dir, base, uniq) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) < 0 || file_write_all(fd, buf, len) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return file_fsync_dir(dir);
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

/* file_read_all - a whole regular file (at most max bytes) into a NUL-terminated buffer. */
int
file_read_all(const char *path, size_t max, char **out, size_t *lenp)
{
    size_t len = 0, size = 4096;
    char *buf;
    int fd, saved;

    *out = NULL;
    /* non-blocking open: a FIFO or a device must not hang the reader */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        saved = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        errno = saved;
        return -1;
    }
    buf = xmalloc(size);
    for (;;) {
        if (size - len < 2) {
            size *= 2;
            buf = xrealloc(buf, size);
        }
        ssize_t n = read(fd, buf + len, size - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            errno = EFBIG;
            goto fail;
        }
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    if (lenp)
        *lenp = len;
    return 0;
fail:
    saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return -1;
}

static char file_host[256];
static pthread_once_t file_host_once = PTHREAD_ONCE_INIT;

/* file_host_read - read the host name once into file_host. */
static void
file_host_read(void)
{
    if (gethostname(file_host, sizeof(file_host)) < 0 || file_host[0] == '\0')
        snprintf(file_host, sizeof(file_host), "localhost");
    file_host[sizeof(file_host) - 1] = '\0';
}

/* file_hostname - see file.h. */
void
file_hostname(char *buf, size_t len)
{
    pthread_once(&file_host_once, file_host_read);
    snprintf(buf, len, "%s", file_host);
}

/* file_unique_name - "<time>.<pid>_<counter>_<random>.<node>" into buf. */
void
file_unique_name(char *buf, size_t len, const char *node)
{
    static atomic_ulong counter;
    char host[256], clean[256];
    unsigned int rnd = 0;
    size_t i;

    if (node == NULL || *node == '\0') {
        file_hostname(host, sizeof(host));
        node = host;
    }
    /* a name component: no '/', no ':' (maildir flags), nothing unprintable */
    for (i = 0; node[i] != '\0' && i < sizeof(clean) - 1; i++) {
        unsigned char c = (unsigned char)node[i];
        clean[i] = (c <= 0x20 || c >= 0x7f || c == '/' || c == ':') ? '_' : (char)c;
    }
    clean[i] = '\0';
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
        rnd = (unsigned int)clock() ^ (unsigned int)getpid();
    snprintf(buf, len, "%lld.%ld_%lu_%08x.%s", (long long)time(NULL), (long)getpid(),
             atomic_fetch_add(&counter, 1) + 1, rnd, clean);
}

/* file_names_cmp - qsort by name. */
static int
file_names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* file_dir_names - see file.h. */
char **
file_dir_names(const char *dir, bool (*keep)(const char *name), size_t *n)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    char **names;
    size_t cap = 16;

    *n = 0;
    if (dp == NULL)
        return NULL;
    names = xmalloc(cap * sizeof(*names));
    while ((de = readdir(dp)) != NULL) {
        if (keep != NULL ? !keep(de->d_name) : de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap *= 2;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[(*n)++] = xstrdup(de->d_name);
    }
    closedir(dp);
    if (*n > 1)
        qsort(names, *n, sizeof(*names), file_names_cmp);
    return names;
}
