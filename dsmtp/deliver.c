/*
 * deliver - recipient resolution and durable local delivery. See deliver.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "deliver.h"
#include "dotfwd.h"
#include "ldaq.h"
#include "dsnparam.h"
#include "file.h"
#include "hash.h"
#include "lists.h"
#include "log.h"
#include "logq.h"
#include "mboxq.h"
#include "outq.h"
#include "qfile.h"
#include "xheader.h"
#include "xmem.h"

/* deliver_local_user - fill t for the user (users-file entry or Unix account) of
 * local@domain, if any. miss != NULL: only what needs no lookup (auth_db_find_cached). */
static bool
deliver_local_user(const struct conf *cf, const struct auth_db *db, const char *local,
                   const char *domain, struct deliver_target *t, bool *miss)
{
    const struct auth_user *u;

    if (db == NULL)
        return false;
    u = miss != NULL ? auth_db_find_cached(db, cf, local, domain, miss)
                     : auth_db_find_answer(db, cf, local, domain, &t->unanswered);
    if (u == NULL)
        return false;
    if (auth_mailbox_path(db, cf, u, t->mailbox, sizeof(t->mailbox)) < 0)
        return false;
    if (u->domain != NULL)
        snprintf(t->user, sizeof(t->user), "%s@%s", u->name, u->domain);
    else
        snprintf(t->user, sizeof(t->user), "%s", u->name);
    snprintf(t->fwd, sizeof(t->fwd), "%s", u->fwd != NULL ? u->fwd : "");
    return true;
}

/* deliver_is_role - the role addresses a local domain always accepts (RFC 2142, 5321). */
bool
deliver_is_role(const char *local)
{
    static const char *const roles[] = {"postmaster", "root", "mailer-daemon", "abuse"};

    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcasecmp(local, roles[i]) == 0)
            return true;
    return false;
}

/* deliver_role - where a role address without a user of its name goes: sysadmin (a local
 * user, or relayed to another domain), else the user postmaster, else the queue. */
static enum deliver_kind
deliver_role(const struct conf *cf, const struct auth_db *db, const char *domain,
             struct deliver_target *t, bool *miss)
{
    const char *sa = cf->sysadmin;
    char local[ADDR_LOCAL_MAX * 2 + 3], err[100];
    struct addr a;

    if (sa == NULL || sa[0] == '\0') {
        if (deliver_local_user(cf, db, "postmaster", domain, t, miss))
            return t->kind = DK_LOCAL;
        return t->kind = DK_POSTMASTER;
    }
    if (addr_parse_mailbox(sa, cf->main_domain, &a, err, sizeof(err)) < 0)
        return t->kind = DK_POSTMASTER; /* not an address: queued, as for a missing user */
    if (!conf_is_local_domain(cf, a.domain)) {
        addr_format(&a, t->addr, sizeof(t->addr));
        return t->kind = DK_RELAY;
    }
    addr_local_unquoted(&a, false, local, sizeof(local));
    if (deliver_local_user(cf, db, local, a.domain, t, miss))
        return t->kind = DK_LOCAL;
    return t->kind = DK_POSTMASTER;
}

/* deliver_list - local@domain is an address of a list of lists.dat: t is the list spool
 * (DESIGN 4 "List spool"): the maildir spool_dir/dlist/LIST/ROLE, which dlist reads. */
static bool
deliver_list(const struct conf *cf, const char *local, const char *domain, struct deliver_target *t)
{
    static const char *const roles[] = {[LISTS_ROLE_POST] = "post",
                                        [LISTS_ROLE_REQUEST] = "request",
                                        [LISTS_ROLE_OWNER] = "owner",
                                        [LISTS_ROLE_BOUNCES] = "bounces"};
    const struct lists_def *def;
    enum lists_role role;
    int n;

    if (cf->lists == NULL)
        return false;
    role = lists_role(cf->lists, local, domain, &def, NULL);
    if (role == LISTS_NONE)
        return false;
    n = snprintf(t->mailbox, sizeof(t->mailbox), "%s/%s/%s/%s", cf->spool_dir, DELIVER_LIST_DIR,
                 def->name, roles[role]);
    snprintf(t->user, sizeof(t->user), "%s@%s", def->name, cf->lists->domain);
    return n > 0 && (size_t)n < sizeof(t->mailbox);
}

/* deliver_is_list_spool - mailbox is in the list spool. */
bool
deliver_is_list_spool(const struct conf *cf, const char *mailbox)
{
    size_t n = strlen(cf->spool_dir);

    return strncmp(mailbox, cf->spool_dir, n) == 0 && mailbox[n] == '/' &&
           strncmp(mailbox + n + 1, DELIVER_LIST_DIR "/", sizeof(DELIVER_LIST_DIR)) == 0;
}

/* deliver_format - the format of mailbox: maildir for the list spool, else mailbox_format;
 * *drop_max its limit (none for the list spool). */
int
deliver_format(const struct conf *cf, const char *mailbox, unsigned long long *drop_max)
{
    if (deliver_is_list_spool(cf, mailbox)) {
        *drop_max = 0;
        return MBOX_FORMAT_MAILDIR;
    }
    *drop_max = cf->drop_max;
    return cf->mailbox_format;
}

/* deliver_resolve_mode - local user, role address, unknown or remote (miss: see
 * deliver_local_user). */
