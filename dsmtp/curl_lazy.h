/*
 * curl_lazy - libcurl loaded on first use (dlopen), so a dsmtp that never fetches an
 * MTA-STS policy never maps libcurl and the libraries it brings (gnutls, krb5, ldap,
 * ssh2...: about 3.5 MB of PSS measured in `make bench`).
 *
 * Contract:
 * - curl_lazy_load: dlopen("libcurl.so.4"), look up the functions below and run
 *   curl_global_init, once per process (pthread_once); thread-safe; blocks (file I/O): call
 *   it on the thread pool. Returns the table, or NULL with a reason in err (logged once by
 *   the caller) when the library or a function is missing.
 * - The table's pointers are libcurl's own functions: same arguments, same results.
 * - curl_lazy_https: a new easy handle for one HTTPS request to url, whose host:port is
 *   pinned to ip (CURLOPT_RESOLVE, the address dsmtp resolved through c-ares), with what
 *   every dsmtp fetch wants: https only, no redirects, no signals, peer and host verified
 *   (against the PEM blob ca when not NULL), timeout_ms, curl's message into cerr
 *   (CURL_ERROR_SIZE). *rl receives the resolve list, freed by the caller with
 *   slist_free_all after the handle's cleanup. NULL (err set) when libcurl did not load
 *   or no handle could be made.
 */
#ifndef DSMTP_CURL_LAZY_H
#define DSMTP_CURL_LAZY_H

#include <curl/curl.h>
#include <stddef.h>

struct curl_lazy {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
    CURLcode (*easy_perform)(CURL *c);
    CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *c);
    const char *(*easy_strerror)(CURLcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

/* curl_lazy_load - see above. */
const struct curl_lazy *curl_lazy_load(char *err, size_t errlen);

/* curl_lazy_https - see above. */
CURL *curl_lazy_https(const struct curl_lazy **lcp, const char *url, const char *host, int port,
                      const char *ip, long timeout_ms, const void *ca, size_t calen, char *cerr,
                      struct curl_slist **rl, char *err, size_t errlen);

#endif
