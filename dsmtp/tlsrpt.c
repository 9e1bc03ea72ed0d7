/*
 * tlsrpt - TLS reporting (RFC 8460): counters, their file, the daily reports. See
 * tlsrpt.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "deliver.h"
#include "file.h"
#include "log.h"
#include "server.h"
#include "statefile.h"
#include "tlsrpt_post.h"
#include "tlsrpt.h"
#include "xmem.h"

#define TLSRPT_FILE_MAX (4096 * 1024) /* the counters' file */
#define TLSRPT_TEXT_MAX (1024 * 1024) /* a report message */
#define TLSRPT_ROWS_MAX 100000        /* counter rows kept */
#define TLSRPT_CA_MAX (1024 * 1024)   /* the CA file's size limit */

/* One counter: sessions of a day, domain, policy type, MX and result ("" success). */
struct tlsrpt_row {
    struct tlsrpt_row *next;
    char day[11]; /* "2026-12-04" */
    char *domain, *ptype, *mx, *result;
    unsigned long n;
};

struct tlsrpt {
    uv_loop_t *loop;
    struct dns *dns;
    long *jobs;
    struct statefile file; /* the counters' file (path NULL: none) */
    struct tlsrpt_row *rows;
    size_t nrows;
    struct tlsrpt_job *looking; /* jobs waiting for their TXT record or rua host */
    char *ca;                   /* the https: rua's extra CA (PEM text), or NULL */
    size_t calen;
    long timeout_ms;     /* an https: POST */
    uv_timer_t timer;    /* the daily send (tlsrpt_schedule) */
    bool timing;         /* timer initialised (closed by tlsrpt_stop) */
    long period;         /* seconds between sends */
    void (*due)(void *); /* the timer's callback and its argument */
    void *due_arg;
};

/* A report job: one domain's rows, its TXT lookup, then the queue files on the pool. */
struct tlsrpt_job {
    struct tlsrpt_job *next; /* in t->looking */
    struct tlsrpt *t;
    struct conf *cf;
    struct outq *oq;
    char *domain;
    struct tlsrpt_row *rows;
    char *rua;    /* the mailto: address, or NULL */
    char *url;    /* the https: URL, or NULL */
    char ip[64];  /* its host's address (c-ares) */
    char **texts; /* one message per day (mailto) */
    size_t ntexts;
    char **jsons; /* one JSON report per day (https) */
    size_t njsons;
    int pending; /* the mail work and the POST chain still running */
    uv_work_t w, pw;
};

static void tlsrpt_job_free(struct tlsrpt_job *j);

/* tlsrpt_row_free - one row. */
static void
tlsrpt_row_free(struct tlsrpt_row *r)
{
    free(r->domain);
    free(r->ptype);
    free(r->mx);
    free(r->result);
    free(r);
}

/* tlsrpt_add - n more in the row of these keys (made if new). */
static void
tlsrpt_add(struct tlsrpt *t, const char *day, const char *domain, const char *ptype, const char *mx,
           const char *result, unsigned long n)
{
    struct tlsrpt_row *r;

    for (r = t->rows; r != NULL; r = r->next)
        if (strcmp(r->day, day) == 0 && strcasecmp(r->domain, domain) == 0 &&
            strcmp(r->ptype, ptype) == 0 && strcasecmp(r->mx, mx) == 0 &&
            strcmp(r->result, result) == 0) {
            r->n += n;
            return;
        }
    if (t->nrows >= TLSRPT_ROWS_MAX)
        return;
    r = xcalloc(1, sizeof(*r));
    snprintf(r->day, sizeof(r->day), "%s", day);
    r->domain = xstrdup(domain);
    r->ptype = xstrdup(ptype);
    r->mx = xstrdup(mx);
    r->result = xstrdup(result);
    r->n = n;
    r->next = t->rows;
    t->rows = r;
    t->nrows++;
}

