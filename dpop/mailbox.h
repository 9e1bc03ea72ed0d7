/*
 * mailbox - a session's mailbox: the in-use table ([IN-USE]), and the thread-pool jobs that
 * open the snapshot (dropview_open) and carry out UPDATE (dropview_commit).
 *
 * Contract:
 * - Owns: struct mailbox_inuse (one per process, loop thread only) and each job while it
 *   runs. A job holds a session reference; the session reads no input meanwhile.
 * - Blocks on: nothing on the loop; the jobs block on the pool.
 * - UPDATE: the "+OK" to QUIT is written only after dropview_commit returned DROP_OK, that
 *   is after the new mailbox is fsynced and renamed in (and its directory fsynced); on
 *   failure "-ERR [SYS/TEMP]" and the mailbox is left as it was (RFC 1939 6).
 * - The in-use table is node-local: it keeps two sessions of this process off one mailbox.
 */
#ifndef DPOP_MAILBOX_H
#define DPOP_MAILBOX_H

#include <stdbool.h>

#include "session.h"

struct mailbox_inuse *mailbox_inuse_new(void);
void mailbox_inuse_free(struct mailbox_inuse **t);

/* mailbox_claim - take path for a session; false if another has it. */
bool mailbox_claim(struct popd *d, const char *path);
/* mailbox_release - give path back. */
void mailbox_release(struct popd *d, const char *path);

/* mailbox_open - open s->mailbox on the pool into s->view, then call done on the loop
 * (with the session's reply pending) and resume the session. */
typedef void (*mailbox_done_cb)(struct pop_session *s, enum drop_result res, const char *err);
void mailbox_open(struct pop_session *s, mailbox_done_cb done);

/* mailbox_update - QUIT in TRANSACTION: enter UPDATE, commit deletions and seen flags on
 * the pool, answer and close. */
void mailbox_update(struct pop_session *s);

#endif
