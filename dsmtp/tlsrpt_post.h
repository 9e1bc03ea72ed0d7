/*
 * tlsrpt_post - a TLS report to an https: rua (RFC 8460 5.3): the JSON gzip-compressed
 * (zlib) and POSTed as application/tlsrpt+gzip with libcurl (curl_lazy.h).
 *
 * Contract:
 * - Blocks on: compression and the HTTPS exchange: thread pool only.
 * - tlsrpt_post_url splits "https://HOST[:PORT]/PATH" (no userinfo, no IP literal in
 *   brackets); anything else is refused.
 * - tlsrpt_post connects to ip (looked up by the caller through c-ares, given to curl with
 *   CURLOPT_RESOLVE: curl resolves nothing), verifies the server's certificate for HOST
 *   against the system's CAs and ca (PEM text, may be NULL), follows no redirect, gives up
 *   after timeout_ms. Any 2xx answer is success; anything else is a failure with why in
 *   err.
 */
#ifndef DSMTP_TLSRPT_POST_H
#define DSMTP_TLSRPT_POST_H

#include <stddef.h>

/* tlsrpt_post_url - host (at most hlen-1 bytes) and port of an https: URL; 0 or -1. */
int tlsrpt_post_url(const char *url, char *host, size_t hlen, int *port);
/* tlsrpt_post - see above. 0, or -1 with err set. */
int tlsrpt_post(const char *url, const char *ip, const char *ca, size_t calen, const char *json,
                size_t len, long timeout_ms, char *err, size_t errlen);

#endif
