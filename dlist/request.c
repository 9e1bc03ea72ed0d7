/*
 * request - the email commands to LIST-request. See request.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "archive.h"
#include "buf.h"
#include "conf.h"
#include "digest.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "members.h"
#include "moderate.h"
#include "msg.h"
#include "request.h"
#include "token.h"
#include "vbounce.h"
#include "work.h"
#include "xmem.h"

#define REQUEST_TEMPLATE_MAX (64u << 10)

struct request {
    struct work *w;
    char who[600]; /* the requester */
    bool moderator, done_any, stop;
    int unknown;
    struct buf out; /* the reply */
};

enum request_cmd {
    RQ_NONE,
    RQ_HELP,
    RQ_JOIN,
    RQ_LEAVE,
    RQ_WHO,
    RQ_LISTS,
    RQ_INFO,
    RQ_INDEX,
    RQ_GET,
    RQ_DIGEST,
    RQ_ENABLE,
    RQ_CONFIRM,
    RQ_APPROVE,
    RQ_REJECT,
    RQ_END
};

static const struct {
    const char *name;
    enum request_cmd cmd;
} request_names[] = {
    {"help", RQ_HELP},         {"join", RQ_JOIN},       {"add", RQ_JOIN},
    {"subscribe", RQ_JOIN},    {"sub", RQ_JOIN},        {"signon", RQ_JOIN},
    {"leave", RQ_LEAVE},       {"remove", RQ_LEAVE},    {"unsub", RQ_LEAVE},
    {"unsubscribe", RQ_LEAVE}, {"signoff", RQ_LEAVE},   {"who", RQ_WHO},
    {"review", RQ_WHO},        {"lists", RQ_LISTS},     {"info", RQ_INFO},
    {"confirm", RQ_CONFIRM},   {"approve", RQ_APPROVE}, {"reject", RQ_REJECT},
    {"end", RQ_END},           {"stop", RQ_END},        {"quit", RQ_END},
    {"exit", RQ_END},          {"index", RQ_INDEX},     {"get", RQ_GET},
    {"digest", RQ_DIGEST},     {"enable", RQ_ENABLE},
};

/* request_lookup - the command named by the first n bytes of w. */
static enum request_cmd
request_lookup(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof(request_names) / sizeof(request_names[0]); i++)
        if (strlen(request_names[i].name) == n && strncasecmp(w, request_names[i].name, n) == 0)
            return request_names[i].cmd;
    return RQ_NONE;
}

/* request_ignored - a message no robot answers: the reason, or NULL. */
static const char *
request_ignored(const struct work *w)
{
    char self[400];
    char *prec = msg_header(w->text, w->len, "Precedence");
    char *auto_sub = msg_header(w->text, w->len, "Auto-Submitted");
    char *xl = msg_header(w->text, w->len, "X-Loop");
    const char *why = NULL;

    work_addr(w, "", self, sizeof(self));
    if (w->sender[0] == '\0' || strncasecmp(w->sender, "mailer-daemon@", 14) == 0)
        why = "from MAILER-DAEMON";
    else if (prec != NULL && (strcasecmp(prec, "bulk") == 0 || strcasecmp(prec, "junk") == 0 ||
                              strcasecmp(prec, "list") == 0))
        why = "Precedence bulk, junk or list";
    else if (auto_sub != NULL && strncasecmp(auto_sub, "no", 2) != 0)
        why = "Auto-Submitted";
    else if (xl != NULL && strcasestr(xl, self) != NULL)
        why = "our own X-Loop";
    free(prec);
    free(auto_sub);
    free(xl);
    return why;
}

/* request_template - file with DMail's placeholders filled in, malloc'd; NULL when there
 * is no file or it cannot be read (logged). */
