/*
 * curl_lazy - libcurl loaded on first use. See curl_lazy.h.
 */
#include "curl_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct curl_lazy curl_lazy_table;
static const struct curl_lazy *curl_lazy_ok;
static char curl_lazy_err[256];
static pthread_once_t curl_lazy_once = PTHREAD_ONCE_INIT;

/* curl_lazy_sym - name from h into *slot; false (with the reason) if it is missing. */
static int
curl_lazy_sym(void *h, const char *name, void *slot)
{
    void *f = dlsym(h, name);

    if (f == NULL) {
        snprintf(curl_lazy_err, sizeof(curl_lazy_err), "libcurl has no %s", name);
        return -1;
    }
    *(void **)slot = f;
    return 0;
}

/* curl_lazy_open - the once-only work of curl_lazy_load. */
static void
curl_lazy_open(void)
{
    CURLcode (*global_init)(long flags) = NULL;
    struct curl_lazy *t = &curl_lazy_table;
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        snprintf(curl_lazy_err, sizeof(curl_lazy_err), "cannot load libcurl.so.4: %s", dlerror());
        return;
    }
    if (curl_lazy_sym(h, "curl_global_init", &global_init) < 0 ||
        curl_lazy_sym(h, "curl_easy_init", &t->easy_init) < 0 ||
        curl_lazy_sym(h, "curl_easy_setopt", &t->easy_setopt) < 0 ||
        curl_lazy_sym(h, "curl_easy_perform", &t->easy_perform) < 0 ||
        curl_lazy_sym(h, "curl_easy_getinfo", &t->easy_getinfo) < 0 ||
        curl_lazy_sym(h, "curl_easy_cleanup", &t->easy_cleanup) < 0 ||
        curl_lazy_sym(h, "curl_easy_strerror", &t->easy_strerror) < 0 ||
        curl_lazy_sym(h, "curl_slist_append", &t->slist_append) < 0 ||
        curl_lazy_sym(h, "curl_slist_free_all", &t->slist_free_all) < 0)
        return; /* the handle stays open: harmless, and dlclose could unload under a user */
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_lazy_err, sizeof(curl_lazy_err), "curl_global_init failed");
        return;
    }
    curl_lazy_ok = t;
}

const struct curl_lazy *
curl_lazy_load(char *err, size_t errlen)
{
    pthread_once(&curl_lazy_once, curl_lazy_open);
    if (curl_lazy_ok == NULL)
        snprintf(err, errlen, "%s", curl_lazy_err);
    return curl_lazy_ok;
}

CURL *
curl_lazy_https(const struct curl_lazy **lcp, const char *url, const char *host, int port,
                const char *ip, long timeout_ms, const void *ca, size_t calen, char *cerr,
                struct curl_slist **rl, char *err, size_t errlen)
{
    const struct curl_lazy *lc = curl_lazy_load(err, errlen);
    char resolve[400];
    CURL *c = lc != NULL ? lc->easy_init() : NULL;

    *lcp = lc;
    *rl = NULL;
    if (c == NULL) {
        if (lc != NULL) /* else err says why libcurl did not load */
            snprintf(err, errlen, "cannot start libcurl");
        return NULL;
    }
    snprintf(resolve, sizeof(resolve), strchr(ip, ':') != NULL ? "%s:%d:[%s]" : "%s:%d:%s", host,
             port, ip);
    *rl = lc->slist_append(NULL, resolve);
    lc->easy_setopt(c, CURLOPT_URL, url);
    lc->easy_setopt(c, CURLOPT_RESOLVE, *rl);
    lc->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    lc->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    lc->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    lc->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    lc->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    lc->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    lc->easy_setopt(c, CURLOPT_USERAGENT, "dmail-dsmtp");
    lc->easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (ca != NULL) {
        struct curl_blob b = {.data = (void *)ca, .len = calen, .flags = CURL_BLOB_COPY};
        lc->easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
    return c;
}
