/*
 * outq - outbound delivery: the files taken from the scans, their grouping into
 * transactions and destinations, the scheduling, the results written back to the queue
 * files. A destination's route and session are outq_dest.c's. See outq.h.
 *
 * A file taken from a scan becomes a struct outq_file (its remote recipients and their
 * results); its recipients are grouped by destination into struct outq_msg (one
 * transaction each) waiting on a struct outq_dest. A destination resolves its route
 * (MX, or the smarthost or a gateway, then addresses), opens one SMTP session and sends
 * its messages in turn. When every destination of a file is done, its results are written
 * on the pool. A smarthost or gateway with smarthost_auth first reads the password file on
 * the pool (struct outq_pass).
 */
#include "outq.h"
#include "outq_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bounce.h"
#include "deliver.h"
#include "dns.h"
#include "dsnparam.h"
#include "file.h"
#include "log.h"
#include "logq.h"
#include "nexthop.h"
#include "queue.h"
#include "smtp_parse.h"
#include "smtpc.h"
#include "tls.h"
#include "xmem.h"

/* outq_reply_set - fill a reply. */
void
outq_reply_set(struct smtpc_reply *r, int code, const char *status, const char *fmt, ...)
{
    va_list ap;

    r->code = code;
    snprintf(r->status, sizeof(r->status), "%s", status);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* outq_claim_find - the file is claimed (mu held). */
static bool
outq_claim_find(const struct outq *oq, const char *id)
{
    for (size_t i = 0; i < oq->nclaims; i++)
        if (strcmp(oq->claims[i], id) == 0)
            return true;
    return false;
}

/* outq_claimed - a scan asks. */
bool
outq_claimed(struct outq *oq, const char *id)
{
    bool found;

    uv_mutex_lock(&oq->mu);
    found = outq_claim_find(oq, id);
    uv_mutex_unlock(&oq->mu);
    return found;
}

/* outq_release - the file's results are written (loop). When a scan was turned away
 * for want of room and half the room is free again, a scan comes now rather than at the
 * next queue_retry. */
static void
outq_release(struct outq *oq, const char *id, size_t len)
{
    bool rescan = false;
    size_t max = (size_t)oq->d->srv.cf->queue_active_max;

    uv_mutex_lock(&oq->mu);
    for (size_t i = 0; i < oq->nclaims; i++)
        if (strcmp(oq->claims[i], id) == 0) {
            memmove(oq->claims[i], oq->claims[oq->nclaims - 1], sizeof(oq->claims[0]));
            oq->nclaims--;
            oq->held_bytes -= len;
            break;
        }
    if (oq->refused && !oq->stopping && oq->nclaims <= max / 2 &&
        oq->held_bytes <= OUTQ_HELD_BYTES / 2) {
        oq->refused = false;
        rescan = true;
    }
    uv_mutex_unlock(&oq->mu);
    if (rescan && oq->d->queue != NULL)
        queue_kick(oq->d->queue);
}

/* outq_tls_required_no - the header holds "TLS-Required: No" (RFC 8689 5; text in local
 * form, LF line ends; the value's case and surrounding white space do not matter). */
static bool
outq_tls_required_no(const char *text, size_t len)
{
    static const char name[] = "TLS-Required:";
    const char *p = text, *end = text + len;

    while (p < end && *p != '\n') {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
            const char *v = p + sizeof(name) - 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            return ve - v == 2 && strncasecmp(v, "No", 2) == 0;
        }
        p = eol + 1;
    }
    return false;
}

