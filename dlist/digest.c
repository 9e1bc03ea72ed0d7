/*
 * digest - the digest subscribers and the life of an issue on disk (see digest.h); the
 * text of an issue is digest_build.c's.
 */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "conf.h"
#include "digest_build.h"
#include "drop.h"
#include "file.h"
#include "lists.h"
#include "members.h"
#include "outbox.h"
#include "log.h"
#include "unsub.h"
#include "xmem.h"

/* digest_path - work_path/dlist/LIST/NAME into buf. */
static void
digest_path(const struct conf *cf, const struct lists_def *def, const char *name, char *buf,
            size_t len)
{
    snprintf(buf, len, "%s/dlist/%s/%s", cf->work_path, def->name, name);
}

int
digest_set_locked(const struct conf *cf, const struct lists_def *def, const struct members *all,
                  const char *addr, bool on, char *err, size_t errlen)
{
    struct members dm = {0};
    char dpath[4200];
    int r = -1;

    digest_path(cf, def, "digest.members", dpath, sizeof(dpath));
    if (members_load(&dm, dpath, NULL) < 0) {
        snprintf(err, errlen, "cannot read the digest members of %s", def->name);
        goto out;
    }
    if (on && !members_has(all, addr)) {
        snprintf(err, errlen, "%s is not a member of %s", addr, def->name);
        goto out;
    }
    r = on ? members_add(&dm, addr, err, errlen) : members_remove(&dm, addr);
    if (r == 1 && members_save(&dm, dpath) < 0) {
        snprintf(err, errlen, "cannot write %s", dpath);
        r = -1;
    }
out:
    members_free(&dm);
    return r;
}

int
digest_set(const struct conf *cf, const struct lists_def *def, const char *addr, bool on, char *err,
           size_t errlen)
{
    struct members m = {0};
    char *mpath = admin_members_path(cf, def->name);
    int r = -1;

    admin_members_lock();
    if (members_load(&m, mpath, NULL) < 0)
        snprintf(err, errlen, "cannot read the members of %s", def->name);
    else
        r = digest_set_locked(cf, def, &m, addr, on, err, errlen);
    admin_members_unlock();
    members_free(&m);
    free(mpath);
    return r;
}

int
digest_recipients_of(const struct conf *cf, const struct lists_def *def, const struct members *all,
                     struct members *m)
{
    struct members dm = {0};
    char dpath[4200], err[200];
    int r;

    members_free(m);
    digest_path(cf, def, "digest.members", dpath, sizeof(dpath));
    r = members_load(&dm, dpath, NULL) < 0 ? -1 : 0;
    for (size_t i = 0; r == 0 && i < dm.n; i++)
        if (members_has(all, dm.v[i]))
            members_add(m, dm.v[i], err, sizeof(err));
    members_free(&dm);
    return r;
}

int
digest_recipients(const struct conf *cf, const struct lists_def *def, struct members *m)
{
    struct members all = {0};
    char *mpath = admin_members_path(cf, def->name);
    int r;

    members_free(m);
    admin_members_lock();
    r = members_load(&all, mpath, NULL) < 0 ? -1 : digest_recipients_of(cf, def, &all, m);
    admin_members_unlock();
    members_free(&all);
    free(mpath);
    return r;
}

