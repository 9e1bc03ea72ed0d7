/*
 * auth_ext - the user directory of authent_method external as auth.c sees it: the
 * answers of the helpers' `lookup` (extauth.h), remembered for a while so that delivery
 * can resolve users without asking again. Internal to auth.c, dsmtp fills it.
 *
 * Contract:
 * - Owns: struct auth_ext_dir (one per external auth_db, freed with it). Any thread: a
 *   mutex guards the entries (dsmtp's loop adds and reads, the pool reads).
 * - Entries: the name the helper was asked (lower case: "user", or "user@domain" under
 *   authent_domain), its drop file (NULL: the helper said no such user) and fwd list;
 *   each lives ttl_ms (at least AUTH_EXT_TTL_MIN, so the answer serves the resolution
 *   that follows it); at most AUTH_EXT_MAX, the oldest dropped first.
 * - auth_ext_find answers with a copy in thread-local storage: valid until the next
 *   auth_ext_find on the same thread (callers copy the fields at once).
 */
#ifndef DMAIL_AUTH_EXT_H
#define DMAIL_AUTH_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define AUTH_EXT_TTL_MIN 5000 /* ms */
#define AUTH_EXT_MAX 10000

struct auth_ext_dir;

struct auth_ext_dir *auth_ext_new(void);
void auth_ext_free(struct auth_ext_dir *d);
/* auth_ext_find - the live entry named key: the user (NULL for "no such user"), or NULL
 * with *found false when nothing is known (key is then remembered as the thread's last
 * miss, auth_ext_missed). */
const struct auth_user *auth_ext_find(struct auth_ext_dir *d, const char *key, bool *found);
const char *auth_ext_missed(void);
void auth_ext_add(struct auth_ext_dir *d, const char *key, const char *drop, const char *fwd,
                  uint64_t ttl_ms);

#endif
