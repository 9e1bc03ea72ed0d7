/*
 * dropview_md - the maildir side of dropview (contract in dropview.h): listing new/ and
 * cur/, sizes cached in the index, reading, and the UPDATE (unlink deleted, move seen to
 * cur/ with the S flag).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dropview_int.h"

#define DV_MD_NAME_MAX 255

/* One file found in new/ or cur/. */
struct dv_md_ent {
    char *file; /* "new/NAME" or "cur/NAME" */
    char *base; /* NAME up to ':' */
    bool seen;
};

/* dv_md_base - the base name of a maildir file name (up to ':'), into buf. */
static void
dv_md_base(const char *name, char *buf, size_t len)
{
    size_t n = strcspn(name, ":");

    if (n >= len)
        n = len - 1;
    memcpy(buf, name, n);
    buf[n] = '\0';
}

/* dv_md_uid - the UID of a base name: up to the first ',' when valid, else derived. */
static void
dv_md_uid(const char *base, char *uid)
{
    size_t n = strcspn(base, ",");

    if (dv_uid_ok(base, n)) {
        memcpy(uid, base, n);
        uid[n] = '\0';
    } else {
        dv_hash_uid(base, strlen(base), uid);
    }
}

/* dv_md_seen - cur/ name with ":2,FLAGS" holding 'S'. */
static bool
dv_md_seen(const char *name)
{
    const char *info = strstr(name, ":2,");

    return info != NULL && strchr(info + 3, 'S') != NULL;
}

/* dv_md_cmp - order by base name, numbers compared as numbers. */
static int
dv_md_cmp(const void *a, const void *b)
{
    const struct dv_md_ent *x = a, *y = b;
    int c = strverscmp(x->base, y->base);

    return c != 0 ? c : strcmp(x->file, y->file);
}

/* dv_md_list - append the regular files of dir/sub to *ents. -1 on error (not ENOENT). */
static int
dv_md_list(const char *dir, const char *sub, struct dv_md_ent **ents, size_t *n, size_t *cap)
{
    char path[DV_PATH_MAX];
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof path, "%s/%s", dir, sub);
    d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        char base[DV_MD_NAME_MAX + 1];
        struct stat st;
        if (e->d_name[0] == '.' || strlen(e->d_name) > DV_MD_NAME_MAX)
            continue;
        if (e->d_type != DT_REG &&
            (e->d_type != DT_UNKNOWN ||
             fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)))
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            struct dv_md_ent *p = realloc(*ents, nc * sizeof *p);
            if (p == NULL)
                abort();
            *ents = p;
            *cap = nc;
        }
        dv_md_base(e->d_name, base, sizeof base);
        (*ents)[*n].file = malloc(strlen(sub) + strlen(e->d_name) + 2);
        (*ents)[*n].base = strdup(base);
        if ((*ents)[*n].file == NULL || (*ents)[*n].base == NULL)
            abort();
        sprintf((*ents)[*n].file, "%s/%s", sub, e->d_name);
        (*ents)[*n].seen = strcmp(sub, "cur") == 0 && dv_md_seen(e->d_name);
        (*n)++;
    }
    closedir(d);
    return 0;
}

/* dv_md_size - the client size and flags of dir/file, read from the file. */
static int
dv_md_size(const char *dir, const char *file, unsigned long long *size, unsigned *flags)
{
    char path[DV_PATH_MAX];
    int fd, rc;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    rc = dv_count_fd(fd, false, size, flags);
    close(fd);
    return rc;
}

