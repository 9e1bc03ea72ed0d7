/*
 * mtasts - MTA-STS policies (RFC 8461): TXT lookup, HTTPS fetch on the pool, cache,
 * MX matching. See mtasts.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "file.h"
#include "statefile.h"
#include "log.h"
#include "mtasts.h"
#include "curl_lazy.h"
#include "xmem.h"

#define MTASTS_CA_MAX (1024 * 1024)    /* mta_sts_ca's size limit */
#define MTASTS_CACHE_MAX (4096 * 1024) /* the cache file's */

struct mtasts_entry {
    struct mtasts_entry *next;
    char *domain;
    struct mtasts_policy p;
};

struct mtasts {
    uv_loop_t *loop;
    struct dns *dns;
    long *jobs;
    int port;
    char *ca; /* the CA file's text (read at start, before privileges drop), or NULL */
    size_t calen;
    long timeout_ms;
    unsigned long fetches;
    struct mtasts_entry *cache;
    struct statefile file; /* the cache's file (path NULL: none) */
};

struct mtasts_req {
    struct mtasts *s;
    char *domain;
    mtasts_cb cb;
    void *arg;
    bool cancelled, working;
    struct dns_query *q;
    char id[33];
    char ip[64];
    /* the pool's part */
    char *body;
    size_t len;
    bool toolong;
    char err[CURL_ERROR_SIZE + 512];
    uv_work_t w;
};

/* mtasts_mode_name - the mode's policy-file word. */
const char *
mtasts_mode_name(enum mtasts_mode m)
{
    return m == MTASTS_ENFORCE ? "enforce" : m == MTASTS_TESTING ? "testing" : "none";
}

/* mtasts_policy_clear - free the mx patterns. */
void
mtasts_policy_clear(struct mtasts_policy *p)
{
    for (size_t i = 0; i < p->nmx; i++)
        free(p->mx[i]);
    p->nmx = 0;
}

