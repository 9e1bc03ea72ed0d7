/*
 * spill - a large message's middle in spool_dir/spill/ID while it arrives. See spill.h.
 */
#include "spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "file.h"
#include "log.h"
#include "session.h"
#include "xmem.h"

enum spill_op { SPILL_WRITE, SPILL_LOAD, SPILL_UNLINK };

struct spill_job {
    uv_work_t w;
    enum spill_op op;
    struct smtp_session *s; /* NULL once the session is gone */
    uint64_t sid;
    char *path;
    char *data; /* WRITE: the chunk; LOAD: the file's octets */
    size_t len; /* their length (LOAD: expected) */
    char *head; /* LOAD: the scanner's buffer */
    size_t head_len;
    void (*done)(struct smtp_session *s, char *text, size_t len);
    int err;
};

/* spill_path - the spill file of the session's transaction. */
static char *
spill_path(const struct smtp_session *s)
{
    return xasprintf("%s/spill/%s", s->base.cf->spool_dir, s->tx.id);
}

/* spill_io - the file work of a job (no session access). */
static void
spill_io(struct spill_job *j)
{
    size_t o = 0;
    ssize_t n;
    int fd;

    switch (j->op) {
    case SPILL_WRITE:
        fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            j->err = errno;
            return;
        }
        for (; o < j->len; o += (size_t)n) {
            n = write(fd, j->data + o, j->len - o);
            if (n < 0 && errno == EINTR) {
                n = 0;
                continue;
            }
            if (n <= 0) {
                j->err = n < 0 ? errno : EIO;
                break;
            }
        }
        if (close(fd) < 0 && j->err == 0)
            j->err = errno;
        return;
    case SPILL_LOAD:
        fd = open(j->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            j->err = errno;
            return;
        }
        j->data = xmalloc(j->len + 1);
        for (; o < j->len; o += (size_t)n) {
            n = read(fd, j->data + o, j->len - o);
            if (n < 0 && errno == EINTR) {
                n = 0;
                continue;
            }
            if (n <= 0) {
                j->err = n < 0 ? errno : EIO; /* shorter than what was written */
                break;
            }
        }
        close(fd);
        unlink(j->path);
        return;
    case SPILL_UNLINK:
        if (unlink(j->path) < 0 && errno != ENOENT)
            j->err = errno;
        return;
    }
}

static void
spill_work(uv_work_t *w)
{
    spill_io(w->data);
}

static void spill_start(uv_loop_t *loop, struct spill_job *j);

/* spill_free - a job and what it holds. */
static void
spill_free(struct spill_job *j)
{
    free(j->path);
    free(j->data);
    free(j->head);
    free(j);
}

/* spill_unlink - remove path (taken over) on the pool. */
static void
spill_unlink(uv_loop_t *loop, uint64_t sid, char *path)
{
    struct spill_job *j = xcalloc(1, sizeof(*j));

    j->op = SPILL_UNLINK;
    j->sid = sid;
    j->path = path;
    spill_start(loop, j);
}

/* spill_after - back on the loop. */
static void
spill_after(uv_work_t *w, int status)
{
    struct spill_job *j = w->data;
    struct smtp_session *s = j->s;
    char *text = NULL;
    size_t len = 0;

    if (status < 0 && j->err == 0)
        j->err = ECANCELED;
    if (j->err != 0)
        log_sess(LOGLVL_WARN, j->sid, "spill file=%s op=%s result=failed why=\"%s\"", j->path,
                 j->op == SPILL_WRITE  ? "write"
                 : j->op == SPILL_LOAD ? "read"
                                       : "unlink",
                 strerror(j->err));
    switch (j->op) {
    case SPILL_WRITE:
        if (s == NULL) { /* the session went away meanwhile */
            spill_unlink(w->loop, j->sid, j->path);
            j->path = NULL;
            break;
        }
        s->spill = NULL;
        if (j->err != 0)
            s->tx.rx.errors |= DATA_ERR_DISK;
        s->base.wait = SW_NONE;
        sess_process(&s->base);
        break;
    case SPILL_LOAD:
        if (s == NULL)
            break;
        s->spill = NULL;
        s->tx.rx.spilled = 0; /* the file is gone */
        if (j->err == 0)
            text = data_rx_unspill(j->head, j->head_len, j->data, j->len, &len);
        j->done(s, text, len);
        break;
    case SPILL_UNLINK:
        break;
    }
    spill_free(j);
}

/* spill_start - the job on the pool (run here should the pool refuse: cannot happen). */
static void
spill_start(uv_loop_t *loop, struct spill_job *j)
{
    j->w.data = j;
    if (uv_queue_work(loop, &j->w, spill_work, spill_after) != 0) {
        spill_io(j);
        j->w.loop = loop;
        spill_after(&j->w, 0);
    }
}

bool
spill_maybe(struct smtp_session *s)
{
    struct data_rx *rx = &s->tx.rx;
    struct spill_job *j;
    const char *part;
    size_t n;

    if (!s->tx.rx_active || rx->done || s->spill != NULL || !data_rx_spill_due(rx))
        return false;
    part = data_rx_spill_part(rx, &n);
    j = xcalloc(1, sizeof(*j));
    j->op = SPILL_WRITE;
    j->s = s;
    j->sid = s->base.sid;
    j->path = spill_path(s);
    j->data = xmalloc(n);
    memcpy(j->data, part, n);
    j->len = n;
    data_rx_spilled(rx);
    s->spill = j;
    sess_wait_cont(&s->base);
    spill_start(s->d->srv.loop, j);
    return s->spill != NULL;
}

void
spill_load(struct smtp_session *s, char *head, size_t head_len,
           void (*done)(struct smtp_session *s, char *text, size_t len))
{
    struct spill_job *j = xcalloc(1, sizeof(*j));

    j->op = SPILL_LOAD;
    j->s = s;
    j->sid = s->base.sid;
    j->path = spill_path(s);
    j->len = (size_t)s->tx.rx.spilled;
    j->head = head;
    j->head_len = head_len;
    j->done = done;
    s->spill = j;
    spill_start(s->d->srv.loop, j);
}

void
spill_drop(struct smtp_session *s)
{
    if (s->spill != NULL || !s->tx.rx_active || s->tx.rx.spilled == 0)
        return;
    s->tx.rx.spilled = 0;
    spill_unlink(s->d->srv.loop, s->base.sid, spill_path(s));
}

void
spill_cancel(struct smtp_session *s)
{
    if (s->spill == NULL)
        return;
    s->spill->s = NULL; /* a write unlinks its file when it ends; a load already does */
    s->spill = NULL;
    s->tx.rx.spilled = 0;
}

void
spill_clean(const char *spool_dir)
{
    char *dir = xasprintf("%s/spill", spool_dir);
    struct dirent *e;
    int n = 0;
    DIR *d;

    if (file_mkdirs(dir, 0700) < 0)
        log_fatale("cannot create %s", dir);
    d = opendir(dir);
    if (d == NULL)
        log_fatale("cannot open %s", dir);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    closedir(d);
    if (n > 0)
        log_info("spill: removed %d file%s of messages never answered from %s", n,
                 n == 1 ? "" : "s", dir);
    free(dir);
}
