/*
 * maildrop - pickup of spool_dir/maildrop/: messages that sendmail(8) wrote as queue files
 * (qfile format) go to their local recipients like SMTP mail.
 *
 * Contract:
 * - Owns: struct maildrop, its directory watcher, timer and scan job.
 * - Blocks on: nothing on the loop. Scans run on the thread pool, one at a time: at
 *   start-up, when the directory changes (uv_fs_event), and every minute as a safety net.
 * - Per file: recipients from the envelope, plus with QF_RCPT_FROM_HEADERS those of the
 *   To:, Cc: and Bcc: fields (Bcc: fields are then removed). A Received: header "from
 *   local (uid N)" is added. The file becomes one queue file in spool_dir/queue with
 *   every recipient pending (outbound delivery takes it as written when all are remote,
 *   outq_offer), then the maildrop file is removed and the queue runner is kicked: it
 *   delivers at once and records each recipient's progress in the queue file, as for any
 *   queued message. If the queue file cannot be written nothing is delivered and the
 *   maildrop file stays for the next scan: no recipient ever gets a second copy.
 * - Nothing is dropped: the queue runner reports unknown local users, bad addresses,
 *   forwarding loops and mailboxes that refuse for good to the sender (bounce.h) and
 *   hands recipients of other domains to outbound delivery. sendmail itself cannot tell
 *   an unknown user (it does not read the users file), so it never exits 67 for one.
 * - The file's DSN parameters (sendmail -N, -R, -V) go along: into the queue file, into
 *   the reports, and a success report for a local delivery that asked for one
 *   (QF_RCPT_FROM_HEADERS recipients take the file's default NOTIFY).
 */
#ifndef DSMTP_MAILDROP_H
#define DSMTP_MAILDROP_H

#include <stddef.h>

#include "smtpd.h"

struct maildrop;

/* maildrop_new - watch the directory and scan it now. */
struct maildrop *maildrop_new(struct smtpd *d);
/* maildrop_stop - stop; freed when the running scan ends. *m becomes NULL. */
void maildrop_stop(struct maildrop **m);

/* maildrop_header_rcpts - call cb for each address in the To:, Cc: and Bcc: fields of
 * the header of text (LF line ends; header ends at the first empty line). Handles display
 * names, <angle> addresses, comments, quoted strings, groups and folded lines. Returns
 * the number of addresses. */
size_t maildrop_header_rcpts(const char *text, size_t len, void (*cb)(void *arg, const char *addr),
                             void *arg);
/* maildrop_strip_bcc - remove every Bcc: field (with its continuation lines) from the
 * header, in place. Returns the new length. */
size_t maildrop_strip_bcc(char *text, size_t len);

#endif
