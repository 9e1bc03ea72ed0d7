/*
 * control - dsmtp's queue commands, status and stats lines, reply counters. See
 * control.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bombs.h"
#include "control.h"
#include "deliver.h"
#include "file.h"
#include "log.h"
#include "outq.h"
#include "qfile.h"
#include "queue.h"
#include "session.h"
#include "server.h"
#include "tls.h"
#include "xmem.h"

#define CONTROL_LIST_MAX 10000 /* messages the queue command lists */

/* control_count_reply - count 4xx/5xx replies by code and enhanced code. */
void
control_count_reply(struct smtpd *d, int code, const char *ecode)
{
    struct smtpd_stats *st = &d->stats;
    const char *e = ecode != NULL ? ecode : "";

    if (code < 400)
        return;
    for (int i = 0; i < st->nrejects; i++)
        if (st->rejects[i].code == code && strcmp(st->rejects[i].ecode, e) == 0) {
            st->rejects[i].n++;
            return;
        }
    if (st->nrejects == SMTPD_REJECT_KINDS || strlen(e) >= sizeof(st->rejects[0].ecode)) {
        st->rejects_other++;
        return;
    }
    st->rejects[st->nrejects].code = code;
    snprintf(st->rejects[st->nrejects].ecode, sizeof(st->rejects[0].ecode), "%s", e);
    st->rejects[st->nrejects].n = 1;
    st->nrejects++;
}

/* control_reason - a name for a reply code (the reasons of DESIGN's stats). */
static const char *
control_reason(int code, const char *ecode)
{
    static const struct {
        const char *ecode;
        const char *reason;
    } names[] = {
        {"5.1.1", "user_unknown"},    {"5.7.1", "relay_denied"}, {"5.3.4", "too_big"},
        {"4.5.3", "too_many_rcpts"},  {"5.7.8", "auth_failed"},  {"5.7.0", "auth_required"},
        {"5.7.11", "tls_required"},   {"5.5.1", "bad_sequence"}, {"5.5.2", "syntax"},
        {"5.5.4", "bad_arguments"},   {"5.1.3", "bad_address"},  {"5.1.6", "not_local"},
        {"5.6.7", "needs_smtputf8"},  {"5.6.0", "bad_content"},  {"4.3.1", "storage"},
        {"5.2.0", "delivery_failed"}, {"4.4.2", "timeout"},      {"4.3.2", "shutting_down"},
    };

    if (code == 421 && strcmp(ecode, "4.7.0") == 0)
        return "too_many_errors";
    if (code == 454)
        return "tls_unavailable";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i].ecode, ecode) == 0)
            return names[i].reason;
    return "other";
}

/* control_status - dsmtp's lines of "status". */
void
control_status(struct server *srv, struct ctl_req *r)
{
    struct smtpd *d = smtpd_of(srv);

    ctl_line(r, "deliveries_running %ld", srv->jobs);
    ctl_line(r, "outbound %s",
             d->outq != NULL && outq_suspended(d->outq) ? "suspended" : "running");
}