/* tlsrpt_format - the counters' file: "day domain ptype mx result n" lines. */
static void
tlsrpt_format(void *arg, struct buf *b)
{
    const struct tlsrpt *t = arg;

    buf_printf(b, "# dmail TLS-RPT counters: day domain policy-type mx result(- success) n\n");
    for (const struct tlsrpt_row *r = t->rows; r != NULL; r = r->next)
        buf_printf(b, "%s %s %s %s %s %lu\n", r->day, r->domain, r->ptype, r->mx,
                   r->result[0] != '\0' ? r->result : "-", r->n);
}

/* tlsrpt_save - the counters changed: written on the pool (statefile.h). */
static void
tlsrpt_save(struct tlsrpt *t)
{
    statefile_save(&t->file);
}

/* tlsrpt_load - the counters' file, at start. */
static void
tlsrpt_load(struct tlsrpt *t)
{
    char *text = NULL, *line, *save = NULL;
    size_t len = 0, lineno = 0;

    if (file_read_all(t->file.path, TLSRPT_FILE_MAX, &text, &len) < 0) {
        if (errno != ENOENT)
            log_warn("tls-rpt: cannot read %s: %s", t->file.path, strerror(errno));
        return;
    }
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char day[11], domain[256], ptype[32], mx[256], result[64];
        unsigned long n;
        lineno++;
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%10s %255s %31s %255s %63s %lu", day, domain, ptype, mx, result, &n) !=
            6) {
            log_warn("tls-rpt: %s:%zu: malformed, ignored", t->file.path, lineno);
            continue;
        }
        tlsrpt_add(t, day, domain, ptype, mx, strcmp(result, "-") == 0 ? "" : result, n);
    }
    free(text);
}

/* tlsrpt_new - see tlsrpt.h. */
struct tlsrpt *
tlsrpt_new(uv_loop_t *loop, struct dns *dns, long *jobs, const char *path, const char *ca,
           long timeout_ms)
{
    struct tlsrpt *t = xcalloc(1, sizeof(*t));

    t->loop = loop;
    t->dns = dns;
    t->jobs = jobs;
    t->timeout_ms = timeout_ms;
    if (ca != NULL && ca[0] != '\0' && file_read_all(ca, TLSRPT_CA_MAX, &t->ca, &t->calen) < 0)
        log_warn("tls-rpt: mta_sts_ca %s: %s", ca, strerror(errno));
    statefile_init(&t->file, loop, jobs, path, "tls-rpt: the counters", TLSRPT_FILE_MAX,
                   tlsrpt_format, t);
    if (t->file.path != NULL)
        tlsrpt_load(t);
    return t;
}

/* tlsrpt_free - see tlsrpt.h. */
void
tlsrpt_free(struct tlsrpt **tp)
{
    struct tlsrpt *t = *tp;

    if (t == NULL)
        return;
    *tp = NULL;
    while (t->looking != NULL) { /* their lookups went with the resolver, uncalled */
        struct tlsrpt_job *j = t->looking;
        t->looking = j->next;
        tlsrpt_job_free(j);
    }
    while (t->rows != NULL) {
        struct tlsrpt_row *r = t->rows;
        t->rows = r->next;
        tlsrpt_row_free(r);
    }
    statefile_free(&t->file);
    free(t->ca);
    free(t);
}

