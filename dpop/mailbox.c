/*
 * mailbox - in-use table and the open/UPDATE jobs. See mailbox.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "bulletin.h"
#include "log.h"
#include "mailbox.h"
#include "xmem.h"

#define MAILBOX_BUCKETS 4096 /* power of two */

struct mailbox_ent {
    char *path;
    struct mailbox_ent *next;
};

struct mailbox_inuse {
    struct mailbox_ent *b[MAILBOX_BUCKETS];
};

enum mailbox_op { MAILBOX_OPEN, MAILBOX_COMMIT };

struct mailbox_job {
    uv_work_t work;
    struct pop_session *s;
    enum mailbox_op op;
    /* inputs (copies: the pool must not touch the session) */
    struct dropview_params p;
    char *path, *index_dir;
    struct bulletin_params b; /* OPEN: bulletins first (b.dir NULL: none) */
    char *b_dir, *b_from, *b_domain, *b_state, *b_login, *b_node;
    int bulletins; /* delivered, or -1 */
    char b_err[256];
    struct dropview *view; /* COMMIT: the session's view, lent to the job */
    unsigned char *del, *seen;
    /* outputs */
    enum drop_result res;
    char err[512];
    mailbox_done_cb done;
};

/* mailbox_hash - the bucket of a path. */
static size_t
mailbox_hash(const char *s)
{
    return (size_t)(hash_str(s) & (MAILBOX_BUCKETS - 1));
}

/* mailbox_inuse_new - an empty in-use table. */
struct mailbox_inuse *
mailbox_inuse_new(void)
{
    return xcalloc(1, sizeof(struct mailbox_inuse));
}

/* mailbox_inuse_free - free the in-use table. */
void
mailbox_inuse_free(struct mailbox_inuse **tp)
{
    struct mailbox_inuse *t = *tp;

    if (t == NULL)
        return;
    for (size_t i = 0; i < MAILBOX_BUCKETS; i++) {
        while (t->b[i] != NULL) {
            struct mailbox_ent *e = t->b[i];
            t->b[i] = e->next;
            free(e->path);
            free(e);
        }
    }
    free(t);
    *tp = NULL;
}

/* mailbox_claim - take a mailbox for a session; false if another has it. */
bool
mailbox_claim(struct popd *d, const char *path)
{
    size_t h = mailbox_hash(path);
    struct mailbox_ent *e;

    for (e = d->inuse->b[h]; e != NULL; e = e->next)
        if (strcmp(e->path, path) == 0)
            return false;
    e = xcalloc(1, sizeof *e);
    e->path = xstrdup(path);
    e->next = d->inuse->b[h];
    d->inuse->b[h] = e;
    return true;
}

/* mailbox_release - give a mailbox back. */
void
mailbox_release(struct popd *d, const char *path)
{
    struct mailbox_ent **pp;

    if (path == NULL || d->inuse == NULL)
        return;
    for (pp = &d->inuse->b[mailbox_hash(path)]; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->path, path) == 0) {
            struct mailbox_ent *e = *pp;
            *pp = e->next;
            free(e->path);
            free(e);
            return;
        }
    }
}

/* mailbox_work - on the pool. */
static void
mailbox_work(uv_work_t *w)
{
    struct mailbox_job *j = w->data;

    if (j->op == MAILBOX_OPEN) {
        if (j->b.dir != NULL)
            j->bulletins = bulletin_deliver(&j->b, j->b_err, sizeof j->b_err);
        j->res = dropview_open(&j->p, &j->view, j->err, sizeof j->err);
    } else
        j->res = dropview_commit(j->view, j->del, j->seen, j->err, sizeof j->err);
}

/* mailbox_update_done - UPDATE finished: the answer to QUIT, then close. */
static void
mailbox_update_done(struct pop_session *s, enum drop_result res, const char *err)
{
    unsigned long left = 0;

    for (size_t i = 0; i < dropview_count(s->view); i++)
        left += !s->del[i];
    if (res != DROP_OK) {
        log_sess(LOGLVL_WARN, s->base.sid, "update user=%s path=%s error=%s", s->login, s->mailbox,
                 err);
        session_err(s, false, res == DROP_PERM ? "SYS/PERM" : "SYS/TEMP",
                    "Some deleted messages not removed");
    } else {
        if (s->ndel > 0)
            log_sess(LOGLVL_INFO, s->base.sid, "update user=%s deleted=%zu left=%lu", s->login,
                     s->ndel, left);
        s->d->stats.deleted += s->ndel;
        session_ok(s, "dmail POP3 server signing off (%lu messages left)", left);
    }
    session_release_mailbox(s); /* a new session may have it before this one has closed */
    sess_close(&s->base, "quit");
}