/* mtasts_mx_valid - an mx value: a host name, optionally "*." first. */
static bool
mtasts_mx_valid(const char *v)
{
    if (strncmp(v, "*.", 2) == 0)
        v += 2;
    if (*v == '\0' || *v == '.' || strlen(v) > 253)
        return false;
    for (const char *c = v; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.' && *c != '_')
            return false;
    return true;
}

/* mtasts_parse - see mtasts.h. */
int
mtasts_parse(const char *text, size_t len, struct mtasts_policy *p, char *err, size_t errlen)
{
    bool have_version = false, have_mode = false, have_age = false;
    size_t lineno = 0;
    const char *end = text + len;

    memset(p, 0, sizeof(*p));
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = nl != NULL ? (size_t)(nl - text) : (size_t)(end - text);
        char line[1024], *colon, *key, *val, *e;

        lineno++;
        if (n > 0 && text[n - 1] == '\r')
            n--;
        if (n >= sizeof(line)) {
            snprintf(err, errlen, "line %zu: longer than %zu bytes", lineno, sizeof(line) - 1);
            goto bad;
        }
        memcpy(line, text, n);
        line[n] = '\0';
        text = nl != NULL ? nl + 1 : end;
        if (n == 0)
            continue;
        if (memchr(line, '\0', n) != NULL || (colon = strchr(line, ':')) == NULL) {
            snprintf(err, errlen, "line %zu: not 'key: value'", lineno);
            goto bad;
        }
        *colon = '\0';
        key = line;
        val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        e = val + strlen(val);
        while (e > val && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (strcmp(key, "version") == 0) {
            if (have_version || strcmp(val, "STSv1") != 0) {
                snprintf(err, errlen, "line %zu: version '%.40s' (STSv1 once)", lineno, val);
                goto bad;
            }
            have_version = true;
        } else if (strcmp(key, "mode") == 0) {
            if (have_mode) {
                snprintf(err, errlen, "line %zu: a second mode", lineno);
                goto bad;
            }
            if (strcmp(val, "enforce") == 0)
                p->mode = MTASTS_ENFORCE;
            else if (strcmp(val, "testing") == 0)
                p->mode = MTASTS_TESTING;
            else if (strcmp(val, "none") == 0)
                p->mode = MTASTS_NONE;
            else {
                snprintf(err, errlen, "line %zu: unknown mode '%.40s'", lineno, val);
                goto bad;
            }
            have_mode = true;
        } else if (strcmp(key, "max_age") == 0) {
            char *x;
            long v;
            if (have_age || !isdigit((unsigned char)val[0]) || strlen(val) > 10) {
                snprintf(err, errlen, "line %zu: max_age '%.40s'", lineno, val);
                goto bad;
            }
            v = strtol(val, &x, 10);
            if (*x != '\0' || v > MTASTS_MAX_AGE) {
                snprintf(err, errlen, "line %zu: max_age '%.40s' (0 to %ld)", lineno, val,
                         MTASTS_MAX_AGE);
                goto bad;
            }
            p->max_age = v;
            have_age = true;
        } else if (strcmp(key, "mx") == 0) {
            if (!mtasts_mx_valid(val)) {
                snprintf(err, errlen, "line %zu: mx '%.60s' is not a host name pattern", lineno,
                         val);
                goto bad;
            }
            if (p->nmx == MTASTS_MX_MAX) {
                snprintf(err, errlen, "line %zu: more than %d mx lines", lineno, MTASTS_MX_MAX);
                goto bad;
            }
            p->mx[p->nmx++] = xstrdup(val);
        } /* other keys: extensions, ignored (RFC 8461 3.2) */
    }
    if (!have_version || !have_mode || !have_age) {
        snprintf(err, errlen, "no %s", !have_version ? "version" : !have_mode ? "mode" : "max_age");
        goto bad;
    }
    if (p->mode != MTASTS_NONE && p->nmx == 0) {
        snprintf(err, errlen, "mode %s without an mx", mtasts_mode_name(p->mode));
        goto bad;
    }
    return 0;

bad:
    mtasts_policy_clear(p);
    return -1;
}

/* mtasts_txt_id - see mtasts.h. */
int
mtasts_txt_id(const char *txt, char *id, size_t idlen)
{
    const char *s = txt;
    bool have = false;

    if (strncmp(s, "v=STSv1", 7) != 0 || (s[7] != ';' && s[7] != ' ' && s[7] != '\0'))
        return -1;
    s += 7;
    while (*s != '\0') {
        size_t n;
        while (*s == ' ' || *s == '\t' || *s == ';')
            s++;
        if (*s == '\0')
            break;
        n = strcspn(s, ";");
        if (strncmp(s, "id=", 3) == 0) {
            size_t k = 0;
            const char *v = s + 3;
            while (k < n - 3 && isalnum((unsigned char)v[k]))
                k++;
            while (k + 3 < n && (v[k] == ' ' || v[k] == '\t'))
                k++;
            if (have || k != n - 3 || n - 3 == 0 || n - 3 > 32 || n - 3 >= idlen)
                return -1;
            memcpy(id, v, n - 3);
            id[n - 3] = '\0';
            while (id[0] != '\0' && !isalnum((unsigned char)id[strlen(id) - 1]))
                id[strlen(id) - 1] = '\0';
            have = true;
        }
        s += n;
    }
    return have ? 0 : -1;
}

/* mtasts_host_eq - two host names equal, case and a final dot ignored. */
static bool
mtasts_host_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    if (alen > 0 && a[alen - 1] == '.')
        alen--;
    if (blen > 0 && b[blen - 1] == '.')
        blen--;
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

/* mtasts_mx_match - see mtasts.h. */
bool
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
    for (size_t i = 0; i < p->nmx; i++) {
        const char *pat = p->mx[i];
        if (strncmp(pat, "*.", 2) == 0) {
            const char *dot = strchr(host, '.');
            if (dot != NULL && dot != host && mtasts_host_eq(dot + 1, strlen(dot + 1), pat + 2))
                return true;
        } else if (mtasts_host_eq(host, strlen(host), pat)) {
            return true;
        }
    }
    return false;
}

/* mtasts_find - the cache entry of domain, or NULL. */
static struct mtasts_entry *
mtasts_find(struct mtasts *s, const char *domain)
{
    for (struct mtasts_entry *e = s->cache; e != NULL; e = e->next)
        if (strcasecmp(e->domain, domain) == 0)
            return e;
    return NULL;
}

/* mtasts_cached - the unexpired cached policy of domain, or NULL. */
static const struct mtasts_policy *
mtasts_cached(struct mtasts *s, const char *domain)
{
    struct mtasts_entry *e = mtasts_find(s, domain);

    return e != NULL && e->p.expires > time(NULL) ? &e->p : NULL;
}

