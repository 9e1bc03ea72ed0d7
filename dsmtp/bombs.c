/*
 * bombs - mail-bomb counters, holding suspected bombs in bomb_dir, and the control
 * commands that list, release and delete them. See bombs.h.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bombs.h"
#include "ctl.h"
#include "deliver.h"
#include "file.h"
#include "log.h"
#include "lru.h"
#include "qfile.h"
#include "queue.h"
#include "xmem.h"

#define BOMBS_LIST_MAX 10000 /* messages listed by tellsmtp bombs */

struct bombs {
    struct lru *counts; /* "sender recipient" -> struct bombs_count */
};

struct bombs_count {
    long n;
    uint64_t last; /* when bomb_dec was last applied (ms) */
};

enum bombs_op { BOP_HOLD, BOP_LIST, BOP_RELEASE, BOP_DELETE };

struct bombs_job {
    uv_work_t w;
    enum bombs_op op;
    struct smtpd *d;
    struct smtp_session *s; /* BOP_HOLD: NULL once the session is gone */
    struct ctl_req *r;      /* the others */
    uint64_t sid;
    char *dir, *spool;
    struct qfile q;  /* BOP_HOLD: the message */
    const char *why; /* BOP_HOLD: "bomb", or "quarantine" (a content filter asked) */
    char id[96];
    char err[300];
    char *out; /* BOP_LIST: the lines */
    size_t outlen;
    int count;
};

struct bombs *
bombs_new(size_t entries)
{
    struct bombs *b = xcalloc(1, sizeof(*b));

    b->counts = lru_new(entries, sizeof(struct bombs_count));
    return b;
}

void
bombs_free(struct bombs **bp)
{
    struct bombs *b = *bp;

    if (b == NULL)
        return;
    *bp = NULL;
    lru_free(&b->counts);
    free(b);
}

char *
bombs_dir(const struct conf *cf)
{
    if (cf->bomb_dir != NULL && cf->bomb_dir[0] != '\0')
        return xstrdup(cf->bomb_dir);
    return xasprintf("%s/bomb", cf->spool_dir);
}

/* bombs_count_one - raise the pair's counter (after the decay due since it was last
 * seen); the new count. */