static enum deliver_kind
deliver_resolve_mode(const struct conf *cf, const struct auth_db *db, const char *local,
                     const char *domain, struct deliver_target *t, bool *miss)
{
    memset(t, 0, sizeof(*t));
    if (deliver_list(cf, local, domain, t))
        return t->kind = DK_LOCAL;
    if (!conf_is_local_domain(cf, domain))
        return t->kind = DK_REMOTE;
    if (deliver_local_user(cf, db, local, domain, t, miss))
        return t->kind = DK_LOCAL;
    if (t->unanswered) /* the helper did not say: queued, retried */
        return t->kind = DK_POSTMASTER;
    if (deliver_is_role(local))
        return deliver_role(cf, db, domain, t, miss);
    return t->kind = DK_UNKNOWN;
}

/* deliver_resolve - local user, role address, unknown or remote. */
enum deliver_kind
deliver_resolve(const struct conf *cf, const struct auth_db *db, const char *local,
                const char *domain, struct deliver_target *t)
{
    return deliver_resolve_mode(cf, db, local, domain, t, NULL);
}

/* What deliver_is_user needs. */
struct deliver_ask {
    const struct conf *cf;
    const struct auth_db *db;
    bool *miss; /* NULL, or: answer from what needs no lookup */
    struct deliver_target t;
};

/* deliver_is_user - route_expand's question: local@domain is a user or a role address. */
static bool
deliver_is_user(void *arg, const char *local, const char *domain)
{
    struct deliver_ask *q = arg;
    enum deliver_kind k = deliver_resolve_mode(q->cf, q->db, local, domain, &q->t, q->miss);

    return k == DK_LOCAL || k == DK_POSTMASTER || k == DK_RELAY;
}

/* deliver_route_add - one final address and its mailbox into r (a role address going to
 * a sysadmin of another domain: that address instead). */
static void
deliver_route_add(struct deliver_route *r, const char *addr, const struct deliver_target *t)
{
    r->dest = xrealloc(r->dest, (r->n + 1) * sizeof(*r->dest));
    r->dest[r->n].addr = xstrdup(t->kind == DK_RELAY ? t->addr : addr);
    r->dest[r->n].mailbox = t->kind == DK_LOCAL ? xstrdup(t->mailbox) : NULL;
    r->dest[r->n].relay = t->kind == DK_RELAY || t->kind == DK_REMOTE;
    r->dest[r->n].lda = NULL;
    r->n++;
}

/* deliver_route_add_lda - an alias file's program or file destination lda ("|command",
 * "/path") of the recipient addr into r. */
static void
deliver_route_add_lda(struct deliver_route *r, const char *addr, const char *lda)
{
    r->dest = xrealloc(r->dest, (r->n + 1) * sizeof(*r->dest));
    r->dest[r->n] = (struct deliver_dest){xstrdup(addr), NULL, false, xstrdup(lda)};
    r->n++;
}

/* deliver_route_relay - a DV_REMOTE recipient the client may relay to: it becomes r's
 * one destination, to be relayed (it goes to the queue, and outbound delivery). */
void
deliver_route_relay(struct deliver_route *r)
{
    const struct deliver_target t = {.kind = DK_REMOTE};

    for (size_t i = 0; i < r->n; i++) {
        free(r->dest[i].addr);
        free(r->dest[i].mailbox);
        free(r->dest[i].lda);
    }
    r->n = 0;
    r->verdict = DV_OK;
    deliver_route_add(r, r->why, &t);
}

/* deliver_route_user - a local user's mailbox, or (authent_method external) where its
 * fwd="..." list sends it: each address resolved (their own fwd lists are not followed:
 * no loops), "$user" the user's own mailbox; bad addresses are skipped, and a list that
 * leaves nothing keeps the mail here. */