/* mtasts_format - the cache file's text: one line per policy,
 * "domain id mode max_age expires mx,mx,...". */
static void
mtasts_format(void *arg, struct buf *b)
{
    const struct mtasts *s = arg;

    buf_printf(b, "# dmail MTA-STS policy cache: domain id mode max_age expires mx,...\n");
    for (const struct mtasts_entry *e = s->cache; e != NULL; e = e->next) {
        buf_printf(b, "%s %s %s %ld %lld ", e->domain, e->p.id, mtasts_mode_name(e->p.mode),
                   e->p.max_age, (long long)e->p.expires);
        for (size_t i = 0; i < e->p.nmx; i++)
            buf_printf(b, "%s%s", i > 0 ? "," : "", e->p.mx[i]);
        buf_printf(b, "%s", e->p.nmx == 0 ? "-\n" : "\n");
    }
}

/* mtasts_save - the cache changed: written on the pool (statefile.h). */
static void
mtasts_save(struct mtasts *s)
{
    statefile_save(&s->file);
}

/* mtasts_load_line - one line of the cache file into the cache; -1 if malformed. */
static int
mtasts_load_line(struct mtasts *s, char *line, time_t now)
{
    char *f[6], *save = NULL, *mx;
    struct mtasts_entry *e;
    struct mtasts_policy p = {0};
    size_t n = 0;

    for (char *t = strtok_r(line, " ", &save); t != NULL && n < 6; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    if (n != 6 || strlen(f[1]) >= sizeof(p.id))
        return -1;
    if (strcmp(f[2], "enforce") == 0)
        p.mode = MTASTS_ENFORCE;
    else if (strcmp(f[2], "testing") == 0)
        p.mode = MTASTS_TESTING;
    else if (strcmp(f[2], "none") != 0)
        return -1;
    p.max_age = strtol(f[3], NULL, 10);
    p.expires = (time_t)strtoll(f[4], NULL, 10);
    if (p.expires <= now || p.max_age < 0 || p.max_age > MTASTS_MAX_AGE)
        return 0; /* expired: dropped */
    snprintf(p.id, sizeof(p.id), "%s", f[1]);
    save = NULL;
    for (mx = strtok_r(f[5], ",", &save);
         mx != NULL && strcmp(mx, "-") != 0 && p.nmx < MTASTS_MX_MAX;
         mx = strtok_r(NULL, ",", &save))
        p.mx[p.nmx++] = xstrdup(mx);
    e = xcalloc(1, sizeof(*e));
    e->domain = xstrdup(f[0]);
    e->p = p;
    e->next = s->cache;
    s->cache = e;
    return 0;
}

/* mtasts_load - the cache file, at start (before the loop runs). */
static void
mtasts_load(struct mtasts *s)
{
    char *text = NULL, *line, *save = NULL;
    size_t len = 0, n = 0, lineno = 0;
    time_t now = time(NULL);

    if (file_read_all(s->file.path, MTASTS_CACHE_MAX, &text, &len) < 0) {
        if (errno != ENOENT)
            log_warn("mta-sts: cannot read the policy cache %s: %s", s->file.path, strerror(errno));
        return;
    }
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        if (mtasts_load_line(s, line, now) < 0)
            log_warn("mta-sts: %s:%zu: malformed, ignored", s->file.path, lineno);
        else
            n++;
    }
    free(text);
    log_debug("mta-sts: %zu cached policies read from %s", n, s->file.path);
}

/* mtasts_finish_why - the callback with p and problem, then free the request. */
static void
mtasts_finish_why(struct mtasts_req *r, const struct mtasts_policy *p, const char *problem)
{
    if (!r->cancelled)
        r->cb(r->arg, p, problem);
    free(r->body);
    free(r->domain);
    free(r);
}

/* mtasts_finish - the callback with p, no problem. */
static void
mtasts_finish(struct mtasts_req *r, const struct mtasts_policy *p)
{
    mtasts_finish_why(r, p, NULL);
}

