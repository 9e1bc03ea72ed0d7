/*
 * smsubmit - from a message and its envelope to a file in the maildrop.
 */
#include "smsubmit.h"

#include "addr.h"
#include "conf.h"
#include "qfile.h"
#include "smdrop.h"
#include "smmsg.h"
#include "smqual.h"
#include "xmem.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define SMSUBMIT_RCPT_MAX 100000

/* smsubmit_clean - copy s into buf keeping printable ASCII except spaces ('?' for
 * others), so the value can sit in the origin line and in log lines. */
static void
smsubmit_clean(char *buf, size_t len, const char *s)
{
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < len; i++)
        buf[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
}

/* smsubmit_init - the invoking user's identity. */
void
smsubmit_init(struct smsubmit *s, const struct conf *cf, struct smdrop *drop, bool verbose)
{
    struct passwd *pw;

    memset(s, 0, sizeof *s);
    s->cf = cf;
    s->drop = drop;
    s->verbose = verbose;
    s->uid = getuid();
    pw = getpwuid(s->uid);
    if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0') {
        smsubmit_clean(s->user, sizeof s->user, pw->pw_name);
        if (pw->pw_gecos != NULL) {
            /* the full name is the first comma-separated field */
            snprintf(s->gecos, sizeof s->gecos, "%.*s", (int)strcspn(pw->pw_gecos, ","),
                     pw->pw_gecos);
        }
    } else {
        snprintf(s->user, sizeof s->user, "uid%lu", (unsigned long)s->uid);
    }
    snprintf(s->origin, sizeof s->origin, "sendmail uid=%lu user=%s", (unsigned long)s->uid,
             s->user);
}

/* smsubmit_parse - one address (bare names get the main domain) normalised into buf. */
static int
smsubmit_parse(const struct smsubmit *s, const char *in, char *buf, size_t len, char *err,
               size_t errlen)
{
    struct addr a;
    char why[128];

    if (addr_parse_mailbox(in, s->cf->main_domain, &a, why, sizeof why) < 0) {
        snprintf(err, errlen, "bad address \"%.100s\": %.100s", in, why);
        return EX_NOUSER;
    }
    addr_format(&a, buf, len);
    return 0;
}

/* smsubmit_default_sender - "login@main_domain". */
int
smsubmit_default_sender(const struct smsubmit *s, char *buf, size_t len, char *err, size_t errlen)
{
    return smsubmit_parse(s, s->user, buf, len, err, errlen);
}

/* smsubmit_sender - -f's argument normalised. */
int
smsubmit_sender(const struct smsubmit *s, const char *arg, char *buf, size_t len, char *err,
                size_t errlen)
{
    char tmp[1024];
    size_t n = strlen(arg);

    if (n >= sizeof tmp) {
        snprintf(err, errlen, "sender address too long");
        return EX_NOUSER;
    }
    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
        arg++;
        n -= 2;
    }
    snprintf(tmp, sizeof tmp, "%.*s", (int)n, arg);
    if (tmp[0] == '\0') {
        buf[0] = '\0';
        return 0;
    }
    return smsubmit_parse(s, tmp, buf, len, err, errlen);
}

/* smsubmit_add_rcpts - an address list's addresses appended to rcpts. */
int
smsubmit_add_rcpts(const struct smsubmit *s, const char *text, size_t len, const char *what,
                   struct smaddr_list *rcpts, char *err, size_t errlen)
{
    struct smaddr_list l = {0};
    char why[256], buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8];
    int rc = 0;

    if (smaddr_extract(text, len, &l, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s", what, why);
        return EX_NOUSER;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        bool dup = false;
        rc = smsubmit_parse(s, l.v[i], buf, sizeof buf, why, sizeof why);
        if (rc != 0) {
            snprintf(err, errlen, "%s: %s", what, why);
            break;
        }
        for (size_t j = 0; j < rcpts->n && !dup; j++)
            dup = strcmp(rcpts->v[j], buf) == 0;
        if (dup)
            continue;
        if (rcpts->n >= SMSUBMIT_RCPT_MAX) {
            snprintf(err, errlen, "too many recipients (at most %d)", SMSUBMIT_RCPT_MAX);
            rc = EX_DATAERR;
            break;
        }
        rcpts->v = xrealloc(rcpts->v, (rcpts->n + 1) * sizeof *rcpts->v);
        rcpts->v[rcpts->n++] = xstrdup(buf);
    }
    smaddr_free(&l);
    return rc;
}

/* smsubmit_phrase - a display name as an RFC 5322 phrase: as is when it is atoms and
 * spaces, else a quoted string. */