/* control_stats - dsmtp's counters of "stats". */
void
control_stats(struct server *srv, struct ctl_req *r, bool prom)
{
    struct smtpd *d = smtpd_of(srv);
    struct smtpd_stats *st = &d->stats;

    ctl_stat(r, prom, "dsmtp", "messages_received_total", "counter",
             "Messages accepted (250 after DATA).", NULL, st->msgs_in);
    ctl_stat(r, prom, "dsmtp", "received_bytes_total", "counter", "Bytes of accepted messages.",
             NULL, st->bytes_in);
    ctl_stat(r, prom, "dsmtp", "recipients_received_total", "counter",
             "Recipients of accepted messages.", NULL, st->rcpts_in);
    ctl_stat(r, prom, "dsmtp", "mailbox_deliveries_total", "counter",
             "Mailboxes written: at once after DATA, and by the queue runner (sendmail's "
             "messages, retries).",
             NULL, st->delivered + st->queue_delivered);
    ctl_stat(r, prom, "dsmtp", "queue_mailbox_deliveries_total", "counter",
             "Mailboxes written by the queue runner (part of mailbox_deliveries_total).", NULL,
             st->queue_delivered);
    ctl_stat(r, prom, "dsmtp", "queued_recipients_total", "counter",
             "Recipients put into the queue.", NULL, st->queued);
    ctl_stat(r, prom, "dsmtp", "failed_recipients_total", "counter",
             "Recipients refused for good after DATA.", NULL, st->failed);
    ctl_stat(r, prom, "dsmtp", "queue_failed_recipients_total", "counter",
             "Recipients the queue runner gave up on (bounced to the sender).", NULL,
             st->queue_failed);
    ctl_stat(r, prom, "dsmtp", "pickup_messages_total", "counter",
             "Messages taken from sendmail's maildrop into the queue.", NULL, st->picked_up);
    ctl_stat(r, prom, "dsmtp", "pickup_recipients_total", "counter", "Their recipients.", NULL,
             st->picked_rcpts);
    ctl_stat(r, prom, "dsmtp", "outbound_recipients_total", "counter",
             "Recipients handled by outbound delivery, by result.", "result=\"sent\"",
             st->out_sent);
    ctl_stat(r, prom, "dsmtp", "outbound_recipients_total", "counter", NULL, "result=\"deferred\"",
             st->out_deferred);
    ctl_stat(r, prom, "dsmtp", "outbound_recipients_total", "counter", NULL, "result=\"bounced\"",
             st->out_bounced);
    ctl_stat(r, prom, "dsmtp", "outbound_sessions_total", "counter",
             "Outbound SMTP sessions opened.", NULL, st->out_conns);
    ctl_stat(r, prom, "dsmtp", "outbound_tls_sessions_total", "counter",
             "Outbound SMTP sessions that used STARTTLS.", NULL, st->out_tls);
    ctl_stat(r, prom, "dsmtp", "outbound_reused_total", "counter",
             "Outbound transactions on a session that had carried one already.", NULL,
             st->out_reused);
    ctl_stat(r, prom, "dsmtp", "dkim_signed_total", "counter",
             "Messages given DKIM signatures (dkim_sign).", NULL, st->dkim_signed);
    ctl_stat(r, prom, "dsmtp", "dkim_sign_cpu_microseconds_total", "counter",
             "CPU time the thread pool spent making them (header hashes and the private-key "
             "operations; the body hash is taken while the message streams in).",
             NULL, st->dkim_sign_ns / 1000);
    ctl_stat(r, prom, "dsmtp", "data_memory_bytes", "gauge",
             "Octets the message buffers of sessions in DATA hold now.", NULL, d->budget.used);
    ctl_stat(r, prom, "dsmtp", "data_memory_refused_total", "counter",
             "Messages refused with 452 because data_memory_max was reached.", NULL,
             d->budget.refused);
    ctl_stat(r, prom, "dsmtp", "queue_messages", "gauge",
             "Messages in the queue at the last queue scan.", NULL,
             (unsigned long long)st->queue_messages);
    ctl_stat(r, prom, "dsmtp", "queue_oldest_seconds", "gauge",
             "Age of the oldest message in the queue at the last queue scan.", NULL,
             st->queue_oldest > 0 && time(NULL) > st->queue_oldest
                 ? (unsigned long long)(time(NULL) - st->queue_oldest)
                 : 0);
    for (int i = 0; i < st->nrejects; i++) {
        char labels[128];
        snprintf(labels, sizeof(labels), "reason=\"%s\",code=\"%d\",status=\"%s\"",
                 control_reason(st->rejects[i].code, st->rejects[i].ecode), st->rejects[i].code,
                 st->rejects[i].ecode);
        ctl_stat(r, prom, "dsmtp", "rejects_total", "counter",
                 i == 0 ? "Replies with a 4xx or 5xx code, by reason." : NULL, labels,
                 st->rejects[i].n);
    }
    if (st->rejects_other > 0)
        ctl_stat(r, prom, "dsmtp", "rejects_total", "counter",
                 st->nrejects == 0 ? "Replies with a 4xx or 5xx code, by reason." : NULL,
                 "reason=\"other\"", st->rejects_other);
}

/* A queue command on the pool. */
enum control_qop { QOP_LIST, QOP_FLUSH, QOP_DELETE, QOP_HOLD, QOP_RELEASE };

struct control_qjob {
    uv_work_t w;
    struct smtpd *d;
    struct ctl_req *r;
    enum control_qop op;
    char arg[256];
    char *spool;
    char *out;
    size_t outlen, outsize;
    int count, held, changed;
    char err[300];
};

/* control_qout - a data line into the job's output. */
static void __attribute__((format(printf, 2, 3)))
control_qout(struct control_qjob *j, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        log_fatal("out of memory");
    va_end(ap);
    size_t n = strlen(s);
    if (j->outlen + n + 2 > j->outsize) {
        j->outsize = (j->outlen + n + 2) * 2;
        j->out = xrealloc(j->out, j->outsize);
    }
    memcpy(j->out + j->outlen, s, n);
    j->outlen += n;
    j->out[j->outlen++] = '\n';
    j->out[j->outlen] = '\0';
    free(s);
}

