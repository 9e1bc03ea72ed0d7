/*
 * milter_change - the changes a filter asks at the end of the message (milter_int.h):
 * recorded as they come (header fields and the body into a struct milter_edits, the
 * recipients added and removed), then applied when the filter lets the message go on:
 * the text through milter_edit_apply, the recipients through the routing of a RCPT
 * (a Unix account not seen yet looked up on the thread pool, as for RCPT).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver.h"
#include "log.h"
#include "milter_int.h"
#include "session.h"
#include "xmem.h"

/* A recipient a filter added that only the pool may look up (a Unix account not seen
 * yet: NSS can block), as command_resolve does for RCPT. */
struct milter_change_lookup {
    uv_work_t w;
    struct milter_sess *ms;
    struct conf *cf;
    struct auth_db *db;
    struct addr a;
    char addr[COMMAND_ADDR_MAX];
    enum deliver_verdict v;
    struct deliver_route dr;
};

static bool milter_change_rcpts(struct milter_sess *ms, struct milter_conn *mc);

/* milter_change_added - the verdict on a recipient mc added: into the transaction if ok. */
static void
milter_change_added(struct milter_sess *ms, struct milter_conn *mc, const char *addr,
                    enum deliver_verdict v, struct deliver_route *dr)
{
    char esc[600];

    if (v == DV_REMOTE) {
        deliver_route_relay(dr);
        v = DV_OK;
    }
    log_escape(esc, sizeof(esc), addr, strlen(addr), 300);
    log_sess(v == DV_OK ? LOGLVL_INFO : LOGLVL_WARN, ms->s->base.sid,
             "milter=%s rcpt-add to=<%s> result=%s", mc->name, esc, v == DV_OK ? "ok" : "unknown");
    if (v == DV_OK)
        command_tx_add(ms->s, addr, dr, 0, NULL, NULL);
}

/* milter_change_lookup_work - on the pool: the lookup that may block. */
static void
milter_change_lookup_work(uv_work_t *w)
{
    struct milter_change_lookup *l = w->data;

    l->v = deliver_route(l->cf, l->db, &l->a, &l->dr);
}

/* milter_change_lookup_done - back on the loop: the recipient, then the filter's other changes
 * and the next filter (unless the session went away meanwhile). */
static void
milter_change_lookup_done(uv_work_t *w, int status)
{
    struct milter_change_lookup *l = w->data;
    struct milter_sess *ms = l->ms;

    ms->looking = false;
    if (ms->s != NULL) {
        struct milter_conn *mc = &ms->m[ms->cur];
        if (status != 0) /* cannot happen (no uv_cancel) */
            l->v = deliver_route(l->cf, l->db, &l->a, &l->dr);
        milter_change_added(ms, mc, l->addr, l->v, &l->dr);
        deliver_route_free(&l->dr);
        if (!milter_change_rcpts(ms, mc)) {
            milter_next(ms);
            milter_go(ms);
        }
    } else {
        deliver_route_free(&l->dr);
    }
    conf_unref(&l->cf);
    auth_db_unref(&l->db);
    free(l);
    milter_sess_maybe_free(ms);
}

/* milter_change_lookup_start - look a up on the pool; false if the pool refused (never). */
static bool
milter_change_lookup_start(struct milter_sess *ms, const struct addr *a, const char *addr)
{
    struct smtp_session *s = ms->s;
    struct milter_change_lookup *l = xcalloc(1, sizeof(*l));

    l->w.data = l;
    l->ms = ms;
    l->cf = conf_ref(s->base.cf);
    l->db = auth_db_ref(s->base.db);
    l->a = *a;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    if (uv_queue_work(s->d->srv.loop, &l->w, milter_change_lookup_work,
                      milter_change_lookup_done) != 0) {
        conf_unref(&l->cf);
        auth_db_unref(&l->db);
        free(l);
        return false;
    }
    log_sess(LOGLVL_DEBUG, s->base.sid, "milter rcpt-add lookup=pool");
    ms->looking = true;
    return true;
}

/* milter_change_rcpt_apply - the recipients a filter added and deleted, from ms->rc_next on;
 * true when one waits for a lookup on the pool (milter_change_lookup_done goes on from there). */
