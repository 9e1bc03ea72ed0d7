/*
 * bounce - delivery status notifications for failed recipients. See bounce.h.
 */
#include "bounce.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "deliver.h"
#include "dsnparam.h"
#include "log.h"
#include "logq.h"
#include "qfile.h"
#include "server.h"
#include "xmem.h"

/* bounce_is_report - a report's own queue file. */
bool
bounce_is_report(const char *origin)
{
    return origin != NULL &&
           (strncmp(origin, BOUNCE_ORIGIN, strlen(BOUNCE_ORIGIN)) == 0 ||
            strncmp(origin, BOUNCE_ORIGIN_DOUBLE, strlen(BOUNCE_ORIGIN_DOUBLE)) == 0);
}

/* bounce_queue - compose and queue one report; dbl: to sysadmin (ok says why). */
static int bounce_queue(const struct conf *cf, const struct bounce_msg *m,
                        const struct bounce_rcpt *r, size_t n, enum dsn_action action,
                        time_t retry_until, bool dbl, enum dsn_bounce ok);

/* bounce_pick - the recipients of r whose NOTIFY asks for kind, into a new array (*out,
 * free it); those left out are logged. Returns how many were picked. */
static size_t
bounce_pick(const struct bounce_msg *m, const struct bounce_rcpt *r, size_t n, int kind,
            const char *what, struct bounce_rcpt **out)
{
    size_t k = 0;
    char nt[DSNPARAM_NOTIFY_TEXT];

    *out = xcalloc(n + 1, sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        if (dsnparam_wants(r[i].notify, kind))
            (*out)[k++] = r[i];
        else if (kind != DSN_NOTIFY_SUCCESS)
            log_info("bounce id=%s to=<%s> result=no-%s reason=notify notify=%s", m->id, r[i].addr,
                     what, dsnparam_notify_format(r[i].notify, false, nt, sizeof(nt)));
    }
    return k;
}

/* bounce_delay - the delay notice. */
int
bounce_delay(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
             size_t n, time_t retry_until)
{
    enum dsn_bounce ok = dsn_bounceable(m->sender, m->text, m->len);
    struct bounce_rcpt *p;
    int rc = 0;

    if (n == 0 || ok != DSN_BOUNCE_OK)
        return 0;
    n = bounce_pick(m, r, n, DSN_NOTIFY_DELAY, "delay-notice", &p);
    if (n > 0)
        rc = bounce_queue(cf, m, p, n, DSN_DELAYED, retry_until, false, ok);
    free(p);
    return rc;
}

/* bounce_success - the success report (delivered or relayed). */
int
bounce_success(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
               size_t n, enum dsn_action action)
{
    enum dsn_bounce ok = dsn_bounceable(m->sender, m->text, m->len);
    struct bounce_rcpt *p;
    int rc = 0;

    n = bounce_pick(m, r, n, DSN_NOTIFY_SUCCESS, "success-report", &p);
    if (n > 0 && ok != DSN_BOUNCE_OK)
        log_info("bounce id=%s result=no-success-report reason=\"%s\" rcpts=%zu", m->id,
                 dsn_bounce_text(ok), n);
    else if (n > 0)
        rc = bounce_queue(cf, m, p, n, action, 0, false, ok);
    free(p);
    return rc;
}

/* bounce_send - compose and queue the report. */
int
bounce_send(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
            size_t n)
{
    enum dsn_bounce ok = dsn_bounceable(m->sender, m->text, m->len);
    bool dbl = ok != DSN_BOUNCE_OK;
    struct bounce_rcpt *p;
    char eq[300];
    int rc;

    if (n == 0)
        return 0;
    if (m->origin != NULL &&
        strncmp(m->origin, BOUNCE_ORIGIN_DOUBLE, strlen(BOUNCE_ORIGIN_DOUBLE)) == 0) {
        log_error("bounce id=%s result=dropped reason=double-bounce-failed to=<%s> error=%s", m->id,
                  r[0].addr, logq_text(eq, sizeof(eq), r[0].diag, strlen(r[0].diag), 200));
        return 0;
    }
    n = bounce_pick(m, r, n, DSN_NOTIFY_FAILURE, "failure-report", &p);
    if (n == 0) {
        free(p);
        return 0;
    }
    if (dbl && (cf->sysadmin == NULL || cf->sysadmin[0] == '\0')) {
        log_error("bounce id=%s result=dropped reason=\"%s, and sysadmin is not set\" rcpts=%zu",
                  m->id, dsn_bounce_text(ok), n);
        free(p);
        return 0;
    }
    rc = bounce_queue(cf, m, p, n, DSN_FAILED, 0, dbl, ok);
    free(p);
    return rc;
}

