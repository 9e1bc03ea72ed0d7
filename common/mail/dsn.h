/*
 * dsn - compose a delivery status notification (RFC 3464, in the multipart/report of RFC
 * 6522): the bounce, delay notice or success report that outbound delivery sends back to a
 * message's envelope sender, and the test that says whether a message may be bounced.
 *
 * Contract:
 * - Owns: the text of a struct dsn_out (dsn_out_free releases it). Reads its inputs only.
 * - Blocks on: nothing. No I/O, no global state of its own (dates in UTC, gmtime_r and
 *   strftime in the C locale, which the programs never change): any thread, the pool.
 * - The result is a complete message in local form (LF line ends, not dot-stuffed), as a
 *   qfile's text: From "NAME <postmaster>", To "<to>", Subject, Date (m->now), Message-ID,
 *   MIME-Version, Auto-Submitted: auto-replied (RFC 3834), Content-Type multipart/report;
 *   report-type=delivery-status; its parts: text/plain (us-ascii, the explanation for a
 *   person: who failed and why, what happens next for delays), message/delivery-status
 *   (Original-Envelope-Id, Reporting-MTA, Arrival-Date; then per recipient
 *   Original-Recipient, Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *   Last-Attempt-Date, Will-Retry-Until), and text/rfc822-headers or message/rfc822.
 *   The caller queues it with the null sender <> (RFC 3461 6.2, RFC 5321 4.5.5), and picks
 *   the recipients a report is about by their NOTIFY (RFC 3461 4.1): this only writes.
 * - Subject: "Undelivered Mail Returned to Sender" when any recipient failed, else "Delayed
 *   Mail (still being retried)" when any is delayed, else "Successful Mail Delivery Report".
 * - What is returned: a report without a failed recipient returns the headers only (RFC
 *   3461 4.3). With a failure, RET=FULL returns the whole message and RET=HDRS the headers;
 *   without RET the bounce_body setting decides (true: whole message).
 * - Values: every value put into the report is cleaned first: CR, LF, NUL, TAB and other
 *   control bytes become spaces, runs of spaces one, bytes over 127 '?' (the report is
 *   us-ascii; SMTPUTF8's message/global-delivery-status of RFC 6533 is not made), so a
 *   remote server's reply cannot add a header or a MIME part. ENVID and ORCPT are given as
 *   received (xtext, RFC 3461 4) and written decoded. A diagnostic longer than
 *   DSN_DIAG_MAX octets is cut there ("..." marks the cut). Header fields are folded at
 *   spaces near 78 columns; a run without a space that would pass DSN_LINE_MAX is broken
 *   with a fold (it then reads back with one space more).
 * - Lines: no line of the result exceeds DSN_LINE_MAX octets (the LF not counted). In the
 *   returned copy of the original, a longer line is cut at DSN_LINE_MAX and NUL and CR
 *   bytes are dropped; nothing else of it changes.
 * - 8-bit: when the returned part (headers or whole message) has bytes over 127 it and the
 *   enclosing multipart are labelled Content-Transfer-Encoding: 8bit and out->eightbit is
 *   set: the caller must send the report with BODY=8BITMIME, and to a server without
 *   8BITMIME compose again with ret DSN_RET_HDRS (headers with 8-bit bytes then still
 *   need it; RFC 6152 leaves the choice of bouncing or downgrading to the sender).
 * - The MIME boundary is "dsn=_ID/NOW" (ID the caller's id reduced to [A-Za-z0-9._-],
 *   NOW m->now), with "/N" added until it occurs in no part: the original cannot end a
 *   part early by containing it.
 * - Double bounce: a report on a message that must not be bounced (dsn_bounceable) is the
 *   same composition addressed to the administrator (to = sysadmin, orig_sender = the
 *   original envelope sender, "" for <>); whether to send one or drop is the caller's
 *   decision.
 */
#ifndef DMAIL_DSN_H
#define DMAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DSN_LINE_MAX 998  /* octets in a line, the LF not counted (RFC 5322 2.1.1) */
#define DSN_DIAG_MAX 4000 /* octets kept of one diagnostic text */
#define DSN_FROM_NAME "Mail Delivery System"

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