static long
bombs_count_one(struct bombs *b, const struct conf *cf, const char *sender, const char *rcpt,
                uint64_t now)
{
    uint64_t ival = (uint64_t)cf->bomb_interval * 1000;
    char key[1200];
    struct bombs_count *c;
    bool fresh;

    snprintf(key, sizeof(key), "%s %s", sender, rcpt);
    for (char *p = key; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    c = lru_get(b->counts, key, now);
    if (c == NULL) {
        c = lru_put(b->counts, key, now + 1, now, &fresh);
        c->last = now;
    } else if (cf->bomb_dec > 0 && now - c->last >= ival) {
        uint64_t periods = (now - c->last) / ival;
        long down =
            periods > (uint64_t)(c->n / cf->bomb_dec + 1) ? c->n : (long)periods * cf->bomb_dec;
        c->n = c->n > down ? c->n - down : 0;
        c->last += periods * ival;
    }
    c->n++;
    /* kept until the decay would bring it to 0 (forever without bomb_dec: LRU only) */
    uint64_t keep = cf->bomb_dec > 0 ? ival * (uint64_t)((c->n + cf->bomb_dec - 1) / cf->bomb_dec)
                                     : UINT64_MAX - now;
    lru_put(b->counts, key, c->last + keep > now ? c->last + keep : now + ival, now, NULL);
    return c->n;
}

bool
bombs_check(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    struct smtp_tx *tx = &s->tx;
    uint64_t now = uv_now(s->d->srv.loop);
    bool bomb = false;

    if (cf->bomb_max <= 0 || s->d->bombs == NULL ||
        conf_ip_match(&cf->bomb_exception_ip, s->base.ip) ||
        conf_addr_rule(&cf->bomb_exception_from, tx->sender) != NULL)
        return false;
    for (size_t i = 0; i < tx->nrcpt; i++) {
        const char *to = tx->rcpt[i].addr;
        if (conf_addr_rule(&cf->bomb_exception_to, to) != NULL)
            continue;
        long n = bombs_count_one(s->d->bombs, cf, tx->sender, to, now);
        if (n > cf->bomb_max) {
            if (!bomb)
                log_sess(LOGLVL_WARN, s->base.sid,
                         "bomb-suspect id=%s from=<%s> to=<%s> count=%ld bomb_max=%ld", tx->id,
                         tx->sender, to, n, cf->bomb_max);
            bomb = true;
        }
    }
    return bomb;
}

/* bombs_job_free - a job and what it holds. */
static void
bombs_job_free(struct bombs_job *j)
{
    qfile_free(&j->q);
    free(j->dir);
    free(j->spool);
    free(j->out);
    free(j);
}

/* bombs_out - one line of a listing. */
static void __attribute__((format(printf, 2, 3)))
bombs_out(struct bombs_job *j, const char *fmt, ...)
{
    char line[1500];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    j->out = xrealloc(j->out, j->outlen + (size_t)n + 2);
    memcpy(j->out + j->outlen, line, (size_t)n);
    j->outlen += (size_t)n;
    j->out[j->outlen++] = '\n';
    j->out[j->outlen] = '\0';
}

/* bombs_name_ok - a held message's file. */
static bool
bombs_name_ok(const char *name)
{
    return name[0] != '.' && qfile_id_valid(name);
}

/* bombs_list - every held message (pool). */
static void
bombs_list(struct bombs_job *j)
{
    size_t n;
    char **names = file_dir_names(j->dir, bombs_name_ok, &n);
    time_t now = time(NULL);

    if (names == NULL) {
        if (errno != ENOENT)
            snprintf(j->err, sizeof(j->err), "cannot open %s: %s", j->dir, strerror(errno));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct qfile q;
        char err[200], *path = xasprintf("%s/%s", j->dir, names[i]);
        memset(&q, 0, sizeof(q));
        if (j->count < BOMBS_LIST_MAX) {
            if (qfile_read(path, &q, err, sizeof(err)) < 0) {
                bombs_out(j, "%s unreadable: %s", names[i], err);
            } else {
                bombs_out(j, "%s size=%zu age=%lds from=<%s> rcpts=%zu origin=%s", q.id, q.text_len,
                          (long)(now - q.arrival), q.sender, q.nrcpt, q.origin);
                for (size_t k = 0; k < q.nrcpt; k++)
                    bombs_out(j, "  to=<%s>", q.rcpt[k].addr);
            }
        }
        j->count++;
        qfile_free(&q);
        free(path);
        free(names[i]);
    }
    if (j->count > BOMBS_LIST_MAX)
        bombs_out(j, "... and %d more", j->count - BOMBS_LIST_MAX);
    free(names);
}

/* bombs_release - a held message into the queue (pool): written there (fsynced) before
 * it leaves bomb_dir, so a crash in between keeps it in both, never in neither. */
static void
bombs_release(struct bombs_job *j)
{
    char err[200], *path = xasprintf("%s/%s", j->dir, j->id);

    if (qfile_read(path, &j->q, err, sizeof(err)) < 0) {
        if (errno == ENOENT || access(path, F_OK) < 0)
            snprintf(j->err, sizeof(j->err), "no held message %s", j->id);
        else
            snprintf(j->err, sizeof(j->err), "%.64s: %.200s", j->id, err);
    } else {
        j->q.flags &= ~QF_HOLD;
        for (size_t k = 0; k < j->q.nrcpt; k++)
            j->q.rcpt[k].next_try = 0;
        if (deliver_queue_save(j->spool, &j->q) < 0)
            snprintf(j->err, sizeof(j->err), "cannot write %s into the queue: %s", j->id,
                     strerror(errno));
        else if (unlink(path) < 0)
            snprintf(j->err, sizeof(j->err), "queued, but cannot remove %s: %s", path,
                     strerror(errno));
        else
            file_fsync_dir(path);
        j->count = (int)j->q.nrcpt;
    }
    free(path);
}

/* bombs_delete - drop a held message (pool). */
static void
bombs_delete(struct bombs_job *j)
{
    char *path = xasprintf("%s/%s", j->dir, j->id);

    if (unlink(path) < 0) {
        if (errno == ENOENT)
            snprintf(j->err, sizeof(j->err), "no held message %s", j->id);
        else
            snprintf(j->err, sizeof(j->err), "cannot remove %s: %s", path, strerror(errno));
    } else {
        file_fsync_dir(path);
    }
    free(path);
}

/* bombs_work - the pool. */
static void
bombs_work(uv_work_t *w)
{
    struct bombs_job *j = (struct bombs_job *)w;

    switch (j->op) {
    case BOP_HOLD:
        if (file_mkdirs(j->dir, 0700) < 0 || qfile_write(j->dir, j->dir, &j->q, 0600) < 0)
            snprintf(j->err, sizeof(j->err), "cannot write into %s: %s", j->dir, strerror(errno));
        break;
    case BOP_LIST:
        bombs_list(j);
        break;
    case BOP_RELEASE:
        bombs_release(j);
        break;
    case BOP_DELETE:
        bombs_delete(j);
        break;
    }
}

/* bombs_hold_done - back on the loop: the session's reply. */
static void
bombs_hold_done(struct bombs_job *j, int status)
{
    struct smtp_session *s = j->s;

    if (status < 0 && j->err[0] == '\0')
        snprintf(j->err, sizeof(j->err), "cancelled");
    if (j->err[0] != '\0')
        log_sess(LOGLVL_ERROR, j->sid, "bomb-hold-failed id=%s why=%s", j->q.id, j->err);
    else
        log_sess(LOGLVL_WARN, j->sid, "held id=%s reason=%s dir=%s rcpts=%zu size=%zu", j->q.id,
                 j->why, j->dir, j->q.nrcpt, j->q.text_len);
    if (s == NULL)
        return;
    s->bomb_job = NULL;
    if (j->err[0] != '\0') {
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
    } else {
        s->nmsgs++;
        s->base.errors = 0;
        s->d->stats.msgs_in++;
        s->d->stats.bytes_in += s->tx.rx.wire;
        s->d->stats.rcpts_in += s->tx.naccepted;
        session_reply(s, 250, "2.0.0", "Ok: queued as %s", j->q.id);
    }
    session_tx_reset(s);
    sess_resume(&s->base);
}

/* bombs_done - the loop side of every job. */
static void
bombs_done(uv_work_t *w, int status)
{
    struct bombs_job *j = (struct bombs_job *)w;
    struct ctl_req *r = j->r;

    if (j->op == BOP_HOLD) {
        bombs_hold_done(j, status);
        bombs_job_free(j);
        return;
    }
    for (char *p = j->out, *nl; p != NULL && *p != '\0'; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = '\0';
        ctl_line(r, "%s", p);
    }
    if (status < 0)
        ctl_err(r, "cancelled: dsmtp is stopping");
    else if (j->err[0] != '\0')
        ctl_err(r, "%s", j->err);
    else if (j->op == BOP_LIST)
        ctl_ok(r, "%d held message%s in %s", j->count, j->count == 1 ? "" : "s", j->dir);
    else if (j->op == BOP_RELEASE) {
        log_info("bomb id=%s released into the queue by the control socket", j->id);
        if (j->d->queue != NULL)
            queue_kick(j->d->queue);
        ctl_ok(r, "%s released into the queue (%d recipient%s)", j->id, j->count,
               j->count == 1 ? "" : "s");
    } else {
        log_info("bomb id=%s deleted by the control socket", j->id);
        ctl_ok(r, "%s deleted", j->id);
    }
    bombs_job_free(j);
}

/* bombs_start - queue a job; false (job freed) if the pool refused it. */
static bool
bombs_start(struct bombs_job *j)
{
    if (uv_queue_work(j->d->srv.loop, &j->w, bombs_work, bombs_done) == 0)
        return true;
    bombs_job_free(j);
    return false;
}

void
bombs_hold(struct smtp_session *s, char *text, size_t len, const char *why)
{
    struct bombs_job *j = xcalloc(1, sizeof(*j));
    struct smtp_tx *tx = &s->tx;

    j->op = BOP_HOLD;
    j->why = why;
    j->d = s->d;
    j->s = s;
    j->sid = s->base.sid;
    j->dir = bombs_dir(s->base.cf);
    snprintf(j->q.id, sizeof(j->q.id), "%s", tx->id);
    j->q.arrival = time(NULL);
    j->q.sender = xstrdup(tx->sender);
    j->q.origin = xasprintf("smtp %s sid=%016" PRIx64, s->base.ip, s->base.sid);
    j->q.ret = tx->params.ret;
    j->q.envid = tx->params.envid[0] ? xstrdup(tx->params.envid) : NULL;
    if (tx->params.requiretls) /* kept through the hold and the release */
        j->q.flags |= QF_REQUIRETLS;
    if (tx->params.xverp)
        snprintf(j->q.verp, sizeof(j->q.verp), "%s", tx->params.verp);
    for (size_t i = 0; i < tx->nrcpt; i++) {
        qfile_add_rcpt(&j->q, tx->rcpt[i].addr);
        j->q.rcpt[i].notify = tx->rcpt[i].notify;
        j->q.rcpt[i].orcpt = tx->rcpt[i].orcpt ? xstrdup(tx->rcpt[i].orcpt) : NULL;
        if (tx->rcpt[i].mailbox == NULL)
            j->q.rcpt[i].last_error =
                xstrdup(tx->rcpt[i].relay ? DELIVER_NOT_LOCAL : DELIVER_NO_ROLE_MAILBOX);
    }
    j->q.text = text;
    j->q.text_len = len;
    s->bomb_job = j;
    sess_go_async(&s->base);
    if (!bombs_start(j)) { /* cannot happen */
        s->bomb_job = NULL;
        session_reply(s, 452, "4.3.1", "Insufficient system storage");
        session_tx_reset(s);
        sess_resume(&s->base);
    }
}

void
bombs_cancel(struct smtp_session *s)
{
    if (s->bomb_job != NULL) {
        s->bomb_job->s = NULL;
        s->bomb_job = NULL;
    }
}

/* bombs_ctl - start a control job. */
static void
bombs_ctl(struct ctl_req *r, void *arg, enum bombs_op op, const char *id)
{
    struct smtpd *d = smtpd_of(arg);
    struct bombs_job *j;

    if (id != NULL && !qfile_id_valid(id)) {
        ctl_err(r, "not a message id: %.64s", id);
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->op = op;
    j->d = d;
    j->r = r;
    j->dir = bombs_dir(d->srv.cf);
    j->spool = xstrdup(d->srv.cf->spool_dir);
    snprintf(j->id, sizeof(j->id), "%s", id ? id : "");
    if (!bombs_start(j))
        ctl_err(r, "cannot start the job");
}

void
bombs_ctl_list(struct ctl_req *r, int argc, char **argv, void *arg)
{
    bombs_ctl(r, arg, BOP_LIST, NULL);
}

void
bombs_ctl_release(struct ctl_req *r, int argc, char **argv, void *arg)
{
    bombs_ctl(r, arg, BOP_RELEASE, argv[1]);
}

void
bombs_ctl_delete(struct ctl_req *r, int argc, char **argv, void *arg)
{
    bombs_ctl(r, arg, BOP_DELETE, argv[1]);
}
