/*
 * unsub - RFC 8058 one-click unsubscribe: the URL the post path puts into
 * List-Unsubscribe, and what dlist's HTTP endpoint (http.h) does with a request for it.
 *
 * Contract:
 * - Owns: nothing between calls.
 * - URL: dlist_http_url + "/unsubscribe?list=L&addr=A&t=TOKEN", L and A percent-encoded,
 *   TOKEN token.h's token for (L, A, UNSUB_ACTION) valid UNSUB_TOKEN_DAYS days. The URL
 *   names one subscriber, so the fields are per recipient (unsub_xheader):
 *     List-Unsubscribe: <URL>, <mailto:LIST-request@DOMAIN?subject=unsubscribe>
 *     List-Unsubscribe-Post: List-Unsubscribe=One-Click
 *   A post (and a digest) is one XVERP transaction with one shared text, so when the list
 *   can have the URL (unsub_oneclick) the text carries no List-Unsubscribe and the outbox
 *   file names the list (outbox.h "L"); smtpout gives each recipient its fields through
 *   dsmtp's XHEADER (RCPT ... XHEADER=, made while RCPT is written: nothing is kept per
 *   member), or, when the SMTP server did not announce XHEADER, puts the shared mailto
 *   field (unsub_mailto) above every copy. Without the URL the text carries the mailto
 *   field as before. DOMAIN is dlist_domain (lists.h).
 * - Requests (unsub_check, on the loop: computing only): GET shows a confirmation page
 *   whose form POSTs back (a GET never changes anything: mail scanners follow links);
 *   POST with the form field List-Unsubscribe=One-Click in an
 *   application/x-www-form-urlencoded or multipart body unsubscribes. A missing or
 *   repeated parameter, an unknown list: 400; a token that does not verify: 403; an
 *   expired one: 403 saying so; a POST without List-Unsubscribe=One-Click: 400.
 * - unsub_remove (thread pool): the address removed from the members file under the
 *   members lock (admin.h), atomically; not a member any more is success too (a second
 *   click, or another path removed it first).
 */
#ifndef DLIST_UNSUB_H
#define DLIST_UNSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lists.h"

#define UNSUB_ACTION "unsubscribe"
#define UNSUB_TOKEN_DAYS 365
#define UNSUB_PATH "/unsubscribe"
#define UNSUB_XHEADER_MAX 1000 /* dsmtp's XHEADER: decoded octets at most */

struct conf;

/* unsub_url - the one-click URL for addr on list into out[len]. 0, or -1: no
 * dlist_http_url, no token key (token_init), or it does not fit. */
int unsub_url(const struct conf *cf, const char *list, const char *addr, char *out, size_t len);

/* unsub_oneclick - list's posts can carry the URL (unsub_url works: dlist_http_url and a
 * token key). */
bool unsub_oneclick(const struct conf *cf, const char *list);

/* unsub_mailto - "<mailto:LIST-request@DOMAIN?subject=unsubscribe>" into out[len]. 0, or
 * -1: it does not fit. */
int unsub_mailto(const struct conf *cf, const char *list, char *out, size_t len);

/* unsub_xheader - addr's two fields above (CRLF between them, none after the last) as
 * xtext for dsmtp's XHEADER into out[len] (NUL-terminated); the List-Unsubscribe field
 * with the mailto alone when addr has no URL (unsub_url fails) or the two would be longer
 * than UNSUB_XHEADER_MAX octets decoded. The xtext's length, 0 when not even that fits. */
size_t unsub_xheader(const struct conf *cf, const char *list, const char *addr, char *out,
                     size_t len);

/* A request for UNSUB_PATH, parsed from its query. */
struct unsub_req {
    const struct lists_def *def;
    char addr[320];
    char token[64];
};

/* unsub_check - the query (after '?', raw) and, for a POST, body checked at now: 0 and
 * *req filled when the request may go on (GET: show the form; POST: remove), else the
 * HTTP status to answer with *why (a sentence for the page). */
int unsub_check(const struct conf *cf, const char *query, size_t qlen, bool post, const char *body,
                size_t blen, time_t now, struct unsub_req *req, const char **why);

/* unsub_remove - pool: req's address off the list. 1 removed, 0 was no member, -1 the
 * members file could not be read or written (err). */
int unsub_remove(const struct conf *cf, const struct unsub_req *req, char *err, size_t errlen);

#endif
