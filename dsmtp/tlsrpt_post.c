/*
 * tlsrpt_post - a TLS report POSTed to an https: rua, gzip-compressed. See tlsrpt_post.h.
 */
#include "tlsrpt_post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "curl_lazy.h"
#include "xmem.h"

/* tlsrpt_post_url - see tlsrpt_post.h. */
int
tlsrpt_post_url(const char *url, char *host, size_t hlen, int *port)
{
    const char *h, *e;
    size_t n;

    if (strncasecmp(url, "https://", 8) != 0)
        return -1;
    h = url + 8;
    n = strcspn(h, ":/?#@[");
    if (n == 0 || n >= hlen || (h[n] != '\0' && strchr(":/", h[n]) == NULL))
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = 443;
    e = h + n;
    if (*e == ':') {
        char *end;
        long p = strtol(e + 1, &end, 10);
        if (end == e + 1 || p < 1 || p > 65535 || (*end != '\0' && *end != '/'))
            return -1;
        *port = (int)p;
    }
    return 0;
}

/* tlsrpt_gzip - json in gzip form (RFC 1952), malloc'd into *out; 0 or -1. */
static int
tlsrpt_gzip(const char *json, size_t len, unsigned char **out, size_t *outlen)
{
    z_stream z;
    uLong cap = compressBound((uLong)len) + 64;
    unsigned char *buf = xmalloc(cap);

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(buf);
        return -1;
    }
    z.next_in = (unsigned char *)json;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        free(buf);
        return -1;
    }
    *outlen = z.total_out;
    deflateEnd(&z);
    *out = buf;
    return 0;
}

/* tlsrpt_discard - curl: the answer's body is not wanted. */
static size_t
tlsrpt_discard(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

/* tlsrpt_post - see tlsrpt_post.h. */
int
tlsrpt_post(const char *url, const char *ip, const char *ca, size_t calen, const char *json,
            size_t len, long timeout_ms, char *err, size_t errlen)
{
    char host[256], cerr[CURL_ERROR_SIZE] = "";
    const struct curl_lazy *lc;
    struct curl_slist *rl, *hdr;
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    long status = 0;
    int port, rc = -1;
    CURLcode cc;
    CURL *c;

    if (tlsrpt_post_url(url, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "%s: not an https://HOST[:PORT]/PATH URL", url);
        return -1;
    }
    if (tlsrpt_gzip(json, len, &gz, &gzlen) < 0) {
        snprintf(err, errlen, "cannot compress the report");
        return -1;
    }
    c = curl_lazy_https(&lc, url, host, port, ip, timeout_ms, ca, calen, cerr, &rl, err, errlen);
    if (c == NULL) {
        free(gz);
        return -1;
    }
    hdr = lc->slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
    lc->easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    lc->easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)gz);
    lc->easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)gzlen);
    lc->easy_setopt(c, CURLOPT_WRITEFUNCTION, tlsrpt_discard);
    cc = lc->easy_perform(c);
    lc->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        snprintf(err, errlen, "%s: %s", url, cerr[0] != '\0' ? cerr : lc->easy_strerror(cc));
    else if (status < 200 || status > 299)
        snprintf(err, errlen, "%s: HTTP status %ld", url, status);
    else
        rc = 0;
    lc->slist_free_all(rl);
    lc->slist_free_all(hdr);
    lc->easy_cleanup(c);
    free(gz);
    return rc;
}
