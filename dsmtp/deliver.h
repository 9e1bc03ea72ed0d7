/*
 * deliver - where a recipient goes, and durable local delivery of one message to its
 * recipients: each mailbox through its per-mailbox queue (mboxq, group commit), mailboxes
 * in parallel on the thread pool, temporary failures into one queue file, one answer on
 * the loop when everything is on disk.
 *
 * Contract:
 * - Owns: struct deliver_batch, including the message text handed to deliver_new (it is
 *   freed when the last job ends, whether or not anybody still waits for the answer).
 * - Blocks on: deliver_resolve only reads memory -- except under authent_method unix_user,
 *   where a user not found before costs a getpwnam_r (NSS: maybe the network), so the
 *   loop uses deliver_route_cached and on a miss runs deliver_route on the pool (SMTP
 *   RCPT/VRFY; the queue runner and the pickup already run it there). deliver_one and
 *   deliver_queue_write block (file I/O, fsync): thread pool only. deliver_run hands each
 *   mailbox delivery to mboxq_submit (which runs it with uv_queue_work), queues the
 *   temporary failures and reports the permanent ones (bounce_send) with uv_queue_work
 *   and calls cb on the loop.
 * - Group commit: a delivery to a mailbox that already has one running in this dsmtp waits
 *   in memory and goes, with the others that waited meanwhile, in the next batch for that
 *   mailbox: one lock, each message appended as deliver_one would, one fsync (see mboxq.h,
 *   drop_deliver_many). Each recipient still gets its own result: a message that does not
 *   fit (mailbox full, EFBIG, ...) fails alone and is queued; the others of its batch stay.
 *   cb runs only after the fsync of every batch that holds one of the message's copies.
 * - Recipient kinds: a host_domain address whose user is in the users file is local.
 *   The role addresses postmaster, root, MAILER-DAEMON and abuse (any case) @ any local
 *   domain (and <postmaster>) are always accepted: a user of that name has them; else
 *   they go to `sysadmin` -- a users-file user ("user" or "user@localdomain"), or an
 *   address of another domain, relayed (DK_RELAY, t->addr) -- or when sysadmin is unset
 *   to the users-file user "postmaster"; if none of these exists the message is queued
 *   for the role address with an error and retried (a config fix or a new user makes it
 *   deliverable) until queue_lifetime. Other local addresses are unknown; any other
 *   domain is remote: relayed when the client may relay (command.c), else refused.
 * - List addresses (lists.h: LIST, LIST-request, LIST-owner, LIST-bounces[+X] at
 *   dlist_domain, a host_domain or not) are local, whatever users exist: their "mailbox" is
 *   the maildir spool_dir/dlist/LIST/ROLE (file written, fsynced, linked into new/ before
 *   the 250), which dlist picks up (DESIGN 4 "List spool"). Forwards still come first.
 * - Forwards (dmail.conf `forward`, common/route.h) come first: deliver_route expands a
 *   recipient through them and resolves every final address with deliver_resolve; a
 *   destination of another domain is relayed (a destination with relay set). The SMTP
 *   RCPT, the sendmail pickup and the queue runner all go through it.
 * - Forward files and programs (dotfwd.h, lda.h): before the mailboxes, one pool job per
 *   message reads the forward file of each recipient marked with deliver_set_dotfwd and
 *   does what it says, and runs the alias-file programs and files of those marked with
 *   deliver_set_lda; a recipient they settle (no copy kept, or a failure) gets no mailbox
 *   job. A program holds that job (and cb) until it ends, at most command_time_limit.
 * - Identical mailboxes among the recipients of one message are delivered once.
 * - Outcome: every recipient is in its mailbox (fsynced), in the queue file (fsynced),
 *   or -- a mailbox that refused for good (DROP_PERM) while another recipient was taken --
 *   in a report to the sender (bounce.h; when that report cannot be queued, the recipient
 *   is queued instead and the queue runner reports it) when cb reports ok. When every
 *   recipient failed for good nothing is reported: the caller refuses the message.
 *   qfile_failed means the temporary failures could not even be queued (the caller
 *   answers 452 4.3.1: recipients already delivered keep their copy, so a retry by the
 *   client can duplicate them -- accepted, as in sendmail).
 * - VERP (XVERP, dsn->verp): each mailbox gets the message with the Return-Path of its
 *   recipient's VERP sender (addr_verp), the queue file keeps the delimiters, a report
 *   on a recipient goes to that recipient's VERP sender (bounce.h).
 * - DSN (RFC 3461): the message's RET/ENVID and each recipient's NOTIFY/ORCPT go into the
 *   queue file with the recipients queued; recipients delivered into their mailbox that
 *   asked for NOTIFY=SUCCESS get a success report (bounce_success) queued on the pool
 *   before cb runs (a report that cannot be queued is logged; the delivery stands).
 */
#ifndef DSMTP_DELIVER_H
#define DSMTP_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "addr.h"
#include "auth.h"
#include "conf.h"
#include "drop.h"
#include "qfile.h"
#include "route.h"

