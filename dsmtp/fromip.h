/*
 * fromip - fromip_max messages per client address per fromip_interval (DMail's volume
 * limit), with fromip_nolimit exemptions. Each MAIL command counts; once an address has
 * fromip_max of them in its current interval, MAIL gets 451 4.7.1 (temporary: the client
 * tries again later) until the interval, which starts at the address's first MAIL,
 * ends. Clients in fromip_nolimit or forward_from_ip are not counted.
 *
 * Contract:
 * - Owns: struct fromip (one per process, in struct smtpd): the counts, at most
 *   FROMIP_TABLE_MAX addresses, the least recently seen forgotten first (a forgotten
 *   address starts over: memory stays bounded under a flood of addresses).
 * - Blocks on: nothing; loop thread only.
 * - Node-local: each node of a cluster counts what it sees.
 */
#ifndef DSMTP_FROMIP_H
#define DSMTP_FROMIP_H

#include <stdbool.h>

#include "session.h"

#define FROMIP_TABLE_MAX 65536

struct fromip;

struct fromip *fromip_new(void);
void fromip_free(struct fromip **f);

/* fromip_mail - count a MAIL of the session's client; true when over fromip_max: the 451
 * is written and the MAIL must not proceed. */
bool fromip_mail(struct smtp_session *s);

#endif
