/*
 * auth - the user directory: users file lookups for delivery, and password verification
 * with crypt(3) on the thread pool behind a success cache.
 *
 * Contract:
 * - Owns: struct auth_db (an immutable snapshot of the users file, reference-counted like
 *   conf) and struct auth_cache (one per process, lives on the loop thread).
 * - Blocks on: auth_db_load reads the users file (start-up or reload, never on the loop).
 *   auth_verify runs crypt(3) with uv_queue_work and answers on the loop.
 * - Users file lines: `user[@domain]:crypt-hash[:options]`; `#` comments and blank lines
 *   ignored. A name without @domain belongs to the main domain and its host_domain aliases
 *   only; a vdomain (vdomain.h) has just its own `user@vdomain` lines.
 *   Names are case-insensitive. Hashes must be crypt(3) strings ($y$ yescrypt, $6$ SHA-512,
 *   $5$, $2b$...); anything else is an error for that line ("file:line: reason"), and the
 *   line is skipped. Options are comma-separated `key=value` (e.g. apop=SECRET, reserved).
 * - Duplicate entries (same name and domain) are a warning; the first one counts. Weak
 *   methods that libxcrypt calls legacy ($1$, $5$, ...) are accepted with a warning.
 * - The cache key is HMAC-SHA256(process-random key, user NUL password NUL stored hash)
 *   -- never the password; the stored hash in the key makes a changed password miss at
 *   once -- and an entry lives authent_cache_ttl seconds; at most authent_cache entries
 *   (0 for either turns caching off). Only successes are cached.
 * - An unknown user is checked against the hash of a user of the users file's most
 *   common method and cost (never a success), so a miss takes as long as a hit for most
 *   users; with no usable hash in the file (and for unix_user) against a yescrypt setting
 *   of the default cost, the system's default method.
 */
#ifndef DMAIL_AUTH_H
#define DMAIL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "conf.h"

struct auth_user {
    char *name;   /* lower case, without domain */
    char *domain; /* lower case A-label, or NULL: the main domain and its aliases */
    char *hash;
    char *options; /* may be NULL */
    char *drop;    /* authent_method external: the helper's drop file, else NULL */
    char *fwd;     /* external: its fwd="..." list, else NULL */
};

struct auth_db;

/* auth_db_load - read the users file. Problems go to diag (same format as conf); returns
 * NULL only if the file cannot be read at all. A missing file yields an empty db and a
 * warning. */
struct auth_db *auth_db_load(const char *path, struct conf_diag *diag);
struct auth_db *auth_db_ref(struct auth_db *db);
void auth_db_unref(struct auth_db **db);
size_t auth_db_count(const struct auth_db *db);

/* auth_db_unix - authent_method unix_user: the directory is the Unix accounts
 * (getpwnam_r), each local part that names an account is a user of every local domain,
 * its mailbox is spool/NAME (mail_spool, traditional mbox), and its password the crypt(3)
 * hash from the shadow file (getspnam_r: the process must be root or in group shadow).
 * Accounts without a usable hash ('*', '!...', empty) receive mail but cannot log in.
 * Names are lower-cased and must be [a-z0-9._-], at most AUTH_UNIX_NAME_MAX, not starting
 * with '-' or '.'. Lookups through auth_db_find* call getpwnam_r (the passwd file) on the
 * caller's thread; auth_verify does both lookups on the pool. Found accounts are kept
 * (their auth_user stays valid while db is referenced); reload makes a fresh db. */
#define AUTH_UNIX_NAME_MAX 32
struct auth_db *auth_db_unix(const char *spool);
bool auth_db_is_unix(const struct auth_db *db);

/* auth_db_external - authent_method external: no users of its own; lookups answer from
 * the helpers' remembered answers (auth_ext.h). auth_db_find* find a user of a local
 * domain by the name the helper is asked (auth_db_ext_key); auth_db_find_cached sets
 * *miss when nothing is remembered, and auth_db_ext_missed names it (the caller asks the
 * helpers and auth_db_ext_add's the answer); auth_db_find, which cannot ask, answers
 * NULL then. auth_mailbox_path is the helper's drop file. The returned user is a
 * thread-local copy valid until the next lookup on the same thread. */
