/*
 * dkim - DKIM signing. See dkim.h for the contract.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "dkim.h"
#include "xmem.h"

struct dkim_key {
    char *domain; /* lower case */
    char *selector;
    EVP_PKEY *pkey;
    bool ed25519;
};

struct dkim_keys {
    struct dkim_key *v;
    size_t n;
};

/* The header fields signed when present (RFC 6376 5.4.1), lower case. */
static const char *const dkim_header_names[] = {
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "sender",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "content-description",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
};

#define DKIM_NAMES (sizeof(dkim_header_names) / sizeof(dkim_header_names[0]))
/* header fields looked at: far more than hopcount_limit lets a message carry */
#define DKIM_FIELDS_MAX 2000

/* ---- the key table ---- */

/* dkim_load_key - read and check the private key in path. NULL with reason. */
static EVP_PKEY *
dkim_load_key(const char *path, bool *ed25519, char *reason, size_t len)
{
    struct stat st;
    EVP_PKEY *pkey;
    FILE *f;
    /* no symbolic link: whoever may change the link could point it at another key */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);

    if (fd < 0 && errno == ELOOP) {
        snprintf(reason, len,
                 "key file %s: a symbolic link; name the key file itself (a link could be "
                 "pointed at another file)",
                 path);
        return NULL;
    }
    if (fd < 0) {
        snprintf(reason, len, "key file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(reason, len, "key file %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(reason, len,
                 "key file %s: readable or writable by others (mode %03o): chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "r");
    if (f == NULL) {
        snprintf(reason, len, "key file %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    pkey = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
    fclose(f);
    if (pkey == NULL) {
        snprintf(reason, len, "key file %s: not a PEM private key", path);
        return NULL;
    }
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        *ed25519 = true;
        return pkey;
    }
    *ed25519 = false;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        snprintf(reason, len, "key file %s: neither an RSA nor an Ed25519 key", path);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    if (EVP_PKEY_get_bits(pkey) < 1024) {
        snprintf(reason, len, "key file %s: RSA key of %d bits, at least 1024 needed (RFC 8301)",
                 path, EVP_PKEY_get_bits(pkey));
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* dkim_is_domain - letters, digits, hyphens and dots, labels not empty. */
static bool
dkim_is_domain(const char *s)
{
    size_t label = 0;

    if (*s == '\0' || strlen(s) > 253)
        return false;
    for (; *s != '\0'; s++) {
        if (*s == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*s) || *s == '-' || *s == '_') {
            label++;
        } else {
            return false;
        }
    }
    return label > 0;
}

int
dkim_keys_add(struct dkim_keys **ks, const char *file, const char *value, char *reason, size_t len)
{
    char dom[256], sel[64], name[1024], path[2048], extra[2];
    const char *slash = file != NULL ? strrchr(file, '/') : NULL;
    struct dkim_key k = {0};

    if (sscanf(value, "%255s %63s %1023s %1s", dom, sel, name, extra) != 3) {
        snprintf(reason, len, "expected DOMAIN SELECTOR KEYFILE");
        return -1;
    }
    if (!dkim_is_domain(dom)) {
        snprintf(reason, len, "bad domain '%s'", dom);
        return -1;
    }
    if (!dkim_is_domain(sel)) {
        snprintf(reason, len, "bad selector '%s'", sel);
        return -1;
    }
    for (char *p = dom; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (name[0] == '/' || slash == NULL)
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - file), file, name);
    if (*ks != NULL)
        for (size_t i = 0; i < (*ks)->n; i++)
            if (strcmp((*ks)->v[i].domain, dom) == 0 &&
                strcasecmp((*ks)->v[i].selector, sel) == 0) {
                snprintf(reason, len, "selector %s of %s is given twice", sel, dom);
                return -1;
            }
    k.pkey = dkim_load_key(path, &k.ed25519, reason, len);
    if (k.pkey == NULL)
        return -1;
    k.domain = xstrdup(dom);
    k.selector = xstrdup(sel);
    if (*ks == NULL)
        *ks = xcalloc(1, sizeof(**ks));
    (*ks)->v = xrealloc((*ks)->v, ((*ks)->n + 1) * sizeof(k));
    (*ks)->v[(*ks)->n++] = k;
    return 0;
}

void
dkim_keys_free(struct dkim_keys **ks)
{
    if (*ks == NULL)
        return;
    for (size_t i = 0; i < (*ks)->n; i++) {
        EVP_PKEY_free((*ks)->v[i].pkey);
        free((*ks)->v[i].domain);
        free((*ks)->v[i].selector);
    }
    free((*ks)->v);
    free(*ks);
    *ks = NULL;
}

size_t
dkim_keys_count(const struct dkim_keys *ks)
{
    return ks != NULL ? ks->n : 0;
}

bool
dkim_keys_has(const struct dkim_keys *ks, const char *domain)
{
    for (size_t i = 0; ks != NULL && i < ks->n; i++)
        if (strcasecmp(ks->v[i].domain, domain) == 0)
            return true;
    return false;
}

int
dkim_keys_format(const struct dkim_keys *ks, char *buf, size_t len)
{
    size_t off = 0;
    int k;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; ks != NULL && i < ks->n; i++) {
        k = snprintf(buf + off, len - off, "%s%s/%s/%s", i ? " " : "", ks->v[i].domain,
                     ks->v[i].selector, ks->v[i].ed25519 ? "ed25519" : "rsa");
        if (k < 0 || (size_t)k >= len - off)
            return -1;
        off += (size_t)k;
    }
    return 0;
}

/* ---- the body hash (RFC 6376 3.4.4, relaxed) ---- */

void
dkim_body_init(struct dkim_body *b, bool header)
{
    memset(b, 0, sizeof(*b));
    b->md = EVP_MD_CTX_new();
    if (b->md == NULL || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
        abort();
    b->in_header = header;
    b->bol = true;
}

/* dkim_body_out - octets to the hash, through the small buffer. */
static void
dkim_body_out(struct dkim_body *b, const char *p, size_t n)
{
    if (b->n + n > sizeof(b->out)) {
        EVP_DigestUpdate(b->md, b->out, b->n);
        b->n = 0;
        if (n > sizeof(b->out)) {
            EVP_DigestUpdate(b->md, p, n);
            return;
        }
    }
    memcpy(b->out + b->n, p, n);
    b->n += n;
}

void
dkim_body_feed(struct dkim_body *b, const char *p, size_t n)
{
    size_t i = 0;

    if (b->md == NULL)
        return;
    while (i < n && b->in_header) {
        if (p[i] == '\n' && b->bol)
            b->in_header = false;
        b->bol = p[i] == '\n';
        i++;
    }
    while (i < n) {
        char c = p[i];
        if (c == ' ' || c == '\t') {
            b->wsp = true;
            i++;
        } else if (c == '\n') {
            if (b->content)
                dkim_body_out(b, "\r\n", 2);
            else
                b->blank++;
            b->content = b->wsp = false;
            i++;
        } else if (c == '\r') { /* local form has none; a stray one is not text */
            i++;
        } else {
            size_t j = i + 1;
            if (!b->content) {
                for (; b->blank > 0; b->blank--)
                    dkim_body_out(b, "\r\n", 2);
                b->content = true;
            }
            if (b->wsp)
                dkim_body_out(b, " ", 1);
            b->wsp = false;
            while (j < n && p[j] != ' ' && p[j] != '\t' && p[j] != '\n' && p[j] != '\r')
                j++;
            dkim_body_out(b, p + i, j - i);
            i = j;
        }
    }
}

void
dkim_body_final(struct dkim_body *b, unsigned char hash[DKIM_HASH_LEN])
{
    unsigned int hl = DKIM_HASH_LEN;

    if (b->md == NULL)
        return;
    if (b->content)
        dkim_body_out(b, "\r\n", 2);
    EVP_DigestUpdate(b->md, b->out, b->n);
    EVP_DigestFinal_ex(b->md, hash, &hl);
    dkim_body_free(b);
}

void
dkim_body_free(struct dkim_body *b)
{
    EVP_MD_CTX_free(b->md);
    b->md = NULL;
}

/* ---- header fields ---- */

struct dkim_field {
    const char *name; /* at the field's start */
    size_t nlen;      /* of the name, colon not counted */
    const char *value;
    size_t vlen; /* of the value up to the last line end, folds included */
};

/* dkim_fields - split the header of text into fields; returns their number (at most
 * max; fields past max are ignored). */
static size_t
dkim_fields(const char *text, size_t len, struct dkim_field *f, size_t max)
{
    const char *p = text, *end = text + len;
    size_t n = 0;

    while (p < end && *p != '\n') {
        const char *start = p, *colon, *e = p;
        /* the field runs to a line end not followed by a blank */
        for (;;) {
            const char *nl = memchr(e, '\n', (size_t)(end - e));
            e = nl ? nl + 1 : end;
            if (e >= end || (*e != ' ' && *e != '\t'))
                break;
        }
        p = e;
        colon = memchr(start, ':', (size_t)(e - start));
        if (colon == NULL || n >= max)
            continue;
        f[n].name = start;
        f[n].nlen = (size_t)(colon - start);
        while (f[n].nlen > 0 && (start[f[n].nlen - 1] == ' ' || start[f[n].nlen - 1] == '\t'))
            f[n].nlen--;
        f[n].value = colon + 1;
        f[n].vlen = (size_t)(e - colon - 1);
        n++;
    }
    return n;
}

/* A growing output buffer. */
struct dkim_str {
    char *p;
    size_t n, size;
};

static void
dkim_str_add(struct dkim_str *s, const char *p, size_t n)
{
    if (s->n + n + 1 > s->size) {
        while (s->n + n + 1 > s->size)
            s->size = s->size ? s->size * 2 : 1024;
        s->p = xrealloc(s->p, s->size);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = '\0';
}

/* dkim_canon_header - the relaxed form of one field (RFC 6376 3.4.2) onto s, with the
 * CRLF when crlf. */
static void
dkim_canon_header(struct dkim_str *s, const char *name, size_t nlen, const char *value, size_t vlen,
                  bool crlf)
{
    bool wsp = false, started = false;

    for (size_t i = 0; i < nlen; i++) {
        char c = (char)tolower((unsigned char)name[i]);
        dkim_str_add(s, &c, 1);
    }
    dkim_str_add(s, ":", 1);
    for (size_t i = 0; i < vlen; i++) {
        char c = value[i];
        if (c == '\r' || c == '\n')
            continue; /* unfolding */
        if (c == ' ' || c == '\t') {
            wsp = true;
            continue;
        }
        if (wsp && started)
            dkim_str_add(s, " ", 1);
        wsp = false;
        started = true;
        dkim_str_add(s, &c, 1);
    }
    if (crlf)
        dkim_str_add(s, "\r\n", 2);
}

bool
dkim_from_domain(const char *text, size_t len, char *buf, size_t blen)
{
    struct dkim_field *f = xmalloc(DKIM_FIELDS_MAX * sizeof(*f));
    size_t n = dkim_fields(text, len, f, DKIM_FIELDS_MAX);
    bool found = false;

    for (size_t i = 0; i < n && !found; i++) {
        const char *v = f[i].value, *ve = v + f[i].vlen, *lt = NULL, *at;
        size_t k = 0;
        if (f[i].nlen != 4 || strncasecmp(f[i].name, "from", 4) != 0)
            continue;
        for (const char *q = v; q < ve; q++)
            if (*q == '<')
                lt = q;
        if (lt != NULL)
            v = lt + 1;
        found = true; /* the first From: field decides */
        at = memchr(v, '@', (size_t)(ve - v));
        if (at == NULL)
            break;
        for (at++; at < ve && k + 1 < blen &&
                   (isalnum((unsigned char)*at) || *at == '-' || *at == '.' || *at == '_');
             at++)
            buf[k++] = (char)tolower((unsigned char)*at);
        buf[k] = '\0';
        free(f);
        return k > 0;
    }
    free(f);
    return false;
}

/* dkim_b64 - base64 of n octets (malloc'd). */
static char *
dkim_b64(const unsigned char *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* dkim_sign_data - sign data with key k: the signature's base64, or NULL. */
static char *
dkim_sign_data(const struct dkim_key *k, const char *data, size_t n)
{
    unsigned char digest[DKIM_HASH_LEN], sig[1024];
    unsigned int dl = sizeof(digest);
    size_t sl = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return NULL;
    if (k->ed25519) /* RFC 8463: PureEdDSA over the SHA-256 hash of the data */
        ok = EVP_Digest(data, n, digest, &dl, EVP_sha256(), NULL) == 1 &&
             EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &sl, digest, dl) == 1;
    else
        ok = EVP_PKEY_get_size(k->pkey) <= (int)sizeof(sig) &&
             EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? dkim_b64(sig, sl) : NULL;
}

/* dkim_sign_one - one DKIM-Signature field with key k onto out; false if signing
 * failed. */
static bool
dkim_sign_one(const struct dkim_key *k, const struct dkim_field *f, size_t nf, const char *bh,
              time_t now, struct dkim_str *out)
{
    struct dkim_str h = {0}, data = {0};
    bool *used = xcalloc(nf > 0 ? nf : 1, sizeof(bool));
    size_t col;
    char *b, *head;

    /* h=: each listed name as often as it is present (bottom-up), From once more */
    for (size_t i = 0; i < DKIM_NAMES; i++) {
        const char *name = dkim_header_names[i];
        size_t nl = strlen(name);
        int extra = strcmp(name, "from") == 0 ? 1 : 0;
        for (size_t j = nf; j-- > 0;) {
            if (used[j] || f[j].nlen != nl || strncasecmp(f[j].name, name, nl) != 0)
                continue;
            used[j] = true;
            dkim_canon_header(&data, f[j].name, f[j].nlen, f[j].value, f[j].vlen, true);
            dkim_str_add(&h, ":", 1);
            dkim_str_add(&h, name, nl);
        }
        for (; extra > 0; extra--) {
            dkim_str_add(&h, ":", 1);
            dkim_str_add(&h, name, nl);
        }
    }
    /* the field itself with an empty b=, folded at the colons of h= */
    head = xasprintf("v=1; a=%s; c=relaxed/relaxed; d=%s; s=%s;\n\tt=%lld; h=",
                     k->ed25519 ? "ed25519-sha256" : "rsa-sha256", k->domain, k->selector,
                     (long long)now);
    struct dkim_str field = {0};
    dkim_str_add(&field, "DKIM-Signature: ", 16);
    dkim_str_add(&field, head, strlen(head));
    free(head);
    col = 20;
    for (size_t i = 1; i < h.n; i++) { /* h.p starts with ':' */
        size_t e = i;
        while (e < h.n && h.p[e] != ':')
            e++;
        if (col + (e - i) > 72) {
            dkim_str_add(&field, "\n\t", 2);
            col = 8;
        }
        dkim_str_add(&field, h.p + i, e - i + (e < h.n ? 1 : 0));
        col += e - i + 1;
        i = e;
    }
    dkim_str_add(&field, ";\n\tbh=", 6);
    dkim_str_add(&field, bh, strlen(bh));
    dkim_str_add(&field, ";\n\tb=", 5);
    dkim_canon_header(&data, field.p, 14, field.p + 15, field.n - 15, false);
    b = dkim_sign_data(k, data.p, data.n);
    free(data.p);
    free(h.p);
    free(used);
    if (b == NULL) {
        free(field.p);
        return false;
    }
    for (size_t i = 0, bl = strlen(b); i < bl; i += 64) {
        if (i > 0)
            dkim_str_add(&field, "\n\t ", 3);
        dkim_str_add(&field, b + i, bl - i < 64 ? bl - i : 64);
    }
    dkim_str_add(&field, "\n", 1);
    dkim_str_add(out, field.p, field.n);
    free(field.p);
    free(b);
    return true;
}

char *
dkim_sign(const struct dkim_keys *ks, const char *domain, const char *text, size_t len,
          const unsigned char bh[DKIM_HASH_LEN], time_t now, char *err, size_t elen)
{
    struct dkim_field *f = xmalloc(DKIM_FIELDS_MAX * sizeof(*f));
    struct dkim_str out = {0};
    size_t nf = dkim_fields(text, len, f, DKIM_FIELDS_MAX);
    char *bh64 = dkim_b64(bh, DKIM_HASH_LEN);

    for (size_t i = 0; ks != NULL && i < ks->n; i++) {
        if (strcasecmp(ks->v[i].domain, domain) != 0)
            continue;
        if (!dkim_sign_one(&ks->v[i], f, nf, bh64, now, &out)) {
            snprintf(err, elen, "signing with %s/%s failed", ks->v[i].domain, ks->v[i].selector);
            free(out.p);
            free(bh64);
            free(f);
            return NULL;
        }
    }
    free(bh64);
    free(f);
    if (out.p == NULL)
        snprintf(err, elen, "no key for %s", domain);
    return out.p;
}

/* ---- keys for the DNS ---- */

/* dkim_txt - the TXT record's text of pkey. */
static int
dkim_txt(EVP_PKEY *pkey, char *txt, size_t tlen, char *err, size_t elen)
{
    unsigned char raw[32], *der = NULL;
    size_t rl = sizeof(raw);
    char *b64;
    int n;

    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rl) != 1) {
            snprintf(err, elen, "cannot get the public key");
            return -1;
        }
        b64 = dkim_b64(raw, rl);
        n = snprintf(txt, tlen, "v=DKIM1; k=ed25519; p=%s", b64);
    } else {
        int dl = i2d_PUBKEY(pkey, &der);
        if (dl <= 0) {
            snprintf(err, elen, "cannot get the public key");
            return -1;
        }
        b64 = dkim_b64(der, (size_t)dl);
        OPENSSL_free(der);
        n = snprintf(txt, tlen, "v=DKIM1; k=rsa; p=%s", b64);
    }
    free(b64);
    if (n < 0 || (size_t)n >= tlen) {
        snprintf(err, elen, "record too long");
        return -1;
    }
    return 0;
}

int
dkim_txt_record(const char *path, char *txt, size_t tlen, char *err, size_t elen)
{
    bool ed;
    EVP_PKEY *pkey = dkim_load_key(path, &ed, err, elen);
    int rc;

    if (pkey == NULL)
        return -1;
    rc = dkim_txt(pkey, txt, tlen, err, elen);
    EVP_PKEY_free(pkey);
    return rc;
}

int
dkim_keygen(const char *path, bool rsa, char *txt, size_t tlen, char *err, size_t elen)
{
    EVP_PKEY *pkey = rsa ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    FILE *f;
    int fd, rc;

    if (pkey == NULL) {
        snprintf(err, elen, "key generation failed");
        return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, elen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        EVP_PKEY_free(pkey);
        return -1;
    }
    rc = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1 ? 0 : -1;
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0) {
        snprintf(err, elen, "%s: cannot write the key", path);
        unlink(path);
    } else {
        rc = dkim_txt(pkey, txt, tlen, err, elen);
    }
    EVP_PKEY_free(pkey);
    return rc;
}