/* outq_take - a scan hands remote recipients over. */
bool
outq_take(struct outq *oq, const char *path, const struct qfile *q, const size_t *idx, size_t n)
{
    struct outq_file *f;

    uv_mutex_lock(&oq->mu);
    if (outq_claim_find(oq, q->id)) { /* a scan and outq_offer both came: one is enough */
        uv_mutex_unlock(&oq->mu);
        return false;
    }
    if (oq->stopping || oq->suspended || oq->nclaims >= oq->max ||
        (oq->nclaims > 0 && oq->held_bytes + q->text_len > OUTQ_HELD_BYTES)) {
        oq->refused = !oq->stopping && !oq->suspended;
        uv_mutex_unlock(&oq->mu);
        return false;
    }
    oq->held_bytes += q->text_len;
    if (oq->nclaims == oq->aclaims) {
        oq->aclaims = oq->aclaims ? oq->aclaims * 2 : 64;
        oq->claims = xrealloc(oq->claims, oq->aclaims * sizeof(oq->claims[0]));
    }
    snprintf(oq->claims[oq->nclaims++], sizeof(oq->claims[0]), "%s", q->id);
    uv_mutex_unlock(&oq->mu);

    f = xcalloc(1, sizeof(*f));
    f->oq = oq;
    snprintf(f->id, sizeof(f->id), "%s", q->id);
    f->path = xstrdup(path);
    f->sender = xstrdup(q->sender);
    f->arrival = q->arrival;
    f->text = xmalloc(q->text_len + 1);
    memcpy(f->text, q->text, q->text_len);
    f->text[q->text_len] = '\0';
    f->len = q->text_len;
    for (size_t i = 0; i < f->len && !f->eightbit; i++)
        f->eightbit = (unsigned char)f->text[i] > 127;
    f->n = n;
    f->addr = xcalloc(n, sizeof(*f->addr));
    f->res = xcalloc(n, sizeof(*f->res));
    f->relay = xcalloc(n, sizeof(*f->relay));
    f->dsn_on = xcalloc(n, sizeof(*f->dsn_on));
    f->ret = q->ret;
    f->envid = q->envid != NULL ? xstrdup(q->envid) : NULL;
    f->requiretls = (q->flags & QF_REQUIRETLS) != 0;
    f->tls_no = !f->requiretls && outq_tls_required_no(f->text, f->len); /* RFC 8689 4.3 */
    snprintf(f->verp, sizeof(f->verp), "%s", q->verp);
    f->notify = xcalloc(n, sizeof(*f->notify));
    f->orcpt = xcalloc(n, sizeof(*f->orcpt));
    f->xheader = xcalloc(n, sizeof(*f->xheader));
    for (size_t i = 0; i < n; i++) {
        const struct qfile_rcpt *r = &q->rcpt[idx[i]];
        f->addr[i] = xstrdup(r->addr);
        dsnparam_notify_format(r->notify, false, f->notify[i], sizeof(f->notify[i]));
        f->orcpt[i] = r->orcpt != NULL ? xstrdup(r->orcpt) : NULL;
        f->xheader[i] = r->xheader != NULL ? xstrdup(r->xheader) : NULL;
    }
    uv_mutex_lock(&oq->mu);
    f->next = oq->incoming;
    oq->incoming = f;
    if (!oq->stopping)
        uv_async_send(&oq->wake); /* a scan's end kicks anyway; outq_offer needs this */
    uv_mutex_unlock(&oq->mu);
    return true;
}

/* outq_offer - a queue file just written: when every due recipient is remote, the lot
 * goes to outq_take (taken, or left for the scan outq_release asks for). */
bool
outq_offer(struct outq *oq, const struct conf *cf, const char *path, const struct qfile *q)
{
    size_t *idx, n = 0;
    time_t now = time(NULL);
    bool remote = (q->flags & QF_HOLD) == 0;

    idx = xcalloc(q->nrcpt + 1, sizeof(*idx));
    for (size_t i = 0; i < q->nrcpt && remote; i++) {
        const struct qfile_rcpt *r = &q->rcpt[i];
        const char *at = strrchr(r->addr, '@');
        if (r->state != QR_PENDING || r->next_try > now)
            continue;
        remote = at != NULL && !conf_is_local_domain(cf, at + 1);
        idx[n++] = i;
    }
    if (remote && n > 0 && outq_take(oq, path, q, idx, n))
        log_debug("outq id=%s taken as written rcpts=%zu", q->id, n);
    free(idx);
    return remote && n > 0;
}

/* outq_file_free - everything of f. */
static void
outq_file_free(struct outq_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->addr[i]);
        free(f->relay[i]);
        free(f->orcpt[i]);
        free(f->xheader[i]);
    }
    free(f->addr);
    free(f->relay);
    free(f->dsn_on);
    free(f->envid);
    free(f->notify);
    free(f->orcpt);
    free(f->xheader);
    free(f->res);
    free(f->path);
    free(f->sender);
    free(f->text);
    if (f->cf != NULL)
        conf_unref(&f->cf);
    free(f);
}

