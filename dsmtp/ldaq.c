/*
 * ldaq - program deliveries, each queue file its own pool job. See ldaq.h.
 */
#include "ldaq.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "conf.h"
#include "log.h"
#include "queue.h"
#include "xmem.h"

struct ldaq_job {
    uv_work_t work;
    struct ldaq *q;
    char *name;
    struct conf *cf;
    struct auth_db *db;
    struct queue_counts counts;
    int rc;
};

struct ldaq {
    struct smtpd *d;
    uv_timer_t timer;
    uv_work_t scanw;
    struct conf *scan_cf;
    bool scanning, again, stopping, timer_closed;
    char **found; /* the scan's names */
    size_t nfound;
    char **todo; /* waiting for a free slot, oldest first */
    size_t ntodo;
    char **busy; /* running */
    size_t nbusy;
};

bool
ldaq_is_name(const char *name)
{
    size_t n = strlen(name), s = strlen(LDAQ_SUFFIX);

    return n > s && strcmp(name + n - s, LDAQ_SUFFIX) == 0;
}

/* ldaq_has - name is in v. */
static bool
ldaq_has(char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

/* ldaq_maybe_free - free once stopped, the timer closed, nothing running. */
static void
ldaq_maybe_free(struct ldaq *q)
{
    if (!q->stopping || !q->timer_closed || q->scanning || q->nbusy > 0)
        return;
    for (size_t i = 0; i < q->ntodo; i++)
        free(q->todo[i]);
    free(q->todo);
    free(q->busy);
    free(q);
}

/* ldaq_job_work - pool: one queue file of program deliveries. */
static void
ldaq_job_work(uv_work_t *w)
{
    struct ldaq_job *j = w->data;
    char *path = xasprintf("%s/queue/%s", j->cf->spool_dir, j->name);
    struct stat st;

    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        j->rc = queue_process_file(j->cf, j->db, path, time(NULL), NULL, &j->counts);
    if (j->rc < 0)
        queue_quarantine(j->cf, path, j->name);
    free(path);
}

static void ldaq_fill(struct ldaq *q);

/* ldaq_job_done - loop: a file ran; the next one; the forward copies it queued go out. */
static void
ldaq_job_done(uv_work_t *w, int status)
{
    struct ldaq_job *j = w->data;
    struct ldaq *q = j->q;

    (void)status;
    for (size_t i = 0; i < q->nbusy; i++)
        if (q->busy[i] == j->name) {
            q->busy[i] = q->busy[--q->nbusy];
            break;
        }
    q->d->stats.queue_delivered += j->counts.delivered;
    q->d->stats.queue_failed += j->counts.failed;
    q->d->srv.jobs--;
    conf_unref(&j->cf);
    if (j->db != NULL)
        auth_db_unref(&j->db);
    free(j->name);
    free(j);
    if (!q->stopping && q->d->queue != NULL)
        queue_kick_scan(q->d->queue); /* forward copies and reports it queued */
    ldaq_fill(q);
    ldaq_maybe_free(q);
}

/* ldaq_fill - start waiting files while command_concurrency allows. */
static void
ldaq_fill(struct ldaq *q)
{
    const struct conf *cf = q->d->srv.cf;
    /* programs hold pool threads: never more than half of them (mailboxes need the rest) */
    long half = cf->io_threads / 2 > 0 ? cf->io_threads / 2 : 1;
    size_t limit = (size_t)(cf->command_concurrency < half ? cf->command_concurrency : half);

    while (!q->stopping && q->ntodo > 0 && q->nbusy < limit) {
        struct ldaq_job *j = xcalloc(1, sizeof(*j));
        j->q = q;
        j->name = q->todo[0];
        memmove(q->todo, q->todo + 1, (q->ntodo - 1) * sizeof(*q->todo));
        q->ntodo--;
        j->cf = conf_ref(q->d->srv.cf);
        j->db = q->d->srv.db != NULL ? auth_db_ref(q->d->srv.db) : NULL;
        j->work.data = j;
        q->busy = xrealloc(q->busy, (q->nbusy + 1) * sizeof(*q->busy));
        q->busy[q->nbusy++] = j->name;
        q->d->srv.jobs++;
        if (uv_queue_work(q->d->srv.loop, &j->work, ldaq_job_work, ldaq_job_done) < 0) {
            q->nbusy--;
            q->d->srv.jobs--;
            conf_unref(&j->cf);
            if (j->db != NULL)
                auth_db_unref(&j->db);
            free(j->name);
            free(j);
            return;
        }
    }
}

/* ldaq_scan - pool: the *.lda names of spool_dir/queue, oldest name first. */
static void
ldaq_scan(uv_work_t *w)
{
    struct ldaq *q = w->data;
    char *dir = xasprintf("%s/queue", q->scan_cf->spool_dir);
    DIR *dp = opendir(dir);
    struct dirent *de;

    while (dp != NULL && (de = readdir(dp)) != NULL)
        if (de->d_name[0] != '.' && ldaq_is_name(de->d_name)) {
            q->found = xrealloc(q->found, (q->nfound + 1) * sizeof(*q->found));
            q->found[q->nfound++] = xstrdup(de->d_name);
        }
    if (dp != NULL)
        closedir(dp);
    free(dir);
}

static void ldaq_start_scan(struct ldaq *q);

/* ldaq_scanned - loop: new names wait for a slot. */
static void
ldaq_scanned(uv_work_t *w, int status)
{
    struct ldaq *q = w->data;

    (void)status;
    q->scanning = false;
    conf_unref(&q->scan_cf);
    for (size_t i = 0; i < q->nfound; i++) {
        if (q->stopping || ldaq_has(q->todo, q->ntodo, q->found[i]) ||
            ldaq_has(q->busy, q->nbusy, q->found[i])) {
            free(q->found[i]);
            continue;
        }
        q->todo = xrealloc(q->todo, (q->ntodo + 1) * sizeof(*q->todo));
        q->todo[q->ntodo++] = q->found[i];
    }
    free(q->found);
    q->found = NULL;
    q->nfound = 0;
    ldaq_fill(q);
    if (q->again && !q->stopping) {
        q->again = false;
        ldaq_start_scan(q);
    }
    ldaq_maybe_free(q);
}

/* ldaq_start_scan - one directory scan on the pool. */
static void
ldaq_start_scan(struct ldaq *q)
{
    if (q->stopping)
        return;
    if (q->scanning) {
        q->again = true;
        return;
    }
    q->scan_cf = conf_ref(q->d->srv.cf);
    q->scanw.data = q;
    q->scanning = true;
    if (uv_queue_work(q->d->srv.loop, &q->scanw, ldaq_scan, ldaq_scanned) < 0) {
        q->scanning = false;
        conf_unref(&q->scan_cf);
    }
}

static void
ldaq_timer_cb(uv_timer_t *t)
{
    ldaq_start_scan(t->data);
}

struct ldaq *
ldaq_new(struct smtpd *d)
{
    struct ldaq *q = xcalloc(1, sizeof(*q));
    uint64_t every = (uint64_t)d->srv.cf->queue_retry * 1000;

    q->d = d;
    uv_timer_init(d->srv.loop, &q->timer);
    q->timer.data = q;
    uv_timer_start(&q->timer, ldaq_timer_cb, 0, every);
    return q;
}

void
ldaq_kick(struct ldaq *q)
{
    if (q != NULL)
        ldaq_start_scan(q);
}

static void
ldaq_timer_closed(uv_handle_t *h)
{
    struct ldaq *q = h->data;

    q->timer_closed = true;
    ldaq_maybe_free(q);
}

void
ldaq_stop(struct ldaq **qp)
{
    struct ldaq *q = *qp;

    *qp = NULL;
    if (q == NULL)
        return;
    q->stopping = true;
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, ldaq_timer_closed);
}