static char *
request_template(struct work *w, const char *file, const char *setting)
{
    const struct lists_def *def = w->def;
    char list[400], req[400], *t = NULL;
    size_t len = 0;
    struct buf b;

    if (file == NULL)
        return NULL;
    if (file_read_all(file, REQUEST_TEMPLATE_MAX, &t, &len) < 0) {
        log_warn("list %s: %s %s: %s", def->name, setting, file, strerror(errno));
        return NULL;
    }
    work_addr(w, "", list, sizeof(list));
    work_addr(w, "-request", req, sizeof(req));
    buf_init(&b, REQUEST_TEMPLATE_MAX * 4);
    for (size_t i = 0; i < len;) {
        static const char *const ph[] = {"%%list-name%%", "%%list%%", "%%list-request%%"};
        const char *val[] = {def->name, list, req};
        size_t k;
        for (k = 0; k < 3; k++)
            if (strncmp(t + i, ph[k], strlen(ph[k])) == 0)
                break;
        if (k < 3) {
            buf_printf(&b, "%s", val[k]);
            i += strlen(ph[k]);
        } else
            buf_append(&b, t + i++, 1);
    }
    buf_append(&b, "", 1);
    free(t);
    t = xstrdup(buf_peek(&b));
    buf_free(&b);
    return t;
}

/* request_welcome - welcome_file, else the built-in text. */
static char *
request_welcome(struct work *w)
{
    const struct lists_def *def = w->def;
    char list[400], req[400], *t = request_template(w, def->welcome_file, "welcome_file");

    if (t != NULL)
        return t;
    return xasprintf("Welcome to the %s list%s%s.\n\n"
                     "To post, mail %s.\n"
                     "To leave, mail %s with the subject or body: unsubscribe\n"
                     "For the other commands, send: help\n",
                     def->name, def->title[0] != '\0' ? ": " : "", def->title,
                     work_addr(w, "", list, sizeof(list)),
                     work_addr(w, "-request", req, sizeof(req)));
}

/* request_subscribe - addr added, saved, welcomed; the reply line. */
static void
request_subscribe(struct request *rq, const char *addr)
{
    struct work *w = rq->w;
    char err[200];
    int r = members_add(&w->members, addr, err, sizeof(err));

    if (r < 0) {
        buf_printf(&rq->out, "  %s: %s\n", addr, err);
    } else if (r == 0) {
        buf_printf(&rq->out, "  %s is a member already.\n", addr);
    } else if (work_members_save(w) < 0) {
        members_remove(&w->members, addr);
        buf_printf(&rq->out, "  %s: not subscribed: the members file cannot be written.\n", addr);
    } else {
        char *subj = xasprintf("DLIST: Welcome to the %s list", w->def->name);
        char *body = request_welcome(w);
        buf_printf(&rq->out, "  %s is now subscribed.\n", addr);
        log_info("list %s: %s joined (by %s)", w->def->name, addr, rq->who);
        work_mail(w, addr, subj, body, false);
        free(subj);
        free(body);
    }
}

/* request_join - join [ADDR]. */
static void
request_join(struct request *rq, const char *arg)
{
    struct work *w = rq->w;
    const struct lists_def *def = w->def;
    const char *target = arg != NULL ? arg : rq->who;
    char canon[600], tok[TOKEN_LEN + 1], req[400];

    if (!msg_addr(target, canon, sizeof(canon))) {
        buf_printf(&rq->out, "  %s is not an address.\n", target);
        return;
    }
    if (strcasecmp(canon, rq->who) != 0 && !rq->moderator) {
        buf_printf(&rq->out, "  Only a moderator may subscribe another address "
                             "(approve PASSWORD on the first line).\n");
        return;
    }
    if (!lists_may(&def->access[LISTS_JOIN], canon, false, rq->moderator)) {
        buf_printf(&rq->out, "  %s may not join this list (access_join %s).\n", canon,
                   lists_access_text(&def->access[LISTS_JOIN]));
        return;
    }
    if (members_has(&w->members, canon)) {
        buf_printf(&rq->out, "  %s is a member already.\n", canon);
        return;
    }
    if (rq->moderator || !def->join_cookie) {
        request_subscribe(rq, canon);
        return;
    }
    if (token_make(def->name, canon, "join", time(NULL) + w->cf->dlist_confirm_expire, tok,
                   sizeof(tok)) < 0) {
        buf_printf(&rq->out, "  Cannot make a confirmation for %s now; try later.\n", canon);
        w->errors++;
        return;
    }
    {
        char *subj = xasprintf("confirm %s", tok);
        char *body =
            xasprintf("Someone (perhaps you) asked to subscribe %s to the list %s.\n\n"
                      "To confirm, reply to this message (keep the subject), or mail %s\n"
                      "this line:\n\nconfirm %s\n\n"
                      "If you did not ask for it, ignore this message: nothing will happen.\n"
                      "The confirmation expires in %ld hours.\n",
                      canon, def->name, work_addr(w, "-request", req, sizeof(req)), tok,
                      w->cf->dlist_confirm_expire / 3600);
        work_mail(w, canon, subj, body, false);
        free(subj);
        free(body);
    }
    buf_printf(&rq->out, "  A confirmation request was sent to %s.\n", canon);
    log_info("list %s: confirmation sent to %s", def->name, canon);
}

