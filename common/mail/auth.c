/*
 * auth - the user directory (users file) and password verification.
 *
 * The users file becomes a sorted array (name, then domain with "no domain" first), so a
 * lookup is a binary search. Verification copies login and password into a request,
 * runs crypt_rn() on the thread pool and compares in constant time; an unknown user is
 * checked against a dummy yescrypt setting so that the answer takes as long. Successes
 * are cached under HMAC-SHA256(process key, user NUL password NUL stored hash): the
 * stored hash is part of the key so that a changed password misses at once (auth_cache.c).
 *
 * authent_method unix_user: the db holds no file but the Unix accounts found so far
 * (getpwnam_r, kept under a mutex as queue runs resolve recipients on the pool). A
 * verification then takes two trips to the pool: account and shadow hash (and the cache
 * key built from that hash), a cache look on the loop, then crypt on a miss.
 */
#include <crypt.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <pwd.h>
#include <shadow.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "auth.h"
#include "auth_cache.h"
#include "auth_ext.h"
#include "extauth.h"
#include "drop.h"
#include "log.h"
#include "vdomain.h"
#include "xmem.h"

#define AUTH_LINE_MAX 4096

struct auth_entry {
    struct auth_user u; /* first: auth_db_find returns &e->u */
    size_t line;
};

/* An account found by getpwnam_r (authent_method unix_user), kept for the db's life. */
struct auth_unix {
    struct auth_user u; /* first; hash is "" (the shadow hash is read per verification) */
    struct auth_unix *next;
};

struct auth_db {
    int refs; /* loop thread only */
    size_t n;
    struct auth_entry *v; /* sorted: name, then domain (NULL first), then line */
    bool unix_users;      /* authent_method unix_user: accounts, not a file */
    char *spool;          /* unix_user: the mbox directory (mail_spool) */
    pthread_mutex_t mu;   /* unix_user: guards accounts (lookups also run on the pool) */
    struct auth_unix *accounts;
    struct auth_ext_dir *ext; /* authent_method external: the helpers' answers */
    char **des_users;         /* users file names ("user[@domain]") refused for a DES hash */
    size_t ndes;
    const char *dummy; /* a hash of the most common method and cost (points into v) */
};

struct auth_req {
    uv_work_t work;
    uv_timer_t timer; /* cache hits answer through a zero timer, never synchronously */
    uv_loop_t *loop;
    struct auth_cache *cache; /* NULL if this request will not touch it */
    struct auth_db *db;       /* referenced until the request is freed */
    const struct auth_user *user;
    char *password;
    size_t pwlen;
    char *hash;  /* the user's hash or the dummy setting */
    char *uname; /* unix_user: the account name to look up on the pool */
    bool lookup; /* unix_user: the next work is the account lookup, not crypt */
    unsigned char key[AUTH_KEY_LEN];
    bool keyed;
    uint64_t ttl_ms;
    size_t max;
    bool ok, cancelled, queued;
    auth_cb cb;
    void *arg;
};

/* auth_diag - add one "file:line: reason" message to diag (conf's format). */
static void auth_diag(struct conf_diag *diag, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
auth_diag(struct conf_diag *diag, bool warning, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    if (diag == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag->msgs = xrealloc(diag->msgs, (diag->n + 1) * sizeof *diag->msgs);
    diag->msgs[diag->n++] = xstrdup(msg);
    if (warning)
        diag->warnings++;
    else
        diag->errors++;
}

/* auth_lower - ASCII lower-case in place. */
static void
auth_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* auth_name_ok - a user name: 1..64 octets, no space, control or address syntax. */
static bool
auth_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > ADDR_LOCAL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("@:\"\\<>()[],;", c))
            return false;
    }
    return true;
}

/* auth_options_ok - comma-separated key=value items with non-empty keys. */
static bool
auth_options_ok(const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *eq = memchr(s, '=', n);
        if (eq == NULL || eq == s)
            return false;
        for (const char *k = s; k < eq; k++)
            if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
                return false;
        s += n;
        if (*s == ',')
            s++;
    }
    return true;
}

/* auth_hash_des - a traditional DES crypt(3) hash: 13 characters of [./0-9A-Za-z]. */
static bool
auth_hash_des(const char *h)
{
    return strlen(h) == 13 && strspn(h, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "abcdefghijklmnopqrstuvwxyz") == 13;
}

