/*
 * queue - retry runner for locally undeliverable recipients. See queue.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "bounce.h"
#include "deliver.h"
#include "dotfwd.h"
#include "ldaq.h"
#include "dsnparam.h"
#include "file.h"
#include "log.h"
#include "logq.h"
#include "outq.h"
#include "qfile.h"
#include "queue.h"
#include "xheader.h"
#include "xmem.h"

struct queue {
    struct smtpd *d;
    uv_timer_t timer;
    uv_work_t work;
    bool running, again, stopping, timer_closed;
    long files;                 /* the scan's count of queue files */
    struct queue_counts counts; /* the scan's deliveries, for stats (queue_scanned) */
    time_t oldest;              /* and the oldest arrival among them (by name) */
    struct conf *cf;
    struct auth_db *db;
    struct ldaq *ldaq; /* the program deliveries' runner */
    /* one job of the control socket (queue_job), run while no scan runs */
    uv_work_t jobw;
    uv_work_t *job;
    uv_work_cb job_work;
    uv_after_work_cb job_done;
};

/* queue_quarantine - move an unreadable file out of the way into spool_dir/corrupt. */
void
queue_quarantine(const struct conf *cf, const char *path, const char *name)
{
    char *dir = xasprintf("%s/corrupt", cf->spool_dir);
    char *to = xasprintf("%s/%s", dir, name);

    if (file_mkdirs(dir, 0700) < 0 || rename(path, to) < 0)
        log_errore("queue: cannot move %s to %s", path, dir);
    else
        log_error("queue: moved unreadable %s to %s", path, dir);
    free(dir);
    free(to);
}

/* queue_forward - a queued address that forwards now (a forward added since it was
 * queued), or a role address whose sysadmin is now of another domain, is replaced by its
 * destinations, which are tried in the same pass. An address that is among its own
 * destinations is final: its other destinations had their copies when the message came
 * in. true when replaced. */
static bool
queue_forward(struct qfile *q, size_t i, const struct deliver_route *dr)
{
    char list[600] = "", eq[700];
    size_t o = 0;
    bool role = dr->fwd == ROUTE_NONE && dr->n == 1 && dr->dest[0].relay, lda = false;

    if (dr->fwd != ROUTE_FORWARDED && !role)
        return false;
    for (size_t k = 0; k < dr->n; k++) {
        lda |= dr->dest[k].lda != NULL;
        if (dr->dest[k].lda == NULL && strcasecmp(dr->dest[k].addr, q->rcpt[i].addr) == 0)
            return false;
    }
    /* an alias with programs or files keeps its place for them (queue_lda); its addresses
     * are added the first time only (a retry: they had their copies) */
    if (lda && q->rcpt[i].attempts > 0)
        return false;
    for (size_t k = 0; k < dr->n; k++) {
        bool known = false;
        if (dr->dest[k].lda != NULL)
            continue;
        for (size_t j = 0; j < q->nrcpt && !known; j++)
            known = strcasecmp(q->rcpt[j].addr, dr->dest[k].addr) == 0;
        if (!known) { /* the DSN parameters go along; ORCPT: the address forwarded */
            char x[DSNPARAM_ORCPT_MAX + 1];
            qfile_add_rcpt(q, dr->dest[k].addr);
            q->rcpt[q->nrcpt - 1].notify = q->rcpt[i].notify;
            if (q->rcpt[i].orcpt != NULL)
                q->rcpt[q->nrcpt - 1].orcpt = xstrdup(q->rcpt[i].orcpt);
            else if (dsnparam_xtext_encode(q->rcpt[i].addr, x, sizeof(x) - 7) == 0)
                q->rcpt[q->nrcpt - 1].orcpt = xasprintf("rfc822;%s", x);
        }
        if (o < sizeof(list)) {
            int n = snprintf(list + o, sizeof(list) - o, "%s<%s>", k ? "," : "", dr->dest[k].addr);
            o += n > 0 ? (size_t)n : 0;
        }
    }
    struct qfile_rcpt *r = &q->rcpt[i];
    if (lda) {
        if (o > 0)
            log_info("queue id=%s to=<%s> result=forwarded forward=%s", q->id, r->addr,
                     logq_text(eq, sizeof(eq), list, strlen(list), 500));
        return false;
    }
    r->state = QR_DONE;
    free(r->last_error);
    r->last_error = xasprintf("forwarded to %s", list);
    log_info("queue id=%s to=<%s> result=forwarded forward=%s", q->id, r->addr,
             logq_text(eq, sizeof(eq), list, strlen(list), 500));
    return true;
}

