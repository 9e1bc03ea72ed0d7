/*
 * extauth - authent_method external: a pool of authent_process helpers (DMail's NWAuth,
 * SQL and LDAP modules, conf/authent-users.py) spoken to with the line protocol of
 * extauth_proto.h over their stdin and stdout, on the event loop.
 *
 * Contract:
 * - Owns: struct extauth (one per process, loop thread only), its authent_number helper
 *   processes (uv_spawn of authent_process split at blanks, no shell; stderr is the
 *   server's), their pipes and timers, and the queue of waiting requests.
 * - Blocks on: nothing. Each helper has at most one request outstanding; the others wait
 *   in a FIFO queue and go to the first helper that becomes free.
 * - Every request is answered exactly once through its callback (never before
 *   extauth_check/extauth_lookup has returned), within authent_timeout of its submission:
 *   a helper that has not answered by then is killed (SIGKILL) and restarted, and the
 *   request gets EA_DEAD, as do requests still queued at their deadline.
 * - A helper that exits, closes its pipe, or writes a line that is not protocol (or longer
 *   than EXTAUTH_LINE_MAX) is killed and restarted after a backoff doubling from 100 ms to
 *   30 s (reset by an answer); its request gets EA_DEAD.
 * - Passwords: copied into the request line only, wiped once written; never logged.
 * - extauth_cancel: the callback will not be called; an outstanding request still occupies
 *   its helper until the answer comes (or the timeout).
 * - extauth_stop: "exit" to every helper, then SIGTERM and the handles closed; waiting
 *   requests get EA_DEAD. The memory goes when the last handle has closed.
 * - Other threads ask the process's pool (extauth_lookup_off_loop): their lookups go to
 *   the loop through a uv_async handle and join the same queue; the asking thread waits
 *   on a condition variable (never the loop thread).
 */
#ifndef DMAIL_EXTAUTH_H
#define DMAIL_EXTAUTH_H

#include <stdbool.h>
#include <uv.h>

#include "conf.h"
#include "extauth_proto.h"

struct extauth;
struct extauth_req;

/* a's kind: EA_OK (found / password right), EA_ERR (no / wrong), EA_DEAD (temporary). */
typedef void (*extauth_cb)(void *arg, const struct extauth_answer *a);

/* extauth_new - spawn n helpers running cmdline (split at blanks); timeout_s per request.
 * NULL with err filled if cmdline is empty. Helpers that fail to start are retried. */
struct extauth *extauth_new(uv_loop_t *loop, const char *cmdline, int n, long timeout_s, char *err,
                            size_t errlen);
void extauth_stop(struct extauth **x);

/* extauth_check - `check user password [ip]`; extauth_lookup - `lookup user`. A user or
 * password that cannot be sent answers EA_ERR (on the next loop iteration). */
struct extauth_req *extauth_check(struct extauth *x, const char *user, const char *password,
                                  const char *ip, extauth_cb cb, void *arg);
struct extauth_req *extauth_lookup(struct extauth *x, const char *user, extauth_cb cb, void *arg);
void extauth_cancel(struct extauth_req *req);

/* extauth_stats - helpers running, requests answered, helper restarts (status, tests). */
void extauth_stats(const struct extauth *x, int *running, unsigned long *answered,
                   unsigned long *restarts);

/* extauth_lookup_sync - `lookup user` by a helper started for this one question, for
 * the thread pool (the queue runner and the pickup resolve recipients there): blocks up
 * to timeout_s, then kills it. EA_DEAD at once on the loop thread (the one that made the
 * pool) -- never blocks the loop -- and on any failure. */
enum extauth_kind extauth_lookup_sync(const char *cmdline, long timeout_s, const char *user,
                                      struct extauth_answer *a);
bool extauth_on_loop(void);
/* extauth_lookup_off_loop - `lookup user` for a thread-pool thread (the queue runner and
 * the pickup resolve recipients there): asked of the process's pool (the last
 * extauth_new not stopped yet) through the loop, waiting up to timeout_s and a second;
 * a process without a pool starts a helper for the one question (extauth_lookup_sync).
 * The answer's kind: EA_OK, EA_ERR (no such user), EA_DEAD (the helper did not answer:
 * ask again later). EA_DEAD at once on the loop thread -- it never blocks the loop. */
enum extauth_kind extauth_lookup_off_loop(const char *cmdline, long timeout_s, const char *user,
                                          struct extauth_answer *a);

/* extauth_drop_allowed - a drop file path a helper returned may be used: absolute, no
 * "." or ".." component, and under drop_path or mail_spool. */
bool extauth_drop_allowed(const struct conf *cf, const char *path);

#endif