enum deliver_kind {
    DK_LOCAL,      /* mailbox set */
    DK_POSTMASTER, /* a role address with no mailbox now: queue it */
    DK_RELAY,      /* a role address, sysadmin of another domain: relay to addr */
    DK_UNKNOWN,    /* local domain, no such user */
    DK_REMOTE,     /* not one of our domains */
};

#define DELIVER_ADDR_MAX (ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8)
/* room for a VERP sender (addr_verp): a sender with a whole recipient in its local part */
#define DELIVER_VERP_MAX (DELIVER_ADDR_MAX * 2 + 8)

struct deliver_target {
    enum deliver_kind kind;
    char mailbox[4096];              /* the dropfile path (DK_LOCAL) */
    char user[300];                  /* "user" or "user@domain" of the users file (DK_LOCAL) */
    char addr[DELIVER_ADDR_MAX + 1]; /* DK_RELAY: the sysadmin address */
    char fwd[1024];  /* DK_LOCAL, authent_method external: the helper's fwd="..." list */
    bool unanswered; /* not found because an external helper gave no answer (retry later) */
};

/* The list spool, under spool_dir: LIST/ROLE maildirs (ROLE post, request, owner,
 * bounces) of the lists of lists.dat (lists.h), written by dsmtp, read by dlist. */
#define DELIVER_LIST_DIR "dlist"

/* deliver_is_list_spool - mailbox is in the list spool. */
bool deliver_is_list_spool(const struct conf *cf, const char *mailbox);
/* deliver_format - the format of mailbox (MBOX_FORMAT_*): maildir for the list spool, else
 * mailbox_format; *drop_max its limit (0: none, for the list spool). */
int deliver_format(const struct conf *cf, const char *mailbox, unsigned long long *drop_max);

/* deliver_is_role - local is one of the role addresses (postmaster, root, MAILER-DAEMON,
 * abuse; any case) that a local domain always accepts. */
bool deliver_is_role(const char *local);

/* deliver_resolve - classify local@domain (domain already an A-label, any case; local
 * unquoted). db may be NULL (no users). */
enum deliver_kind deliver_resolve(const struct conf *cf, const struct auth_db *db,
                                  const char *local, const char *domain, struct deliver_target *t);

/* What a recipient comes to after forwards. */
enum deliver_verdict {
    DV_OK,      /* every final address resolved: dest[0..n) */
    DV_UNKNOWN, /* a local address without a user: the recipient, or a destination (why) */
    DV_REMOTE,  /* not a local domain and not forwarded: relayed only if the client may */
    DV_LOOP,    /* the forwards loop, nest too deep or expand too wide (fwd says which) */
};

/* One mailbox a recipient goes to. */
struct deliver_dest {
    char *addr;    /* the recipient itself, a forward's destination (canonical), or sysadmin */
    char *mailbox; /* the dropfile; NULL: queue it (relay, or a role address without one) */
    bool relay;    /* of another domain: queued for outbound delivery */
    char *lda;     /* an alias file's "|command" or "/path" (addr: the recipient), or NULL */
};

struct deliver_route {
    enum deliver_verdict verdict;
    enum route_status fwd; /* ROUTE_NONE: no forward applied */
    size_t n;
    struct deliver_dest *dest;
    char why[400]; /* DV_UNKNOWN: the (destination's) address; DV_REMOTE: the recipient's;
                      DV_LOOP: the chain */
};

/* deliver_route_relay - turn a DV_REMOTE route (r->why: the address) into a relay: one
 * destination with relay set, verdict DV_OK. */
void deliver_route_relay(struct deliver_route *r);

/* deliver_route - expand the recipient a through the forwards of cf, then classify every
 * final address (deliver_resolve). Fills r (free it with deliver_route_free) and returns
 * r->verdict. Only reads memory. */
enum deliver_verdict deliver_route(const struct conf *cf, const struct auth_db *db,
                                   const struct addr *a, struct deliver_route *r);
/* deliver_route_cached - deliver_route that never blocks: the user lookups answer only
 * from what needs no lookup (auth_db_find_cached). *miss tells whether some address would
 * have needed one (a Unix account not found yet); then r (filled as by deliver_route, free
 * it as usual) is not the answer and deliver_route must run where it may block (the pool).
 * Without a miss r is exactly what deliver_route gives. */
enum deliver_verdict deliver_route_cached(const struct conf *cf, const struct auth_db *db,
                                          const struct addr *a, struct deliver_route *r,
                                          bool *miss);
void deliver_route_free(struct deliver_route *r);

/* deliver_node - the name in dotlocks and UIDs into buf: lock_id, else the host name
 * ("localhost" if it has none). Any thread. */
void deliver_node(const struct conf *cf, char *buf, size_t len);

/* deliver_one - blocking: append text (headers + body, LF ends) with a Return-Path:
 * header for sender and head (the recipient's own fields, LF-ended; NULL: none) above it
 * to mailbox. err gets a reason on failure. */
enum drop_result deliver_one(const struct conf *cf, const char *mailbox, const char *sender,
                             const char *head, const char *text, size_t len, char *err,
                             size_t errlen);

