/*
 * control - dpop's own control commands (who, kick) and counters. See control.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "session.h"
#include "server.h"
#include "tls.h"
#include "xmem.h"

/* control_stats - dpop's counters of "stats". */
void
control_stats(struct server *srv, struct ctl_req *r, bool prom)
{
    struct popd *d = popd_of(srv);

    ctl_stat(r, prom, "dpop", "logins_total", "counter", "Logins, by result.", "result=\"ok\"",
             d->stats.logins_ok);
    ctl_stat(r, prom, "dpop", "logins_total", "counter", NULL, "result=\"failed\"",
             d->stats.logins_failed);
    ctl_stat(r, prom, "dpop", "messages_retrieved_total", "counter", "Messages sent by RETR.", NULL,
             d->stats.retrieved);
    ctl_stat(r, prom, "dpop", "messages_deleted_total", "counter", "Messages deleted at UPDATE.",
             NULL, d->stats.deleted);
    ctl_stat(r, prom, "dpop", "sent_bytes_total", "counter", "Bytes sent to POP3 clients.", NULL,
             srv->bytes_out);
    ctl_stat(r, prom, "dpop", "retr_windows", "gauge", "RETR read-ahead windows held now.", NULL,
             (unsigned long long)d->ahead_windows);
}

/* control_cmd_who - the live sessions. */
static void
control_cmd_who(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;
    int n = 0;

    for (struct sess *b = srv->sessions; b != NULL; b = b->next) {
        struct pop_session *s = pop_session_of(b);
        if (b->conn == NULL)
            continue;
        ctl_line(r, "%016llx user=%s ip=%s port=%s state=%s tls=%s retr=%lu dele=%lu",
                 (unsigned long long)b->sid, s->login ? s->login : "-", b->ip,
                 b->port == POPD_PORT_POP3S ? "pop3s" : "pop3", sess_state_name(b),
                 net_is_tls(b->conn) ? "yes" : "no", s->nretr, s->ndele);
        n++;
    }
    ctl_ok(r, "%d session%s", n, n == 1 ? "" : "s");
}

/* control_login_is - whether a session's login names user ("bob" matches "bob@dom"). */
static bool
control_login_is(const char *login, const char *user)
{
    size_t n;

    if (login == NULL)
        return false;
    if (strcasecmp(login, user) == 0)
        return true;
    n = strcspn(login, "@");
    return strchr(user, '@') == NULL && login[n] == '@' && strlen(user) == n &&
           strncasecmp(login, user, n) == 0;
}

/* control_cmd_kick - end USER's sessions without UPDATE. */
static void
control_cmd_kick(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct server *srv = arg;
    int kicked = 0, updating = 0;
    struct sess *b, *next;

    for (b = srv->sessions; b != NULL; b = next) {
        struct pop_session *s = pop_session_of(b);
        next = b->next;
        if (b->conn == NULL || b->state == SS_QUIT || !control_login_is(s->login, argv[1]))
            continue;
        if (b->state == SS_UPDATE) {
            updating++;
            continue;
        }
        log_sess(LOGLVL_INFO, b->sid, "kicked by the control socket (uid %ld)", (long)ctl_uid(r));
        kicked++;
        if (b->wait == SW_NONE && !b->in_process) {
            session_err(s, false, "SYS/PERM", "Disconnected by the administrator");
            sess_close(b, "kicked");
        } else {
            b->close_reason = "kicked";
            net_abort(b->conn); /* mid-answer: no status line into the stream */
        }
    }
    if (kicked == 0 && updating == 0) {
        ctl_err(r, "no session of %.100s", argv[1]);
        return;
    }
    ctl_ok(r, "%d session%s of %s ended (nothing deleted)%s", kicked, kicked == 1 ? "" : "s",
           argv[1], updating ? "; one is committing its deletions and finishes" : "");
}

/* control_sess_user - the login of a session (showchans). */
const char *
control_sess_user(struct sess *b)
{
    return pop_session_of(b)->login;
}

/* control_cmd_suspend - take no new connections; open sessions go on. */
static void
control_cmd_suspend(struct ctl_req *r, int argc, char **argv, void *arg)
{
    server_suspend_accept(arg, true);
    ctl_ok(r, "accepting suspended");
}

/* control_cmd_resume - take connections again. */
static void
control_cmd_resume(struct ctl_req *r, int argc, char **argv, void *arg)
{
    server_suspend_accept(arg, false);
    ctl_ok(r, "accepting resumed");
}

const struct ctl_cmd control_cmds[CONTROL_NCMDS] = {
    {"suspend", "", 0, 0, control_cmd_suspend, "take no new connections until resume"},
    {"resume", "", 0, 0, control_cmd_resume, "take new connections again"},
    {"who", "", 0, 0, control_cmd_who, "live sessions"},
    {"kick", "USER", 1, 1, control_cmd_kick, "end USER's sessions (nothing is deleted)"},
};
