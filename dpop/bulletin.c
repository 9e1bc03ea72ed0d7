/*
 * bulletin - bulletins delivered once per user (contract in bulletin.h).
 */
#include "bulletin.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/evp.h>

#include "drop.h"
#include "file.h"
#include "xmem.h"

#define BULLETIN_FROM_DEFAULT "Email System Administrator"
#define BULLETIN_MAX 4096 /* bulletins looked at */

/* bulletin_number - n for a name "n.txt" (1 to 9 digits); -1 otherwise. */
static long
bulletin_number(const char *name)
{
    size_t d = strspn(name, "0123456789");

    if (d == 0 || d > 9 || strcmp(name + d, ".txt") != 0)
        return -1;
    return strtol(name, NULL, 10);
}

/* bulletin_cmp - ascending numbers. */
static int
bulletin_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

/* bulletin_list - the bulletin numbers in dir, sorted; *n how many. NULL if none. */
static long *
bulletin_list(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long *v = NULL;
    size_t cap = 0;

    *n = 0;
    if (d == NULL)
        return NULL;
    while ((e = readdir(d)) != NULL && *n < BULLETIN_MAX) {
        long k = bulletin_number(e->d_name);
        if (k < 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[(*n)++] = k;
    }
    closedir(d);
    if (*n > 1)
        qsort(v, *n, sizeof *v, bulletin_cmp);
    return v;
}

/* bulletin_state_path - state_dir/XX/<sha256(login)>. */
static void
bulletin_state_path(const struct bulletin_params *p, char *buf, size_t len)
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 32;
    char hex[65];

    EVP_Digest(p->login, strlen(p->login), md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = hx[md[i] >> 4];
        hex[2 * i + 1] = hx[md[i] & 15];
    }
    hex[64] = '\0';
    snprintf(buf, len, "%s/%.2s/%s", p->state_dir, hex, hex);
}

/* bulletin_state_read - the last bulletin delivered, or -1 for a user never seen. */
static long
bulletin_state_read(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    long v;

    if (file_read_all(path, 64, &text, &len) != 0)
        return -1;
    v = isdigit((unsigned char)text[0]) ? strtol(text, NULL, 10) : 0;
    free(text);
    return v;
}

/* bulletin_state_write - remember n as the last bulletin delivered. */
static int
bulletin_state_write(const char *path, long n)
{
    char buf[32], dir[4096];
    const char *slash = strrchr(path, '/');
    int k = snprintf(buf, sizeof buf, "%ld\n", n);

    if (slash != NULL && (size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if (file_mkdirs(dir, 0700) != 0)
            return -1;
    }
    return file_write_atomic(path, buf, (size_t)k, 0600);
}

/* bulletin_has_headers - text starts with a header block ended by an empty line. */
static bool
bulletin_has_headers(const char *text, size_t len, size_t *hlen)
{
    size_t i = 0;
    bool first = true;

    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        const char *ln = text + i;
        if (n == 0) {
            *hlen = i; /* headers end here; the empty line is not part of them */
            return !first;
        }
        if (ln[0] == ' ' || ln[0] == '\t') {
            if (first)
                return false;
        } else {
            size_t k = 0;
            while (k < n && (isalnum((unsigned char)ln[k]) || ln[k] == '-'))
                k++;
            if (k == 0 || k >= n || ln[k] != ':')
                return false;
        }
        first = false;
        if (nl == NULL)
            return false;
        i += n + 1;
    }
    return false;
}

/* bulletin_has - the header block h[0..n) has a field name (case-insensitive). */
static bool
bulletin_has(const char *h, size_t n, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < n;) {
        if (n - i > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':')
            return true;
        const char *e = memchr(h + i, '\n', n - i);
        if (e == NULL)
            break;
        i = (size_t)(e - h) + 1;
    }
    return false;
}

