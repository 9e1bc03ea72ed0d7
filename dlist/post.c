/*
 * post - a message to a list: refused, held or distributed. See post.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "archive.h"
#include "buf.h"
#include "conf.h"
#include "digest.h"
#include "dmarc.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "members.h"
#include "moderate.h"
#include "msg.h"
#include "outbox.h"
#include "post.h"
#include "status.h"
#include "unsub.h"
#include "vbounce.h"
#include "work.h"
#include "xmem.h"

#define POST_FOOTER_MAX (64u << 10)

void
post_sent_hook(const struct conf *cf, const struct lists_def *def, const char *text, size_t len)
{
    char err[300];

    /* the archive (archive true: the month mbox and the HTML pages, archive.h); a failure
     * is logged and never stops the post, which has gone out */
    if (archive_store(cf, def, "", text, len, time(NULL), err, sizeof(err)) < 0)
        log_warn("list %s: post not archived: %s", def->name, err);
}

/* post_is_loop - the message has been through this list, or is a bounce. */
static const char *
post_is_loop(const struct work *w)
{
    char self[400], id[400];
    char *xl = msg_header(w->text, w->len, "X-Loop");
    char *li = msg_header(w->text, w->len, "List-Id");
    const char *why = NULL;

    work_addr(w, "", self, sizeof(self));
    snprintf(id, sizeof(id), "<%s.%s>", w->def->name, w->domain);
    if (xl != NULL && strcasestr(xl, self) != NULL)
        why = "it carries our X-Loop";
    else if (li != NULL && strcasestr(li, id) != NULL)
        why = "it carries our List-Id";
    else if (w->sender[0] == '\0' || strncasecmp(w->sender, "mailer-daemon@", 14) == 0)
        why = "it is a bounce";
    free(xl);
    free(li);
    return why;
}

void
post_handle(struct work *w)
{
    const struct lists_def *def = w->def;
    char poster[600], reason[800];
    const char *loop = post_is_loop(w);
    char *from;
    bool member, moderator;

    if (loop != NULL) {
        log_info("list %s: post from <%s> refused: %s", def->name, w->sender, loop);
        return;
    }
    from = msg_header(w->text, w->len, "From");
    if (from == NULL || !msg_addr(from, poster, sizeof(poster)))
        snprintf(poster, sizeof(poster), "%s", w->sender);
    free(from);
    if (def->dmarc_rewrite == LISTS_DMARC_AUTO && strchr(poster, '@') != NULL &&
        dmarc_policy(strrchr(poster, '@') + 1) == DMARC_UNKNOWN) {
        w->later = true; /* the poster's DMARC policy is being looked up (dmarc.h) */
        return;
    }
    if (work_members_load(w) < 0) {
        w->errors++;
        log_error("list %s: cannot read the members: %s", def->name, strerror(errno));
        return;
    }
    member = members_has(&w->members, poster);
    moderator = lists_is_moderator(def, poster);
    if (def->max_size > 0 && w->len > def->max_size)
        snprintf(reason, sizeof(reason), "larger than max_size (%zu > %llu bytes)", w->len,
                 def->max_size);
    else if (!lists_may(&def->access[LISTS_POST], poster, member, moderator))
        snprintf(reason, sizeof(reason), "%s may not post (access_post %s)", poster,
                 lists_access_text(&def->access[LISTS_POST]));
    else {
        post_send(w, poster);
        return;
    }
    moderate_hold(w, poster, reason);
}

/* post_subject - the Subject with the prefix (not doubled) into b. */
static void
post_subject(struct buf *b, const struct lists_def *def, const char *subject)
{
    const char *p = def->subject_prefix;

    if (subject == NULL)
        subject = "";
    if (p[0] == '\0' || strcasestr(subject, p) != NULL)
        buf_printf(b, "Subject: %s\n", subject);
    else
        buf_printf(b, "Subject: %s %s\n", p, subject);
}

/* post_footer_fits - the body may take the footer: plain text, no transfer encoding. */
static bool
post_footer_fits(const struct work *w)
{
    char *ct = msg_header(w->text, w->len, "Content-Type");
    char *te = msg_header(w->text, w->len, "Content-Transfer-Encoding");
    bool ok = (ct == NULL || strncasecmp(ct, "text/plain", 10) == 0) &&
              (te == NULL || strcasecmp(te, "7bit") == 0 || strcasecmp(te, "8bit") == 0);

    free(ct);
    free(te);
    return ok;
}