struct auth_db *auth_db_external(void);
bool auth_db_is_external(const struct auth_db *db);
/* auth_db_ext_key - the name the helpers are asked for local@domain (domain NULL: the main
 * domain): lower case "local", or "local@domain" under authent_domain. */
void auth_db_ext_key(const struct conf *cf, const char *local, const char *domain, char *buf,
                     size_t len);
const char *auth_db_ext_missed(void);
/* auth_db_ext_add - remember an answer (drop NULL: no such user) for the cache time. */
void auth_db_ext_add(struct auth_db *db, const struct conf *cf, const char *key, const char *drop,
                     const char *fwd);

/* auth_mailbox_path - the dropfile of u (from db): drop_path_for for the users file,
 * spool/NAME for unix_user. 0, or -1 if it does not fit or cannot be made. */
int auth_mailbox_path(const struct auth_db *db, const struct conf *cf, const struct auth_user *u,
                      char *buf, size_t len);

/* auth_db_find - the entry for local@domain, given that domain is local under cf: an
 * entry with exactly that domain, else (for the main domain and its aliases, never a
 * vdomain) one without a domain. local is compared case-insensitively. NULL if none. */
const struct auth_user *auth_db_find(const struct auth_db *db, const struct conf *cf,
                                     const char *local, const char *domain);
/* auth_db_find_cached - auth_db_find that never blocks: for unix_user only the accounts
 * found before count, and *miss is set to true when the answer would need a lookup (a
 * possible account name not found yet; NULL is returned then). The users file answers as
 * auth_db_find and leaves *miss alone. miss may be NULL. Any thread. */
/* auth_db_find_answer - auth_db_find that tells the three answers apart: the entry; NULL
 * with *unanswered false (no such user); NULL with *unanswered true (an external helper
 * gave no answer -- -DEAD, a timeout, a crash -- so ask again later). */
const struct auth_user *auth_db_find_answer(const struct auth_db *db, const struct conf *cf,
                                            const char *local, const char *domain,
                                            bool *unanswered);
const struct auth_user *auth_db_find_cached(const struct auth_db *db, const struct conf *cf,
                                            const char *local, const char *domain, bool *miss);
/* auth_db_find_login - for a login name "user" or "user@domain". */
const struct auth_user *auth_db_find_login(const struct auth_db *db, const struct conf *cf,
                                           const char *login);

struct auth_cache;
/* auth_cache_new - an empty cache with a fresh random key; NULL if OpenSSL fails. */
struct auth_cache *auth_cache_new(void);
/* auth_cache_free - sets *c to NULL; the memory goes when the last pending auth_verify
 * that uses the cache has finished. */
void auth_cache_free(struct auth_cache **c);
/* auth_cache_count - live and expired entries held; auth_cache_hits - answers given from
 * the cache so far (statistics, tests). */
size_t auth_cache_count(const struct auth_cache *c);
unsigned long auth_cache_hits(const struct auth_cache *c);

/* auth_verify - check password for login against db; calls cb(arg, ok, user) on the loop,
 * never before auth_verify has returned (a cache hit answers on the next loop iteration).
 * user is the matched entry when ok (valid while db is referenced), else NULL. The request
 * holds its own reference on db until cb has returned; the password is copied and the
 * copy wiped after use. cache may be NULL (no caching). The returned request is freed
 * right after cb returns: drop the pointer in cb. */
typedef void (*auth_cb)(void *arg, bool ok, const struct auth_user *user);
struct auth_req;
struct auth_req *auth_verify(uv_loop_t *loop, struct auth_cache *cache, struct auth_db *db,
                             const struct conf *cf, const char *login, const char *password,
                             auth_cb cb, void *arg);

/* auth_cancel - the session went away: cb will not be called (the work still finishes on
 * the pool and frees itself). Only before cb has run; NULL is ignored. */
void auth_cancel(struct auth_req *req);

/* auth_check_hash - blocking crypt(3) comparison in constant time (tests, tools). */
bool auth_check_hash(const char *password, const char *hash);

#endif