static int bounce_queue_to(const struct conf *cf, const struct bounce_msg *m,
                           const struct bounce_rcpt *r, size_t n, enum dsn_action action,
                           time_t retry_until, bool dbl, enum dsn_bounce ok, const char *to);

/* bounce_queue - one report to the sender (or the sysadmin); under VERP one per recipient
 * to its VERP sender. 1 when all were queued, -1 when one failed. */
static int
bounce_queue(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
             size_t n, enum dsn_action action, time_t retry_until, bool dbl, enum dsn_bounce ok)
{
    char to[DELIVER_VERP_MAX];
    int rc = 1;

    if (dbl || m->verp == NULL || m->verp[0] == '\0' || m->sender[0] == '\0')
        return bounce_queue_to(cf, m, r, n, action, retry_until, dbl, ok,
                               dbl ? cf->sysadmin : m->sender);
    for (size_t i = 0; i < n; i++)
        if (bounce_queue_to(cf, m, &r[i], 1, action, retry_until, false, ok,
                            addr_verp(m->sender, r[i].addr, m->verp, to, sizeof(to))) < 0)
            rc = -1;
    return rc;
}

/* bounce_queue_to - compose and queue one report to to. */
static int
bounce_queue_to(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
                size_t n, enum dsn_action action, time_t retry_until, bool dbl, enum dsn_bounce ok,
                const char *to)
{
    struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
    char host[256], pm[300], origin[200], err[200], qid[96];
    struct dsn_msg dm = {0};
    struct dsn_out out = {0};
    struct deliver_qrcpt qr;
    time_t now = time(NULL);
    int rc = 1;

    server_hostname(cf, host, sizeof(host));
    snprintf(pm, sizeof(pm), "MAILER-DAEMON@%s", host);
    for (size_t i = 0; i < n; i++) {
        dr[i].final_rcpt = r[i].addr;
        dr[i].action = action;
        dr[i].status = r[i].status;
        dr[i].diagnostic = r[i].diag;
        dr[i].orcpt = r[i].orcpt;
        dr[i].remote_mta = r[i].remote;
        dr[i].last_attempt = now;
        dr[i].retry_until = retry_until;
    }
    qfile_new_id(qid, sizeof(qid), host);
    dm.hostname = host;
    dm.postmaster = pm;
    dm.to = to;
    dm.orig_sender = dbl ? m->sender : NULL;
    dm.ret = m->ret;
    dm.envid = m->envid;
    dm.bounce_body = cf->bounce_body;
    dm.arrival = m->arrival;
    dm.now = now;
    dm.id = qid;
    dm.rcpt = dr;
    dm.nrcpt = n;
    dm.text = m->text;
    dm.text_len = m->len;
    if (dsn_compose(&dm, &out, err, sizeof(err)) < 0) {
        log_error("bounce id=%s result=failed error=%s", m->id, err);
        free(dr);
        errno = EINVAL;
        return -1;
    }
    snprintf(origin, sizeof(origin), "%s%s", dbl ? BOUNCE_ORIGIN_DOUBLE : BOUNCE_ORIGIN, m->id);
    qr = (struct deliver_qrcpt){dm.to, 0, NULL, 0, NULL, false, NULL};
    if (deliver_queue_write(cf, qid, "", origin, NULL, now, &qr, 1, out.text, out.len, NULL) < 0) {
        const char *e = strerror(errno);
        log_error("bounce id=%s result=queue-write-failed error=%s", m->id, e);
        rc = -1;
    } else {
        log_info("bounce id=%s report=%s action=%s to=<%s> rcpts=%zu%s%s", m->id, qid,
                 dsn_action_name(action), dm.to, n, dbl ? " double-bounce=" : "",
                 dbl ? dsn_bounce_text(ok) : "");
    }
    dsn_out_free(&out);
    free(dr);
    return rc;
}
