/*
 * dropdir - maildir delivery for the drop module (contract in drop.h): each message into
 * tmp/, fsync, link into new/; one fsync of new/ for a whole batch.
 */
#include "drop_int.h"
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* dropdir_usage - bytes in new/ and cur/ (",S=" in the name, else the file size). */
static unsigned long long
dropdir_usage(const char *dir)
{
    static const char *const subs[] = {"new", "cur"};
    unsigned long long total = 0;
    char sub[DROP_PATH_MAX];

    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        struct dirent *de;
        DIR *d;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]) >= sizeof sub)
            continue;
        d = opendir(sub);
        if (d == NULL)
            continue;
        while ((de = readdir(d)) != NULL) {
            const char *s = strstr(de->d_name, ",S=");
            struct stat st;
            if (de->d_name[0] == '.')
                continue;
            if (s != NULL)
                total += strtoull(s + 3, NULL, 10);
            else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                total += (unsigned long long)st.st_size;
        }
        closedir(d);
    }
    return total;
}

/* dropdir_dirs - create dir and its tmp/, new/, cur/. */
static int
dropdir_dirs(const char *dir)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char sub[DROP_PATH_MAX];
    bool made = false;

    if (file_mkdirs(dir, 0700) != 0)
        return -1;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]) >= sizeof sub) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (mkdir(sub, 0700) == 0)
            made = true;
        else if (errno != EEXIST)
            return -1;
    }
    return made ? file_fsync_dir(dir) : 0;
}

/* dropdir_put - write one item into dir/tmp/, fsync it and link (or rename) it into
 * new/; tmp and new get the two names. DROP_OK or the item's failure (nothing left). */
static enum drop_result
dropdir_put(const char *dir, const char *node, struct drop_item *it, char *tmp, char *new,
            bool *linked)
{
    char unique[DROP_UNIQUE_MAX + 1], name[DROP_UNIQUE_MAX + 32];
    const struct drop_msg *msg = &it->msg;
    struct drop_out o = {.fd = -1};
    size_t size = msg->headers_len + msg->text_len;
    int fd, e = 0;

    drop_unique(unique, sizeof unique, node);
    snprintf(name, sizeof name, "%s,S=%zu", unique, size);
    if ((size_t)snprintf(tmp, DROP_PATH_MAX, "%s/tmp/%s", dir, name) >= DROP_PATH_MAX ||
        (size_t)snprintf(new, DROP_PATH_MAX, "%s/new/%s", dir, name) >= DROP_PATH_MAX) {
        drop_err(it->err, sizeof it->err, ENAMETOOLONG, "%s", dir);
        return DROP_PERM;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        e = errno;
        drop_err(it->err, sizeof it->err, e, "cannot create %s", tmp);
        return drop_errno_result(e);
    }
    o.fd = fd;
    drop_out_add(&o, msg->headers, msg->headers_len);
    drop_out_add(&o, msg->text, msg->text_len);
    if (drop_out_flush(&o) != 0) {
        e = o.err;
        drop_err(it->err, sizeof it->err, e, "write %s", tmp);
    } else if (fsync(fd) != 0) {
        e = errno;
        drop_err(it->err, sizeof it->err, e, "fsync %s", tmp);
    }
    if (close(fd) != 0 && e == 0) { /* NFS reports late write errors here */
        e = errno;
        drop_err(it->err, sizeof it->err, e, "close %s", tmp);
    }
    *linked = e == 0;
    if (e == 0 && link(tmp, new) != 0) {
        e = errno;
        *linked = false;
        if (e == EXDEV || e == EPERM || e == ENOSYS || e == EMLINK || e == EOPNOTSUPP)
            e = rename(tmp, new) == 0 ? 0 : errno;
        if (e != 0)
            drop_err(it->err, sizeof it->err, e, "cannot move %s into new/", tmp);
    }
    if (e != 0) {
        unlink(tmp);
        return drop_errno_result(e);
    }
    snprintf(it->uidl, sizeof it->uidl, "%s", unique);
    return DROP_OK;
}

/* dropdir_deliver - deliver the items into the maildir dir: each into tmp/, fsync, link
 * into new/; then one fsync of new/ for all of them, and the tmp/ names go. */
void
dropdir_deliver(const char *dir, struct drop_item *it, size_t n, unsigned long long max,
                const char *node)
{
    char newdir[DROP_PATH_MAX], err[sizeof it->err];
    char(*tmp)[DROP_PATH_MAX] = NULL, (*new)[DROP_PATH_MAX] = NULL;
    bool *linked = NULL;
    unsigned long long used = 0;
    size_t ok = 0, i;
    int e;

    if ((size_t)snprintf(newdir, sizeof newdir, "%s/new", dir) >= sizeof newdir) {
        drop_err(err, sizeof err, ENAMETOOLONG, "%s", dir);
        drop_items_fail(it, 0, n, DROP_PERM, err);
        return;
    }
    if (dropdir_dirs(dir) != 0) {
        e = errno;
        drop_err(err, sizeof err, e, "cannot create maildir %s", dir);
        drop_items_fail(it, 0, n, drop_errno_result(e), err);
        return;
    }
    tmp = malloc(n * sizeof *tmp);
    new = malloc(n * sizeof *new);
    linked = calloc(n, sizeof *linked);
    if (tmp == NULL || new == NULL || linked == NULL) {
        drop_items_fail(it, 0, n, DROP_TEMP, "out of memory");
        goto out;
    }
    if (max != 0)
        used = dropdir_usage(dir);
    for (i = 0; i < n; i++) {
        unsigned long long size = it[i].msg.headers_len + it[i].msg.text_len;
        if (max != 0 && used + size > max) {
            drop_err(it[i].err, sizeof it[i].err, 0, "mailbox full: %s has %llu bytes, limit %llu",
                     dir, used, max);
            it[i].res = DROP_TEMP;
            continue;
        }
        it[i].res = dropdir_put(dir, node, &it[i], tmp[i], new[i], &linked[i]);
        if (it[i].res == DROP_OK) {
            used += size;
            ok++;
        }
    }
    if (ok > 0 && file_fsync_dir(newdir) != 0) {
        e = errno;
        drop_err(err, sizeof err, e, "fsync %s", newdir);
        for (i = 0; i < n; i++)
            if (it[i].res == DROP_OK) {
                unlink(new[i]);
                it[i].res = drop_errno_result(e);
                it[i].uidl[0] = '\0';
                snprintf(it[i].err, sizeof it[i].err, "%s", err);
            }
    }
    for (i = 0; i < n; i++)
        if (linked[i])
            unlink(tmp[i]); /* new/ holds it (or it failed and new/ was cleared) */
out:
    free(tmp);
    free(new);
    free(linked);
}
