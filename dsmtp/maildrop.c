/*
 * maildrop - pickup of messages written by sendmail(8). See maildrop.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "data.h"
#include "bounce.h"
#include "deliver.h"
#include "dsnparam.h"
#include "file.h"
#include "dkim_sign.h"
#include "log.h"
#include "logq.h"
#include "maildrop.h"
#include "qfile.h"
#include "queue.h"
#include "xmem.h"

#define MAILDROP_RESCAN_MS 60000

struct maildrop {
    struct smtpd *d;
    uv_fs_event_t ev;
    uv_timer_t timer;
    uv_work_t work;
    int open_handles;
    bool watching, running, again, stopping;
    struct conf *cf;
    struct auth_db *db;
    char hostname[256];
    int bounced; /* reports or queued recipients of the running scan: kick the runner after */
    unsigned long picked, picked_rcpts; /* files taken by the running scan, for stats */
};

/* maildrop_field_end - the end of the header field starting at p (continuations
 * included): the byte after its last LF, or end. */
static const char *
maildrop_field_end(const char *p, const char *end)
{
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return end;
        p = nl + 1;
        if (p >= end || (*p != ' ' && *p != '\t'))
            return p;
    }
}

/* maildrop_header_end - the end of the header section (before the empty line). */
static const char *
maildrop_header_end(const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    while (p < end && *p != '\n') {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return end;
        p = nl + 1;
    }
    return p;
}

/* maildrop_is_field - the field at p is named name (followed by optional spaces and :). */
static bool
maildrop_is_field(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0)
        return false;
    p += n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && *p == ':';
}

/* The state of the address-list scanner. */
struct maildrop_alist {
    char cur[1024], angle[1024];
    size_t ncur, nangle;
    bool has_angle;
    void (*cb)(void *arg, const char *addr);
    void *arg;
    size_t count;
};

/* maildrop_alist_emit - one list element is complete. */
static void
maildrop_alist_emit(struct maildrop_alist *a)
{
    char *s, *e;

    a->cur[a->ncur < sizeof(a->cur) ? a->ncur : sizeof(a->cur) - 1] = '\0';
    a->angle[a->nangle < sizeof(a->angle) ? a->nangle : sizeof(a->angle) - 1] = '\0';
    s = a->has_angle ? a->angle : a->cur;
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
        *--e = '\0';
    if (*s != '\0') {
        a->cb(a->arg, s);
        a->count++;
    }
    a->ncur = a->nangle = 0;
    a->has_angle = false;
}

/* maildrop_alist_put - one character of the current element. */
static void
maildrop_alist_put(struct maildrop_alist *a, bool in_angle, char c)
{
    if (in_angle) {
        if (a->nangle + 1 < sizeof(a->angle))
            a->angle[a->nangle++] = c;
    } else if (a->ncur + 1 < sizeof(a->cur)) {
        a->cur[a->ncur++] = c;
    }
}

/* maildrop_alist - scan an address-list field value. */
static void
maildrop_alist(struct maildrop_alist *a, const char *p, const char *end)
{
    int paren = 0;
    bool quote = false, angle = false;

    for (; p < end; p++) {
        char c = *p;
        if (quote) {
            maildrop_alist_put(a, angle, c);
            if (c == '\\' && p + 1 < end)
                maildrop_alist_put(a, angle, *++p);
            else if (c == '"')
                quote = false;
        } else if (paren > 0) {
            if (c == '\\' && p + 1 < end)
                p++;
            else if (c == '(')
                paren++;
            else if (c == ')')
                paren--;
        } else if (c == '(') {
            paren++;
        } else if (c == '"') {
            quote = true;
            maildrop_alist_put(a, angle, c);
        } else if (angle) {
            if (c == '>')
                angle = false;
            else
                maildrop_alist_put(a, true, c);
        } else if (c == '<') {
            angle = true;
            a->has_angle = true;
            a->nangle = 0;
        } else if (c == ',' || c == ';') {
            maildrop_alist_emit(a);
        } else if (c == ':') {
            a->ncur = 0; /* a group's display name */
        } else {
            maildrop_alist_put(a, false, c);
        }
    }
    maildrop_alist_emit(a);
}

