/*
 * dotfwd - per-user forward files at delivery. See dotfwd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "dotfwd.h"
#include "dsnparam.h"
#include "file.h"
#include "lda.h"
#include "log.h"
#include "ldapriv.h"
#include "logq.h"
#include "xmem.h"

/* dotfwd_where - the file to read for mailbox into f (path, user, home); *owner the uid
 * that may own it besides root; *self_run: its programs run as its user. */
static void
dotfwd_where(const struct conf *cf, const char *rcpt, const char *mailbox, struct dotfwd *f,
             uid_t *owner, bool *self_run)
{
    const char *at = strrchr(rcpt, '@'), *base = strrchr(mailbox, '/');

    *owner = geteuid();
    *self_run = true;
    if (cf->authent_method == AUTHENT_UNIX_USER && !cf->no_dotforward && base != NULL) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwnam_r(base + 1, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
            pw.pw_dir != NULL && pw.pw_dir[0] == '/') {
            snprintf(f->path, sizeof(f->path), "%s/.forward", pw.pw_dir);
            snprintf(f->user, sizeof(f->user), "%s", pw.pw_name);
            snprintf(f->home, sizeof(f->home), "%s", pw.pw_dir);
            *owner = pw.pw_uid;
            *self_run = pw.pw_uid == geteuid();
            return;
        }
    }
    snprintf(f->path, sizeof(f->path), "%s.fwd", mailbox);
    snprintf(f->user, sizeof(f->user), "%.*s", at != NULL ? (int)(at - rcpt) : (int)strlen(rcpt),
             rcpt);
    if (file_dirname(mailbox, f->home, sizeof(f->home)) < 0)
        snprintf(f->home, sizeof(f->home), "/");
}

/* dotfwd_add - one entry. */
static void
dotfwd_add(struct dotfwd *f, enum dotfwd_kind kind, const char *s)
{
    f->e = xrealloc(f->e, (f->n + 1) * sizeof(*f->e));
    f->e[f->n].kind = kind;
    f->e[f->n].s = xstrdup(s);
    f->n++;
}

/* dotfwd_token - one destination tok of the file of rcpt. */
static void
dotfwd_token(struct dotfwd *f, const char *rcpt, char *tok)
{
    const char *at = strrchr(rcpt, '@');
    char canon[DELIVER_ADDR_MAX + 1], err[100];
    size_t len = strlen(tok);
    struct addr a;

    if (len > 2 && tok[0] == '"' && tok[len - 1] == '"' && (tok[1] == '|' || tok[1] == '/')) {
        tok[len - 1] = '\0';
        tok++;
    }
    if (tok[0] == '|' && tok[1] != '\0') {
        dotfwd_add(f, DOTFWD_PROGRAM, tok + 1);
        return;
    }
    if (tok[0] == '/') {
        dotfwd_add(f, DOTFWD_FILE, tok);
        return;
    }
    if (strcmp(tok, "$user") == 0 ||
        (tok[0] == '\\' && (strcasecmp(tok + 1, f->user) == 0 ||
                            (at != NULL && (size_t)(at - rcpt) == strlen(tok + 1) &&
                             strncasecmp(tok + 1, rcpt, strlen(tok + 1)) == 0)))) {
        dotfwd_add(f, DOTFWD_SELF, "");
        return;
    }
    if (tok[0] == '\\')
        tok++;
    if (addr_parse_mailbox(tok, at != NULL ? at + 1 : NULL, &a, err, sizeof(err)) < 0) {
        char q[200];
        log_warn("forward file %s: '%s' skipped: %s", f->path,
                 logq_text(q, sizeof(q), tok, strlen(tok), 100), err);
        return;
    }
    addr_format(&a, canon, sizeof(canon));
    dotfwd_add(f, strcasecmp(canon, rcpt) == 0 ? DOTFWD_SELF : DOTFWD_ADDR, canon);
}

