/*
 * statefile - a state file written whole on the pool, one write at a time. See
 * statefile.h.
 */
#include "statefile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "log.h"
#include "xmem.h"

/* One write on the pool. */
struct statefile_job {
    struct statefile *sf;
    char *text;
    size_t len;
    int err;
    uv_work_t w;
};

/* statefile_init - see statefile.h. */
void
statefile_init(struct statefile *sf, uv_loop_t *loop, long *jobs, const char *path,
               const char *what, size_t max, void (*format)(void *arg, struct buf *b), void *arg)
{
    memset(sf, 0, sizeof(*sf));
    sf->loop = loop;
    sf->jobs = jobs;
    sf->path = path != NULL && path[0] != '\0' ? xstrdup(path) : NULL;
    sf->what = what;
    sf->max = max;
    sf->format = format;
    sf->arg = arg;
}

/* statefile_work - pool: write the file. */
static void
statefile_work(uv_work_t *w)
{
    struct statefile_job *j = w->data;

    if (file_write_atomic(j->sf->path, j->text, j->len, 0600) < 0)
        j->err = errno;
}

/* statefile_done - loop: the write ended; another one if the state changed meanwhile. */
static void
statefile_done(uv_work_t *w, int status)
{
    struct statefile_job *j = w->data;
    struct statefile *sf = j->sf;

    (*sf->jobs)--;
    if (j->err != 0 || status < 0)
        log_warn("%s: cannot write %s: %s", sf->what, sf->path,
                 j->err != 0 ? strerror(j->err) : uv_strerror(status));
    free(j->text);
    free(j);
    sf->saving = false;
    if (sf->dirty)
        statefile_save(sf);
}

/* statefile_save - see statefile.h. */
void
statefile_save(struct statefile *sf)
{
    struct statefile_job *j;
    struct buf b;

    if (sf->path == NULL)
        return;
    if (sf->saving) {
        sf->dirty = true;
        return;
    }
    sf->dirty = false;
    buf_init(&b, sf->max);
    sf->format(sf->arg, &b);
    j = xcalloc(1, sizeof(*j));
    j->sf = sf;
    j->len = b.len;
    j->text = xstrndup(buf_peek(&b), b.len);
    buf_free(&b);
    j->w.data = j;
    sf->saving = true;
    (*sf->jobs)++;
    if (uv_queue_work(sf->loop, &j->w, statefile_work, statefile_done) < 0) {
        (*sf->jobs)--;
        sf->saving = false;
        free(j->text);
        free(j);
    }
}

/* statefile_free - see statefile.h. */
void
statefile_free(struct statefile *sf)
{
    free(sf->path);
    sf->path = NULL;
}