static char *
smsubmit_phrase(const char *name)
{
    static const char atext[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789!#$%&'*+-/=?^_`{|}~ ";
    size_t n = strlen(name);
    char *out, *o;

    if (strspn(name, atext) == n && name[0] != ' ' && (n == 0 || name[n - 1] != ' '))
        return xstrdup(name);
    o = out = xmalloc(2 * n + 3);
    *o++ = '"';
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* smsubmit_extract - -t: recipients from To, Cc and Bcc; Bcc headers are removed. */
static int
smsubmit_extract(const struct smsubmit *s, struct smmsg *m, struct smaddr_list *rcpts, char *err,
                 size_t errlen)
{
    static const char *const fields[] = {"To", "Cc", "Bcc"};

    for (size_t i = 0; i < m->nhdr; i++) {
        struct smmsg_hdr *h = &m->hdr[i];
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            const char *val;
            size_t len;
            char what[32];
            int rc;

            if (!smmsg_name_is(m, h, fields[f]))
                continue;
            val = smmsg_value(m, h, &len);
            snprintf(what, sizeof what, "%s: header", fields[f]);
            rc = smsubmit_add_rcpts(s, val, len, what, rcpts, err, errlen);
            if (rc != 0)
                return rc;
            if (f == 2)
                h->removed = true;
        }
    }
    return 0;
}

/* smsubmit_qualify - bare addresses in the address headers get the main domain, as
 * sendmail qualifies them (To: demo -> To: demo@main_domain). */
static void
smsubmit_qualify(const struct smsubmit *s, struct smmsg *m)
{
    static const char *const fields[] = {"To", "Cc", "Bcc", "From", "Sender", "Reply-To"};

    for (size_t i = 0; i < m->nhdr; i++) {
        struct smmsg_hdr *h = &m->hdr[i];
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            const char *val;
            size_t len;
            char *q;

            if (h->removed || !smmsg_name_is(m, h, fields[f]))
                continue;
            val = smmsg_value(m, h, &len);
            q = smqual_value(val, len, s->cf->main_domain);
            if (q != NULL)
                smmsg_set_value(m, h, q);
            free(q);
        }
    }
}

/* smsubmit_message - finish m and write it with its envelope into the maildrop. */
int
smsubmit_message(const struct smsubmit *s, struct smmsg *m, const char *sender,
                 struct smaddr_list *rcpts, bool extract, const char *fullname, char *id, char *err,
                 size_t errlen)
{
    char *added[4] = {0}, when[64], from[512];
    size_t nadd = 0;
    struct qfile q = {0};
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    smmsg_parse_headers(m);
    if (extract && (rc = smsubmit_extract(s, m, rcpts, err, errlen)) != 0)
        return rc;
    if (rcpts->n == 0) {
        snprintf(err, errlen,
                 extract ? "no recipient addresses found in the message headers"
                         : "no recipients given");
        return EX_DATAERR;
    }
    smsubmit_qualify(s, m);
    qfile_new_id(q.id, sizeof q.id, s->cf->lock_id && s->cf->lock_id[0] ? s->cf->lock_id : NULL);
    if (smmsg_find(m, "From") == NULL) {
        const char *name = fullname ? fullname : s->gecos;
        if (sender[0] != '\0')
            snprintf(from, sizeof from, "%s", sender);
        else if (smsubmit_default_sender(s, from, sizeof from, err, errlen) != 0)
            return EX_NOUSER;
        if (name[0] != '\0') {
            char *phrase = smsubmit_phrase(name);
            added[nadd++] = xasprintf("From: %s <%s>", phrase, from);
            free(phrase);
        } else {
            added[nadd++] = xasprintf("From: %s", from);
        }
    }
    if (smmsg_find(m, "Date") == NULL) {
        localtime_r(&now, &tm);
        strftime(when, sizeof when, "%a, %d %b %Y %H:%M:%S %z", &tm);
        added[nadd++] = xasprintf("Date: %s", when);
    }
    if (smmsg_find(m, "Message-ID") == NULL) {
        /* the right side is the host's name when it is a domain name, else the main domain */
        const char *host = s->cf->hostname;
        if (host == NULL || strchr(host, '.') == NULL)
            host = s->cf->main_domain;
        added[nadd++] = xasprintf("Message-ID: <%s@%s>", q.id, host);
    }
    smmsg_finish(m, added);
    for (size_t i = 0; i < nadd; i++)
        free(added[i]);

    q.arrival = now;
    q.sender = (char *)sender;
    q.origin = (char *)s->origin;
    q.text = m->text;
    q.text_len = m->len;
    q.ret = (enum dsn_ret)s->ret;
    q.envid = (char *)s->envid;
    if (s->verp != NULL && sender[0] != '\0')
        snprintf(q.verp, sizeof q.verp, "%s", s->verp);
    q.rcpt = xcalloc(rcpts->n, sizeof *q.rcpt);
    for (size_t i = 0; i < rcpts->n; i++) {
        q.rcpt[i].addr = rcpts->v[i];
        q.rcpt[i].notify = s->notify;
    }
    q.nrcpt = rcpts->n;
    rc = smdrop_write(s->drop, s->cf->spool_dir, &q, err, errlen);
    if (rc < 0)
        rc =
            errno == ENOSPC || errno == EDQUOT || errno == EIO || errno == ENOMEM || errno == EAGAIN
                ? EX_TEMPFAIL
                : EX_CANTCREAT;
    snprintf(id, 96, "%s", q.id);
    free(q.rcpt);
    return rc;
}
