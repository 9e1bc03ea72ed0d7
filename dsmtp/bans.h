/*
 * bans - the ban lists of dmail.conf at the stage each applies to: ban_ip (less
 * ban_ip_except) at connect, ban_mailfrom at MAIL, ban_rcptto at RCPT.
 *
 * Contract:
 * - Owns: nothing; reads the session's own snapshot (s->base.cf), so a reload applies to
 *   the sessions that start after it.
 * - Blocks on: nothing (list matching only).
 * - Each bans_* call that finds a ban writes the reply (554 5.7.1 at connect and closes the
 *   session; 550 5.7.1 at MAIL and RCPT), logs the rule that matched, and returns true.
 */
#ifndef DSMTP_BANS_H
#define DSMTP_BANS_H

#include <stdbool.h>

#include "session.h"

/* bans_connect - the client's address is banned: 554 and close. */
bool bans_connect(struct smtp_session *s);
/* bans_mail - the envelope sender (formatted, "" for <>) is banned: 550. */
bool bans_mail(struct smtp_session *s, const char *sender);
/* bans_rcpt - the recipient (formatted, as given) is banned: 550. */
bool bans_rcpt(struct smtp_session *s, const char *rcpt);

#endif