static void
deliver_route_user(const struct conf *cf, const struct auth_db *db, struct deliver_route *r,
                   const char *addr, const struct deliver_target *user, bool *miss)
{
    char list[sizeof(user->fwd)], *save = NULL;
    char local[ADDR_LOCAL_MAX * 2 + 3], canon[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
    struct deliver_target *t;
    size_t before = r->n;

    if (user->kind != DK_LOCAL || user->fwd[0] == '\0') {
        deliver_route_add(r, addr, user);
        return;
    }
    t = xmalloc(sizeof(*t));
    snprintf(list, sizeof(list), "%s", user->fwd);
    for (char *w = strtok_r(list, ", \t", &save); w != NULL && r->verdict == DV_OK;
         w = strtok_r(NULL, ", \t", &save)) {
        struct addr d;
        char err[100];
        if (r->n - before >= ROUTE_EXPAND_MAX)
            break;
        if (strcmp(w, "$user") == 0) {
            deliver_route_add(r, addr, user);
            continue;
        }
        if (addr_parse_mailbox(w, cf->main_domain, &d, err, sizeof(err)) < 0)
            continue;
        addr_format(&d, canon, sizeof(canon));
        addr_local_unquoted(&d, false, local, sizeof(local));
        if (deliver_resolve_mode(cf, db, local, d.domain, t, miss) == DK_UNKNOWN) {
            r->verdict = DV_UNKNOWN;
            snprintf(r->why, sizeof(r->why), "%s", canon);
            break;
        }
        deliver_route_add(r, canon, t);
    }
    if (r->verdict == DV_OK && r->n == before)
        deliver_route_add(r, addr, user);
    free(t);
}

/* deliver_route_mode - forwards first, then every final address resolved (miss: see
 * deliver_local_user). */
static enum deliver_verdict
deliver_route_mode(const struct conf *cf, const struct auth_db *db, const struct addr *a,
                   struct deliver_route *r, bool *miss)
{
    struct deliver_ask *q = xmalloc(sizeof(*q));
    struct route_expansion *x = xmalloc(sizeof(*x));
    char local[ADDR_LOCAL_MAX * 2 + 3], addr[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];

    memset(r, 0, sizeof(*r));
    q->cf = cf;
    q->db = db;
    q->miss = miss;
    addr_local_unquoted(a, false, local, sizeof(local));
    route_expand_aliases(cf->forward, cf->aliases, local, a->domain, deliver_is_user, q, x);
    r->fwd = x->status;
    switch (x->status) {
    case ROUTE_NONE:
        addr_format(a, addr, sizeof(addr));
        switch (deliver_resolve_mode(cf, db, local, a->domain, &q->t, miss)) {
        case DK_LOCAL:
        case DK_POSTMASTER:
        case DK_RELAY:
            deliver_route_user(cf, db, r, addr, &q->t, miss);
            break;
        case DK_UNKNOWN:
            r->verdict = DV_UNKNOWN;
            snprintf(r->why, sizeof(r->why), "%s", addr);
            break;
        case DK_REMOTE:
            r->verdict = DV_REMOTE;
            snprintf(r->why, sizeof(r->why), "%s", addr);
            break;
        }
        break;
    case ROUTE_FORWARDED:
        for (size_t i = 0; i < x->n && r->verdict == DV_OK; i++) {
            struct addr d;
            char err[100];
            if (x->dest[i][0] == ROUTE_D_PROGRAM || x->dest[i][0] == ROUTE_D_FILE) {
                addr_format(a, addr, sizeof(addr));
                deliver_route_add_lda(r, addr, x->dest[i] + 1);
                continue;
            }
            if (addr_parse_mailbox(x->dest[i], NULL, &d, err, sizeof(err)) < 0)
                continue; /* cannot happen: route.c stores parsed addresses */
            addr_local_unquoted(&d, false, local, sizeof(local));
            switch (deliver_resolve_mode(cf, db, local, d.domain, &q->t, miss)) {
            case DK_LOCAL:
            case DK_POSTMASTER:
            case DK_RELAY:
            case DK_REMOTE: /* a forward to another domain: relayed */
                deliver_route_user(cf, db, r, x->dest[i], &q->t, miss);
                break;
            case DK_UNKNOWN:
                r->verdict = DV_UNKNOWN;
                snprintf(r->why, sizeof(r->why), "%s", x->dest[i]);
                break;
            }
        }
        break;
    case ROUTE_LOOP:
    case ROUTE_DEPTH:
    case ROUTE_TOO_MANY:
        r->verdict = DV_LOOP;
        snprintf(r->why, sizeof(r->why), "%s", x->chain);
        break;
    }
    if (r->verdict != DV_OK) {
        deliver_route_free(r);
        r->n = 0;
    }
    free(x);
    free(q);
    return r->verdict;
}

/* deliver_route - forwards first, then every final address resolved. */
enum deliver_verdict
deliver_route(const struct conf *cf, const struct auth_db *db, const struct addr *a,
              struct deliver_route *r)
{
    return deliver_route_mode(cf, db, a, r, NULL);
}

/* deliver_route_cached - deliver_route without lookups, see deliver.h. */
enum deliver_verdict
deliver_route_cached(const struct conf *cf, const struct auth_db *db, const struct addr *a,
                     struct deliver_route *r, bool *miss)
{
    *miss = false;
    return deliver_route_mode(cf, db, a, r, miss);
}

/* deliver_route_free - the destinations of r. */
void
deliver_route_free(struct deliver_route *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->dest[i].addr);
        free(r->dest[i].mailbox);
        free(r->dest[i].lda);
    }
    free(r->dest);
    r->dest = NULL;
    r->n = 0;
}

/* deliver_node - the name in dotlocks and UIDs: lock_id, else the host name. */
void
deliver_node(const struct conf *cf, char *buf, size_t len)
{
    if (cf->lock_id != NULL && cf->lock_id[0] != '\0') {
        snprintf(buf, len, "%s", cf->lock_id);
        return;
    }
    file_hostname(buf, len);
}

/* deliver_one - Return-Path + text into one mailbox (blocking). */
enum drop_result
deliver_one(const struct conf *cf, const char *mailbox, const char *sender, const char *head,
            const char *text, size_t len, char *err, size_t errlen)
{
    char hdr[600 + XHEADER_MAX], node[256];
    struct drop_msg m;
    unsigned long long drop_max;
    int fmt = deliver_format(cf, mailbox, &drop_max);
    int n;

    deliver_node(cf, node, sizeof(node));
    n = snprintf(hdr, sizeof(hdr), "Return-Path: <%s>\n%s", sender, head != NULL ? head : "");
    if (n < 0 || (size_t)n >= sizeof(hdr)) {
        snprintf(err, errlen, "sender too long");
        return DROP_PERM;
    }
    m.sender = sender;
    m.headers = hdr;
    m.headers_len = (size_t)n;
    m.text = text;
    m.text_len = len;
    return drop_deliver(mailbox, fmt, &m, cf->lock_timeout, drop_max, node, NULL, err, errlen);
}

