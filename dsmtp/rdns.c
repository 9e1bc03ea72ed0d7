/*
 * rdns - the client's PTR name and its forward confirmation. See rdns.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "rdns.h"
#include "recentpop.h"
#include "session.h"
#include "xmem.h"

struct rdns {
    struct smtp_session *s;
    struct dns_query *q; /* the running lookup, NULL when none */
    uv_timer_t timer;    /* the deadline of both lookups */
    enum rdns_status status;
    char name[256];
    void (*done)(struct smtp_session *s);
};

static const char *const rdns_status_names[] = {
    [RDNS_PENDING] = "pending", [RDNS_CONFIRMED] = "confirmed", [RDNS_UNCONFIRMED] = "unconfirmed",
    [RDNS_NONE] = "none",       [RDNS_TEMPFAIL] = "tempfail",
};

/* rdns_end - the result is there: stop the clock, log, wake a waiting MAIL. */
static void
rdns_end(struct rdns *r, enum rdns_status st, const char *why)
{
    struct smtp_session *s = r->s;
    void (*done)(struct smtp_session *) = r->done;

    r->status = st;
    r->done = NULL;
    uv_timer_stop(&r->timer);
    if (st == RDNS_NONE || st == RDNS_TEMPFAIL)
        r->name[0] = '\0';
    log_sess(LOGLVL_INFO, s->base.sid, "rdns ip=%s name=%s result=%s%s%s", s->base.ip,
             r->name[0] ? r->name : "unknown", rdns_status_names[st], why ? " why=" : "",
             why ? why : "");
    if (done != NULL)
        done(s);
}

/* rdns_done - the PTR name and whether it is confirmed. */
static void
rdns_done(struct dns_result *res, void *arg)
{
    struct rdns *r = arg;
    enum rdns_status st = RDNS_NONE;

    r->q = NULL;
    if (res->status == DNS_TEMPFAIL) {
        st = RDNS_TEMPFAIL;
    } else if (res->status == DNS_OK) {
        snprintf(r->name, sizeof(r->name), "%s", res->ptr[0]);
        st = res->confirmed ? RDNS_CONFIRMED : RDNS_UNCONFIRMED;
    }
    rdns_end(r, st, st == RDNS_CONFIRMED || st == RDNS_UNCONFIRMED ? NULL : res->why);
    dns_result_free(&res);
}

/* rdns_timeout - both lookups together took dns_timeout. */
static void
rdns_timeout(uv_timer_t *t)
{
    struct rdns *r = t->data;

    if (r->s->d->dns != NULL) /* else dns_free dropped it already */
        dns_cancel(r->q);
    r->q = NULL;
    rdns_end(r, RDNS_TEMPFAIL, "timeout");
}

/* rdns_closed - the timer is closed: the memory goes. */
static void
rdns_closed(uv_handle_t *h)
{
    free(h->data);
}

void
rdns_start(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    char name[DNS_REVERSE_MAX];
    struct rdns *r;

    if (!cf->lookup_names && !cf->require_fcrdns)
        return;
    if (s->d->dns == NULL || dns_reverse_name(s->base.ip, name, sizeof(name)) < 0)
        return; /* not an IP address: dns_fcrdns would not start */
    r = xcalloc(1, sizeof(*r));
    r->s = s;
    r->status = RDNS_PENDING;
    uv_timer_init(s->d->srv.loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, rdns_timeout, (uint64_t)cf->dns_timeout * 1000, 0);
    s->rdns = r;
    r->q = dns_fcrdns(s->d->dns, s->base.ip, rdns_done, r);
}

bool
rdns_wait(struct smtp_session *s, void (*done)(struct smtp_session *s))
{
    if (s->rdns == NULL || s->rdns->status != RDNS_PENDING)
        return false;
    s->rdns->done = done;
    return true;
}

bool
rdns_refuse(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    enum rdns_status st = rdns_status(s);

    if (!cf->require_fcrdns || s->base.port != SMTPD_PORT_SMTP || s->auth_user != NULL ||
        conf_ip_match(&cf->forward_from_ip, s->base.ip) || recentpop_allowed(s) ||
        st == RDNS_CONFIRMED || s->rdns == NULL)
        return false;
    log_sess(LOGLVL_INFO, s->base.sid, "refused ip=%s reason=fcrdns result=%s", s->base.ip,
             rdns_status_names[st]);
    if (st == RDNS_TEMPFAIL)
        session_reply(s, 450, "4.7.25", "Client host rejected: cannot find your hostname, [%s]",
                      s->base.ip);
    else
        session_reply(s, 550, "5.7.25",
                      "Client host rejected: reverse DNS of [%s] is missing or not "
                      "forward-confirmed",
                      s->base.ip);
    return true;
}

const char *
rdns_name(const struct smtp_session *s)
{
    return s->rdns != NULL && s->rdns->name[0] != '\0' && s->rdns->status != RDNS_PENDING
               ? s->rdns->name
               : NULL;
}

size_t
rdns_authres(const struct smtp_session *s, char *buf, size_t len)
{
    static const char *const res[] = {
        [RDNS_CONFIRMED] = "pass",
        [RDNS_UNCONFIRMED] = "fail",
        [RDNS_NONE] = "permerror",
        [RDNS_TEMPFAIL] = "temperror",
    };
    const struct rdns *r = s->rdns;
    int n;

    if (r == NULL || r->status == RDNS_PENDING)
        return 0;
    n = snprintf(buf, len, "iprev=%s policy.iprev=%s%s%s%s", res[r->status], s->base.ip,
                 r->name[0] ? " (" : "", r->name, r->name[0] ? ")" : "");
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

enum rdns_status
rdns_status(const struct smtp_session *s)
{
    return s->rdns != NULL ? s->rdns->status : RDNS_NONE;
}

void
rdns_free(struct smtp_session *s)
{
    struct rdns *r = s->rdns;

    if (r == NULL)
        return;
    s->rdns = NULL;
    if (r->s->d->dns != NULL) /* else dns_free dropped it already */
        dns_cancel(r->q);
    uv_close((uv_handle_t *)&r->timer, rdns_closed);
}
