/*
 * outq - outbound delivery: destinations, routes, SMTP client sessions, results written
 * back to the queue files. See outq.h.
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

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

#define OUTQ_HELD_BYTES (64L << 20) /* message text held at once (one more may pass) */
#define OUTQ_REPLY_MS 300000        /* RFC 5321 4.5.3.2: 5 minutes for a reply */
#define OUTQ_DATA_MS 600000         /* 10 minutes after the final dot */
#define OUTQ_DNS_TRIES 2
#define OUTQ_PASS_MAX 4096  /* the password file read at most */
#define OUTQ_RELAY "relay " /* a destination key's prefix: a smarthost or gateway spec */

struct outq_file {
    struct outq_file *next;
    struct outq *oq;
    struct conf *cf;
    char id[96];
    char *path;
    char *sender;
    time_t arrival;
    char *text;
    size_t len;
    bool eightbit;
    size_t n;
    char **addr;             /* the remote recipients taken */
    struct smtpc_reply *res; /* their results (code 0: none) */
    char **relay;            /* who answered each */
    bool *dsn_on;            /* ... and whether it offered DSN (NOTIFY went on) */
    enum dsn_ret ret;        /* DSN: the message's RET and ENVID, */
    char *envid;
    char (*notify)[DSNPARAM_NOTIFY_TEXT]; /* each recipient's NOTIFY ("" none) and ORCPT */
    char **orcpt;
    time_t started;
    int dests;                   /* destinations still to finish */
    int sent, deferred, bounced; /* the results written (for the counters) */
    uv_work_t w;
};

struct outq_msg {
    struct outq_msg *next;
    struct outq_file *f;
    size_t *idx; /* into f->addr */
    size_t n;
    struct smtpc_rcpt *rc;
    struct smtpc_msg m;
};

struct outq_pass;

struct outq_dest {
    struct outq_dest *next;
    struct outq *oq;
    char *key;            /* the domain (by MX), or OUTQ_RELAY then the spec */
    const char *spec;     /* a smarthost or gateway spec (in key), or NULL: by MX */
    bool require;         /* smarthost_tls require: never in plaintext */
    char *user, *pass;    /* smarthost_auth, the password read (zeroed when freed) */
    struct outq_pass *pj; /* the password file being read */
    struct outq_msg *msgs, *last;
    bool running;
    char **hosts;
    size_t nhosts, hi;
    bool mx; /* hosts came from MX (or are to) */
    int port;
    char **addrs;
    size_t naddrs, ai;
    char host[256]; /* the host being tried */
    bool plain;     /* the retry without STARTTLS */
    struct dns_query *q;
    struct smtpc *c;
    bool answered;          /* some address gave a session */
    bool dsn;               /* the session's server offered DSN */
    struct smtpc_reply err; /* why the last try failed */
    char relay[300];
    time_t since;             /* started (for showsend) */
    unsigned long long bytes; /* message text sent over the session */
    int carried;              /* transactions the session has carried */
    char tls[128];            /* its TLS, "" for none */
};

/* A password file read on the pool for a destination (which may end meanwhile: t NULL). */
struct outq_pass {
    struct outq *oq;
    struct outq_dest *t;
    char *path;
    char *pass;
    char err[200];
    uv_work_t w;
};

struct outq_dead {
    struct outq_dead *next;
    char *key;
    time_t until;
    struct smtpc_reply why;
};

struct outq {
    struct smtpd *d;
    uv_mutex_t mu;
    struct outq_file *incoming; /* taken, not started (mu) */
    char (*claims)[96];         /* ids of the files held (mu) */
    size_t nclaims, aclaims;
    struct outq_dest *dests;
    struct outq_dead *dead;
    struct dns *dns;
    SSL_CTX *tls;
    long conns;
    size_t max;        /* queue_active_max, for the scans (mu) */
    size_t held_bytes; /* text of the files held (mu) */
    bool refused;      /* a scan was turned away for want of room (mu) */
    bool suspended;    /* tellsmtp suspend: nothing new starts (mu) */
    bool stopping;
};

static void outq_dest_next_host(struct outq_dest *t);
static void outq_dest_next_addr(struct outq_dest *t);
static void outq_start_dests(struct outq *oq);
static void outq_dest_send(struct outq_dest *t);

