/*
 * space - the free-space guard of min_space. See space.h.
 */
#include "space.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "xmem.h"

/* One check: its snapshot, then what it found. */
struct space_job {
    uv_work_t work;
    struct server *srv;
    struct conf *cf;
    bool low;
    unsigned long long free_mb;
    const char *path; /* the lowest path below min_space (points into cf) */
};

/* space_measure - statvfs of every mail path of j->cf into j. */
static void
space_measure(struct space_job *j)
{
    const char *paths[] = {j->cf->drop_path, j->cf->spool_dir, j->cf->work_path};
    unsigned long long need = (unsigned long long)j->cf->min_space;

    j->low = false;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct statvfs st;
        unsigned long long mb;
        if (paths[i] == NULL || *paths[i] == '\0' || statvfs(paths[i], &st) < 0)
            continue;
        mb = (unsigned long long)st.f_bavail * st.f_frsize / (1024 * 1024);
        if (mb < need && (!j->low || mb < j->free_mb)) {
            j->low = true;
            j->free_mb = mb;
            j->path = paths[i];
        }
    }
}

/* space_verdict - take a check's result, logging a change. */
static void
space_verdict(struct server *srv, const struct space_job *j)
{
    if (j->low && !srv->space_low)
        log_warn("min_space: %s has %llu MB free, below min_space %ld MB: new mail is refused "
                 "with 452 and POP with -ERR [SYS/TEMP] until space is freed",
                 j->path, j->free_mb, j->cf->min_space);
    else if (!j->low && srv->space_low)
        log_info("min_space: free space is back above min_space %ld MB", j->cf->min_space);
    srv->space_low = j->low;
}

/* space_work - on the pool. */
static void
space_work(uv_work_t *w)
{
    space_measure(w->data);
}

/* space_done - on the loop. */
static void
space_done(uv_work_t *w, int status)
{
    struct space_job *j = w->data;
    struct server *srv = j->srv;

    if (status == 0)
        space_verdict(srv, j);
    srv->space_running = false;
    srv->jobs--;
    conf_unref(&j->cf);
    free(j);
}

/* space_start - the first check, at once. */
void
space_start(struct server *srv)
{
    struct space_job j = {.srv = srv, .cf = srv->cf};

    srv->space_next_ms = uv_now(srv->loop) + SPACE_EVERY_MS;
    if (srv->cf->min_space <= 0)
        return;
    space_measure(&j);
    space_verdict(srv, &j);
}

/* space_tick - start a check on the pool when one is due. */
void
space_tick(struct server *srv)
{
    struct space_job *j;
    uint64_t now = uv_now(srv->loop);

    if (srv->space_running || now < srv->space_next_ms || srv->finished)
        return;
    srv->space_next_ms = now + SPACE_EVERY_MS;
    if (srv->cf->min_space <= 0) {
        if (srv->space_low)
            log_info("min_space: off, nothing is refused for space");
        srv->space_low = false;
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->srv = srv;
    j->cf = conf_ref(srv->cf);
    j->work.data = j;
    if (uv_queue_work(srv->loop, &j->work, space_work, space_done) < 0) {
        conf_unref(&j->cf);
        free(j);
        return;
    }
    srv->space_running = true;
    srv->jobs++;
}

/* space_low - the last check's verdict. */
bool
space_low(const struct server *srv)
{
    return srv->space_low;
}
