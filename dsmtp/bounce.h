/*
 * bounce - the reports dsmtp sends for recipients it could not deliver: an RFC 3464
 * delivery status notification (common/mail/dsn.h) queued with the null sender, so that
 * every accepted recipient ends delivered or reported, never dropped in silence.
 *
 * Contract:
 * - Blocks on: composing and writing a queue file (fsync): thread pool only.
 * - bounce_send queues one report for the failed recipients of one message: to its
 *   envelope sender; or, when the message must not be bounced (null sender, itself a
 *   report, Auto-Submitted: RFC 3834, dsn_bounceable), a double bounce to the sysadmin
 *   address. A double bounce that fails in its turn, or one with no sysadmin set, is
 *   logged and dropped: reports never loop. Reports are queue files with origin
 *   "bounce ID" / "double-bounce ID" (ID the original's queue id) and the sender <>; the
 *   queue runner delivers them like any other message.
 * - Statuses (RFC 3463) callers use: 5.1.1 user unknown, 5.1.3 bad address, 5.4.6
 *   forwarding loop, 5.2.0 mailbox failure, 4.4.7 queue lifetime over; a remote server's
 *   own. bounce_delay sends the delay notice of queue_warn (no double bounce for it).
 * - VERP (m->verp): a report to the sender goes, one per recipient, to that recipient's
 *   VERP sender (addr_verp), so that a list manager knows whom it is about (Postfix
 *   does the same); a double bounce is one report to the sysadmin as always.
 * - DSN (RFC 3461): a recipient is in a report only when its NOTIFY asks for that kind
 *   (dsnparam_wants: no NOTIFY means FAILURE,DELAY): NOTIFY=NEVER, or a NOTIFY without
 *   FAILURE, leaves it out of the failure report and of the double bounce (logged); without
 *   DELAY, out of the delay notice. bounce_success reports recipients that asked for
 *   SUCCESS: delivered into a mailbox, or relayed to a server that does not offer DSN
 *   (when it does, NOTIFY went on with the message and the report is its business). The
 *   message's RET decides what a failure report returns (overriding bounce_body), its
 *   ENVID is the report's Original-Envelope-Id, a recipient's ORCPT its
 *   Original-Recipient.
 */
#ifndef DSMTP_BOUNCE_H
#define DSMTP_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "dsn.h"

/* The origin prefix of the reports' queue files. */
#define BOUNCE_ORIGIN "bounce "
#define BOUNCE_ORIGIN_DOUBLE "double-bounce "

/* One failed (or, for a delay notice, delayed) recipient. */
struct bounce_rcpt {
    const char *addr;   /* the recipient as given */
    const char *status; /* "5.1.1" */
    const char *diag;   /* why, for a person and the Diagnostic-Code ("user unknown") */
    int attempts;
    int notify;         /* its DSN NOTIFY (dsnparam.h), 0: not given */
    const char *orcpt;  /* its DSN ORCPT (xtext), or NULL */
    const char *remote; /* the server that answered (Remote-MTA), or NULL */
};

/* The message the recipients belong to. */
struct bounce_msg {
    const char *id;     /* its queue or maildrop id */
    const char *sender; /* envelope sender, "" for <> */
    const char *origin; /* its origin (a report's origin says it is one), may be NULL */
    time_t arrival;
    const char *text; /* headers + body, LF line ends */
    size_t len;
    enum dsn_ret ret;  /* its DSN RET */
    const char *envid; /* its DSN ENVID (xtext), or NULL */
    const char *verp;  /* its XVERP delimiters, NULL or "": none */
};

/* bounce_send - queue the report on n failed recipients of m. Returns 1 when a report
 * was queued, 0 when it was dropped on purpose (logged: a failed report, no sysadmin for a
 * double bounce), -1 when composing or writing failed (logged; errno set). */
int bounce_send(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
                size_t n);

/* bounce_delay - queue a delay notice (RFC 3464 Action: delayed) on n recipients of m
 * still pending, retried until retry_until, to the sender only: a message that must not
 * be bounced gets none (nor a double bounce). 1 queued, 0 none due, -1 failed (logged). */
int bounce_delay(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
                 size_t n, time_t retry_until);

/* bounce_success - queue a success report (action DSN_DELIVERED or DSN_RELAYED, status
 * 2.0.0) on those of the n recipients that asked for one; only to the sender, never a
 * double bounce (a message that must not be bounced gets none). 1 queued, 0 none due,
 * -1 failed (logged). */
int bounce_success(const struct conf *cf, const struct bounce_msg *m, const struct bounce_rcpt *r,
                   size_t n, enum dsn_action action);

/* bounce_is_report - the origin is that of a report bounce_send queued. */
bool bounce_is_report(const char *origin);

#endif
