/*
 * admin - dlist's control commands: lists, who, add, remove (see admin.h).
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "conf.h"
#include "lists.h"
#include "log.h"
#include "members.h"
#include "server.h"
#include "spool.h"
#include "xmem.h"

enum admin_op { ADMIN_LISTS, ADMIN_WHO, ADMIN_ADD, ADMIN_REMOVE };

struct admin_job {
    uv_work_t work;
    struct ctl_req *r;
    struct conf *cf;
    enum admin_op op;
    char *list, *addr;
    /* out */
    bool ok;
    char text[400];
    size_t nlines;
    char **lines;
};

static uv_once_t admin_once = UV_ONCE_INIT;
static uv_mutex_t admin_lock;

/* admin_init - the mutex, once. */
static void
admin_init(void)
{
    if (uv_mutex_init(&admin_lock) != 0)
        abort();
}

void
admin_members_lock(void)
{
    uv_once(&admin_once, admin_init);
    uv_mutex_lock(&admin_lock);
}

void
admin_members_unlock(void)
{
    uv_mutex_unlock(&admin_lock);
}

char *
admin_members_path(const struct conf *cf, const char *list)
{
    return xasprintf("%s/dlist/%s/members", cf->work_path, list);
}

/* admin_line - one answer line of the job. */
static void
admin_line(struct admin_job *j, char *line)
{
    j->lines = xrealloc(j->lines, (j->nlines + 1) * sizeof(*j->lines));
    j->lines[j->nlines++] = line;
}

/* admin_work - pool: read, change, save. */
static void
admin_work(uv_work_t *w)
{
    struct admin_job *j = w->data;
    const struct lists_set *ls = j->cf->lists;
    struct members m = {0};
    char *path;
    int r = 0;

    admin_members_lock();
    if (j->op == ADMIN_LISTS) {
        for (size_t i = 0; ls != NULL && i < ls->n; i++) {
            path = admin_members_path(j->cf, ls->v[i].name);
            members_load(&m, path, NULL);
            admin_line(j, xasprintf("%s %zu %s", ls->v[i].name, m.n, ls->v[i].title));
            members_free(&m);
            free(path);
        }
        j->ok = true;
        snprintf(j->text, sizeof(j->text), "%zu list%s", ls != NULL ? ls->n : 0,
                 ls != NULL && ls->n == 1 ? "" : "s");
        goto out;
    }
    path = admin_members_path(j->cf, j->list);
    if (members_load(&m, path, NULL) < 0) {
        snprintf(j->text, sizeof(j->text), "cannot read the members of %s", j->list);
        free(path);
        goto out;
    }
    if (j->op == ADMIN_WHO) {
        for (size_t i = 0; i < m.n; i++)
            admin_line(j, xstrdup(m.v[i]));
        j->ok = true;
        snprintf(j->text, sizeof(j->text), "%zu member%s", m.n, m.n == 1 ? "" : "s");
    } else if (j->op == ADMIN_ADD) {
        char err[200];
        r = members_add(&m, j->addr, err, sizeof(err));
        if (r < 0)
            snprintf(j->text, sizeof(j->text), "%s: %s", j->addr, err);
        else if (r == 0) {
            j->ok = true;
            snprintf(j->text, sizeof(j->text), "%s is a member already", j->addr);
        }
    } else {
        r = members_remove(&m, j->addr);
        if (r == 0)
            snprintf(j->text, sizeof(j->text), "%s is not a member", j->addr);
    }
    if (r == 1) {
        if (members_save(&m, path) < 0)
            snprintf(j->text, sizeof(j->text), "cannot write %s", path);
        else {
            j->ok = true;
            snprintf(j->text, sizeof(j->text), "%s %s", j->op == ADMIN_ADD ? "added" : "removed",
                     j->addr);
        }
    }
    members_free(&m);
    free(path);
out:
    admin_members_unlock();
}

/* admin_done - loop: the answer. */
static void
admin_done(uv_work_t *w, int status)
{
    struct admin_job *j = w->data;

    for (size_t i = 0; i < j->nlines; i++) {
        ctl_line(j->r, "%s", j->lines[i]);
        free(j->lines[i]);
    }
    if (status != 0)
        ctl_err(j->r, "cancelled");
    else if (j->ok) {
        if (j->op == ADMIN_ADD || j->op == ADMIN_REMOVE)
            log_info("list %s: %s", j->list, j->text);
        ctl_ok(j->r, "%s", j->text);
    } else
        ctl_err(j->r, "%s", j->text);
    conf_unref(&j->cf);
    free(j->lines);
    free(j->list);
    free(j->addr);
    free(j);
}

/* admin_start - a job for the request. */
static void
admin_start(struct ctl_req *r, struct server *srv, enum admin_op op, const char *list,
            const char *addr)
{
    struct admin_job *j;
    const struct lists_def *def = NULL;

    if (list != NULL && (def = lists_find(srv->cf->lists, list)) == NULL) {
        ctl_err(r, "no list %s", list);
        return;
    }
    uv_once(&admin_once, admin_init);
    j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->r = r;
    j->cf = conf_ref(srv->cf);
    j->op = op;
    j->list = def != NULL ? xstrdup(def->name) : NULL;
    j->addr = addr != NULL ? xstrdup(addr) : NULL;
    if (uv_queue_work(srv->loop, &j->work, admin_work, admin_done) != 0) {
        conf_unref(&j->cf);
        free(j->list);
        free(j->addr);
        free(j);
        ctl_err(r, "cannot queue the job");
    }
}

static void
admin_cmd_lists(struct ctl_req *r, int argc, char **argv, void *arg)
{
    admin_start(r, arg, ADMIN_LISTS, NULL, NULL);
}

static void
admin_cmd_who(struct ctl_req *r, int argc, char **argv, void *arg)
{
    admin_start(r, arg, ADMIN_WHO, argv[1], NULL);
}

static void
admin_cmd_add(struct ctl_req *r, int argc, char **argv, void *arg)
{
    admin_start(r, arg, ADMIN_ADD, argv[1], argv[2]);
}

static void
admin_cmd_remove(struct ctl_req *r, int argc, char **argv, void *arg)
{
    admin_start(r, arg, ADMIN_REMOVE, argv[1], argv[2]);
}

static void
admin_cmd_held(struct ctl_req *r, int argc, char **argv, void *arg)
{
    spool_admin(arg, r, 'h', argv[1], NULL);
}

static void
admin_cmd_approve(struct ctl_req *r, int argc, char **argv, void *arg)
{
    spool_admin(arg, r, 'a', argv[1], argv[2]);
}

static void
admin_cmd_reject(struct ctl_req *r, int argc, char **argv, void *arg)
{
    spool_admin(arg, r, 'r', argv[1], argv[2]);
}

const struct ctl_cmd admin_cmds[ADMIN_NCMDS] = {
    {"lists", "", 0, 0, admin_cmd_lists, "the lists: name, members, title"},
    {"who", "LIST", 1, 1, admin_cmd_who, "the members of LIST"},
    {"add", "LIST ADDRESS", 2, 2, admin_cmd_add, "subscribe ADDRESS to LIST"},
    {"remove", "LIST ADDRESS", 2, 2, admin_cmd_remove, "unsubscribe ADDRESS from LIST"},
    {"held", "LIST", 1, 1, admin_cmd_held, "the posts to LIST held for the moderator"},
    {"approve", "LIST ID", 2, 2, admin_cmd_approve, "send held post ID to LIST"},
    {"reject", "LIST ID", 2, 2, admin_cmd_reject, "discard held post ID of LIST"},
};
