/*
 * dotfwd - per-user forward files, read when a message is delivered (as Postfix's
 * local(8) does), not when its RCPT came: `~/.forward` under authent_method unix_user with
 * no_dotforward false (the account found and with a home directory), else `<dropfile>.fwd`
 * next to the user's drop file (DMail's).
 *
 * Contract:
 * - Owns: struct dotfwd (dotfwd_free) and, for a call of dotfwd_deliver, the queue file it
 *   writes for the forwarded copies.
 * - Blocks on: everything (getpwnam_r, open, read, the programs and files of lda.h, the
 *   queue file): the thread pool only -- the delivery work of deliver.c (one pool round
 *   trip per message, not per recipient) and the queue runner.
 * - Which recipients: a local mailbox reached by the address itself -- not through a
 *   `forward` line, an alias or an external helper's fwd= list (those win, REFERENCE
 *   5.2), except one that keeps the user's own copy ($user, or the alias's own address);
 *   never the list spool.
 * - Checks (Postfix's): the file is opened without following a symbolic link and must be a
 *   regular file of at most DOTFWD_MAX bytes, owned by its user (the Unix account for
 *   ~/.forward; dsmtp's run_as, which owns the drop files, for a .fwd) or by root, and not
 *   world-writable; otherwise it is ignored (a warning is logged) and the mail goes to the
 *   mailbox. A group-writable file is honoured for addresses, but its programs and files
 *   are refused. An unreadable file (EACCES: dsmtp reads it as run_as) is ignored the same
 *   way; another read error defers the recipient.
 * - Format: '#' opens a comment line, blank lines are skipped, destinations are separated
 *   by commas or newlines: an address (a bare name: of the recipient's domain), `\user`
 *   or `$user` or the recipient's own address (keep a copy in the mailbox), `|command`,
 *   `/path/file` (quote them, "|cmd, arg", when they hold commas). A file with no
 *   destination leaves the mail in the mailbox.
 * - Delivery: the addresses get one copy, with "Delivered-To: RECIPIENT" first, in a new
 *   queue file (fsynced; offered at once to outbound delivery when all are remote, local
 *   ones go at the next queue scan); programs and files go through lda.h, each only if
 *   allow_mail_to_commands / allow_mail_to_files holds "forward" and dsmtp can run it as
 *   the file's user: always for a .fwd (run_as's own file); for ~/.forward of another
 *   account, a program through the root helper (ldapriv.h: dsmtp started as root), a file
 *   never (refused with the reason: a program such as procmail writes it as the user).
 *   A message that already holds "Delivered-To: RECIPIENT" is a forwarding loop: refused for
 *   good, status 5.4.6. The recipient's result is the worst of its destinations (for now,
 *   then for good, then delivered); when it is not delivered, the whole recipient is
 *   retried or reported, as Postfix does (a retry may repeat copies already made: at least
 *   once, never lost).
 */
#ifndef DSMTP_DOTFWD_H
#define DSMTP_DOTFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "deliver.h"
#include "drop.h"

#define DOTFWD_MAX 65536 /* largest forward file read */

enum dotfwd_kind { DOTFWD_SELF, DOTFWD_ADDR, DOTFWD_PROGRAM, DOTFWD_FILE };

struct dotfwd_ent {
    enum dotfwd_kind kind;
    char *s; /* the address (canonical), command or path */
};

struct dotfwd {
    char path[4200];  /* the file */
    char user[300];   /* USER of its programs */
    char home[4200];  /* HOME and cwd of its programs */
    const char *deny; /* NULL, or why its programs and files are refused */
    bool priv;        /* its programs start as its user through ldapriv.h */
    size_t n;
    struct dotfwd_ent *e;
};

/* dotfwd_read - blocking: the forward file of the recipient rcpt whose drop file is
 * mailbox, into f. 1 read, 0 none (or ignored: logged), -1 a read error (reason in err). */
int dotfwd_read(const struct conf *cf, const char *rcpt, const char *mailbox, struct dotfwd *f,
                char *err, size_t errlen);
void dotfwd_free(struct dotfwd *f);

/* dotfwd_has_program - f names a program (its recipient's delivery goes to ldaq.h). */
bool dotfwd_has_program(const struct dotfwd *f);

/* The message a forward file applies to. */
struct dotfwd_msg {
    const char *id, *rcpt, *sender, *origin;
    const char *text; /* headers + body, LF line ends */
    size_t len;
    time_t arrival;
    int notify;        /* the recipient's DSN NOTIFY (0: none) */
    const char *orcpt; /* its ORCPT, or NULL */
    const struct deliver_dsn *dsn;
};

/* dotfwd_deliver - blocking: m to the destinations of f (see the contract); *keep: the
 * mailbox gets its copy too (deliver it when the result is DROP_OK). status: RFC 3463 of a
 * failure; err its reason. oq (may be NULL) takes remote copies at once. */
struct outq;
enum drop_result dotfwd_deliver(const struct conf *cf, const struct dotfwd *f,
                                const struct dotfwd_msg *m, struct outq *oq, bool *keep,
                                const char **status, char *err, size_t errlen);

/* dotfwd_alias_lda - blocking: m (m->rcpt the alias) to an alias file's program or file
 * lda ("|command" or "/path"): through lda.h when allow_mail_to_commands /
 * allow_mail_to_files holds "alias", as dsmtp's run_as user, HOME "/", USER the alias's
 * local part; else refused for good (5.7.1). status and err as for dotfwd_deliver. */
enum drop_result dotfwd_alias_lda(const struct conf *cf, const char *lda,
                                  const struct dotfwd_msg *m, const char **status, char *err,
                                  size_t errlen);

#endif