/* queue_local - recipient i into its mailbox d, its forward file first when the address
 * itself leads there (dotfwd.h). */
static enum drop_result
queue_local(const struct conf *cf, struct qfile *q, size_t i, const struct deliver_dest *d,
            const char **status, char *err, size_t errlen)
{
    const struct qfile_rcpt *r = &q->rcpt[i];
    struct deliver_dsn dsn = {q->ret, q->envid, (q->flags & QF_REQUIRETLS) != 0, NULL};
    enum drop_result res = DROP_OK;
    struct dotfwd f;
    bool keep = true;
    int rc = 0;

    if (strcasecmp(d->addr, r->addr) == 0 && !deliver_is_list_spool(cf, d->mailbox)) {
        rc = dotfwd_read(cf, r->addr, d->mailbox, &f, err, errlen);
        if (rc < 0)
            return DROP_TEMP;
        if (rc > 0) {
            struct dotfwd_msg m = {q->id,       r->addr,    q->sender, q->origin, q->text,
                                   q->text_len, q->arrival, r->notify, r->orcpt,  &dsn};
            res = dotfwd_deliver(cf, &f, &m, NULL, &keep, status, err, errlen);
            dotfwd_free(&f);
        }
    }
    if (res != DROP_OK || !keep)
        return res;
    char v[DELIVER_VERP_MAX]; /* XVERP: the Return-Path names the recipient */
    size_t hl;
    char *head = r->xheader != NULL ? xheader_decode(r->xheader, &hl) : NULL;
    res = deliver_one(cf, d->mailbox, addr_verp(q->sender, r->addr, q->verp, v, sizeof(v)), head,
                      q->text, q->text_len, err, errlen);
    free(head);
    return res;
}

/* queue_lda - recipient i, an alias with programs or files (dr): each run again (and its
 * own mailbox, if it keeps one: at least once); the worst result. */
static enum drop_result
queue_lda(const struct conf *cf, struct qfile *q, size_t i, const struct deliver_route *dr,
          const char **status, char *err, size_t errlen)
{
    const struct qfile_rcpt *r = &q->rcpt[i];
    struct deliver_dsn dsn = {q->ret, q->envid, (q->flags & QF_REQUIRETLS) != 0, NULL};
    struct dotfwd_msg m = {q->id,       r->addr,    q->sender, q->origin, q->text,
                           q->text_len, q->arrival, r->notify, r->orcpt,  &dsn};
    enum drop_result res = DROP_OK;

    for (size_t k = 0; k < dr->n; k++) {
        const struct deliver_dest *d = &dr->dest[k];
        enum drop_result one;
        const char *st = "5.2.0";
        char e[200] = "";
        if (strcasecmp(d->addr, r->addr) != 0 || (d->lda == NULL && d->mailbox == NULL))
            continue;
        one = d->lda != NULL ? dotfwd_alias_lda(cf, d->lda, &m, &st, e, sizeof(e))
                             : queue_local(cf, q, i, d, &st, e, sizeof(e));
        if ((one == DROP_TEMP && res != DROP_TEMP) || (one == DROP_PERM && res == DROP_OK)) {
            res = one;
            *status = st;
            snprintf(err, errlen, "%s", e);
        }
    }
    return res;
}

