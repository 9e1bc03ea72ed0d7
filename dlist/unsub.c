/*
 * unsub - the one-click unsubscribe URL and its requests (see unsub.h).
 */
#include "unsub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "conf.h"
#include "dsnparam.h"
#include "members.h"
#include "mime.h"
#include "token.h"
#include "xmem.h"

/* unsub_enc - s percent-encoded (all but RFC 3986 unreserved) at out+*o; false when it
 * does not fit. */
static bool
unsub_enc(char *out, size_t len, size_t *o, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int n = isalnum(c) || strchr("-._~", c) != NULL ? snprintf(out + *o, len - *o, "%c", c)
                                                        : snprintf(out + *o, len - *o, "%%%02X", c);
        if (n < 0 || (size_t)n >= len - *o)
            return false;
        *o += (size_t)n;
    }
    return true;
}

int
unsub_url(const struct conf *cf, const char *list, const char *addr, char *out, size_t len)
{
    char tok[TOKEN_LEN + 1];
    size_t o;
    int n;

    if (cf->dlist_http_url == NULL || cf->dlist_http_url[0] == '\0' ||
        token_make(list, addr, UNSUB_ACTION, time(NULL) + (time_t)UNSUB_TOKEN_DAYS * 86400, tok,
                   sizeof(tok)) < 0)
        return -1;
    n = snprintf(out, len, "%s%s?list=", cf->dlist_http_url, UNSUB_PATH);
    if (n < 0 || (size_t)n >= len)
        return -1;
    o = (size_t)n;
    if (!unsub_enc(out, len, &o, list))
        return -1;
    n = snprintf(out + o, len - o, "&addr=");
    if (n < 0 || (size_t)n >= len - o)
        return -1;
    o += (size_t)n;
    if (!unsub_enc(out, len, &o, addr))
        return -1;
    n = snprintf(out + o, len - o, "&t=%s", tok);
    return n < 0 || (size_t)n >= len - o ? -1 : 0;
}

bool
unsub_oneclick(const struct conf *cf, const char *list)
{
    char url[1024];

    return unsub_url(cf, list, "postmaster", url, sizeof(url)) == 0;
}

int
unsub_mailto(const struct conf *cf, const char *list, char *out, size_t len)
{
    int n = snprintf(out, len, "<mailto:%s-request@%s?subject=unsubscribe>", list,
                     cf->lists != NULL ? cf->lists->domain : cf->main_domain);

    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* unsub_xtext - CRLF (as xtext) when crlf, then the line s as xtext, appended at out+*o
 * (dsnparam_xtext_encode); false when it does not fit. */
static bool
unsub_xtext(char *out, size_t len, size_t *o, bool crlf, const char *s)
{
    if (crlf) {
        if (*o + 6 >= len)
            return false;
        memcpy(out + *o, "+0D+0A", 6);
        *o += 6;
    }
    if (*o >= len || dsnparam_xtext_encode(s, out + *o, len - *o) < 0)
        return false;
    *o += strlen(out + *o);
    return true;
}

size_t
unsub_xheader(const struct conf *cf, const char *list, const char *addr, char *out, size_t len)
{
    static const char post[] = "List-Unsubscribe-Post: List-Unsubscribe=One-Click";
    char url[UNSUB_XHEADER_MAX], mailto[600], f[UNSUB_XHEADER_MAX + 1];
    size_t o = 0;
    int n;

    if (unsub_mailto(cf, list, mailto, sizeof(mailto)) < 0)
        return 0;
    if (unsub_url(cf, list, addr, url, sizeof(url)) == 0 &&
        (n = snprintf(f, sizeof(f), "List-Unsubscribe: <%s>, %s", url, mailto)) > 0 &&
        (size_t)n + 2 + strlen(post) <= UNSUB_XHEADER_MAX && unsub_xtext(out, len, &o, false, f) &&
        unsub_xtext(out, len, &o, true, post))
        return o;
    o = 0; /* the mailto alone */
    snprintf(f, sizeof(f), "List-Unsubscribe: %s", mailto);
    return unsub_xtext(out, len, &o, false, f) ? o : 0;
}

/* unsub_dec - the form-encoded s[n] decoded into out[len]: false when it does not fit or
 * holds a bad escape or a control character. */
static bool
unsub_dec(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%') {
            if (i + 2 >= n || mime_hex(s[i + 1]) < 0 || mime_hex(s[i + 2]) < 0)
                return false;
            c = mime_hex(s[i + 1]) << 4 | mime_hex(s[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= len)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* unsub_field - the value of name in the form-encoded q[n] into out: 1 found once, 0
 * absent, -1 repeated or undecodable. */
static int
unsub_field(const char *q, size_t n, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name), i = 0;
    int found = 0;

    while (i < n) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : n;
        if (end - i > nlen && memcmp(q + i, name, nlen) == 0 && q[i + nlen] == '=') {
            if (found++ > 0 || !unsub_dec(q + i + nlen + 1, end - i - nlen - 1, out, len))
                return -1;
        }
        i = end + 1;
    }
    return found;
}

int
unsub_check(const struct conf *cf, const char *query, size_t qlen, bool post, const char *body,
            size_t blen, time_t now, struct unsub_req *req, const char **why)
{
    char list[LISTS_NAME_MAX + 1], one[64];

    memset(req, 0, sizeof(*req));
    if (unsub_field(query, qlen, "list", list, sizeof(list)) != 1 ||
        unsub_field(query, qlen, "addr", req->addr, sizeof(req->addr)) != 1 ||
        unsub_field(query, qlen, "t", req->token, sizeof(req->token)) != 1) {
        *why = "This unsubscribe link is incomplete or damaged: it needs list, addr and t, "
               "once each.";
        return 400;
    }
    if ((req->def = lists_find(cf->lists, list)) == NULL) {
        *why = "There is no such list here.";
        return 400;
    }
    switch (token_check(req->token, req->def->name, req->addr, UNSUB_ACTION, now)) {
    case TOKEN_OK:
        break;
    case TOKEN_EXPIRED:
        *why = "This unsubscribe link has expired. Use the link of a newer message, or "
               "write to the list's -request address.";
        return 403;
    default:
        *why = "This unsubscribe link is not valid for this address and list.";
        return 403;
    }
    if (post) {
        /* RFC 8058 3.1: the body carries List-Unsubscribe=One-Click (form-encoded; a
         * multipart/form-data body holds the field's name and value as text) */
        int r = unsub_field(body, blen, "List-Unsubscribe", one, sizeof(one));
        bool multipart = r == 0 && memmem(body, blen, "name=\"List-Unsubscribe\"", 23) != NULL &&
                         memmem(body, blen, "One-Click", 9) != NULL;
        if (!(r == 1 && strcmp(one, "One-Click") == 0) && !multipart) {
            *why = "An unsubscribe request must carry List-Unsubscribe=One-Click.";
            return 400;
        }
    }
    return 0;
}

int
unsub_remove(const struct conf *cf, const struct unsub_req *req, char *err, size_t errlen)
{
    struct members m = {0};
    char *path = admin_members_path(cf, req->def->name);
    int r;

    admin_members_lock();
    if (members_load(&m, path, NULL) < 0) {
        snprintf(err, errlen, "cannot read %s", path);
        r = -1;
    } else if ((r = members_remove(&m, req->addr)) == 1 && members_save(&m, path) < 0) {
        snprintf(err, errlen, "cannot write %s", path);
        r = -1;
    }
    admin_members_unlock();
    members_free(&m);
    free(path);
    return r;
}