/* tlsrpt_result - see tlsrpt.h. */
void
tlsrpt_result(struct tlsrpt *t, const char *domain, const char *policy_type, const char *mx,
              const char *result)
{
    char day[11];
    time_t now = time(NULL);
    struct tm tm;

    if (t == NULL)
        return;
    gmtime_r(&now, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    tlsrpt_add(t, day, domain, policy_type, mx != NULL && mx[0] != '\0' ? mx : "-",
               result != NULL ? result : "", 1);
    tlsrpt_save(t);
}

/* tlsrpt_json_str - s as a JSON string (the names here hold no quote or control). */
static void
tlsrpt_json_str(struct buf *b, const char *s)
{
    buf_printf(b, "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            buf_printf(b, "\\u%04x", (unsigned)*s);
        else
            buf_printf(b, "%c", *s);
    }
    buf_printf(b, "\"");
}

/* tlsrpt_json - the JSON report (RFC 8460 4.4) of one day of j's rows, report-id rid. */
static void
tlsrpt_json(const struct tlsrpt_job *j, const char *day, const char *host, const char *from,
            const char *rid, struct buf *out)
{
    static const char *types[] = {"sts", "tlsa", "no-policy-found"};
    struct buf json;
    bool first = true;

    buf_init(&json, TLSRPT_TEXT_MAX);
    buf_printf(&json, "{\"organization-name\":");
    tlsrpt_json_str(&json, host);
    buf_printf(&json,
               ",\"date-range\":{\"start-datetime\":\"%sT00:00:00Z\","
               "\"end-datetime\":\"%sT23:59:59Z\"},\"contact-info\":",
               day, day);
    tlsrpt_json_str(&json, from);
    buf_printf(&json, ",\"report-id\":");
    tlsrpt_json_str(&json, rid);
    buf_printf(&json, ",\"policies\":[");
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        unsigned long ok = 0, bad = 0;
        bool any = false, fd = true;
        for (const struct tlsrpt_row *r = j->rows; r != NULL; r = r->next)
            if (strcmp(r->day, day) == 0 && strcmp(r->ptype, types[k]) == 0) {
                any = true;
                if (r->result[0] == '\0')
                    ok += r->n;
                else
                    bad += r->n;
            }
        if (!any)
            continue;
        buf_printf(&json,
                   "%s{\"policy\":{\"policy-type\":\"%s\",\"policy-domain\":", first ? "" : ",",
                   types[k]);
        tlsrpt_json_str(&json, j->domain);
        buf_printf(&json,
                   "},\"summary\":{\"total-successful-session-count\":%lu,"
                   "\"total-failure-session-count\":%lu},\"failure-details\":[",
                   ok, bad);
        for (const struct tlsrpt_row *r = j->rows; r != NULL; r = r->next) {
            if (strcmp(r->day, day) != 0 || strcmp(r->ptype, types[k]) != 0 || r->result[0] == '\0')
                continue;
            buf_printf(&json, "%s{\"result-type\":", fd ? "" : ",");
            tlsrpt_json_str(&json, r->result);
            if (strcmp(r->mx, "-") != 0) {
                buf_printf(&json, ",\"receiving-mx-hostname\":");
                tlsrpt_json_str(&json, r->mx);
            }
            buf_printf(&json, ",\"failed-session-count\":%lu}", r->n);
            fd = false;
        }
        buf_printf(&json, "]}");
        first = false;
    }
    buf_printf(&json, "]}\n");
    buf_append(out, buf_peek(&json), json.len);
    buf_free(&json);
}

/* tlsrpt_rid - a report-id: DAY.DOMAIN.TIME@HOST. */
static void
tlsrpt_rid(char *rid, size_t len, const char *day, const char *domain, const char *host)
{
    snprintf(rid, len, "%s.%s.%lld@%s", day, domain, (long long)time(NULL), host);
}

/* tlsrpt_compose - the report message of one day of j's rows. */
static char *
tlsrpt_compose(const struct tlsrpt_job *j, const char *day, const char *host, const char *from)
{
    struct buf b, json;
    char rid[600], date[64], boundary[64];
    time_t now = time(NULL);
    struct tm tm;
    char *out;

    tlsrpt_rid(rid, sizeof(rid), day, j->domain, host);
    snprintf(boundary, sizeof(boundary), "tlsrpt-%lld-%d", (long long)now, rand());
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    buf_init(&json, TLSRPT_TEXT_MAX);
    tlsrpt_json(j, day, host, from, rid, &json);
    buf_init(&b, TLSRPT_TEXT_MAX);
    buf_printf(&b,
               "From: %s\nTo: %s\nDate: %s\nSubject: Report Domain: %s Submitter: %s Report-ID: "
               "<%s>\nMessage-ID: <%s>\nTLS-Report-Domain: %s\nTLS-Report-Submitter: %s\n"
               "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=\"tlsrpt\";\n"
               "\tboundary=\"%s\"\n\nThis is a TLS report (RFC 8460).\n\n--%s\n"
               "Content-Type: text/plain; charset=us-ascii\n\n"
               "TLS report for %s, %s, from %s.\n\n--%s\n"
               "Content-Type: application/tlsrpt+json\n"
               "Content-Disposition: attachment; filename=\"%s!%s!%sT000000Z.json\"\n\n",
               from, j->rua, date, j->domain, host, rid, rid, j->domain, host, boundary, boundary,
               j->domain, day, host, boundary, host, j->domain, day);
    buf_append(&b, buf_peek(&json), json.len);
    buf_printf(&b, "\n--%s--\n", boundary);
    out = xstrndup(buf_peek(&b), b.len);
    buf_free(&json);
    buf_free(&b);
    return out;
}

