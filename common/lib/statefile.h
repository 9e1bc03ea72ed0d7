/*
 * statefile - a small state file that the event loop keeps on disk (a cache, counters):
 * written whole on the thread pool, never on the loop.
 *
 * Contract:
 * - Owns: its path and the text of the write in flight. The owner embeds struct
 *   statefile in its own state and calls everything here on the loop.
 * - Blocks on: nothing on the loop: statefile_save has format() make the text on the loop
 *   (a snapshot, cheap) and file_write_atomic write it on the pool (fsync, rename: the
 *   file is wholly old or wholly new, also after a crash).
 * - One write at a time: a save asked while one runs is remembered, and one more write
 *   (of the state as it is then) follows when it ends, however many saves were asked
 *   meanwhile. A failed write is logged (warn) with what; the next save tries again.
 * - Each write in flight counts in *jobs (the server waits for them before it stops);
 *   statefile_free only after the loop ended (no write in flight then).
 */
#ifndef DMAIL_STATEFILE_H
#define DMAIL_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "buf.h"

struct statefile {
    uv_loop_t *loop;
    long *jobs;
    char *path;       /* NULL: nothing is saved */
    const char *what; /* for the log, e.g. "mta-sts: the policy cache" */
    size_t max;       /* the file's largest size (the buf's cap) */
    void (*format)(void *arg, struct buf *b);
    void *arg;
    bool saving, dirty; /* a write on the pool; another one wanted after it */
};

/* statefile_init - path may be NULL or "" (no file); format(arg, b) writes the text. */
void statefile_init(struct statefile *sf, uv_loop_t *loop, long *jobs, const char *path,
                    const char *what, size_t max, void (*format)(void *arg, struct buf *b),
                    void *arg);
/* statefile_save - the state changed: write it (now, or after the write in flight). */
void statefile_save(struct statefile *sf);
/* statefile_free - release the path (the struct itself is the owner's). */
void statefile_free(struct statefile *sf);

#endif