/* outq_record_work - pool: apply the results to the queue file, report failures. */
static void
outq_record_work(uv_work_t *w)
{
    struct outq_file *f = w->data;
    struct bounce_rcpt *fail = xcalloc(f->n, sizeof(*fail)), *succ = xcalloc(f->n, sizeof(*succ));
    size_t nfail = 0, nsucc = 0;
    char(*mta)[256] = xcalloc(f->n, sizeof(*mta));
    struct qfile q;
    char err[200], eq[700];
    time_t now = time(NULL);

    memset(&q, 0, sizeof(q));
    if (qfile_read(f->path, &q, err, sizeof(err)) < 0) {
        log_error("outq id=%s: %s: results not written: %s", f->id, f->path, err);
        free(fail);
        free(succ);
        free(mta);
        qfile_free(&q);
        return;
    }
    for (size_t k = 0; k < f->n; k++) {
        const struct smtpc_reply *r = &f->res[k];
        struct qfile_rcpt *rc = NULL;
        const char *st;
        char line[SMTPC_TEXT_MAX + 40];
        for (size_t i = 0; i < q.nrcpt && rc == NULL; i++)
            if (q.rcpt[i].state == QR_PENDING && strcasecmp(q.rcpt[i].addr, f->addr[k]) == 0)
                rc = &q.rcpt[i];
        if (rc == NULL || r->code == 0)
            continue;
        snprintf(line, sizeof(line), "%d %s %s", r->code, r->status, r->text);
        rc->attempts++;
        free(rc->last_error);
        rc->last_error = xstrdup(line);
        /* Remote-MTA: the host name of "host[ip]:port" */
        snprintf(mta[k], sizeof(mta[k]), "%.*s", (int)strcspn(f->relay[k] ? f->relay[k] : "", "["),
                 f->relay[k] ? f->relay[k] : "");
        struct bounce_rcpt br = {rc->addr,   r->status, rc->last_error,           rc->attempts,
                                 rc->notify, rc->orcpt, mta[k][0] ? mta[k] : NULL};
        if (r->code / 100 == 2) {
            rc->state = QR_DONE;
            st = "sent";
            f->sent++;
            /* RFC 3461 6.2: NOTIFY went on to a server with DSN; else "relayed" is ours */
            if (!f->dsn_on[k] && dsnparam_wants(rc->notify, DSN_NOTIFY_SUCCESS))
                succ[nsucc++] = br;
        } else if (r->code / 100 == 5) {
            rc->state = QR_FAILED;
            fail[nfail++] = br;
            st = "bounced";
            f->bounced++;
        } else {
            rc->next_try = deliver_next_try(f->cf, now, rc->attempts);
            st = "deferred";
            f->deferred++;
        }
        log_info("outq id=%s to=<%s> relay=%s delay=%lds dsn=%s status=%s reply=%s", f->id,
                 rc->addr, f->relay[k] ? f->relay[k] : "none", (long)(now - q.arrival), r->status,
                 st, logq_text(eq, sizeof(eq), line, strlen(line), 600));
    }
    struct bounce_msg bm = {q.id,       q.sender, q.origin, q.arrival, q.text,
                            q.text_len, q.ret,    q.envid,  q.verp};
    if (nsucc > 0)
        bounce_success(f->cf, &bm, succ, nsucc, DSN_RELAYED); /* a failure is logged */
    if (nfail > 0) {
        if (bounce_send(f->cf, &bm, fail, nfail) < 0)
            for (size_t k = 0; k < nfail; k++)
                for (size_t i = 0; i < q.nrcpt; i++)
                    if (q.rcpt[i].addr == fail[k].addr) {
                        q.rcpt[i].state = QR_PENDING;
                        q.rcpt[i].next_try = now + f->cf->queue_retry;
                    }
    }
    free(fail);
    free(succ);
    free(mta);
    deliver_queue_settle(f->cf->spool_dir, &q, f->path, true);
    qfile_free(&q);
}

/* outq_record_done - loop: the file is the scans' again. */
static void
outq_record_done(uv_work_t *w, int status)
{
    struct outq_file *f = w->data;
    struct outq *oq = f->oq;

    outq_release(oq, f->id, f->len);
    oq->d->srv.jobs--;
    oq->d->stats.out_sent += (unsigned long long)f->sent;
    oq->d->stats.out_deferred += (unsigned long long)f->deferred;
    oq->d->stats.out_bounced += (unsigned long long)f->bounced;
    outq_file_free(f);
}

