/*
 * extlookup - recipients looked up by the authent_process helpers. See extlookup.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "command.h"
#include "extauth.h"
#include "extlookup.h"
#include "log.h"
#include "xmem.h"

struct extlookup {
    struct smtp_session *s;
    struct extauth_req *req;
    enum smtp_verb verb;
    struct addr to;
    char addr[COMMAND_ADDR_MAX];
    char key[COMMAND_ADDR_MAX];
    int asked;
    extlookup_done done;
};

/* extlookup_end - the answer goes to the command; l is freed. */
static void
extlookup_end(struct extlookup *l, enum deliver_verdict v, struct deliver_route *dr,
              const char *temp)
{
    struct smtp_session *s = l->s;

    s->xlookup = NULL;
    l->done(s, l->verb, l->addr, v, dr, temp);
    free(l);
}

/* extlookup_ask - `lookup key`. */
static void extlookup_answer(void *arg, const struct extauth_answer *a);

static void
extlookup_ask(struct extlookup *l)
{
    char esc[600];

    l->asked++;
    if (log_get_level() >= LOGLVL_DEBUG) {
        log_escape(esc, sizeof(esc), l->key, strlen(l->key), 300);
        log_sess(LOGLVL_DEBUG, l->s->base.sid, "%s lookup=authent_process user=%s",
                 l->verb == SMTP_V_RCPT ? "rcpt" : "vrfy", esc);
    }
    l->req = extauth_lookup(l->s->d->srv.ext, l->key, extlookup_answer, l);
}

static void
extlookup_answer(void *arg, const struct extauth_answer *a)
{
    struct extlookup *l = arg;
    struct smtp_session *s = l->s;
    struct deliver_route dr;
    enum deliver_verdict v;
    bool miss = false;
    char esc[600];

    l->req = NULL;
    if (a->kind == EA_DEAD) {
        log_sess(LOGLVL_WARN, s->base.sid, "lookup temporary failure: authent_process: %s",
                 a->reason[0] ? a->reason : "-DEAD");
        memset(&dr, 0, sizeof(dr));
        extlookup_end(l, DV_UNKNOWN, &dr, "User lookup failed, try again later");
        return;
    }
    if (a->kind == EA_OK && !extauth_drop_allowed(s->base.cf, a->drop)) {
        log_escape(esc, sizeof(esc), a->drop, strlen(a->drop), 300);
        log_sess(LOGLVL_ERROR, s->base.sid,
                 "lookup refused: authent_process gave drop file %s outside drop_path and "
                 "mail_spool",
                 esc);
        memset(&dr, 0, sizeof(dr));
        extlookup_end(l, DV_UNKNOWN, &dr, "Mailbox location refused, try again later");
        return;
    }
    auth_db_ext_add(s->base.db, s->base.cf, l->key, a->kind == EA_OK ? a->drop : NULL, a->fwd);
    v = deliver_route_cached(s->base.cf, s->base.db, &l->to, &dr, &miss);
    if (!miss) {
        extlookup_end(l, v, &dr, NULL);
        return;
    }
    deliver_route_free(&dr);
    if (l->asked >= EXTLOOKUP_ASKS || strcmp(auth_db_ext_missed(), l->key) == 0) {
        memset(&dr, 0, sizeof(dr));
        extlookup_end(l, DV_UNKNOWN, &dr, "User lookup failed, try again later");
        return;
    }
    snprintf(l->key, sizeof(l->key), "%s", auth_db_ext_missed());
    extlookup_ask(l);
}

bool
extlookup_resolve(struct smtp_session *s, enum smtp_verb verb, const struct addr *to,
                  const char *addr, struct deliver_route *dr, enum deliver_verdict *v,
                  extlookup_done done)
{
    struct extlookup *l;
    bool miss = false;

    *v = deliver_route_cached(s->base.cf, s->base.db, to, dr, &miss);
    if (!miss || s->d->srv.ext == NULL)
        return true;
    deliver_route_free(dr);
    l = xcalloc(1, sizeof(*l));
    l->s = s;
    l->verb = verb;
    l->to = *to;
    l->done = done;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    snprintf(l->key, sizeof(l->key), "%s", auth_db_ext_missed());
    s->xlookup = l;
    sess_go_async(&s->base);
    extlookup_ask(l);
    return false;
}

void
extlookup_cancel(struct smtp_session *s)
{
    if (s->xlookup != NULL) {
        extauth_cancel(s->xlookup->req);
        free(s->xlookup);
        s->xlookup = NULL;
    }
}