/* tlsrpt_job_free - the job and what it holds. */
static void
tlsrpt_job_free(struct tlsrpt_job *j)
{
    while (j->rows != NULL) {
        struct tlsrpt_row *r = j->rows;
        j->rows = r->next;
        tlsrpt_row_free(r);
    }
    for (size_t i = 0; i < j->ntexts; i++)
        free(j->texts[i]);
    free(j->texts);
    for (size_t i = 0; i < j->njsons; i++)
        free(j->jsons[i]);
    free(j->jsons);
    conf_unref(&j->cf);
    free(j->rua);
    free(j->url);
    free(j->domain);
    free(j);
}

/* tlsrpt_queue_work - pool: each report into the queue. */
static void
tlsrpt_queue_work(uv_work_t *w)
{
    struct tlsrpt_job *j = w->data;
    struct deliver_qrcpt to = {j->rua, 0, NULL, 0, NULL, false, NULL};

    for (size_t i = 0; i < j->ntexts; i++) {
        if (deliver_queue_write(j->cf, "", "", "tls-rpt", NULL, time(NULL), &to, 1, j->texts[i],
                                strlen(j->texts[i]), j->oq) < 0)
            log_error("tls-rpt domain=%s: cannot queue the report: %s", j->domain, strerror(errno));
        else
            log_info("tls-rpt domain=%s to=<%s>: report queued", j->domain, j->rua);
    }
}

/* tlsrpt_queue_done - loop: the job ends. */
static void
tlsrpt_queue_done(uv_work_t *w, int status)
{
    struct tlsrpt_job *j = w->data;

    (void)status;
    (*j->t->jobs)--;
    if (--j->pending == 0)
        tlsrpt_job_free(j);
}

/* tlsrpt_rua - the first mailto: address and the first https: URL of a "v=TLSRPTv1;
 * rua=URI,URI..." record (RFC 8460 3) into mailto and https ("" when none); -1 when it
 * has neither. */
static int
tlsrpt_rua(const char *txt, char *mailto, size_t mlen, char *https, size_t hlen)
{
    const char *p = strstr(txt, "rua=");
    char host[256];
    int port;

    mailto[0] = https[0] = '\0';
    if (strncmp(txt, "v=TLSRPTv1", 10) != 0 || p == NULL)
        return -1;
    for (p += 4; *p != '\0' && *p != ';';) {
        size_t n;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        n = strcspn(p, ",; \t");
        if (n > 7 && strncasecmp(p, "mailto:", 7) == 0 && mailto[0] == '\0') {
            size_t k = strcspn(p + 7, ",; \t!");
            if (k > 0 && k < mlen && memchr(p + 7, '@', k) != NULL) {
                memcpy(mailto, p + 7, k);
                mailto[k] = '\0';
            }
        } else if (n > 8 && strncasecmp(p, "https://", 8) == 0 && https[0] == '\0' && n < hlen) {
            memcpy(https, p, n);
            https[n] = '\0';
            if (tlsrpt_post_url(https, host, sizeof(host), &port) < 0)
                https[0] = '\0';
        }
        p += n;
    }
    return mailto[0] != '\0' || https[0] != '\0' ? 0 : -1;
}

