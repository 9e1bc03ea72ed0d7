/*
 * dkim - DKIM signing (RFC 6376; ed25519-sha256 of RFC 8463): dmail.conf's
 * `dkim_sign DOMAIN SELECTOR KEYFILE` lines as a key table, the relaxed body
 * canonicaliser that hashes a message's body while it streams in, and the
 * DKIM-Signature header fields of a message.
 *
 * Contract:
 * - Owns: struct dkim_keys (the private keys of one configuration snapshot; conf.c builds
 *   it with dkim_keys_add per line and frees it with the snapshot), struct dkim_body
 *   (the running body hash of one message).
 * - Blocks on: dkim_keys_add reads the key file (config load: start-up, or a reload on
 *   the thread pool). dkim_sign costs about 1 ms per rsa-2048 key: callers run it on the
 *   thread pool. The table is immutable after loading and may be read from any thread.
 * - Keys: PEM private keys, RSA of 1024 bits or more (rsa-sha256; 2048 recommended) or
 *   Ed25519 (ed25519-sha256). A key file that others may read or write (mode & 006) is
 *   refused, as OpenDKIM does, and so is a file that is not a regular file. Several lines
 *   for one domain (other selectors) give one signature each, in the order written.
 * - Canonicalisation relaxed/relaxed, no l= tag, t= the signing time. The header fields
 *   signed are those of dkim_header_names present in the message (every instance), and
 *   From once more (oversigned, so that no From: can be added after signing).
 * - Message text is in local form: LF line ends (CRLF is what is hashed). The header of a
 *   message ends at its first empty line.
 */
#ifndef DMAIL_DKIM_H
#define DMAIL_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DKIM_HASH_LEN 32 /* SHA-256 */

struct dkim_keys;

/* dkim_keys_add - one dkim_sign line's value "DOMAIN SELECTOR KEYFILE" of file (a relative
 * KEYFILE is in file's directory; file may be NULL) into *ks (made on first use): the key
 * file is read and checked now. 0, or -1 with reason. */
int dkim_keys_add(struct dkim_keys **ks, const char *file, const char *value, char *reason,
                  size_t len);
/* dkim_keys_free - free the table; *ks becomes NULL. */
void dkim_keys_free(struct dkim_keys **ks);
/* dkim_keys_count - the lines in the table (NULL: 0). */
size_t dkim_keys_count(const struct dkim_keys *ks);
/* dkim_keys_has - a key for domain (any case)? */
bool dkim_keys_has(const struct dkim_keys *ks, const char *domain);
/* dkim_keys_format - "" or "N keys: DOMAIN/SELECTOR/ALG ..." into buf; 0, or -1 if too
 * small. */
int dkim_keys_format(const struct dkim_keys *ks, char *buf, size_t len);

/* The running relaxed body hash of one message. */
struct dkim_body {
    void *md;                 /* EVP_MD_CTX */
    bool in_header;           /* still skipping the header */
    bool bol;                 /* at the start of a header line */
    bool content;             /* the current body line has a non-blank octet */
    bool wsp;                 /* blanks are pending on the current line */
    unsigned long long blank; /* empty lines not hashed yet (dropped at the end) */
    size_t n;                 /* octets in out */
    unsigned char out[512];
};

/* dkim_body_init - start a hash; with header, the octets fed begin with the message's
 * header (skipped up to its empty line), else with the body itself. */
void dkim_body_init(struct dkim_body *b, bool header);
/* dkim_body_feed - n more octets of the message (local form). */
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n);
/* dkim_body_final - the body hash into hash; b is freed (dkim_body_free is then a
 * no-op). */
void dkim_body_final(struct dkim_body *b, unsigned char hash[DKIM_HASH_LEN]);
/* dkim_body_free - drop an unfinished hash. */
void dkim_body_free(struct dkim_body *b);

/* dkim_from_domain - the domain of the (first) address of the first From: field of the
 * message's header into buf, lower case; false if there is none. */
bool dkim_from_domain(const char *text, size_t len, char *buf, size_t blen);

/* dkim_sign - the DKIM-Signature fields (LF line ends, folded, one per key of domain)
 * for the message text (its header is read; the body is known by its hash bh) signed
 * at time now: a malloc'd string, or NULL (no key for domain, or signing failed: why in
 * err). */
char *dkim_sign(const struct dkim_keys *ks, const char *domain, const char *text, size_t len,
                const unsigned char bh[DKIM_HASH_LEN], time_t now, char *err, size_t elen);

/* dkim_keygen - a new key (rsa: 2048 bits, else ed25519) written to path with mode 0600
 * (an existing file is not replaced); the DNS TXT record's text ("v=DKIM1; k=...; p=...")
 * into txt. 0, or -1 with why in err. */
int dkim_keygen(const char *path, bool rsa, char *txt, size_t tlen, char *err, size_t elen);
/* dkim_txt_record - the TXT record's text for the key in path. 0, or -1 with err. */
int dkim_txt_record(const char *path, char *txt, size_t tlen, char *err, size_t elen);

#endif