/* maildrop_header_rcpts - every address of To/Cc/Bcc. */
size_t
maildrop_header_rcpts(const char *text, size_t len, void (*cb)(void *arg, const char *addr),
                      void *arg)
{
    const char *p = text, *hend = maildrop_header_end(text, len);
    struct maildrop_alist *a = xcalloc(1, sizeof(*a));
    size_t n;

    a->cb = cb;
    a->arg = arg;
    while (p < hend) {
        const char *fend = maildrop_field_end(p, hend);
        if (maildrop_is_field(p, fend, "To") || maildrop_is_field(p, fend, "Cc") ||
            maildrop_is_field(p, fend, "Bcc"))
            maildrop_alist(a, (const char *)memchr(p, ':', (size_t)(fend - p)) + 1, fend);
        p = fend;
    }
    n = a->count;
    free(a);
    return n;
}

/* maildrop_strip_bcc - drop the Bcc: fields. */
size_t
maildrop_strip_bcc(char *text, size_t len)
{
    char *p = text, *end = text + len;
    const char *hend = maildrop_header_end(text, len);

    while (p < hend) {
        char *fend = (char *)maildrop_field_end(p, hend);
        if (maildrop_is_field(p, fend, "Bcc")) {
            size_t n = (size_t)(fend - p);
            memmove(p, fend, (size_t)(end - fend));
            end -= n;
            hend -= n;
            continue;
        }
        p = fend;
    }
    return (size_t)(end - text);
}

/* maildrop_add_rcpt - cb of maildrop_header_rcpts: into the qfile. */
static void
maildrop_add_rcpt(void *arg, const char *addr)
{
    struct qfile *q = arg;

    qfile_add_rcpt(q, addr);
    q->rcpt[q->nrcpt - 1].notify = q->notify; /* sendmail -t -N */
}

/* maildrop_received - the trace header for a locally submitted message. */
static char *
maildrop_received(const char *host, const struct qfile *q)
{
    const char *u = q->origin ? strstr(q->origin, "uid=") : NULL;
    long uid = u ? strtol(u + 4, NULL, 10) : -1;
    char date[64];

    data_rfc5322_date(date, sizeof(date), time(NULL));
    if (q->nrcpt == 1)
        return xasprintf("Received: from local (uid %ld)\n\tby %s (dsmtp) with local id %s\n"
                         "\tfor <%s>; %s\n",
                         uid, host, q->id, q->rcpt[0].addr, date);
    return xasprintf("Received: from local (uid %ld)\n\tby %s (dsmtp) with local id %s; %s\n", uid,
                     host, q->id, date);
}

/* maildrop_dkim - pool: the DKIM signatures of the message's From: domain, if it has a
 * key (dkim_sign.h); a failure is logged and the message goes unsigned. */
static void
maildrop_dkim(const struct conf *cf, const char *id, char **text, size_t *len)
{
    char dom[256], err[200];

    if (dkim_sign_text(cf, text, len, dom, sizeof(dom), err, sizeof(err)) < 0)
        log_warn("dkim id=%s domain=%s result=unsigned why=\"%s\"", id, dom, err);
    else if (dom[0] != '\0')
        log_info("dkim id=%s domain=%s result=signed", id, dom);
}

/* maildrop_file - pool: the maildrop file becomes a queue file with every recipient
 * pending and the Received: header added; the queue runner (kicked after the scan)
 * delivers it like any queued message, recording each recipient's progress in the file,
 * so no later failure makes a recipient get the message twice. true when the maildrop
 * file may be removed. */
