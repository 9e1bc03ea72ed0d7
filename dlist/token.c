/*
 * token - signed, expiring tokens. See token.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "token.h"

#define TOKEN_KEY_LEN 32
#define TOKEN_MAC_LEN 16
#define TOKEN_EXP_LEN 5
#define TOKEN_RAW_LEN (TOKEN_EXP_LEN + TOKEN_MAC_LEN)
#define TOKEN_STR_MAX 1024 /* list and address lengths signed */

static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char token_key[TOKEN_KEY_LEN];
static bool token_have_key;

static const char token_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* token_read_key - path's 32 bytes into key: 1, 0 when it does not exist, -1 (err). */
static int
token_read_key(const char *path, unsigned char *key, char *err, size_t len)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, len, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, len, "%s: readable by others (mode %03o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    n = read(fd, key, TOKEN_KEY_LEN + 1);
    close(fd);
    if (n != TOKEN_KEY_LEN) {
        snprintf(err, len, "%s: not a %d-byte key (remove it to make a new one)", path,
                 TOKEN_KEY_LEN);
        return -1;
    }
    return 1;
}

/* token_create_key - a new random key linked into path (not over an existing one). */
static int
token_create_key(const char *path, char *err, size_t len)
{
    unsigned char key[TOKEN_KEY_LEN];
    char tmp[4200];
    int fd, rc = -1;

    if (RAND_bytes(key, sizeof key) != 1) {
        snprintf(err, len, "%s: no random bytes", path);
        return -1;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= sizeof tmp) {
        snprintf(err, len, "%s: path too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, len, "%s: %s", tmp, strerror(errno));
        OPENSSL_cleanse(key, sizeof key);
        return -1;
    }
    if (fchmod(fd, 0600) != 0 || file_write_all(fd, key, sizeof key) != 0 || fsync(fd) != 0)
        snprintf(err, len, "%s: %s", tmp, strerror(errno));
    else if (link(tmp, path) != 0 && errno != EEXIST)
        snprintf(err, len, "%s: %s", path, strerror(errno));
    else if (file_fsync_parent(path) != 0)
        snprintf(err, len, "%s: fsync of its directory: %s", path, strerror(errno));
    else
        rc = 0; /* EEXIST: another process made it first; the caller reads theirs */
    close(fd);
    unlink(tmp);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* token_init - load or create DIR/token.key. */
int
token_init(const char *dir, char *err, size_t len)
{
    unsigned char key[TOKEN_KEY_LEN];
    char path[4096];
    int r;

    if ((size_t)snprintf(path, sizeof path, "%s/token.key", dir) >= sizeof path) {
        snprintf(err, len, "%s: path too long", dir);
        return -1;
    }
    if ((r = token_read_key(path, key, err, len)) == 0) {
        if (token_create_key(path, err, len) != 0)
            return -1;
        r = token_read_key(path, key, err, len);
        if (r == 0)
            snprintf(err, len, "%s: vanished after it was made", path);
    }
    if (r != 1)
        return -1;
    pthread_mutex_lock(&token_lock);
    memcpy(token_key, key, sizeof key);
    token_have_key = true;
    pthread_mutex_unlock(&token_lock);
    OPENSSL_cleanse(key, sizeof key);
    return 0;
}

/* token_lower - s lower-cased (ASCII) into buf; false when too long. */
static bool
token_lower(const char *s, char *buf, size_t len)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i + 1 >= len)
            return false;
        buf[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    }
    buf[i] = '\0';
    return true;
}

/* token_mac - the truncated HMAC of (list, addr, action, expiry) into mac; false without a
 * key or when a string is too long. */
static bool
token_mac(const char *list, const char *addr, const char *action, uint64_t expiry,
          unsigned char *mac)
{
    char l[TOKEN_STR_MAX], a[TOKEN_STR_MAX];
    unsigned char key[TOKEN_KEY_LEN], full[EVP_MAX_MD_SIZE], be[8];
    unsigned int flen = 0;
    size_t o = 0, ll, al, cl;
    unsigned char *msg;
    bool ok;

    if (!token_lower(list, l, sizeof l) || !token_lower(addr, a, sizeof a) ||
        strlen(action) >= TOKEN_STR_MAX)
        return false;
    pthread_mutex_lock(&token_lock);
    ok = token_have_key;
    memcpy(key, token_key, sizeof key);
    pthread_mutex_unlock(&token_lock);
    if (!ok)
        return false;
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(expiry >> (56 - 8 * i));
    ll = strlen(l), al = strlen(a), cl = strlen(action);
    msg = malloc(ll + al + cl + 3 + sizeof be);
    if (msg == NULL) {
        OPENSSL_cleanse(key, sizeof key);
        return false;
    }
    memcpy(msg + o, l, ll + 1), o += ll + 1;
    memcpy(msg + o, a, al + 1), o += al + 1;
    memcpy(msg + o, action, cl + 1), o += cl + 1;
    memcpy(msg + o, be, sizeof be), o += sizeof be;
    ok = HMAC(EVP_sha256(), key, sizeof key, msg, o, full, &flen) != NULL && flen >= 32;
    if (ok)
        memcpy(mac, full, TOKEN_MAC_LEN);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(full, sizeof full);
    free(msg);
    return ok;
}

/* token_make - expiry || MAC, base32. */
int
token_make(const char *list, const char *addr, const char *action, time_t expires, char *out,
           size_t len)
{
    unsigned char raw[TOKEN_RAW_LEN];
    uint64_t e = (uint64_t)expires;
    unsigned bits = 0, acc = 0;
    size_t o = 0;

    if (len < TOKEN_LEN + 1 || expires < 0 || e >> 40 != 0)
        return -1;
    for (int i = 0; i < TOKEN_EXP_LEN; i++)
        raw[i] = (unsigned char)(e >> (8 * (TOKEN_EXP_LEN - 1 - i)));
    if (!token_mac(list, addr, action, e, raw + TOKEN_EXP_LEN))
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = token_b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = token_b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return 0;
}

/* token_b32_value - a base32 letter's value (either case), or -1. */
static int
token_b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

/* token_check - decode, recompute, compare in constant time, then the expiry. */
enum token_result
token_check(const char *token, const char *list, const char *addr, const char *action, time_t now)
{
    unsigned char raw[TOKEN_RAW_LEN + 1], mac[TOKEN_MAC_LEN];
    unsigned bits = 0, acc = 0;
    size_t o = 0;
    uint64_t e = 0;

    if (token == NULL || strlen(token) != TOKEN_LEN)
        return TOKEN_BAD;
    for (size_t i = 0; i < TOKEN_LEN; i++) {
        int v = token_b32_value(token[i]);
        if (v < 0)
            return TOKEN_BAD;
        acc = ((acc << 5) | (unsigned)v) & 0xfff;
        bits += 5;
        if (bits >= 8) {
            raw[o++] = (unsigned char)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    if (o != TOKEN_RAW_LEN || (acc & ((1u << bits) - 1)) != 0)
        return TOKEN_BAD; /* 34 * 5 = 170 bits: 168 of data, 2 zero bits */
    for (int i = 0; i < TOKEN_EXP_LEN; i++)
        e = (e << 8) | raw[i];
    if (!token_mac(list, addr, action, e, mac) ||
        CRYPTO_memcmp(mac, raw + TOKEN_EXP_LEN, TOKEN_MAC_LEN) != 0)
        return TOKEN_BAD;
    return (uint64_t)now > e ? TOKEN_EXPIRED : TOKEN_OK;
}
