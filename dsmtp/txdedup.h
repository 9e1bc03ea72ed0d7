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
 *   TXDEDUP_DONE (delivered within TXDEDUP_TTL), TXDEDUP_BUSY (a copy is still being
 *   delivered: answer 4xx, the client retries). txdedup_end after the delivery's answer:
 *   done, with the recipients it had (any recipient accepted), or forgotten (refused: a
 *   resend is delivered) unless an earlier delivery of it is remembered. An entry in
 *   flight longer than TXDEDUP_TTL (held as a bomb, never answered) counts as new.
 * - DONE: txdedup_filter tells which recipients of the resend were among those delivered
 *   to. None new: answer 250, deliver nothing. Some new (the resend carries recipients
 *   that were refused for now the first time: dlist killed before it could rewrite its
 *   outbox file without the others): those alone are delivered, and the ENVID is in
 *   flight again until txdedup_end adds them.
 * - Recipients are remembered as 64-bit hashes (hash_str_ci), TXDEDUP_RCPTS_MAX in all
 *   entries: more make the oldest other entries go (their resends are then delivered in
 *   full, as after TXDEDUP_TTL).
 * - A dsmtp restart forgets the table: a resend after both died is delivered again.
 */
#ifndef DSMTP_TXDEDUP_H
#define DSMTP_TXDEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define TXDEDUP_MAX 4096
#define TXDEDUP_TTL 86400 /* seconds */
#define TXDEDUP_PREFIX "dlist-"
#define TXDEDUP_RCPTS_MAX 1000000 /* recipients remembered in all (8 MB) */

struct smtp_session;

enum txdedup_state { TXDEDUP_NEW, TXDEDUP_DONE, TXDEDUP_BUSY };

/* txdedup_applies - the session's transaction is one of dlist's (see above). */
bool txdedup_applies(const struct smtp_session *s);

/* txdedup_begin - envid's state at now; NEW marks it in flight. */
enum txdedup_state txdedup_begin(const char *envid, time_t now);

/* txdedup_filter - for a DONE envid: seen[i] for each of the n recipients addr[i] (any
 * case) that a delivery of it had; the number of the others. When there are any, envid
 * is in flight again (BUSY) until txdedup_end. */
size_t txdedup_filter(const char *envid, const char *const *addr, size_t n, bool *seen);

/* txdedup_keep_fresh - a DONE resend of the session's transaction: its recipients that a
 * delivery had are taken out of it (txdedup_filter), unless none is new; the number of
 * new ones. */
size_t txdedup_keep_fresh(struct smtp_session *s);
/* txdedup_end_tx - txdedup_end for the session's transaction and its recipients. */
void txdedup_end_tx(const struct smtp_session *s, bool delivered);

/* txdedup_end - envid's delivery answered: delivered (to the n recipients addr, now
 * remembered) or not. */
void txdedup_end(const char *envid, bool delivered, time_t now, const char *const *addr, size_t n);

#endif