/* deliver_next_try - exponential back-off from queue_retry up to queue_retry_max. */
time_t
deliver_next_try(const struct conf *cf, time_t now, int attempts)
{
    long cap = cf->queue_retry > cf->queue_retry_max ? cf->queue_retry : cf->queue_retry_max;
    long d = cf->queue_retry;

    for (int i = 1; i < attempts && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return now + d;
}

/* deliver_queue_write - one queue file with the pending recipients (blocking). */
int
deliver_queue_write(const struct conf *cf, const char *id, const char *sender, const char *origin,
                    const struct deliver_dsn *dsn, time_t arrival, const struct deliver_qrcpt *r,
                    size_t n, const char *text, size_t len, struct outq *oq)
{
    struct qfile q;
    int rc, saved;
    time_t now = time(NULL);

    memset(&q, 0, sizeof(q));
    snprintf(q.id, sizeof(q.id), "%s", id);
    q.arrival = arrival;
    q.sender = xstrdup(sender);
    q.origin = xstrdup(origin);
    if (dsn != NULL) {
        q.ret = dsn->ret;
        q.envid = dsn->envid != NULL ? xstrdup(dsn->envid) : NULL;
        if (dsn->requiretls)
            q.flags |= QF_REQUIRETLS;
        if (dsn->verp != NULL)
            snprintf(q.verp, sizeof(q.verp), "%s", dsn->verp);
    }
    for (size_t i = 0; i < n; i++) {
        qfile_add_rcpt(&q, r[i].addr);
        q.rcpt[i].notify = r[i].notify;
        q.rcpt[i].orcpt = r[i].orcpt != NULL ? xstrdup(r[i].orcpt) : NULL;
        q.rcpt[i].xheader = r[i].xheader != NULL ? xstrdup(r[i].xheader) : NULL;
        q.rcpt[i].attempts = r[i].attempts;
        q.rcpt[i].next_try =
            r[i].attempts > 0 && !r[i].due_now ? deliver_next_try(cf, now, r[i].attempts) : 0;
        q.rcpt[i].last_error = r[i].last_error ? xstrdup(r[i].last_error) : NULL;
    }
    q.text = (char *)text; /* borrowed: cleared before qfile_free */
    q.text_len = len;
    rc = deliver_queue_save(cf->spool_dir, &q);
    saved = errno;
    if (rc == 0 && oq != NULL) {
        char *path = xasprintf("%s/queue/%s", cf->spool_dir, q.id);
        rc = outq_offer(oq, cf, path, &q) ? 1 : 0;
        free(path);
    }
    q.text = NULL;
    q.text_len = 0;
    qfile_free(&q);
    errno = saved;
    return rc;
}

/* deliver_queue_save - q into spool/queue through spool/tmp. */
int
deliver_queue_save(const char *spool, struct qfile *q)
{
    char *dir = xasprintf("%s/queue", spool), *tmp = xasprintf("%s/tmp", spool);
    int rc = qfile_write(dir, tmp, q, 0640), saved = errno;

    free(dir);
    free(tmp);
    errno = saved;
    return rc;
}

/* deliver_queue_settle - remove a file with nothing pending, else rewrite it if changed. */
void
deliver_queue_settle(const char *spool, struct qfile *q, const char *path, bool changed)
{
    bool pending = false;

    for (size_t i = 0; i < q->nrcpt && !pending; i++)
        pending = q->rcpt[i].state == QR_PENDING;
    if (!pending) {
        /* no fsync of the directory: a removal lost in a crash only sends again what was
         * done (at least once), as Postfix; it loses nothing */
        if (unlink(path) < 0 && errno != ENOENT)
            log_errore("queue: cannot remove %s", path);
        log_info("queue id=%s result=done", q->id);
    } else if (changed && deliver_queue_save(spool, q) < 0) {
        log_errore("queue: cannot rewrite %s", path);
    }
}

/* One recipient of a batch. */
struct deliver_rcpt {
    char *addr;
    char *mailbox; /* NULL: straight to the queue */
    int notify;    /* DSN */
    char *orcpt;
    char *xheader; /* its own header fields (XHEADER, xheader.h: xtext), or NULL */
    int dup_of;    /* index of the first entry with the same mailbox, or -1 */
    bool dotfwd;   /* its user's forward file applies (deliver_set_dotfwd) */
    bool settled;  /* the forward file decided its result: no mailbox job */
    char *lda;     /* an alias file's "|command" or "/path" (deliver_set_lda), or NULL */
    bool ldaq;     /* a program's: queued for ldaq.h, not delivered while the client waits */
    enum drop_result result;
    const char *status; /* RFC 3463 of a failure for good; NULL: 5.2.0 */
    char err[200];
};

/* One mailbox delivery of a batch, queued behind its mailbox (mboxq). */
struct deliver_job {
    struct mboxq_req req;
    struct deliver_batch *b;
    size_t i;
    char *sender; /* the VERP sender of its recipient, or NULL */
    char *head;   /* its recipient's own header fields, decoded (XHEADER), or NULL */
};

struct deliver_batch {
    struct conf *cf;
    char *id, *sender, *origin;
    char *text;
    size_t len;
    time_t arrival;
    enum dsn_ret ret; /* DSN */
    char *envid;
    bool requiretls;
    char verp[3];    /* XVERP delimiters, "" for none */
    size_t nsuccess; /* delivered recipients that asked for a success report */
    struct deliver_rcpt *r;
    size_t n, alloc;
    size_t *slot; /* deliver_index: recipients by their duplicate key (index + 1; 0 empty) */
    size_t nslot; /* a power of two, at least twice n */
    size_t running;
    uv_loop_t *loop;
    uv_work_t qwork;
    uv_work_t fwork; /* the forward files (dotfwd.h) */
    int qrc, qerrno;
    bool report;     /* recipients failed for good while others were taken: bounce them */
    struct outq *oq; /* the queue file goes to it (deliver_offer_to) */
    long *counter;
    deliver_cb cb;
    void *arg;
    struct deliver_outcome out;
};

/* deliver_new - an empty batch owning text. */
struct deliver_batch *
deliver_new(struct conf *cf, const char *id, const char *sender, const char *origin,
            const struct deliver_dsn *dsn, char *text, size_t len)
{
    struct deliver_batch *b = xcalloc(1, sizeof(*b));

    if (dsn != NULL) {
        b->ret = dsn->ret;
        b->envid = dsn->envid != NULL ? xstrdup(dsn->envid) : NULL;
        b->requiretls = dsn->requiretls;
        if (dsn->verp != NULL)
            snprintf(b->verp, sizeof(b->verp), "%s", dsn->verp);
    }
    b->cf = conf_ref(cf);
    b->id = xstrdup(id);
    b->sender = xstrdup(sender);
    b->origin = xstrdup(origin);
    b->text = text;
    b->len = len;
    b->arrival = time(NULL);
    return b;
}

/* deliver_key - the hash of what makes two recipients one delivery (deliver_same):
 * the mailbox (and with allowdup the ORCPT or address), or the address of one without a
 * mailbox; ASCII case folded where deliver_same ignores it. */
static uint64_t
deliver_key(const struct deliver_batch *b, const char *addr, const char *mailbox, const char *orcpt)
{
    if (mailbox == NULL)
        return hash_str_ci(addr);
    return hash_str(mailbox) ^ (b->cf->allowdup ? hash_str_ci(orcpt ? orcpt : addr) : 0);
}

/* deliver_same - o (an earlier recipient of the batch) is the delivery of the new one:
 * allowdup (DMail's, default false here): two recipients that end in one mailbox (two
 * aliases of one user: ORCPT tells them apart) get a copy each; false: one copy. One
 * address given twice, one copy. */
static bool
deliver_same(const struct deliver_batch *b, const struct deliver_rcpt *o, const char *addr,
             const char *mailbox, const char *orcpt)
{
    if (o->lda != NULL || o->dup_of >= 0)
        return false;
    if (mailbox && b->cf->allowdup &&
        strcasecmp(o->orcpt ? o->orcpt : o->addr, orcpt ? orcpt : addr) != 0)
        return false;
    return (mailbox && o->mailbox && strcmp(o->mailbox, mailbox) == 0) ||
           (!mailbox && !o->mailbox && strcasecmp(o->addr, addr) == 0);
}

/* deliver_index - the earlier recipient that is the delivery of recipient i, or -1, and
 * i entered in the index when there is none: one hash probe a recipient, so a post to
 * 100,000 members is not 5 billion comparisons on the loop. */
static int
deliver_index(struct deliver_batch *b, size_t i)
{
    const struct deliver_rcpt *r = &b->r[i];
    uint64_t h = deliver_key(b, r->addr, r->mailbox, r->orcpt);
    size_t k;

    if (b->n * 2 >= b->nslot) { /* grow: every first recipient again */
        size_t n = b->nslot ? b->nslot * 2 : 16;
        while (n <= b->n * 2)
            n *= 2;
        free(b->slot);
        b->slot = xcalloc(n, sizeof(*b->slot));
        b->nslot = n;
        for (size_t j = 0; j < i; j++) {
            const struct deliver_rcpt *o = &b->r[j];
            if (o->dup_of >= 0)
                continue;
            k = deliver_key(b, o->addr, o->mailbox, o->orcpt) & (n - 1);
            while (b->slot[k] != 0)
                k = (k + 1) & (n - 1);
            b->slot[k] = j + 1;
        }
    }
    for (k = h & (b->nslot - 1); b->slot[k] != 0; k = (k + 1) & (b->nslot - 1))
        if (deliver_same(b, &b->r[b->slot[k] - 1], r->addr, r->mailbox, r->orcpt))
            return (int)(b->slot[k] - 1);
    b->slot[k] = i + 1;
    return -1;
}

/* deliver_add - one recipient; a mailbox already in the batch is written once for the
 * same address, and once in all unless allowdup. */
void
deliver_add(struct deliver_batch *b, const char *addr, const char *mailbox, const char *why,
            int notify, const char *orcpt)
{
    struct deliver_rcpt *r;

    if (b->n == b->alloc) {
        b->alloc = b->alloc ? b->alloc * 2 : 8;
        b->r = xrealloc(b->r, b->alloc * sizeof(*b->r));
    }
    r = &b->r[b->n];
    memset(r, 0, sizeof(*r));
    r->addr = xstrdup(addr);
    r->mailbox = mailbox ? xstrdup(mailbox) : NULL;
    r->notify = notify;
    r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
    r->dup_of = -1;
    r->result = mailbox ? DROP_OK : DROP_TEMP;
    if (why != NULL)
        snprintf(r->err, sizeof(r->err), "%s", why);
    r->dup_of = deliver_index(b, b->n);
    b->n++;
}

/* deliver_set_dotfwd - the recipient added last: its forward file applies. */
void
deliver_set_dotfwd(struct deliver_batch *b)
{
    if (b->n > 0 && b->r[b->n - 1].mailbox != NULL &&
        !deliver_is_list_spool(b->cf, b->r[b->n - 1].mailbox))
        b->r[b->n - 1].dotfwd = true;
}

/* deliver_set_xheader - the recipient added last has header fields of its own. */
void
deliver_set_xheader(struct deliver_batch *b, const char *xheader)
{
    if (b->n > 0 && xheader != NULL && xheader[0] != '\0') {
        free(b->r[b->n - 1].xheader);
        b->r[b->n - 1].xheader = xstrdup(xheader);
    }
}

/* deliver_set_lda - the recipient added last goes to an alias file's program or file lda:
 * the local delivery agent's, once per recipient and destination. */
void
deliver_set_lda(struct deliver_batch *b, const char *lda)
{
    struct deliver_rcpt *r = &b->r[b->n - 1];

    r->lda = xstrdup(lda);
    r->dup_of = -1;
    for (size_t i = 0; i + 1 < b->n; i++)
        if (b->r[i].lda != NULL && b->r[i].dup_of < 0 && strcmp(b->r[i].lda, lda) == 0 &&
            strcasecmp(b->r[i].addr, r->addr) == 0) {
            r->dup_of = (int)i;
            break;
        }
}

/* deliver_free - the batch is done and nobody needs it. */
static void
deliver_free(struct deliver_batch *b)
{
    if (b->counter != NULL)
        (*b->counter)--;
    for (size_t i = 0; i < b->n; i++) {
        free(b->r[i].addr);
        free(b->r[i].mailbox);
        free(b->r[i].orcpt);
        free(b->r[i].xheader);
        free(b->r[i].lda);
    }
    free(b->r);
    free(b->slot);
    free(b->envid);
    free(b->text);
    free(b->id);
    free(b->sender);
    free(b->origin);
    conf_unref(&b->cf);
    free(b);
}

/* deliver_finish - report the outcome (if anybody listens) and free. */
static void
deliver_finish(struct deliver_batch *b)
{
    b->out.id = b->id;
    if (b->cb != NULL)
        b->cb(b->arg, &b->out);
    deliver_free(b);
}

/* deliver_result - what recipient i came to (a duplicate shares its first's result). */
static enum drop_result
deliver_result(const struct deliver_batch *b, size_t i)
{
    return b->r[i].dup_of >= 0 ? b->r[b->r[i].dup_of].result : b->r[i].result;
}

/* deliver_success - pool: the success report for the recipients delivered that asked for
 * one (NOTIFY=SUCCESS); a failure is logged by bounce.c, the deliveries stand. */
static void
deliver_success(struct deliver_batch *b)
{
    struct bounce_rcpt *s = xcalloc(b->n, sizeof(*s));
    struct bounce_msg bm = {b->id,  b->sender, b->origin, b->arrival, b->text,
                            b->len, b->ret,    b->envid,  b->verp};
    size_t n = 0;

    for (size_t i = 0; i < b->n; i++) {
        const struct deliver_rcpt *r = &b->r[i];
        if (r->mailbox == NULL || deliver_result(b, i) != DROP_OK ||
            !dsnparam_wants(r->notify, DSN_NOTIFY_SUCCESS))
            continue;
        s[n++] = (struct bounce_rcpt){.addr = r->addr,
                                      .status = "2.0.0",
                                      .diag = "delivered to the mailbox",
                                      .attempts = 1,
                                      .notify = r->notify,
                                      .orcpt = r->orcpt};
    }
    bounce_success(b->cf, &bm, s, n, DSN_DELIVERED);
    free(s);
}

/* deliver_report - pool: the report on the recipients that failed for good; false when
 * it could not be queued (they go into the queue file then, *nq more). */
static bool
deliver_report(struct deliver_batch *b, struct deliver_qrcpt *q, size_t *nq)
{
    struct bounce_rcpt *f = xcalloc(b->n, sizeof(*f));
    struct bounce_msg bm = {b->id,  b->sender, b->origin, b->arrival, b->text,
                            b->len, b->ret,    b->envid,  b->verp};
    size_t nf = 0;
    bool ok;

    for (size_t i = 0; i < b->n; i++) {
        const struct deliver_rcpt *r = &b->r[i];
        if (r->dup_of < 0 && r->result == DROP_PERM)
            f[nf++] = (struct bounce_rcpt){.addr = r->addr,
                                           .status = r->status ? r->status : "5.2.0",
                                           .diag = r->err,
                                           .attempts = 1,
                                           .notify = r->notify,
                                           .orcpt = r->orcpt};
    }
    ok = bounce_send(b->cf, &bm, f, nf) >= 0;
    for (size_t k = 0; !ok && k < nf; k++) /* the queue runner tries and reports again */
        q[(*nq)++] =
            (struct deliver_qrcpt){f[k].addr, 1, f[k].diag, f[k].notify, f[k].orcpt, false, NULL};
    free(f);
    return ok;
}

/* deliver_qwork - pool: report the permanent failures, queue the temporary ones, report
 * the successes asked for. */
static void
deliver_qwork(uv_work_t *w)
{
    struct deliver_batch *b = w->data;
    struct deliver_qrcpt *q = xcalloc(b->n, sizeof(*q)), *lq = xcalloc(b->n, sizeof(*lq));
    struct deliver_dsn dsn = {b->ret, b->envid, b->requiretls, b->verp};
    size_t nq = 0, nlq = 0;

    for (size_t i = 0; i < b->n; i++) {
        const struct deliver_rcpt *r = &b->r[i];
        if (r->dup_of >= 0 || r->result != DROP_TEMP)
            continue;
        if (r->ldaq) {          /* due at once, in a file of program deliveries (ldaq.h) */
            bool known = false; /* an address once, however many programs and files */
            for (size_t k = 0; k < nlq && !known; k++)
                known = strcasecmp(lq[k].addr, r->addr) == 0;
            /* an alias's attempt 1: its addresses had their copies (queue.c queue_forward) */
            if (!known)
                lq[nlq++] = (struct deliver_qrcpt){
                    r->addr, r->lda != NULL ? 1 : 0, NULL, r->notify, r->orcpt, true, NULL};
            continue;
        }
        q[nq].addr = r->addr;
        q[nq].attempts = r->mailbox || r->lda ? 1 : 0;
        q[nq].last_error = r->err[0] ? r->err : NULL;
        q[nq].notify = r->notify;
        q[nq].orcpt = r->orcpt;
        q[nq].xheader = r->xheader;
        nq++;
    }
    if (b->report) {
        size_t before = nq;
        if (deliver_report(b, q, &nq))
            b->out.bounced = b->out.failed;
        b->out.queued += (int)(nq - before);
    }
    b->qrc = 0;
    if (nlq > 0) {
        char name[160];
        snprintf(name, sizeof(name), "%s%s", b->id, LDAQ_SUFFIX);
        b->qrc = deliver_queue_write(b->cf, name, b->sender, b->origin, &dsn, b->arrival, lq, nlq,
                                     b->text, b->len, NULL);
        b->qerrno = errno;
    }
    if (nq > 0 && b->qrc >= 0) {
        b->qrc = deliver_queue_write(b->cf, b->id, b->sender, b->origin, &dsn, b->arrival, q, nq,
                                     b->text, b->len, b->oq);
        b->qerrno = errno;
        b->out.offered = b->qrc == 1;
    }
    free(q);
    free(lq);
    if (b->nsuccess > 0)
        deliver_success(b);
}

/* deliver_qdone - loop: the queue file is written (or not). */
static void
deliver_qdone(uv_work_t *w, int status)
{
    struct deliver_batch *b = w->data;

    if (status < 0 || b->qrc < 0) {
        char q[300], *e = strerror(status < 0 ? ECANCELED : b->qerrno);
        log_error("deliver id=%s result=queue-write-failed error=%s", b->id,
                  logq_text(q, sizeof(q), e, strlen(e), 200));
        b->out.qfile_failed = b->out.queued > 0;
    } else if (b->out.queued > 0) {
        log_info("deliver id=%s result=queued rcpts=%d", b->id, b->out.queued);
    }
    deliver_finish(b);
}

/* deliver_alldone - every mailbox job ended: count, then queue what failed for now and
 * report what failed for good (unless nothing was taken: the client is told) and the
 * successes asked for. */
static void
deliver_alldone(struct deliver_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct deliver_rcpt *r = &b->r[i];
        if (r->mailbox != NULL && deliver_result(b, i) == DROP_OK &&
            dsnparam_wants(r->notify, DSN_NOTIFY_SUCCESS))
            b->nsuccess++;
        if (r->dup_of >= 0)
            continue;
        if (r->result == DROP_OK)
            b->out.delivered++;
        else if (r->result == DROP_TEMP)
            b->out.queued++;
        else
            b->out.failed++;
    }
    b->report = b->out.failed > 0 && (b->out.delivered > 0 || b->out.queued > 0);
    if (b->out.queued == 0 && !b->report && b->nsuccess == 0) {
        deliver_finish(b);
        return;
    }
    b->qwork.data = b;
    if (uv_queue_work(b->loop, &b->qwork, deliver_qwork, deliver_qdone) < 0) {
        b->out.qfile_failed = b->out.queued > 0;
        deliver_finish(b);
    }
}

