/*
 * smtpout - the outbox to dsmtp over SMTP. See smtpout.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "conf.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "outbox.h"
#include "server.h"
#include "smtpc.h"
#include "smtpout.h"
#include "spool.h"
#include "unsub.h"
#include "xmem.h"

#define SMTPOUT_TIMEOUT_MS 120000
#define SMTPOUT_DATA_TIMEOUT_MS 600000

static struct {
    struct server *srv;
    struct conf *cf;
    char *dir; /* the outbox directory */
    char **names;
    size_t n, i;
    struct smtpc *c;
    bool xheader; /* the session's server announced XHEADER and XVERP (dsmtp) */
    bool busy, again, stopping;
    bool inflight; /* a pool job of the batch runs */
    uv_work_t work;
    /* the file in flight */
    struct outbox_msg m;
    struct smtpc_msg sm;
    struct smtpc_rcpt *rc;
    int read_errno;
    size_t keep;    /* recipients refused with 4xx, moved to the front of m.rcpt */
    bool now;       /* the kept ones at once, in the next transaction: too many recipients */
    char head[700]; /* the shared List-Unsubscribe above every copy (no XHEADER) */
} so;

static void smtpout_next(void);

int
smtpout_busy(void)
{
    return so.busy;
}

/* smtpout_end - the batch is over: close, free, maybe scan again. */
static void
smtpout_end(void)
{
    if (so.c != NULL)
        smtpc_close(so.c);
    so.c = NULL;
    for (size_t i = 0; i < so.n; i++)
        free(so.names[i]);
    free(so.names);
    so.names = NULL;
    so.n = so.i = 0;
    free(so.dir);
    so.dir = NULL;
    conf_unref(&so.cf);
    so.busy = false;
    if (so.again && !so.stopping) {
        so.again = false;
        spool_kick();
    }
}

/* smtpout_read_work - pool: the next file. */
static void
smtpout_read_work(uv_work_t *w)
{
    char *path = xasprintf("%s/%s", so.dir, so.names[so.i]);

    so.read_errno = outbox_read(path, &so.m) < 0 ? errno : 0;
    free(path);
}

/* smtpout_finish_work - pool: the file removed, or rewritten with the 4xx recipients. */
static void
smtpout_finish_work(uv_work_t *w)
{
    char *path = xasprintf("%s/%s", so.dir, so.names[so.i]);

    if (so.keep == 0) {
        if (unlink(path) < 0 || file_fsync_dir(path) < 0)
            log_error("cannot remove %s: %s", path, strerror(errno));
    } else { /* the rest is a new transaction: a new ENVID (the old one is delivered for
              * dsmtp, txdedup.h: a resend under it would be answered 250 and dropped) */
        struct outbox_msg k = so.m;
        k.nrcpt = so.keep;
        k.envid = NULL;
        if (outbox_write(so.dir, so.names[so.i], &k) < 0)
            log_error("cannot rewrite %s: %s", path, strerror(errno));
    }
    free(path);
}

/* smtpout_finished - loop: on to the next file. */
static void
smtpout_finished(uv_work_t *w, int status)
{
    so.srv->jobs--;
    so.inflight = false;
    free(so.rc);
    so.rc = NULL;
    outbox_free(&so.m);
    if (!so.now) /* else the file again, rewritten with the rest, on this connection */
        so.i++;
    so.now = false;
    if (so.stopping) {
        smtpout_end();
        return;
    }
    smtpout_next();
}

/* smtpout_done - loop: the transaction's replies. */
static void
smtpout_done(struct smtpc *c, void *arg, struct smtpc_msg *m, bool broken)
{
    size_t ok = 0, bad = 0, full = 0;
    char *saved;

    so.keep = 0;
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct smtpc_answer *r = &m->rcpt[i].reply;
        if (r->code >= 200 && r->code < 300)
            ok++;
        else if (r->code >= 500) {
            bad++;
            log_warn("%s: <%s> refused by %s: %d %s %s", so.names[so.i], m->rcpt[i].addr,
                     smtpc_peer(c), r->code, r->status, r->text);
        } else {
            /* 4xx (or no answer): kept for the next batch, in front */
            full += r->code == 452;
            saved = so.m.rcpt[so.keep];
            so.m.rcpt[so.keep] = so.m.rcpt[i];
            so.m.rcpt[i] = saved;
            so.keep++;
        }
    }
    /* only 452s (too many recipients, RFC 5321 4.5.3.1.10) after progress: the rest in
     * the next transaction at once; else at the next scan */
    so.now = !broken && ok > 0 && so.keep > 0 && full == so.keep;
    smtpc_msg_clear(m);
    if (so.keep > 0 && so.m.made > 0 && time(NULL) - so.m.made > so.cf->queue_lifetime) {
        for (size_t i = 0; i < so.keep; i++)
            log_error("%s: <%s> given up: still refused for now after queue_lifetime",
                      so.names[so.i], so.m.rcpt[i]);
        bad += so.keep;
        so.keep = 0;
        so.now = false;
    }
    log_info("%s: %zu recipient%s accepted by %s, %zu refused, %zu to retry", so.names[so.i], ok,
             ok == 1 ? "" : "s", smtpc_peer(c), bad, so.keep);
    if (broken) {
        if (so.keep == m->nrcpt) { /* nothing happened: the file stays as it is */
            free(so.rc);
            so.rc = NULL;
            outbox_free(&so.m);
            smtpout_end();
            return;
        }
    }
    so.srv->jobs++;
    if (uv_queue_work(so.srv->loop, &so.work, smtpout_finish_work, smtpout_finished) != 0) {
        so.srv->jobs--;
        free(so.rc);
        so.rc = NULL;
        outbox_free(&so.m);
        smtpout_end();
        return;
    }
    so.inflight = true;
    if (broken) { /* the batch ends after this file; the rest at the next scan */
        smtpc_close(so.c);
        so.c = NULL;
        so.again = true;
    }
}