/* control_qlist - every message: id, size, age, sender, recipients. */
static void
control_qlist(struct control_qjob *j)
{
    char *dir = xasprintf("%s/queue", j->spool);
    size_t n;
    char **names = file_dir_names(dir, NULL, &n); /* by name: by arrival time */
    time_t now = time(NULL);

    if (names == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot open %s: %s", dir, strerror(errno));
        free(dir);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct qfile q;
        char err[200], *path = xasprintf("%s/%s", dir, names[i]);
        memset(&q, 0, sizeof(q));
        if (qfile_read(path, &q, err, sizeof(err)) < 0) {
            if (j->count < CONTROL_LIST_MAX)
                control_qout(j, "%s unreadable: %s", names[i], err);
        } else {
            j->held += (q.flags & QF_HOLD) != 0;
            if (j->count < CONTROL_LIST_MAX) {
                control_qout(j, "%s size=%zu age=%lds from=<%s> rcpts=%zu%s", q.id, q.text_len,
                             (long)(now - q.arrival), q.sender, q.nrcpt,
                             (q.flags & QF_HOLD) ? " held" : "");
                for (size_t k = 0; k < q.nrcpt; k++) {
                    struct qfile_rcpt *rc = &q.rcpt[k];
                    char next[40] = "";
                    if (rc->state == QR_PENDING && rc->next_try > now)
                        snprintf(next, sizeof(next), " next=%lds", (long)(rc->next_try - now));
                    control_qout(j, "  to=<%s> %s attempts=%d%s%s%s", rc->addr,
                                 qfile_state_name(rc->state), rc->attempts, next,
                                 rc->last_error ? " last_error=" : "",
                                 rc->last_error ? rc->last_error : "");
                }
            }
        }
        j->count++;
        qfile_free(&q);
        free(path);
        free(names[i]);
    }
    if (j->count > CONTROL_LIST_MAX)
        control_qout(j, "... and %d more", j->count - CONTROL_LIST_MAX);
    free(names);
    free(dir);
}

/* control_qrewrite - write a changed queue file back (atomically). */
static int
control_qrewrite(struct control_qjob *j, struct qfile *q)
{
    int rc = deliver_queue_save(j->spool, q);

    if (rc < 0)
        snprintf(j->err, sizeof(j->err), "cannot rewrite %s/queue/%s: %s", j->spool, q->id,
                 strerror(errno));
    return rc;
}

/* control_qflush - every pending recipient (at DOMAIN) is due now. */
static void
control_qflush(struct control_qjob *j)
{
    char *dir = xasprintf("%s/queue", j->spool);
    DIR *dp = opendir(dir);
    struct dirent *de;

    if (dp == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot open %s: %s", dir, strerror(errno));
        free(dir);
        return;
    }
    while ((de = readdir(dp)) != NULL && j->err[0] == '\0') {
        struct qfile q;
        char err[200], *path;
        bool changed = false;
        if (de->d_name[0] == '.')
            continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        memset(&q, 0, sizeof(q));
        if (qfile_read(path, &q, err, sizeof(err)) == 0) {
            j->count++;
            for (size_t k = 0; k < q.nrcpt; k++) {
                struct qfile_rcpt *rc = &q.rcpt[k];
                const char *at = strrchr(rc->addr, '@');
                if (rc->state != QR_PENDING || rc->next_try == 0)
                    continue;
                if (j->arg[0] != '\0' && (at == NULL || strcasecmp(at + 1, j->arg) != 0))
                    continue;
                rc->next_try = 0;
                changed = true;
            }
            if (changed && control_qrewrite(j, &q) == 0)
                j->changed++;
        }
        qfile_free(&q);
        free(path);
    }
    closedir(dp);
    free(dir);
}

/* control_qone - delete, hold or release one message. */
static void
control_qone(struct control_qjob *j)
{
    char *path = xasprintf("%s/queue/%s", j->spool, j->arg);
    struct qfile q;
    char err[200];

    memset(&q, 0, sizeof(q));
    if (qfile_read(path, &q, err, sizeof(err)) < 0) {
        if (errno == ENOENT || access(path, F_OK) < 0)
            snprintf(j->err, sizeof(j->err), "no message %s in the queue", j->arg);
        else
            snprintf(j->err, sizeof(j->err), "%.64s: %.200s", j->arg, err);
        goto out;
    }
    switch (j->op) {
    case QOP_DELETE:
        if (unlink(path) < 0) {
            snprintf(j->err, sizeof(j->err), "cannot remove %s: %s", path, strerror(errno));
            break;
        }
        file_fsync_dir(path);
        for (size_t k = 0; k < q.nrcpt; k++)
            j->count += q.rcpt[k].state == QR_PENDING;
        log_info("queue id=%s deleted by the control socket (%d recipients undelivered)", q.id,
                 j->count);
        break;
    case QOP_HOLD:
    case QOP_RELEASE: {
        bool hold = j->op == QOP_HOLD;
        if (((q.flags & QF_HOLD) != 0) == hold)
            break; /* nothing to do */
        q.flags = hold ? (q.flags | QF_HOLD) : (q.flags & ~QF_HOLD);
        if (control_qrewrite(j, &q) == 0) {
            j->changed = 1;
            log_info("queue id=%s %s by the control socket", q.id, hold ? "held" : "released");
        }
        break;
    }
    default:
        break;
    }
out:
    qfile_free(&q);
    free(path);
}