enum dsn_ret { DSN_RET_UNSET, DSN_RET_HDRS, DSN_RET_FULL }; /* MAIL FROM's RET (RFC 3461) */

struct dsn_rcpt {
    const char *final_rcpt; /* the address tried, "user@example.org" ("rfc822;" is added) */
    const char *orcpt;      /* RCPT's ORCPT as received ("rfc822;a+2Bb@x"), or NULL */
    enum dsn_action action;
    const char *status;     /* "5.1.1": class 2, 4 or 5, then 1-3 digits twice */
    const char *remote_mta; /* the host that answered ("dns;" is added), or NULL */
    const char *diagnostic; /* "smtp; 550 5.1.1 <x@y>: no such user", or NULL */
    time_t last_attempt;    /* 0: none */
    time_t retry_until;     /* DSN_DELAYED: when the queue gives up; 0: not said */
};

struct dsn_msg {
    const char *hostname;    /* the reporting MTA, a domain name */
    const char *postmaster;  /* From address, "MAILER-DAEMON@host" */
    const char *from_name;   /* From display name; NULL: DSN_FROM_NAME */
    const char *to;          /* the original envelope sender, or the admin (double bounce) */
    const char *orig_sender; /* the original envelope sender when to is not it, else NULL */
    const char *envid;       /* MAIL FROM's ENVID as received (xtext), or NULL */
    enum dsn_ret ret;
    bool bounce_body;       /* without RET: return the whole message (true) or its headers */
    time_t arrival;         /* when the original was received */
    time_t now;             /* Date: of the report */
    const char *message_id; /* "<x@y>" or "x@y"; NULL: "<dsn.ID@HOSTNAME>" */
    const char *id;         /* unique: the queue id of the original; for Message-ID, boundary */
    const struct dsn_rcpt *rcpt;
    size_t nrcpt;
    const char *text; /* the original: headers + body, LF line ends */
    size_t text_len;
};

enum dsn_part3 { DSN_RETURNED_HEADERS, DSN_RETURNED_FULL };

struct dsn_out {
    char *text; /* the report, NUL-terminated; free with dsn_out_free */
    size_t len;
    bool eightbit;           /* the report holds 8-bit bytes: send with BODY=8BITMIME */
    enum dsn_part3 returned; /* what the third part holds */
};

/* dsn_compose - the report for m into out. 0, or -1 with a reason in err when m is not
 * usable (no recipient, a required field missing or empty, a status not of the form x.y.z,
 * an unknown action); out is then untouched. */
int dsn_compose(const struct dsn_msg *m, struct dsn_out *out, char *err, size_t errlen);
void dsn_out_free(struct dsn_out *out);

enum dsn_bounce {
    DSN_BOUNCE_OK,      /* bounce to the envelope sender */
    DSN_NULL_SENDER,    /* the sender is <>: never bounce to it (RFC 5321 4.5.5) */
    DSN_IS_REPORT,      /* the message is itself a delivery-status report */
    DSN_AUTO_SUBMITTED, /* Auto-Submitted other than "no" (RFC 3834) */
};

/* dsn_bounceable - may a report on the message (envelope sender, text with LF ends) go to
 * its sender? Anything but DSN_BOUNCE_OK is a loop risk: the caller decides between a
 * double bounce to the admin and dropping the report (RFC 5321 still wants a bounce to a
 * non-null sender, so DSN_IS_REPORT and DSN_AUTO_SUBMITTED are advice). */
enum dsn_bounce dsn_bounceable(const char *sender, const char *text, size_t len);
/* dsn_bounce_text - "null sender", "delivery report", "auto-submitted" or "" for logs. */
const char *dsn_bounce_text(enum dsn_bounce b);
/* dsn_action_name - "failed", "delayed", "delivered", "relayed", "expanded"; NULL if
 * unknown. */
const char *dsn_action_name(enum dsn_action a);

#endif