/* smtpout_xheader - smtpc's, while RCPT is written: recipient i's own List-Unsubscribe
 * fields (unsub.h), made when asked (nothing kept per member). */
static size_t
smtpout_xheader(void *arg, size_t i, char *buf, size_t len)
{
    return unsub_xheader(so.cf, so.m.list, so.rc[i].addr, buf, len);
}

/* smtpout_unsub - a file naming its list (outbox.h "L"): each copy's List-Unsubscribe
 * through dsmtp's XHEADER, or the shared mailto above every copy. */
static void
smtpout_unsub(void)
{
    char mailto[600];
    int n;

    if (so.xheader && so.m.xverp) {
        so.sm.xheader = smtpout_xheader;
        return;
    }
    if (unsub_mailto(so.cf, so.m.list, mailto, sizeof(mailto)) < 0 ||
        (n = snprintf(so.head, sizeof(so.head), "List-Unsubscribe: %s\n", mailto)) < 0 ||
        (size_t)n >= sizeof(so.head)) {
        log_warn("%s: list %s: no List-Unsubscribe (the address does not fit)", so.names[so.i],
                 so.m.list);
        return;
    }
    so.sm.head = so.head;
    so.sm.head_len = (size_t)n;
}

/* smtpout_read - loop: send the file read. */
static void
smtpout_read(uv_work_t *w, int status)
{
    so.srv->jobs--;
    so.inflight = false;
    if (so.stopping) {
        outbox_free(&so.m);
        smtpout_end();
        return;
    }
    if (so.read_errno != 0) {
        if (so.read_errno != ENOENT)
            log_error("%s/%s: %s: left in place", so.dir, so.names[so.i], strerror(so.read_errno));
        so.i++;
        smtpout_next();
        return;
    }
    so.rc = xcalloc(so.m.nrcpt, sizeof(*so.rc));
    for (size_t i = 0; i < so.m.nrcpt; i++)
        so.rc[i].addr = so.m.rcpt[i];
    so.sm = (struct smtpc_msg){.sender = so.m.sender,
                               .envid = so.m.envid,
                               .xverp = so.m.xverp,
                               .rcpt = so.rc,
                               .nrcpt = so.m.nrcpt,
                               .text = so.m.text,
                               .len = so.m.len};
    for (size_t i = 0; i < so.m.len; i++)
        if ((unsigned char)so.m.text[i] >= 0x80) {
            so.sm.eightbit = true;
            break;
        }
    if (so.m.list != NULL)
        smtpout_unsub();
    if (smtpc_send(so.c, &so.sm, smtpout_done, NULL) < 0) {
        log_error("%s: the SMTP session cannot take it", so.names[so.i]);
        free(so.rc);
        so.rc = NULL;
        outbox_free(&so.m);
        smtpout_end();
    }
}

static void
smtpout_next(void)
{
    if (so.c == NULL || so.i >= so.n) {
        smtpout_end();
        return;
    }
    so.srv->jobs++;
    so.inflight = true;
    if (uv_queue_work(so.srv->loop, &so.work, smtpout_read_work, smtpout_read) != 0) {
        so.srv->jobs--;
        so.inflight = false;
        smtpout_end();
    }
}

/* smtpout_ready - loop: the session is up (or not). */
static void
smtpout_ready(struct smtpc *c, void *arg, const struct smtpc_info *info)
{
    if (info->reply.code < 200 || info->reply.code >= 300) {
        log_warn("cannot hand the list mail to %s (%s): %d %s %s; trying again later",
                 smtpc_peer(c), info->stage, info->reply.code, info->reply.status,
                 info->reply.text);
        smtpout_end();
        return;
    }
    so.xheader = info->xheader && info->xverp;
    smtpout_next();
}

void
smtpout_run(struct server *srv, char **names, size_t n)
{
    struct smtpc_opts o = {.helo = srv->hostname,
                           .tls_policy = SMTPC_TLS_NONE,
                           .timeout_ms = SMTPOUT_TIMEOUT_MS,
                           .data_timeout_ms = SMTPOUT_DATA_TIMEOUT_MS};
    char host[300], err[200];
    int port = 0;

    if (so.busy || so.stopping || n == 0) {
        so.again = so.again || (so.busy && n > 0);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return;
    }
    so.srv = srv;
    so.cf = conf_ref(srv->cf);
    so.names = names;
    so.n = n;
    so.i = 0;
    so.busy = true;
    so.dir = xasprintf("%s/dlist/%s", so.cf->spool_dir, OUTBOX_DIR);
    if (lists_smtp_host(so.cf->dlist_smtp_host, host, sizeof(host), &port) < 0) {
        log_error("dlist_smtp_host %s: HOST or HOST:PORT", so.cf->dlist_smtp_host);
        smtpout_end();
        return;
    }
    if (port == 0)
        port = (int)so.cf->smtp_port;
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    so.c = smtpc_open(srv->net, host, port, &o, smtpout_ready, NULL, err, sizeof(err));
    if (so.c == NULL) {
        log_error("dlist_smtp_host %s: %s (an IP address or localhost)", so.cf->dlist_smtp_host,
                  err);
        smtpout_end();
    }
}

void
smtpout_stop(void)
{
    so.stopping = true;
    if (so.c != NULL) {
        smtpc_close(so.c);
        so.c = NULL;
    }
    if (so.busy && !so.inflight) /* else the job's end ends the batch */
        smtpout_end();
}
