/*
 * smtpout - the outbox (outbox.h) handed to dsmtp over SMTP: dlist_smtp_host (HOST or
 * HOST:PORT; without a port dsmtp's smtp_port; "localhost" is 127.0.0.1), one connection
 * per batch, one transaction per outbox file with every recipient (pipelined), MAIL ...
 * XVERP when the file asks for it and dsmtp announces XVERP (smtpc.h). A file naming its
 * list (outbox.h "L") gets each recipient's List-Unsubscribe fields (unsub_xheader: the
 * one-click URL) as RCPT ... XHEADER= when the server announces XHEADER and XVERP and the
 * file asks for XVERP, made while RCPT is written; else the shared mailto field
 * (unsub_mailto) goes above every copy (smtpc's head).
 *
 * Contract:
 * - Owns: one batch at a time (smtpout_run while one runs only marks "again").
 * - Blocks on: nothing on the loop: outbox files are read and removed on the pool.
 * - A file is removed only after dsmtp answered the end of DATA (2xx for some recipients,
 *   5xx for the others: those are logged and dropped); recipients refused with 4xx stay
 *   in the file (rewritten, atomically) for the next batch, until the file is older than
 *   queue_lifetime (then they are logged and dropped); a failed connection leaves
 *   every file for the next scan.
 * - A kill -9 between dsmtp's 250 and the removal sends that one transaction again on the
 *   next start (the same Message-ID): the only duplicate window, documented in dlist.8.
 */
#ifndef DLIST_SMTPOUT_H
#define DLIST_SMTPOUT_H

#include <stddef.h>

struct server;

/* smtpout_run - send the outbox files names (n of them, taken: malloc'd, freed here). */
void smtpout_run(struct server *srv, char **names, size_t n);

/* smtpout_busy - a batch is running. */
int smtpout_busy(void);

/* smtpout_stop - abort the running batch (its files stay for the next start). */
void smtpout_stop(void);

#endif
