/*
 * outbox - dlist's outgoing transactions on disk. See outbox.h.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "outbox.h"
#include "xmem.h"

int
outbox_write(const char *dir, const char *name, const struct outbox_msg *m)
{
    struct buf b;
    char *path = xasprintf("%s/%s", dir, name);
    int rc;

    unsigned char r[12];
    char envid[64];

    if (m->envid == NULL) {
        if (RAND_bytes(r, sizeof(r)) != 1) {
            free(path);
            errno = EAGAIN;
            return -1;
        }
        strcpy(envid, "dlist-");
        for (size_t i = 0; i < sizeof(r); i++)
            snprintf(envid + 6 + 2 * i, 3, "%02x", r[i]);
    } else
        snprintf(envid, sizeof(envid), "%s", m->envid);
    buf_init(&b, OUTBOX_FILE_MAX);
    buf_printf(&b, "S <%s>\nT <%lld>\nE <%s>\n%s", m->sender,
               m->made != 0 ? m->made : (long long)time(NULL), envid, m->xverp ? "V\n" : "");
    if (m->list != NULL)
        buf_printf(&b, "L <%s>\n", m->list);
    for (size_t i = 0; i < m->nrcpt; i++)
        buf_printf(&b, "R <%s>\n", m->rcpt[i]);
    buf_append(&b, "\n", 1);
    if (buf_append(&b, m->text, m->len) < 0) {
        errno = EFBIG;
        rc = -1;
    } else
        rc = file_write_atomic(path, buf_peek(&b), b.len, 0600);
    buf_free(&b);
    free(path);
    return rc;
}

/* outbox_angle - "<x>" at line (length n) into a malloc'd x, or NULL. */
static char *
outbox_angle(const char *line, size_t n)
{
    if (n < 4 || line[1] != ' ' || line[2] != '<' || line[n - 1] != '>')
        return NULL;
    return xstrndup(line + 3, n - 4);
}

int
outbox_read(const char *path, struct outbox_msg *m)
{
    size_t len, i = 0;

    memset(m, 0, sizeof(*m));
    if (file_read_all(path, OUTBOX_FILE_MAX, &m->file, &len) < 0)
        return -1;
    while (i < len) {
        const char *nl = memchr(m->file + i, '\n', len - i);
        size_t n;
        char *a;
        if (nl == NULL)
            break;
        n = (size_t)(nl - (m->file + i));
        if (n == 0) {
            m->text = m->file + i + 1;
            m->len = len - i - 1;
            if (m->sender != NULL)
                return 0;
            break;
        }
        if (n == 1 && m->file[i] == 'V')
            m->xverp = true;
        else if ((a = outbox_angle(m->file + i, n)) == NULL)
            break;
        else if (m->file[i] == 'S' && m->sender == NULL)
            m->sender = a;
        else if (m->file[i] == 'E' && m->envid == NULL)
            m->envid = a;
        else if (m->file[i] == 'L' && m->list == NULL)
            m->list = a;
        else if (m->file[i] == 'T' && m->made == 0) {
            m->made = strtoll(a, NULL, 10);
            free(a);
        } else if (m->file[i] == 'R') {
            m->rcpt = xrealloc(m->rcpt, (m->nrcpt + 1) * sizeof(*m->rcpt));
            m->rcpt[m->nrcpt++] = a;
        } else {
            free(a);
            break;
        }
        i += n + 1;
    }
    outbox_free(m);
    errno = EINVAL;
    return -1;
}

void
outbox_free(struct outbox_msg *m)
{
    for (size_t i = 0; i < m->nrcpt; i++)
        free(m->rcpt[i]);
    free(m->rcpt);
    free(m->sender);
    free(m->envid);
    free(m->list);
    free(m->file);
    memset(m, 0, sizeof(*m));
}

int
outbox_drop_key(const char *dir, const char *key)
{
    size_t n, kl = strlen(key);
    char **names = file_dir_names(dir, NULL, &n);
    int dropped = 0;

    if (names == NULL)
        return errno == ENOENT ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], key, kl) == 0 && names[i][kl] == '.' &&
            strspn(names[i] + kl + 1, "0123456789") == strlen(names[i] + kl + 1)) {
            char *p = xasprintf("%s/%s", dir, names[i]);
            if (unlink(p) == 0)
                dropped++;
            free(p);
        }
        free(names[i]);
    }
    free(names);
    if (dropped > 0)
        file_fsync_dir(dir);
    return dropped;
}
