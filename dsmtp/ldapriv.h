/*
 * ldapriv - the privileged half of program delivery: a small process dsmtp forks while it
 * is still root (before it drops to run_as), which starts the programs of forward files and
 * alias files as the user they belong to, as Postfix's local(8) runs as root and switches
 * to the recipient per delivery.
 *
 * Contract:
 * - Owns: the helper process and its socket (one per dsmtp). The helper keeps root, holds
 *   nothing else (every other descriptor is closed in it) and dies with dsmtp
 *   (PR_SET_PDEATHSIG, and the socket's end of file). It runs under a keeper of its own
 *   (dsmtp-ldakeep) that starts it again a second after it dies (dsmtp-ldapriv, e.g. kill
 *   -9): requests wait in the socket meanwhile.
 * - It runs only when dsmtp starts as root and allow_mail_to_commands is not empty;
 *   otherwise ldapriv_on() is false and programs run as dsmtp's own user (lda.h).
 * - A request (ldapriv_spawn, from any pool thread): the user, the home directory, the
 *   command, where it comes from (the forward file's path, or "" for a root-owned alias
 *   file) and the two pipe ends of the program's stdin and stdout. The helper checks it
 *   again itself, trusting nothing dsmtp says: the account exists and is not root; for a
 *   forward file, the file is a regular file (no symbolic link) owned by that user or by
 *   root, neither group- nor world-writable, and holds the command; an alias program runs
 *   as default_privs (never root). Then it forks the program: its own session, the user's
 *   groups, gid and uid (checked: root cannot be regained), cwd home, umask 077, the
 *   environment of lda.h, /bin/sh -c COMMAND. A file destination of a user's forward file
 *   is appended to by that process itself, as the user.
 * - The answer comes on a socket of the request's own: "ok STATUS" (the wait status) when
 *   the program ended, "err TEXT" when it was refused or could not start. Closing that
 *   socket early (dsmtp's time limit) kills the program's process group.
 * - Blocks on: ldapriv_spawn and ldapriv_wait block (pool threads only, never the loop).
 */
#ifndef DSMTP_LDAPRIV_H
#define DSMTP_LDAPRIV_H

#include <stdbool.h>
#include <stddef.h>

struct conf;

#define LDAPRIV_CMD_MAX 2048 /* longest command passed on */

/* ldapriv_start - as root, before dropping privileges: fork the helper when cf allows
 * programs. Problems are logged (programs then run as run_as, as without root). */
void ldapriv_start(const struct conf *cf);

/* ldapriv_on - the helper runs. */
bool ldapriv_on(void);

/* ldapriv_spawn - ask the helper to run cmd as user (source: the forward file's path, or
 * "" for an alias file) with stdin in and stdout/stderr out (both closed here); with file,
 * cmd is a file that the process, once it is the user, appends the message on its stdin to
 * (mbox format, drop.h; exit 0, 75 for now, 1 for good with the reason on stdout) instead of
 * a command. Returns the request's answer socket, or -1 with a reason in err. */
int ldapriv_spawn(const char *user, const char *home, const char *cmd, bool file,
                  const char *source, const char *sender, const char *rcpt, int in, int out,
                  char *err, size_t errlen);

/* ldapriv_wait - the answer on fd by deadline_ms (lda's monotonic clock): 0 with the wait
 * status in *status, -1 refused or failed (reason in err), -2 timed out (fd is closed:
 * the helper kills the program). fd is closed in every case. */
int ldapriv_wait(int fd, long long deadline_ms, long long (*now_ms)(void), int *status, char *err,
                 size_t errlen);

#endif