/* mtasts_write - curl: collect the body up to MTASTS_BODY_MAX. */
static size_t
mtasts_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mtasts_req *r = arg;
    size_t n = size * nmemb;

    if (r->len + n > MTASTS_BODY_MAX) {
        r->toolong = true;
        return 0;
    }
    r->body = xrealloc(r->body, r->len + n + 1);
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* mtasts_fetch_work - pool: GET the policy with curl. */
static void
mtasts_fetch_work(uv_work_t *w)
{
    struct mtasts_req *r = w->data;
    struct mtasts *s = r->s;
    char url[400], host[300], cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *rl;
    const struct curl_lazy *lc;
    CURL *c;
    CURLcode rc;
    long status = 0;
    char *ctype = NULL;

    if (s->port == 443)
        snprintf(url, sizeof(url), "https://mta-sts.%s/.well-known/mta-sts.txt", r->domain);
    else
        snprintf(url, sizeof(url), "https://mta-sts.%s:%d/.well-known/mta-sts.txt", r->domain,
                 s->port);
    snprintf(host, sizeof(host), "mta-sts.%s", r->domain);
    c = curl_lazy_https(&lc, url, host, s->port, r->ip, s->timeout_ms, s->ca, s->calen, cerr, &rl,
                        r->err, sizeof(r->err));
    if (c == NULL)
        return;
    lc->easy_setopt(c, CURLOPT_MAXFILESIZE, (long)MTASTS_BODY_MAX);
    lc->easy_setopt(c, CURLOPT_WRITEFUNCTION, mtasts_write);
    lc->easy_setopt(c, CURLOPT_WRITEDATA, r);
    rc = lc->easy_perform(c);
    lc->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    lc->easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
    if (r->toolong)
        snprintf(r->err, sizeof(r->err), "%s: larger than %d bytes", url, MTASTS_BODY_MAX);
    else if (rc != CURLE_OK)
        snprintf(r->err, sizeof(r->err), "%s: %s", url,
                 cerr[0] != '\0' ? cerr : lc->easy_strerror(rc));
    else if (status != 200)
        snprintf(r->err, sizeof(r->err), "%s: HTTP status %ld", url, status);
    else if (ctype == NULL || strncasecmp(ctype, "text/plain", 10) != 0)
        snprintf(r->err, sizeof(r->err), "%s: content type %s, not text/plain", url,
                 ctype != NULL ? ctype : "none");
    lc->slist_free_all(rl);
    lc->easy_cleanup(c);
}

/* mtasts_fetch_done - loop: parse and cache the fetched policy. */
static void
mtasts_fetch_done(uv_work_t *w, int status)
{
    struct mtasts_req *r = w->data;
    struct mtasts *s = r->s;
    struct mtasts_policy p;
    struct mtasts_entry *e;
    char why[200];

    (*s->jobs)--;
    if (status < 0)
        snprintf(r->err, sizeof(r->err), "%s", uv_strerror(status));
    if (r->err[0] != '\0') {
        log_warn("mta-sts domain=%s: policy fetch failed: %s", r->domain, r->err);
        mtasts_finish_why(r, mtasts_cached(s, r->domain), "sts-policy-fetch-error");
        return;
    }
    s->fetches++;
    if (mtasts_parse(r->body != NULL ? r->body : "", r->len, &p, why, sizeof(why)) < 0) {
        log_warn("mta-sts domain=%s: policy refused: %s", r->domain, why);
        mtasts_finish_why(r, mtasts_cached(s, r->domain), "sts-policy-invalid");
        return;
    }
    snprintf(p.id, sizeof(p.id), "%s", r->id);
    p.expires = time(NULL) + p.max_age;
    if ((e = mtasts_find(s, r->domain)) == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->domain = xstrdup(r->domain);
        e->next = s->cache;
        s->cache = e;
    } else {
        mtasts_policy_clear(&e->p);
    }
    e->p = p;
    mtasts_save(s);
    log_info("mta-sts domain=%s id=%s mode=%s max_age=%ld mx=%zu: policy fetched", r->domain, p.id,
             mtasts_mode_name(p.mode), p.max_age, p.nmx);
    mtasts_finish(r, &e->p);
}

/* mtasts_addr_result - loop: the address of mta-sts.DOMAIN; fetch on the pool. */
static void
mtasts_addr_result(struct dns_result *res, void *arg)
{
    struct mtasts_req *r = arg;

    r->q = NULL;
    if (res->status != DNS_OK || res->n == 0) {
        log_warn("mta-sts domain=%s: policy host mta-sts.%s: %s", r->domain, r->domain, res->why);
        dns_result_free(&res);
        mtasts_finish_why(r, mtasts_cached(r->s, r->domain), "sts-policy-fetch-error");
        return;
    }
    snprintf(r->ip, sizeof(r->ip), "%s", res->addr[0].text);
    dns_result_free(&res);
    r->w.data = r;
    r->working = true;
    (*r->s->jobs)++;
    if (uv_queue_work(r->s->loop, &r->w, mtasts_fetch_work, mtasts_fetch_done) < 0) {
        (*r->s->jobs)--;
        log_warn("mta-sts domain=%s: cannot start the policy fetch", r->domain);
        mtasts_finish_why(r, mtasts_cached(r->s, r->domain), "sts-policy-fetch-error");
    }
}