/* dotfwd_parse - the destinations of text (modified). */
static void
dotfwd_parse(struct dotfwd *f, const char *rcpt, char *text)
{
    char *s = text;

    while (*s != '\0') {
        char *tok, *e;
        bool quoted = false;
        while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\n' || *s == '\r')
            s++;
        if (*s == '#') {
            while (*s != '\0' && *s != '\n')
                s++;
            continue;
        }
        if (*s == '\0')
            break;
        tok = s;
        for (; *s != '\0' && *s != '\n' && (quoted || *s != ','); s++)
            if (*s == '"')
                quoted = !quoted;
        e = s;
        if (*s != '\0')
            s++;
        while (e > tok && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        *e = '\0';
        if (*tok != '\0' && f->n < ROUTE_EXPAND_MAX)
            dotfwd_token(f, rcpt, tok);
    }
}

/* dotfwd_read - find, check and parse the forward file. */
int
dotfwd_read(const struct conf *cf, const char *rcpt, const char *mailbox, struct dotfwd *f,
            char *err, size_t errlen)
{
    struct stat st;
    uid_t owner;
    bool self_run;
    char *text;
    ssize_t n;
    int fd;

    memset(f, 0, sizeof(*f));
    dotfwd_where(cf, rcpt, mailbox, f, &owner, &self_run);
    fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        if (errno == EACCES || errno == ELOOP) {
            log_warn("forward file %s ignored: %s", f->path,
                     errno == ELOOP ? "a symbolic link" : strerror(errno));
            return 0;
        }
        snprintf(err, errlen, "cannot read the forward file: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot read the forward file: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_uid != owner && st.st_uid != 0) || (st.st_mode & S_IWOTH) ||
        st.st_size > DOTFWD_MAX) {
        log_warn("forward file %s ignored: %s", f->path,
                 !S_ISREG(st.st_mode)                     ? "not a regular file"
                 : (st.st_uid != owner && st.st_uid != 0) ? "owned by another user"
                 : (st.st_mode & S_IWOTH)                 ? "world-writable"
                                                          : "too big");
        close(fd);
        return 0;
    }
    text = xmalloc((size_t)st.st_size + 1);
    n = read(fd, text, (size_t)st.st_size);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read the forward file: %s", strerror(errno));
        free(text);
        return -1;
    }
    text[n] = '\0';
    if (memchr(text, '\0', (size_t)n) != NULL)
        text[0] = '\0'; /* a binary file: no destination, the mailbox keeps the mail */
    if (st.st_mode & S_IWGRP)
        f->deny = "the forward file is group-writable";
    else if (!self_run && !ldapriv_on())
        f->deny = "dsmtp cannot run programs as another user (it dropped root)";
    else if (!self_run)
        f->priv = true; /* its programs and files as its user, by the root helper */
    dotfwd_parse(f, rcpt, text);
    free(text);
    return 1;
}

/* dotfwd_free - the entries. */
void
dotfwd_free(struct dotfwd *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->e[i].s);
    free(f->e);
    f->e = NULL;
    f->n = 0;
}

/* dotfwd_looped - the header section of text holds "Delivered-To: rcpt". */
static bool
dotfwd_looped(const char *text, size_t len, const char *rcpt)
{
    const char *p = text, *end = text + len;
    size_t rl = strlen(rcpt);

    while (p < end && *p != '\n') {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > 13 && strncasecmp(p, "Delivered-To:", 13) == 0) {
            const char *v = p + 13;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            if ((size_t)(ve - v) == rl && strncasecmp(v, rcpt, rl) == 0)
                return true;
        }
        p = eol + 1;
    }
    return false;
}

bool
dotfwd_has_program(const struct dotfwd *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->e[i].kind == DOTFWD_PROGRAM)
            return true;
    return false;
}

/* dotfwd_queue - the forwarded copies (addresses of f) into a new queue file. */
static int
dotfwd_queue(const struct conf *cf, const struct dotfwd *f, const struct dotfwd_msg *m,
             struct outq *oq)
{
    struct deliver_qrcpt *q = xcalloc(f->n, sizeof(*q));
    char x[DSNPARAM_ORCPT_MAX + 1], *orcpt = NULL, *text;
    size_t n = 0, hl;
    int rc;

    if (m->orcpt == NULL && dsnparam_xtext_encode(m->rcpt, x, sizeof(x) - 8) == 0)
        orcpt = xasprintf("rfc822;%s", x);
    for (size_t i = 0; i < f->n; i++)
        if (f->e[i].kind == DOTFWD_ADDR)
            q[n++] = (struct deliver_qrcpt){
                f->e[i].s, 0, NULL, m->notify, m->orcpt != NULL ? m->orcpt : orcpt, false, NULL};
    text = xasprintf("Delivered-To: %s\n", m->rcpt);
    hl = strlen(text);
    text = xrealloc(text, hl + m->len + 1);
    memcpy(text + hl, m->text, m->len);
    rc = n == 0 ? 0
                : deliver_queue_write(cf, "", m->sender, m->origin, m->dsn, m->arrival, q, n, text,
                                      hl + m->len, oq);
    free(text);
    free(orcpt);
    free(q);
    return rc < 0 ? -1 : (int)n;
}

/* dotfwd_worse - a is worse than b (for now, then for good, then delivered). */
static bool
dotfwd_worse(enum drop_result a, enum drop_result b)
{
    return (a == DROP_TEMP && b != DROP_TEMP) || (a == DROP_PERM && b == DROP_OK);
}