/* deliver_done - loop: one mailbox finished (its batch is fsynced, or it failed). */
static void
deliver_done(struct mboxq_req *req)
{
    struct deliver_job *j = req->arg;
    struct deliver_batch *b = j->b;
    struct deliver_rcpt *r = &b->r[j->i];

    r->result = req->result;
    if (r->result != DROP_OK)
        snprintf(r->err, sizeof(r->err), "%s", req->err);
    if (r->result == DROP_OK) {
        log_info("deliver id=%s to=<%s> mailbox=%s result=ok", b->id, r->addr, r->mailbox);
    } else {
        char q[300];
        log_warn("deliver id=%s to=<%s> mailbox=%s result=%s error=%s", b->id, r->addr, r->mailbox,
                 r->result == DROP_TEMP ? "deferred" : "failed",
                 logq_text(q, sizeof(q), r->err, strlen(r->err), 200));
    }
    free(j->sender);
    free(j->head);
    free(j);
    if (--b->running == 0)
        deliver_alldone(b);
}

/* deliver_submit - loop: one mailbox delivery per distinct mailbox not settled by its
 * forward file, each queued behind the deliveries already running for that mailbox (mboxq:
 * group commit). */
static void
deliver_submit(struct deliver_batch *b)
{
    b->running = 1; /* held while queueing, so nothing finishes early */
    for (size_t i = 0; i < b->n; i++) {
        struct deliver_job *j;
        if (b->r[i].dup_of >= 0 || b->r[i].mailbox == NULL || b->r[i].settled)
            continue;
        j = xcalloc(1, sizeof(*j));
        j->b = b;
        j->i = i;
        j->req.cf = b->cf;
        j->req.mailbox = b->r[i].mailbox;
        j->req.sender = b->sender;
        if (b->verp[0] != '\0') { /* XVERP: the Return-Path names the recipient */
            char v[DELIVER_VERP_MAX];
            j->sender = xstrdup(addr_verp(b->sender, b->r[i].addr, b->verp, v, sizeof(v)));
            j->req.sender = j->sender;
        }
        if (b->r[i].xheader != NULL) {
            size_t hl;
            j->head = xheader_decode(b->r[i].xheader, &hl);
            j->req.head = j->head;
        }
        j->req.text = b->text;
        j->req.len = b->len;
        j->req.done = deliver_done;
        j->req.arg = j;
        b->running++;
        mboxq_submit(b->loop, &j->req);
    }
    if (--b->running == 0)
        deliver_alldone(b);
}

