/*
 * file - small blocking file helpers with a crash story (thread pool or start-up only).
 *
 * Contract:
 * - Blocks: every function here does blocking I/O; never call one on the event loop.
 * - Returns 0 on success, -1 with errno set on failure; nothing is allocated unless said.
 * - file_write_atomic: write to DIR/tmp/NAME.<unique> (or a sibling temp file), fsync,
 *   rename over path, fsync the directory: afterwards the file is either wholly old or
 *   wholly new, also after a crash.
 */
#ifndef DMAIL_FILE_H
#define DMAIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* file_write_all - write len bytes, retrying short writes and EINTR. */
int file_write_all(int fd, const void *buf, size_t len);
/* file_fsync_dir - fsync the directory that holds path (or path itself if a dir). Threads
 * asking for the same directory at once share one fsync that began after each asked
 * (group commit): on return 0 every change made in it before the call is durable. */
int file_fsync_dir(const char *path);
/* file_fsync_dir_count - how many real directory fsyncs have been done. */
unsigned long file_fsync_dir_count(void);
/* file_fsync_dir_hook - tests only: called before each real directory fsync. */
extern void (*file_fsync_dir_hook)(void);
/* file_dirname - the directory part of path ("." when none) into buf; 0 or -1. */
int file_dirname(const char *path, char *buf, size_t len);
/* file_fsync_parent - fsync the directory that holds path (also when path is a dir). */
int file_fsync_parent(const char *path);
/* file_mkdirs - mkdir -p with mode for created components; the parent of each created
 * directory is fsynced. */
int file_mkdirs(const char *path, mode_t mode);
/* file_write_atomic - as above; mode for the new file. */
int file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);
/* file_read_all - read a whole regular file (at most max bytes, else EFBIG) into a
 * malloc'd, NUL-terminated buffer; *lenp gets its length. A directory is EISDIR, any other
 * non-regular file (FIFO, device, socket) EINVAL, found without blocking. */
int file_read_all(const char *path, size_t max, char **out, size_t *lenp);
/* file_dir_names - the names in dir that keep(name) accepts (NULL: all but dot-files),
 * sorted with strcmp, malloc'd (each name and the array; free both); *n gets their
 * number. NULL with errno set if dir cannot be opened (an empty dir: a 0-long array). */
char **file_dir_names(const char *dir, bool (*keep)(const char *name), size_t *n);
/* file_hostname - this host's name (gethostname; "localhost" if it has none) into buf.
 * Read once per process and kept: the mail path asks for it per message. */
void file_hostname(char *buf, size_t len);
/* file_unique_name - a name unique on this host and across hosts with other lock_id:
 * "<time>.<pid>_<counter>_<random>.<lock_id or hostname>" into buf. */
void file_unique_name(char *buf, size_t len, const char *node);

#endif