/* post_dmarc_rewrite - the post goes out From the list (dmarc_rewrite; dmarc.h). */
static bool
post_dmarc_rewrite(const struct work *w, const char *poster)
{
    const char *at = strrchr(poster, '@');
    enum dmarc_policy p;

    if (w->def->dmarc_rewrite != LISTS_DMARC_AUTO)
        return w->def->dmarc_rewrite == LISTS_DMARC_ALWAYS;
    if (at == NULL)
        return false;
    p = dmarc_policy(at + 1);
    if (p == DMARC_NONE)
        return false;
    if (p == DMARC_TEMPFAIL) { /* as Mailman 3: receivers cannot see the policy either */
        log_warn("list %s: DMARC policy of %s unknown (DNS failure): From kept", w->def->name,
                 at + 1);
        return false;
    }
    log_info("list %s: From of %s rewritten to the list's (DMARC policy %s)", w->def->name, poster,
             dmarc_policy_name(p));
    return true; /* quarantine, reject; unknown again (an approval after the cache's time):
                  * rewriting never makes a post undeliverable */
}

/* post_display_name - the display name of a From value (quotes and escapes removed, or
 * an old-style comment), "" when it has none; control characters left out. */
static void
post_display_name(const char *from, char *out, size_t len)
{
    const char *lt = strchr(from, '<'), *s = from, *e;
    size_t o = 0;

    if (lt != NULL)
        e = lt;
    else if ((s = strchr(from, '(')) != NULL && (e = strrchr(from, ')')) != NULL && e > s)
        s++;
    else
        s = e = from;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"')
        s++, e--;
    for (; s < e && o + 1 < len; s++) {
        if (*s == '\\' && s + 1 < e)
            s++;
        if ((unsigned char)*s >= 0x20 && *s != 0x7f)
            out[o++] = *s;
    }
    out[o] = '\0';
}

/* post_dmarc_from - From: "NAME via LIST" <list@domain> into b (an RFC 2047 encoded name
 * stays outside the quotes, where it is decoded). */
