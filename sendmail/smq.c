/*
 * smq - the mailq listing.
 */
#include "smq.h"

#include "qfile.h"
#include "smdrop.h"
#include "xmem.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

/* One listed file. */
struct smq_entry {
    struct qfile q;
    bool ok;
    bool maildrop;
    char name[256];
    char err[200];
};

struct smq_set {
    struct smq_entry *v;
    size_t n;
};

/* smq_scan - read every queue file of dir into set. Returns 0, or a sysexits code. */
static int
smq_scan(struct smdrop *d, const char *dir, bool maildrop, struct smq_set *set, FILE *errout)
{
    DIR *dp;
    struct dirent *e;
    int rc = 0;

    if (smdrop_raise(d) < 0)
        return EX_OSERR;
    dp = opendir(dir);
    if (dp == NULL) {
        int saved = errno;
        smdrop_lower(d);
        if (saved == ENOENT)
            return 0;
        fprintf(errout, "mailq: cannot read %s: %s\n", dir, strerror(saved));
        return saved == EACCES || saved == EPERM ? EX_NOPERM : EX_OSERR;
    }
    while ((e = readdir(dp)) != NULL) {
        char path[4096 + 256];
        struct smq_entry *s;

        if (e->d_name[0] == '.')
            continue; /* ".", "..", and temporary files being written */
        set->v = xrealloc(set->v, (set->n + 1) * sizeof *set->v);
        s = &set->v[set->n++];
        memset(s, 0, sizeof *s);
        s->maildrop = maildrop;
        snprintf(s->name, sizeof s->name, "%s", e->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s->ok = qfile_read(path, &s->q, s->err, sizeof s->err) == 0;
        if (!s->ok && strstr(s->err, "No such file") != NULL)
            set->n--; /* picked up while we looked */
    }
    closedir(dp);
    if (smdrop_lower(d) < 0)
        rc = EX_OSERR;
    return rc;
}

/* smq_cmp - by arrival time, then name; unreadable files last. */
static int
smq_cmp(const void *a, const void *b)
{
    const struct smq_entry *x = a, *y = b;

    if (x->ok != y->ok)
        return x->ok ? -1 : 1;
    if (x->ok && x->q.arrival != y->q.arrival)
        return x->q.arrival < y->q.arrival ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* smq_print - one entry in Postfix's layout. */
static void
smq_print(const struct smq_entry *s, FILE *out)
{
    char when[64], idm[sizeof s->q.id + 1];
    struct tm tm;
    time_t t = s->q.arrival;
    const char *indent = "                                              ";

    if (!s->ok) {
        fprintf(out, "%-28s  (unreadable: %s)\n\n", s->name, s->err);
        return;
    }
    localtime_r(&t, &tm);
    strftime(when, sizeof when, "%a %b %e %H:%M:%S", &tm);
    /* Postfix's marker goes right after the id: '!' = held */
    snprintf(idm, sizeof idm, "%s%s", s->q.id, s->q.flags & QF_HOLD ? "!" : "");
    fprintf(out, "%-28s %8zu %s  %s\n", idm, s->q.text_len, when,
            s->q.sender[0] ? s->q.sender : "MAILER-DAEMON");
    if (s->maildrop)
        fprintf(out, "%s(waiting for pickup by dsmtp)\n", indent);
    if (s->q.nrcpt == 0)
        fprintf(out, "%s(recipients from the message headers)\n", indent);
    for (size_t i = 0; i < s->q.nrcpt; i++) {
        const struct qfile_rcpt *r = &s->q.rcpt[i];
        if (r->state == QR_DONE)
            continue;
        if (r->last_error != NULL)
            fprintf(out, "%s(%s%s)\n", indent, r->state == QR_FAILED ? "failed: " : "",
                    r->last_error);
        fprintf(out, "%s%s\n", indent, r->addr);
    }
    fputc('\n', out);
}

/* smq_list - print the listing. */
int
smq_list(struct smdrop *d, const char *spool_dir, FILE *out, FILE *errout)
{
    struct smq_set set = {0};
    char dir[4096];
    int rc, rc2;
    unsigned long long bytes = 0;

    snprintf(dir, sizeof dir, "%s/queue", spool_dir);
    rc = smq_scan(d, dir, false, &set, errout);
    rc2 = smq_scan(d, smdrop_dir(spool_dir, dir, sizeof dir), true, &set, errout);
    if (rc == 0)
        rc = rc2;
    if (set.n == 0) {
        if (rc == 0)
            fprintf(out, "Mail queue is empty\n");
        free(set.v);
        return rc;
    }
    qsort(set.v, set.n, sizeof *set.v, smq_cmp);
    fprintf(out, "-Queue ID-                  --Size-- ----Arrival Time---- "
                 "-Sender/Recipient-------\n");
    for (size_t i = 0; i < set.n; i++) {
        smq_print(&set.v[i], out);
        bytes += set.v[i].q.text_len;
    }
    fprintf(out, "-- %llu Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024, set.n,
            set.n == 1 ? "" : "s");
    for (size_t i = 0; i < set.n; i++)
        qfile_free(&set.v[i].q);
    free(set.v);
    return rc;
}
