/*
 * http - the one-click unsubscribe endpoint's sessions: http-parser, routes, pages (see
 * http.h).
 */
#include "http.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "archive_html.h"
#include "conf.h"
#include "log.h"
#include "server.h"
#include "token.h"
#include "unsub.h"
#include "xmem.h"

/* The session states. */
#define HTTP_STATES(X)                                                                             \
    X(HS_READ, "read", SP_CMD)                                                                     \
    X(HS_TLS, "tls", SP_TLS)                                                                       \
    X(HS_QUIT, "quit", SP_CLOSE)
#define HTTP_ENUM(id, name, phase) id,
#define HTTP_NAME(id, name, phase) name,
#define HTTP_PHASE(id, name, phase) phase,
enum http_state { HTTP_STATES(HTTP_ENUM) };
static const char *const http_state_names[] = {HTTP_STATES(HTTP_NAME)};
static const unsigned char http_phases[] = {HTTP_STATES(HTTP_PHASE)};

struct http_sess {
    struct sess base;
    http_parser p;
    size_t fed;  /* bytes given to the parser before the head was complete */
    size_t head; /* bytes of header names and values */
    bool headers_done, complete;
    int refuse; /* a status decided while parsing (413, 414), or 0 */
    char url[HTTP_URL_MAX + 1];
    size_t url_len;
    char body[HTTP_BODY_MAX + 1];
    size_t body_len;
    /* the POST's job */
    uv_work_t work;
    struct unsub_req req;
    int removed;
    char err[300];
};

static inline struct http_sess *
http_of(struct sess *b)
{
    return (struct http_sess *)b;
}

/* http_answer - the response with status and a page: title, then text (escaped), then
 * html (the page's own markup, may be NULL), into the session's reply. */
static void
http_answer(struct http_sess *h, int status, const char *title, const char *text, const char *html)
{
    struct buf page, *r = &h->base.reply;
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 408 ? "Request Timeout"
                         : status == 413 ? "Content Too Large"
                         : status == 414 ? "URI Too Long"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";

    buf_init(&page, 16384);
    buf_printf(&page, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width\">\n<title>");
    archive_html_esc(&page, title, strlen(title));
    buf_printf(&page, "</title>\n</head>\n<body>\n<h1>");
    archive_html_esc(&page, title, strlen(title));
    buf_printf(&page, "</h1>\n<p>");
    archive_html_esc(&page, text, strlen(text));
    buf_printf(&page, "</p>\n%s</body>\n</html>\n", html != NULL ? html : "");
    buf_reset(r);
    buf_printf(r,
               "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
               "Content-Length: %zu\r\nCache-Control: no-store\r\n"
               "Content-Security-Policy: default-src 'none'; form-action 'self'\r\n"
               "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
               "X-Frame-Options: DENY\r\n%sConnection: close\r\n\r\n",
               status, reason, page.len, status == 405 ? "Allow: GET, POST\r\n" : "");
    if (h->p.method != HTTP_HEAD)
        buf_append(r, buf_peek(&page), page.len);
    buf_free(&page);
    h->base.reply_code = status;
}

/* http_on_url - the request target, bounded. */
static int
http_on_url(http_parser *p, const char *at, size_t len)
{
    struct http_sess *h = p->data;

    if (h->url_len + len > HTTP_URL_MAX) {
        h->refuse = 414;
        return 1;
    }
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = '\0';
    return 0;
}

/* http_on_header - a header's name or value: the head is bounded. */
static int
http_on_header(http_parser *p, const char *at, size_t len)
{
    struct http_sess *h = p->data;

    h->head += len;
    if (h->head + h->url_len > HTTP_HEAD_MAX) {
        h->refuse = 431;
        return 1;
    }
    return 0;
}

/* http_on_headers - the head is complete: the body's announced size is checked. */
static int
http_on_headers(http_parser *p)
{
    struct http_sess *h = p->data;

    h->headers_done = true;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > HTTP_BODY_MAX) {
        h->refuse = 413;
        return 2; /* no body: the answer comes now */
    }
    return 0;
}

/* http_on_body - the body, bounded. */
static int
http_on_body(http_parser *p, const char *at, size_t len)
{
    struct http_sess *h = p->data;

    if (h->body_len + len > HTTP_BODY_MAX) {
        h->refuse = 413;
        return 1;
    }
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    h->body[h->body_len] = '\0';
    return 0;
}

