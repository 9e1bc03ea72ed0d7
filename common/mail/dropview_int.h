/*
 * dropview_int - what the files of the dropview module share (dropview.c: views, the index
 * file, mbox; dropview_md.c: maildir). Not for use outside the module.
 */
#ifndef DMAIL_DROPVIEW_INT_H
#define DMAIL_DROPVIEW_INT_H

#include <stdarg.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>

#include "drop_int.h"
#include "dropview.h"

#define DV_PATH_MAX 4096
#define DV_TAIL 4096 /* bytes at the end of an mbox whose digest the index keeps */

struct dropview {
    char *path;
    int format;
    char *index_path; /* NULL: no index file */
    long lock_timeout;
    struct dropview_msg *m;
    size_t n, cap;
    char *pool; /* UIDs and maildir file names, NUL-terminated, at offsets */
    size_t plen, pcap;
    unsigned *set; /* open-addressing table of message index + 1, keyed by UID */
    size_t setcap; /* 0 or a power of two >= 2n */
    unsigned long long total;
    /* mbox: the file the snapshot describes */
    bool exists;
    dev_t dev;
    ino_t ino;
    unsigned long long size; /* bytes scanned (the file's size then) */
    struct timespec mtime;
    unsigned char tail[32]; /* SHA-256 of the last DV_TAIL bytes before size */
    /* reading */
    int fd;
    size_t fd_msg; /* maildir: the message fd belongs to */
};

struct dropview *dv_new(const struct dropview_params *p);
/* dv_add - append a message with uid made unique in v (a suffix "-N" if taken) and, for
 * maildir, its file name. Returns the new message. */
struct dropview_msg *dv_add(struct dropview *v, const struct dropview_msg *m, const char *uid,
                            const char *file);
/* dv_find - index of the message with this UID, or -1. */
long dv_find(struct dropview *v, const char *uid);
/* dv_index_load - read v->index_path into a new view of the same params; NULL if there is
 * none or it does not parse or describes another mailbox or format. */
struct dropview *dv_index_load(const struct dropview_params *p, const char *index_path);
/* dv_index_save - write v to its index file atomically (errors are only logged: it is a
 * cache). */
void dv_index_save(const struct dropview *v);
/* dv_hash_uid - "h" + 40 hex digits of SHA-256 over the bytes given, into uid. */
void dv_hash_uid(const void *p, size_t n, char *uid);
/* dv_uid_ok - s[0..n) is a valid POP3 unique-id. */
bool dv_uid_ok(const char *s, size_t n);
/* dv_count_fd - the client size and DV_HAS_* flags of the text read from fd. */
int dv_count_fd(int fd, bool mboxrd, unsigned long long *size, unsigned *flags);

/* dv_hex - n bytes as lower-case hex into out (2n + 1 bytes). */
void dv_hex(const unsigned char *p, size_t n, char *out);
/* dv_sha256 - SHA-256 of p[0..n). */
void dv_sha256(const void *p, size_t n, unsigned char md[32]);

/* mbox (dropview_mbox.c) */
enum drop_result dv_mbox_open(const struct dropview_params *p, struct dropview *v, char *err,
                              size_t errlen);
enum drop_result dv_mbox_commit(struct dropview *v, const unsigned char *del,
                                const unsigned char *seen, char *err, size_t errlen);
long dv_mbox_read(struct dropview *v, const struct dropview_msg *m, unsigned long long pos,
                  char *buf, size_t len);
long dv_mbox_read_msgs(struct dropview *v, size_t i, char *buf, size_t len,
                       struct dropview_span *span, size_t max, bool nowait);
/* dv_pread_all - read exactly n bytes at off (fewer only at EOF); -1 on error. */
ssize_t dv_pread_all(int fd, void *buf, size_t n, unsigned long long off);

/* maildir (dropview_md.c) */
enum drop_result dv_md_open(struct dropview *v, char *err, size_t errlen);
enum drop_result dv_md_commit(struct dropview *v, const unsigned char *del,
                              const unsigned char *seen, char *err, size_t errlen);
long dv_md_read(struct dropview *v, size_t i, unsigned long long pos, char *buf, size_t len);

#endif