/* outq_reply_set - fill a reply. */
static void outq_reply_set(struct smtpc_reply *r, int code, const char *status, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
static void
outq_reply_set(struct smtpc_reply *r, int code, const char *status, const char *fmt, ...)
{
    va_list ap;

    r->code = code;
    snprintf(r->status, sizeof(r->status), "%s", status);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* outq_claimed - a scan asks. */
bool
outq_claimed(struct outq *oq, const char *id)
{
    bool found = false;

    uv_mutex_lock(&oq->mu);
    for (size_t i = 0; i < oq->nclaims && !found; i++)
        found = strcmp(oq->claims[i], id) == 0;
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

/* outq_take - a scan hands remote recipients over. */
bool
outq_take(struct outq *oq, const char *path, const struct qfile *q, const size_t *idx, size_t n)
{
    struct outq_file *f;

    uv_mutex_lock(&oq->mu);
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
    f->notify = xcalloc(n, sizeof(*f->notify));
    f->orcpt = xcalloc(n, sizeof(*f->orcpt));
    for (size_t i = 0; i < n; i++) {
        const struct qfile_rcpt *r = &q->rcpt[idx[i]];
        f->addr[i] = xstrdup(r->addr);
        dsnparam_notify_format(r->notify, false, f->notify[i], sizeof(f->notify[i]));
        f->orcpt[i] = r->orcpt != NULL ? xstrdup(r->orcpt) : NULL;
    }
    uv_mutex_lock(&oq->mu);
    f->next = oq->incoming;
    oq->incoming = f;
    uv_mutex_unlock(&oq->mu);
    return true;
}

/* outq_file_free - everything of f. */
static void
outq_file_free(struct outq_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->addr[i]);
        free(f->relay[i]);
        free(f->orcpt[i]);
    }
    free(f->addr);
    free(f->relay);
    free(f->dsn_on);
    free(f->envid);
    free(f->notify);
    free(f->orcpt);
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
    struct bounce_msg bm = {q.id,   q.sender,   q.origin, q.arrival,
                            q.text, q.text_len, q.ret,    q.envid};
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
static void
outq_msg_finish(struct outq_msg *m, const struct smtpc_reply *r, const char *relay, bool dsn)
{
    struct outq_file *f = m->f;

    for (size_t k = 0; k < m->n; k++) {
        size_t i = m->idx[k];
        const struct smtpc_reply *x = r != NULL ? r : &m->rc[k].reply;
        if (x->code == 0)
            continue;
        f->res[i] = *x;
        free(f->relay[i]);
        f->relay[i] = relay != NULL && relay[0] ? xstrdup(relay) : NULL;
        f->dsn_on[i] = dsn;
    }
    free(m->idx);
    free(m->rc);
    free(m);
    outq_file_dest_done(f);
}

/* outq_dest_done - the destination is done: unlink, free, start others. */
static void
outq_dest_done(struct outq_dest *t)
{
    struct outq *oq = t->oq;

    for (struct outq_dest **pp = &oq->dests; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (t->q != NULL)
        dns_cancel(t->q);
    if (t->pj != NULL)
        t->pj->t = NULL; /* the read ends on its own */
    if (t->c != NULL) {
        smtpc_close(t->c);
        oq->conns--;
    }
    if (t->pass != NULL) {
        explicit_bzero(t->pass, strlen(t->pass));
        free(t->pass);
    }
    free(t->user);
    for (size_t i = 0; i < t->nhosts; i++)
        free(t->hosts[i]);
    for (size_t i = 0; i < t->naddrs; i++)
        free(t->addrs[i]);
    free(t->hosts);
    free(t->addrs);
    free(t->key);
    free(t);
    if (!oq->stopping)
        outq_start_dests(oq);
}

/* outq_dest_all - every waiting message gets r; the destination ends. */
static void
outq_dest_all(struct outq_dest *t, const struct smtpc_reply *r)
{
    struct outq_msg *m;

    while ((m = t->msgs) != NULL) {
        t->msgs = m->next;
        outq_msg_finish(m, r, t->relay, false);
    }
    t->last = NULL;
    outq_dest_done(t);
}

/* outq_dead_find - the destination is marked dead now; its reason. */
static const struct smtpc_reply *
outq_dead_find(struct outq *oq, const char *key, time_t now)
{
    for (struct outq_dead **pp = &oq->dead, *x; (x = *pp) != NULL;) {
        if (x->until <= now) {
            *pp = x->next;
            free(x->key);
            free(x);
            continue;
        }
        if (strcasecmp(x->key, key) == 0)
            return &x->why;
        pp = &x->next;
    }
    return NULL;
}

/* outq_dead_mark - no address of the destination answered: dead for queue_retry. */
static void
outq_dead_mark(struct outq *oq, const char *key, const struct smtpc_reply *why)
{
    struct outq_dead *x;

    if (outq_dead_find(oq, key, time(NULL)) != NULL)
        return; /* another session to it found it first */
    x = xcalloc(1, sizeof(*x));

    x->key = xstrdup(key);
    x->until = time(NULL) + oq->d->srv.cf->queue_retry;
    x->why = *why;
    x->next = oq->dead;
    oq->dead = x;
}

/* outq_send_done - a transaction ended. */
static void
outq_send_done(struct smtpc *c, void *arg, struct smtpc_msg *sm, bool broken)
{
    struct outq_msg *m = arg;
    struct outq_dest *t = NULL;

    for (t = m->f->oq->dests; t != NULL && t->c != c; t = t->next)
        ;
    outq_msg_finish(m, NULL, t != NULL ? t->relay : NULL, t != NULL && t->dsn);
    if (t == NULL)
        return;
    if (broken) {
        struct smtpc_reply r;
        outq_reply_set(&r, 451, "4.4.2", "%s: connection lost before this message", t->relay);
        outq_dest_all(t, &r);
        return;
    }
    outq_dest_send(t);
}

/* outq_dest_send - the next message over the open session, or the end. */
static void
outq_dest_send(struct outq_dest *t)
{
    struct outq_msg *m = t->msgs;
    struct smtpc_reply none = {0};

    if (m == NULL) {
        outq_dest_done(t);
        return;
    }
    if (t->oq->suspended) { /* the rest waits in the queue, untouched */
        outq_dest_all(t, &none);
        return;
    }
    if (t->carried++ > 0)
        t->oq->d->stats.out_reused++;
    t->bytes += m->m.len;
    t->msgs = m->next;
    if (t->msgs == NULL)
        t->last = NULL;
    if (smtpc_send(t->c, &m->m, outq_send_done, m) < 0) {
        struct smtpc_reply r;
        outq_reply_set(&r, 451, "4.4.2", "%s: session not usable", t->relay);
        outq_msg_finish(m, &r, t->relay, false);
        outq_dest_all(t, &r);
    }
}

/* outq_ready - the session is up, or failed. */
static void
outq_ready(struct smtpc *c, void *arg, const struct smtpc_info *info)
{
    struct outq_dest *t = arg;
    struct outq *oq = t->oq;

    if (info->reply.code / 100 == 2) {
        t->answered = true;
        t->dsn = info->dsn;
        oq->d->stats.out_conns++;
        oq->d->stats.out_tls += info->tls;
        snprintf(t->tls, sizeof(t->tls), "%s", info->tls ? info->tls_desc : "");
        if (info->tls)
            log_debug("outq %s: TLS %s%s", t->relay, info->tls_desc,
                      info->tls_verified ? " verified" : "");
        outq_dest_send(t);
        return;
    }
    t->err = info->reply;
    if (info->reply.code / 100 == 5) { /* a server refusing the session: retried later, */
        t->err.code = 451;             /* its own reply kept in the text */
        t->err.status[0] = '4';
        snprintf(t->err.text, sizeof(t->err.text), "%.200s: %.20s: %d %.15s %.250s", t->relay,
                 info->stage, info->reply.code, info->reply.status, info->reply.text);
    } else {
        snprintf(t->err.text, sizeof(t->err.text), "%.200s: %.20s: %.250s", t->relay, info->stage,
                 info->reply.text);
    }
    smtpc_close(c);
    t->c = NULL;
    oq->conns--;
    if (strcmp(info->stage, "connect") != 0)
        t->answered = true;
    if (strcmp(info->stage, "starttls") == 0 && !t->plain && !t->require) {
        t->plain = true; /* opportunistic TLS failed: once more in plaintext */
        t->ai--;
    }
    outq_dest_next_addr(t);
}

/* outq_dest_next_addr - try the next address of the current host. */
static void
outq_dest_next_addr(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    struct smtpc_opts o = {0};
    char err[200];
    const char *ip;

    if (t->ai >= t->naddrs) {
        outq_dest_next_host(t);
        return;
    }
    ip = t->addrs[t->ai++];
    snprintf(t->relay, sizeof(t->relay), "%s[%s]:%d", t->host, ip, t->port);
    o.helo = oq->d->srv.hostname;
    o.tls = t->plain ? NULL : oq->tls;
    o.tls_policy = t->plain || oq->tls == NULL ? SMTPC_TLS_NONE : SMTPC_TLS_MAY;
    if (t->require) /* no client context: smtpc fails 4.7.4, nothing goes in plaintext */
        o.tls_policy = SMTPC_TLS_REQUIRE;
    o.tls_name = t->host;
    o.auth_user = t->pass != NULL ? t->user : NULL;
    o.auth_pass = t->pass;
    o.timeout_ms = OUTQ_REPLY_MS;
    o.data_timeout_ms = OUTQ_DATA_MS;
    t->c = smtpc_open(oq->d->srv.net, ip, t->port, &o, outq_ready, t, err, sizeof(err));
    if (t->c == NULL) {
        outq_reply_set(&t->err, 451, "4.4.1", "%s: %s", t->relay, err);
        outq_dest_next_addr(t);
        return;
    }
    oq->conns++;
}

/* outq_addr_result - the addresses of the current host. */
static void
outq_addr_result(struct dns_result *r, void *arg)
{
    struct outq_dest *t = arg;

    t->q = NULL;
    for (size_t i = 0; i < t->naddrs; i++)
        free(t->addrs[i]);
    free(t->addrs);
    t->addrs = NULL;
    t->naddrs = t->ai = 0;
    if (r->status == DNS_OK && r->n > 0) {
        t->addrs = xcalloc(r->n, sizeof(*t->addrs));
        for (size_t i = 0; i < r->n; i++)
            t->addrs[t->naddrs++] = xstrdup(r->addr[i].text);
    } else {
        outq_reply_set(&t->err, 451, "4.4.3", "host %s: %s", t->host, r->why);
    }
    dns_result_free(&r);
    t->plain = false;
    outq_dest_next_addr(t);
}

/* outq_is_ip - a numeric address. */
static bool
outq_is_ip(const char *s)
{
    unsigned char b[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* outq_dest_next_host - the next host of the route, or the end of it. */
static void
outq_dest_next_host(struct outq_dest *t)
{
    struct outq *oq = t->oq;

    if (t->hi >= t->nhosts) {
        if (t->err.code == 0)
            outq_reply_set(&t->err, 451, "4.4.1", "no host of %s answered",
                           t->spec != NULL ? t->spec : t->key);
        if (t->err.code / 100 != 4 && t->err.code / 100 != 5)
            t->err.code = 451;
        if (t->err.code / 100 == 5) { /* a server refused the session itself */
            t->err.code = 451;
            snprintf(t->err.status, sizeof(t->err.status), "4.4.1");
        }
        if (!t->answered)
            outq_dead_mark(oq, t->key, &t->err);
        outq_dest_all(t, &t->err);
        return;
    }
    snprintf(t->host, sizeof(t->host), "%s", t->hosts[t->hi++]);
    if (outq_is_ip(t->host)) {
        for (size_t i = 0; i < t->naddrs; i++)
            free(t->addrs[i]);
        free(t->addrs);
        t->addrs = xcalloc(1, sizeof(*t->addrs));
        t->addrs[0] = xstrdup(t->host);
        t->naddrs = 1;
        t->ai = 0;
        t->plain = false;
        outq_dest_next_addr(t);
        return;
    }
    t->q = dns_addr(oq->dns, t->host, outq_addr_result, t);
}

/* outq_mx_result - the domain's exchangers. */
static void
outq_mx_result(struct dns_result *r, void *arg)
{
    struct outq_dest *t = arg;
    struct smtpc_reply e;

    t->q = NULL;
    switch (r->status) {
    case DNS_OK:
    case DNS_IMPLICIT:
        t->hosts = xcalloc(r->n, sizeof(*t->hosts));
        for (size_t i = 0; i < r->n; i++)
            t->hosts[t->nhosts++] = xstrdup(r->mx[i].host);
        dns_result_free(&r);
        outq_dest_next_host(t);
        return;
    default:
        if (t->spec == NULL)
            break;
        /* a smarthost or gateway that does not resolve is the admin's to fix: retried */
        outq_reply_set(&e, 451, "4.4.3", "%s: MX of the relay host: %s", t->spec, r->why);
        dns_result_free(&r);
        outq_dest_all(t, &e);
        return;
    }
    switch (r->status) {
    case DNS_NULLMX:
        outq_reply_set(&e, 556, "5.1.10", "%s does not accept mail (null MX)", t->key);
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        outq_reply_set(&e, 550, "5.1.2", "domain %s: %s", t->key, r->why);
        break;
    default:
        outq_reply_set(&e, 451, "4.4.3", "domain %s: DNS %s", t->key, r->why);
        break;
    }
    dns_result_free(&r);
    outq_dest_all(t, &e);
}

/* outq_relay_route - a smarthost or gateway: its MX (bare name) or the host itself. */
static void
outq_relay_route(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    struct nexthop nh;
    char why[300];

    if (nexthop_parse(t->spec, &nh, why, sizeof(why)) < 0) { /* checked at load */
        struct smtpc_reply e;
        outq_reply_set(&e, 451, "4.3.5", "relay host %s", why);
        outq_dest_all(t, &e);
        return;
    }
    if (nh.port > 0)
        t->port = nh.port;
    if (nh.mx) {
        t->q = dns_mx(oq->dns, nh.host, outq_mx_result, t);
        return;
    }
    t->hosts = xcalloc(1, sizeof(*t->hosts));
    t->hosts[0] = xstrdup(nh.host);
    t->nhosts = 1;
    outq_dest_next_host(t);
}

/* outq_pass_work - pool: the first line of the password file. */
static void
outq_pass_work(uv_work_t *w)
{
    struct outq_pass *pj = w->data;
    char *text = NULL;
    size_t len = 0, n;

    if (file_read_all(pj->path, OUTQ_PASS_MAX, &text, &len) < 0) {
        snprintf(pj->err, sizeof(pj->err), "%s",
                 errno == EFBIG ? "larger than 4096 bytes" : strerror(errno));
        return;
    }
    n = strcspn(text, "\r\n");
    if (n == 0)
        snprintf(pj->err, sizeof(pj->err), "its first line is empty");
    else
        pj->pass = xstrndup(text, n);
    explicit_bzero(text, len);
    free(text);
}

/* outq_pass_done - loop: the destination goes on with the password, or is deferred. */
static void
outq_pass_done(uv_work_t *w, int status)
{
    struct outq_pass *pj = w->data;
    struct outq_dest *t = pj->t;

    pj->oq->d->srv.jobs--;
    if (t != NULL) {
        t->pj = NULL;
        if (pj->pass != NULL) {
            t->pass = pj->pass;
            pj->pass = NULL;
            outq_relay_route(t);
        } else {
            struct smtpc_reply e;
            if (pj->err[0] == '\0')
                snprintf(pj->err, sizeof(pj->err), "%s", uv_strerror(status));
            log_error("outq: smarthost_auth: cannot read the password file %s: %s", pj->path,
                      pj->err);
            outq_reply_set(&e, 451, "4.3.5", "smarthost_auth: cannot read the password file %s: %s",
                           pj->path, pj->err);
            outq_dest_all(t, &e);
        }
    }
    if (pj->pass != NULL) {
        explicit_bzero(pj->pass, strlen(pj->pass));
        free(pj->pass);
    }
    free(pj->path);
    free(pj);
}

/* outq_relay_start - a smarthost or gateway: its policies, the password, the route. */
static void
outq_relay_start(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    const struct conf *cf = oq->d->srv.cf;
    const char *auth = cf->smarthost_auth, *sp = strchr(auth, ' ');
    struct outq_pass *pj;

    t->require = cf->smarthost_tls == SMARTHOST_TLS_REQUIRE;
    if (auth[0] == '\0' || sp == NULL) {
        outq_relay_route(t);
        return;
    }
    t->user = xstrndup(auth, (size_t)(sp - auth));
    pj = xcalloc(1, sizeof(*pj));
    pj->oq = oq;
    pj->t = t;
    pj->path = xstrdup(sp + 1);
    pj->w.data = pj;
    oq->d->srv.jobs++;
    if (uv_queue_work(oq->d->srv.loop, &pj->w, outq_pass_work, outq_pass_done) < 0) {
        struct smtpc_reply e;
        oq->d->srv.jobs--;
        free(pj->path);
        free(pj);
        outq_reply_set(&e, 451, "4.3.0", "smarthost_auth: cannot start reading the password");
        outq_dest_all(t, &e);
        return;
    }
    t->pj = pj;
}

/* outq_dest_start - resolve and connect. */
static void
outq_dest_start(struct outq_dest *t)
{
    struct outq *oq = t->oq;
    const struct conf *cf = oq->d->srv.cf;
    const struct smtpc_reply *dead = outq_dead_find(oq, t->key, time(NULL));

    t->running = true;
    t->since = time(NULL);
    if (dead != NULL) {
        struct smtpc_reply r = *dead;
        outq_dest_all(t, &r);
        return;
    }
    t->port = (int)cf->remote_smtp_port;
    if (t->spec != NULL) {
        outq_relay_start(t);
        return;
    }
    t->q = dns_mx(oq->dns, t->key, outq_mx_result, t);
}

/* outq_start_dests - start waiting destinations while connections are free. */
static void
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

/* outq_dest_get - where a message for key waits: a destination of key not started
 * yet; else a new one while key has fewer than smtp_out_per_domain (each is one
 * session); else the running one with the fewest waiting (its session carries it
 * next: reuse). */
static struct outq_dest *
outq_dest_get(struct outq *oq, const char *key)
{
    struct outq_dest *t, *best = NULL;
    size_t best_n = 0;
    long n = 0;

    for (t = oq->dests; t != NULL; t = t->next) {
        size_t waiting = 0;
        if (strcasecmp(t->key, key) != 0)
            continue;
        if (!t->running)
            return t;
        n++;
        for (const struct outq_msg *m = t->msgs; m != NULL; m = m->next)
            waiting++;
        if (best == NULL || waiting < best_n) {
            best = t;
            best_n = waiting;
        }
    }
    if (best != NULL && n >= oq->d->srv.cf->smtp_out_per_domain)
        return best;
    t = xcalloc(1, sizeof(*t));
    t->oq = oq;
    t->key = xstrdup(key);
    if (strncmp(key, OUTQ_RELAY, strlen(OUTQ_RELAY)) == 0)
        t->spec = t->key + strlen(OUTQ_RELAY);
    t->next = oq->dests;
    oq->dests = t;
    return t;
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
    size_t max = (size_t)cf->smtp_out_rcpt_max;

    for (size_t i = 0; i < f->n; i++)
        keys[i] = outq_key(cf, f->addr[i]);
    for (size_t i = 0; i < f->n; i++) {
        const char *key = keys[i];
        struct outq_dest *t;
        struct outq_msg *m;
        if (done[i])
            continue;
        t = outq_dest_get(oq, key);
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
        m->m.envid = f->envid;
        m->m.ret = dsnparam_ret_name(f->ret, false);
        m->m.eightbit = f->eightbit;
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
    while (oq->dead != NULL) { /* resume: every destination is worth a try again */
        struct outq_dead *x = oq->dead;
        oq->dead = x->next;
        free(x->key);
        free(x);
    }
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
        size_t waiting = 0;
        if (!t->running)
            continue;
        for (const struct outq_msg *m = t->msgs; m != NULL; m = m->next)
            waiting++;
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

/* outq_new - the delivery side. */
struct outq *
outq_new(struct smtpd *d)
{
    struct outq *oq = xcalloc(1, sizeof(*oq));
    const struct conf *cf = d->srv.cf;
    char err[300], *servers = xstrdup("");

    oq->d = d;
    oq->max = (size_t)cf->queue_active_max;
    uv_mutex_init(&oq->mu);
    for (size_t i = 0; i < cf->dns_host.n; i++) {
        char *s = xasprintf("%s%s%s", servers, i ? "," : "", cf->dns_host.v[i]);
        free(servers);
        servers = s;
    }
    oq->dns =
        dns_new(d->srv.loop, servers, cf->dns_timeout * 1000L, OUTQ_DNS_TRIES, err, sizeof(err));
    free(servers);
    if (oq->dns == NULL)
        log_fatal("outbound delivery: DNS: %s", err);
    oq->tls = tls_client_ctx(err, sizeof(err));
    if (oq->tls == NULL)
        log_warn("outbound delivery: no STARTTLS: %s", err);
    return oq;
}

/* outq_stop - end every destination; the struct stays until outq_free. */
void
outq_stop(struct outq *oq)
{
    if (oq == NULL || oq->stopping)
        return;
    oq->stopping = true;
    while (oq->dests != NULL) {
        struct outq_dest *t = oq->dests;
        struct smtpc_reply r;
        outq_reply_set(&r, 0, "4.3.2", "stopping");
        outq_dest_all(t, &r);
    }
    dns_free(&oq->dns);
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
    while (oq->dead != NULL) {
        struct outq_dead *x = oq->dead;
        oq->dead = x->next;
        free(x->key);
        free(x);
    }
    if (oq->tls != NULL)
        SSL_CTX_free(oq->tls);
    free(oq->claims);
    uv_mutex_destroy(&oq->mu);
    free(oq);
}
