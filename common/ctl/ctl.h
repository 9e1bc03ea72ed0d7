/*
 * ctl - the control protocol (the "tell" channel): a Unix-socket server on the loop, a
 * blocking client for the tell tools and an asynchronous client for dwatch.
 *
 * Contract:
 * - Owns: struct ctl_server, its listening pipe, every accepted connection and struct
 *   ctl_req; struct ctl_async. All run on the loop given to them; nothing blocks there.
 *   ctl_call() (the blocking client) is for the command-line tools only.
 * - Protocol: the client sends one request line "COMMAND ARGS...\n" (at most CTL_LINE_MAX
 *   bytes with the newline; words separated by spaces or tabs; a CR before the LF is
 *   ignored). The server answers with any number of data lines, then exactly one status
 *   line "OK text" or "ERR text" (text may be empty: "OK"). A data line that would start
 *   with "OK", "ERR" or a backslash is sent with one backslash in front, which the
 *   client removes; control characters in data lines are sent as '?'. After the status
 *   line the client may send the next request on the same connection.
 * - Security: the socket is created under umask 077 and chmod 0600, so only its owner
 *   (and root) can connect; the server also checks the peer's credentials (SO_PEERCRED):
 *   only root and the server's own effective uid are served, anybody else gets
 *   "ERR permission denied" and is disconnected. Connections per uid are capped
 *   (CTL_PER_UID_DEFAULT); one over the cap gets "ERR too many control connections".
 *   A client that sends nothing for CTL_IDLE_MS is disconnected.
 *   ctl_server_new() sets SIGPIPE to SIG_IGN (a client that left must not kill the server).
 * - Stale sockets: ctl_server_new replaces a socket file that nobody answers on, refuses
 *   when a live server answers there, and refuses to remove anything that is not a socket.
 * - Handlers: one table of struct ctl_cmd. A handler is called on the loop with argv[0] the
 *   command name and argc within [min_args+1, max_args+1]; it writes data lines with
 *   ctl_line() and must finish the request with exactly one ctl_ok() or ctl_err(), now or
 *   later (asynchronous answers are allowed). struct ctl_req stays valid until then, even
 *   if the client disconnects (ctl_gone() tells) or the server is closed; ctl_ok/ctl_err
 *   free it. Built in: "help" (the table's usage lines) and "ping" ("OK pong"), unless
 *   the table has its own.
 */
#ifndef DMAIL_CTL_H
#define DMAIL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <sys/types.h>
#include <uv.h>

#include "conf.h"

#define CTL_LINE_MAX 1024                 /* request line, newline included */
#define CTL_ARGS_MAX 16                   /* words in a request */
#define CTL_PER_UID_DEFAULT 8             /* connections per uid */
#define CTL_CONNS_MAX 64                  /* connections in all */
#define CTL_IDLE_MS 30000                 /* waiting for a request */
#define CTL_ANSWER_LINE_MAX (1024 * 1024) /* longest answer line a client accepts */

struct ctl_server;
struct ctl_req;

typedef void (*ctl_handler)(struct ctl_req *r, int argc, char **argv, void *arg);

struct ctl_cmd {
    const char *name;  /* "delete" */
    const char *usage; /* arguments for help: "ID" ("" for none) */
    int min_args, max_args;
    ctl_handler fn;
    const char *help; /* one line */
};

/* ctl_server_new - listen on path (mode 0600, see above). cmds must outlive the server;
 * arg is passed to every handler. Returns NULL with err filled on failure. */
struct ctl_server *ctl_server_new(uv_loop_t *loop, const char *path, const struct ctl_cmd *cmds,
                                  size_t ncmds, void *arg, char *err, size_t errlen);
/* ctl_server_set_limits - connections per uid (>= 1) and idle time in ms (tests). */
void ctl_server_set_limits(struct ctl_server *s, int per_uid, uint64_t idle_ms);
/* ctl_server_path - the socket's path. */
const char *ctl_server_path(const struct ctl_server *s);
/* ctl_server_close - stop listening, remove the socket file (if it is still ours),
 * disconnect every client; requests in progress stay valid until answered. Memory goes
 * when the last handle has closed. Sets *s to NULL; NULL is ignored. */
void ctl_server_close(struct ctl_server **s);