/* outq_file_dest_done - one destination finished with f. */
static void
outq_file_dest_done(struct outq_file *f)
{
    struct outq *oq = f->oq;

    if (--f->dests > 0)
        return;
    if (oq->stopping) { /* the recipients stay pending in the file */
        outq_release(oq, f->id, f->len);
        outq_file_free(f);
        return;
    }
    f->w.data = f;
    oq->d->srv.jobs++;
    if (uv_queue_work(oq->d->srv.loop, &f->w, outq_record_work, outq_record_done) < 0) {
        oq->d->srv.jobs--;
        outq_release(oq, f->id, f->len);
        outq_file_free(f);
    }
}

/* outq_msg_finish - the message's recipients have their results (r: the same for all
 * that have none yet, or NULL); dsn: the server that answered offered DSN. */
void
outq_msg_finish(struct outq_msg *m, const struct smtpc_reply *r, const char *relay, bool dsn)
{
    struct outq_file *f = m->f;

    for (size_t k = 0; k < m->n; k++) {
        size_t i = m->idx[k];
        if (r != NULL ? r->code == 0 : m->rc[k].reply.code == 0)
            continue;
        if (r != NULL)
            f->res[i] = *r;
        else
            smtpc_answer_reply(&m->rc[k].reply, &f->res[i]);
        free(f->relay[i]);
        f->relay[i] = relay != NULL && relay[0] ? xstrdup(relay) : NULL;
        f->dsn_on[i] = dsn;
    }
    smtpc_msg_clear(&m->m);
    free(m->idx);
    free(m->rc);
    free(m->vsender);
    free(m->head);
    free(m);
    outq_file_dest_done(f);
}

/* outq_start_dests - start waiting destinations while connections are free. */
void
outq_start_dests(struct outq *oq)
{
    for (struct outq_dest *t = oq->dests, *next; t != NULL; t = next) {
        next = t->next;
        if (oq->conns >= oq->d->srv.cf->smtp_out_max || oq->suspended)
            return;
        if (!t->running && t->msgs != NULL)
            outq_dest_start(t);
    }
}

/* outq_key - the destination of a recipient: its domain (by MX), or OUTQ_RELAY and the
 * spec of its gateway or of the smarthost (nexthop.h). */
static char *
outq_key(const struct conf *cf, const char *addr)
{
    const char *at = strrchr(addr, '@');
    const char *domain = at != NULL ? at + 1 : "";
    const char *spec = nexthop_route(cf, domain);

    return spec != NULL ? xasprintf("%s%s", OUTQ_RELAY, spec) : xstrdup(domain);
}

/* outq_add_file - group f's recipients by destination into messages. */
static void
outq_add_file(struct outq *oq, struct outq_file *f)
{
    const struct conf *cf = oq->d->srv.cf;
    bool *done = xcalloc(f->n, sizeof(*done));
    char **keys = xcalloc(f->n, sizeof(*keys));

    f->cf = conf_ref(oq->d->srv.cf);
    f->started = time(NULL);
    f->dests = 1; /* held while grouping */
    /* XVERP: each recipient its own sender, so its own transaction (as Postfix) */
    size_t max = f->verp[0] != '\0' ? 1 : (size_t)cf->smtp_out_rcpt_max;

    for (size_t i = 0; i < f->n; i++)
        keys[i] = outq_key(cf, f->addr[i]);
    for (size_t i = 0; i < f->n; i++) {
        const char *key = keys[i];
        struct outq_dest *t;
        struct outq_msg *m;
        if (done[i])
            continue;
        t = outq_dest_get(oq, key, f->tls_no);
        m = xcalloc(1, sizeof(*m));
        m->f = f;
        m->idx = xcalloc(f->n - i < max ? f->n - i : max, sizeof(*m->idx));
        m->rc = xcalloc(f->n - i < max ? f->n - i : max, sizeof(*m->rc));
        for (size_t j = i; j < f->n && m->n < max; j++) {
            if (done[j] || strcasecmp(key, keys[j]) != 0)
                continue;
            done[j] = true;
            m->idx[m->n] = j;
            m->rc[m->n].addr = f->addr[j];
            m->rc[m->n].notify = f->notify[j][0] ? f->notify[j] : NULL;
            m->rc[m->n].orcpt = f->orcpt[j];
            m->n++;
        }
        m->m.sender = f->sender;
        if (f->verp[0] != '\0') {
            char v[DELIVER_VERP_MAX];
            m->vsender = xstrdup(addr_verp(f->sender, m->rc[0].addr, f->verp, v, sizeof(v)));
            m->m.sender = m->vsender;
        }
        m->m.envid = f->envid;
        m->m.ret = dsnparam_ret_name(f->ret, false);
        m->m.eightbit = f->eightbit;
        m->m.requiretls = f->requiretls;
        /* a UTF-8 address needs SMTPUTF8 from the next hop (RFC 6531), as Postfix's
         * smtputf8_autodetect: without it the recipients fail 5.6.7 */
        m->m.smtputf8 = smtp_parse_is_8bit(f->sender);
        for (size_t k = 0; k < m->n && !m->m.smtputf8; k++)
            m->m.smtputf8 = smtp_parse_is_8bit(m->rc[k].addr);
        m->m.rcpt = m->rc;
        m->m.nrcpt = m->n;
        m->m.text = f->text;
        m->m.len = f->len;
        if (t->last != NULL)
            t->last->next = m;
        else
            t->msgs = m;
        t->last = m;
        t->nmsgs++;
        f->dests++;
    }
    for (size_t i = 0; i < f->n; i++)
        free(keys[i]);
    free(keys);
    free(done);
    outq_file_dest_done(f); /* the grouping's hold */
}

