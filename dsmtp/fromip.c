/*
 * fromip - messages per client address per interval. See fromip.h.
 */
#include <stdlib.h>

#include "fromip.h"
#include "log.h"
#include "lru.h"
#include "xmem.h"

struct fromip {
    struct lru *counts; /* address -> struct fromip_count */
};

struct fromip_count {
    long n;
};

struct fromip *
fromip_new(void)
{
    struct fromip *f = xcalloc(1, sizeof(*f));

    f->counts = lru_new(FROMIP_TABLE_MAX, sizeof(struct fromip_count));
    return f;
}

void
fromip_free(struct fromip **fp)
{
    struct fromip *f = *fp;

    if (f == NULL)
        return;
    *fp = NULL;
    lru_free(&f->counts);
    free(f);
}

bool
fromip_mail(struct smtp_session *s)
{
    const struct conf *cf = s->base.cf;
    struct fromip *f = s->d->fromip;
    uint64_t now = uv_now(s->d->srv.loop);
    struct fromip_count *c;

    if (cf->fromip_max <= 0 || f == NULL || conf_ip_match(&cf->fromip_nolimit, s->base.ip) ||
        conf_ip_match(&cf->forward_from_ip, s->base.ip))
        return false;
    c = lru_get(f->counts, s->base.ip, now);
    if (c == NULL)
        c = lru_put(f->counts, s->base.ip, now + (uint64_t)cf->fromip_interval * 1000, now, NULL);
    if (c->n >= cf->fromip_max) {
        log_sess(LOGLVL_INFO, s->base.sid,
                 "fromip-limit ip=%s messages=%ld fromip_max=%ld fromip_interval=%ld", s->base.ip,
                 c->n, cf->fromip_max, cf->fromip_interval);
        session_reply(s, 451, "4.7.1", "Error: too much mail from [%s], try again later",
                      s->base.ip);
        return true;
    }
    c->n++;
    return false;
}
