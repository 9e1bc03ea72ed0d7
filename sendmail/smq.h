/*
 * smq - mailq (sendmail -bp): list spool_dir/queue/ and spool_dir/maildrop/.
 *
 * Contract:
 * - Owns: nothing that outlives smq_list.
 * - Blocks on: directory and file reads (command-line tool only). The directories are
 *   read with sendmail's group privilege raised (smdrop), as Postfix's mailq shows every
 *   user the whole queue; only envelope data (id, size, arrival, sender, recipients, last
 *   error) is printed, never message text.
 * - Output follows Postfix's mailq: a heading, one block per message (recipients already
 *   delivered are left out), a "-- N Kbytes in M Requests." footer; "Mail queue is empty"
 *   when there is nothing. Files that do not parse are listed with the reason.
 */
#ifndef DMAIL_SMQ_H
#define DMAIL_SMQ_H

#include <stdio.h>

struct smdrop;

/* smq_list - print the listing to out, problems to errout. Returns a sysexits code: 0, or
 * EX_NOPERM / EX_OSERR when a directory could not be read (what could be read is still
 * printed). A missing directory is not an error (nothing queued there). */
int smq_list(struct smdrop *d, const char *spool_dir, FILE *out, FILE *errout);

#endif