/* http_on_done - one whole request: parse no more (one request per connection). */
static int
http_on_done(http_parser *p)
{
    struct http_sess *h = p->data;

    h->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings http_settings = {
    .on_url = http_on_url,
    .on_header_field = http_on_header,
    .on_header_value = http_on_header,
    .on_headers_complete = http_on_headers,
    .on_body = http_on_body,
    .on_message_complete = http_on_done,
};

/* http_remove_work - pool: the address off the list. */
static void
http_remove_work(uv_work_t *w)
{
    struct http_sess *h = w->data;

    h->removed = unsub_remove(h->base.cf, &h->req, h->err, sizeof(h->err));
}

/* http_remove_done - loop: the page, then on with the session. */
static void
http_remove_done(uv_work_t *w, int status)
{
    struct http_sess *h = w->data;
    char text[800];

    if (status != 0 || h->removed < 0) {
        log_sess(LOGLVL_WARN, h->base.sid, "unsubscribe list=%s failed: %s", h->req.def->name,
                 status != 0 ? "cancelled" : h->err);
        http_answer(h, 500, "Not unsubscribed",
                    "The list server could not change the list; please try again later.", NULL);
    } else {
        log_sess(LOGLVL_INFO, h->base.sid, "unsubscribe list=%s addr=%s one-click %s",
                 h->req.def->name, h->req.addr, h->removed ? "removed" : "was no member");
        snprintf(text, sizeof(text), "%s %s the list %s.", h->req.addr,
                 h->removed ? "has been removed from" : "is not (or no longer) subscribed to",
                 h->req.def->name);
        http_answer(h, 200, "Unsubscribed", text, NULL);
    }
    sess_resume(&h->base);
    sess_release(&h->base);
}

/* http_unsub - GET or POST UNSUB_PATH. */
static void
http_unsub(struct http_sess *h, const char *query, size_t qlen)
{
    const char *why;
    bool post = h->p.method == HTTP_POST;
    int st =
        unsub_check(h->base.cf, query, qlen, post, h->body, h->body_len, time(NULL), &h->req, &why);
    struct buf form;
    char text[800];

    if (st != 0) {
        log_sess(LOGLVL_INFO, h->base.sid, "unsubscribe refused status=%d", st);
        http_answer(h, st, "Unsubscribe", why, NULL);
        return;
    }
    if (post) {
        h->work.data = h;
        sess_hold(&h->base);
        sess_go_async(&h->base);
        if (uv_queue_work(h->base.srv->loop, &h->work, http_remove_work, http_remove_done) != 0) {
            h->base.wait = SW_NONE;
            sess_release(&h->base);
            http_answer(h, 500, "Not unsubscribed", "Please try again later.", NULL);
        }
        return;
    }
    /* GET: the confirmation, posting back to this very URL */
    buf_init(&form, 8192);
    buf_printf(&form, "<form method=\"post\" action=\"");
    archive_html_esc(&form, h->url, h->url_len);
    buf_printf(&form, "\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n"
                      "<button type=\"submit\">Unsubscribe</button>\n</form>\n");
    buf_append(&form, "", 1);
    snprintf(text, sizeof(text), "Unsubscribe %s from the list %s%s%s%s?", h->req.addr,
             h->req.def->name, h->req.def->title[0] != '\0' ? " (" : "", h->req.def->title,
             h->req.def->title[0] != '\0' ? ")" : "");
    http_answer(h, 200, "Unsubscribe", text, buf_peek(&form));
    buf_free(&form);
}

/* http_route - a whole request: which page. */
static void
http_route(struct http_sess *h)
{
    struct http_parser_url u;
    const char *path = "", *query = "";
    size_t plen = 0, qlen = 0;

    http_parser_url_init(&u);
    if (http_parser_parse_url(h->url, h->url_len, 0, &u) != 0) {
        http_answer(h, 400, "Bad request", "The request target cannot be read.", NULL);
        return;
    }
    if (u.field_set & (1 << UF_PATH)) {
        path = h->url + u.field_data[UF_PATH].off;
        plen = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1 << UF_QUERY)) {
        query = h->url + u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
    }
    log_sess(LOGLVL_INFO, h->base.sid, "http %s path=%.*s", http_method_str(h->p.method),
             (int)(plen < 100 ? plen : 100), path);
    if (h->p.method != HTTP_GET && h->p.method != HTTP_POST && h->p.method != HTTP_HEAD) {
        http_answer(h, 405, "Method not allowed", "Only GET and POST are served here.", NULL);
        return;
    }
    if (plen == strlen(UNSUB_PATH) && memcmp(path, UNSUB_PATH, plen) == 0) {
        if (h->p.method == HTTP_HEAD)
            http_answer(h, 405, "Method not allowed", "Only GET and POST.", NULL);
        else
            http_unsub(h, query, qlen);
        return;
    }
    if (plen == 1 && path[0] == '/' && h->p.method != HTTP_POST) {
        http_answer(h, 200, "dlist", "The list server's unsubscribe endpoint.", NULL);
        return;
    }
    http_answer(h, 404, "Not found", "There is nothing here.", NULL);
}