/* One recipient's entry in a queue file still to be written. */
/* Why a recipient of another domain stays in the queue: outbound delivery sends it; until
 * it exists here, queue_lifetime ends with a report to the sender. */
#define DELIVER_NOT_LOCAL "not a local domain: kept for outbound delivery"

struct deliver_qrcpt {
    const char *addr;
    int attempts;
    const char *last_error;
    int notify;          /* DSN NOTIFY, 0: not given */
    const char *orcpt;   /* DSN ORCPT (xtext), or NULL */
    bool due_now;        /* tried at once whatever attempts says (program deliveries: ldaq.h) */
    const char *xheader; /* its own header fields (XHEADER, xheader.h), or NULL */
};

/* A message's DSN parameters (RFC 3461) that go into its queue file. */
struct deliver_dsn {
    enum dsn_ret ret;
    const char *envid; /* xtext, or NULL */
    bool requiretls;   /* REQUIRETLS (RFC 8689): QF_REQUIRETLS in the queue file */
    const char *verp;  /* XVERP delimiters (addr_verp), NULL or "": no VERP */
};

/* deliver_queue_write - blocking: write a queue file with id (may be "" for a fresh
 * one), sender, origin, DSN parameters (NULL: none), the given pending recipients (next
 * try after queue_retry) and the text into spool_dir/queue. With oq, a file whose due
 * recipients are all remote is offered to outbound delivery at once (outq_offer), with
 * no queue scan. 0 written, 1 written and offered, or -1 with errno. */
struct outq;
int deliver_queue_write(const struct conf *cf, const char *id, const char *sender,
                        const char *origin, const struct deliver_dsn *dsn, time_t arrival,
                        const struct deliver_qrcpt *r, size_t n, const char *text, size_t len,
                        struct outq *oq);

/* deliver_queue_save - blocking: write q (atomically, fsynced) into spool/queue through
 * spool/tmp. 0 or -1 with errno. */
int deliver_queue_save(const char *spool, struct qfile *q);
/* deliver_queue_settle - blocking, after a pass over the queue file at path: removed
 * (its directory fsynced) when no recipient is pending any more, else rewritten when
 * changed; failures logged. */
void deliver_queue_settle(const char *spool, struct qfile *q, const char *path, bool changed);

/* deliver_next_try - when to try again after attempts failures: queue_retry doubled per
 * attempt, at most max(1 hour, queue_retry). */
time_t deliver_next_try(const struct conf *cf, time_t now, int attempts);

/* Why a role address waits in the queue (deliver_add's why for a mailbox-less one). */
#define DELIVER_NO_ROLE_MAILBOX "no mailbox for postmaster (set sysadmin)"

struct deliver_outcome {
    int delivered;     /* distinct mailboxes written */
    int queued;        /* recipients put into the queue */
    int failed;        /* recipients refused for good (DROP_PERM) */
    int bounced;       /* of those, reported to the sender (a report queued) */
    bool qfile_failed; /* the queue file could not be written */
    bool offered;      /* the queue file went to outbound delivery (outq_offer) */
    const char *id;
};

struct deliver_batch;
typedef void (*deliver_cb)(void *arg, const struct deliver_outcome *o);

/* deliver_new - a batch for one message. text (malloc'd) is taken over. cf is
 * referenced. dsn (copied) may be NULL. */
struct deliver_batch *deliver_new(struct conf *cf, const char *id, const char *sender,
                                  const char *origin, const struct deliver_dsn *dsn, char *text,
                                  size_t len);
/* deliver_add - a recipient: addr as it goes into the queue file, mailbox NULL when it
 * cannot be delivered now (queued straight away with reason why); its DSN NOTIFY and
 * ORCPT (NULL: none; copied). */
void deliver_add(struct deliver_batch *b, const char *addr, const char *mailbox, const char *why,
                 int notify, const char *orcpt);
/* deliver_set_dotfwd - the recipient added last has its user's forward file read at
 * delivery (dotfwd.h): its mailbox was reached by the address itself (not the list spool). */
void deliver_set_dotfwd(struct deliver_batch *b);
/* deliver_set_xheader - the recipient added last gets header fields of its own at the top
 * of its copy (XHEADER: xtext, xheader.h; copied; NULL or "": none). */
void deliver_set_xheader(struct deliver_batch *b, const char *xheader);
/* deliver_set_lda - the recipient added last (mailbox NULL) goes to an alias file's
 * "|command" or "/path" lda (deliver_dest), run by the local delivery agent (dotfwd.h). */
void deliver_set_lda(struct deliver_batch *b, const char *lda);
/* deliver_run - start; cb(arg, outcome) runs on the loop when all is done. *counter
 * (may be NULL) is incremented now and decremented when the batch is freed. */
void deliver_run(uv_loop_t *loop, struct deliver_batch *b, long *counter, deliver_cb cb, void *arg);
/* deliver_offer_to - before deliver_run: the queue file (if any) is offered to oq. */
void deliver_offer_to(struct deliver_batch *b, struct outq *oq);
/* deliver_detach - nobody waits any more: cb is not called; the work finishes. */
void deliver_detach(struct deliver_batch *b);

#endif