/* bulletin_compose - the message for one bulletin. */
char *
bulletin_compose(const struct bulletin_params *p, unsigned long n, const char *text, size_t len,
                 long mtime, char *sender, size_t senderlen)
{
    const char *from = p->from != NULL && p->from[0] != '\0' ? p->from : BULLETIN_FROM_DEFAULT;
    char date[64], fromhdr[600], extra[1200];
    time_t t = (time_t)mtime;
    struct tm tm;
    size_t hlen = 0, off = 0;
    bool given = bulletin_has_headers(text, len, &hlen);
    const char *h = given ? text : "";

    snprintf(sender, senderlen, "postmaster@%s", p->main_domain);
    if (strchr(from, '@') != NULL)
        snprintf(fromhdr, sizeof fromhdr, "%.500s", from);
    else
        snprintf(fromhdr, sizeof fromhdr, "%.300s <postmaster@%.250s>", from, p->main_domain);
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    extra[0] = '\0';
#define BULLETIN_ADD(cond, ...)                                                                    \
    do {                                                                                           \
        if (cond)                                                                                  \
            off += (size_t)snprintf(extra + off, sizeof extra - off, __VA_ARGS__);                 \
    } while (0)
    BULLETIN_ADD(!bulletin_has(h, hlen, "From"), "From: %s\n", fromhdr);
    BULLETIN_ADD(!bulletin_has(h, hlen, "To"), "To: %.300s\n", p->login);
    BULLETIN_ADD(!bulletin_has(h, hlen, "Subject"), "Subject: Bulletin %lu\n", n);
    BULLETIN_ADD(!bulletin_has(h, hlen, "Date"), "Date: %s\n", date);
    BULLETIN_ADD(!bulletin_has(h, hlen, "Message-ID"), "Message-ID: <bulletin.%lu.%ld@%.250s>\n", n,
                 mtime, p->main_domain);
    BULLETIN_ADD(!bulletin_has(h, hlen, "MIME-Version"), "MIME-Version: 1.0\n");
    BULLETIN_ADD(!given, "Content-Type: text/plain; charset=utf-8\n");
#undef BULLETIN_ADD
    if (given) /* the file's header block, then ours, then its empty line and body */
        return xasprintf("%.*s%s%.*s", (int)hlen, text, extra, (int)(len - hlen), text + hlen);
    return xasprintf("%s\n%.*s", extra, (int)len, text);
}

/* bulletin_deliver - deliver the bulletins a user has not had. */
int
bulletin_deliver(const struct bulletin_params *p, char *err, size_t errlen)
{
    char state[4096];
    size_t n = 0;
    long *v, last;
    int delivered = 0;

    if (p->dir == NULL || p->dir[0] == '\0')
        return 0;
    v = bulletin_list(p->dir, &n);
    if (n == 0) {
        free(v);
        return 0;
    }
    bulletin_state_path(p, state, sizeof state);
    last = bulletin_state_read(state);
    if (last < 0 && p->hide_old) {
        /* a new user: the bulletins there are now are older than the account */
        if (bulletin_state_write(state, v[n - 1]) != 0)
            snprintf(err, errlen, "cannot write %s: %s", state, strerror(errno));
        free(v);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096], sender[300], uidl[80];
        struct stat st;
        char *text = NULL, *msg;
        size_t len = 0;
        if (v[i] <= last)
            continue;
        snprintf(path, sizeof path, "%s/%ld.txt", p->dir, v[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
            file_read_all(path, BULLETIN_MAX_SIZE, &text, &len) != 0)
            continue; /* gone, or too big: skipped */
        msg = bulletin_compose(p, (unsigned long)v[i], text, len, (long)st.st_mtime, sender,
                               sizeof sender);
        free(text);
        struct drop_msg m = {sender, "", 0, msg, strlen(msg)};
        enum drop_result r =
            drop_deliver(p->mailbox, p->format, &m, p->lock_timeout, 0, p->node, uidl, err, errlen);
        free(msg);
        if (r != DROP_OK) {
            free(v);
            return -1;
        }
        delivered++;
        if (bulletin_state_write(state, v[i]) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", state, strerror(errno));
            free(v);
            return -1;
        }
    }
    free(v);
    return delivered;
}