/* tlsrpt_unlook - j waits no more (off t->looking). */
static void
tlsrpt_unlook(struct tlsrpt_job *j)
{
    for (struct tlsrpt_job **pp = &j->t->looking; *pp != NULL; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
}

/* tlsrpt_post_work - pool: each day's report POSTed to the https: rua. */
static void
tlsrpt_post_work(uv_work_t *w)
{
    struct tlsrpt_job *j = w->data;
    const struct tlsrpt *t = j->t;
    char err[300];

    for (size_t i = 0; i < j->njsons; i++) {
        if (tlsrpt_post(j->url, j->ip, t->ca, t->calen, j->jsons[i], strlen(j->jsons[i]),
                        t->timeout_ms, err, sizeof(err)) < 0)
            log_warn("tls-rpt domain=%s url=%s: report not posted: %s", j->domain, j->url, err);
        else
            log_info("tls-rpt domain=%s url=%s: report posted", j->domain, j->url);
    }
}

/* tlsrpt_post_done - loop: the POST chain ends. */
static void
tlsrpt_post_done(uv_work_t *w, int status)
{
    struct tlsrpt_job *j = w->data;

    (void)status;
    (*j->t->jobs)--;
    if (--j->pending == 0)
        tlsrpt_job_free(j);
}

/* tlsrpt_url_addr - loop: the https: rua's host address; POST on the pool. */
static void
tlsrpt_url_addr(struct dns_result *res, void *arg)
{
    struct tlsrpt_job *j = arg;

    tlsrpt_unlook(j);
    if (res->status != DNS_OK || res->n == 0) {
        log_warn("tls-rpt domain=%s url=%s: host not found: %s", j->domain, j->url, res->why);
        dns_result_free(&res);
        if (--j->pending == 0)
            tlsrpt_job_free(j);
        return;
    }
    snprintf(j->ip, sizeof(j->ip), "%s", res->addr[0].text);
    dns_result_free(&res);
    j->pw.data = j;
    (*j->t->jobs)++;
    if (uv_queue_work(j->t->loop, &j->pw, tlsrpt_post_work, tlsrpt_post_done) < 0) {
        (*j->t->jobs)--;
        if (--j->pending == 0)
            tlsrpt_job_free(j);
    }
}

/* tlsrpt_txt_result - loop: the domain's _smtp._tls record; compose, then queue (mailto)
 * and POST (https). */
static void
tlsrpt_txt_result(struct dns_result *res, void *arg)
{
    struct tlsrpt_job *j = arg;
    char rua[320] = "", url[512] = "", host[256], from[320], uhost[256], rid[600];
    int found = 0, port;

    tlsrpt_unlook(j);
    for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
        if (strncmp(res->txt[i], "v=TLSRPTv1", 10) == 0 &&
            tlsrpt_rua(res->txt[i], rua, sizeof(rua), url, sizeof(url)) == 0)
            found++;
    dns_result_free(&res);
    if (found != 1) {
        log_info("tls-rpt domain=%s: no usable _smtp._tls record: counters dropped", j->domain);
        tlsrpt_job_free(j);
        return;
    }
    j->rua = rua[0] != '\0' ? xstrdup(rua) : NULL;
    j->url = url[0] != '\0' ? xstrdup(url) : NULL;
    server_hostname(j->cf, host, sizeof(host));
    if (j->cf->tls_rpt_from[0] != '\0')
        snprintf(from, sizeof(from), "%s", j->cf->tls_rpt_from);
    else
        snprintf(from, sizeof(from), "postmaster@%.250s", host);
    for (const struct tlsrpt_row *r = j->rows; r != NULL; r = r->next) {
        bool seen = false;
        for (const struct tlsrpt_row *q = j->rows; q != r && !seen; q = q->next)
            seen = strcmp(q->day, r->day) == 0;
        if (seen)
            continue;
        if (j->rua != NULL) {
            j->texts = xrealloc(j->texts, (j->ntexts + 1) * sizeof(*j->texts));
            j->texts[j->ntexts++] = tlsrpt_compose(j, r->day, host, from);
        }
        if (j->url != NULL) {
            struct buf b;
            buf_init(&b, TLSRPT_TEXT_MAX);
            tlsrpt_rid(rid, sizeof(rid), r->day, j->domain, host);
            tlsrpt_json(j, r->day, host, from, rid, &b);
            j->jsons = xrealloc(j->jsons, (j->njsons + 1) * sizeof(*j->jsons));
            j->jsons[j->njsons++] = xstrndup(buf_peek(&b), b.len);
            buf_free(&b);
        }
    }
    j->pending = 1; /* held while starting */
    if (j->rua != NULL) {
        j->w.data = j;
        (*j->t->jobs)++;
        j->pending++;
        if (uv_queue_work(j->t->loop, &j->w, tlsrpt_queue_work, tlsrpt_queue_done) < 0) {
            (*j->t->jobs)--;
            j->pending--;
        }
    }
    if (j->url != NULL && tlsrpt_post_url(j->url, uhost, sizeof(uhost), &port) == 0) {
        j->pending++;
        j->next = j->t->looking;
        j->t->looking = j;
        dns_addr(j->t->dns, uhost, tlsrpt_url_addr, j);
    }
    if (--j->pending == 0)
        tlsrpt_job_free(j);
}

/* tlsrpt_due - loop: the timer fired: the owner sends, the timer is set again. */
static void
tlsrpt_due(uv_timer_t *tm)
{
    struct tlsrpt *t = tm->data;

    t->due(t->due_arg);
    tlsrpt_schedule(t, t->period, t->due, t->due_arg);
}

/* tlsrpt_schedule - see tlsrpt.h. */
void
tlsrpt_schedule(struct tlsrpt *t, long period, void (*due)(void *arg), void *arg)
{
    time_t now = time(NULL);
    long next, spread;
    unsigned rnd;

    /* each server its own delay: seeded from the kernel, not a fixed random() stream */
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (unsigned)now ^ (unsigned)getpid();
    if (period < 1)
        period = 1;
    if (!t->timing) {
        uv_timer_init(t->loop, &t->timer);
        uv_unref((uv_handle_t *)&t->timer);
        t->timer.data = t;
        t->timing = true;
    }
    t->period = period;
    t->due = due;
    t->due_arg = arg;
    /* RFC 8460 4.3 (as DMARC's reporters): after the period ends, with a random delay so
     * that not every sender posts at 00:00Z; the delay is at most 1/24 of the period */
    spread = period / 24;
    next = (long)((now / period + 1) * period - now) +
           (spread > 0 ? (long)(rnd % (unsigned long)spread) : 0);
    uv_timer_start(&t->timer, tlsrpt_due, (uint64_t)next * 1000, 0);
}

/* tlsrpt_stop - see tlsrpt.h. */
void
tlsrpt_stop(struct tlsrpt *t)
{
    if (t != NULL && t->timing) {
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, NULL);
        t->timing = false;
    }
}