/* ctl_line - one data line (printf format; no newline). */
void ctl_line(struct ctl_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ctl_ok / ctl_err - the status line; ends the request and frees r. */
void ctl_ok(struct ctl_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_err(struct ctl_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ctl_gone - the client has disconnected (or the server closed); answers are dropped. */
bool ctl_gone(const struct ctl_req *r);
/* ctl_uid - the client's uid. */
uid_t ctl_uid(const struct ctl_req *r);

/* Client results. */
enum ctl_result {
    CTL_R_OK = 0,           /* "OK text" */
    CTL_R_ERR = 1,          /* "ERR text" */
    CTL_R_UNREACHABLE = -1, /* no socket, nobody listening, permission (text says why) */
    CTL_R_BROKEN = -2,      /* connection lost, timeout or garbage mid-answer */
};

/* Each data line of an answer, unescaped, without newline. */
typedef void (*ctl_line_cb)(void *arg, const char *line);

/* ctl_call - blocking: connect to path, send request (one line, no newline), hand each
 * data line to line_cb (may be NULL), and put the status text (or the reason of a
 * failure) into text. timeout_ms bounds the whole exchange. Returns an enum ctl_result. */
int ctl_call(const char *path, const char *request, int timeout_ms, ctl_line_cb line_cb, void *arg,
             char *text, size_t textlen);

/* The manager port of a server (server_mgr.h), for ctl_call_remote. */
struct ctl_remote {
    const char *host;     /* name or address */
    const char *port;     /* number or service */
    const char *password; /* sent as "AUTH password" */
    bool tls;             /* false: plaintext (manager_plaintext_loopback) */
    bool verify;          /* check the certificate chain and the host name */
    const char *cafile;   /* trust these CAs; NULL: the system store */
};

/* ctl_call_remote - ctl_call over the manager port: connect, TLS, "AUTH password", then
 * the request; the same results. A refused login ("authentication failed", "too many
 * failed logins") is CTL_R_UNREACHABLE with the server's text. */
int ctl_call_remote(const struct ctl_remote *rm, const char *request, int timeout_ms,
                    ctl_line_cb line_cb, void *arg, char *text, size_t textlen);

/* ctl_async - the same on a loop. cb gets the result and the status text (or reason); it
 * is called exactly once, from the loop, never from inside ctl_call_async, unless
 * cancelled first. The struct is freed after cb returns. */
struct ctl_async;
typedef void (*ctl_async_cb)(void *arg, int result, const char *text);
struct ctl_async *ctl_call_async(uv_loop_t *loop, const char *path, const char *request,
                                 uint64_t timeout_ms, ctl_line_cb line_cb, ctl_async_cb cb,
                                 void *arg);
/* ctl_async_cancel - cb will not be called; the call is abandoned and freed. */
void ctl_async_cancel(struct ctl_async *a);

/* ctl_split - split line in place into at most max words (spaces/tabs); returns the
 * count, or -1 when there are more than max. */
int ctl_split(char *line, char **argv, int max);

/*
 * Server-side helpers shared by dsmtp and dpop (ctl_reload.c).
 *
 * Reload (invariant 6): ctl_reload_start parses the config -- and, when want_db, the user
 * directory the new config names (the users file, or the Unix accounts for authent_method
 * unix_user) -- on the thread pool into new snapshots, compares every setting with the old
 * snapshot, runs extra (may be NULL) on the pool too, and calls done on the loop. done
 * owns rl: it takes rl->cf/rl->db (setting them to NULL) to put them in force, reports
 * with ctl_reload_report, and frees with ctl_reload_free. The old snapshot is referenced
 * for the job's duration. A config with errors gives rl->cf == NULL.
 */
struct auth_db;
struct net_server;

struct ctl_reload {
    struct conf *cf;         /* new snapshot; NULL when the file has errors */
    struct auth_db *db;      /* new users file (want_db, cf != NULL) */
    struct conf_diag diag;   /* the config's problems */
    struct conf_diag dbdiag; /* the users file's problems */
    int changed;             /* settings whose value changed */
    char restart[512];       /* CF_RESTART settings that changed: "listen, smtp_port" */
    char error[512];         /* set by extra: the reload fails with this reason */
    void *extra;             /* whatever extra built (the server frees it) */
    double ms;               /* parse time */
    bool bad;                /* config errors or extra's error: keep the old one */
    struct conf *old;        /* internal */
    char *path;              /* internal */
    bool want_db;            /* internal */
    void (*extra_fn)(struct ctl_reload *rl, void *arg);
    void (*done_fn)(struct ctl_reload *rl, void *arg);
    void *arg;
    uv_work_t w;
};

/* ctl_reload_start - see above; 0, or -1 when the job could not be queued. */
int ctl_reload_start(uv_loop_t *loop, const char *path, struct conf *old, bool want_db,
                     void (*extra)(struct ctl_reload *rl, void *arg),
                     void (*done)(struct ctl_reload *rl, void *arg), void *arg);
/* ctl_reload_ok - the reload can be put in force (no config errors, no extra error). */
bool ctl_reload_ok(const struct ctl_reload *rl);
/* ctl_reload_report - every problem to the log and (r != NULL) as data lines, then OK
 * ("reloaded PATH: N settings changed in T ms; restart needed for: ...") or ERR ("PATH
 * has N errors; the old configuration stays"). r is finished either way. */
void ctl_reload_report(const struct ctl_reload *rl, struct ctl_req *r);
void ctl_reload_free(struct ctl_reload **rl);
/* ctl_reload_tls - an extra for ctl_reload_start: on the pool, the TLS server context
 * of the new tls_cert/tls_key into rl->extra (NULL when they are unset); a pair that does
 * not load sets rl->error, so the reload fails and the old pair stays. */
void ctl_reload_tls(struct ctl_reload *rl, void *arg);
/* ctl_reload_apply - on the loop, after ctl_reload_ok: put rl's snapshots in force in
 * a server: *cf and *db replaced (the old ones unreferenced), *tls replaced by what
 * ctl_reload_tls built (for STARTTLS/STLS) and given to net's implicit-TLS listeners,
 * and the log level and connection limits of the new config applied. */
void ctl_reload_apply(struct ctl_reload *rl, struct conf **cf, struct auth_db **db, SSL_CTX **tls,
                      struct net_server *net);

/* ctl_answer_config - "config SETTING": the value in force and where it came from. */
void ctl_answer_config(struct ctl_req *r, const struct conf *cf, const char *name);
/* ctl_answer_debug - "debug LEVEL": set the log level (error, warn, info, debug). */
void ctl_answer_debug(struct ctl_req *r, const char *level);
/* ctl_stat - one counter or gauge: "name value" lines, or with prom the Prometheus text
 * format ("# HELP", "# TYPE" unless help is NULL, then "PROG_name{labels} value"); labels
 * may be NULL. type is "counter" or "gauge". */
void ctl_stat(struct ctl_req *r, bool prom, const char *prog, const char *name, const char *type,
              const char *help, const char *labels, unsigned long long value);
/* ctl_stats_args - parse "stats [-p]": sets *prom; false (and an ERR answer) if bad. */
bool ctl_stats_args(struct ctl_req *r, int argc, char **argv, bool *prom);

#endif
