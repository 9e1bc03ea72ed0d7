/*
 * lda - the local delivery agent of dsmtp: a message to a program (`|command`) or to a
 * file (`/path`) named by a forward file (dotfwd.h).
 *
 * Contract:
 * - Owns: nothing past a call. Each call starts one process (the command, or /bin/sh -c
 *   COMMAND) and waits for it, or appends to one file. In dsmtp the process is spawned by
 *   the loop with uv_spawn (ldaspawn.h); where no loop runs the bridge, it is forked.
 * - Blocks on: everything (fork, pipes, waitpid, file locks, fsync): the thread pool only,
 *   never the loop. Programs run from the program deliveries' runner (ldaq.h), after the
 *   client has its answer, at most command_concurrency at once; files also from the
 *   delivery work of deliver.c and the queue runner. A call holds its pool thread at most
 *   command_time_limit seconds.
 * - Program: COMMAND itself when it is an absolute path with no shell metacharacter (split
 *   at blanks; as Postfix's pipe_command), else /bin/sh -c COMMAND; in a new session, killed if
 * dsmtp dies (PR_SET_PDEATHSIG: the queue file still holds the recipient, the restarted dsmtp runs
 * it again), cwd the user's home ("/" if none) and umask 077, environment HOME, USER, LOGNAME,
 * SHELL=/bin/sh, PATH=/usr/bin:/bin, SENDER, RECIPIENT and nothing else; stdin the message with
 * "Return-Path: <sender>" and "Delivered-To: recipient" first (as Postfix's local(8)); stdout and
 * stderr kept for the report (its first line). It runs as dsmtp's own user (run_as): dsmtp dropped
 * root at start, so it cannot switch to another; dotfwd.c refuses what would need it. Outcome
 * (Postfix's sys_exits): 0 delivered; 75 EX_TEMPFAIL, 71 EX_OSERR, killed by a signal or past
 * command_time_limit (then its whole process group is killed) -- for now (DROP_TEMP, retried from
 * the queue); any other status for good (DROP_PERM), err "command exited with status N: FIRST LINE
 * OF ITS OUTPUT".
 * - File: the same two header lines and the message appended in mbox format to path (an
 *   absolute path; a regular file only, no symbolic link, created 0600 if missing), with
 *   the dotlock and fcntl lock of drop.h and an fsync; a failure as drop.h tells it.
 */
#ifndef DSMTP_LDA_H
#define DSMTP_LDA_H

#include <stddef.h>

#include "conf.h"
#include "drop.h"

/* The message and whom it is for. */
struct lda_msg {
    const char *rcpt;   /* the recipient whose forward file named the destination */
    const char *sender; /* envelope sender, "" for <> */
    const char *text;   /* headers + body, LF line ends */
    size_t len;
    const char *user; /* USER and LOGNAME */
    const char *home; /* HOME and the working directory; "" or NULL: "/" */
    /* a program to start, or a file to write, as user through the root helper (ldapriv.h)
     * when it runs: the forward file that names it, or "" for an alias file (then as
     * default_privs); NULL: as dsmtp's own user */
    const char *priv;
};

/* lda_program - blocking: pipe m into /bin/sh -c cmd. err gets the reason otherwise. */
enum drop_result lda_program(const struct conf *cf, const char *cmd, const struct lda_msg *m,
                             char *err, size_t errlen);

/* lda_file - blocking: append m to the mbox file path. err gets the reason otherwise. */
enum drop_result lda_file(const struct conf *cf, const char *path, const struct lda_msg *m,
                          char *err, size_t errlen);

#endif