/* deliver_to_ldaq - r names a program: into a queue file of its own, run by ldaq.h after
 * the client has its answer (deliver_qwork writes it). */
static void
deliver_to_ldaq(const struct deliver_batch *b, struct deliver_rcpt *r)
{
    r->result = DROP_TEMP;
    r->ldaq = true;
    r->settled = true;
    snprintf(r->err, sizeof(r->err), "queued for program delivery");
    log_info("deliver id=%s to=<%s> result=queued-for-program", b->id, r->addr);
}

/* deliver_has_program - an alias file gives addr a program destination in b. */
static bool
deliver_has_program(const struct deliver_batch *b, const char *addr)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->r[i].lda != NULL && b->r[i].lda[0] == '|' && strcasecmp(b->r[i].addr, addr) == 0)
            return true;
    return false;
}

/* deliver_fwd_work - pool: the forward file of every recipient it applies to, and what it
 * says (dotfwd.h): a recipient whose file keeps no copy, or failed, is settled. */
static void
deliver_fwd_work(uv_work_t *w)
{
    struct deliver_batch *b = w->data;
    struct deliver_dsn dsn = {b->ret, b->envid, b->requiretls, NULL};

    for (size_t i = 0; i < b->n; i++) {
        struct deliver_rcpt *r = &b->r[i];
        struct dotfwd f;
        struct dotfwd_msg m = {b->id,  r->addr,    b->sender, b->origin, b->text,
                               b->len, b->arrival, r->notify, r->orcpt,  &dsn};
        bool keep = true;
        int rc;
        if (r->dup_of >= 0)
            continue;
        if (r->lda != NULL && (r->lda[0] == '|' || deliver_has_program(b, r->addr))) {
            deliver_to_ldaq(b, r); /* its files too: the queue file runs them all once */
            continue;
        }
        if (r->lda != NULL) {
            r->result = dotfwd_alias_lda(b->cf, r->lda, &m, &r->status, r->err, sizeof(r->err));
            r->settled = true;
            continue;
        }
        if (!r->dotfwd)
            continue;
        rc = dotfwd_read(b->cf, r->addr, r->mailbox, &f, r->err, sizeof(r->err));
        if (rc > 0 && dotfwd_has_program(&f)) {
            dotfwd_free(&f);
            deliver_to_ldaq(b, r);
            continue;
        }
        if (rc < 0) {
            r->result = DROP_TEMP;
            keep = false;
        } else if (rc > 0) {
            r->result =
                dotfwd_deliver(b->cf, &f, &m, b->oq, &keep, &r->status, r->err, sizeof(r->err));
        }
        dotfwd_free(&f);
        r->settled = !keep || r->result != DROP_OK;
        if (r->settled && r->result == DROP_OK)
            log_info("deliver id=%s to=<%s> forward-file=%s result=ok", b->id, r->addr, f.path);
        else if (r->settled)
            log_warn("deliver id=%s to=<%s> forward-file=%s result=%s", b->id, r->addr, f.path,
                     r->result == DROP_TEMP ? "deferred" : "failed");
    }
}