/* control_qwork - the pool. */
static void
control_qwork(uv_work_t *w)
{
    struct control_qjob *j = (struct control_qjob *)w;

    switch (j->op) {
    case QOP_LIST:
        control_qlist(j);
        break;
    case QOP_FLUSH:
        control_qflush(j);
        break;
    default:
        control_qone(j);
        break;
    }
}

/* control_qdone - answer. */
static void
control_qdone(uv_work_t *w, int status)
{
    struct control_qjob *j = (struct control_qjob *)w;
    struct ctl_req *r = j->r;

    for (char *p = j->out, *nl; p != NULL && *p != '\0'; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = '\0';
        ctl_line(r, "%s", p);
    }
    if (status < 0)
        ctl_err(r, "cancelled: dsmtp is stopping");
    else if (j->err[0] != '\0')
        ctl_err(r, "%s", j->err);
    else
        switch (j->op) {
        case QOP_LIST:
            ctl_ok(r, "%d message%s in the queue, %d held", j->count, j->count == 1 ? "" : "s",
                   j->held);
            break;
        case QOP_FLUSH:
            if (j->d->queue != NULL)
                queue_kick(j->d->queue);
            ctl_ok(r, "%d of %d message%s due now%s%s", j->changed, j->count,
                   j->count == 1 ? "" : "s", j->arg[0] ? " for " : "", j->arg);
            break;
        case QOP_DELETE:
            ctl_ok(r, "deleted %s (%d recipient%s not delivered, no bounce)", j->arg, j->count,
                   j->count == 1 ? "" : "s");
            break;
        case QOP_HOLD:
            ctl_ok(r, "%s %s", j->arg, j->changed ? "held" : "was already held");
            break;
        case QOP_RELEASE:
            if (j->changed && j->d->queue != NULL)
                queue_kick(j->d->queue);
            ctl_ok(r, "%s %s", j->arg, j->changed ? "released" : "was not held");
            break;
        }
    free(j->out);
    free(j->spool);
    free(j);
}