/* queue_program - recipient i's alias (dr) or forward file names a program (ldaq.h). */
static bool
queue_program(const struct conf *cf, const struct qfile *q, size_t i,
              const struct deliver_route *dr)
{
    const char *addr = q->rcpt[i].addr;

    for (size_t k = 0; k < dr->n; k++) {
        const struct deliver_dest *d = &dr->dest[k];
        struct dotfwd f;
        char err[200];
        bool prog;
        if (strcasecmp(d->addr, addr) != 0)
            continue;
        if (d->lda != NULL && d->lda[0] == '|')
            return true;
        if (d->mailbox == NULL || deliver_is_list_spool(cf, d->mailbox) ||
            dotfwd_read(cf, addr, d->mailbox, &f, err, sizeof(err)) <= 0)
            continue;
        prog = dotfwd_has_program(&f);
        dotfwd_free(&f);
        if (prog)
            return true;
    }
    return false;
}

/* queue_try_rcpt - one delivery attempt for pending recipient i (forwards first). A
 * recipient that fails for good gets its RFC 3463 status in *status. With move not NULL,
 * a recipient that would run a program is left alone and *move set (ldaq.h runs it). */
static void
queue_try_rcpt(const struct conf *cf, const struct auth_db *db, struct qfile *q, size_t i,
               time_t now, const char **status, bool *remote, bool *move)
{
    char err[200] = "", eq[300];
    struct deliver_route dr;
    struct addr a;
    enum drop_result res = DROP_TEMP;
    struct qfile_rcpt *r;

    memset(&dr, 0, sizeof(dr));
    *status = "5.2.0";
    if (addr_parse_mailbox(q->rcpt[i].addr, cf->main_domain, &a, err, sizeof(err)) < 0) {
        *status = "5.1.3";
        res = DROP_PERM;
    } else {
        switch (deliver_route(cf, db, &a, &dr)) {
        case DV_OK: {
            if (move != NULL && queue_program(cf, q, i, &dr)) {
                *move = true;
                deliver_route_free(&dr);
                return;
            }
            if (queue_forward(q, i, &dr)) {
                deliver_route_free(&dr);
                return;
            }
            const struct deliver_dest *d = &dr.dest[0];
            bool lda = false;
            for (size_t k = 0; k < dr.n; k++) { /* the address itself */
                lda |= dr.dest[k].lda != NULL;
                if (strcasecmp(dr.dest[k].addr, q->rcpt[i].addr) == 0)
                    d = &dr.dest[k];
            }
            if (lda)
                res = queue_lda(cf, q, i, &dr, status, err, sizeof(err));
            else if (d->mailbox != NULL)
                res = queue_local(cf, q, i, d, status, err, sizeof(err));
            else if (d->relay && remote != NULL &&
                     strcasecmp(d->addr, q->rcpt[i].addr) == 0) { /* itself remote */
                *remote = true;
                deliver_route_free(&dr);
                return;
            } else
                snprintf(err, sizeof(err), "%s",
                         d->relay ? DELIVER_NOT_LOCAL : DELIVER_NO_ROLE_MAILBOX);
            break;
        }
        case DV_UNKNOWN:
            if (dr.fwd == ROUTE_NONE)
                snprintf(err, sizeof(err), "user unknown");
            else
                snprintf(err, sizeof(err), "user unknown: %.150s", dr.why);
            *status = "5.1.1";
            res = DROP_PERM;
            break;
        case DV_REMOTE:
            if (remote != NULL) { /* outbound delivery's: the file is not changed for it */
                *remote = true;
                deliver_route_free(&dr);
                return;
            }
            snprintf(err, sizeof(err), "%s", DELIVER_NOT_LOCAL);
            break;
        case DV_LOOP:
            snprintf(err, sizeof(err), "%s: %.150s", route_status_text(dr.fwd), dr.why);
            *status = "5.4.6";
            res = DROP_PERM;
            break;
        }
    }
    deliver_route_free(&dr);
    r = &q->rcpt[i];
    r->attempts++;
    free(r->last_error);
    r->last_error = err[0] ? xstrdup(err) : NULL;
    switch (res) {
    case DROP_OK:
        r->state = QR_DONE;
        *status = "2.0.0"; /* delivered into the mailbox */
        log_info("queue id=%s to=<%s> result=delivered attempts=%d", q->id, r->addr, r->attempts);
        break;
    case DROP_TEMP:
        r->next_try = deliver_next_try(cf, now, r->attempts);
        log_info("queue id=%s to=<%s> result=deferred attempts=%d next=%lds error=%s", q->id,
                 r->addr, r->attempts, (long)(r->next_try - now),
                 logq_text(eq, sizeof(eq), err, strlen(err), 200));
        break;
    case DROP_PERM:
        r->state = QR_FAILED;
        log_warn("queue id=%s to=<%s> result=failed error=%s", q->id, r->addr,
                 logq_text(eq, sizeof(eq), err, strlen(err), 200));
        break;
    }
}

