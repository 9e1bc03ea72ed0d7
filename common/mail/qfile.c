/*
 * qfile - the queue file format (man/dmail-queue.5).
 *
 * A file is a header block of text lines, a blank line, exactly `size` bytes of message
 * text and a trailer line "end". The header is strict (fixed order, known keywords, one
 * value each) so that a torn, truncated or foreign file is always recognised:
 *
 *   DMQ 1
 *   id ID
 *   arrival UNIX-TIME
 *   sender <ADDR>
 *   origin TEXT
 *   flags N
 *   verp XY                                               (optional: VERP delimiters)
 *   dsn RET ENVID NOTIFY                                  (optional)
 *   rcpts N
 *   rcpt STATE ATTEMPTS NEXT-TRY <ADDR> [ERROR TEXT]      (N times, each maybe followed by)
 *   notify NOTIFY ORCPT                                   (optional)
 *   size N
 *   (blank line)
 *   N bytes of text, then "\n" if the text does not end with one
 *   end
 *
 * Addresses are written with bytes <= 0x20, 0x7f, '+', '<' and '>' as "+XX" (hex), so an
 * address is one space-free token. Free text (origin, error) is written as is; CR, LF and
 * NUL are refused there and in addresses, so no value can start a line of its own.
 * DSN values are single tokens ("-" for none): RET "full"/"hdrs", NOTIFY "never" or a
 * comma list of "success", "failure", "delay", ENVID and ORCPT in xtext (no spaces).
 */
#include "qfile.h"

#include "dsnparam.h"
#include "file.h"
#include "xheader.h"
#include "xmem.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QFILE_MAGIC "DMQ"
#define QFILE_VERSION 1
#define QFILE_LINE_MAX 4096   /* longest header line we write or accept */
#define QFILE_RCPT_MAX 100000 /* sanity bound on the rcpts line */

static const char *const qfile_state_names[] = {
    [QR_PENDING] = "pending",
    [QR_DONE] = "done",
    [QR_FAILED] = "failed",
};

/* qfile_state_name - the file's word for a recipient state; NULL if out of range. */
const char *
qfile_state_name(enum qfile_rstate s)
{
    if ((unsigned)s >= sizeof qfile_state_names / sizeof qfile_state_names[0])
        return NULL;
    return qfile_state_names[s];
}

/* qfile_id_valid - an id is a plain file name: [A-Za-z0-9._-], not starting with '.'. */
bool
qfile_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= sizeof(((struct qfile *)0)->id) || id[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

/* qfile_new_id - a fresh unique id: file_unique_name with its dots turned into '-' (so the
 * id is an RFC 5322 atom, as the id clause of a Received: header needs) and any other byte
 * a queue file name may not hold into '_'. */
void
qfile_new_id(char *id, size_t len, const char *node)
{
    file_unique_name(id, len, node);
    for (char *p = id; *p; p++)
        if (*p == '.')
            *p = '-';
        else if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            *p = '_';
}

/* qfile_text_ok - free text and addresses may hold no CR, LF or NUL. */
static bool
qfile_text_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

/* qfile_addr_escape_byte - the bytes an address token writes as +XX. */
static bool
qfile_addr_escape_byte(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '+' || c == '<' || c == '>';
}

/* qfile_put - append printf output to a growing buffer. */
static void qfile_put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
qfile_put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            n = 0;
        if ((size_t)n < *cap - *len)
            break;
        *cap = (*cap + (size_t)n + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    *len += (size_t)n;
}

/* qfile_put_addr - append "<escaped addr>". */
static void
qfile_put_addr(char **buf, size_t *len, size_t *cap, const char *addr)
{
    qfile_put(buf, len, cap, "<");
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        if (qfile_addr_escape_byte(*p))
            qfile_put(buf, len, cap, "+%02X", *p);
        else
            qfile_put(buf, len, cap, "%c", *p);
    }
    qfile_put(buf, len, cap, ">");
}

/* qfile_add_rcpt - append a pending recipient (copies addr). */
void
qfile_add_rcpt(struct qfile *q, const char *addr)
{
    q->rcpt = xrealloc(q->rcpt, (q->nrcpt + 1) * sizeof *q->rcpt);
    q->rcpt[q->nrcpt] = (struct qfile_rcpt){.addr = xstrdup(addr), .state = QR_PENDING};
    q->nrcpt++;
}