/* control_queue_op - start a queue command. */
static void
control_queue_op(struct ctl_req *r, struct smtpd *d, enum control_qop op, const char *arg)
{
    struct control_qjob *j;

    if (op != QOP_LIST && op != QOP_FLUSH && !qfile_id_valid(arg)) {
        ctl_err(r, "not a queue id: %.64s", arg);
        return;
    }
    if (d->queue == NULL) {
        ctl_err(r, "dsmtp is stopping");
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->r = r;
    j->op = op;
    snprintf(j->arg, sizeof(j->arg), "%s", arg ? arg : "");
    j->spool = xstrdup(d->srv.cf->spool_dir);
    if (queue_job(d->queue, &j->w, control_qwork, control_qdone) < 0) {
        free(j->spool);
        free(j);
        ctl_err(r, "another queue command is running; try again");
    }
}

/* control_cmd_queue - list the queue. */
static void
control_cmd_queue(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_queue_op(r, smtpd_of(arg), QOP_LIST, NULL);
}

/* control_cmd_flush - everything (at DOMAIN) due now. */
static void
control_cmd_flush(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_queue_op(r, smtpd_of(arg), QOP_FLUSH, argc > 1 ? argv[1] : NULL);
}

/* control_cmd_delete - drop a message. */
static void
control_cmd_delete(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_queue_op(r, smtpd_of(arg), QOP_DELETE, argv[1]);
}

/* control_cmd_hold - keep a message from delivery. */
static void
control_cmd_hold(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_queue_op(r, smtpd_of(arg), QOP_HOLD, argv[1]);
}

/* control_cmd_release - undo hold. */
static void
control_cmd_release(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_queue_op(r, smtpd_of(arg), QOP_RELEASE, argv[1]);
}

/* control_outbound - suspend (on) or resume outbound delivery. */
static void
control_outbound(struct ctl_req *r, void *arg, bool on)
{
    struct smtpd *d = smtpd_of(arg);
    const char *what = on ? "suspended" : "resumed";

    if (d->outq == NULL) {
        ctl_err(r, "dsmtp is stopping");
        return;
    }
    outq_suspend(d->outq, on);
    log_info("outbound delivery %s by the control socket", what);
    ctl_ok(r, "outbound delivery %s", what);
}

/* control_suspend_what - "suspend/resume [delivery|accept|all]": DMail's suspend and
 * resume act on outbound delivery (the default); accept stops or restarts taking new
 * connections (open sessions go on). */
static void
control_suspend_what(struct ctl_req *r, int argc, char **argv, void *arg, bool on)
{
    const char *what = argc > 1 ? argv[1] : "delivery";
    bool acc = strcasecmp(what, "accept") == 0, all = strcasecmp(what, "all") == 0;

    if (!acc && !all && strcasecmp(what, "delivery") != 0) {
        ctl_err(r, "usage: %s [delivery|accept|all]", argv[0]);
        return;
    }
    if (acc || all) {
        server_suspend_accept(arg, on);
        if (acc) {
            ctl_ok(r, "accepting %s", on ? "suspended" : "resumed");
            return;
        }
    }
    control_outbound(r, arg, on);
}

/* control_sess_user - the AUTH user of a session (showchans). */
const char *
control_sess_user(struct sess *b)
{
    return smtp_session_of(b)->auth_user;
}

/* control_cmd_suspend - no new outbound delivery (or connections) until resume. */
static void
control_cmd_suspend(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_suspend_what(r, argc, argv, arg, true);
}

/* control_cmd_resume - restart outbound delivery (DMail's resume), or accepting. */
static void
control_cmd_resume(struct ctl_req *r, int argc, char **argv, void *arg)
{
    control_suspend_what(r, argc, argv, arg, false);
}

/* control_cmd_tlsrpt_send - mail the TLS reports counted so far (cron runs it daily). */
static void
control_cmd_tlsrpt_send(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct smtpd *d = smtpd_of(arg);
    size_t n = 0;

    (void)argc;
    (void)argv;
    if (d->outq != NULL)
        n = outq_tlsrpt_send(d->outq);
    ctl_ok(r, "TLS reports started for %zu domains", n);
}

struct control_show {
    struct ctl_req *r;
    int n;
};

/* control_show_one - one showsend line. */
static void
control_show_one(void *arg, const struct outq_view *v)
{
    struct control_show *sh = arg;

    ctl_line(sh->r, "%s relay=%s state=%s tls=%s age=%lds bytes=%llu messages=%d waiting=%zu",
             v->dest, v->relay ? v->relay : "-", v->state, v->tls[0] ? v->tls : "none", v->age,
             v->bytes, v->messages, v->waiting);
    sh->n++;
}

/* control_cmd_showsend - the deliveries in progress (DMail's showsend). */
static void
control_cmd_showsend(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct smtpd *d = smtpd_of(arg);
    struct control_show sh = {r, 0};

    if (d->outq != NULL)
        outq_show(d->outq, control_show_one, &sh);
    ctl_ok(r, "%d deliveries in progress", sh.n);
}

const struct ctl_cmd control_cmds[CONTROL_NCMDS] = {
    {"queue", "", 0, 0, control_cmd_queue, "list the queue"},
    {"flush", "[DOMAIN]", 0, 1, control_cmd_flush, "try queued mail now"},
    {"delete", "ID", 1, 1, control_cmd_delete, "remove a queued message"},
    {"hold", "ID", 1, 1, control_cmd_hold, "keep a queued message from delivery"},
    {"release", "ID", 1, 1, control_cmd_release, "undo hold"},
    {"suspend", "[delivery|accept|all]", 0, 1, control_cmd_suspend,
     "start no outbound delivery (accept: take no new connections) until resume"},
    {"resume", "[delivery|accept|all]", 0, 1, control_cmd_resume,
     "restart outbound delivery, retry dead destinations (accept: take connections)"},
    {"showsend", "", 0, 0, control_cmd_showsend, "list outbound deliveries in progress"},
    {"tlsrpt-send", "", 0, 0, control_cmd_tlsrpt_send,
     "mail the TLS reports (RFC 8460) of the sessions counted so far"},
    {"bombs", "", 0, 0, bombs_ctl_list, "list the messages held as suspected mail bombs"},
    {"bomb-release", "ID", 1, 1, bombs_ctl_release, "let a held message be delivered"},
    {"bomb-delete", "ID", 1, 1, bombs_ctl_delete, "remove a held message (no bounce)"},
};
