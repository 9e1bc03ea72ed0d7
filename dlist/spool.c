/*
 * spool - dlist's runner: watch, scan, handle exactly once, send. See spool.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "conf.h"
#include "digest.h"
#include "dmarc.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "moderate.h"
#include "outbox.h"
#include "post.h"
#include "request.h"
#include "server.h"
#include "smtpout.h"
#include "spool.h"
#include "status.h"
#include "token.h"
#include "vbounce.h"
#include "work.h"
#include "xmem.h"

#define SPOOL_ROLES 4
static const char *const spool_roles[SPOOL_ROLES] = {"post", "request", "owner", "bounces"};

static struct {
    struct server *srv;
    uv_timer_t timer;
    uv_fs_event_t **ev; /* one per list and role */
    size_t nev;
    const struct conf *watched; /* the snapshot the watchers were made for */
    bool running, again, stopping;
    uint64_t last_scan_ms;
    char *token_dir; /* the key's directory in force */
} sp;

/* the pool jobs (scans and admin commands) run one at a time */
static uv_mutex_t spool_lock;
static uv_once_t spool_once = UV_ONCE_INIT;

static void
spool_init_lock(void)
{
    if (uv_mutex_init(&spool_lock) != 0)
        abort();
}

struct spool_job {
    uv_work_t work;
    struct conf *cf;
    char **outs; /* the outbox after the scan */
    size_t nouts;
    /* admin */
    struct ctl_req *r;
    char op, *list, *id;
    bool ok;
    char text[300];
    size_t nlines;
    char **lines;
};

/* spool_work_init - a work for list def of cf (listdir, outdir). */
static void
spool_work_init(struct work *w, const struct conf *cf, const struct lists_def *def)
{
    memset(w, 0, sizeof(*w));
    w->cf = cf;
    w->def = def;
    w->domain = cf->lists->domain;
    w->outdir = xasprintf("%s/dlist/%s", cf->spool_dir, OUTBOX_DIR);
    w->listdir = xasprintf("%s/dlist/%s", cf->spool_dir, def->name);
}

static void
spool_work_free(struct work *w)
{
    work_done(w);
    free(w->outdir);
    free(w->listdir);
}

