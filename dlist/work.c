/*
 * work - a spooled message on the pool: the outbox, the members. See work.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "file.h"
#include "conf.h"
#include "lists.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "work.h"
#include "xmem.h"

char *
work_addr(const struct work *w, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s@%s", w->def->name, suffix, w->domain);
    return buf;
}

void
work_emit(struct work *w, const char *sender, bool xverp, char *const *rcpt, size_t n,
          const char *text, size_t len, const char *list)
{
    struct outbox_msg m = {.sender = (char *)sender,
                           .xverp = xverp,
                           .list = (char *)list,
                           .nrcpt = n,
                           .rcpt = (char **)rcpt,
                           .text = (char *)text,
                           .len = len};
    char name[340];

    if (n == 0)
        return;
    snprintf(name, sizeof(name), "%s.%d", w->key, w->nout++);
    if (outbox_write(w->outdir, name, &m) < 0) {
        log_error("list %s: cannot write %s/%s: %s", w->def->name, w->outdir, name,
                  strerror(errno));
        w->errors++;
    }
}

void
work_mail(struct work *w, const char *to, const char *subject, const char *body, bool reply)
{
    char from[400], bounces[400], id[300], date[64], *orig = NULL;
    char *rcpt[1] = {(char *)to};
    struct buf b;

    msg_new_id(id, sizeof(id), w->domain);
    msg_date(date, sizeof(date));
    if (reply)
        orig = msg_header(w->text, w->len, "Message-ID");
    buf_init(&b, 64u << 20);
    buf_printf(&b,
               "From: %s <%s>\nTo: <%s>\nSubject: %s\nDate: %s\nMessage-ID: %s\n%s%s%s"
               "Auto-Submitted: auto-replied\nX-Loop: %s\nMIME-Version: 1.0\n"
               "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s",
               w->def->name, work_addr(w, "-request", from, sizeof(from)), to, subject, date, id,
               orig != NULL ? "In-Reply-To: " : "", orig != NULL ? orig : "",
               orig != NULL ? "\n" : "", work_addr(w, "", bounces, sizeof(bounces)), body);
    work_emit(w, work_addr(w, "-bounces", bounces, sizeof(bounces)), false, rcpt, 1, buf_peek(&b),
              b.len, NULL);
    buf_free(&b);
    free(orig);
}

int
work_members_load(struct work *w)
{
    char *path;
    int rc;

    if (w->members_loaded)
        return 0;
    admin_members_lock();
    path = admin_members_path(w->cf, w->def->name);
    rc = members_load(&w->members, path, NULL);
    free(path);
    if (rc < 0) {
        admin_members_unlock();
        return -1;
    }
    w->members_loaded = true;
    return 0;
}

int
work_members_save(struct work *w)
{
    char *path = admin_members_path(w->cf, w->def->name);
    int rc = members_save(&w->members, path);

    if (rc < 0)
        log_error("list %s: cannot write %s: %s", w->def->name, path, strerror(errno));
    free(path);
    return rc;
}

bool
work_remove_later(struct work *w, const char *path)
{
    if (w->nremove == sizeof(w->remove) / sizeof(w->remove[0]))
        return false;
    w->remove[w->nremove++] = xstrdup(path);
    return true;
}

void
work_finish(struct work *w)
{
    for (size_t i = 0; i < w->nremove; i++) {
        if (unlink(w->remove[i]) < 0 || file_fsync_dir(w->remove[i]) < 0)
            log_error("list %s: cannot remove %s: %s", w->def->name, w->remove[i], strerror(errno));
        free(w->remove[i]);
    }
    w->nremove = 0;
}

void
work_done(struct work *w)
{
    for (size_t i = 0; i < w->nremove; i++)
        free(w->remove[i]);
    w->nremove = 0;
    if (w->members_loaded) {
        members_free(&w->members);
        w->members_loaded = false;
        admin_members_unlock();
    }
}