/* queue_fail - recipient i failed for good in this pass: into the report. */
static void
queue_fail(struct bounce_rcpt **f, size_t *n, const struct qfile_rcpt *r, const char *status)
{
    *f = xrealloc(*f, (*n + 1) * sizeof(**f));
    (*f)[(*n)++] = (struct bounce_rcpt){
        r->addr,  status, r->last_error ? r->last_error : "not delivered", r->attempts, r->notify,
        r->orcpt, NULL};
}

/* queue_report - report this pass's failures; when the report cannot be queued, the
 * recipients stay pending (tried again later) so that nothing is dropped. Returns how
 * many went back to pending. */
static int
queue_report(const struct conf *cf, struct qfile *q, const struct bounce_rcpt *f, size_t n,
             time_t now)
{
    struct bounce_msg bm = {q->id,       q->sender, q->origin, q->arrival, q->text,
                            q->text_len, q->ret,    q->envid,  q->verp};
    int back = 0;

    if (n == 0 || bounce_send(cf, &bm, f, n) >= 0)
        return 0;
    for (size_t i = 0; i < q->nrcpt; i++)
        for (size_t k = 0; k < n; k++)
            if (q->rcpt[i].addr == f[k].addr) {
                q->rcpt[i].state = QR_PENDING;
                q->rcpt[i].next_try = now + cf->queue_retry;
                back++;
            }
    return back;
}

/* queue_warn - queue_warn has passed since arrival and recipients are still pending:
 * one delay notice to the sender (RFC 3464 Action: delayed), then QF_WARNED. true when
 * the flag was set. */
static bool
queue_warn(const struct conf *cf, struct qfile *q, time_t now)
{
    struct bounce_rcpt *r;
    char(*st)[16];
    size_t n = 0;
    int rc = 0;

    if ((q->flags & QF_WARNED) || cf->queue_warn <= 0 || now - q->arrival < cf->queue_warn)
        return false;
    r = xcalloc(q->nrcpt + 1, sizeof(*r));
    st = xcalloc(q->nrcpt + 1, sizeof(*st));
    for (size_t i = 0; i < q->nrcpt; i++) {
        const struct qfile_rcpt *x = &q->rcpt[i];
        const char *e = x->last_error ? x->last_error : "";
        if (x->state != QR_PENDING)
            continue;
        /* the enhanced status of a last error "451 4.4.3 text", else 4.0.0 */
        if (sscanf(e, "%*3d %15[0-9.]", st[n]) != 1 || st[n][0] != '4')
            snprintf(st[n], sizeof(st[n]), "4.0.0");
        r[n] = (struct bounce_rcpt){
            x->addr, st[n], e[0] ? e : "not delivered yet", x->attempts, x->notify, x->orcpt, NULL};
        n++;
    }
    if (n > 0) {
        struct bounce_msg bm = {q->id,       q->sender, q->origin, q->arrival, q->text,
                                q->text_len, q->ret,    q->envid,  q->verp};
        rc = bounce_delay(cf, &bm, r, n, q->arrival + cf->queue_lifetime);
    }
    free(st);
    free(r);
    if (rc < 0 || n == 0)
        return false;      /* tried again at the next scan (or nothing pending) */
    q->flags |= QF_WARNED; /* sent, or not due for this message (a bounce, an auto-reply) */
    return true;
}

