/*
 * smdrop - group privilege handling and the maildrop write.
 */
#include "smdrop.h"

#include "qfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* smdrop_init - record and lower the privilege; drop a setuid identity. */
int
smdrop_init(struct smdrop *d)
{
    uid_t uid = getuid();

    if (geteuid() != uid && setresuid(uid, uid, uid) < 0)
        return -1;
    d->rgid = getgid();
    d->pgid = getegid();
    d->priv = d->rgid != d->pgid;
    d->raised = false;
    if (d->priv && setresgid((gid_t)-1, d->rgid, d->pgid) < 0)
        return -1;
    return 0;
}

/* smdrop_raise - the privileged group becomes effective. */
int
smdrop_raise(struct smdrop *d)
{
    if (!d->priv || d->raised)
        return 0;
    if (setresgid((gid_t)-1, d->pgid, (gid_t)-1) < 0)
        return -1;
    d->raised = true;
    return 0;
}

/* smdrop_lower - back to the real group. */
int
smdrop_lower(struct smdrop *d)
{
    if (!d->priv || !d->raised)
        return 0;
    if (setresgid((gid_t)-1, d->rgid, (gid_t)-1) < 0)
        return -1;
    d->raised = false;
    return 0;
}

/* smdrop_drop - give the privilege up for good. */
int
smdrop_drop(struct smdrop *d)
{
    if (!d->priv)
        return 0;
    if (setresgid(d->rgid, d->rgid, d->rgid) < 0)
        return -1;
    d->priv = d->raised = false;
    return 0;
}

/* smdrop_dir - "spool_dir/maildrop" into buf. */
char *
smdrop_dir(const char *spool_dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/maildrop", spool_dir);
    return buf;
}

/* smdrop_make_dir - create maildrop/ in a one-user development set-up. */
static int
smdrop_make_dir(const char *spool_dir, const char *dir)
{
    struct stat st;
    uid_t uid = getuid();

    if (uid == 0 || stat(spool_dir, &st) < 0 || st.st_uid != uid) {
        errno = ENOENT;
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    return chmod(dir, 03770);
}

/* smdrop_check_dir - the maildrop directory exists and can be opened for reading (which
 * the directory fsync after the rename needs). */
static int
smdrop_check_dir(const char *spool_dir, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT && smdrop_make_dir(spool_dir, dir) == 0)
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* smdrop_write - write q into spool_dir/maildrop/ with the privilege raised only for that. */
int
smdrop_write(struct smdrop *d, const char *spool_dir, struct qfile *q, char *err, size_t errlen)
{
    char dir[4096];
    mode_t old;
    int rc, saved;
    const char *what = "cannot open";

    smdrop_dir(spool_dir, dir, sizeof dir);
    if (smdrop_raise(d) < 0) {
        snprintf(err, errlen, "cannot regain group privilege: %s", strerror(errno));
        return -1;
    }
    /* the file must be readable by the group that owns maildrop/, whatever the umask */
    old = umask(027);
    rc = smdrop_check_dir(spool_dir, dir);
    if (rc == 0) {
        what = "cannot write into";
        rc = qfile_write(dir, NULL, q, 0640);
    }
    saved = errno;
    umask(old);
    if (smdrop_lower(d) < 0) {
        snprintf(err, errlen, "cannot lower group privilege: %s", strerror(errno));
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s %s: %s", what, dir, strerror(saved));
        errno = saved;
    }
    return rc;
}
