/*
 * tlsrpt - TLS reporting (RFC 8460): counters, their file, the daily reports. See
 * tlsrpt.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "deliver.h"
#include "file.h"
#include "log.h"
#include "server.h"
#include "statefile.h"
#include "tlsrpt.h"
#include "xmem.h"

#define TLSRPT_FILE_MAX (4096 * 1024) /* the counters' file */
#define TLSRPT_TEXT_MAX (1024 * 1024) /* a report message */
#define TLSRPT_ROWS_MAX 100000        /* counter rows kept */

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
    struct tlsrpt_job *looking; /* jobs waiting for their TXT record */
};

/* A report job: one domain's rows, its TXT lookup, then the queue files on the pool. */
struct tlsrpt_job {
    struct tlsrpt_job *next; /* in t->looking */
    struct tlsrpt *t;
    struct conf *cf;
    struct outq *oq;
    char *domain;
    struct tlsrpt_row *rows;
    char *rua;
    char **texts; /* one message per day */
    size_t ntexts;
    uv_work_t w;
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
tlsrpt_new(uv_loop_t *loop, struct dns *dns, long *jobs, const char *path)
{
    struct tlsrpt *t = xcalloc(1, sizeof(*t));

    t->loop = loop;
    t->dns = dns;
    t->jobs = jobs;
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

/* tlsrpt_compose - the report message of one day of j's rows. */
static char *
tlsrpt_compose(const struct tlsrpt_job *j, const char *day, const char *host, const char *from)
{
    static const char *types[] = {"sts", "tlsa", "no-policy-found"};
    struct buf b, json;
    char rid[600], date[64], boundary[64];
    time_t now = time(NULL);
    struct tm tm;
    bool first = true;
    char *out;

    snprintf(rid, sizeof(rid), "%s.%s.%lld@%s", day, j->domain, (long long)now, host);
    snprintf(boundary, sizeof(boundary), "tlsrpt-%lld-%d", (long long)now, rand());
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
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
    conf_unref(&j->cf);
    free(j->rua);
    free(j->domain);
    free(j);
}

/* tlsrpt_queue_work - pool: each report into the queue. */
static void
tlsrpt_queue_work(uv_work_t *w)
{
    struct tlsrpt_job *j = w->data;
    struct deliver_qrcpt to = {j->rua, 0, NULL, 0, NULL};

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
    tlsrpt_job_free(j);
}

/* tlsrpt_rua - the first mailto: address of a "v=TLSRPTv1; rua=..." record into out. */
static int
tlsrpt_rua(const char *txt, char *out, size_t len)
{
    const char *p = strstr(txt, "rua="), *m;
    size_t n;

    if (strncmp(txt, "v=TLSRPTv1", 10) != 0 || p == NULL)
        return -1;
    m = strstr(p, "mailto:");
    if (m == NULL || m - p > 64)
        return -1;
    m += 7;
    n = strcspn(m, ",; \t!");
    if (n == 0 || n >= len || memchr(m, '@', n) == NULL)
        return -1;
    memcpy(out, m, n);
    out[n] = '\0';
    return 0;
}

/* tlsrpt_txt_result - loop: the domain's _smtp._tls record; compose and queue. */
static void
tlsrpt_txt_result(struct dns_result *res, void *arg)
{
    struct tlsrpt_job *j = arg;
    char rua[320] = "", host[256], from[320];
    int found = 0;

    for (struct tlsrpt_job **pp = &j->t->looking; *pp != NULL; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }

    for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
        if (strncmp(res->txt[i], "v=TLSRPTv1", 10) == 0 &&
            tlsrpt_rua(res->txt[i], rua, sizeof(rua)) == 0)
            found++;
    dns_result_free(&res);
    if (found != 1) {
        log_info("tls-rpt domain=%s: no usable _smtp._tls record: counters dropped", j->domain);
        tlsrpt_job_free(j);
        return;
    }
    j->rua = xstrdup(rua);
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
        j->texts = xrealloc(j->texts, (j->ntexts + 1) * sizeof(*j->texts));
        j->texts[j->ntexts++] = tlsrpt_compose(j, r->day, host, from);
    }
    j->w.data = j;
    (*j->t->jobs)++;
    if (uv_queue_work(j->t->loop, &j->w, tlsrpt_queue_work, tlsrpt_queue_done) < 0) {
        (*j->t->jobs)--;
        tlsrpt_job_free(j);
    }
}

/* tlsrpt_send - see tlsrpt.h. */
size_t
tlsrpt_send(struct tlsrpt *t, struct conf *cf, struct outq *oq)
{
    size_t n = 0;

    while (t->rows != NULL) {
        struct tlsrpt_job *j = xcalloc(1, sizeof(*j));
        char name[300];
        j->t = t;
        j->cf = conf_ref(cf);
        j->oq = oq;
        j->domain = xstrdup(t->rows->domain);
        for (struct tlsrpt_row **pp = &t->rows, *r; (r = *pp) != NULL;) {
            if (strcasecmp(r->domain, j->domain) != 0) {
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
