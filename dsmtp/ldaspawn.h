/*
 * ldaspawn - the programs of lda.h started with libuv's uv_spawn on dsmtp's loop, for a
 * delivery that runs on a pool thread: the thread hands the request to the loop (uv_async),
 * which spawns the process and reaps it (its exit callback); the thread feeds the message,
 * reads the output and waits for the exit, killing the process group past its deadline.
 *
 * Contract:
 * - ldaspawn_start / ldaspawn_stop: on the loop (dsmtp's start and stop). Without a start
 *   (or after the stop) ldaspawn_on() is false and lda.h forks the program itself.
 * - The process: its own session (UV_PROCESS_DETACHED: the group killed as one), stdin and
 *   stdout/stderr the descriptors given, killed when dsmtp dies (util-linux setpriv
 *   --pdeathsig KILL: the queue runs it again after a restart, so it never runs twice),
 *   umask 077 (a /bin/sh wrapper), cwd and environment given.
 * - ldaspawn_run blocks the calling pool thread (never the loop) until the process has
 *   started (or failed to: -1 with the reason) and ldaspawn_wait until it ended and its
 *   handle is closed.
 */
#ifndef DSMTP_LDASPAWN_H
#define DSMTP_LDASPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

struct ldaspawn;

/* ldaspawn_start - the bridge on loop. */
void ldaspawn_start(uv_loop_t *loop);
/* ldaspawn_stop - no more spawns (requests then fail); the bridge closed. */
void ldaspawn_stop(void);
/* ldaspawn_on - started and not stopped. */
bool ldaspawn_on(void);

/* ldaspawn_run - pool thread: argv (argv[0] a path) with env, in cwd, stdin in and
 * stdout/stderr out (both kept open here: the caller closes them once it returns). The
 * request, or NULL with err set. */
struct ldaspawn *ldaspawn_run(char *const argv[], char *const env[], const char *cwd, int in,
                              int out, char *err, size_t errlen);
/* ldaspawn_pid - the process id. */
pid_t ldaspawn_pid(const struct ldaspawn *s);
/* ldaspawn_wait - pool thread: the end of the process by deadline_ms (now_ms's clock), the
 * process group killed past it; *status a waitpid(2)-style status; frees s. 0, or -1 when
 * it was killed for the deadline. */
int ldaspawn_wait(struct ldaspawn *s, long long deadline_ms, long long (*now_ms)(void),
                  int *status);

#endif
