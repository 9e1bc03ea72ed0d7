/*
 * recentpop - POP-before-SMTP checks of dsmtp's clients. See recentpop.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "popauth.h"
#include "recentpop.h"
#include "session.h"
#include "xmem.h"

struct recentpop {
    uv_work_t work;
    struct smtp_session *s; /* NULL once the session is gone: the job frees itself */
    struct conf *cf;        /* own reference, for the pool */
    uint64_t sid;
    char ip[64];
    time_t now;
    int result; /* popauth_recent's */
    bool pending;
    void (*done)(struct smtp_session *s);
};

/* recentpop_work - on the pool: read the file. */
static void
recentpop_work(uv_work_t *w)
{
    struct recentpop *r = w->data;

    r->result = popauth_recent(r->cf->work_path, r->ip, r->now, r->cf->forward_user_window);
}

/* recentpop_free_job - the job's memory (on the loop). */
static void
recentpop_free_job(struct recentpop *r)
{
    conf_unref(&r->cf);
    free(r);
}

/* recentpop_after - back on the loop: log, wake a waiting command. */
static void
recentpop_after(uv_work_t *w, int status)
{
    struct recentpop *r = w->data;
    void (*done)(struct smtp_session *);

    if (r->s == NULL) {
        recentpop_free_job(r);
        return;
    }
    r->pending = false;
    if (status != 0)
        r->result = 0;
    if (r->result < 0)
        log_sess(LOGLVL_WARN, r->sid, "recentpop ip=%s error=cannot-read-popauth", r->ip);
    else if (r->result > 0)
        log_sess(LOGLVL_INFO, r->sid, "recentpop ip=%s result=pop-login-within-window", r->ip);
    done = r->done;
    r->done = NULL;
    if (done != NULL)
        done(r->s);
}

void
recentpop_start(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    struct recentpop *r;

    if (!cf->forward_user || s->base.port != SMTPD_PORT_SMTP ||
        conf_ip_match(&cf->forward_from_ip, s->base.ip))
        return;
    r = xcalloc(1, sizeof(*r));
    r->work.data = r;
    r->s = s;
    r->cf = conf_ref(s->base.cf);
    r->sid = s->base.sid;
    snprintf(r->ip, sizeof(r->ip), "%s", s->base.ip);
    r->now = time(NULL);
    r->pending = true;
    s->recentpop = r;
    if (uv_queue_work(s->d->srv.loop, &r->work, recentpop_work, recentpop_after) != 0)
        r->pending = false; /* cannot happen: not allowed */
}

bool
recentpop_wait(struct smtp_session *s, void (*done)(struct smtp_session *s))
{
    if (s->recentpop == NULL || !s->recentpop->pending)
        return false;
    s->recentpop->done = done;
    return true;
}

bool
recentpop_allowed(const struct smtp_session *s)
{
    return s->recentpop != NULL && !s->recentpop->pending && s->recentpop->result > 0;
}

bool
recentpop_hide_asked(const struct smtp_session *s)
{
    const struct conf_list *l = &s->base.cf->hide_auth;

    if (s->recentpop == NULL)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i], "recentpop") == 0)
            return true;
    return false;
}

void
recentpop_free(struct smtp_session *s)
{
    struct recentpop *r = s->recentpop;

    if (r == NULL)
        return;
    s->recentpop = NULL;
    if (r->pending)
        r->s = NULL;
    else
        recentpop_free_job(r);
}
