/*
 * popauth - the POP-before-SMTP file. See popauth.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"
#include "popauth.h"
#include "xmem.h"

#define POPAUTH_IP_MAX 64

struct popauth_entry {
    char ip[POPAUTH_IP_MAX];
    long long t;
};

/* popauth_norm - ip in inet_ntop's form (IPv4-mapped as IPv4) into out; -1 if it is not
 * an address. */
static int
popauth_norm(const char *ip, char *out, size_t len)
{
    unsigned char b[16];

    if (inet_pton(AF_INET, ip, b) == 1)
        return inet_ntop(AF_INET, b, out, (socklen_t)len) ? 0 : -1;
    if (inet_pton(AF_INET6, ip, b) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)b))
        return inet_ntop(AF_INET, b + 12, out, (socklen_t)len) ? 0 : -1;
    return inet_ntop(AF_INET6, b, out, (socklen_t)len) ? 0 : -1;
}

/* popauth_parse - one line "IP TIME" into e; -1 if it does not parse. */
static int
popauth_parse(const char *line, struct popauth_entry *e)
{
    char ip[POPAUTH_IP_MAX], *end;
    const char *sp = strchr(line, ' ');
    size_t n = sp ? (size_t)(sp - line) : 0;

    if (n == 0 || n >= sizeof(ip))
        return -1;
    memcpy(ip, line, n);
    ip[n] = '\0';
    errno = 0;
    e->t = strtoll(sp + 1, &end, 10);
    if (errno != 0 || end == sp + 1 || (*end != '\n' && *end != '\0'))
        return -1;
    return popauth_norm(ip, e->ip, sizeof(e->ip));
}

/* popauth_file - work_dir/name into buf. */
static void
popauth_file(char *buf, size_t len, const char *work_dir, const char *name)
{
    snprintf(buf, len, "%s/%s", work_dir, name);
}

int
popauth_recent(const char *work_dir, const char *ip, time_t now, long window)
{
    char path[4096], line[200], want[POPAUTH_IP_MAX];
    struct popauth_entry e;
    FILE *f;
    int found = 0;

    if (popauth_norm(ip, want, sizeof(want)) < 0)
        return 0;
    popauth_file(path, sizeof(path), work_dir, "popauth");
    if ((f = fopen(path, "re")) == NULL)
        return errno == ENOENT ? 0 : -1;
    for (int n = 0; n < POPAUTH_MAX && fgets(line, sizeof(line), f) != NULL; n++)
        if (popauth_parse(line, &e) == 0 && strcmp(e.ip, want) == 0)
            found = e.t <= (long long)now + 60 && (long long)now - e.t < window;
    if (ferror(f))
        found = -1;
    fclose(f);
    return found;
}

int
popauth_record(const char *work_dir, const char *ip, time_t now, long window)
{
    char path[4096], tmp[4096], lock[4096], line[200];
    struct popauth_entry *v = xcalloc(POPAUTH_MAX, sizeof(*v)), me;
    size_t n = 0, first = 0;
    int lk, fd, rc = -1, e;
    FILE *f;

    if (popauth_norm(ip, me.ip, sizeof(me.ip)) < 0) {
        free(v);
        errno = EINVAL;
        return -1;
    }
    me.t = (long long)now;
    popauth_file(path, sizeof(path), work_dir, "popauth");
    popauth_file(tmp, sizeof(tmp), work_dir, "popauth.tmp");
    popauth_file(lock, sizeof(lock), work_dir, "popauth.lock");
    if ((lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        free(v);
        return -1;
    }
    if (flock(lk, LOCK_EX) < 0)
        goto out;
    if ((f = fopen(path, "re")) != NULL) {
        struct popauth_entry x;
        for (int k = 0; k < POPAUTH_MAX && fgets(line, sizeof(line), f) != NULL; k++)
            if (popauth_parse(line, &x) == 0 && strcmp(x.ip, me.ip) != 0 &&
                (long long)now - x.t < window && x.t <= (long long)now + 60 && n < POPAUTH_MAX)
                v[n++] = x;
        fclose(f);
    }
    if (n == POPAUTH_MAX) /* the oldest goes */
        first = 1;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0)
        goto out;
    if ((f = fdopen(fd, "w")) == NULL) {
        close(fd);
        goto out;
    }
    for (size_t i = first; i < n; i++)
        fprintf(f, "%s %lld\n", v[i].ip, v[i].t);
    fprintf(f, "%s %lld\n", me.ip, me.t);
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        e = errno;
        unlink(tmp);
        errno = e;
        goto out;
    }
    rc = 0;
out:
    e = errno;
    close(lk); /* releases the lock */
    free(v);
    errno = e;
    return rc;
}

struct popauth_job {
    uv_work_t work;
    struct conf *cf;
    char ip[POPAUTH_IP_MAX];
    time_t now;
    int rc, err;
};

/* popauth_job_work - on the pool: write the file. */
static void
popauth_job_work(uv_work_t *w)
{
    struct popauth_job *j = w->data;

    j->rc = popauth_record(j->cf->work_path, j->ip, j->now, j->cf->forward_user_window);
    j->err = errno;
}

/* popauth_job_done - on the loop: log a failure, free. */
static void
popauth_job_done(uv_work_t *w, int status)
{
    struct popauth_job *j = w->data;

    if (status == 0 && j->rc < 0)
        log_warn("popauth: cannot note %s in %s/popauth: %s", j->ip, j->cf->work_path,
                 strerror(j->err));
    conf_unref(&j->cf);
    free(j);
}

void
popauth_note(uv_loop_t *loop, struct conf *cf, const char *ip)
{
    struct popauth_job *j;

    if (!cf->forward_user)
        return;
    j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->cf = conf_ref(cf);
    snprintf(j->ip, sizeof(j->ip), "%s", ip);
    j->now = time(NULL);
    if (uv_queue_work(loop, &j->work, popauth_job_work, popauth_job_done) != 0) {
        conf_unref(&j->cf);
        free(j);
    }
}