/* queue_move - recipients idx of q into a program-delivery file of their own (ldaq.h),
 * then done here; 0, or -1 (logged) when it could not be written (they stay). */
static int
queue_move(const struct conf *cf, struct qfile *q, const size_t *idx, size_t n)
{
    struct deliver_qrcpt *r = xcalloc(n, sizeof(*r));
    struct deliver_dsn dsn = {q->ret, q->envid, (q->flags & QF_REQUIRETLS) != 0, q->verp};
    char name[160];
    int rc;

    snprintf(name, sizeof(name), "%s.%zu%s", q->id, idx[0], LDAQ_SUFFIX);
    for (size_t k = 0; k < n; k++) {
        const struct qfile_rcpt *qr = &q->rcpt[idx[k]];
        r[k] = (struct deliver_qrcpt){qr->addr,  qr->attempts, qr->last_error, qr->notify,
                                      qr->orcpt, true,         qr->xheader};
    }
    rc = deliver_queue_write(cf, name, q->sender, q->origin, &dsn, q->arrival, r, n, q->text,
                             q->text_len, NULL);
    free(r);
    if (rc < 0) {
        log_errore("queue id=%s: cannot write %s for program delivery", q->id, name);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        struct qfile_rcpt *qr = &q->rcpt[idx[k]];
        qr->state = QR_DONE;
        free(qr->last_error);
        qr->last_error = xasprintf("moved to %s for program delivery", name);
        log_info("queue id=%s to=<%s> result=moved to=%s", q->id, qr->addr, name);
    }
    return 0;
}

/* queue_process_file - retry what is due in one file; report what failed; rewrite or
 * remove it. */
int
queue_process_file(const struct conf *cf, const struct auth_db *db, const char *path, time_t now,
                   struct outq *oq, struct queue_counts *n)
{
    struct qfile q;
    char err[200];
    bool changed = false, expired;
    int pending = 0;
    struct bounce_rcpt *fail = NULL, *succ = NULL;
    size_t nfail = 0, nsucc = 0, *remote = NULL, nremote = 0, *moved = NULL, nmoved = 0;
    const char *base = strrchr(path, '/');
    bool programs = ldaq_is_name(base != NULL ? base + 1 : path);

    memset(&q, 0, sizeof(q));
    if (qfile_read(path, &q, err, sizeof(err)) < 0) {
        log_error("queue: %s: %s", path, err);
        qfile_free(&q);
        return -1;
    }
    expired = now - q.arrival > cf->queue_lifetime;
    for (size_t i = 0; i < q.nrcpt; i++) {
        struct qfile_rcpt *r = &q.rcpt[i];
        const char *status;
        if (r->state != QR_PENDING)
            continue;
        if (expired) {
            r->state = QR_FAILED;
            changed = true;
            const char *why = r->last_error ? r->last_error : "not delivered";
            char eq[300];
            log_warn("queue id=%s to=<%s> result=given-up age=%lds error=%s", q.id, r->addr,
                     (long)(now - q.arrival), logq_text(eq, sizeof(eq), why, strlen(why), 200));
            queue_fail(&fail, &nfail, r, "4.4.7");
            if (n != NULL)
                n->failed++;
            continue;
        }
        if ((q.flags & QF_HOLD) || r->next_try > now) {
            pending++;
            continue;
        }
        bool is_remote = false, move = false;
        queue_try_rcpt(cf, db, &q, i, now, &status, oq != NULL ? &is_remote : NULL,
                       programs ? NULL : &move);
        /* r is stale: forwards may have added recipients */
        if (move) {
            moved = xrealloc(moved, (nmoved + 1) * sizeof(*moved));
            moved[nmoved++] = i;
            continue;
        }
        if (is_remote) {
            remote = xrealloc(remote, (nremote + 1) * sizeof(*remote));
            remote[nremote++] = i;
            pending++;
            continue;
        }
        changed = true;
        if (q.rcpt[i].state == QR_PENDING)
            pending++;
        else if (q.rcpt[i].state == QR_FAILED)
            queue_fail(&fail, &nfail, &q.rcpt[i], status);
        if (n != NULL && q.rcpt[i].state == QR_FAILED)
            n->failed++;
        if (q.rcpt[i].state != QR_DONE || status[0] != '2')
            continue; /* status "2.0.0": written into the mailbox (not forwarded) */
        if (n != NULL)
            n->delivered++;
        if (dsnparam_wants(q.rcpt[i].notify, DSN_NOTIFY_SUCCESS))
            queue_fail(&succ, &nsucc, &q.rcpt[i], status); /* delivered: NOTIFY=SUCCESS */
    }
    if (nmoved > 0) {
        if (queue_move(cf, &q, moved, nmoved) == 0) {
            changed = true;
            if (n != NULL)
                n->moved += nmoved;
        } else
            pending += (int)nmoved;
    }
    free(moved);
    pending += queue_report(cf, &q, fail, nfail, now);
    free(fail);
    if (nsucc > 0) {
        struct bounce_msg bm = {q.id,       q.sender, q.origin, q.arrival, q.text,
                                q.text_len, q.ret,    q.envid,  q.verp};
        for (size_t k = 0; k < nsucc; k++)
            succ[k].diag = "delivered to the mailbox";
        bounce_success(cf, &bm, succ, nsucc, DSN_DELIVERED);
        free(succ);
    }
    if (queue_warn(cf, &q, now))
        changed = true;
    /* local results are written first: outbound delivery reads the file again */
    deliver_queue_settle(cf->spool_dir, &q, path, changed);
    if (nremote > 0)
        outq_take(oq, path, &q, remote, nremote); /* not taken: the next scan offers again */
    free(remote);
    qfile_free(&q);
    return pending;
}