/* dv_md_open - list a maildir into v. */
enum drop_result
dv_md_open(struct dropview *v, char *err, size_t errlen)
{
    struct dropview_params p = {v->path, v->format, NULL, v->lock_timeout};
    struct dropview *old = dv_index_load(&p, v->index_path);
    struct dv_md_ent *ents = NULL;
    size_t n = 0, cap = 0, hits = 0;
    enum drop_result res = DROP_OK;
    struct stat st;

    if (lstat(v->path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        drop_err(err, errlen, 0, "%s is not a maildir", v->path);
        dropview_free(&old);
        return DROP_PERM;
    }
    if (dv_md_list(v->path, "new", &ents, &n, &cap) != 0 ||
        dv_md_list(v->path, "cur", &ents, &n, &cap) != 0) {
        drop_err(err, errlen, errno, "cannot list %s", v->path);
        res = DROP_TEMP;
        goto out;
    }
    if (n > 1)
        qsort(ents, n, sizeof *ents, dv_md_cmp);
    /* the index is keyed by base name, in a table of its own */
    for (size_t i = 0; i < n; i++) {
        struct dropview_msg m = {0};
        char uid[DROPVIEW_UID_MAX + 1];
        long j = -1;
        dv_md_uid(ents[i].base, uid);
        if (old != NULL && (j = dv_find(old, uid)) >= 0) {
            const char *of = old->pool + old->m[j].file_off;
            if (strcmp(of, ents[i].base) != 0)
                j = -1;
        }
        if (j >= 0) {
            m.size = old->m[j].size;
            m.flags = old->m[j].flags & (DV_HAS_STATUS | DV_HAS_BODY);
            hits++;
        } else if (dv_md_size(v->path, ents[i].file, &m.size, &m.flags) != 0) {
            if (errno == ENOENT)
                continue; /* taken away meanwhile */
            drop_err(err, errlen, errno, "cannot read %s/%s", v->path, ents[i].file);
            res = DROP_TEMP;
            goto out;
        }
        if (ents[i].seen)
            m.flags |= DV_SEEN;
        dv_add(v, &m, uid, ents[i].file);
    }
    if (old == NULL || hits != v->n || old->n != v->n)
        dv_index_save(v);
out:
    for (size_t i = 0; i < n; i++) {
        free(ents[i].file);
        free(ents[i].base);
    }
    free(ents);
    dropview_free(&old);
    return res;
}

/* dv_md_read - read from a maildir message file. */
long
dv_md_read(struct dropview *v, size_t i, unsigned long long pos, char *buf, size_t len)
{
    ssize_t r;

    if (v->fd >= 0 && v->fd_msg != i) {
        close(v->fd);
        v->fd = -1;
    }
    if (v->fd < 0) {
        char path[DV_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", v->path, v->pool + v->m[i].file_off) >=
            sizeof path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        v->fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (v->fd < 0) {
            if (errno == ENOENT)
                errno = ESTALE;
            return -1;
        }
        v->fd_msg = i;
    }
    do
        r = pread(v->fd, buf, len, (off_t)pos);
    while (r < 0 && errno == EINTR);
    return (long)r;
}

/* dv_md_find - the current name (sub/NAME) of the file with base name base, searching
 * new/ and cur/ (another client may have renamed it). 0 or -1. */
static int
dv_md_find(const char *dir, const char *base, char *out, size_t len)
{
    static const char *const subs[] = {"cur", "new"};
    size_t bl = strlen(base);

    for (int s = 0; s < 2; s++) {
        char path[DV_PATH_MAX];
        struct dirent *e;
        DIR *d;
        snprintf(path, sizeof path, "%s/%s", dir, subs[s]);
        if ((d = opendir(path)) == NULL)
            continue;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, base, bl) == 0 &&
                (e->d_name[bl] == '\0' || e->d_name[bl] == ':')) {
                snprintf(out, len, "%s/%s", subs[s], e->d_name);
                closedir(d);
                return 0;
            }
        }
        closedir(d);
    }
    errno = ENOENT;
    return -1;
}

/* dv_md_fsync_sub - fsync dir/sub. */
static int
dv_md_fsync_sub(const char *dir, const char *sub)
{
    char path[DV_PATH_MAX];
    int fd, rc;

    snprintf(path, sizeof path, "%s/%s", dir, sub);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* dv_md_apply - delete or mark seen one message whose file is now at dir/file. */
static int
dv_md_apply(const char *dir, const char *file, bool del)
{
    char from[DV_PATH_MAX], to[DV_PATH_MAX + 8];
    const char *name = strchr(file, '/') + 1;

    snprintf(from, sizeof from, "%s/%s", dir, file);
    if (del)
        return unlink(from);
    if (strncmp(file, "new/", 4) == 0) {
        char base[DV_MD_NAME_MAX + 1];
        dv_md_base(name, base, sizeof base);
        snprintf(to, sizeof to, "%s/cur/%s:2,S", dir, base);
    } else if (!dv_md_seen(name)) {
        const char *info = strstr(name, ":2,");
        if (info == NULL)
            snprintf(to, sizeof to, "%s/cur/%s:2,S", dir, name);
        else
            snprintf(to, sizeof to, "%s/cur/%.*s:2,%sS", dir, (int)(info - name), name, info + 3);
    } else {
        return 0;
    }
    return rename(from, to);
}

/* dv_md_commit - UPDATE of a maildir. */
enum drop_result
dv_md_commit(struct dropview *v, const unsigned char *del, const unsigned char *seen, char *err,
             size_t errlen)
{
    for (size_t i = 0; i < v->n; i++) {
        bool d = del != NULL && del[i], s = seen != NULL && seen[i];
        const char *file = v->pool + v->m[i].file_off;
        char now[DV_PATH_MAX], base[DV_MD_NAME_MAX + 1];
        if (!d && !s)
            continue;
        if (dv_md_apply(v->path, file, d) == 0)
            continue;
        if (errno != ENOENT)
            goto fail;
        /* renamed by someone else meanwhile: find it by its base name */
        dv_md_base(strchr(file, '/') + 1, base, sizeof base);
        if (dv_md_find(v->path, base, now, sizeof now) != 0)
            continue; /* gone: nothing left to do */
        if (dv_md_apply(v->path, now, d) != 0 && errno != ENOENT)
            goto fail;
    }
    if (dv_md_fsync_sub(v->path, "new") != 0 || dv_md_fsync_sub(v->path, "cur") != 0)
        goto fail;
    return DROP_OK;
fail:
    drop_err(err, errlen, errno, "updating %s", v->path);
    return DROP_TEMP;
}