static bool
maildrop_file(struct maildrop *m, struct qfile *q)
{
    const struct conf *cf = m->cf;
    struct deliver_dsn dsn = {q->ret, q->envid, (q->flags & QF_REQUIRETLS) != 0, q->verp};
    struct deliver_qrcpt *r = xcalloc(q->nrcpt, sizeof(*r));
    char *rcv = maildrop_received(m->hostname, q), *text, eq[300];
    size_t rlen = strlen(rcv), len = rlen + q->text_len;
    int rc;

    text = xmalloc(len + 1);
    memcpy(text, rcv, rlen);
    memcpy(text + rlen, q->text, q->text_len);
    maildrop_dkim(cf, q->id, &text, &len);
    for (size_t i = 0; i < q->nrcpt; i++)
        r[i] = (struct deliver_qrcpt){q->rcpt[i].addr,  0,     NULL, q->rcpt[i].notify,
                                      q->rcpt[i].orcpt, false, NULL};
    rc = deliver_queue_write(cf, q->id, q->sender, q->origin ? q->origin : "sendmail", &dsn,
                             q->arrival, r, q->nrcpt, text, len, m->d->outq);
    if (rc < 0) {
        const char *e = strerror(errno);
        log_error("maildrop id=%s result=queue-write-failed retry=later error=%s", q->id,
                  logq_text(eq, sizeof(eq), e, strlen(e), 200));
    } else {
        for (size_t i = 0; i < q->nrcpt; i++)
            log_info("maildrop id=%s to=<%s> result=queued", q->id, q->rcpt[i].addr);
        m->picked++;
        m->picked_rcpts += q->nrcpt;
        if (rc == 0)      /* 1: outbound delivery took it as written (outq_offer) */
            m->bounced++; /* kick the queue runner: it delivers at once */
    }
    free(r);
    free(text);
    free(rcv);
    return rc >= 0;
}

/* maildrop_one - pool: read, deliver and remove one maildrop file. */
static void
maildrop_one(struct maildrop *m, const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name), err[200];
    struct qfile q;

    memset(&q, 0, sizeof(q));
    if (qfile_read(path, &q, err, sizeof(err)) < 0) {
        char *cdir = xasprintf("%s/corrupt", m->cf->spool_dir);
        char *to = xasprintf("%s/%s", cdir, name);
        log_error("maildrop: %s: %s; moved to %s", path, err, cdir);
        if (file_mkdirs(cdir, 0700) < 0 || rename(path, to) < 0)
            log_errore("maildrop: cannot move %s", path);
        free(cdir);
        free(to);
        goto out;
    }
    if (q.flags & QF_RCPT_FROM_HEADERS) {
        maildrop_header_rcpts(q.text, q.text_len, maildrop_add_rcpt, &q);
        q.text_len = maildrop_strip_bcc(q.text, q.text_len);
    }
    log_info(
        "maildrop id=%s from=<%s> origin=%s rcpts=%zu size=%zu", q.id, q.sender,
        logq_text(err, sizeof(err), q.origin ? q.origin : "", q.origin ? strlen(q.origin) : 0, 150),
        q.nrcpt, q.text_len);
    if (q.nrcpt == 0)
        log_error("maildrop id=%s result=dropped reason=no-recipients", q.id);
    if (q.nrcpt == 0 || maildrop_file(m, &q)) {
        if (unlink(path) < 0)
            log_errore("maildrop: cannot remove %s", path);
        else
            file_fsync_dir(path);
    }
out:
    qfile_free(&q);
    free(path);
}

/* maildrop_scan - pool: every file in spool_dir/maildrop. */
static void
maildrop_scan(uv_work_t *w)
{
    struct maildrop *m = w->data;
    char *dir = xasprintf("%s/maildrop", m->cf->spool_dir);
    DIR *dp = opendir(dir);
    struct dirent *de;

    if (dp == NULL) {
        log_errore("maildrop: cannot open %s", dir);
        free(dir);
        return;
    }
    while ((de = readdir(dp)) != NULL) {
        struct stat st;
        char *path;
        if (de->d_name[0] == '.')
            continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            maildrop_one(m, dir, de->d_name);
        free(path);
    }
    closedir(dp);
    free(dir);
}