/* queue_scan - pool: every file of spool_dir/queue. */
static void
queue_scan(uv_work_t *w)
{
    struct queue *q = w->data;
    char *dir = xasprintf("%s/queue", q->cf->spool_dir);
    DIR *dp = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);

    q->files = 0;
    q->oldest = 0;
    if (dp == NULL) {
        log_errore("queue: cannot open %s", dir);
        free(dir);
        return;
    }
    while ((de = readdir(dp)) != NULL) {
        char *path;
        struct stat st;
        long long t;
        if (de->d_name[0] == '.')
            continue;
        /* a queue id starts with its arrival time (file_unique_name) */
        t = strtoll(de->d_name, NULL, 10);
        q->files++;
        if (t > 0 && (q->oldest == 0 || t < q->oldest))
            q->oldest = (time_t)t;
        path = xasprintf("%s/%s", dir, de->d_name);
        if (ldaq_is_name(de->d_name)) {
            free(path); /* the program deliveries' runner's (ldaq.h) */
            continue;
        }
        if (q->d->outq != NULL && outq_claimed(q->d->outq, de->d_name)) {
            free(path); /* outbound delivery works on it */
            continue;
        }
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            queue_process_file(q->cf, q->db, path, now, q->d->outq, &q->counts) < 0)
            queue_quarantine(q->cf, path, de->d_name);
        free(path);
    }
    closedir(dp);
    free(dir);
}

/* queue_maybe_free - free once the timer is closed and no scan runs. */
static void
queue_maybe_free(struct queue *q)
{
    if (q->stopping && q->timer_closed && !q->running)
        free(q);
}

static void queue_start_scan(struct queue *q);
static void queue_job_go(struct queue *q);

/* queue_scanned - loop: the scan ended. */
static void
queue_scanned(uv_work_t *w, int status)
{
    struct queue *q = w->data;

    q->running = false;
    q->d->stats.queue_messages = q->files;
    q->d->stats.queue_oldest = q->oldest;
    q->d->stats.queue_delivered += q->counts.delivered;
    q->d->stats.queue_failed += q->counts.failed;
    bool moved = q->counts.moved > 0;
    q->counts = (struct queue_counts){0};
    conf_unref(&q->cf);
    if (q->db != NULL)
        auth_db_unref(&q->db);
    if (!q->stopping)
        outq_kick(q->d->outq); /* what the scan handed to outbound delivery */
    if (!q->stopping && moved)
        ldaq_kick(q->ldaq); /* what it handed to program delivery */
    if (q->job != NULL) {
        queue_job_go(q); /* a waiting control job first; the next scan after it */
        return;
    }
    if (q->again && !q->stopping) {
        q->again = false;
        queue_start_scan(q);
        return;
    }
    queue_maybe_free(q);
}