/* request_confirm - confirm TOKEN. */
static void
request_confirm(struct request *rq, const char *arg)
{
    struct work *w = rq->w;

    if (arg == NULL) {
        buf_printf(&rq->out, "  confirm needs the token of the confirmation request.\n");
        return;
    }
    switch (token_check(arg, w->def->name, rq->who, "join", time(NULL))) {
    case TOKEN_OK:
        request_subscribe(rq, rq->who);
        break;
    case TOKEN_EXPIRED:
        buf_printf(&rq->out, "  This confirmation has expired: send join again.\n");
        break;
    case TOKEN_BAD:
        buf_printf(&rq->out, "  This is not a valid confirmation for %s.\n", rq->who);
        break;
    }
}

/* request_leave - leave [ADDR]. */
static void
request_leave(struct request *rq, const char *arg)
{
    struct work *w = rq->w;
    const struct lists_rule *rule = &w->def->access[LISTS_LEAVE];
    const char *target = arg != NULL ? arg : rq->who;
    char canon[600];
    bool self;

    if (!msg_addr(target, canon, sizeof(canon))) {
        buf_printf(&rq->out, "  %s is not an address.\n", target);
        return;
    }
    self = strcasecmp(canon, rq->who) == 0;
    if (!rq->moderator &&
        (self ? !lists_may(rule, canon, true, false) : rule->who != LISTS_ANYONE)) {
        buf_printf(&rq->out, "  You may not unsubscribe %s (access_leave %s).\n", canon,
                   lists_access_text(rule));
        return;
    }
    if (members_remove(&w->members, canon) == 0) {
        buf_printf(&rq->out, "  %s is not a member.\n", canon);
        return;
    }
    if (work_members_save(w) < 0) {
        buf_printf(&rq->out, "  %s: not unsubscribed: the members file cannot be written.\n",
                   canon);
        members_add(&w->members, canon, NULL, 0);
        return;
    }
    buf_printf(&rq->out, "  %s is no longer subscribed.\n", canon);
    log_info("list %s: %s left (by %s)", w->def->name, canon, rq->who);
    {
        char *text = request_template(w, w->def->leave_file, "leave_file");
        if (text != NULL) {
            char *subj = xasprintf("DLIST: You have left the %s list", w->def->name);
            work_mail(w, canon, subj, text, false);
            free(subj);
            free(text);
        }
    }
}

/* request_help - the command summary. */
static void
request_help(struct request *rq)
{
    char req[400];

    buf_printf(&rq->out,
               "  Commands to %s, one a line (in the body, or the subject):\n"
               "    help                       this text\n"
               "    join [ADDRESS]             subscribe (add, subscribe, sub, signon)\n"
               "    leave [ADDRESS]            unsubscribe (remove, unsub, unsubscribe, "
               "signoff)\n"
               "    confirm TOKEN              confirm a subscription\n"
               "    who                        the members (review)\n"
               "    lists                      the lists here\n"
               "    info                       about this list\n"
               "    index                      the archive's files (archive true)\n"
               "    get FILE                   one of them (YYYY-MM), a month of posts\n"
               "    digest on|off              the posts in one message now and then, or each\n"
               "    enable                     the list's mail again after bounces disabled it\n"
               "    end                        stop reading (also a signature \"-- \")\n"
               "  Moderators: approve PASSWORD as the first line, then commands for others;\n"
               "    approve PASSWORD ID / reject PASSWORD ID for a held post.\n",
               work_addr(rq->w, "-request", req, sizeof(req)));
}

