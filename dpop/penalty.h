/*
 * penalty - failed logins remembered per key (a client address, or "user:" + a login
 * name), giving the delay the next attempt with that key must wait before it is even
 * checked: 0 without failures, then base, 2*base, 4*base... up to max (Dovecot's 2 s to
 * 15 s). The session waits with a timer, never a sleep.
 *
 * Contract:
 * - Owns: the table (bounded: at most PENALTY_MAX keys, the oldest forgotten first).
 *   Entries are forgotten PENALTY_FORGET_MS after their last failure.
 * - Blocks on: nothing; loop thread only. Times are the caller's clock in ms (uv_now).
 * - Node-local: a cluster behind a balancer spreads attempts over nodes; each node slows
 *   down what it sees.
 */
#ifndef DPOP_PENALTY_H
#define DPOP_PENALTY_H

#include <stddef.h>
#include <stdint.h>

#define PENALTY_MAX 65536
#define PENALTY_FORGET_MS (15 * 60 * 1000)

struct penalty;

struct penalty *penalty_new(void);
void penalty_free(struct penalty **p);

/* penalty_delay - how long an attempt for key must wait now (ms). base_ms 0 turns the
 * penalty off. */
uint64_t penalty_delay(struct penalty *p, const char *key, uint64_t now, uint64_t base_ms,
                       uint64_t max_ms);
/* penalty_fail - one more failure for key. */
void penalty_fail(struct penalty *p, const char *key, uint64_t now);
/* penalty_clear - a success: forget key. */
void penalty_clear(struct penalty *p, const char *key);
/* penalty_count - failures remembered for key (tests). */
unsigned penalty_count(struct penalty *p, const char *key, uint64_t now);
size_t penalty_size(const struct penalty *p);

#endif