/* auth_hash_ok - a crypt(3) hash string that libxcrypt supports; *legacy if weak. */
static bool
auth_hash_ok(const char *h, bool *legacy)
{
    *legacy = false;
    if (h[0] != '$' || strlen(h) < 4)
        return false;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("$./=,", *p)))
            return false;
    switch (crypt_checksalt(h)) {
    case CRYPT_SALT_OK:
        return true;
    case CRYPT_SALT_METHOD_LEGACY:
        *legacy = true;
        return true;
    default:
        return false;
    }
}

/* auth_db_parse_line - one line of the users file into db (or a message into diag). */
static void
auth_db_parse_line(struct auth_db *db, size_t *cap, const char *path, size_t lineno, char *line,
                   size_t len, struct conf_diag *diag)
{
    if (memchr(line, '\0', len)) {
        auth_diag(diag, false, "%s:%zu: NUL byte in line", path, lineno);
        return;
    }
    while (len > 0 && strchr(" \t\r\n", line[len - 1]))
        line[--len] = '\0';
    while (*line == ' ' || *line == '\t')
        line++, len--;
    if (len == 0 || *line == '#')
        return;
    if (len > AUTH_LINE_MAX) {
        auth_diag(diag, false, "%s:%zu: line too long", path, lineno);
        return;
    }
    char *colon = strchr(line, ':');
    if (colon == NULL) {
        auth_diag(diag, false, "%s:%zu: expected user[@domain]:hash[:options]", path, lineno);
        return;
    }
    *colon = '\0';
    char *hash = colon + 1;
    char *options = strchr(hash, ':');
    if (options)
        *options++ = '\0';

    char *at = strchr(line, '@');
    size_t nlen = at ? (size_t)(at - line) : strlen(line);
    if (!auth_name_ok(line, nlen)) {
        auth_diag(diag, false, "%s:%zu: bad user name", path, lineno);
        return;
    }
    char domain[ADDR_DOMAIN_MAX + 1];
    if (at && addr_domain_normalize(at + 1, domain, sizeof domain) < 0) {
        auth_diag(diag, false, "%s:%zu: bad domain '%.100s'", path, lineno, at + 1);
        return;
    }
    bool legacy;
    if (auth_hash_des(hash)) {
        auth_diag(diag, false,
                  "%s:%zu: %.*s has an old DES crypt hash, which dmail refuses: rehash it "
                  "(tellpop passwd %.*s)",
                  path, lineno, (int)nlen, line, (int)nlen, line);
        db->des_users = xrealloc(db->des_users, (db->ndes + 1) * sizeof *db->des_users);
        db->des_users[db->ndes] = xstrndup(line, strlen(line));
        auth_lower(db->des_users[db->ndes++]);
        return;
    }
    if (!auth_hash_ok(hash, &legacy)) {
        auth_diag(diag, false, "%s:%zu: not a crypt(3) hash (want $y$, $6$, $5$, $2b$...)", path,
                  lineno);
        return;
    }
    if (legacy)
        auth_diag(diag, true, "%s:%zu: warning: weak hash method, rehash with yescrypt", path,
                  lineno);
    if (options && *options == '\0')
        options = NULL;
    if (options && !auth_options_ok(options)) {
        auth_diag(diag, false, "%s:%zu: bad options (want key=value,...)", path, lineno);
        return;
    }

    if (db->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        db->v = xrealloc(db->v, *cap * sizeof *db->v);
    }
    struct auth_entry *e = &db->v[db->n++];
    e->u.name = xstrndup(line, nlen);
    auth_lower(e->u.name);
    e->u.domain = at ? xstrdup(domain) : NULL;
    e->u.hash = xstrdup(hash);
    e->u.options = options ? xstrdup(options) : NULL;
    e->u.drop = e->u.fwd = NULL;
    e->line = lineno;
}

/* auth_key_cmp - order by name, then domain (NULL first); case-insensitive. */
static int
auth_key_cmp(const char *name1, const char *dom1, const char *name2, const char *dom2)
{
    int c = strcasecmp(name1, name2);
    if (c)
        return c;
    if (dom1 == NULL || dom2 == NULL)
        return (dom1 != NULL) - (dom2 != NULL);
    return strcasecmp(dom1, dom2);
}