/* outq_kick - start what the scans gave. */
void
outq_kick(struct outq *oq)
{
    struct outq_file *f, *next;

    if (oq == NULL || oq->stopping)
        return;
    uv_mutex_lock(&oq->mu);
    f = oq->incoming;
    oq->incoming = NULL;
    oq->max = (size_t)oq->d->srv.cf->queue_active_max; /* after a reload */
    uv_mutex_unlock(&oq->mu);
    for (; f != NULL; f = next) {
        next = f->next;
        if (oq->suspended) { /* taken just before suspend: back to the queue as it is */
            outq_release(oq, f->id, f->len);
            outq_file_free(f);
            continue;
        }
        outq_add_file(oq, f);
    }
    outq_start_dests(oq);
}

/* outq_suspend - stop or restart taking work. */
void
outq_suspend(struct outq *oq, bool on)
{
    struct smtpc_reply none = {0};

    uv_mutex_lock(&oq->mu);
    oq->suspended = on;
    oq->refused = false;
    uv_mutex_unlock(&oq->mu);
    if (on) { /* destinations not started give their messages back */
        for (struct outq_dest *t = oq->dests, *next; t != NULL; t = next) {
            next = t->next;
            if (!t->running)
                outq_dest_all(t, &none);
        }
        return;
    }
    outq_dest_dead_clear(oq); /* resume: every destination is worth a try again */
    if (oq->d->queue != NULL)
        queue_kick(oq->d->queue);
}

/* outq_suspended - tellsmtp suspend is in force. */
bool
outq_suspended(struct outq *oq)
{
    return oq->suspended;
}

/* outq_show - each running destination, for showsend. */
void
outq_show(struct outq *oq, void (*fn)(void *arg, const struct outq_view *v), void *arg)
{
    time_t now = time(NULL);

    for (const struct outq_dest *t = oq->dests; t != NULL; t = t->next) {
        struct outq_view v = {0};
        size_t waiting = t->nmsgs;
        if (!t->running)
            continue;
        v.dest = t->spec != NULL ? t->spec : t->key;
        v.relay = t->c != NULL ? t->relay : NULL;
        v.state = t->q != NULL ? "resolving" : t->c == NULL ? "connecting" : "sending";
        v.tls = t->tls;
        v.age = (long)(now - t->since);
        v.bytes = t->bytes;
        v.messages = t->carried;
        v.waiting = waiting;
        fn(arg, &v);
    }
}

/* outq_wake - loop: outq_take was called off a scan. */
static void
outq_wake(uv_async_t *a)
{
    outq_kick(a->data);
}

/* outq_tlsrpt_due - loop: tls_rpt_period ended (each UTC midnight): the reports of the
 * days before today when tls_rpt is on (a period shorter than a day, a test aid: of
 * everything counted). */
