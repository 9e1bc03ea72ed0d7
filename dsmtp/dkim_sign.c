/*
 * dkim_sign - DKIM signatures on the mail of dsmtp's users. See dkim_sign.h.
 */
#include "dkim_sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "dkim.h"
#include "log.h"
#include "recentpop.h"
#include "session.h"
#include "xmem.h"

struct dkim_job {
    uv_work_t w;
    struct smtp_session *s; /* NULL once the session is gone */
    struct smtpd *d;
    struct conf *cf; /* a reference: the keys live in it */
    uint64_t sid;
    char id[40];
    char *text;
    size_t len;
    unsigned char bh[DKIM_HASH_LEN];
    char domain[256];
    time_t now;
    char *sig;       /* the fields made, or NULL */
    uint64_t cpu_ns; /* the pool thread's CPU time for the signature */
    char err[200];
    void (*done)(struct smtp_session *s, char *text, size_t len);
};

void
dkim_sign_begin(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;

    if (dkim_keys_count(cf->dkim_sign) == 0 || s->tx.dkim != NULL)
        return;
    if (s->auth_user == NULL && !conf_ip_match(&cf->forward_from_ip, s->base.ip) &&
        !recentpop_allowed(s))
        return; /* mail from outside is never signed */
    s->tx.dkim = xmalloc(sizeof(*s->tx.dkim));
    dkim_body_init(s->tx.dkim, true);
    s->tx.rx.dkim = s->tx.dkim;
}

void
dkim_sign_tx_end(struct smtp_session *s)
{
    if (s->tx.dkim == NULL)
        return;
    dkim_body_free(s->tx.dkim);
    free(s->tx.dkim);
    s->tx.dkim = NULL;
    s->tx.rx.dkim = NULL;
}

/* dkim_sign_prepend - sig before *text. */
static void
dkim_sign_prepend(const char *sig, char **text, size_t *len)
{
    size_t n = strlen(sig);
    char *t = xmalloc(n + *len + 1);

    memcpy(t, sig, n);
    memcpy(t + n, *text, *len);
    free(*text);
    *text = t;
    *len += n;
}

static void
dkim_sign_work(uv_work_t *w)
{
    struct dkim_job *j = w->data;
    struct timespec a, b;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    j->sig = dkim_sign(j->cf->dkim_sign, j->domain, j->text, j->len, j->bh, j->now, j->err,
                       sizeof(j->err));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    j->cpu_ns =
        (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec;
}

static void
dkim_sign_after(uv_work_t *w, int status)
{
    struct dkim_job *j = w->data;
    struct smtp_session *s = j->s;

    j->d->srv.jobs--;
    if (j->sig == NULL)
        log_sess(LOGLVL_WARN, j->sid, "dkim id=%s domain=%s result=unsigned why=\"%s\"", j->id,
                 j->domain, status < 0 ? "cancelled" : j->err);
    else {
        log_sess(LOGLVL_INFO, j->sid, "dkim id=%s domain=%s result=signed", j->id, j->domain);
        j->d->stats.dkim_signed++;
        j->d->stats.dkim_sign_ns += j->cpu_ns;
    }
    if (s != NULL) {
        s->dkim_job = NULL;
        if (j->sig != NULL)
            dkim_sign_prepend(j->sig, &j->text, &j->len);
        j->done(s, j->text, j->len);
        j->text = NULL;
    }
    free(j->text);
    free(j->sig);
    conf_unref(&j->cf);
    free(j);
}

bool
dkim_sign_session(struct smtp_session *s, char *text, size_t len,
                  void (*done)(struct smtp_session *s, char *text, size_t len))
{
    struct dkim_job *j;
    char dom[256];

    if (s->tx.dkim == NULL)
        return false;
    if (!dkim_from_domain(text, len, dom, sizeof(dom)) ||
        !dkim_keys_has(s->base.cf->dkim_sign, dom)) {
        dkim_sign_tx_end(s);
        return false;
    }
    j = xcalloc(1, sizeof(*j));
    if (s->milter != NULL) { /* the filters may have changed the body: hash the final one */
        dkim_body_free(s->tx.dkim);
        dkim_body_init(s->tx.dkim, true);
        dkim_body_feed(s->tx.dkim, text, len);
    }
    dkim_body_final(s->tx.dkim, j->bh);
    dkim_sign_tx_end(s);
    j->s = s;
    j->d = s->d;
    j->cf = conf_ref(s->base.cf);
    j->sid = s->base.sid;
    snprintf(j->id, sizeof(j->id), "%s", s->tx.id);
    snprintf(j->domain, sizeof(j->domain), "%s", dom);
    j->text = text;
    j->len = len;
    j->now = time(NULL);
    j->done = done;
    j->w.data = j;
    s->dkim_job = j;
    s->d->srv.jobs++;
    sess_go_async(&s->base);
    if (uv_queue_work(s->d->srv.loop, &j->w, dkim_sign_work, dkim_sign_after) != 0) {
        dkim_sign_work(&j->w); /* the pool refused (cannot happen): sign here */
        dkim_sign_after(&j->w, 0);
    }
    return true;
}

void
dkim_sign_cancel(struct smtp_session *s)
{
    if (s->dkim_job != NULL)
        s->dkim_job->s = NULL;
    s->dkim_job = NULL;
    dkim_sign_tx_end(s);
}

int
dkim_sign_text(const struct conf *cf, char **text, size_t *len, char *dom, size_t dlen, char *err,
               size_t elen)
{
    struct dkim_body b;
    unsigned char bh[DKIM_HASH_LEN];
    char *sig;

    dom[0] = '\0';
    if (dkim_keys_count(cf->dkim_sign) == 0 || !dkim_from_domain(*text, *len, dom, dlen) ||
        !dkim_keys_has(cf->dkim_sign, dom)) {
        dom[0] = '\0';
        return 0;
    }
    dkim_body_init(&b, true);
    dkim_body_feed(&b, *text, *len);
    dkim_body_final(&b, bh);
    sig = dkim_sign(cf->dkim_sign, dom, *text, *len, bh, time(NULL), err, elen);
    if (sig == NULL)
        return -1;
    dkim_sign_prepend(sig, text, len);
    free(sig);
    return 0;
}