/* maildrop_maybe_free - when every handle is closed and no scan runs. */
static void
maildrop_maybe_free(struct maildrop *m)
{
    if (m->stopping && m->open_handles == 0 && !m->running)
        free(m);
}

static void maildrop_start_scan(struct maildrop *m);

/* maildrop_scanned - loop: the scan ended. */
static void
maildrop_scanned(uv_work_t *w, int status)
{
    struct maildrop *m = w->data;

    m->running = false;
    m->d->stats.picked_up += m->picked;
    m->d->stats.picked_rcpts += m->picked_rcpts;
    m->picked = m->picked_rcpts = 0;
    conf_unref(&m->cf);
    if (m->db != NULL)
        auth_db_unref(&m->db);
    if (m->bounced > 0 && !m->stopping && m->d->queue != NULL)
        queue_kick(m->d->queue); /* deliver the reports now, not at the next retry */
    m->bounced = 0;
    if (m->again && !m->stopping) {
        m->again = false;
        maildrop_start_scan(m);
        return;
    }
    maildrop_maybe_free(m);
}

/* maildrop_start_scan - a scan now, or right after the running one. */
static void
maildrop_start_scan(struct maildrop *m)
{
    if (m->stopping)
        return;
    if (m->running) {
        m->again = true;
        return;
    }
    m->cf = conf_ref(m->d->srv.cf);
    m->db = m->d->srv.db != NULL ? auth_db_ref(m->d->srv.db) : NULL;
    snprintf(m->hostname, sizeof(m->hostname), "%s", m->d->srv.hostname);
    m->work.data = m;
    m->running = true;
    if (uv_queue_work(m->d->srv.loop, &m->work, maildrop_scan, maildrop_scanned) < 0) {
        m->running = false;
        conf_unref(&m->cf);
        if (m->db != NULL)
            auth_db_unref(&m->db);
    }
}

/* maildrop_event - something changed in the directory. */
static void
maildrop_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    maildrop_start_scan(h->data);
}

/* maildrop_timer_cb - the periodic safety scan. */
static void
maildrop_timer_cb(uv_timer_t *t)
{
    maildrop_start_scan(t->data);
}

/* maildrop_new - watch and scan. */
struct maildrop *
maildrop_new(struct smtpd *d)
{
    struct maildrop *m = xcalloc(1, sizeof(*m));
    char *dir = xasprintf("%s/maildrop", d->srv.cf->spool_dir);
    int rc;

    m->d = d;
    uv_fs_event_init(d->srv.loop, &m->ev);
    m->ev.data = m;
    uv_timer_init(d->srv.loop, &m->timer);
    m->timer.data = m;
    m->open_handles = 2;
    rc = uv_fs_event_start(&m->ev, maildrop_event, dir, 0);
    if (rc < 0)
        log_warn("maildrop: cannot watch %s (%s); scanning every %ds", dir, uv_strerror(rc),
                 MAILDROP_RESCAN_MS / 1000);
    uv_timer_start(&m->timer, maildrop_timer_cb, 0, MAILDROP_RESCAN_MS);
    free(dir);
    return m;
}

/* maildrop_closed - one handle closed. */
static void
maildrop_closed(uv_handle_t *h)
{
    struct maildrop *m = h->data;

    m->open_handles--;
    maildrop_maybe_free(m);
}

/* maildrop_stop - no more scans. */
void
maildrop_stop(struct maildrop **mp)
{
    struct maildrop *m = *mp;

    if (m == NULL)
        return;
    *mp = NULL;
    m->stopping = true;
    uv_fs_event_stop(&m->ev);
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->ev, maildrop_closed);
    uv_close((uv_handle_t *)&m->timer, maildrop_closed);
}