/* mtasts_txt_result - loop: the _mta-sts record decides: cached policy, fetch, or none. */
static void
mtasts_txt_result(struct dns_result *res, void *arg)
{
    struct mtasts_req *r = arg;
    struct mtasts *s = r->s;
    const struct mtasts_policy *c = mtasts_cached(s, r->domain);
    int found = 0;
    char name[300];

    r->q = NULL;
    for (size_t i = 0; res->status == DNS_OK && i < res->n; i++) {
        char id[33];
        if (strncmp(res->txt[i], "v=STSv1", 7) != 0)
            continue;
        found++;
        if (mtasts_txt_id(res->txt[i], id, sizeof(id)) == 0)
            snprintf(r->id, sizeof(r->id), "%s", id);
        else
            found = 2; /* malformed counts as unusable */
    }
    dns_result_free(&res);
    if (found != 1) { /* none or unusable: a cached policy still holds (RFC 8461 5.1) */
        if (found > 1)
            log_warn("mta-sts domain=%s: _mta-sts record malformed or more than one", r->domain);
        mtasts_finish(r, c);
        return;
    }
    if (c != NULL && strcmp(c->id, r->id) == 0) {
        mtasts_finish(r, c);
        return;
    }
    snprintf(name, sizeof(name), "mta-sts.%s", r->domain);
    r->q = dns_addr(s->dns, name, mtasts_addr_result, r);
}

/* mtasts_get - see mtasts.h. */
struct mtasts_req *
mtasts_get(struct mtasts *s, const char *domain, mtasts_cb cb, void *arg)
{
    struct mtasts_req *r = xcalloc(1, sizeof(*r));
    char name[300];

    r->s = s;
    r->domain = xstrdup(domain);
    r->cb = cb;
    r->arg = arg;
    snprintf(name, sizeof(name), "_mta-sts.%s", domain);
    r->q = dns_txt(s->dns, name, mtasts_txt_result, r);
    return r;
}

/* mtasts_cancel - see mtasts.h. */
void
mtasts_cancel(struct mtasts_req *r)
{
    if (r->working) {
        r->cancelled = true; /* freed when the work ends */
        return;
    }
    if (r->q != NULL)
        dns_cancel(r->q);
    free(r->domain);
    free(r);
}

/* mtasts_new - see mtasts.h. */
struct mtasts *
mtasts_new(uv_loop_t *loop, struct dns *dns, long *jobs, int port, const char *ca, long timeout_ms,
           const char *path)
{
    struct mtasts *s = xcalloc(1, sizeof(*s));

    s->loop = loop;
    s->dns = dns;
    s->jobs = jobs;
    s->port = port;
    if (ca != NULL && ca[0] != '\0' && file_read_all(ca, MTASTS_CA_MAX, &s->ca, &s->calen) < 0)
        log_warn("mta-sts: mta_sts_ca %s: %s", ca, strerror(errno));
    s->timeout_ms = timeout_ms;
    statefile_init(&s->file, loop, jobs, path, "mta-sts: the policy cache", MTASTS_CACHE_MAX,
                   mtasts_format, s);
    if (s->file.path != NULL)
        mtasts_load(s);
    return s;
}

/* mtasts_fetches - see mtasts.h. */
unsigned long
mtasts_fetches(const struct mtasts *s)
{
    return s->fetches;
}

/* mtasts_free - see mtasts.h. */
void
mtasts_free(struct mtasts **sp)
{
    struct mtasts *s = *sp;

    if (s == NULL)
        return;
    *sp = NULL;
    while (s->cache != NULL) {
        struct mtasts_entry *e = s->cache;
        s->cache = e->next;
        mtasts_policy_clear(&e->p);
        free(e->domain);
        free(e);
    }
    free(s->ca);
    statefile_free(&s->file);
    free(s);
}