/* request_password - word is the list's password (crypt on the pool). */
static bool
request_password(const struct request *rq, const char *word)
{
    const char *hash = rq->w->def->password;

    return hash != NULL && word != NULL && auth_check_hash(word, hash);
}

/* request_who - who. */
static void
request_who(struct request *rq)
{
    struct work *w = rq->w;

    if (!lists_may(&w->def->access[LISTS_WHO], rq->who, members_has(&w->members, rq->who),
                   rq->moderator)) {
        buf_printf(&rq->out, "  You may not see the members (access_who %s).\n",
                   lists_access_text(&w->def->access[LISTS_WHO]));
        return;
    }
    buf_printf(&rq->out, "  %zu member%s:\n", w->members.n, w->members.n == 1 ? "" : "s");
    for (size_t i = 0; i < w->members.n; i++)
        buf_printf(&rq->out, "    %s\n", w->members.v[i]);
}

/* request_lists - lists. */
static void
request_lists(struct request *rq)
{
    const struct lists_set *ls = rq->w->cf->lists;

    for (size_t i = 0; ls != NULL && i < ls->n; i++) {
        const struct lists_def *d = &ls->v[i];
        bool mem = d == rq->w->def && members_has(&rq->w->members, rq->who);
        if (lists_may(&d->access[LISTS_LIST], rq->who, mem, lists_is_moderator(d, rq->who)))
            buf_printf(&rq->out, "    %s@%s  %s\n", d->name, ls->domain, d->title);
    }
}

/* request_info - info. */
static void
request_info(struct request *rq)
{
    const struct lists_def *d = rq->w->def;
    char list[400];

    buf_printf(&rq->out,
               "    List:    %s\n    Title:   %s\n    Members: %zu\n    Posting: %s\n"
               "    Joining: %s%s\n    Largest post: %llu bytes\n",
               work_addr(rq->w, "", list, sizeof(list)), d->title, rq->w->members.n,
               lists_access_text(&d->access[LISTS_POST]), lists_access_text(&d->access[LISTS_JOIN]),
               d->join_cookie ? " (with confirmation)" : "", d->max_size);
}

/* request_may_get - access_get allows the requester (index, get). */
static bool
request_may_get(struct request *rq)
{
    struct work *w = rq->w;

    if (lists_may(&w->def->access[LISTS_GET], rq->who, members_has(&w->members, rq->who),
                  rq->moderator))
        return true;
    buf_printf(&rq->out, "  You may not read the archive (access_get %s).\n",
               lists_access_text(&w->def->access[LISTS_GET]));
    return false;
}

