/*
 * vbounce - a list's bounce scores, disabling, warnings and removals. See vbounce.h.
 */
#include "vbounce.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "members.h"
#include "mime.h"
#include "msg.h"
#include "work.h"
#include "xmem.h"

#define VBOUNCE_FILE_MAX (16u << 20)

struct vbounce_rec {
    char addr[600];
    long score10; /* the score times ten */
    long day;     /* of the last bounce counted */
    long long disabled, lastwarn;
    long warnings;
};

struct vbounce_set {
    struct vbounce_rec *v;
    size_t n;
};

/* vbounce_path - work_path/dlist/LIST/bounces. */
static void
vbounce_path(const struct work *w, char *buf, size_t len)
{
    snprintf(buf, len, "%s/dlist/%s/bounces", w->cf->work_path, w->def->name);
}

static void
vbounce_load(const struct work *w, struct vbounce_set *s)
{
    char path[4200], *text = NULL, *line, *save = NULL;
    size_t len = 0;

    memset(s, 0, sizeof(*s));
    vbounce_path(w, path, sizeof(path));
    if (file_read_all(path, VBOUNCE_FILE_MAX, &text, &len) < 0)
        return;
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        struct vbounce_rec r;
        memset(&r, 0, sizeof(r));
        if (sscanf(line, "%599s %ld %ld %lld %ld %lld", r.addr, &r.score10, &r.day, &r.disabled,
                   &r.warnings, &r.lastwarn) != 6)
            continue;
        s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
        s->v[s->n++] = r;
    }
    free(text);
}

static int
vbounce_save(const struct work *w, const struct vbounce_set *s)
{
    char path[4200];
    struct buf b;
    int rc;

    vbounce_path(w, path, sizeof(path));
    buf_init(&b, VBOUNCE_FILE_MAX);
    for (size_t i = 0; i < s->n; i++)
        buf_printf(&b, "%s %ld %ld %lld %ld %lld\n", s->v[i].addr, s->v[i].score10, s->v[i].day,
                   s->v[i].disabled, s->v[i].warnings, s->v[i].lastwarn);
    rc = file_write_atomic(path, b.len > 0 ? buf_peek(&b) : "", b.len, 0600);
    if (rc < 0)
        log_error("list %s: cannot write %s: %s", w->def->name, path, strerror(errno));
    buf_free(&b);
    return rc;
}

static struct vbounce_rec *
vbounce_find(struct vbounce_set *s, const char *addr)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcasecmp(s->v[i].addr, addr) == 0)
            return &s->v[i];
    return NULL;
}

/* vbounce_verp - the member a VERP To: names (LIST-bounces+user=domain@...), into out. */
static bool
vbounce_verp(const struct work *w, char *out, size_t len)
{
    char *to = msg_header(w->text, w->len, "To"), addr[600], pre[400];
    const char *p, *at, *eq;
    bool ok = false;

    if (to == NULL || !msg_addr(to, addr, sizeof(addr))) {
        free(to);
        return false;
    }
    free(to);
    snprintf(pre, sizeof(pre), "%s-bounces+", w->def->name);
    at = strrchr(addr, '@');
    if (strncasecmp(addr, pre, strlen(pre)) == 0 && at != NULL) {
        p = addr + strlen(pre);
        eq = memrchr(p, '=', (size_t)(at - p));
        if (eq != NULL && eq > p && eq + 1 < at) {
            snprintf(out, len, "%.*s@%.*s", (int)(eq - p), p, (int)(at - eq - 1), eq + 1);
            ok = true;
        }
    }
    return ok;
}

struct vbounce_scan {
    const struct work *w;
    char who[600];
    int kind; /* 0 none seen, 1 failed 5xx, 2 failed 4xx, 3 only delayed & co */
    bool report;
};

/* vbounce_field - the value of "Name: value" at line l (len n) into out, trimmed. */
static bool
vbounce_field(const char *l, size_t n, const char *name, char *out, size_t len)
{
    size_t k = strlen(name);
    size_t o = 0;

    if (n <= k || strncasecmp(l, name, k) != 0 || l[k] != ':')
        return false;
    for (l += k + 1, n -= k + 1; n > 0 && isspace((unsigned char)*l); l++, n--)
        ;
    while (n > 0 && isspace((unsigned char)l[n - 1]))
        n--;
    for (; n > 0 && o + 1 < len; n--)
        out[o++] = *l++;
    out[o] = '\0';
    return true;
}