/* dotfwd_one - one program (prog) or file destination s of a forward file or an alias file
 * (source "forward" or "alias", the allow_mail_to_* value it needs); deny: why it is
 * refused anyway, or NULL. Logged; why gets the reason of a failure. */
static enum drop_result
dotfwd_one(const struct conf *cf, bool prog, const char *s, const struct lda_msg *lm,
           const char *source, const char *deny, const char *id, char *why, size_t whylen)
{
    const struct conf_list *allow = prog ? &cf->allow_mail_to_commands : &cf->allow_mail_to_files;
    char q[300], wq[400];
    enum drop_result r;

    if (!conf_list_has(allow, source) || deny != NULL) {
        snprintf(why, whylen, "mail to %s is restricted: %s%s%s", prog ? "command" : "file",
                 deny != NULL ? deny
                 : prog       ? "allow_mail_to_commands lacks "
                              : "allow_mail_to_files lacks ",
                 deny != NULL ? "" : source, "");
        r = DROP_PERM;
    } else {
        r = prog ? lda_program(cf, s, lm, why, whylen) : lda_file(cf, s, lm, why, whylen);
    }
    log_info("deliver id=%s to=<%s> %s=%s result=%s%s%s", id, lm->rcpt, prog ? "command" : "file",
             logq_text(q, sizeof(q), s, strlen(s), 200),
             r == DROP_OK     ? "ok"
             : r == DROP_TEMP ? "deferred"
                              : "failed",
             r == DROP_OK ? "" : " error=",
             r == DROP_OK ? "" : logq_text(wq, sizeof(wq), why, strlen(why), 300));
    return r;
}

/* dotfwd_status - the RFC 3463 status of a program or file failure why. */
static const char *
dotfwd_status(const char *why)
{
    return strncmp(why, "mail to", 7) == 0 ? "5.7.1" : "5.3.0";
}

/* dotfwd_deliver - the copies, programs and files of f. */
enum drop_result
dotfwd_deliver(const struct conf *cf, const struct dotfwd *f, const struct dotfwd_msg *m,
               struct outq *oq, bool *keep, const char **status, char *err, size_t errlen)
{
    struct lda_msg lm = {
        m->rcpt, m->sender, m->text, m->len, f->user, f->home, f->priv ? f->path : NULL};
    enum drop_result res = DROP_OK;
    int nq;

    *keep = f->n == 0;
    *status = "5.2.0";
    if (f->n == 0)
        return DROP_OK;
    if (dotfwd_looped(m->text, m->len, m->rcpt)) {
        snprintf(err, errlen, "mail forwarding loop for %s", m->rcpt);
        *status = "5.4.6";
        return DROP_PERM;
    }
    nq = dotfwd_queue(cf, f, m, oq);
    if (nq < 0) {
        snprintf(err, errlen, "cannot queue the forwarded copies: %s", strerror(errno));
        return DROP_TEMP;
    }
    if (nq > 0)
        log_info("deliver id=%s to=<%s> forward-file=%s result=forwarded copies=%d", m->id, m->rcpt,
                 f->path, nq);
    for (size_t i = 0; i < f->n; i++) {
        const struct dotfwd_ent *e = &f->e[i];
        enum drop_result r;
        char why[300];
        if (e->kind == DOTFWD_SELF)
            *keep = true;
        if (e->kind != DOTFWD_PROGRAM && e->kind != DOTFWD_FILE)
            continue;
        r = dotfwd_one(cf, e->kind == DOTFWD_PROGRAM, e->s, &lm, "forward", f->deny, m->id, why,
                       sizeof(why));
        if (dotfwd_worse(r, res)) {
            res = r;
            snprintf(err, errlen, "%s: %s", e->s, why);
            *status = dotfwd_status(why);
        }
    }
    return res;
}

/* dotfwd_alias_lda - an alias file's program or file. */
enum drop_result
dotfwd_alias_lda(const struct conf *cf, const char *lda, const struct dotfwd_msg *m,
                 const char **status, char *err, size_t errlen)
{
    const char *at = strrchr(m->rcpt, '@');
    char user[300], why[300];
    struct lda_msg lm = {m->rcpt, m->sender, m->text, m->len, user, "/", ""};
    bool prog = lda[0] == '|';
    enum drop_result r;

    snprintf(user, sizeof(user), "%.*s", at != NULL ? (int)(at - m->rcpt) : (int)strlen(m->rcpt),
             m->rcpt);
    r = dotfwd_one(cf, prog, prog ? lda + 1 : lda, &lm, "alias", NULL, m->id, why, sizeof(why));
    *status = dotfwd_status(why);
    if (r != DROP_OK)
        snprintf(err, errlen, "%s: %s", lda, why);
    return r;
}
