/*
 * tell_stats - tellpop statistics over the oneline_stats day files. See tell_stats.h.
 */
#include "tell_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tell.h"
#include "xmem.h"

#define TS_DEFAULT_TOP 20

struct ts_row {
    char *key;
    unsigned long long sent, bsent, recv, brecv;
};

struct ts_report {
    struct ts_row *rows;
    size_t n, size;
    int by_user; /* -u: the whole address; else its domain */
    int sides;   /* 1 senders, 2 recipients, 3 both */
    int sortby;  /* 0 recv 1 sent 2 brecv 3 bsent */
    long top;    /* -1: all */
    unsigned long long msgs, bytes;
};

/* tell_stats_field - the value of "name=" in the word w, or NULL. */
static char *
tell_stats_field(char *w, const char *name)
{
    size_t n = strlen(name);

    return strncmp(w, name, n) == 0 && w[n] == '=' ? w + n + 1 : NULL;
}

int
tell_stats_parse(char *line, struct tell_stats_rec *r)
{
    struct tm tm = {0};
    char *save = NULL, *w, *v;
    int have = 0;

    memset(r, 0, sizeof(*r));
    w = strtok_r(line, " ", &save);
    if (w == NULL || strptime(w, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
        return -1;
    tm.tm_isdst = -1;
    r->when = mktime(&tm);
    while ((w = strtok_r(NULL, " ", &save)) != NULL) {
        if ((v = tell_stats_field(w, "size")) != NULL) {
            char *end;
            r->size = strtoull(v, &end, 10);
            if (*end != '\0')
                return -1;
            have |= 1;
        } else if ((v = tell_stats_field(w, "from")) != NULL) {
            size_t n = strlen(v);
            if (n < 2 || v[0] != '<' || v[n - 1] != '>')
                return -1;
            v[n - 1] = '\0';
            r->from = v + 1;
            have |= 2;
        } else if ((v = tell_stats_field(w, "to")) != NULL) {
            r->to = strcmp(v, "-") == 0 ? v + 1 : v;
            have |= 4;
        } else if ((v = tell_stats_field(w, "user")) != NULL) {
            r->user = v;
        }
    }
    if (r->user == NULL)
        r->user = "-";
    return have == 7 ? 0 : -1;
}

/* ts_add - count size for key on one side (0 sent, 1 received). */
static void
ts_add(struct ts_report *rp, const char *addr, int side, unsigned long long size)
{
    const char *key = addr;
    char lower[512];
    size_t i;

    if (!rp->by_user) {
        const char *at = strrchr(addr, '@');
        key = at != NULL ? at + 1 : (addr[0] ? "(local)" : "(null sender)");
    } else if (addr[0] == '\0') {
        key = "(null sender)";
    }
    snprintf(lower, sizeof(lower), "%s", key);
    for (i = 0; lower[i] != '\0'; i++)
        if (lower[i] >= 'A' && lower[i] <= 'Z')
            lower[i] = (char)(lower[i] - 'A' + 'a');
    for (i = 0; i < rp->n && strcmp(rp->rows[i].key, lower) != 0; i++)
        ;
    if (i == rp->n) {
        if (rp->n == rp->size) {
            rp->size = rp->size ? rp->size * 2 : 64;
            rp->rows = xrealloc(rp->rows, rp->size * sizeof(*rp->rows));
        }
        memset(&rp->rows[i], 0, sizeof(rp->rows[i]));
        rp->rows[i].key = xstrdup(lower);
        rp->n++;
    }
    if (side == 0) {
        rp->rows[i].sent++;
        rp->rows[i].bsent += size;
    } else {
        rp->rows[i].recv++;
        rp->rows[i].brecv += size;
    }
}

/* ts_file - every line of one day file within [from, to). */
static void
ts_file(struct ts_report *rp, const char *path, time_t from, time_t to)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (f == NULL)
        return;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct tell_stats_rec r;
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        if (tell_stats_parse(line, &r) < 0 || r.when < from || r.when >= to)
            continue;
        rp->msgs++;
        rp->bytes += r.size;
        if (rp->sides & 1)
            ts_add(rp, r.from, 0, r.size);
        if (rp->sides & 2) {
            char *save = NULL;
            for (char *t = strtok_r(r.to, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
                ts_add(rp, t, 1, r.size);
        }
    }
    free(line);
    fclose(f);
}

static int ts_sortby;

/* ts_value - the sort field of a row. */
static unsigned long long
ts_value(const struct ts_row *r)
{
    switch (ts_sortby) {
    case 1:
        return r->sent;
    case 2:
        return r->brecv;
    case 3:
        return r->bsent;
    default:
        return r->recv;
    }
}

/* ts_cmp - larger first, then by key. */
static int
ts_cmp(const void *a, const void *b)
{
    const struct ts_row *x = a, *y = b;
    unsigned long long vx = ts_value(x), vy = ts_value(y);

    if (vx != vy)
        return vx < vy ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* ts_day - midnight (local) of month/day in now's year; -1 if not a date. */
static time_t
ts_day(const char *md, time_t now)
{
    struct tm tm;
    int m, d;
    char extra;

    if (sscanf(md, "%d/%d%c", &m, &d, &extra) != 2 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    localtime_r(&now, &tm);
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* ts_usage - complain; TELL_EX_USAGE. */
static int
ts_usage(const char *prog, const char *what)
{
    fprintf(stderr,
            "%s: statistics: %s\nusage: %s statistics [-d[N|all] | -u[N|all]] [-s | -r] "
            "[-sortby recv|sent|brecv|bsent] [so_far_today|hour|day|week|month|MM/dd [to "
            "MM/dd]]\n",
            prog, what, prog);
    return TELL_EX_USAGE;
}

int
tell_stats_cmd(const char *prog, const char *work_path, int argc, char **argv, time_t now)
{
    struct ts_report rp = {.sides = 3, .top = TS_DEFAULT_TOP};
    time_t from = -1, to = now + 1;
    struct tm tm;
    char fromtxt[32], totxt[32];
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((a[0] == '-' && (a[1] == 'd' || a[1] == 'u')) && strcmp(a, "-sortby") != 0) {
            rp.by_user = a[1] == 'u';
            if (a[2] == '\0')
                continue;
            if (strcmp(a + 2, "all") == 0) {
                rp.top = -1;
                continue;
            }
            char *end;
            rp.top = strtol(a + 2, &end, 10);
            if (*end != '\0' || rp.top < 0)
                return ts_usage(prog, "-d and -u take a number or all");
        } else if (strcmp(a, "-s") == 0) {
            rp.sides = 1;
        } else if (strcmp(a, "-r") == 0) {
            rp.sides = 2;
        } else if (strcmp(a, "-sortby") == 0) {
            static const char *const names[] = {"recv", "sent", "brecv", "bsent"};
            int k;
            if (++i >= argc)
                return ts_usage(prog, "-sortby needs a field");
            for (k = 0; k < 4 && strcasecmp(argv[i], names[k]) != 0; k++)
                ;
            if (k == 4)
                return ts_usage(prog, "-sortby: recv, sent, brecv or bsent");
            rp.sortby = k;
        } else if (strcmp(a, "hour") == 0 || strcmp(a, "day") == 0 || strcmp(a, "week") == 0 ||
                   strcmp(a, "month") == 0) {
            long span = a[0] == 'h'   ? 3600
                        : a[0] == 'd' ? 86400
                        : a[0] == 'w' ? 7 * 86400
                                      : 30 * 86400;
            from = now - span;
        } else if (strcmp(a, "so_far_today") == 0) {
            from = -1;
        } else if (ts_day(a, now) >= 0) {
            from = ts_day(a, now);
            to = from + 86400;
            if (i + 2 < argc && strcmp(argv[i + 1], "to") == 0 && ts_day(argv[i + 2], now) >= 0) {
                to = ts_day(argv[i + 2], now) + 86400;
                i += 2;
            }
            if (to <= from)
                return ts_usage(prog, "the timeframe ends before it begins");
        } else {
            return ts_usage(prog, "unknown argument");
        }
    }
    if (from < 0) { /* so far today */
        localtime_r(&now, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        from = mktime(&tm);
    }
    /* the day files from from's day to to's, each read once (DST may repeat a date) */
    char seen[400][16];
    int nseen = 0;
    for (time_t day = from - 86400; day < to + 86400 && nseen < 400; day += 86400) {
        char path[4096], tag[16];
        int k;
        localtime_r(&day, &tm);
        snprintf(tag, sizeof(tag), "%02d%02d", tm.tm_mday, tm.tm_mon + 1);
        for (k = 0; k < nseen && strcmp(seen[k], tag) != 0; k++)
            ;
        if (k < nseen)
            continue;
        memcpy(seen[nseen++], tag, sizeof(tag));
        snprintf(path, sizeof(path), "%s/dm%s.log", work_path, tag);
        ts_file(&rp, path, from, to);
    }
    ts_sortby = rp.sortby;
    qsort(rp.rows, rp.n, sizeof(*rp.rows), ts_cmp);
    for (size_t k = 0; k < rp.n; k++) {
        if (rp.top >= 0 && (long)k >= rp.top)
            break;
        printf("%s sent=%llu bsent=%llu recv=%llu brecv=%llu\n", rp.rows[k].key, rp.rows[k].sent,
               rp.rows[k].bsent, rp.rows[k].recv, rp.rows[k].brecv);
    }
    localtime_r(&from, &tm);
    strftime(fromtxt, sizeof(fromtxt), "%Y-%m-%dT%H:%M:%S", &tm);
    time_t last = to - 1;
    localtime_r(&last, &tm);
    strftime(totxt, sizeof(totxt), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("messages=%llu bytes=%llu from %s to %s\n", rp.msgs, rp.bytes, fromtxt, totxt);
    for (size_t k = 0; k < rp.n; k++)
        free(rp.rows[k].key);
    free(rp.rows);
    return TELL_EX_OK;
}
