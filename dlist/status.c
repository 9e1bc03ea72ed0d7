/*
 * status - the moderator's periodic report. See status.h.
 */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "digest.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "members.h"
#include "moderate.h"
#include "work.h"
#include "xmem.h"

#define STATUS_FILE_MAX 256

/* status_path - work_path/dlist/LIST/status into buf. */
static void
status_path(const struct conf *cf, const struct lists_def *def, char *buf, size_t len)
{
    snprintf(buf, len, "%s/dlist/%s/status", cf->work_path, def->name);
}

/* status_read - since and posts from the file; false when it is missing or unreadable. */
static bool
status_read(const char *path, long long *since, long long *posts)
{
    char *text = NULL;
    size_t len = 0;
    bool ok;

    if (file_read_all(path, STATUS_FILE_MAX, &text, &len) < 0)
        return false;
    ok = sscanf(text, "since %lld\nposts %lld", since, posts) == 2;
    free(text);
    return ok;
}

/* status_write - the file anew; 0 or -1 (logged). */
static int
status_write(const struct lists_def *def, const char *path, long long since, long long posts)
{
    char text[100];
    int n = snprintf(text, sizeof(text), "since %lld\nposts %lld\n", since, posts);
    char dir[4300];

    if (file_dirname(path, dir, sizeof(dir)) == 0)
        file_mkdirs(dir, 0700);
    if (file_write_atomic(path, text, (size_t)n, 0600) < 0) {
        log_error("list %s: cannot write %s: %s", def->name, path, strerror(errno));
        return -1;
    }
    return 0;
}

void
status_post(const struct conf *cf, const struct lists_def *def)
{
    char path[4200];
    long long since, posts;

    if (def->status_interval <= 0)
        return;
    status_path(cf, def, path, sizeof(path));
    if (!status_read(path, &since, &posts)) {
        since = (long long)time(NULL);
        posts = 0;
    }
    status_write(def, path, since, posts + 1);
}

/* status_count - moderate_list's callback: nothing to show, the count is enough. */
static void
status_count(void *arg, const char *text)
{
    (void)arg;
    (void)text;
}

void
status_run(struct work *w, time_t now)
{
    const struct lists_def *def = w->def;
    char path[4200], subject[300], since_s[64], now_s[64];
    long long since, posts;
    struct members dm = {0};
    struct buf b;
    struct tm tm;
    time_t t;
    size_t held;

    if (def->status_interval <= 0 || def->nmoderators == 0)
        return;
    status_path(w->cf, def, path, sizeof(path));
    if (!status_read(path, &since, &posts)) {
        status_write(def, path, (long long)now, 0); /* the first period starts */
        return;
    }
    if ((long long)now - since < (long long)def->status_interval * w->cf->dlist_day)
        return;
    if (work_members_load(w) < 0 || digest_recipients_of(w->cf, def, &w->members, &dm) < 0) {
        log_error("list %s: status report: cannot read the members", def->name);
        return;
    }
    held = moderate_list(w, status_count, NULL);
    t = (time_t)since;
    gmtime_r(&t, &tm);
    strftime(since_s, sizeof(since_s), "%Y-%m-%d %H:%M UTC", &tm);
    gmtime_r(&now, &tm);
    strftime(now_s, sizeof(now_s), "%Y-%m-%d %H:%M UTC", &tm);
    buf_init(&b, 4096);
    buf_printf(&b,
               "The list %s@%s%s%s, from %s to %s:\n\n"
               "  members:              %zu\n"
               "  by digest:            %zu\n"
               "  posts distributed:    %lld\n"
               "  held posts waiting:   %zu\n\n"
               "This report comes every %ld day%s (status_interval in lists.dat).\n",
               def->name, w->domain, def->title[0] ? ", " : "", def->title, since_s, now_s,
               w->members.n, dm.n, posts, held, def->status_interval,
               def->status_interval == 1 ? "" : "s");
    snprintf(subject, sizeof(subject), "Status of the list %s", def->name);
    snprintf(w->key, sizeof(w->key), "%s.status.%lld", def->name, (long long)now);
    work_mail(w, def->moderators[0], subject, buf_peek(&b), false);
    buf_free(&b);
    members_free(&dm);
    if (w->errors == 0 && status_write(def, path, (long long)now, 0) == 0)
        log_info("list %s: status report to %s (%lld posts, %zu members)", def->name,
                 def->moderators[0], posts, w->members.n);
}
