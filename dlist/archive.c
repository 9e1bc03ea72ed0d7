/*
 * archive - the month mboxes of a list's archive and what index/get serve (see archive.h).
 */
#include "archive.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive_html.h"
#include "buf.h"
#include "conf.h"
#include "drop.h"
#include "file.h"
#include "lists.h"
#include "log.h"
#include "xmem.h"

int
archive_dir(const struct conf *cf, const struct lists_def *def, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/archive/%s", cf->dlist_path, def->name);

    return n < 0 || (size_t)n >= len || cf->dlist_path[0] == '\0' ? -1 : 0;
}

bool
archive_name_ok(const char *name)
{
    int year, month;

    if (strlen(name) != 7 || name[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && !isdigit((unsigned char)name[i]))
            return false;
    year = atoi(name);
    month = atoi(name + 5);
    return year >= 1970 && month >= 1 && month <= 12;
}

/* archive_keep - file_dir_names' filter: the month files. */
static bool
archive_keep(const char *name)
{
    return archive_name_ok(name);
}

int
archive_store(const struct conf *cf, const struct lists_def *def, const char *sender,
              const char *text, size_t len, time_t when, char *err, size_t errlen)
{
    char dir[4096], path[4200], month[16], node[256], herr[300];
    struct drop_msg m = {0};
    struct tm tm;

    if (!def->archive)
        return 1;
    if (archive_dir(cf, def, dir, sizeof(dir)) < 0) {
        snprintf(err, errlen, "dlist_path is not set or too long");
        return -1;
    }
    /* the directories readable, for a web server serving html/; the mboxes stay 0600 */
    if (file_mkdirs(dir, 0755) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    gmtime_r(&when, &tm);
    strftime(month, sizeof(month), "%Y-%m", &tm);
    snprintf(path, sizeof(path), "%s/%s", dir, month);
    if (cf->lock_id != NULL && cf->lock_id[0] != '\0')
        snprintf(node, sizeof(node), "%s", cf->lock_id);
    else
        file_hostname(node, sizeof(node));
    m.sender = sender;
    m.text = text;
    m.text_len = len;
    if (drop_deliver(path, MBOX_FORMAT_MBOX, &m, cf->lock_timeout, 0, node, NULL, err, errlen) !=
        DROP_OK)
        return -1;
    if (archive_html_add(dir, def, month, text, len, when, herr, sizeof(herr)) < 0)
        log_warn("list %s: archive %s stored, the HTML archive not updated: %s", def->name, month,
                 herr);
    return 0;
}

char *
archive_index(const struct conf *cf, const struct lists_def *def, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    char **names;
    size_t n;
    struct buf b;

    if (!def->archive || archive_dir(cf, def, dir, sizeof(dir)) < 0) {
        snprintf(err, errlen, "list %s keeps no archive", def->name);
        return NULL;
    }
    buf_init(&b, ARCHIVE_GET_MAX);
    names = file_dir_names(dir, archive_keep, &n);
    for (size_t i = 0; names != NULL && i < n; i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            buf_printf(&b, "%s %lld\n", names[i], (long long)st.st_size);
        free(names[i]);
    }
    free(names);
    buf_append(&b, "", 1);
    return b.data;
}

int
archive_get(const struct conf *cf, const struct lists_def *def, const char *name, char **out,
            size_t *outlen, char *err, size_t errlen)
{
    char dir[4096], path[4200];
    struct stat st;

    if (!def->archive || archive_dir(cf, def, dir, sizeof(dir)) < 0) {
        snprintf(err, errlen, "list %s keeps no archive", def->name);
        return -1;
    }
    if (!archive_name_ok(name)) {
        snprintf(err, errlen,
                 "no archive file is called that (the files are named YYYY-MM; "
                 "send index for the list)");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    /* the month file itself, never a link planted in the directory */
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "no archive file %s", name);
        return -1;
    }
    if (file_read_all(path, ARCHIVE_GET_MAX, out, outlen) < 0) {
        snprintf(err, errlen, "%s: %s", name,
                 errno == EFBIG ? "too large to mail" : strerror(errno));
        return -1;
    }
    return 0;
}
