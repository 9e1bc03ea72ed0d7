/*
 * bulletin - DMail's bulletins (REFERENCE 4.4): each file bulletin_path/NNN.txt is put
 * once into every user's mailbox, as a message from bulletin_from, when the user logs in.
 *
 * Contract:
 * - Blocks on: everything (directory listing, file reads, drop_deliver, the state file):
 *   run on the thread pool, before the mailbox snapshot is taken.
 * - Bulletins are files whose name is a decimal number followed by ".txt" (up to 9
 *   digits), delivered in increasing order. A file that starts with header lines (up to an
 *   empty line) gives its own headers (Subject: and so on); From:, To:, Date:,
 *   Message-ID: and MIME-Version: are added when missing. Otherwise the whole file is the
 *   body, with "Subject: Bulletin NNN" and a text/plain UTF-8 header.
 * - Per user, state_dir/XX/<sha256(login)> holds the number of the last bulletin
 *   delivered (written atomically after each one). A user without that file is new: with
 *   hide_old_bulls the existing bulletins are marked as seen without being delivered
 *   (DMail: "new users do not see bulletins older than their account").
 * - Delivery goes through drop_deliver (same locks, X-UIDL, mboxrd quoting) without a
 *   quota. A failure stops at that bulletin; the next login tries again.
 */
#ifndef DPOP_BULLETIN_H
#define DPOP_BULLETIN_H

#include <stdbool.h>
#include <stddef.h>

#define BULLETIN_MAX_SIZE (1024 * 1024) /* a bigger bulletin file is skipped */

struct bulletin_params {
    const char *dir;         /* bulletin_path */
    const char *from;        /* bulletin_from ("" = Email System Administrator) */
    const char *main_domain; /* for postmaster@ and Message-ID */
    bool hide_old;           /* hide_old_bulls */
    const char *state_dir;   /* work_path/dpop/bulletins */
    const char *login;       /* user or user@domain */
    const char *mailbox;     /* the user's mailbox */
    int format;              /* MBOX_FORMAT_* */
    long lock_timeout;
    const char *node; /* lock_id or hostname */
};

/* bulletin_deliver - deliver the bulletins the user has not had yet. Returns how many
 * were delivered, or -1 with err (those before the failure stay delivered). */
int bulletin_deliver(const struct bulletin_params *p, char *err, size_t errlen);

/* bulletin_compose - the message for bulletin number n with file text (local form, LF)
 * into a malloc'd string; *sender gets the envelope sender (postmaster@main_domain). */
char *bulletin_compose(const struct bulletin_params *p, unsigned long n, const char *text,
                       size_t len, long mtime, char *sender, size_t senderlen);

#endif
