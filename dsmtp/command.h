/*
 * command - the SMTP command table and each command's check and proceed steps
 * (STYLE 9.3), plus the start and end of a message (DATA; BDAT in chunk.c uses them).
 *
 * Contract:
 * - Owns: nothing; works on the struct smtp_session it is given.
 * - Blocks on: nothing. The end of DATA hands the message to the content filters
 *   (milter.h) and then to deliver.c, and the session waits for their answers; the
 *   connect, HELO/EHLO, MAIL, RCPT and DATA stages wait for the filters too.
 * - Every command writes exactly one reply (maybe multi-line) with session_reply, either
 *   before returning or, when it went async (session_go_async), before
 *   session_async_done.
 */
#ifndef DSMTP_COMMAND_H
#define DSMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "session.h"

#define COMMAND_ADDR_MAX (ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8)
/* the most RCPTs dlist on this host may give in one transaction (a list's members) */
#define COMMAND_DLIST_RCPTS_MAX 100000u

/* command_greeting - the 220 banner (or 421 when shutting down). */
void command_greeting(struct smtp_session *s);
/* command_banner - the filters' connect stage (milter.h), then the 220 (rbl.c calls it
 * once the DNSBL answers are in); true when the session waits for the filters. */
bool command_banner(struct smtp_session *s);
/* command_dispatch - one command line (terminator removed, NUL-terminated). */
void command_dispatch(struct smtp_session *s, char *line, size_t len,
                      const struct buf_lineinfo *info);
/* command_lookup_cancel - the session goes away: a RCPT/VRFY lookup still running on the
 * pool (authent_method unix_user) will not answer into it. */
void command_lookup_cancel(struct smtp_session *s);
/* command_rcpt_wait_free - the session is gone while a RCPT waited for the filters. */
void command_rcpt_wait_free(struct smtp_session *s);
/* command_tx_add - the destinations of route dr (taken over) into the transaction, with
 * DSN NOTIFY and ORCPT (NULL: none; a forward's destination gets addr as its ORCPT) and
 * the recipient's own header fields (XHEADER, xheader.h; NULL or "": none). */
struct deliver_route;
void command_tx_add(struct smtp_session *s, const char *addr, struct deliver_route *dr, int notify,
                    const char *orcpt, const char *xheader);
/* command_data_begin - a message starts (DATA or the first BDAT chunk): tx->id, the
 * Received: header, the scanner (tx->rx). */
void command_data_begin(struct smtp_session *s);
/* command_data_end - the whole message is in (tx->rx.done): refuse it (the transaction
 * ends) or hand it to delivery (the session waits; the reply comes from there). */
void command_data_end(struct smtp_session *s);
/* command_data_refuse - the reply and log line for DATA_ERR_* errors; the transaction is
 * left as it is. */
void command_data_refuse(struct smtp_session *s, int errors);
/* command_data_input - DATA bytes; returns how many were consumed. At the terminator the
 * session leaves SS_DATA and the message goes to delivery. */
size_t command_data_input(struct smtp_session *s, const char *p, size_t n);

#endif