/* qfile_dsn_ok - DSN values that can be written and read back: a known RET, NOTIFY
 * dsnparam_notify_valid, ENVID and ORCPT (NULL: none) as dsnparam checks them. */
static bool
qfile_dsn_ok(enum dsn_ret ret, const char *envid, int notify, const char *orcpt)
{
    const char *why;

    return (ret == DSN_RET_UNSET || ret == DSN_RET_HDRS || ret == DSN_RET_FULL) &&
           dsnparam_notify_valid(notify) &&
           (envid == NULL || dsnparam_envid_check(envid, strlen(envid), &why) == 0) &&
           (orcpt == NULL || dsnparam_orcpt_check(orcpt, strlen(orcpt), &why) == 0);
}

/* qfile_verp_ok - "" or two printable non-space characters. */
bool
qfile_verp_ok(const char *v)
{
    size_t n = strlen(v);

    if (n != 0 && n != 2)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

/* qfile_format_header - the header block (through the blank line) into a malloc'd
 * buffer; -1 with errno EINVAL if a value cannot be written safely. */
static int
qfile_format_header(const struct qfile *q, char **out, size_t *outlen)
{
    size_t len = 0, cap = 512;
    const char *why;
    char *buf;

    if (!qfile_id_valid(q->id) || q->arrival < 0 || q->flags < 0 || !qfile_text_ok(q->sender) ||
        (q->origin != NULL && !qfile_text_ok(q->origin)) || (q->text == NULL && q->text_len) ||
        (q->nrcpt == 0 && !(q->flags & QF_RCPT_FROM_HEADERS)) || q->nrcpt > QFILE_RCPT_MAX ||
        !qfile_dsn_ok(q->ret, q->envid, q->notify, NULL) || !qfile_verp_ok(q->verp))
        goto inval;
    for (size_t i = 0; i < q->nrcpt; i++) {
        const struct qfile_rcpt *r = &q->rcpt[i];
        if (r->addr == NULL || r->addr[0] == '\0' || !qfile_text_ok(r->addr) ||
            qfile_state_name(r->state) == NULL || r->attempts < 0 || r->next_try < 0 ||
            (r->last_error != NULL && !qfile_text_ok(r->last_error)) ||
            !qfile_dsn_ok(DSN_RET_UNSET, NULL, r->notify, r->orcpt) ||
            (r->xheader != NULL && xheader_check(r->xheader, strlen(r->xheader), &why) < 0))
            goto inval;
    }
    buf = xmalloc(cap);
    qfile_put(&buf, &len, &cap, "%s %d\nid %s\narrival %lld\nsender ", QFILE_MAGIC, QFILE_VERSION,
              q->id, (long long)q->arrival);
    qfile_put_addr(&buf, &len, &cap, q->sender);
    qfile_put(&buf, &len, &cap, "\norigin %s\nflags %d\n", q->origin ? q->origin : "", q->flags);
    if (q->verp[0] != '\0')
        qfile_put(&buf, &len, &cap, "verp %s\n", q->verp);
    if (q->ret != DSN_RET_UNSET || q->envid != NULL || q->notify != 0) {
        char nt[DSNPARAM_NOTIFY_TEXT];
        qfile_put(&buf, &len, &cap, "dsn %s %s %s\n",
                  q->ret != DSN_RET_UNSET ? dsnparam_ret_name(q->ret, true) : "-",
                  q->envid != NULL ? q->envid : "-",
                  q->notify ? dsnparam_notify_format(q->notify, true, nt, sizeof(nt)) : "-");
    }
    qfile_put(&buf, &len, &cap, "rcpts %zu\n", q->nrcpt);
    for (size_t i = 0; i < q->nrcpt; i++) {
        const struct qfile_rcpt *r = &q->rcpt[i];
        qfile_put(&buf, &len, &cap, "rcpt %s %d %lld ", qfile_state_name(r->state), r->attempts,
                  (long long)r->next_try);
        qfile_put_addr(&buf, &len, &cap, r->addr);
        if (r->last_error != NULL && r->last_error[0] != '\0')
            qfile_put(&buf, &len, &cap, " %s", r->last_error);
        qfile_put(&buf, &len, &cap, "\n");
        if (r->notify != 0 || r->orcpt != NULL) {
            char nt[DSNPARAM_NOTIFY_TEXT];
            qfile_put(&buf, &len, &cap, "notify %s %s\n",
                      r->notify ? dsnparam_notify_format(r->notify, true, nt, sizeof(nt)) : "-",
                      r->orcpt != NULL ? r->orcpt : "-");
        }
        if (r->xheader != NULL)
            qfile_put(&buf, &len, &cap, "xheader %s\n", r->xheader);
    }
    qfile_put(&buf, &len, &cap, "size %zu\n\n", q->text_len);
    for (const char *l = buf, *nl; (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
        if (nl - l >= QFILE_LINE_MAX) {
            free(buf);
            goto inval;
        }
    }
    *out = buf;
    *outlen = len;
    return 0;
inval:
    errno = EINVAL;
    return -1;
}

/* qfile_write - into dir; the temporary file is tmpdir/ID, or dir/.ID when tmpdir is NULL
 * or dir itself (the maildrop, where readers skip dot-files). mode for the file. */
int
qfile_write(const char *dir, const char *tmpdir, struct qfile *q, int mode)
{
    char tmp[PATH_MAX], final[PATH_MAX], *hdr = NULL;
    size_t hdrlen;
    bool same = tmpdir == NULL || strcmp(tmpdir, dir) == 0;
    int fd = -1, saved, tries = 0;

    if (q->id[0] == '\0')
        qfile_new_id(q->id, sizeof q->id, NULL);
    if (qfile_format_header(q, &hdr, &hdrlen) < 0)
        return -1;
    if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, q->id) >= sizeof final ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s%s", same ? dir : tmpdir, same ? "." : "", q->id) >=
            sizeof tmp) {
        free(hdr);
        errno = ENAMETOOLONG;
        return -1;
    }
    /* One writer per id: a temporary file by that name can only be left over from a
     * crash, so it is removed and the open retried once. */
    while ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 07777)) <
           0) {
        if (errno != EEXIST || tries++ > 0 || unlink(tmp) < 0) {
            saved = errno;
            free(hdr);
            errno = saved;
            return -1;
        }
    }
    if (fchmod(fd, mode & 07777) < 0 || /* whatever the umask */
        file_write_all(fd, hdr, hdrlen) < 0 || file_write_all(fd, q->text, q->text_len) < 0 ||
        (q->text_len > 0 && q->text[q->text_len - 1] != '\n' && file_write_all(fd, "\n", 1) < 0) ||
        file_write_all(fd, "end\n", 4) < 0 || fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) < 0)
        goto fail;
    free(hdr);
    return file_fsync_dir(final);
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(hdr);
    errno = saved;
    return -1;
}