/* vbounce_part - mime_walk: the delivery-status report's recipients and actions. */
static void
vbounce_part(const struct mime_part *p, void *arg)
{
    struct vbounce_scan *sc = arg;
    const char *s = p->body, *end = p->body + p->len;
    char action[40] = "", status[40] = "", rcpt[600] = "";

    if (strcmp(p->type, "message/delivery-status") != 0)
        return;
    sc->report = true;
    for (;;) { /* one block per recipient, blank lines between (the first is per message) */
        const char *nl = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;
        size_t n = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
        char v[600];
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (vbounce_field(s, n, "Action", v, sizeof(v)))
            snprintf(action, sizeof(action), "%.30s", v);
        else if (vbounce_field(s, n, "Status", v, sizeof(v)))
            snprintf(status, sizeof(status), "%.30s", v);
        else if (vbounce_field(s, n, "Final-Recipient", v, sizeof(v)) ||
                 (rcpt[0] == '\0' && vbounce_field(s, n, "Original-Recipient", v, sizeof(v)))) {
            const char *semi = strchr(v, ';');
            snprintf(rcpt, sizeof(rcpt), "%s", semi != NULL ? semi + 1 : v);
            while (rcpt[0] == ' ')
                memmove(rcpt, rcpt + 1, strlen(rcpt));
        }
        if ((n == 0 || nl == NULL) && action[0] != '\0') { /* the end of a block */
            bool failed = strcasecmp(action, "failed") == 0;
            int kind = failed ? (status[0] == '4' ? 2 : 1) : 3;
            if (sc->who[0] == '\0' && rcpt[0] != '\0' && members_has(&sc->w->members, rcpt))
                snprintf(sc->who, sizeof(sc->who), "%s", rcpt);
            if (sc->kind == 0 || (kind < sc->kind))
                sc->kind = kind;
            action[0] = status[0] = rcpt[0] = '\0';
        }
        if (nl == NULL)
            break;
        s = nl + 1;
    }
}

/* vbounce_plain - a member's address in the text of a bounce that is no report. */
static void
vbounce_plain(struct vbounce_scan *sc)
{
    const struct members *m = &sc->w->members;

    for (size_t i = 0; i < m->n && sc->who[0] == '\0'; i++)
        if (strcasestr(sc->w->text, m->v[i]) != NULL)
            snprintf(sc->who, sizeof(sc->who), "%s", m->v[i]);
}

/* vbounce_tell - a plain notice to addr (the member or the first moderator). */
static void
vbounce_tell(struct work *w, const char *to, const char *subject, const char *body)
{
    if (to != NULL)
        work_mail(w, to, subject, body, false);
}

void
vbounce_handle(struct work *w)
{
    const struct lists_def *def = w->def;
    const char *mod = def->nmoderators > 0 ? def->moderators[0] : NULL;
    struct vbounce_scan sc = {.w = w};
    struct vbounce_set s;
    struct vbounce_rec *r;
    long today = (long)(time(NULL) / w->cf->dlist_day);
    char req[400], body[1200];

    if (work_members_load(w) < 0) {
        w->errors++;
        return;
    }
    mime_walk(w->text, w->len, vbounce_part, &sc);
    if (!vbounce_verp(w, sc.who, sizeof(sc.who)) || !members_has(&w->members, sc.who)) {
        if (sc.who[0] != '\0' && !members_has(&w->members, sc.who))
            sc.who[0] = '\0';
        if (!sc.report)
            vbounce_plain(&sc);
    }
    if (sc.kind == 3) {
        log_info("list %s: delivery report for %s without a failure: not counted", def->name,
                 sc.who[0] ? sc.who : "-");
        return;
    }
    if (sc.who[0] == '\0') { /* to the moderators, from <>: it cannot bounce back here */
        if (def->nmoderators > 0)
            work_emit(w, "", false, def->moderators, def->nmoderators, w->text, w->len, NULL);
        log_info("list %s: bounce naming no member from <%s>: to the moderators", def->name,
                 w->sender);
        return;
    }
    vbounce_load(w, &s);
    if ((r = vbounce_find(&s, sc.who)) == NULL) {
        s.v = xrealloc(s.v, (s.n + 1) * sizeof(*s.v));
        r = &s.v[s.n++];
        memset(r, 0, sizeof(*r));
        snprintf(r->addr, sizeof(r->addr), "%s", sc.who);
    }
    if (r->disabled != 0 || (r->day == today && r->score10 > 0)) {
        log_info("list %s: bounce of %s (already counted today or disabled)", def->name, sc.who);
        free(s.v);
        return;
    }
    if (r->day != 0 && today - r->day >= def->bounce_stale_days)
        r->score10 = 0; /* stale: start again */
    r->score10 += sc.kind == 2 ? 5 : 10;
    r->day = today;
    log_info("list %s: bounce of %s (%s), score %ld.%ld of %ld", def->name, sc.who,
             sc.kind == 2 ? "soft" : "hard", r->score10 / 10, r->score10 % 10,
             def->bounce_score_threshold);
    if (r->score10 >= def->bounce_score_threshold * 10) {
        r->disabled = r->lastwarn = (long long)time(NULL);
        r->warnings = 0;
        work_addr(w, "-request", req, sizeof(req));
        snprintf(body, sizeof(body),
                 "Mail from the list %s to %s has been bouncing, so it is not sent to you\n"
                 "for now. To get it again, send a line \"enable\" to %s.\n",
                 def->name, sc.who, req);
        vbounce_tell(w, sc.who, "Your subscription is disabled (bounces)", body);
        snprintf(body, sizeof(body), "%s bounced %ld times and is disabled on %s.\n", sc.who,
                 def->bounce_score_threshold, def->name);
        vbounce_tell(w, mod, "A member of your list is disabled (bounces)", body);
        log_info("list %s: %s disabled (bounces)", def->name, sc.who);
    }
    if (vbounce_save(w, &s) < 0)
        w->errors++;
    free(s.v);
}