/* http_input - feed what came to the parser; a whole (or refused) request is answered. */
static enum sess_in
http_input(struct sess *b)
{
    struct http_sess *h = http_of(b);
    struct buf *in = net_inbuf(b->conn);
    size_t n, len = in->len;
    enum http_errno e;

    if (len == 0 || h->complete)
        return SI_NONE;
    n = http_parser_execute(&h->p, &http_settings, buf_peek(in), len);
    if (!h->headers_done)
        h->fed += n;
    buf_consume(in, len); /* what follows one request is never read */
    e = HTTP_PARSER_ERRNO(&h->p);
    if (h->refuse != 0) {
        http_answer(h, h->refuse, "Request too large",
                    h->refuse == 431 ? "The request's headers are too large."
                                     : "The request is too large.",
                    NULL);
        return SI_CMD;
    }
    if (!h->headers_done && h->fed > HTTP_HEAD_MAX) {
        http_answer(h, 431, "Request too large", "The request's headers are too large.", NULL);
        return SI_CMD;
    }
    if (h->complete) {
        http_route(h);
        return SI_CMD;
    }
    if (e != HPE_OK) {
        log_sess(LOGLVL_INFO, b->sid, "http bad request: %s", http_errno_name(e));
        http_answer(h, 400, "Bad request", "The request cannot be read.", NULL);
        return SI_CMD;
    }
    return SI_NONE;
}

/* http_cmd_done - the answer is ready: send it and close. */
static void
http_cmd_done(struct sess *b)
{
    sess_close(b, "done");
}

/* http_greet - nothing to say first; with TLS the handshake begins. */
static void
http_greet(struct sess *b)
{
    if (!b->cf->dlist_http_tls)
        return;
    if (b->srv->tls == NULL || net_starttls(b->conn, b->srv->tls) < 0) {
        sess_close(b, "tls failed");
        return;
    }
    sess_enter_state(b, HS_TLS);
}

/* http_tls_done - the handshake is done: the request may come. */
static void
http_tls_done(struct sess *b)
{
    sess_enter_state(b, HS_READ);
}

/* http_may_stop - a graceful stop tells a session only while no request has begun. */
static bool
http_may_stop(struct sess *b, bool idle)
{
    return http_of(b)->fed == 0;
}

/* http_bye - the answer of a stop or a timeout. */
static void
http_bye(struct sess *b, enum sess_bye why)
{
    if (why == SESS_BYE_SHUTDOWN)
        http_answer(http_of(b), 503, "Unavailable", "The list server is stopping.", NULL);
    else
        http_answer(http_of(b), 408, "Timeout", "The request took too long.", NULL);
}

/* http_gone - the connection closed. */
static void
http_gone(struct sess *b)
{
    log_sess(LOGLVL_INFO, b->sid, "disconnect reason=%s",
             b->close_reason != NULL ? b->close_reason : "closed");
}

/* http_open - a new connection. */
static void
http_open(struct sess *b)
{
    struct http_sess *h = http_of(b);

    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    b->timeout_ms = (uint64_t)b->cf->dlist_http_timeout * 1000;
}

void
http_start(struct server *srv)
{
    char err[300];

    if (srv->cf->dlist_http_port == 0)
        return;
    if (srv->cf->dlist_http_tls && srv->tls == NULL)
        log_fatal("dlist_http_port %ld with dlist_http_tls needs tls_cert and tls_key (or "
                  "dlist_http_tls false behind a proxy)",
                  srv->cf->dlist_http_port);
    if (srv->cf->dlist_path[0] == '\0')
        log_fatal("dlist_http_port needs dlist_path (the lists and the token key)");
    if (token_init(srv->cf->dlist_path, err, sizeof(err)) < 0)
        log_fatal("dlist_http_port: %s", err);
    if (srv->cf->dlist_http_url[0] == '\0')
        log_warn("dlist_http_port is set but dlist_http_url is not: posts carry no "
                 "one-click List-Unsubscribe URL");
}

const struct sess_ops http_ops = {
    .size = sizeof(struct http_sess),
    .cmd_limit = HTTP_HEAD_MAX,
    .inbuf_cap = HTTP_HEAD_MAX + HTTP_BODY_MAX,
    .reply_cap = 32768,
    .state_names = http_state_names,
    .phase = http_phases,
    .nstates = sizeof(http_phases) / sizeof(http_phases[0]),
    .quit_state = HS_QUIT,
    .tls_state = HS_TLS,
    .greet_state = HS_READ,
    .open = http_open,
    .greet = http_greet,
    .starttls_done = http_tls_done,
    .input = http_input,
    .cmd_done = http_cmd_done,
    .may_stop = http_may_stop,
    .bye = http_bye,
    .gone = http_gone,
};
