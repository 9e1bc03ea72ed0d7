/*
 * extlookup - RCPT and VRFY under authent_method external: the recipient is resolved
 * from the helpers' remembered answers (auth_db_external), and whatever is not known yet
 * -- the recipient, a forward's or a fwd="..." list's local destination -- is asked with
 * `lookup` (extauth.h) on the loop, then the resolution runs again.
 *
 * Contract:
 * - Owns: struct extlookup (s->xlookup), at most one per session.
 * - Blocks on: nothing: the helpers answer through the loop, within authent_timeout.
 * - -ERR remembers "no such user" (550 follows from the resolution); -DEAD, a timeout, a
 *   drop file outside drop_path and mail_spool (logged), or more than EXTLOOKUP_ASKS
 *   questions for one address end in done(..., temp) with the reason: the caller answers
 *   451. The answers are remembered as auth_db_ext_add says.
 * - extlookup_cancel (the session goes): no callback follows.
 */
#ifndef DSMTP_EXTLOOKUP_H
#define DSMTP_EXTLOOKUP_H

#include <stdbool.h>

#include "addr.h"
#include "deliver.h"
#include "smtp_parse.h"

#define EXTLOOKUP_ASKS 10

struct smtp_session;

typedef void (*extlookup_done)(struct smtp_session *s, enum smtp_verb verb, const char *addr,
                               enum deliver_verdict v, struct deliver_route *dr, const char *temp);

/* extlookup_resolve - deliver_route for the command now (true, *v and dr filled), or false
 * when the helpers are asked: done follows (dr is then the callee's to free). */
bool extlookup_resolve(struct smtp_session *s, enum smtp_verb verb, const struct addr *to,
                       const char *addr, struct deliver_route *dr, enum deliver_verdict *v,
                       extlookup_done done);
void extlookup_cancel(struct smtp_session *s);

#endif