static bool
milter_change_rcpt_apply(struct milter_sess *ms, struct milter_conn *mc)
{
    struct smtp_session *s = ms->s;
    struct smtp_tx *tx = &s->tx;

    while (ms->rc_next < mc->nrc) {
        size_t i = ms->rc_next++;
        char buf[COMMAND_ADDR_MAX], why[100], esc[600];
        struct deliver_route dr;
        enum deliver_verdict v;
        struct addr a;
        bool miss = false;
        size_t l;
        snprintf(buf, sizeof(buf), "%s", mc->rc[i].addr);
        l = strlen(buf);
        if (l >= 2 && buf[0] == '<' && buf[l - 1] == '>') {
            buf[l - 1] = '\0';
            memmove(buf, buf + 1, l - 1);
        }
        log_escape(esc, sizeof(esc), buf, strlen(buf), 300);
        if (!mc->rc[i].add) {
            size_t k = 0;
            for (size_t j = 0; j < tx->nrcpt; j++) {
                if (strcasecmp(tx->rcpt[j].addr, buf) == 0) {
                    session_rcpt_drop(&tx->rcpt[j]);
                    continue;
                }
                tx->rcpt[k++] = tx->rcpt[j];
            }
            log_sess(LOGLVL_INFO, s->base.sid, "milter=%s rcpt-delete to=<%s> removed=%zu",
                     mc->name, esc, tx->nrcpt - k);
            tx->nrcpt = k;
            continue;
        }
        if (addr_parse_mailbox(buf, s->base.cf->main_domain, &a, why, sizeof(why)) < 0) {
            log_sess(LOGLVL_WARN, s->base.sid, "milter=%s rcpt-add to=<%s> result=bad-address",
                     mc->name, esc);
            continue;
        }
        if (auth_db_is_unix(s->base.db) || auth_db_is_external(s->base.db)) {
            v = deliver_route_cached(s->base.cf, s->base.db, &a, &dr, &miss);
            if (miss) {
                deliver_route_free(&dr);
                if (milter_change_lookup_start(ms, &a, buf))
                    return true;
                v = deliver_route(s->base.cf, s->base.db, &a, &dr); /* cannot happen */
            }
        } else {
            v = deliver_route(s->base.cf, s->base.db, &a, &dr);
        }
        milter_change_added(ms, mc, buf, v, &dr);
        deliver_route_free(&dr);
    }
    return false;
}

/* milter_change_clear - forget what mc asked to change. */
void
milter_change_clear(struct milter_conn *mc)
{
    milter_edits_clear(&mc->ed);
    for (size_t i = 0; i < mc->nrc; i++)
        free(mc->rc[i].addr);
    free(mc->rc);
    mc->rc = NULL;
    mc->nrc = 0;
    mc->quarantine = false;
}

/* milter_change_rcpts - mc's recipient changes from ms->rc_next on, then the rest; true
 * while one waits for the pool. */
static bool
milter_change_rcpts(struct milter_sess *ms, struct milter_conn *mc)
{
    if (milter_change_rcpt_apply(ms, mc))
        return true;
    ms->quarantine |= mc->quarantine;
    milter_change_clear(mc);
    return false;
}

/* milter_change_apply - mc let the message go on: its changes; true while a recipient it
 * added is looked up on the pool. */
bool
milter_change_apply(struct milter_sess *ms, struct milter_conn *mc)
{
    if (milter_edits_any(&mc->ed)) {
        size_t n;
        char *t =
            milter_edit_apply(ms->text, ms->len, &mc->ed, (mc->proto & SMFIP_HDR_LEADSPC) != 0, &n);
        log_sess(LOGLVL_INFO, ms->s->base.sid,
                 "milter=%s changed headers=%zu body=%s size=%zu->%zu", mc->name, mc->ed.n,
                 mc->ed.body_set ? "replaced" : "kept", ms->len, n);
        free(ms->text);
        ms->text = t;
        ms->len = n;
    }
    ms->rc_next = 0;
    return milter_change_rcpts(ms, mc);
}

/* milter_change_take - a change asked at the end of the message; false when malformed or not
 * granted at negotiation. */
bool
milter_change_take(struct milter_conn *mc, const struct milter_pkt *p)
{
    struct milter_hdr h;
    const char *str;
    char why[300];

    switch (p->cmd) {
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        if (!milter_pkt_header(p, &h) ||
            !(mc->actions & (p->cmd == SMFIR_CHGHEADER ? SMFIF_CHGHDRS : SMFIF_ADDHDRS)))
            return false;
        milter_edits_header(&mc->ed,
                            p->cmd == SMFIR_ADDHEADER   ? ME_ADD
                            : p->cmd == SMFIR_INSHEADER ? ME_INSERT
                                                        : ME_CHANGE,
                            h.index, h.name, h.value);
        return true;
    case SMFIR_REPLBODY:
        if (!(mc->actions & SMFIF_CHGBODY))
            return false;
        milter_edits_body(&mc->ed, (const char *)p->data, p->len);
        return true;
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
        if (!milter_pkt_str(p, &str) ||
            !(mc->actions & (p->cmd == SMFIR_ADDRCPT ? SMFIF_ADDRCPT : SMFIF_DELRCPT)))
            return false;
        mc->rc = xrealloc(mc->rc, (mc->nrc + 1) * sizeof(*mc->rc));
        mc->rc[mc->nrc++] = (struct milter_rchange){p->cmd == SMFIR_ADDRCPT, xstrdup(str)};
        return true;
    case SMFIR_QUARANTINE:
        if (!(mc->actions & SMFIF_QUARANTINE) || !milter_pkt_str(p, &str))
            return false;
        mc->quarantine = true;
        log_escape(why, sizeof(why), str, strlen(str), 200);
        log_sess(LOGLVL_INFO, mc->ms->s->base.sid, "milter=%s stage=eom result=quarantine why=%s",
                 mc->name, why);
        return true;
    }
    return false;
}
