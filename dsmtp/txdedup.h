/*
 * txdedup - dsmtp's short memory of the transactions dlist hands it, so that dlist's
 * resend of a transaction it could not see acknowledged (killed between the final dot and
 * reading the 250: RFC 1047's duplicate window) is not delivered twice.
 *
 * Contract:
 * - Owns: a table of at most TXDEDUP_MAX ENVIDs (oldest replaced), in memory only.
 * - Blocks on: nothing; the loop only.
 * - Applies to a transaction whose ENVID (RFC 3461) begins "dlist-" from a loopback
 *   client or one of forward_from_ip (txdedup_applies); dlist makes one unique ENVID per
 *   outbox file and sends it again unchanged with a resend.
 * - txdedup_begin at the end of the message: TXDEDUP_NEW (now in flight: deliver it),
 *   TXDEDUP_DONE (delivered within TXDEDUP_TTL: answer 250, deliver nothing),
 *   TXDEDUP_BUSY (the first copy is still being delivered: answer 4xx, the client
 *   retries). txdedup_end after the delivery's answer: done (any recipient accepted) or
 *   forgotten (refused: a resend is delivered). An entry in flight longer than
 *   TXDEDUP_TTL (held as a bomb, never answered) counts as new.
 * - A dsmtp restart forgets the table: a resend after both died is delivered again.
 */
#ifndef DSMTP_TXDEDUP_H
#define DSMTP_TXDEDUP_H

#include <stdbool.h>
#include <time.h>

#define TXDEDUP_MAX 4096
#define TXDEDUP_TTL 86400 /* seconds */
#define TXDEDUP_PREFIX "dlist-"

struct smtp_session;

enum txdedup_state { TXDEDUP_NEW, TXDEDUP_DONE, TXDEDUP_BUSY };

/* txdedup_applies - the session's transaction is one of dlist's (see above). */
bool txdedup_applies(const struct smtp_session *s);

/* txdedup_begin - envid's state at now; NEW marks it in flight. */
enum txdedup_state txdedup_begin(const char *envid, time_t now);

/* txdedup_end - envid's delivery answered: delivered or not. */
void txdedup_end(const char *envid, bool delivered, time_t now);

#endif