/* queue_start_scan - one scan on the pool with the current snapshots. */
static void
queue_start_scan(struct queue *q)
{
    if (q->stopping)
        return;
    if (q->running) {
        q->again = true;
        return;
    }
    q->cf = conf_ref(q->d->srv.cf);
    q->db = q->d->srv.db != NULL ? auth_db_ref(q->d->srv.db) : NULL;
    q->work.data = q;
    q->running = true;
    if (uv_queue_work(q->d->srv.loop, &q->work, queue_scan, queue_scanned) < 0) {
        q->running = false;
        conf_unref(&q->cf);
        if (q->db != NULL)
            auth_db_unref(&q->db);
    }
}

/* queue_timer_cb - time for the periodic scan. */
static void
queue_timer_cb(uv_timer_t *t)
{
    queue_start_scan(t->data);
}

/* queue_new - the runner, first scan now. */
struct queue *
queue_new(struct smtpd *d)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    uint64_t every = (uint64_t)d->srv.cf->queue_retry * 1000;

    q->d = d;
    uv_timer_init(d->srv.loop, &q->timer);
    q->timer.data = q;
    uv_timer_start(&q->timer, queue_timer_cb, 0, every);
    q->ldaq = ldaq_new(d);
    return q;
}

/* queue_kick - a scan soon, and one of the program deliveries. */
void
queue_kick(struct queue *q)
{
    queue_start_scan(q);
    ldaq_kick(q->ldaq);
}

/* queue_kick_scan - a scan soon. */
void
queue_kick_scan(struct queue *q)
{
    queue_start_scan(q);
}

/* queue_timer_closed - the timer handle is gone. */
static void
queue_timer_closed(uv_handle_t *h)
{
    struct queue *q = h->data;

    q->timer_closed = true;
    queue_maybe_free(q);
}

/* queue_job_work - the pool: the control job. */
static void
queue_job_work(uv_work_t *w)
{
    struct queue *q = w->data;

    q->job_work(q->job);
}

/* queue_job_after - the loop: hand the result over, then scans may run again. */
static void
queue_job_after(uv_work_t *w, int status)
{
    struct queue *q = w->data;
    uv_work_t *job = q->job;

    q->running = false;
    q->job = NULL;
    q->job_done(job, status);
    if (q->again && !q->stopping) {
        q->again = false;
        queue_start_scan(q);
        return;
    }
    queue_maybe_free(q);
}

/* queue_job_go - start the waiting control job. */
static void
queue_job_go(struct queue *q)
{
    q->running = true;
    q->jobw.data = q;
    if (uv_queue_work(q->d->srv.loop, &q->jobw, queue_job_work, queue_job_after) < 0) {
        uv_work_t *job = q->job;
        q->running = false;
        q->job = NULL;
        q->job_done(job, UV_ECANCELED);
        queue_maybe_free(q);
    }
}

/* queue_job - run work on the pool while no scan runs. */
int
queue_job(struct queue *q, uv_work_t *w, uv_work_cb work, uv_after_work_cb done)
{
    if (q == NULL || q->stopping || q->job != NULL)
        return -1;
    q->job = w;
    q->job_work = work;
    q->job_done = done;
    if (!q->running)
        queue_job_go(q);
    return 0;
}

/* queue_stop - stop scanning. */
void
queue_stop(struct queue **qp)
{
    struct queue *q = *qp;

    if (q == NULL)
        return;
    *qp = NULL;
    if (q->job != NULL && !q->running) { /* cannot happen: a job waits only for a scan */
        uv_work_t *job = q->job;
        q->job = NULL;
        q->job_done(job, UV_ECANCELED);
    }
    q->stopping = true;
    ldaq_stop(&q->ldaq);
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}
