/*
 * penalty - failed logins remembered per key (a client address, or "user:" + a login
 * name), giving the delay the next attempt with that key must wait before it is even
 * checked: 0 without failures, then base, 2*base, 4*base... up to max (Dovecot's 2 s to
 * 15 s). The session waits with a timer, never a sleep. dsmtp (AUTH) and dpop share it.
 *
 * The login guard (penalty_login_*) is the policy both servers apply:
 * - A client address (an IPv6 one by its /64) that has failed waits its delay, and
 *   attempts from it queue: parallel sessions from one address get one check per delay,
 *   not one each (penalty_reserve).
 * - The account's own delay applies only to addresses that have failed: the owner,
 *   logging in from a clean address, is never slowed by someone guessing elsewhere.
 * - After fail_max failures an address is cut off (the server answers "try later" and
 *   closes) until its entry is forgotten, PENALTY_FORGET_MS after its last failure.
 *
 * Contract:
 * - Owns: the table (bounded: at most PENALTY_MAX keys, the oldest forgotten first).
 *   Entries are forgotten PENALTY_FORGET_MS after their last failure.
 * - Blocks on: nothing; loop thread only. Times are the caller's clock in ms (uv_now).
 * - Node-local: a cluster behind a balancer spreads attempts over nodes; each node slows
 *   down what it sees.
 */
#ifndef DMAIL_PENALTY_H
#define DMAIL_PENALTY_H

#include <stdbool.h>
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
/* penalty_reserve - the wait of an attempt for key that queues behind the attempts
 * already waiting: max(delay from now, the previous reservation + delay). 0 when key has
 * no failures. */
uint64_t penalty_reserve(struct penalty *p, const char *key, uint64_t now, uint64_t base_ms,
                         uint64_t max_ms);
/* penalty_fail - one more failure for key. */
void penalty_fail(struct penalty *p, const char *key, uint64_t now);
/* penalty_clear - a success: forget key. */
void penalty_clear(struct penalty *p, const char *key);
/* penalty_count - failures remembered for key (tests). */
unsigned penalty_count(struct penalty *p, const char *key, uint64_t now);
size_t penalty_size(const struct penalty *p);

/* penalty_ip_key - the key of a client address: the address, or for IPv6 its /64
 * ("ip6:2001:db8:1:2::/64"); buf of at least 64 bytes. */
void penalty_ip_key(const char *ip, char *buf, size_t len);
/* penalty_login_wait - how long a login attempt from ip for the account key acct (may be
 * NULL) waits before it is checked (reserving its place); see the guard above. */
uint64_t penalty_login_wait(struct penalty *p, const char *ip, const char *acct, uint64_t now,
                            uint64_t base_ms, uint64_t max_ms);
/* penalty_login_blocked - ip has failed fail_max times (0: never blocked). */
bool penalty_login_blocked(struct penalty *p, const char *ip, uint64_t now, unsigned fail_max);
/* penalty_login_fail / penalty_login_ok - the verdict on an attempt from ip for acct. */
void penalty_login_fail(struct penalty *p, const char *ip, const char *acct, uint64_t now);
void penalty_login_ok(struct penalty *p, const char *ip, const char *acct);

#endif
