/*
 * tell - the tell tools (tellsmtp, tellpop): one command table, the command line, and the
 * users-file commands of tellpop.
 *
 * Contract:
 * - Owns: nothing long-lived; tell_main runs one command and returns the exit code.
 * - Blocks on: everything (a command-line tool): reading dmail.conf, the control socket
 *   (ctl_call), the users file and its lock, crypt(3).
 * - Usage: PROG [-c FILE | -i FILE] [-n HOST -p PORT [-k] [-C CAFILE] [-T] [-P PASSWORD]]
 *   [-w SECONDS] COMMAND [ARGS]. With -p the server commands go over the manager port
 *   (ctl_call_remote); the users and dwatch commands are refused there (local only).
 *   The commands come from one table (tell.c) with the programs each applies to; --help
 *   and `help` print it. Server commands go to work_path/SERVER.ctl, restart/start/stop to
 *   work_path/dwatch.ctl, the users commands work on the users file directly.
 * - Exit codes: TELL_EX_OK 0 done, TELL_EX_REFUSED 1 the server (or the users file)
 *   refused, TELL_EX_USAGE 2 usage, TELL_EX_UNREACHABLE 3 the server is not reachable,
 *   TELL_EX_CONFIG 78 (EX_CONFIG, as the servers' -t) dmail.conf cannot be opened: the
 *   message is "PROG: FILE: strerror" (every command but help needs the file).
 * - A dmail.conf with errors is still read for work_path, users_file and run_as with a
 *   plain line scan, so `reload` can report the errors of a broken file.
 */
#ifndef DMAIL_TELL_H
#define DMAIL_TELL_H

#include <stddef.h>

#include "ctl.h"

enum {
    TELL_EX_OK = 0,
    TELL_EX_REFUSED = 1,
    TELL_EX_USAGE = 2,
    TELL_EX_UNREACHABLE = 3,
    TELL_EX_CONFIG = 78,
};

/* tell_main - the whole tool: prog "tellsmtp", server "dsmtp". Returns the exit code. */
int tell_main(int argc, char **argv, const char *prog, const char *server);

/* The facts a command needs. */
struct tell_ctx {
    const char *prog;   /* "tellpop" */
    const char *server; /* "dpop" */
    const char *conf;   /* the dmail.conf in use */
    char *work_path;    /* malloc'd */
    char *users_file;   /* malloc'd */
    char *run_as;       /* malloc'd, may be "" */
    int authent_method; /* AUTHENT_* of the config (users_file when it cannot be read) */
    int timeout_ms;
    struct ctl_remote remote; /* host != NULL: over the manager port (-n/-p) */
};

/* tell_users_cmd - adduser/deluser/passwd/users on ctx->users_file (argv[0] is the
 * command). Locks USERS.lock, rewrites the file atomically keeping its owner and mode
 * (a new file: mode 0640, owned by run_as when run by root), then asks the server to
 * reload. A password argument "-" (or none) is read from stdin (prompted twice without
 * echo on a terminal). Returns a TELL_EX_* code; messages go to stdout/stderr. */
int tell_users_cmd(const struct tell_ctx *ctx, int argc, char **argv);

/* tell_users_edit - the pure part: the new users-file text for cmd ("adduser",
 * "deluser", "passwd") on old text (may be NULL: no file), user name, hash (adduser and
 * passwd). Returns the malloc'd new text, or NULL with err filled (no such user, exists,
 * bad name). Comments, blank lines and other entries stay as they were; passwd keeps the
 * entry's options. */
char *tell_users_edit(const char *old, const char *cmd, const char *user, const char *hash,
                      char *err, size_t errlen);

/* tell_dkim_keygen - dkim-keygen DOMAIN SELECTOR [rsa|ed25519] [FILE] (argv[0] is the
 * command): a new key in FILE (default DOMAIN.SELECTOR.pem here; mode 0600, given to
 * run_as when run by root; an existing file is not replaced), then the dkim_sign line
 * and the DNS TXT record on stdout. Returns the exit code. */
int tell_dkim_keygen(const struct tell_ctx *ctx, int argc, char **argv);

/* tell_hash - a yescrypt hash of password into out; 0 or -1. */
int tell_hash(const char *password, char *out, size_t outlen);

/* tell_users_name_ok - a user name the users file can hold ("user" or "user@domain");
 * writes the lower-case form (domain as A-label) into out. 0 or -1. */
int tell_users_name_ok(const char *user, char *out, size_t outlen);

#endif