/* digest_lock - digest/ made, and its .lock taken: the descriptor, or -1 with err. */
static int
digest_lock(const struct conf *cf, const struct lists_def *def, char *err, size_t errlen)
{
    char dir[4200], path[4300];
    int fd;

    digest_path(cf, def, "digest", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/.lock", dir);
    if (file_mkdirs(dir, 0700) < 0 ||
        (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* digest_unlock - the lock released. */
static void
digest_unlock(int fd)
{
    flock(fd, LOCK_UN);
    close(fd);
}

int
digest_add(const struct conf *cf, const struct lists_def *def, const char *text, size_t len,
           char *err, size_t errlen)
{
    char path[4200], node[256];
    struct drop_msg m = {0};
    int fd = digest_lock(cf, def, err, errlen), rc;

    if (fd < 0)
        return -1;
    digest_path(cf, def, "digest/pending", path, sizeof(path));
    if (cf->lock_id != NULL && cf->lock_id[0] != '\0')
        snprintf(node, sizeof(node), "%s", cf->lock_id);
    else
        file_hostname(node, sizeof(node));
    m.sender = "";
    m.text = text;
    m.text_len = len;
    rc = drop_deliver(path, MBOX_FORMAT_MBOX, &m, cf->lock_timeout, 0, node, NULL, err, errlen) ==
                 DROP_OK
             ? 0
             : -1;
    digest_unlock(fd);
    return rc;
}

/* digest_lowest - the lowest N of the files "N.msg" (msg) or "closing.N" (!msg) in
 * dir, or 0 when there is none. */
static long
digest_lowest(const char *dir, bool msg)
{
    size_t n;
    char **names = file_dir_names(dir, NULL, &n);
    long best = 0;

    for (size_t i = 0; names != NULL && i < n; i++) {
        char *end;
        const char *num = msg ? names[i] : names[i] + 8;
        long v;
        if (!msg && strncmp(names[i], "closing.", 8) != 0)
            num = "";
        v = strtol(num, &end, 10);
        if (v > 0 && end != num && strcmp(end, msg ? ".msg" : "") == 0 && (best == 0 || v < best))
            best = v;
        free(names[i]);
    }
    free(names);
    return best;
}

/* digest_first_time - the time of the first post of the mbox text (its From line's
 * asctime date, UTC), or -1. */
static time_t
digest_first_time(const char *text)
{
    struct tm tm = {0};
    const char *p;

    if (strncmp(text, "From ", 5) != 0 || (p = strchr(text + 5, ' ')) == NULL)
        return -1;
    if (strptime(p + 1, "%a %b %e %H:%M:%S %Y", &tm) == NULL)
        return -1;
    return timegm(&tm);
}

/* digest_last - the last issue number recorded in dir/issue (0: none). */
static long
digest_last(const char *dir)
{
    char path[4300], *text;
    size_t len;
    long last = 0;

    snprintf(path, sizeof(path), "%s/issue", dir);
    if (file_read_all(path, 64, &text, &len) == 0) {
        last = strtol(text, NULL, 10);
        free(text);
    }
    return last > 0 ? last : 0;
}

/* digest_record - dir/issue says n (atomically) unless it says more already. */
static int
digest_record(const char *dir, long n, char *err, size_t errlen)
{
    char path[4300], num[32];

    if (digest_last(dir) >= n)
        return 0;
    snprintf(path, sizeof(path), "%s/issue", dir);
    snprintf(num, sizeof(num), "%ld\n", n);
    if (file_write_atomic(path, num, strlen(num), 0600) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* digest_make - N.msg from closing.N. */
static int
digest_make(const struct conf *cf, const struct lists_def *def, const char *dir, long n, time_t now,
            struct digest_issue *out, char *err, size_t errlen)
{
    char path[4300];
    char *text;
    size_t len;
    struct buf b;
    int rc;

    snprintf(path, sizeof(path), "%s/closing.%ld", dir, n);
    if (file_read_all(path, DIGEST_PENDING_MAX, &text, &len) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    buf_init(&b, (size_t)DIGEST_PENDING_MAX * 2);
    digest_build(def, cf->lists != NULL ? cf->lists->domain : cf->main_domain, n, text, len, now,
                 &b);
    free(text);
    out->n = n;
    snprintf(out->path, sizeof(out->path), "%s/%ld.msg", dir, n);
    rc = file_write_atomic(out->path, buf_peek(&b), b.len, 0600);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", out->path, strerror(errno));
    buf_free(&b);
    return rc;
}

int
digest_take(const struct conf *cf, const struct lists_def *def, time_t now, bool force,
            struct digest_issue *out, char *err, size_t errlen)
{
    char dir[4200], pending[4300], closing[4300], *text = NULL;
    size_t len = 0;
    long n;
    int fd = digest_lock(cf, def, err, errlen), rc = -1;
    bool due;

    if (fd < 0)
        return -1;
    digest_path(cf, def, "digest", dir, sizeof(dir));
    if ((n = digest_lowest(dir, true)) > 0) { /* built, not sent: a crash */
        out->n = n;
        snprintf(out->path, sizeof(out->path), "%s/%ld.msg", dir, n);
        rc = 1;
        goto out;
    }
    if ((n = digest_lowest(dir, false)) > 0) { /* closed, not built: a crash */
        rc = digest_record(dir, n, err, errlen) < 0 ||
                     digest_make(cf, def, dir, n, now, out, err, errlen) < 0
                 ? -1
                 : 1;
        goto out;
    }
    snprintf(pending, sizeof(pending), "%s/pending", dir);
    if (file_read_all(pending, DIGEST_PENDING_MAX, &text, &len) < 0) {
        rc = errno == ENOENT ? 0 : -1;
        if (rc < 0)
            snprintf(err, errlen, "%s: %s", pending, strerror(errno));
        goto out;
    }
    due = len > 0 && (force || (def->digest_size > 0 && len >= def->digest_size) ||
                      (def->digest_interval > 0 && digest_first_time(text) >= 0 &&
                       now - digest_first_time(text) >= def->digest_interval * 3600));
    if (!due) {
        rc = 0;
        goto out;
    }
    /* the next number: after the last one recorded */
    n = digest_last(dir) + 1;
    snprintf(closing, sizeof(closing), "%s/closing.%ld", dir, n);
    if (rename(pending, closing) < 0 || file_fsync_dir(dir) < 0) {
        snprintf(err, errlen, "%s: %s", closing, strerror(errno));
        goto out;
    }
    if (digest_record(dir, n, err, errlen) < 0)
        goto out;
    rc = digest_make(cf, def, dir, n, now, out, err, errlen) < 0 ? -1 : 1;
out:
    free(text);
    digest_unlock(fd);
    return rc;
}

int
digest_sent(const struct conf *cf, const struct lists_def *def, const struct digest_issue *issue,
            char *err, size_t errlen)
{
    char dir[4200], path[4300];
    int fd = digest_lock(cf, def, err, errlen), rc = 0;

    if (fd < 0)
        return -1;
    digest_path(cf, def, "digest", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/closing.%ld", dir, issue->n);
    if ((unlink(issue->path) < 0 && errno != ENOENT) || (unlink(path) < 0 && errno != ENOENT) ||
        file_fsync_dir(dir) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        rc = -1;
    }
    digest_unlock(fd);
    return rc;
}

void
digest_run(const struct conf *cf, const char *outdir, time_t now)
{
    for (size_t i = 0; cf->lists != NULL && i < cf->lists->n; i++) {
        const struct lists_def *def = &cf->lists->v[i];
        struct digest_issue iss;
        struct members m = {0};
        char err[300], name[360], bounces[400], *text = NULL;
        size_t len = 0;
        int r = digest_take(cf, def, now, false, &iss, err, sizeof(err));

        if (r < 0)
            log_error("list %s: digest: %s", def->name, err);
        if (r <= 0)
            continue;
        if (digest_recipients(cf, def, &m) < 0 ||
            file_read_all(iss.path, OUTBOX_TEXT_MAX, &text, &len) < 0) {
            log_error("list %s: digest issue %ld kept: cannot read it or its members", def->name,
                      iss.n);
            members_free(&m);
            continue;
        }
        snprintf(name, sizeof(name), "%s.digest.%ld.0", def->name, iss.n);
        snprintf(bounces, sizeof(bounces), "%s-bounces@%s", def->name, cf->lists->domain);
        /* one-click fields per copy when the list can have them (unsub.h) */
        struct outbox_msg om = {.sender = bounces,
                                .xverp = true,
                                .list = unsub_oneclick(cf, def->name) ? (char *)def->name : NULL,
                                .nrcpt = m.n,
                                .rcpt = m.v,
                                .text = text,
                                .len = len};
        if (m.n > 0 && outbox_write(outdir, name, &om) < 0)
            log_error("list %s: digest issue %ld kept: cannot write %s/%s: %s", def->name, iss.n,
                      outdir, name, strerror(errno));
        else if (digest_sent(cf, def, &iss, err, sizeof(err)) < 0)
            log_error("list %s: digest issue %ld: %s", def->name, iss.n, err);
        else
            log_info("list %s: digest issue %ld to %zu member%s", def->name, iss.n, m.n,
                     m.n == 1 ? "" : "s");
        free(text);
        members_free(&m);
    }
}