/* deliver_fwd_done - loop: the forward files are done; the mailboxes next. */
static void
deliver_fwd_done(uv_work_t *w, int status)
{
    struct deliver_batch *b = w->data;

    for (size_t i = 0; status < 0 && i < b->n; i++) /* cancelled: nothing was done */
        if ((b->r[i].dotfwd || b->r[i].lda != NULL) && b->r[i].dup_of < 0) {
            b->r[i].settled = true;
            b->r[i].result = DROP_TEMP;
            snprintf(b->r[i].err, sizeof(b->r[i].err), "forward file not read");
        }
    deliver_submit(b);
}

/* deliver_run - the forward files first (one pool job, when any applies), then the
 * mailboxes. */
void
deliver_run(uv_loop_t *loop, struct deliver_batch *b, long *counter, deliver_cb cb, void *arg)
{
    bool fwd = false;

    b->loop = loop;
    b->cb = cb;
    b->arg = arg;
    b->counter = counter;
    if (counter != NULL)
        (*counter)++;
    for (size_t i = 0; i < b->n && !fwd; i++)
        fwd = (b->r[i].dotfwd || b->r[i].lda != NULL) && b->r[i].dup_of < 0;
    b->fwork.data = b;
    if (!fwd || uv_queue_work(loop, &b->fwork, deliver_fwd_work, deliver_fwd_done) < 0)
        deliver_submit(b);
}

/* deliver_offer_to - the queue file goes to oq. */
void
deliver_offer_to(struct deliver_batch *b, struct outq *oq)
{
    b->oq = oq;
}

/* deliver_detach - the waiter is gone. */
void
deliver_detach(struct deliver_batch *b)
{
    b->cb = NULL;
    b->arg = NULL;
}