/* request_index - index: the archive's month files. */
static void
request_index(struct request *rq)
{
    char err[300], *idx;

    if (!request_may_get(rq))
        return;
    if ((idx = archive_index(rq->w->cf, rq->w->def, err, sizeof(err))) == NULL) {
        buf_printf(&rq->out, "  %s\n", err);
        return;
    }
    if (idx[0] == '\0')
        buf_printf(&rq->out, "  The archive is empty.\n");
    else
        buf_printf(&rq->out, "  Files (get FILE sends one):\n");
    for (char *save = NULL, *l = strtok_r(idx, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        buf_printf(&rq->out, "    %s\n", l);
    free(idx);
}

/* request_digest - digest on|off: the requester's own mode. */
static void
request_digest(struct request *rq, const char *arg)
{
    struct work *w = rq->w;
    char err[300];
    bool on;
    int r;

    if (arg == NULL || (strcasecmp(arg, "on") != 0 && strcasecmp(arg, "off") != 0)) {
        buf_printf(&rq->out, "  Use digest on or digest off.\n");
        return;
    }
    on = strcasecmp(arg, "on") == 0;
    r = digest_set_locked(w->cf, w->def, &w->members, rq->who, on, err, sizeof(err));
    if (r < 0)
        buf_printf(&rq->out, "  %s.\n", err);
    else if (on)
        buf_printf(&rq->out, "  %s gets the posts of %s as a digest%s.\n", rq->who, w->def->name,
                   r == 0 ? " already" : " from now on");
    else
        buf_printf(&rq->out, "  %s gets each post of %s%s.\n", rq->who, w->def->name,
                   r == 0 ? " already" : " from now on");
    if (r > 0)
        log_info("list %s: %s digest %s", w->def->name, rq->who, on ? "on" : "off");
}

/* request_get - get FILE: the month mbox, after the reply's other lines. */
static void
request_get(struct request *rq, const char *name)
{
    char err[300], *text = NULL;
    size_t len = 0;

    if (!request_may_get(rq))
        return;
    if (name == NULL ||
        archive_get(rq->w->cf, rq->w->def, name, &text, &len, err, sizeof(err)) < 0) {
        buf_printf(&rq->out, "  %s\n", name == NULL ? "get needs a file name (see index)" : err);
        return;
    }
    buf_printf(&rq->out, "  %s follows (%zu bytes):\n\n", name, len);
    buf_append(&rq->out, text, len);
    free(text);
}

/* request_line - one line of commands. */
static void
request_line(struct request *rq, const char *line, bool first)
{
    char copy[1000], *argv[4] = {0}, *save = NULL;
    int argc = 0;
    enum request_cmd cmd;

    snprintf(copy, sizeof(copy), "%s", line);
    for (char *t = strtok_r(copy, " \t\r", &save); t != NULL && argc < 4;
         t = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = t;
    if (argc == 0)
        return;
    cmd = request_lookup(argv[0], strlen(argv[0]));
    if (cmd == RQ_NONE) {
        if (rq->done_any || ++rq->unknown > REQUEST_UNKNOWN_MAX) {
            buf_printf(&rq->out, "\n(the rest was not read)\n");
            rq->stop = true;
        } else
            buf_printf(&rq->out, "> %.200s\n  Unknown command (send help for the list).\n\n", line);
        return;
    }
    if (cmd == RQ_END) {
        rq->stop = true;
        return;
    }
    /* the password never goes back into the reply */
    if (cmd == RQ_APPROVE || cmd == RQ_REJECT)
        buf_printf(&rq->out, "> %s PASSWORD%s%s\n", argv[0], argc > 2 ? " " : "",
                   argc > 2 ? argv[2] : "");
    else
        buf_printf(&rq->out, "> %.200s\n", line);
    rq->done_any = true;
    switch (cmd) {
    case RQ_HELP:
        request_help(rq);
        break;
    case RQ_JOIN:
        request_join(rq, argv[1]);
        break;
    case RQ_LEAVE:
        request_leave(rq, argv[1]);
        break;
    case RQ_CONFIRM:
        request_confirm(rq, argv[1]);
        break;
    case RQ_WHO:
        request_who(rq);
        break;
    case RQ_LISTS:
        request_lists(rq);
        break;
    case RQ_INFO:
        request_info(rq);
        break;
    case RQ_INDEX:
        request_index(rq);
        break;
    case RQ_GET:
        request_get(rq, argv[1]);
        break;
    case RQ_DIGEST:
        request_digest(rq, argv[1]);
        break;
    case RQ_ENABLE:
        if (!members_has(&rq->w->members, rq->who))
            buf_printf(&rq->out, "  %s is not a member of %s.\n", rq->who, rq->w->def->name);
        else if (vbounce_enable(rq->w, rq->who)) {
            buf_printf(&rq->out, "  %s gets the mail of %s again.\n", rq->who, rq->w->def->name);
            log_info("list %s: %s enabled again", rq->w->def->name, rq->who);
        } else
            buf_printf(&rq->out, "  %s was not disabled.\n", rq->who);
        break;
    case RQ_APPROVE:
    case RQ_REJECT:
        if (!request_password(rq, argv[1])) {
            buf_printf(&rq->out, "  Wrong password: nothing more is done.\n");
            log_warn("list %s: %s gave a wrong moderator password", rq->w->def->name, rq->who);
            rq->stop = true;
        } else if (argc == 2 && cmd == RQ_APPROVE && first) {
            rq->moderator = true;
            buf_printf(&rq->out, "  Moderator rights for the commands below.\n");
        } else if (argc == 3) {
            char err[200];
            if (moderate_decide(rq->w, argv[2], cmd == RQ_APPROVE, err, sizeof(err)) < 0)
                buf_printf(&rq->out, "  %s\n", err);
            else
                buf_printf(&rq->out, "  Held post %s %s.\n", argv[2],
                           cmd == RQ_APPROVE ? "approved and sent" : "rejected");
        } else
            buf_printf(&rq->out, "  Use approve PASSWORD (first line), approve PASSWORD ID or "
                                 "reject PASSWORD ID.\n");
        break;
    default:
        break;
    }
    buf_append(&rq->out, "\n", 1);
}

void
request_handle(struct work *w)
{
    struct request rq = {.w = w};
    const char *why = request_ignored(w);
    char *from, *subject, *re;
    size_t i, n = 0;
    int lines = 0;
    bool first = true;

    if (why != NULL) {
        log_info("list %s: request from <%s> not answered: %s", w->def->name, w->sender, why);
        return;
    }
    from = msg_header(w->text, w->len, "From");
    if (from == NULL || !msg_addr(from, rq.who, sizeof(rq.who)))
        snprintf(rq.who, sizeof(rq.who), "%s", w->sender);
    free(from);
    if (work_members_load(w) < 0) {
        w->errors++;
        log_error("list %s: cannot read the members: %s", w->def->name, strerror(errno));
        return;
    }
    buf_init(&rq.out, 8u << 20);
    subject = msg_header(w->text, w->len, "Subject");
    if (subject != NULL) {
        const char *s = msg_strip_subject(subject);
        if (request_lookup(s, strcspn(s, " \t")) != RQ_NONE) {
            request_line(&rq, s, true);
            first = false;
        }
    }
    for (i = msg_body(w->text, w->len); i < w->len && !rq.stop && lines < REQUEST_LINES_MAX;
         i += n + 1) {
        const char *l = w->text + i, *nl = memchr(l, '\n', w->len - i);
        char line[1000];
        n = nl != NULL ? (size_t)(nl - l) : w->len - i;
        if (n > 0 && l[n - 1] == '\r')
            snprintf(line, sizeof(line), "%.*s", (int)(n - 1), l);
        else
            snprintf(line, sizeof(line), "%.*s", (int)n, l);
        if (strcmp(line, "-- ") == 0 || strcmp(line, "--") == 0)
            break;
        if (line[strspn(line, " \t")] == '\0' || line[0] == '>')
            continue;
        lines++;
        request_line(&rq, line + strspn(line, " \t"), first);
        first = false;
    }
    if (!rq.done_any)
        request_help(&rq);
    if (subject != NULL) { /* a password in the subject never goes back */
        const char *t = msg_strip_subject(subject);
        enum request_cmd c = request_lookup(t, strcspn(t, " \t"));
        if (c == RQ_APPROVE || c == RQ_REJECT) {
            free(subject);
            subject = NULL;
        }
    }
    re = xasprintf("Re: %s", subject != NULL ? subject : "your commands");
    buf_append(&rq.out, "", 1);
    work_mail(w, rq.who, re, buf_peek(&rq.out), true);
    free(re);
    free(subject);
    buf_free(&rq.out);
}

void
request_handle_owner(struct work *w)
{
    char bounces[400];

    if (w->def->nmoderators == 0) {
        log_warn("list %s: mail to the owner from <%s> dropped: no moderator", w->def->name,
                 w->sender);
        return;
    }
    work_emit(w, work_addr(w, "-bounces", bounces, sizeof(bounces)), false, w->def->moderators,
              w->def->nmoderators, w->text, w->len, NULL);
    log_info("list %s: mail to the owner from <%s> forwarded to %zu moderator%s", w->def->name,
             w->sender, w->def->nmoderators, w->def->nmoderators == 1 ? "" : "s");
}