void
vbounce_run(struct work *w, time_t now)
{
    const struct lists_def *def = w->def;
    const char *mod = def->nmoderators > 0 ? def->moderators[0] : NULL;
    long long every = (long long)def->bounce_warn_interval * w->cf->dlist_day;
    struct vbounce_set s;
    bool changed = false;
    char req[400], body[1200];

    vbounce_load(w, &s);
    snprintf(w->key, sizeof(w->key), "%s.vbounce.%lld", def->name, (long long)now);
    for (size_t i = 0; i < s.n; i++) {
        struct vbounce_rec *r = &s.v[i];
        if (r->disabled == 0 || (long long)now - r->lastwarn < every)
            continue;
        if (work_members_load(w) < 0)
            break;
        if (!members_has(&w->members, r->addr) || r->warnings >= def->bounce_warnings) {
            if (members_remove(&w->members, r->addr) == 1 && work_members_save(w) == 0) {
                snprintf(body, sizeof(body), "%s kept bouncing and was removed from %s.\n", r->addr,
                         def->name);
                vbounce_tell(w, mod, "A member of your list is removed (bounces)", body);
                log_info("list %s: %s removed (bounces)", def->name, r->addr);
            }
            s.v[i--] = s.v[--s.n];
            changed = true;
            continue;
        }
        r->warnings++;
        r->lastwarn = (long long)now;
        work_addr(w, "-request", req, sizeof(req));
        snprintf(body, sizeof(body),
                 "Your subscription to %s is still disabled (mail to %s bounced).\n"
                 "Send a line \"enable\" to %s to get the list's mail again;\n"
                 "after %ld more warning%s you will be removed.\n",
                 def->name, r->addr, req, def->bounce_warnings - r->warnings,
                 def->bounce_warnings - r->warnings == 1 ? "" : "s");
        vbounce_tell(w, r->addr, "Your subscription is still disabled (bounces)", body);
        changed = true;
    }
    if (changed)
        vbounce_save(w, &s);
    free(s.v);
}

void
vbounce_disabled(struct work *w, struct members *m)
{
    struct vbounce_set s;
    char err[200];

    members_free(m);
    vbounce_load(w, &s);
    for (size_t i = 0; i < s.n; i++)
        if (s.v[i].disabled != 0)
            members_add(m, s.v[i].addr, err, sizeof(err));
    free(s.v);
}

bool
vbounce_enable(struct work *w, const char *addr)
{
    struct vbounce_set s;
    struct vbounce_rec *r;
    bool had;

    vbounce_load(w, &s);
    r = vbounce_find(&s, addr);
    had = r != NULL;
    if (had) {
        *r = s.v[--s.n];
        vbounce_save(w, &s);
    }
    free(s.v);
    return had;
}
