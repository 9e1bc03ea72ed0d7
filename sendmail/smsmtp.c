/*
 * smsmtp - SMTP on stdin/stdout (sendmail -bs).
 */
#include "smsmtp.h"

#include "conf.h"
#include "smmsg.h"
#include "smsubmit.h"
#include "xmem.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#define SMSMTP_LINE_MAX 512
#define SMSMTP_ERROR_MAX 20

/* The transaction state; HELO/EHLO is welcome but not required. */
enum smsmtp_state { SS_READY, SS_MAIL, SS_RCPT };

struct smsmtp {
    const struct smsubmit *s;
    FILE *in, *out;
    enum smsmtp_state state;
    char sender[1024];
    struct smaddr_list rcpts;
    int errors;
    bool done; /* QUIT, end of input, or too many errors */
    int rc;
};

/* smsmtp_reply - one reply line, flushed at once; 5xx replies count as errors. */
static void smsmtp_reply(struct smsmtp *ss, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
smsmtp_reply(struct smsmtp *ss, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(ss->out, fmt, ap);
    va_end(ap);
    fputs("\r\n", ss->out);
    fflush(ss->out);
    if (fmt[0] == '5' && ++ss->errors >= SMSMTP_ERROR_MAX) {
        fputs("421 4.7.0 Too many errors, closing\r\n", ss->out);
        fflush(ss->out);
        ss->done = true;
        ss->rc = EX_PROTOCOL;
    }
}

/* smsmtp_reset - forget the transaction. */
static void
smsmtp_reset(struct smsmtp *ss)
{
    ss->state = SS_READY;
    ss->sender[0] = '\0';
    smaddr_free(&ss->rcpts);
}

/* smsmtp_getline - one line without its CRLF/LF into buf; -1 at end of input. A line
 * longer than the buffer is read to its end and reported through *toolong. */
static long
smsmtp_getline(FILE *in, char *buf, size_t size, bool *toolong)
{
    size_t n = 0;
    int c;

    *toolong = false;
    while ((c = getc(in)) != EOF && c != '\n') {
        if (n + 1 < size)
            buf[n++] = (char)c;
        else
            *toolong = true;
    }
    if (c == EOF && n == 0 && !*toolong)
        return -1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (long)n;
}

/* smsmtp_path - "<...>" after the "FROM:"/"TO:" keyword: the inside into out, *rest to
 * the parameters. -1 when malformed. */
static int
smsmtp_path(const char *arg, const char *kw, char *out, size_t outlen, const char **rest)
{
    size_t k = strlen(kw);
    bool quote = false;
    const char *p, *start;

    if (strncasecmp(arg, kw, k) != 0)
        return -1;
    for (p = arg + k; *p == ' '; p++)
        ;
    if (*p != '<')
        return -1;
    start = ++p;
    for (; *p != '\0' && (quote || *p != '>'); p++) {
        if (*p == '\\' && quote && p[1] != '\0')
            p++;
        else if (*p == '"')
            quote = !quote;
    }
    if (*p != '>' || (size_t)(p - start) >= outlen)
        return -1;
    snprintf(out, outlen, "%.*s", (int)(p - start), start);
    *rest = p + 1;
    return 0;
}

/* smsmtp_helo - HELO/EHLO DOMAIN. */
static void
smsmtp_helo(struct smsmtp *ss, const char *arg, bool ehlo)
{
    const struct conf *cf = ss->s->cf;
    const char *host = cf->hostname && cf->hostname[0] ? cf->hostname : cf->main_domain;

    if (arg[0] == '\0') {
        smsmtp_reply(ss, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
        return;
    }
    smsmtp_reset(ss);
    if (!ehlo) {
        smsmtp_reply(ss, "250 %s", host);
        return;
    }
    fprintf(ss->out, "250-%s\r\n250-8BITMIME\r\n250-SIZE %llu\r\n250-PIPELINING\r\n", host,
            (unsigned long long)cf->max_msg_size);
    smsmtp_reply(ss, "250 ENHANCEDSTATUSCODES");
}

/* smsmtp_mail - MAIL FROM:<path> [SIZE=n] [other parameters, ignored]. */
static void
smsmtp_mail(struct smsmtp *ss, const char *arg)
{
    char path[1024], err[512];
    const char *rest;

    if (ss->state != SS_READY) {
        smsmtp_reply(ss, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (smsmtp_path(arg, "FROM:", path, sizeof path, &rest) < 0) {
        smsmtp_reply(ss, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    for (const char *p = rest; (p = strcasestr(p, "SIZE=")) != NULL; p += 5) {
        if ((p == rest || p[-1] == ' ') &&
            strtoull(p + 5, NULL, 10) > (unsigned long long)ss->s->cf->max_msg_size) {
            smsmtp_reply(ss, "552 5.3.4 Message size exceeds fixed limit");
            return;
        }
    }
    if (smsubmit_sender(ss->s, path, ss->sender, sizeof ss->sender, err, sizeof err) != 0) {
        smsmtp_reply(ss, "553 5.1.7 %s", err);
        return;
    }
    ss->state = SS_MAIL;
    smsmtp_reply(ss, "250 2.1.0 Ok");
}

/* smsmtp_rcpt - RCPT TO:<path>. */
static void
smsmtp_rcpt(struct smsmtp *ss, const char *arg)
{
    char path[1024], one[1024], err[512];
    const char *rest;

    if (ss->state == SS_READY) {
        smsmtp_reply(ss, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (smsmtp_path(arg, "TO:", path, sizeof path, &rest) < 0) {
        smsmtp_reply(ss, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if ((long)ss->rcpts.n >= ss->s->cf->max_rcpts) {
        smsmtp_reply(ss, "452 4.5.3 Error: too many recipients");
        return;
    }
    /* exactly one address: parse it alone first, then add the normalised form */
    if (smsubmit_sender(ss->s, path, one, sizeof one, err, sizeof err) != 0 || one[0] == '\0' ||
        smsubmit_add_rcpts(ss->s, one, strlen(one), "RCPT", &ss->rcpts, err, sizeof err) != 0) {
        smsmtp_reply(ss, "553 5.1.3 %s", one[0] == '\0' ? "empty address" : err);
        return;
    }
    ss->state = SS_RCPT;
    smsmtp_reply(ss, "250 2.1.5 Ok");
}

/* smsmtp_data - DATA: the text up to a lone ".", unstuffed, into the maildrop. */
static void
smsmtp_data(struct smsmtp *ss, const char *arg)
{
    unsigned long long max = (unsigned long long)ss->s->cf->max_msg_size;
    struct smmsg m = {0};
    char *text = NULL, id[96], err[512];
    size_t len = 0, cap = 0;
    bool toobig = false, ended = false;
    char line[8192];
    long n;

    if (ss->state != SS_RCPT) {
        smsmtp_reply(ss, ss->state == SS_READY ? "503 5.5.1 Error: need MAIL command"
                                               : "554 5.5.1 Error: no valid recipients");
        return;
    }
    smsmtp_reply(ss, "354 End data with <CR><LF>.<CR><LF>");
    /* Long lines arrive in pieces of the buffer's size; only a piece that starts a line
     * can be the end marker or carry a stuffed dot. */
    bool at_start = true;
    for (;;) {
        size_t k = 0;
        int c;
        while (k + 1 < sizeof line && (c = getc(ss->in)) != EOF) {
            line[k++] = (char)c;
            if (c == '\n')
                break;
        }
        if (k == 0)
            break; /* end of input inside DATA: nothing is queued */
        line[k] = '\0';
        n = (long)k;
        bool eol = line[n - 1] == '\n';
        if (eol) {
            n--;
            if (n > 0 && line[n - 1] == '\r')
                n--;
        }
        const char *p = line;
        if (at_start && eol && n == 1 && line[0] == '.') {
            ended = true;
            break;
        }
        if (at_start && line[0] == '.') {
            p++;
            n--;
        }
        at_start = eol;
        if (!toobig && len + (size_t)n + 1 > max)
            toobig = true;
        if (toobig)
            continue;
        if (len + (size_t)n + 2 > cap) {
            cap = (len + (size_t)n + 2) * 2;
            text = xrealloc(text, cap);
        }
        memcpy(text + len, p, (size_t)n);
        len += (size_t)n;
        if (eol)
            text[len++] = '\n';
    }
    if (!ended) {
        free(text);
        ss->done = true;
        return;
    }
    if (toobig) {
        smsmtp_reply(ss, "552 5.3.4 Message too big");
    } else {
        int rc;
        smmsg_set_text(&m, text ? text : "", len);
        rc = smsubmit_message(ss->s, &m, ss->sender, &ss->rcpts, false, NULL, id, err, sizeof err);
        if (rc == 0)
            smsmtp_reply(ss, "250 2.0.0 Ok: queued as %s", id);
        else if (rc == EX_TEMPFAIL)
            smsmtp_reply(ss, "451 4.3.0 %s", err);
        else
            smsmtp_reply(ss, "554 5.3.0 %s", err);
        smmsg_free(&m);
    }
    free(text);
    smsmtp_reset(ss);
}

enum smsmtp_cmd_id {
    SC_HELO,
    SC_EHLO,
    SC_MAIL,
    SC_RCPT,
    SC_DATA,
    SC_RSET,
    SC_NOOP,
    SC_QUIT,
    SC_HELP,
    SC_VRFY
};

static const struct {
    const char *name;
    enum smsmtp_cmd_id id;
} smsmtp_cmds[] = {
    {"HELO", SC_HELO}, {"EHLO", SC_EHLO}, {"MAIL", SC_MAIL}, {"RCPT", SC_RCPT}, {"DATA", SC_DATA},
    {"RSET", SC_RSET}, {"NOOP", SC_NOOP}, {"QUIT", SC_QUIT}, {"HELP", SC_HELP}, {"VRFY", SC_VRFY},
};

/* smsmtp_command - one command line. */
static void
smsmtp_command(struct smsmtp *ss, char *line)
{
    size_t wl = strcspn(line, " ");
    const char *arg = line[wl] ? line + wl + 1 : "";
    size_t i;

    for (i = 0; i < sizeof smsmtp_cmds / sizeof smsmtp_cmds[0]; i++)
        if (strlen(smsmtp_cmds[i].name) == wl && strncasecmp(line, smsmtp_cmds[i].name, wl) == 0)
            break;
    if (i == sizeof smsmtp_cmds / sizeof smsmtp_cmds[0]) {
        smsmtp_reply(ss, "500 5.5.2 Error: command not recognized");
        return;
    }
    switch (smsmtp_cmds[i].id) {
    case SC_HELO:
    case SC_EHLO:
        smsmtp_helo(ss, arg, smsmtp_cmds[i].id == SC_EHLO);
        break;
    case SC_MAIL:
        smsmtp_mail(ss, arg);
        break;
    case SC_RCPT:
        smsmtp_rcpt(ss, arg);
        break;
    case SC_DATA:
        smsmtp_data(ss, arg);
        break;
    case SC_RSET:
        smsmtp_reset(ss);
        smsmtp_reply(ss, "250 2.0.0 Ok");
        break;
    case SC_NOOP:
        smsmtp_reply(ss, "250 2.0.0 Ok");
        break;
    case SC_QUIT:
        smsmtp_reply(ss, "221 2.0.0 Bye");
        ss->done = true;
        break;
    case SC_HELP:
        smsmtp_reply(ss, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY");
        break;
    case SC_VRFY:
        smsmtp_reply(ss, "252 2.0.0 Cannot VRFY user; send some mail and see");
        break;
    }
}

/* smsmtp_run - the session. */
int
smsmtp_run(const struct smsubmit *s, FILE *in, FILE *out)
{
    struct smsmtp ss = {.s = s, .in = in, .out = out};
    const struct conf *cf = s->cf;
    char line[SMSMTP_LINE_MAX + 1];
    bool toolong;

    smsmtp_reply(&ss, "220 %s ESMTP dmail sendmail",
                 cf->hostname && cf->hostname[0] ? cf->hostname : cf->main_domain);
    while (!ss.done) {
        if (smsmtp_getline(in, line, sizeof line, &toolong) < 0)
            break;
        if (toolong)
            smsmtp_reply(&ss, "500 5.5.2 Error: line too long");
        else
            smsmtp_command(&ss, line);
    }
    smsmtp_reset(&ss);
    return ss.rc;
}
