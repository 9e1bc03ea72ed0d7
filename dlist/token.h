/*
 * token - signed, expiring tokens for dlist's confirmations (double opt-in `confirm
 * TOKEN`, moderator actions, the one-click unsubscribe URL): nobody without the list
 * server's secret key can make one for another address, list or action.
 *
 * Contract:
 * - Owns: the process's one secret key (32 bytes), file DIR/token.key, mode 0600.
 * - Blocks on: token_init does file I/O (start-up, reload, or the thread pool); token_make
 *   and token_check only compute and may run on any thread once token_init succeeded
 *   (the key is swapped under a lock by a later token_init).
 * - Key file: read when present (exactly 32 bytes, no access for group or others, else an
 *   error: a key someone else could read signs nothing); when missing, 32 bytes from
 *   RAND_bytes written to a temporary file (0600, fsync) and linked into place, so two
 *   processes starting at once end with one key, never a torn or a second one.
 * - Token text: 34 characters of lower-case RFC 4648 base32 (a-z, 2-7, no padding), safe in
 *   a URL path or query, a Subject and a mail body: 5 bytes of expiry (seconds since the
 *   epoch, big-endian) then the first 16 bytes (128 bits) of
 *   HMAC-SHA256(key, list NUL addr NUL action NUL expiry as 8 big-endian bytes).
 *   list and addr compare without regard to ASCII case (they are lower-cased before
 *   signing); action is exact. token_check accepts either letter case and compares the MAC
 *   in constant time (CRYPTO_memcmp); an expired token is TOKEN_EXPIRED only when its MAC
 *   is right (a forged one is always TOKEN_BAD).
 */
#ifndef DLIST_TOKEN_H
#define DLIST_TOKEN_H

#include <stddef.h>
#include <time.h>

#define TOKEN_LEN 34 /* characters, without the NUL */

enum token_result { TOKEN_OK, TOKEN_BAD, TOKEN_EXPIRED };

/* token_init - load or create DIR/token.key (see above). 0, or -1 with the reason in err. */
int token_init(const char *dir, char *err, size_t len);

/* token_make - the token for (list, addr, action) valid until expires, into out (at least
 * TOKEN_LEN + 1 bytes). 0, or -1 (no key yet, out too small, expiry out of range). */
int token_make(const char *list, const char *addr, const char *action, time_t expires, char *out,
               size_t len);

/* token_check - token (surrounding blanks not allowed) for (list, addr, action) at now. */
enum token_result token_check(const char *token, const char *list, const char *addr,
                              const char *action, time_t now);

#endif
