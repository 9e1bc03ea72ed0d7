/*
 * notify - systemd's readiness protocol without libsystemd: datagrams to $NOTIFY_SOCKET
 * (READY=1 once every server answers, WATCHDOG=1 while all are healthy, STOPPING=1).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dwatch.h"
#include "log.h"

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint64_t notify_watchdog_usec;

/* dw_notify_init - take NOTIFY_SOCKET and WATCHDOG_USEC from the environment (and remove
 * them, so the servers do not see them). */
void
dw_notify_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");
    const char *w = getenv("WATCHDOG_USEC");
    const char *wp = getenv("WATCHDOG_PID");

    if (p != NULL && (p[0] == '/' || p[0] == '@') && strlen(p) < sizeof(notify_path))
        memcpy(notify_path, p, strlen(p) + 1);
    if (w != NULL && (wp == NULL || strtol(wp, NULL, 10) == (long)getpid()))
        notify_watchdog_usec = strtoull(w, NULL, 10);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* dw_notify - one datagram; an '@' path is in the abstract namespace. */
int
dw_notify(const char *msg)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(notify_path);
    socklen_t len;
    int fd, rc;

    if (n == 0)
        return 1;
    memcpy(sun.sun_path, notify_path, n);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    rc = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun, len) < 0
             ? -1
             : 0;
    if (rc < 0)
        log_warne("systemd notification to %s", notify_path);
    close(fd);
    return rc;
}

/* dw_notify_check - READY=1 the first time every server is up. */
void
dw_notify_check(struct dwatch *dw)
{
    char status[256];
    int running = 0;

    if (dw->ready_sent || dw->stopping || !dw_all_healthy(dw))
        return;
    for (struct dw_server *s = dw->servers; s != NULL; s = s->next)
        running += s->state == DW_RUNNING;
    snprintf(status, sizeof(status), "READY=1\nSTATUS=%d server%s running", running,
             running == 1 ? "" : "s");
    dw->ready_sent = true;
    log_info("all servers up (%d running)", running);
    dw_notify(status);
}

/* dw_watchdog_cb - WATCHDOG=1 while everything is healthy. */
static void
dw_watchdog_cb(uv_timer_t *t)
{
    struct dwatch *dw = t->data;

    if (dw->ready_sent && !dw->stopping && dw_all_healthy(dw))
        dw_notify("WATCHDOG=1");
}

/* dw_notify_start - the watchdog timer at half of WATCHDOG_USEC. */
void
dw_notify_start(struct dwatch *dw)
{
    uv_timer_init(dw->loop, &dw->watchdog);
    dw->watchdog.data = dw;
    dw->watchdog_usec = notify_watchdog_usec;
    if (notify_watchdog_usec > 0 && notify_path[0] != '\0') {
        uint64_t ms = notify_watchdog_usec / 2000;
        uv_timer_start(&dw->watchdog, dw_watchdog_cb, ms ? ms : 1, ms ? ms : 1);
    }
}