/* tlsrpt_row_due - r goes out in a send of the days before before (NULL: every day). */
static bool
tlsrpt_row_due(const struct tlsrpt_row *r, const char *before)
{
    return before == NULL || strcmp(r->day, before) < 0;
}

/* tlsrpt_send - see tlsrpt.h. */
size_t
tlsrpt_send(struct tlsrpt *t, struct conf *cf, struct outq *oq, const char *before)
{
    size_t n = 0;

    for (;;) {
        struct tlsrpt_job *j;
        struct tlsrpt_row *first = t->rows;
        char name[300];
        while (first != NULL && !tlsrpt_row_due(first, before))
            first = first->next;
        if (first == NULL)
            break;
        j = xcalloc(1, sizeof(*j));
        j->t = t;
        j->cf = conf_ref(cf);
        j->oq = oq;
        j->domain = xstrdup(first->domain);
        for (struct tlsrpt_row **pp = &t->rows, *r; (r = *pp) != NULL;) {
            if (strcasecmp(r->domain, j->domain) != 0 || !tlsrpt_row_due(r, before)) {
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            r->next = j->rows;
            j->rows = r;
            t->nrows--;
        }
        snprintf(name, sizeof(name), "_smtp._tls.%s", j->domain);
        j->next = t->looking;
        t->looking = j;
        dns_txt(t->dns, name, tlsrpt_txt_result, j);
        n++;
    }
    if (n > 0)
        tlsrpt_save(t);
    return n;
}