/* The reader's cursor over the file's bytes. */
struct qfile_rd {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
};

/* qfile_rd_fail - record a reason ("line N: ...") and return -1. */
static int qfile_rd_fail(struct qfile_rd *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
qfile_rd_fail(struct qfile_rd *rd, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rd->err != NULL && rd->errlen > 0) {
        if (rd->line > 0)
            snprintf(rd->err, rd->errlen, "line %d: %s", rd->line, msg);
        else
            snprintf(rd->err, rd->errlen, "%s", msg);
    }
    return -1;
}

/* qfile_rd_line - the next header line (without LF) as a NUL-terminated copy in buf. */
static int
qfile_rd_line(struct qfile_rd *rd, char *buf, size_t buflen)
{
    const char *nl = memchr(rd->p, '\n', (size_t)(rd->end - rd->p));
    size_t n;

    rd->line++;
    if (nl == NULL)
        return qfile_rd_fail(rd, "truncated header");
    n = (size_t)(nl - rd->p);
    if (n >= buflen)
        return qfile_rd_fail(rd, "header line too long");
    if (memchr(rd->p, '\0', n) != NULL || memchr(rd->p, '\r', n) != NULL)
        return qfile_rd_fail(rd, "control character in header");
    memcpy(buf, rd->p, n);
    buf[n] = '\0';
    rd->p = nl + 1;
    return 0;
}

