/*
 * http - dlist's small HTTP endpoint on its server core listener (dlist_http_port): the
 * RFC 8058 one-click unsubscribe page and POST (unsub.h), nothing else.
 *
 * Contract:
 * - Owns: one struct http_sess per connection (a struct sess, sess.h).
 * - Blocks on: nothing on the loop: requests are parsed with Debian's http-parser
 *   (libhttp-parser), the members file changes on the thread pool (unsub_remove).
 * - TLS: with dlist_http_tls (the default) every connection begins with a TLS handshake
 *   with the server's certificate (tls_cert/tls_key; dlist refuses to start without
 *   one); dlist_http_tls false serves plain HTTP for a proxy in front.
 * - Bounds: one request per connection (answered with Connection: close); the request
 *   line and headers at most HTTP_HEAD_MAX bytes (else 431), the URL HTTP_URL_MAX (414),
 *   the body HTTP_BODY_MAX (413); the request within dlist_http_timeout (default 30 s)
 *   of the moment it began to be awaited (the server core's deadlines: trickling bytes
 *   gains nothing), else 408 and close. A request the parser refuses is 400.
 * - Routes: GET and POST UNSUB_PATH (unsub.h), GET / a one-line page; another path 404,
 *   another method 405. Every answer is a small UTF-8 HTML page, every value from the
 *   request HTML-escaped, with Cache-Control: no-store, a Content-Security-Policy that
 *   forbids scripts and allows the form to post only to this origin, and no-referrer.
 */
#ifndef DLIST_HTTP_H
#define DLIST_HTTP_H

#include "sess.h"

#define HTTP_HEAD_MAX 8192
#define HTTP_URL_MAX 2048
#define HTTP_BODY_MAX 4096

struct server;

extern const struct sess_ops http_ops;

/* http_start - proto->start's part for the endpoint: with a port set, the token key
 * (token_init in dlist_path) and, with dlist_http_tls, a certificate are required (fatal
 * otherwise). */
void http_start(struct server *srv);

#endif