static void
post_dmarc_from(struct buf *b, const struct work *w, const char *from, const char *poster,
                const char *list)
{
    char name[300];

    post_display_name(from != NULL ? from : "", name, sizeof(name));
    if (name[0] == '\0')
        snprintf(name, sizeof(name), "%s", poster);
    if (strstr(name, "=?") != NULL) {
        buf_printf(b, "From: %s \"via %s\" <%s>\n", name, w->def->name, list);
        return;
    }
    buf_printf(b, "From: \"");
    for (const char *c = name; *c != '\0'; c++)
        buf_printf(b, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
    buf_printf(b, " via %s\" <%s>\n", w->def->name, list);
}

/* post_distribute - the post b to the members: the digest members' copy into the pending
 * digest (digest.h), one transaction to the others (oneclick: their copies get their own
 * List-Unsubscribe fields, unsub.h). */
static void
post_distribute(struct work *w, const char *poster, const char *bounces, const struct buf *b,
                bool oneclick)
{
    const struct lists_def *def = w->def;
    struct members dm = {0}, off = {0}; /* by digest; disabled (bounces) */
    char err[300], **rcpt;
    size_t nr = 0;

    if (w->members.n == 0) {
        log_info("list %s: post from %s: no members", def->name, poster);
        return;
    }
    if (digest_recipients_of(w->cf, def, &w->members, &dm) < 0) {
        w->errors++;
        log_error("list %s: cannot read the digest members", def->name);
        return;
    }
    if (dm.n > 0 && digest_add(w->cf, def, buf_peek(b), b->len, err, sizeof(err)) < 0) {
        w->errors++; /* nothing was sent: the post is handled again */
        log_error("list %s: post not added to the digest: %s", def->name, err);
        members_free(&dm);
        return;
    }
    vbounce_disabled(w, &off);
    rcpt = xcalloc(w->members.n, sizeof(*rcpt));
    for (size_t i = 0; i < w->members.n; i++)
        if (!members_has(&dm, w->members.v[i]) && !members_has(&off, w->members.v[i]))
            rcpt[nr++] = w->members.v[i];
    if (nr > 0)
        work_emit(w, bounces, true, rcpt, nr, buf_peek(b), b->len, oneclick ? def->name : NULL);
    log_info("list %s: post from %s to %zu member%s, %zu by digest", def->name, poster, nr,
             nr == 1 ? "" : "s", dm.n);
    post_sent_hook(w->cf, def, buf_peek(b), b->len);
    status_post(w->cf, def);
    free(rcpt);
    members_free(&dm);
    members_free(&off);
}

void
post_send(struct work *w, const char *poster)
{
    static const char *const keep[] = {"Return-Path",
                                       "Delivered-To",
                                       "X-Original-To",
                                       "List-Id",
                                       "List-Post",
                                       "List-Help",
                                       "List-Subscribe",
                                       "List-Unsubscribe",
                                       "List-Unsubscribe-Post",
                                       "List-Archive",
                                       "List-Owner",
                                       "Precedence",
                                       "X-Loop",
                                       "Subject",
                                       "Reply-To",
                                       "X-Reply-To",
                                       NULL,
                                       NULL,
                                       NULL};
    const struct lists_def *def = w->def;
    char list[400], req[400], owner[400], bounces[400];
    char *subject = msg_header(w->text, w->len, "Subject");
    char *replyto = msg_header(w->text, w->len, "Reply-To");
    char *from = msg_header(w->text, w->len, "From"), *cc = NULL;
    size_t body = msg_body(w->text, w->len), nd = 0;
    const char *drop[sizeof(keep) / sizeof(keep[0])];
    bool munge = post_dmarc_rewrite(w, poster);
    bool oneclick = unsub_oneclick(w->cf, def->name); /* List-Unsubscribe per copy */
    struct buf b;

    for (; keep[nd] != NULL; nd++)
        drop[nd] = keep[nd];
    if (munge) {
        /* From: the list (the poster's in X-Original-From); the poster is who a reply goes
         * to: Reply-To when the list does not set Reply-To to itself or an address, else
         * added to Cc (as Mailman 3's DMARC mitigation) */
        drop[nd++] = "From";
        if (def->reply_to != NULL || !def->reply_to_user) {
            drop[nd++] = "Cc";
            cc = msg_header(w->text, w->len, "Cc");
        }
    }
    drop[nd] = NULL;

    if (work_members_load(w) < 0) {
        w->errors++;
        log_error("list %s: cannot read the members: %s", def->name, strerror(errno));
        free(subject);
        free(replyto);
        free(from);
        return;
    }
    work_addr(w, "", list, sizeof(list));
    work_addr(w, "-request", req, sizeof(req));
    work_addr(w, "-owner", owner, sizeof(owner));
    work_addr(w, "-bounces", bounces, sizeof(bounces));
    buf_init(&b, OUTBOX_TEXT_MAX);
    msg_copy_headers(&b, w->text, w->len, drop);
    post_subject(&b, def, subject);
    if (munge) {
        post_dmarc_from(&b, w, from, poster, list);
        buf_printf(&b, "X-Original-From: %s\n", from != NULL ? from : poster);
        if (def->reply_to != NULL || !def->reply_to_user)
            buf_printf(&b, "Cc: %s%s%s\n", cc != NULL ? cc : "", cc != NULL ? ", " : "",
                       from != NULL ? from : poster);
    }
    if (def->reply_to != NULL) {
        if (replyto != NULL)
            buf_printf(&b, "X-Reply-To: %s\n", replyto);
        buf_printf(&b, "Reply-To: <%s>\n", def->reply_to);
    } else if (def->reply_to_user)
        buf_printf(&b, "Reply-To: %s\n", replyto != NULL ? replyto : poster);
    else
        buf_printf(&b, "Reply-To: <%s>\n", list);
    if (def->title[0] != '\0')
        buf_printf(&b, "List-Id: %s <%s.%s>\n", def->title, def->name, w->domain);
    else
        buf_printf(&b, "List-Id: <%s.%s>\n", def->name, w->domain);
    buf_printf(&b,
               "List-Help: <mailto:%s?subject=help>\n"
               "List-Subscribe: <mailto:%s?subject=subscribe>\n",
               req, req);
    if (!oneclick)
        buf_printf(&b, "List-Unsubscribe: <mailto:%s?subject=unsubscribe>\n", req);
    buf_printf(&b, "List-Post: <mailto:%s>\nList-Owner: <mailto:%s>\n", list, owner);
    if (def->archive)
        buf_printf(&b, "List-Archive: <mailto:%s?subject=index>\n", req);
    buf_printf(&b, "Precedence: list\nX-Loop: %s\n\n", list);
    buf_append(&b, w->text + body, w->len - body);
    if (def->footer != NULL && post_footer_fits(w)) {
        char *f = NULL;
        size_t fl = 0;
        if (file_read_all(def->footer, POST_FOOTER_MAX, &f, &fl) < 0)
            log_warn("list %s: footer %s: %s", def->name, def->footer, strerror(errno));
        else {
            if (b.len > 0 && buf_peek(&b)[b.len - 1] != '\n')
                buf_append(&b, "\n", 1);
            buf_append(&b, f, fl);
            if (fl > 0 && f[fl - 1] != '\n')
                buf_append(&b, "\n", 1);
        }
        free(f);
    }
    post_distribute(w, poster, bounces, &b, oneclick);
    buf_free(&b);
    free(subject);
    free(replyto);
    free(from);
    free(cc);
}
