/*
 * ostats - oneline_stats: the daily one-line-per-message files. See ostats.h.
 */
#include "ostats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "session.h"
#include "smtpd.h"
#include "xmem.h"

#define OSTATS_LINE_MAX 65536

struct ostats_job {
    uv_work_t w;
    struct server *srv;
    char *path;
    char *line;
    int err;
};

/* ostats_work - on the pool: append the line. */
static void
ostats_work(uv_work_t *w)
{
    struct ostats_job *j = w->data;
    int fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    size_t n = strlen(j->line);

    if (fd < 0) {
        j->err = errno;
        return;
    }
    if (write(fd, j->line, n) != (ssize_t)n)
        j->err = errno ? errno : EIO;
    if (close(fd) < 0 && j->err == 0)
        j->err = errno;
}

/* ostats_done - on the loop: report a failure, free. */
static void
ostats_done(uv_work_t *w, int status)
{
    struct ostats_job *j = w->data;

    j->srv->jobs--;
    if (j->err != 0)
        log_warn("oneline_stats: cannot append to %s: %s", j->path, strerror(j->err));
    free(j->path);
    free(j->line);
    free(j);
}

/* ostats_clean - a field value without blanks or control characters. */
static void
ostats_clean(char *p)
{
    for (; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *p = '?';
}

void
ostats_message(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;
    struct server *srv = &s->d->srv;
    time_t now = time(NULL);
    struct tm tm;
    char when[32], *to = xstrdup(""), *line, *user;
    struct ostats_job *j;

    if (!s->base.cf->oneline_stats)
        return;
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    for (size_t i = 0; i < tx->nrcpt && strlen(to) < OSTATS_LINE_MAX; i++) {
        char *t = xasprintf("%s%s%s", to, i ? "," : "", tx->rcpt[i].addr);
        free(to);
        to = t;
    }
    ostats_clean(to);
    user = xstrdup(s->auth_user != NULL && s->auth_user[0] ? s->auth_user : "-");
    ostats_clean(user);
    line = xasprintf("%s id=%s ip=%s size=%llu from=<%s> rcpts=%zu to=%s user=%s\n", when, tx->id,
                     s->base.ip, tx->rx.wire, tx->sender, tx->nrcpt, to[0] ? to : "-", user);
    free(to);
    free(user);
    /* the sender goes in as given: blanks in a quoted local part become '?' */
    char *from = strstr(line, " from=<");
    if (from != NULL) {
        char *end = strstr(from, "> rcpts=");
        for (char *p = from + 7; end != NULL && p < end; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                *p = '?';
    }
    j = xcalloc(1, sizeof(*j));
    j->w.data = j;
    j->srv = srv;
    j->line = line;
    j->path = xasprintf("%s/dm%02d%02d.log", s->base.cf->work_path, tm.tm_mday, tm.tm_mon + 1);
    if (uv_queue_work(srv->loop, &j->w, ostats_work, ostats_done) < 0) {
        log_warn("oneline_stats: cannot queue the write to %s", j->path);
        free(j->path);
        free(j->line);
        free(j);
        return;
    }
    srv->jobs++;
}
