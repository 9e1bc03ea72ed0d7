/*
 * server - the start-up sequence every dmail server shares: command line, config, log,
 * privileges, pid file.
 *
 * Contract:
 * - Order (STYLE 9.10): server_args -> server_load_config -> log_open -> bind listeners,
 *   open keys and logs (still root) -> server_drop_privileges -> run the loop.
 * - Blocks on: file reads and writes; start-up only.
 * - Exit codes: 0 ok, 64 usage (EX_USAGE), 78 bad config (EX_CONFIG), 71 OS error.
 */
#ifndef DMAIL_SERVER_H
#define DMAIL_SERVER_H

#include <stdbool.h>

#include "conf.h"

struct server_opts {
    const char *prog;      /* "dsmtp" */
    const char *conf_path; /* resolved through conf_default_path */
    bool foreground;       /* -f: stay in the foreground, log to stderr */
    bool test_only;        /* -t: check the config and exit */
};

/* server_args - parse NAME [-c FILE | -i FILE] [-f] [-t] [--help] [--version]. Prints
 * usage and exits 64 on a bad flag; --help / --version print and exit 0. Flags may be
 * grouped (-ft, -fc FILE, -cFILE). Also calls log_init(prog, foreground). */
void server_args(int argc, char **argv, const char *prog, const char *summary,
                 struct server_opts *o);

/* server_load_config - load o->conf_path, print every diagnostic to stderr (and a count
 * line "PROG: PATH: N errors, M warnings" when there were any); with -t exit 0 (clean or
 * warnings only) or 78 (errors); otherwise return the snapshot, or exit 78 on errors.
 * Also sets the log level from log_level. */
struct conf *server_load_config(const struct server_opts *o);

/* server_drop_privileges - if running as root: look up run_as, initgroups, setresgid,
 * setresuid, and verify root cannot be regained. Refuses to go on as root (run_as "root",
 * or any uid 0 account, is an error). Not root: nothing to do. Returns 0, or -1 with err
 * filled on any failure; the caller must then treat it as fatal (log_fatal). */
int server_drop_privileges(const char *run_as, char *err, size_t errlen);

/* server_hostname - the name a server greets with into buf: the hostname setting, else
 * the system's name, else main_domain. */
void server_hostname(const struct conf *cf, char *buf, size_t len);

/* server_pidfile - write the pid to path (atomically); 0 or -1. */
int server_pidfile(const char *path);

#endif
