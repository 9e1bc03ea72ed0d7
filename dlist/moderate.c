/*
 * moderate - held posts. See moderate.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "file.h"
#include "hash.h"
#include "lists.h"
#include "log.h"
#include "moderate.h"
#include "msg.h"
#include "outbox.h"
#include "post.h"
#include "work.h"
#include "xmem.h"

#define MODERATE_HDR "X-Dlist-Held: "

/* moderate_path - LISTDIR/held[/ID], malloc'd. */
static char *
moderate_path(const struct work *w, const char *id)
{
    return id != NULL ? xasprintf("%s/held/%s", w->listdir, id) : xasprintf("%s/held", w->listdir);
}

/* moderate_id_ok - 12 lower-case hex digits. */
static bool
moderate_id_ok(const char *id)
{
    return strlen(id) == MODERATE_ID_LEN && strspn(id, "0123456789abcdef") == MODERATE_ID_LEN;
}

void
moderate_hold(struct work *w, const char *poster, const char *reason)
{
    const struct lists_def *def = w->def;
    char id[MODERATE_ID_LEN + 1], req[400], *dir = moderate_path(w, NULL), *path;
    char *subject = msg_header(w->text, w->len, "Subject");
    struct buf b;

    snprintf(id, sizeof(id), "%012llx", (unsigned long long)(hash_str(w->key) & 0xffffffffffffULL));
    path = moderate_path(w, id);
    buf_init(&b, OUTBOX_TEXT_MAX);
    buf_printf(&b, MODERATE_HDR "%s\nReturn-Path: <%s>\n", reason, w->sender);
    buf_append(&b, w->text, w->len);
    if (file_mkdirs(dir, 0700) < 0 || file_write_atomic(path, buf_peek(&b), b.len, 0600) < 0) {
        log_error("list %s: cannot hold a post in %s: %s", def->name, path, strerror(errno));
        w->errors++;
    } else {
        log_info("list %s: post from %s held as %s: %s", def->name, poster, id, reason);
        if (def->nmoderators == 0)
            log_warn("list %s: no moderator to tell of held post %s", def->name, id);
        else {
            char *subj =
                xasprintf("%s: post from %s held for approval (%s)", def->name, poster, id);
            char *body = xasprintf(
                "A post to the list %s is held for approval.\n\n"
                "  From:    %s\n  Subject: %s\n  Reason:  %s\n  ID:      %s\n\n"
                "To send it to the list, mail %s\nthis line (as the body or the subject):\n\n"
                "  approve PASSWORD %s\n\n"
                "To discard it:\n\n  reject PASSWORD %s\n\n"
                "or on the server: dlist approve %s %s / dlist reject %s %s\n",
                def->name, poster, subject != NULL ? subject : "", reason, id,
                work_addr(w, "-request", req, sizeof(req)), id, id, def->name, id, def->name, id);
            work_mail(w, def->moderators[0], subj, body, false);
            free(subj);
            free(body);
        }
    }
    buf_free(&b);
    free(subject);
    free(path);
    free(dir);
}

int
moderate_decide(struct work *w, const char *id, bool approve, char *err, size_t len)
{
    char *path, *text = NULL, poster[600];
    size_t tlen;
    int rc = -1;

    if (!moderate_id_ok(id)) {
        snprintf(err, len, "no held post %s", id);
        return -1;
    }
    path = moderate_path(w, id);
    for (size_t i = 0; i < w->nremove; i++)
        if (strcmp(w->remove[i], path) == 0) {
            snprintf(err, len, "held post %s is decided already", id);
            free(path);
            return -1;
        }
    if (file_read_all(path, OUTBOX_FILE_MAX, &text, &tlen) < 0) {
        snprintf(err, len, errno == ENOENT ? "no held post %s" : "held post %s: cannot read it",
                 id);
        free(path);
        return -1;
    }
    if (approve) {
        const char *p = memchr(text, '\n', tlen), *saved = w->text;
        size_t savedlen = w->len;
        char *rp = NULL, *from;
        if (p == NULL || strncmp(text, MODERATE_HDR, strlen(MODERATE_HDR)) != 0) {
            snprintf(err, len, "held post %s is damaged", id);
            goto out;
        }
        p++;
        if (strncmp(p, "Return-Path:", 12) == 0) {
            const char *e = memchr(p, '\n', tlen - (size_t)(p - text));
            rp = xstrndup(p + 12, e != NULL ? (size_t)(e - p - 12) : 0);
            p = e != NULL ? e + 1 : text + tlen;
        }
        w->text = p;
        w->len = tlen - (size_t)(p - text);
        from = msg_header(w->text, w->len, "From");
        if ((from == NULL || !msg_addr(from, poster, sizeof(poster))) &&
            (rp == NULL || !msg_addr(rp, poster, sizeof(poster))))
            poster[0] = '\0';
        free(from);
        free(rp);
        post_send(w, poster);
        w->text = saved;
        w->len = savedlen;
        if (w->errors > 0) {
            snprintf(err, len, "held post %s: the mail could not be written", id);
            goto out;
        }
    }
    if (!work_remove_later(w, path)) {
        snprintf(err, len, "held post %s: too many decisions in one message", id);
        goto out;
    }
    log_info("list %s: held post %s %s", w->def->name, id, approve ? "approved" : "rejected");
    rc = 0;
out:
    free(text);
    free(path);
    return rc;
}

size_t
moderate_list(struct work *w, void (*line)(void *arg, const char *text), void *arg)
{
    char *dir = moderate_path(w, NULL);
    size_t n = 0, count = 0;
    char **names = file_dir_names(dir, NULL, &n);

    for (size_t i = 0; names != NULL && i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]), *text = NULL;
        size_t tlen;
        if (moderate_id_ok(names[i]) && file_read_all(path, OUTBOX_FILE_MAX, &text, &tlen) == 0) {
            char *why = msg_header(text, tlen, "X-Dlist-Held");
            char *from = msg_header(text, tlen, "From");
            char *subj = msg_header(text, tlen, "Subject");
            char *l = xasprintf("%s %s %s (%s)", names[i], from ? from : "-", subj ? subj : "",
                                why ? why : "");
            line(arg, l);
            count++;
            free(l);
            free(why);
            free(from);
            free(subj);
        }
        free(text);
        free(path);
        free(names[i]);
    }
    free(names);
    free(dir);
    return count;
}

void
moderate_expire(struct work *w, long max_age, time_t now)
{
    char *dir = moderate_path(w, NULL);
    size_t n = 0;
    char **names = file_dir_names(dir, NULL, &n);
    int removed = 0;

    for (size_t i = 0; names != NULL && i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (moderate_id_ok(names[i]) && stat(path, &st) == 0 && now - st.st_mtime > max_age &&
            unlink(path) == 0) {
            log_info("list %s: held post %s expired (dlist_held_expire)", w->def->name, names[i]);
            removed++;
        }
        free(path);
        free(names[i]);
    }
    if (removed > 0)
        file_fsync_dir(dir);
    free(names);
    free(dir);
}