static void
outq_tlsrpt_due(void *arg)
{
    struct outq *oq = arg;
    struct conf *cf = oq->d->srv.cf;
    char today[11];
    time_t now = time(NULL);
    struct tm tm;
    size_t n;

    if (!cf->tls_rpt || oq->stopping)
        return;
    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    n = tlsrpt_send(oq->rpt, cf, oq, cf->tls_rpt_period >= 86400 ? today : NULL);
    log_info("tls-rpt: the period's reports started for %zu domains", n);
}

/* outq_new - the delivery side. */
struct outq *
outq_new(struct smtpd *d)
{
    struct outq *oq = xcalloc(1, sizeof(*oq));
    const struct conf *cf = d->srv.cf;
    char err[300];

    oq->d = d;
    oq->max = (size_t)cf->queue_active_max;
    uv_mutex_init(&oq->mu);
    uv_async_init(d->srv.loop, &oq->wake, outq_wake);
    oq->wake.data = oq;
    oq->tls = tls_client_ctx(err, sizeof(err));
    if (oq->tls == NULL)
        log_warn("outbound delivery: no STARTTLS: %s", err);
    if (oq->tls != NULL && dane_ctx_init(oq->tls) < 0) { /* DANE sessions then fail 4.7.5 */
        log_error("outbound delivery: OpenSSL cannot enable DANE on the client context");
        ERR_clear_error();
    }
    /* tls_policy verify/secure: a CA file trusted besides the system's store (at start) */
    if (oq->tls != NULL && cf->smtp_tls_ca_file[0] != '\0' &&
        SSL_CTX_load_verify_locations(oq->tls, cf->smtp_tls_ca_file, NULL) != 1) {
        log_error("outbound delivery: smtp_tls_ca_file %s: cannot load it (no certificate "
                  "verifies by it)",
                  cf->smtp_tls_ca_file);
        ERR_clear_error();
    }
    if (oq->tls != NULL && cf->mta_sts_ca[0] != '\0' &&
        SSL_CTX_load_verify_locations(oq->tls, cf->mta_sts_ca, NULL) != 1)
        log_warn("outbound delivery: mta_sts_ca %s: cannot load it", cf->mta_sts_ca);
    if (d->dns != NULL) {
        char *path = xasprintf("%s/mta-sts.cache", cf->spool_dir);
        oq->sts = mtasts_new(d->srv.loop, d->dns, &d->srv.jobs, (int)cf->mta_sts_port,
                             cf->mta_sts_ca, OUTQ_STS_FETCH_MS, path);
        free(path);
        path = xasprintf("%s/tls-rpt.state", cf->spool_dir);
        oq->rpt =
            tlsrpt_new(d->srv.loop, d->dns, &d->srv.jobs, path, cf->mta_sts_ca, OUTQ_STS_FETCH_MS);
        free(path);
        tlsrpt_schedule(oq->rpt, cf->tls_rpt_period, outq_tlsrpt_due, oq);
    }
    return oq;
}

/* outq_stop - end every destination; the struct stays until outq_free. */
void
outq_stop(struct outq *oq)
{
    if (oq == NULL || oq->stopping)
        return;
    tlsrpt_stop(oq->rpt);
    uv_mutex_lock(&oq->mu);
    oq->stopping = true; /* no uv_async_send after this */
    uv_close((uv_handle_t *)&oq->wake, NULL);
    uv_mutex_unlock(&oq->mu);
    while (oq->dests != NULL) {
        struct outq_dest *t = oq->dests;
        struct smtpc_reply r;
        outq_reply_set(&r, 0, "4.3.2", "stopping");
        outq_dest_all(t, &r);
    }
}

/* outq_free - after the loop. */
void
outq_free(struct outq **oqp)
{
    struct outq *oq = *oqp;

    if (oq == NULL)
        return;
    *oqp = NULL;
    while (oq->incoming != NULL) {
        struct outq_file *f = oq->incoming;
        oq->incoming = f->next;
        outq_file_free(f);
    }
    outq_dest_dead_clear(oq);
    if (oq->tls != NULL)
        SSL_CTX_free(oq->tls);
    mtasts_free(&oq->sts);
    tlsrpt_free(&oq->rpt);
    free(oq->claims);
    uv_mutex_destroy(&oq->mu);
    free(oq);
}

/* outq_tlsrpt_send - see outq.h. */
size_t
outq_tlsrpt_send(struct outq *oq)
{
    return oq->rpt != NULL ? tlsrpt_send(oq->rpt, oq->d->srv.cf, oq, NULL) : 0;
}