/* mailbox_after - back on the loop. */
static void
mailbox_after(uv_work_t *w, int status)
{
    struct mailbox_job *j = w->data;
    struct pop_session *s = j->s;

    (void)status;
    s->job = NULL;
    s->d->srv.jobs--;
    if (j->op == MAILBOX_OPEN) {
        if (j->res == DROP_OK)
            s->view = j->view; /* freed with the session if the client is gone */
        if (j->bulletins > 0)
            log_sess(LOGLVL_INFO, s->base.sid, "bulletins user=%s delivered=%d", j->b_login,
                     j->bulletins);
        else if (j->bulletins < 0)
            log_sess(LOGLVL_WARN, s->base.sid, "bulletins user=%s error=%s", j->b_login, j->b_err);
    }
    if (s->base.conn != NULL) {
        s->base.wait = SW_NONE;
        j->done(s, j->res, j->err);
        sess_resume(&s->base);
    } else {
        if (j->op == MAILBOX_COMMIT)
            log_sess(LOGLVL_INFO, s->base.sid, "update after the client left: %s",
                     j->res == DROP_OK ? "done" : j->err);
        session_release_mailbox(s);
    }
    free(j->path);
    free(j->index_dir);
    free(j->b_dir);
    free(j->b_from);
    free(j->b_domain);
    free(j->b_state);
    free(j->b_login);
    free(j->b_node);
    free(j);
    sess_release(&s->base);
}

/* mailbox_queue - start job j for s. */
static void
mailbox_queue(struct pop_session *s, struct mailbox_job *j)
{
    j->s = s;
    j->work.data = j;
    s->job = j;
    sess_hold(&s->base);
    sess_go_async(&s->base);
    s->d->srv.jobs++;
    if (uv_queue_work(s->d->srv.loop, &j->work, mailbox_work, mailbox_after) != 0) {
        /* cannot happen with a valid loop; answer as a temporary failure */
        j->res = DROP_TEMP;
        snprintf(j->err, sizeof j->err, "uv_queue_work failed");
        mailbox_after(&j->work, 0);
    }
}

/* mailbox_open - open the snapshot on the pool. */
void
mailbox_open(struct pop_session *s, mailbox_done_cb done)
{
    struct mailbox_job *j = xcalloc(1, sizeof *j);

    j->op = MAILBOX_OPEN;
    j->done = done;
    j->path = xstrdup(s->mailbox);
    j->index_dir = s->d->index_dir != NULL ? xstrdup(s->d->index_dir) : NULL;
    j->p.path = j->path;
    j->p.format = s->base.cf->mailbox_format;
    j->p.index_dir = j->index_dir;
    j->p.lock_timeout = s->base.cf->lock_timeout;
    if (s->base.cf->bulletin_path != NULL && s->base.cf->bulletin_path[0] != '\0') {
        const char *node = s->base.cf->lock_id != NULL && s->base.cf->lock_id[0] != '\0'
                               ? s->base.cf->lock_id
                               : s->d->srv.hostname;
        j->b.dir = j->b_dir = xstrdup(s->base.cf->bulletin_path);
        j->b.from = j->b_from =
            xstrdup(s->base.cf->bulletin_from != NULL ? s->base.cf->bulletin_from : "");
        j->b.main_domain = j->b_domain = xstrdup(s->base.cf->main_domain);
        j->b.hide_old = s->base.cf->hide_old_bulls;
        j->b.state_dir = j->b_state = xstrdup(s->d->bulletin_dir);
        j->b.login = j->b_login = xstrdup(s->login);
        j->b.mailbox = j->path;
        j->b.format = s->base.cf->mailbox_format;
        j->b.lock_timeout = s->base.cf->lock_timeout;
        j->b.node = j->b_node = xstrdup(node);
    }
    mailbox_queue(s, j);
}

/* mailbox_update - QUIT in TRANSACTION: UPDATE on the pool, then answer and close. */
void
mailbox_update(struct pop_session *s)
{
    struct mailbox_job *j = xcalloc(1, sizeof *j);

    sess_enter_state(&s->base, SS_UPDATE);
    j->op = MAILBOX_COMMIT;
    j->done = mailbox_update_done;
    j->view = s->view;
    j->del = s->del;
    j->seen = s->seen;
    mailbox_queue(s, j);
}