/* spool_handle - one claimed file cur/name of the list's role (see the contract). */
static void
spool_handle(const struct conf *cf, const struct lists_def *def, int role, const char *cur,
             const char *name)
{
    char *path = xasprintf("%s/%s", cur, name), *text = NULL;
    size_t len = 0;
    struct work w;

    spool_work_init(&w, cf, def);
    snprintf(w.key, sizeof(w.key), "%s.%s.%s", def->name, spool_roles[role], name);
    if (outbox_drop_key(w.outdir, w.key) > 0)
        log_info("list %s: %s handled again after a restart (its mail made anew)", def->name, name);
    if (file_read_all(path, OUTBOX_TEXT_MAX, &text, &len) < 0) {
        log_error("list %s: %s: %s: removed", def->name, path, strerror(errno));
        if (errno != ENOENT)
            unlink(path);
        goto out;
    }
    w.text = text;
    w.len = len;
    if (strncmp(text, "Return-Path:", 12) == 0) {
        const char *nl = memchr(text, '\n', len);
        char *rp = xstrndup(text + 12, nl != NULL ? (size_t)(nl - text - 12) : 0);
        char *lt = strchr(rp, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
        if (lt != NULL && gt != NULL)
            snprintf(w.sender, sizeof(w.sender), "%.*s", (int)(gt - lt - 1), lt + 1);
        free(rp);
        w.text = nl != NULL ? nl + 1 : text + len;
        w.len = len - (size_t)(w.text - text);
    }
    if (role == 0)
        post_handle(&w);
    else if (role == 1)
        request_handle(&w);
    else if (role == 2)
        request_handle_owner(&w);
    else
        vbounce_handle(&w);
    if (w.later)
        log_debug("list %s: %s waits for a DMARC lookup", def->name, name);
    else if (w.errors > 0)
        log_warn("list %s: %s kept in %s to be handled again", def->name, name, cur);
    else if (unlink(path) < 0 || file_fsync_dir(cur) < 0)
        log_error("list %s: cannot remove %s: %s", def->name, path, strerror(errno));
    else
        work_finish(&w);
out:
    spool_work_free(&w);
    free(text);
    free(path);
}

/* spool_dirs - LIST/ROLE/{tmp,new,cur} made; 0 or -1. */
static int
spool_dirs(const char *role_dir)
{
    static const char *const sub[] = {"tmp", "new", "cur"};

    for (int i = 0; i < 3; i++) {
        char *d = xasprintf("%s/%s", role_dir, sub[i]);
        int rc = file_mkdirs(d, 0700);
        free(d);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* spool_scan_list - every file of the list's cur (left by a crash), then new. */
static void
spool_scan_list(const struct conf *cf, const struct lists_def *def)
{
    for (int role = 0; role < SPOOL_ROLES; role++) {
        char *rd = xasprintf("%s/dlist/%s/%s", cf->spool_dir, def->name, spool_roles[role]);
        char *cur = xasprintf("%s/cur", rd), *nw = xasprintf("%s/new", rd);
        size_t n = 0;
        char **names;

        if (spool_dirs(rd) < 0)
            log_error("list %s: cannot make %s: %s", def->name, rd, strerror(errno));
        names = file_dir_names(cur, NULL, &n);
        for (size_t i = 0; names != NULL && i < n; i++) {
            spool_handle(cf, def, role, cur, names[i]);
            free(names[i]);
        }
        free(names);
        names = file_dir_names(nw, NULL, &n);
        for (size_t i = 0; names != NULL && i < n; i++) {
            char *from = xasprintf("%s/%s", nw, names[i]), *to = xasprintf("%s/%s", cur, names[i]);
            if (rename(from, to) < 0 || file_fsync_dir(cur) < 0 || file_fsync_dir(nw) < 0)
                log_error("list %s: cannot claim %s: %s", def->name, from, strerror(errno));
            else
                spool_handle(cf, def, role, cur, names[i]);
            free(from);
            free(to);
            free(names[i]);
        }
        free(names);
        free(cur);
        free(nw);
        free(rd);
    }
}

/* spool_token - the token key of dlist_path (again when it changed). */
static void
spool_token(const struct conf *cf)
{
    const char *dir = cf->dlist_path;
    char err[300];

    if (sp.token_dir != NULL && strcmp(sp.token_dir, dir) == 0)
        return;
    if (token_init(dir, err, sizeof(err)) < 0) {
        log_error("dlist: %s: confirmations cannot be made or checked", err);
        return;
    }
    free(sp.token_dir);
    sp.token_dir = xstrdup(dir);
}

/* spool_scan_work - pool: the whole scan. */
static void
spool_scan_work(uv_work_t *wk)
{
    struct spool_job *j = wk->data;
    const struct conf *cf = j->cf;
    char *outdir = xasprintf("%s/dlist/%s", cf->spool_dir, OUTBOX_DIR);

    uv_mutex_lock(&spool_lock);
    if (file_mkdirs(outdir, 0700) < 0)
        log_error("cannot make %s: %s", outdir, strerror(errno));
    if (cf->lists != NULL) {
        spool_token(cf);
        for (size_t i = 0; i < cf->lists->n; i++) {
            struct work w;
            spool_scan_list(cf, &cf->lists->v[i]);
            spool_work_init(&w, cf, &cf->lists->v[i]);
            moderate_expire(&w, cf->dlist_held_expire, time(NULL));
            status_run(&w, time(NULL));
            vbounce_run(&w, time(NULL));
            spool_work_free(&w);
        }
        digest_run(cf, outdir, time(NULL)); /* issues that are due, into the outbox */
    }
    j->outs = file_dir_names(outdir, NULL, &j->nouts);
    uv_mutex_unlock(&spool_lock);
    free(outdir);
}

static bool spool_watch(void);

/* spool_scan_done - loop: send what the outbox holds; scan again if kicked meanwhile. */
static void
spool_scan_done(uv_work_t *wk, int status)
{
    struct spool_job *j = wk->data;

    sp.srv->jobs--;
    sp.running = false;
    conf_unref(&j->cf);
    if (!sp.stopping) {
        if (j->outs != NULL && j->nouts > 0) {
            smtpout_run(sp.srv, j->outs, j->nouts);
            j->outs = NULL;
        }
        if (spool_watch())
            sp.again = true;
        dmarc_lookup_wanted(spool_kick); /* posts put aside for them are handled again */
    }
    for (size_t i = 0; j->outs != NULL && i < j->nouts; i++)
        free(j->outs[i]);
    free(j->outs);
    free(j);
    if (sp.again && !sp.stopping) {
        sp.again = false;
        spool_kick();
    }
}

void
spool_kick(void)
{
    struct spool_job *j;

    if (sp.srv == NULL || sp.stopping)
        return;
    if (sp.running) {
        sp.again = true;
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->cf = conf_ref(sp.srv->cf);
    sp.running = true;
    sp.last_scan_ms = uv_now(sp.srv->loop);
    sp.srv->jobs++;
    if (uv_queue_work(sp.srv->loop, &j->work, spool_scan_work, spool_scan_done) != 0) {
        sp.srv->jobs--;
        sp.running = false;
        conf_unref(&j->cf);
        free(j);
    }
}

/* spool_event - loop: something changed in a new/ directory. */
static void
spool_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    spool_kick();
}

static void
spool_ev_closed(uv_handle_t *h)
{
    free(h);
}

/* spool_unwatch - every watcher closed (each freed by its close callback). */
static void
spool_unwatch(void)
{
    for (size_t i = 0; i < sp.nev; i++)
        uv_close((uv_handle_t *)sp.ev[i], spool_ev_closed);
    free(sp.ev);
    sp.ev = NULL;
    sp.nev = 0;
}

/* spool_watch - watchers for the lists of the snapshot in force (after a reload: anew);
 * true when they were made now: a file that came before they were in place waits for
 * the next scan, so the caller scans once more. */
static bool
spool_watch(void)
{
    const struct conf *cf = sp.srv->cf;
    size_t n = cf->lists != NULL ? cf->lists->n * SPOOL_ROLES : 0;

    if (cf == sp.watched)
        return false;
    spool_unwatch();
    sp.ev = n > 0 ? xcalloc(n, sizeof(*sp.ev)) : NULL;
    sp.watched = cf;
    for (size_t i = 0; i < n; i++) {
        char *d = xasprintf("%s/dlist/%s/%s/new", cf->spool_dir, cf->lists->v[i / SPOOL_ROLES].name,
                            spool_roles[i % SPOOL_ROLES]);
        uv_fs_event_t *h = xcalloc(1, sizeof(*h));
        uv_fs_event_init(sp.srv->loop, h);
        if (uv_fs_event_start(h, spool_event, d, 0) == 0)
            sp.ev[sp.nev++] = h;
        else {
            log_warn("cannot watch %s (the scan each dlist_scan_interval finds its mail)", d);
            uv_close((uv_handle_t *)h, spool_ev_closed);
        }
        free(d);
    }
    return true;
}

/* spool_tick - each second: a scan when the snapshot changed or the interval passed. */
static void
spool_tick(uv_timer_t *t)
{
    uint64_t now = uv_now(sp.srv->loop);

    if (sp.srv->cf != sp.watched ||
        now - sp.last_scan_ms >= (uint64_t)sp.srv->cf->dlist_scan_interval * 1000)
        spool_kick();
}

void
spool_start(struct server *srv)
{
    uv_once(&spool_once, spool_init_lock);
    sp.srv = srv;
    uv_timer_init(srv->loop, &sp.timer);
    uv_timer_start(&sp.timer, spool_tick, 1000, 1000);
    dmarc_start(srv->loop, srv->cf);
    spool_kick();
}

void
spool_stop(struct server *srv)
{
    sp.stopping = true;
    uv_timer_stop(&sp.timer);
    uv_close((uv_handle_t *)&sp.timer, NULL);
    spool_unwatch();
    smtpout_stop();
    dmarc_stop();
}

/* spool_admin_line - one answer line of an admin job. */
static void
spool_admin_line(void *arg, const char *text)
{
    struct spool_job *j = arg;

    j->lines = xrealloc(j->lines, (j->nlines + 1) * sizeof(*j->lines));
    j->lines[j->nlines++] = xstrdup(text);
}

/* spool_admin_work - pool: held / approve / reject. */
static void
spool_admin_work(uv_work_t *wk)
{
    struct spool_job *j = wk->data;
    const struct lists_def *def = lists_find(j->cf->lists, j->list);
    struct work w;
    char uniq[100];

    uv_mutex_lock(&spool_lock);
    spool_work_init(&w, j->cf, def);
    file_unique_name(uniq, sizeof(uniq), NULL);
    snprintf(w.key, sizeof(w.key), "%s.admin.%s", def->name, uniq);
    if (j->op == 'h') {
        size_t n = moderate_list(&w, spool_admin_line, j);
        snprintf(j->text, sizeof(j->text), "%zu held post%s", n, n == 1 ? "" : "s");
        j->ok = true;
    } else if (moderate_decide(&w, j->id, j->op == 'a', j->text, sizeof(j->text)) == 0) {
        work_finish(&w);
        snprintf(j->text, sizeof(j->text), "%s %s", j->op == 'a' ? "approved" : "rejected", j->id);
        j->ok = true;
    }
    spool_work_free(&w);
    uv_mutex_unlock(&spool_lock);
}

/* spool_admin_done - loop: the answer; an approved post goes out. */
static void
spool_admin_done(uv_work_t *wk, int status)
{
    struct spool_job *j = wk->data;

    sp.srv->jobs--;
    for (size_t i = 0; i < j->nlines; i++) {
        ctl_line(j->r, "%s", j->lines[i]);
        free(j->lines[i]);
    }
    if (j->ok)
        ctl_ok(j->r, "%s", j->text);
    else
        ctl_err(j->r, "%s", j->text);
    if (j->ok && j->op == 'a')
        spool_kick();
    conf_unref(&j->cf);
    free(j->lines);
    free(j->list);
    free(j->id);
    free(j);
}

void
spool_admin(struct server *srv, struct ctl_req *r, char op, const char *list, const char *id)
{
    const struct lists_def *def = lists_find(srv->cf->lists, list);
    struct spool_job *j;

    if (def == NULL) {
        ctl_err(r, "no list %s", list);
        return;
    }
    uv_once(&spool_once, spool_init_lock);
    j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->cf = conf_ref(srv->cf);
    j->r = r;
    j->op = op;
    j->list = xstrdup(def->name);
    j->id = id != NULL ? xstrdup(id) : NULL;
    srv->jobs++;
    if (uv_queue_work(srv->loop, &j->work, spool_admin_work, spool_admin_done) != 0) {
        srv->jobs--;
        conf_unref(&j->cf);
        free(j->list);
        free(j->id);
        free(j);
        ctl_err(r, "cannot queue the job");
    }
}