/* qfile_rd_peek - the next line starts with "KEY " (nothing is consumed). */
static bool
qfile_rd_peek(const struct qfile_rd *rd, const char *key)
{
    size_t k = strlen(key);

    return (size_t)(rd->end - rd->p) > k && memcmp(rd->p, key, k) == 0 && rd->p[k] == ' ';
}

/* qfile_rd_key - the next line must be "KEY VALUE"; *val points at VALUE inside buf. */
static int
qfile_rd_key(struct qfile_rd *rd, char *buf, size_t buflen, const char *key, char **val)
{
    size_t k = strlen(key);

    if (qfile_rd_line(rd, buf, buflen) < 0)
        return -1;
    if (strncmp(buf, key, k) != 0 || buf[k] != ' ')
        return qfile_rd_fail(rd, "expected \"%s\"", key);
    *val = buf + k + 1;
    return 0;
}

/* qfile_parse_num - a decimal number in [0, max] that is the whole string. */
static int
qfile_parse_num(const char *s, long long max, long long *out)
{
    char *e;
    long long v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoll(s, &e, 10);
    if (errno != 0 || *e != '\0' || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* qfile_rd_num - "KEY N" with N in [0, max]. */
static int
qfile_rd_num(struct qfile_rd *rd, const char *key, long long max, long long *out)
{
    char buf[64], *val;

    if (qfile_rd_key(rd, buf, sizeof buf, key, &val) < 0)
        return -1;
    if (qfile_parse_num(val, max, out) < 0)
        return qfile_rd_fail(rd, "bad %s \"%s\"", key, val);
    return 0;
}

/* qfile_hexval - one hex digit's value, or -1. */
static int
qfile_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* qfile_parse_addr - "<escaped>" at *s to a malloc'd address; *s moves past '>'. An empty
 * address is allowed only if allow_empty (the null sender). */
static int
qfile_parse_addr(char **s, bool allow_empty, char **out)
{
    char *p = *s, *a, *o;

    if (*p != '<')
        return -1;
    a = o = xmalloc(strlen(p) + 1);
    for (p++; *p != '>'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            int hi = qfile_hexval(p[1]), lo = hi < 0 ? -1 : qfile_hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0) || hi * 16 + lo == '\r' ||
                hi * 16 + lo == '\n')
                goto bad;
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else if (c == '\0' || qfile_addr_escape_byte(c)) {
            goto bad;
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    if (a[0] == '\0' && !allow_empty)
        goto bad;
    *s = p + 1;
    *out = a;
    return 0;
bad:
    free(a);
    return -1;
}

/* qfile_parse_rcpt - one "STATE ATTEMPTS NEXT <addr> [error]" value into r. */
static int
qfile_parse_rcpt(struct qfile_rd *rd, char *val, struct qfile_rcpt *r)
{
    char *tok[3], *p = val;
    long long n;
    size_t i;

    for (i = 0; i < 3; i++) {
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            return qfile_rd_fail(rd, "short rcpt line");
        *sp = '\0';
        tok[i] = p;
        p = sp + 1;
    }
    for (i = 0; i < sizeof qfile_state_names / sizeof qfile_state_names[0]; i++)
        if (strcmp(tok[0], qfile_state_names[i]) == 0)
            break;
    if (i == sizeof qfile_state_names / sizeof qfile_state_names[0])
        return qfile_rd_fail(rd, "bad rcpt state \"%s\"", tok[0]);
    r->state = (enum qfile_rstate)i;
    if (qfile_parse_num(tok[1], INT_MAX, &n) < 0)
        return qfile_rd_fail(rd, "bad rcpt attempts \"%s\"", tok[1]);
    r->attempts = (int)n;
    if (qfile_parse_num(tok[2], LLONG_MAX, &n) < 0)
        return qfile_rd_fail(rd, "bad rcpt next try \"%s\"", tok[2]);
    r->next_try = (time_t)n;
    if (qfile_parse_addr(&p, false, &r->addr) < 0)
        return qfile_rd_fail(rd, "bad rcpt address");
    if (*p == ' ' && p[1] != '\0')
        r->last_error = xstrdup(p + 1);
    else if (*p != '\0')
        return qfile_rd_fail(rd, "junk after rcpt address");
    return 0;
}

/* qfile_split - val into up to n space-separated tokens; the count must be n. */
static bool
qfile_split(char *val, char **tok, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tok[i] = val;
        val = strchr(val, ' ');
        if (val == NULL)
            return i + 1 == n && tok[i][0] != '\0';
        *val++ = '\0';
        if (tok[i][0] == '\0')
            return false;
    }
    return false;
}

/* qfile_parse_dsn - the values of "dsn RET ENVID NOTIFY" (ret and envid NULL: of a
 * "notify NOTIFY ORCPT" line, where orcpt is not NULL) into the pointers given. */
static int
qfile_parse_dsn(struct qfile_rd *rd, char *val, enum dsn_ret *ret, char **envid, int *notify,
                char **orcpt)
{
    char *tok[3];
    const char *why = "", *nt;
    size_t n = ret != NULL ? 3 : 2;

    if (!qfile_split(val, tok, n))
        return qfile_rd_fail(rd, "bad %s line", ret != NULL ? "dsn" : "notify");
    nt = tok[ret != NULL ? 2 : 0];
    if (ret != NULL) {
        if (strcmp(tok[0], "-") != 0 &&
            (*ret = dsnparam_ret_parse(tok[0], strlen(tok[0]))) == DSN_RET_UNSET)
            return qfile_rd_fail(rd, "bad dsn ret \"%s\"", tok[0]);
        if (strcmp(tok[1], "-") != 0) {
            if (dsnparam_envid_check(tok[1], strlen(tok[1]), &why) < 0)
                return qfile_rd_fail(rd, "bad dsn envid: %s", why);
            *envid = xstrdup(tok[1]);
        }
    } else if (strcmp(tok[1], "-") != 0) {
        if (dsnparam_orcpt_check(tok[1], strlen(tok[1]), &why) < 0)
            return qfile_rd_fail(rd, "bad orcpt: %s", why);
        *orcpt = xstrdup(tok[1]);
    }
    if (strcmp(nt, "-") != 0 && dsnparam_notify_parse(nt, strlen(nt), notify, &why) < 0)
        return qfile_rd_fail(rd, "bad notify: %s", why);
    return 0;
}

/* qfile_parse - the whole file image into q (already zeroed). */
static int
qfile_parse(struct qfile_rd *rd, struct qfile *q)
{
    char line[QFILE_LINE_MAX + 1], *val;
    long long n, nrcpt, size;

    if (qfile_rd_line(rd, line, sizeof line) < 0)
        return -1;
    if (strncmp(line, QFILE_MAGIC " ", sizeof QFILE_MAGIC) != 0)
        return qfile_rd_fail(rd, "not a dmail queue file");
    if (qfile_parse_num(line + sizeof QFILE_MAGIC, INT_MAX, &n) < 0 || n != QFILE_VERSION)
        return qfile_rd_fail(rd, "unsupported version \"%s\"", line + sizeof QFILE_MAGIC);
    if (qfile_rd_key(rd, line, sizeof line, "id", &val) < 0)
        return -1;
    if (!qfile_id_valid(val))
        return qfile_rd_fail(rd, "bad id");
    snprintf(q->id, sizeof q->id, "%s", val);
    if (qfile_rd_num(rd, "arrival", LLONG_MAX, &n) < 0)
        return -1;
    q->arrival = (time_t)n;
    if (qfile_rd_key(rd, line, sizeof line, "sender", &val) < 0)
        return -1;
    if (qfile_parse_addr(&val, true, &q->sender) < 0 || *val != '\0')
        return qfile_rd_fail(rd, "bad sender address");
    if (qfile_rd_key(rd, line, sizeof line, "origin", &val) < 0)
        return -1;
    q->origin = xstrdup(val);
    if (qfile_rd_num(rd, "flags", INT_MAX, &n) < 0)
        return -1;
    q->flags = (int)n;
    if (qfile_rd_peek(rd, "verp")) {
        if (qfile_rd_key(rd, line, sizeof line, "verp", &val) < 0)
            return -1;
        if (val[0] == '\0' || !qfile_verp_ok(val))
            return qfile_rd_fail(rd, "bad verp delimiters");
        snprintf(q->verp, sizeof q->verp, "%s", val);
    }
    if (qfile_rd_peek(rd, "dsn")) {
        if (qfile_rd_key(rd, line, sizeof line, "dsn", &val) < 0 ||
            qfile_parse_dsn(rd, val, &q->ret, &q->envid, &q->notify, NULL) < 0)
            return -1;
    }
    if (qfile_rd_num(rd, "rcpts", QFILE_RCPT_MAX, &nrcpt) < 0)
        return -1;
    if (nrcpt == 0 && !(q->flags & QF_RCPT_FROM_HEADERS))
        return qfile_rd_fail(rd, "no recipients");
    q->rcpt = xmalloc(((size_t)nrcpt ? (size_t)nrcpt : 1) * sizeof *q->rcpt);
    memset(q->rcpt, 0, ((size_t)nrcpt ? (size_t)nrcpt : 1) * sizeof *q->rcpt);
    for (long long i = 0; i < nrcpt; i++) {
        if (qfile_rd_key(rd, line, sizeof line, "rcpt", &val) < 0)
            return -1;
        q->nrcpt++;
        if (qfile_parse_rcpt(rd, val, &q->rcpt[i]) < 0)
            return -1;
        if (qfile_rd_peek(rd, "notify") &&
            (qfile_rd_key(rd, line, sizeof line, "notify", &val) < 0 ||
             qfile_parse_dsn(rd, val, NULL, NULL, &q->rcpt[i].notify, &q->rcpt[i].orcpt) < 0))
            return -1;
        if (qfile_rd_peek(rd, "xheader")) {
            const char *why;
            if (qfile_rd_key(rd, line, sizeof line, "xheader", &val) < 0)
                return -1;
            if (xheader_check(val, strlen(val), &why) < 0)
                return qfile_rd_fail(rd, "bad xheader: %s", why);
            q->rcpt[i].xheader = xstrdup(val);
        }
    }
    if (qfile_rd_num(rd, "size", LLONG_MAX, &size) < 0)
        return -1;
    if (qfile_rd_line(rd, line, sizeof line) < 0)
        return -1;
    if (line[0] != '\0')
        return qfile_rd_fail(rd, "expected a blank line after the header");
    rd->line = 0;
    if ((unsigned long long)size > (unsigned long long)(rd->end - rd->p))
        return qfile_rd_fail(rd, "truncated text (%lld bytes announced, %zu present)", size,
                             (size_t)(rd->end - rd->p));
    q->text = xmemdup(rd->p, (size_t)size + 1);
    q->text[size] = '\0';
    q->text_len = (size_t)size;
    rd->p += size;
    if (size > 0 && q->text[size - 1] != '\n') {
        if (rd->p == rd->end || *rd->p != '\n')
            return qfile_rd_fail(rd, "size does not match the text");
        rd->p++;
    }
    if ((size_t)(rd->end - rd->p) != 4 || memcmp(rd->p, "end\n", 4) != 0)
        return qfile_rd_fail(rd, rd->end - rd->p < 4 ? "trailer missing (torn file)"
                                                     : "size does not match the text");
    return 0;
}

/* qfile_read - parse a file; 0, or -1 with a reason in err (a torn or foreign file). */
int
qfile_read(const char *path, struct qfile *q, char *err, size_t errlen)
{
    struct qfile_rd rd = {.err = err, .errlen = errlen};
    char *data = NULL;
    size_t len = 0;
    int rc;

    memset(q, 0, sizeof *q);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (file_read_all(path, SIZE_MAX / 2, &data, &len) < 0)
        return qfile_rd_fail(&rd, "%s", strerror(errno));
    rd.p = data;
    rd.end = data + len;
    rc = qfile_parse(&rd, q);
    free(data);
    if (rc < 0)
        qfile_free(q);
    return rc;
}

/* qfile_free - release everything q points to; q is zeroed. */
void
qfile_free(struct qfile *q)
{
    for (size_t i = 0; i < q->nrcpt; i++) {
        free(q->rcpt[i].addr);
        free(q->rcpt[i].last_error);
        free(q->rcpt[i].orcpt);
        free(q->rcpt[i].xheader);
    }
    free(q->rcpt);
    free(q->envid);
    free(q->sender);
    free(q->origin);
    free(q->text);
    memset(q, 0, sizeof *q);
}
