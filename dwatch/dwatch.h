/*
 * dwatch - the supervisor's shared state: one struct dwatch per process, one struct
 * dw_server per watched program, all on the loop thread.
 *
 * Contract:
 * - A server moves between the states of DW_STATES only through dw_enter_state(), which
 *   logs every change. Deaths within dwatch_window count toward the back-off (1 s
 *   doubling, capped at dwatch_backoff_max) and toward dwatch_give_up (then: failed).
 * - Blocks on: nothing on the loop; .ded files are written on the thread pool.
 * - A clean exit (status 0) that dwatch did not ask for is taken as an intended stop
 *   (e.g. `tellsmtp shutdown`): the server is not restarted, and shows as stopped.
 */
#ifndef DWATCH_DWATCH_H
#define DWATCH_DWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "conf.h"
#include "ctl.h"

#define DW_STATES(X)                                                                               \
    X(STOPPED, "stopped")   /* not running, not to be started (stop, clean exit) */                \
    X(STARTING, "starting") /* spawned, has not answered a ping yet */                             \
    X(RUNNING, "running")   /* answered a ping */                                                  \
    X(STOPPING, "stopping") /* asked to stop; waiting for it to exit */                            \
    X(BACKOFF, "backoff")   /* died; waiting to be started again */                                \
    X(FAILED, "failed")     /* died dwatch_give_up times within dwatch_window */

enum dw_state {
#define DW_ENUM(name, text) DW_##name,
    DW_STATES(DW_ENUM)
#undef DW_ENUM
};

#define DW_DEATHS_MAX 1000 /* deaths remembered per server (dwatch_give_up's maximum) */
#define DW_LINE_MAX 1024   /* longest stderr line kept */

/* The last lines a server wrote to stderr. */
struct dw_ring {
    char **lines;
    size_t cap, n, head; /* head: the oldest */
    char part[DW_LINE_MAX + 1];
    size_t partlen;
};

struct dwatch;

struct dw_server {
    struct dwatch *dw;
    char *name; /* "dsmtp" */
    char *exe;  /* full path of the program */
    enum dw_state state;
    bool removed;       /* no longer in dwatch_servers: forget after it stops */
    bool restart;       /* start again at once when this process exits (restart command) */
    uv_process_t *proc; /* NULL when no process is running */
    uv_pipe_t *err;     /* its stderr, NULL when closed */
    pid_t pid;
    time_t started;      /* wall clock, for status */
    uint64_t started_ms; /* loop time of the start */
    bool exited, err_eof;
    bool exit_pending; /* exited, dw_after_exit not yet run (waiting for stderr's end) */
    int64_t exit_status;
    int exit_signal;
    char last_exit[64]; /* "exit 1", "signal 9", "" */
    long restarts;      /* starts after the first */
    long deaths_total;
    uint64_t deaths[DW_DEATHS_MAX]; /* loop times of recent deaths (ring) */
    size_t ndeaths, deaths_head;
    uint64_t delay_ms;      /* the current back-off */
    uv_timer_t timer;       /* back-off wait, start-up pings, stop escalation */
    struct ctl_async *ping; /* a ping in flight */
    bool hung;              /* killed for not answering */
    bool answered;          /* has answered a ping since its start */
    bool warned_nosock;
    struct dw_ring ring;
    struct dw_server *next;
};

struct dwatch {
    uv_loop_t *loop;
    struct conf *cf;
    char *conf_path;
    char *bindir;
    bool foreground;
    bool stopping; /* SIGTERM/shutdown: servers are being stopped, then dwatch exits */
    bool ready_sent;
    struct dw_server *servers;
    struct ctl_server *ctl;
    uv_timer_t health;   /* every dwatch_interval */
    uv_timer_t watchdog; /* systemd WATCHDOG=1 */
    uv_timer_t final;    /* shutdown deadline */
    uv_signal_t sigs[5];
    uint64_t watchdog_usec;
    int handles_to_close;
};

/* watch.c */
const char *dw_state_name(enum dw_state s);
void dw_enter_state(struct dw_server *s, enum dw_state to);
struct dw_server *dw_server_new(struct dwatch *dw, const char *name);
struct dw_server *dw_server_find(struct dwatch *dw, const char *name);
/* dw_start - spawn now (from stopped, failed or backoff). 0 or a negative uv error. */
int dw_start(struct dw_server *s);
/* dw_stop - SIGTERM, then SIGKILL after grace_ms; restart says whether to start again. */
void dw_stop(struct dw_server *s, bool restart, uint64_t grace_ms);
void dw_health_round(struct dwatch *dw);
/* dw_apply_servers - bring the server list in line with dwatch_servers (start/stop). */
void dw_apply_servers(struct dwatch *dw);
/* dw_all_healthy - every server that should run answered its last ping. */
bool dw_all_healthy(const struct dwatch *dw);
/* dw_all_down - no server process is left. */
bool dw_all_down(const struct dwatch *dw);
/* dw_backoff_ms - the wait before the next start after ndeaths deaths in the window. */
uint64_t dw_backoff_ms(size_t ndeaths, long backoff_max_s);
/* dw_deaths_in_window - count (and forget older) deaths within window_ms of now. */
size_t dw_deaths_in_window(struct dw_server *s, uint64_t now, uint64_t window_ms);
void dw_server_free_all(struct dwatch *dw);
/* dw_ctl_path - work_path/NAME.ctl (malloc'd). */
char *dw_ctl_path(const struct dwatch *dw, const char *name);

/* ring */
void dw_ring_init(struct dw_ring *r, size_t cap);
void dw_ring_free(struct dw_ring *r);
/* dw_ring_feed - bytes from the pipe; complete lines go into the ring (cut at
 * DW_LINE_MAX), and each is also handed to out (may be NULL). */
void dw_ring_feed(struct dw_ring *r, const char *p, size_t n,
                  void (*out)(void *arg, const char *line), void *arg);
/* dw_ring_flush - a last unterminated line into the ring. */
void dw_ring_flush(struct dw_ring *r);
/* dw_ring_text - the kept lines, oldest first, each with a newline (malloc'd). */
char *dw_ring_text(const struct dw_ring *r);

/* control.c */
int dw_control_open(struct dwatch *dw, char *err, size_t errlen);
/* dw_reload - reload dwatch's own config and tell every server to reload; report(arg,
 * line) gets one line per server when given. */
void dw_reload(struct dwatch *dw, struct ctl_req *r);
/* dw_shutdown - stop every server, then leave the loop. */
void dw_shutdown(struct dwatch *dw);
void dw_maybe_finish(struct dwatch *dw);

/* notify.c */
/* dw_notify_init - read (and unset) NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
void dw_notify_init(void);
/* dw_notify - send a systemd notification (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...)
 * when NOTIFY_SOCKET is set; 0 sent, 1 not under systemd, -1 error. */
int dw_notify(const char *msg);
/* dw_notify_check - READY=1 once all servers are up; the watchdog timer. */
void dw_notify_check(struct dwatch *dw);
void dw_notify_start(struct dwatch *dw);

#endif