/* auth_entry_cmp - qsort order for entries, ties broken by line. */
static int
auth_entry_cmp(const void *a, const void *b)
{
    const struct auth_entry *x = a, *y = b;
    int c = auth_key_cmp(x->u.name, x->u.domain, y->u.name, y->u.domain);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* auth_entry_clear - free one entry's strings. */
static void
auth_entry_clear(struct auth_entry *e)
{
    free(e->u.name);
    free(e->u.domain);
    if (e->u.hash)
        OPENSSL_cleanse(e->u.hash, strlen(e->u.hash));
    free(e->u.hash);
    free(e->u.options);
}

/* auth_hash_kind - length of the part of hash that sets its cost: method and parameters
 * without the salt ("$6$", "$6$rounds=N$", "$y$j9T$", "$2b$12$"). */
static size_t
auth_hash_kind(const char *hash)
{
    const char *last = strrchr(hash, '$'), *p;

    if (last == NULL || last == hash)
        return 0;
    if (hash[1] == '2') /* bcrypt: $2b$COST$ then salt and hash without a '$' */
        return (size_t)(last - hash) + 1;
    for (p = last - 1; p > hash && *p != '$'; p--)
        ;
    return (size_t)(p - hash) + 1; /* up to the '$' before the salt */
}

/* auth_db_dummy - the hash an unknown user is checked against: that of a user of the most
 * common method and cost, so that a miss costs what a hit costs (no user enumeration by
 * timing). NULL when the db has no usable hash (the default yescrypt dummy then). */
static const char *
auth_db_dummy(const struct auth_db *db)
{
    enum { KINDS = 8 };
    struct {
        const char *hash;
        size_t len, count;
    } k[KINDS];
    size_t nk = 0, best = 0;

    for (size_t i = 0; i < db->n; i++) {
        const char *h = db->v[i].u.hash;
        size_t len, j;
        if (h == NULL || h[0] != '$' || (len = auth_hash_kind(h)) == 0)
            continue;
        for (j = 0; j < nk; j++)
            if (k[j].len == len && strncmp(k[j].hash, h, len) == 0)
                break;
        if (j == nk) {
            if (nk == KINDS)
                continue;
            k[nk].hash = h;
            k[nk].len = len;
            k[nk++].count = 0;
        }
        k[j].count++;
    }
    for (size_t j = 1; j < nk; j++)
        if (k[j].count > k[best].count)
            best = j;
    return nk > 0 ? k[best].hash : NULL;
}

/* auth_db_finish - sort, then drop later duplicates with a warning. */
static void
auth_db_finish(struct auth_db *db, const char *path, struct conf_diag *diag)
{
    size_t o = 0;

    if (db->n > 1)
        qsort(db->v, db->n, sizeof *db->v, auth_entry_cmp);
    for (size_t i = 0; i < db->n; i++) {
        struct auth_entry *e = &db->v[i];
        if (o > 0 &&
            auth_key_cmp(db->v[o - 1].u.name, db->v[o - 1].u.domain, e->u.name, e->u.domain) == 0) {
            auth_diag(diag, true, "%s:%zu: warning: duplicate user %s%s%s (first at line %zu)",
                      path, e->line, e->u.name, e->u.domain ? "@" : "",
                      e->u.domain ? e->u.domain : "", db->v[o - 1].line);
            auth_entry_clear(e);
            continue;
        }
        db->v[o++] = *e;
    }
    db->n = o;
    db->dummy = auth_db_dummy(db);
}

/* auth_db_load - read the users file, see auth.h. */
struct auth_db *
auth_db_load(const char *path, struct conf_diag *diag)
{
    struct auth_db *db = xcalloc(1, sizeof *db);
    FILE *f;
    char *line = NULL;
    size_t linecap = 0, cap = 0, lineno = 0;
    ssize_t len;

    db->refs = 1;
    if ((f = fopen(path, "re")) == NULL) {
        if (errno == ENOENT) {
            auth_diag(diag, true, "%s: warning: users file not found, no users", path);
            return db;
        }
        auth_diag(diag, false, "%s: cannot open: %s", path, strerror(errno));
        free(db);
        return NULL;
    }
    errno = 0;
    while ((len = getline(&line, &linecap, f)) >= 0)
        auth_db_parse_line(db, &cap, path, ++lineno, line, (size_t)len, diag);
    if (ferror(f)) {
        auth_diag(diag, false, "%s: read error: %s", path, strerror(errno ? errno : EIO));
        fclose(f);
        free(line);
        auth_db_unref(&db);
        return NULL;
    }
    fclose(f);
    free(line);
    auth_db_finish(db, path, diag);
    return db;
}

/* auth_db_ref - one more reference. */
struct auth_db *
auth_db_ref(struct auth_db *db)
{
    if (db)
        db->refs++;
    return db;
}

/* auth_db_unref - drop a reference; the last one frees. Sets *db to NULL. */
void
auth_db_unref(struct auth_db **dbp)
{
    struct auth_db *db = *dbp;

    *dbp = NULL;
    if (db == NULL || --db->refs > 0)
        return;
    while (db->accounts) {
        struct auth_unix *a = db->accounts;
        db->accounts = a->next;
        free(a->u.name);
        free(a->u.hash);
        free(a);
    }
    if (db->unix_users)
        pthread_mutex_destroy(&db->mu);
    auth_ext_free(db->ext);
    for (size_t i = 0; i < db->ndes; i++)
        free(db->des_users[i]);
    free(db->des_users);
    free(db->spool);
    for (size_t i = 0; i < db->n; i++)
        auth_entry_clear(&db->v[i]);
    free(db->v);
    free(db);
}

/* auth_db_count - entries in db. */
size_t
auth_db_count(const struct auth_db *db)
{
    return db ? db->n : 0;
}

/* auth_db_lookup - the entry with exactly name and domain (NULL: no domain). */
static const struct auth_user *
auth_db_lookup(const struct auth_db *db, const char *name, const char *domain)
{
    size_t lo = 0, hi = db->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct auth_entry *e = &db->v[mid];
        int c = auth_key_cmp(name, domain, e->u.name, e->u.domain);
        if (c == 0)
            return &e->u;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* auth_unix_name - local as a Unix account name: lower case, [a-z0-9._-], not starting
 * with '-' or '.', at most AUTH_UNIX_NAME_MAX; false if it cannot be one. */
static bool
auth_unix_name(const char *local, char *out, size_t outlen)
{
    size_t n = strlen(local);

    if (n == 0 || n > AUTH_UNIX_NAME_MAX || n >= outlen || local[0] == '-' || local[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = local[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
        out[i] = c;
    }
    out[n] = '\0';
    return true;
}

/* auth_unix_find - the account name (already checked by auth_unix_name): getpwnam_r, the
 * answer kept in db so that the pointer stays valid while db is referenced. Any thread. */
static const struct auth_user *
auth_unix_find(struct auth_db *db, const char *name)
{
    struct auth_unix *a;
    struct passwd pw, *res = NULL;
    char buf[4096];

    pthread_mutex_lock(&db->mu);
    for (a = db->accounts; a != NULL; a = a->next)
        if (strcmp(a->u.name, name) == 0)
            break;
    pthread_mutex_unlock(&db->mu);
    if (a != NULL)
        return &a->u;
    if (getpwnam_r(name, &pw, buf, sizeof buf, &res) != 0 || res == NULL)
        return NULL;
    pthread_mutex_lock(&db->mu);
    for (a = db->accounts; a != NULL; a = a->next)
        if (strcmp(a->u.name, name) == 0)
            break;
    if (a == NULL) {
        a = xcalloc(1, sizeof *a);
        a->u.name = xstrdup(name);
        a->u.hash = xstrdup("");
        a->next = db->accounts;
        db->accounts = a;
    }
    pthread_mutex_unlock(&db->mu);
    return &a->u;
}

/* auth_unix_hash - the account's crypt(3) hash from the shadow file (getspnam_r) into a
 * new string; NULL if it has none that can log in ('*', '!...', empty) or shadow cannot
 * be read (not root and not in group shadow). */
static char *
auth_unix_hash(const char *name)
{
    struct spwd sp, *res = NULL;
    size_t cap = 4096;
    char *buf = NULL, *hash = NULL;
    int rc;

    for (;;) {
        buf = xmalloc(cap);
        rc = getspnam_r(name, &sp, buf, cap, &res);
        if (rc != ERANGE || cap >= 65536)
            break;
        free(buf);
        cap *= 4;
    }
    if (rc == 0 && res != NULL && res->sp_pwdp != NULL && res->sp_pwdp[0] == '$')
        hash = xstrdup(res->sp_pwdp);
    free(buf);
    return hash;
}

/* auth_db_unix - a directory of the Unix accounts, see auth.h. */
struct auth_db *
auth_db_unix(const char *spool)
{
    struct auth_db *db = xcalloc(1, sizeof *db);

    db->refs = 1;
    db->unix_users = true;
    db->spool = xstrdup(spool && *spool ? spool : "/var/mail");
    pthread_mutex_init(&db->mu, NULL);
    return db;
}

/* auth_db_external - the helpers' users, see auth.h. */
struct auth_db *
auth_db_external(void)
{
    struct auth_db *db = xcalloc(1, sizeof *db);

    db->refs = 1;
    db->ext = auth_ext_new();
    return db;
}

bool
auth_db_is_external(const struct auth_db *db)
{
    return db != NULL && db->ext != NULL;
}

void
auth_db_ext_key(const struct conf *cf, const char *local, const char *domain, char *buf, size_t len)
{
    if (domain == NULL || *domain == '\0')
        domain = cf->main_domain;
    if (cf->authent_domain)
        snprintf(buf, len, "%s@%s", local, domain);
    else
        snprintf(buf, len, "%s", local);
    auth_lower(buf);
}

const char *
auth_db_ext_missed(void)
{
    return auth_ext_missed();
}

void
auth_db_ext_add(struct auth_db *db, const struct conf *cf, const char *key, const char *drop,
                const char *fwd)
{
    uint64_t ttl =
        cf->auth_nocache || cf->authent_cache == 0 ? 0 : (uint64_t)cf->authent_cache_ttl * 1000;

    if (db != NULL && db->ext != NULL)
        auth_ext_add(db->ext, key, drop, fwd, ttl);
}

/* auth_db_is_unix - db is the Unix accounts (authent_method unix_user). */
bool
auth_db_is_unix(const struct auth_db *db)
{
    return db != NULL && db->unix_users;
}

/* auth_mailbox_path - the dropfile of u, see auth.h. */
int
auth_mailbox_path(const struct auth_db *db, const struct conf *cf, const struct auth_user *u,
                  char *buf, size_t len)
{
    if (db == NULL || u == NULL || buf == NULL || len == 0)
        return -1;
    if (db->ext != NULL) {
        int n = u->drop != NULL ? snprintf(buf, len, "%s", u->drop) : -1;
        return n < 0 || (size_t)n >= len ? -1 : 0;
    }
    if (!db->unix_users)
        return drop_path_for(cf, u->name, u->domain, buf, len);
    size_t rootlen = strlen(db->spool);
    while (rootlen > 1 && db->spool[rootlen - 1] == '/')
        rootlen--;
    int n = snprintf(buf, len, "%.*s/%s", (int)rootlen, db->spool, u->name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* auth_unix_cached - the account name if it was found before, else NULL; *miss set when
 * it was not (a lookup would be needed). Never looks anything up. */
static const struct auth_user *
auth_unix_cached(struct auth_db *db, const char *name, bool *miss)
{
    struct auth_unix *a;

    pthread_mutex_lock(&db->mu);
    for (a = db->accounts; a != NULL; a = a->next)
        if (strcmp(a->u.name, name) == 0)
            break;
    pthread_mutex_unlock(&db->mu);
    if (a == NULL)
        *miss = true;
    return a != NULL ? &a->u : NULL;
}

/* auth_ext_ask - external, off the loop: ask the pool (extauth_lookup_off_loop),
 * remember the answer and give the user it names (NULL: unknown, or no answer, then
 * *unanswered is set). */
static const struct auth_user *
auth_ext_ask(struct auth_db *db, const struct conf *cf, const char *key, bool *unanswered)
{
    struct extauth_answer *a = xmalloc(sizeof *a);
    const struct auth_user *u = NULL;
    bool found;

    switch (extauth_lookup_off_loop(cf->authent_process, cf->authent_timeout, key, a)) {
    case EA_OK:
        if (!extauth_drop_allowed(cf, a->drop)) {
            log_error("lookup %s: authent_process gave drop file %s outside drop_path and "
                      "mail_spool",
                      key, a->drop);
            break;
        }
        auth_db_ext_add(db, cf, key, a->drop, a->fwd);
        u = auth_ext_find(db->ext, key, &found);
        break;
    case EA_ERR:
        auth_db_ext_add(db, cf, key, NULL, NULL);
        break;
    default:
        log_warn("lookup %s: authent_process gave no answer", key);
        *unanswered = true;
        break;
    }
    free(a);
    return u;
}

/* auth_db_find_mode - auth_db_find_answer, or with miss != NULL auth_db_find_cached. */
static const struct auth_user *
auth_db_find_mode(const struct auth_db *db, const struct conf *cf, const char *local,
                  const char *domain, bool *miss, bool *unanswered)
{
    const struct auth_user *u;

    if (db == NULL || local == NULL || *local == '\0')
        return NULL;
    if (domain == NULL || *domain == '\0')
        domain = cf ? cf->main_domain : NULL;
    if (db->ext != NULL) {
        char key[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
        bool found;
        if (domain != NULL && !conf_is_local_domain(cf, domain))
            return NULL;
        auth_db_ext_key(cf, local, domain, key, sizeof key);
        u = auth_ext_find(db->ext, key, &found);
        if (!found && miss != NULL)
            *miss = true;
        else if (!found)
            u = auth_ext_ask((struct auth_db *)db, cf, key, unanswered);
        return u;
    }
    if (db->unix_users) {
        char name[AUTH_UNIX_NAME_MAX + 1];
        if ((domain != NULL && !conf_is_local_domain(cf, domain)) ||
            !auth_unix_name(local, name, sizeof name))
            return NULL;
        if (miss != NULL)
            return auth_unix_cached((struct auth_db *)db, name, miss);
        return auth_unix_find((struct auth_db *)db, name);
    }
    if (domain) {
        if ((u = auth_db_lookup(db, local, domain)) != NULL)
            return u;
        /* a vdomain has its own users: no fallback to the main domain's */
        if (!conf_is_local_domain(cf, domain) || vdomain_find(cf, domain, NULL))
            return NULL;
    }
    return auth_db_lookup(db, local, NULL);
}

/* auth_db_find - the entry for local@domain, see auth.h. */
const struct auth_user *
auth_db_find(const struct auth_db *db, const struct conf *cf, const char *local, const char *domain)
{
    bool unanswered;

    return auth_db_find_answer(db, cf, local, domain, &unanswered);
}

/* auth_db_find_answer - auth_db_find telling "unknown" from "no answer", see auth.h. */
const struct auth_user *
auth_db_find_answer(const struct auth_db *db, const struct conf *cf, const char *local,
                    const char *domain, bool *unanswered)
{
    *unanswered = false;
    return auth_db_find_mode(db, cf, local, domain, NULL, unanswered);
}

/* auth_db_find_cached - auth_db_find without any lookup, see auth.h. */
const struct auth_user *
auth_db_find_cached(const struct auth_db *db, const struct conf *cf, const char *local,
                    const char *domain, bool *miss)
{
    bool dummy = false;

    bool unanswered = false;

    return auth_db_find_mode(db, cf, local, domain, miss != NULL ? miss : &dummy, &unanswered);
}

/* auth_db_find_login - for a login name "user" or "user@domain". */
const struct auth_user *
auth_db_find_login(const struct auth_db *db, const struct conf *cf, const char *login)
{
    const char *at;
    char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];

    if (login == NULL)
        return NULL;
    if ((at = strrchr(login, '@')) == NULL)
        return auth_db_find(db, cf, login, NULL);
    size_t n = (size_t)(at - login);
    if (n == 0 || n > ADDR_LOCAL_MAX || addr_domain_normalize(at + 1, domain, sizeof domain) < 0)
        return NULL;
    memcpy(local, login, n);
    local[n] = '\0';
    return auth_db_find(db, cf, local, domain);
}

static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;
static char auth_dummy[CRYPT_GENSALT_OUTPUT_SIZE];

/* auth_dummy_init - a yescrypt setting with the default cost, for unknown users. */
static void
auth_dummy_init(void)
{
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, auth_dummy, sizeof auth_dummy) == NULL)
        snprintf(auth_dummy, sizeof auth_dummy, "$6$%s", "dmaildummysalt");
}

/* auth_crypt_check - crypt(3) password against hash, compared in constant time. */
static bool
auth_crypt_check(const char *password, const char *hash)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    bool ok = false;

    if (cd == NULL)
        return false;
    const char *r = crypt_rn(password, hash, cd, sizeof *cd);
    if (r != NULL && r[0] != '*') {
        size_t a = strlen(r), b = strlen(hash);
        ok = a == b && CRYPTO_memcmp(r, hash, a) == 0;
    }
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}

/* auth_check_hash - blocking crypt(3) comparison in constant time. */
bool
auth_check_hash(const char *password, const char *hash)
{
    if (password == NULL || hash == NULL || hash[0] != '$')
        return false;
    return auth_crypt_check(password, hash);
}

/* auth_req_free - wipe and free a finished request. */
static void
auth_req_free(struct auth_req *req)
{
    if (req->password) {
        OPENSSL_cleanse(req->password, req->pwlen);
        free(req->password);
    }
    free(req->hash);
    free(req->uname);
    auth_db_unref(&req->db);
    OPENSSL_cleanse(req->key, sizeof req->key);
    free(req);
}

/* auth_work_lookup - on the pool (unix_user): the account and its shadow hash, and the
 * cache key for it; an account without a usable hash gets the dummy like an unknown one. */
static void
auth_work_lookup(struct auth_req *req)
{
    req->user = req->uname ? auth_unix_find(req->db, req->uname) : NULL;
    req->hash = req->user ? auth_unix_hash(req->user->name) : NULL;
    if (req->hash == NULL) {
        req->user = NULL;
        pthread_once(&auth_dummy_once, auth_dummy_init);
        req->hash = xstrdup(auth_dummy);
    } else if (req->cache && req->max > 0) {
        req->keyed =
            auth_cache_key(req->cache, req->user, req->hash, req->password, req->pwlen, req->key);
    }
}

/* auth_work - on the pool: the slow comparison; the password is wiped right after. */
static void
auth_work(uv_work_t *w)
{
    struct auth_req *req = w->data;

    if (req->lookup) {
        auth_work_lookup(req);
        if (req->keyed)
            return; /* the loop looks in the cache first, then queues the crypt */
        req->lookup = false;
    }
    bool ok = auth_crypt_check(req->password, req->hash);
    OPENSSL_cleanse(req->password, req->pwlen);
    req->ok = ok && req->user != NULL;
}

/* auth_after_work - on the loop: cache a success, answer, free. */
static void
auth_after_work(uv_work_t *w, int status)
{
    struct auth_req *req = w->data;
    struct auth_cache *c = req->cache;

    if (status != 0)
        req->ok = false;
    if (status == 0 && req->lookup) {
        /* unix_user, account found and keyed: a cache hit answers, else crypt on the pool */
        req->lookup = false;
        if (!req->cancelled && !c->dying && auth_cache_find(c, req->key, uv_now(req->loop))) {
            c->hits++;
            req->ok = true;
        } else if (!req->cancelled &&
                   uv_queue_work(req->loop, &req->work, auth_work, auth_after_work) == 0) {
            return;
        } else {
            req->ok = false;
        }
        req->keyed = false; /* a hit is not inserted again */
        OPENSSL_cleanse(req->password, req->pwlen);
    }
    if (c) {
        if (req->ok && req->keyed && !c->dying && req->max > 0)
            auth_cache_insert(c, req->key, uv_now(req->loop), req->ttl_ms, req->max);
        if (--c->pending == 0 && c->dying)
            auth_cache_destroy(c);
    }
    if (!req->cancelled && req->cb)
        req->cb(req->arg, req->ok, req->ok ? req->user : NULL);
    auth_req_free(req);
}

/* auth_hit_closed - the timer of a cache hit is closed: free the request. */
static void
auth_hit_closed(uv_handle_t *h)
{
    auth_req_free(h->data);
}

/* auth_hit - answer a cache hit on the next loop iteration. */
static void
auth_hit(uv_timer_t *t)
{
    struct auth_req *req = t->data;

    if (!req->cancelled && req->cb)
        req->cb(req->arg, req->ok, req->ok ? req->user : NULL);
    uv_close((uv_handle_t *)t, auth_hit_closed);
}

static struct auth_req *auth_verify_queue(struct auth_req *req, struct auth_cache *cache);

/* auth_unix_login - the account name of a login "user" or "user@local.domain", NULL if it
 * cannot be one (the request then runs against the dummy like an unknown user). */
static char *
auth_unix_login(const struct conf *cf, const char *login)
{
    char name[AUTH_UNIX_NAME_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
    char local[AUTH_UNIX_NAME_MAX + 1];
    const char *at;

    if (login == NULL)
        return NULL;
    if ((at = strrchr(login, '@')) != NULL) {
        size_t n = (size_t)(at - login);
        if (n == 0 || n > AUTH_UNIX_NAME_MAX ||
            addr_domain_normalize(at + 1, domain, sizeof domain) < 0 ||
            !conf_is_local_domain(cf, domain))
            return NULL;
        memcpy(local, login, n);
        local[n] = '\0';
        login = local;
    }
    return auth_unix_name(login, name, sizeof name) ? xstrdup(name) : NULL;
}

/* auth_verify - check password for login against db; see auth.h. */
/* auth_des_note - a login for a user refused for its DES hash: say how to fix it. */
static void
auth_des_note(const struct auth_db *db, const char *login)
{
    for (size_t i = 0; i < db->ndes; i++)
        if (strcasecmp(db->des_users[i], login) == 0) {
            char esc[200];
            log_escape(esc, sizeof esc, login, strlen(login), 100);
            log_warn("login user=%s: its users file line has an old DES crypt hash, which is "
                     "refused: rehash it (tellpop passwd %s)",
                     esc, esc);
            return;
        }
}

struct auth_req *
auth_verify(uv_loop_t *loop, struct auth_cache *cache, struct auth_db *db, const struct conf *cf,
            const char *login, const char *password, auth_cb cb, void *arg)
{
    struct auth_req *req = xcalloc(1, sizeof *req);

    if (password == NULL)
        password = "";
    req->loop = loop;
    req->cb = cb;
    req->arg = arg;
    req->db = auth_db_ref(db);
    req->pwlen = strlen(password);
    req->password = xmemdup(password, req->pwlen + 1);
    if (cf && cf->authent_cache > 0 && cf->authent_cache_ttl > 0 && !cf->auth_nocache) {
        req->ttl_ms = (uint64_t)cf->authent_cache_ttl * 1000;
        req->max = (size_t)cf->authent_cache;
    }
    if (db && db->unix_users) {
        /* account and shadow lookups block: both on the pool, then cache, then crypt */
        req->uname = auth_unix_login(cf, login);
        req->lookup = true;
        return auth_verify_queue(req, cache);
    }
    req->user = db ? auth_db_find_login(db, cf, login) : NULL;
    if (req->user == NULL && db != NULL)
        auth_des_note(db, login);
    if (cache && req->user && req->max > 0 &&
        auth_cache_key(cache, req->user, req->user->hash, req->password, req->pwlen, req->key)) {
        req->keyed = true;
        if (auth_cache_find(cache, req->key, uv_now(loop))) {
            cache->hits++;
            req->ok = true;
            uv_timer_init(loop, &req->timer);
            req->timer.data = req;
            uv_timer_start(&req->timer, auth_hit, 0, 0);
            return req;
        }
    }
    if (req->user) {
        req->hash = xstrdup(req->user->hash);
    } else if (db != NULL && db->dummy != NULL) {
        req->hash = xstrdup(db->dummy); /* never a success: req->user stays NULL */
    } else {
        pthread_once(&auth_dummy_once, auth_dummy_init);
        req->hash = xstrdup(auth_dummy);
    }
    return auth_verify_queue(req, cache);
}

/* auth_verify_queue - hand req to the pool (or answer "no" if that fails). */
static struct auth_req *
auth_verify_queue(struct auth_req *req, struct auth_cache *cache)
{
    uv_loop_t *loop = req->loop;

    if (cache) {
        req->cache = cache;
        cache->pending++;
    }
    req->queued = true;
    req->work.data = req;
    if (uv_queue_work(loop, &req->work, auth_work, auth_after_work) != 0) {
        /* Cannot happen with valid arguments; answer "no" on the next iteration. */
        if (cache)
            cache->pending--;
        req->cache = NULL;
        req->queued = false;
        req->ok = false;
        uv_timer_init(loop, &req->timer);
        req->timer.data = req;
        uv_timer_start(&req->timer, auth_hit, 0, 0);
    }
    return req;
}

/* auth_cancel - the session went away: cb will not be called. */
void
auth_cancel(struct auth_req *req)
{
    if (req == NULL)
        return;
    req->cancelled = true;
    req->cb = NULL;
    req->arg = NULL;
    if (req->queued)
        uv_cancel((uv_req_t *)&req->work);
}
