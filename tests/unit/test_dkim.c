/*
 * test_dkim - common/mail/dkim.c: the relaxed body hash against known vectors (computed
 * with python3-dkim and RFC 8463's example), key files refused for clear reasons, and an
 * ed25519-sha256 signature over RFC 8463's example message checked with OpenSSL against
 * the relaxed header canonicalisation written out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "xmem.h"
#include "unit_util.h"

/* RFC 8463 A.2's Ed25519 key (RFC 8032's first test key) as PKCS#8 PEM */
static const char ed_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                             "-----END PRIVATE KEY-----\n";

static const char rfc_msg[] = "From: Joe SixPack <joe@football.example.com>\n"
                              "To: Suzie Q <suzie@shopping.example.net>\n"
                              "Subject: Is dinner ready?\n"
                              "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
                              "Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
                              "\n"
                              "Hi.\n"
                              "\n"
                              "We lost the game.  Are you hungry yet?\n"
                              "\n"
                              "Joe.\n";

/* bh64 - the relaxed body hash of text (fed one octet at a time when bytewise), base64. */
static void
bh64(const char *text, bool header, bool bytewise, char out[64])
{
    struct dkim_body b;
    unsigned char h[DKIM_HASH_LEN];
    size_t n = strlen(text);

    dkim_body_init(&b, header);
    if (bytewise)
        for (size_t i = 0; i < n; i++)
            dkim_body_feed(&b, text + i, 1);
    else
        dkim_body_feed(&b, text, n);
    dkim_body_final(&b, h);
    dkim_body_free(&b); /* a no-op after final */
    EVP_EncodeBlock((unsigned char *)out, h, DKIM_HASH_LEN);
}

static void
check_body(const char *text, bool header, const char *want)
{
    char got[64];

    bh64(text, header, false, got);
    assert_string_equal(got, want);
    bh64(text, header, true, got);
    assert_string_equal(got, want);
}

/* test_body_vectors - python3-dkim's Relaxed.canonicalize_body, hashed. */
static void
test_body_vectors(void **state)
{
    (void)state;
    check_body("", false, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    check_body("\n", false, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    check_body("Hi \t there \n\n\n", false, "LaegeaE4sWd4l9K7YWNlAinmqUePEZwKG9dMjiYmLn8=");
    check_body(" lead\n\nx  \t\n \t\n", false, "sBgSth4LCnkxQ8sSn1KvAyHi0zOucSmKiR7cE8wF62A=");
    check_body("no end", false, "DPtq8IYpnX5f3lS41Dyy8AB9rByWYkxflimp5qbli9w=");
    check_body("a\n\n\nb\n\t\n", false, "SFh8erZISrt6Jo0tTtk8EO/1BfDisAl/Ht6k37OJmgk=");
    /* with a header to skip: folded fields and no body at all */
    check_body("Subject: x\n\tfolded\nFrom: a@b\n\nHi \t there \n\n\n", true,
               "LaegeaE4sWd4l9K7YWNlAinmqUePEZwKG9dMjiYmLn8=");
    check_body("Subject: x\n", true, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    check_body("\nno end", true, "DPtq8IYpnX5f3lS41Dyy8AB9rByWYkxflimp5qbli9w=");
    /* RFC 8463 A.3's bh= */
    check_body(rfc_msg, true, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
}

/* test_from_domain - the From: address's domain, lower case. */
static void
test_from_domain(void **state)
{
    char d[256];
    static const char m1[] = "To: x@y\nFROM: \"A <b@c>\" <Joe@Football.Example.COM> (x)\n\nb\n";
    static const char m2[] = "from: joe@ex.org\n\n";
    static const char m3[] = "To: x@y\n\nFrom: a@b.c\n";

    (void)state;
    assert_true(dkim_from_domain(m1, strlen(m1), d, sizeof(d)));
    assert_string_equal(d, "football.example.com");
    assert_true(dkim_from_domain(m2, strlen(m2), d, sizeof(d)));
    assert_string_equal(d, "ex.org");
    assert_false(dkim_from_domain(m3, strlen(m3), d, sizeof(d))); /* in the body */
    /* far down a long header */
    char *big = xmalloc(400 * 20 + sizeof(rfc_msg));
    size_t n = 0;
    for (int i = 0; i < 400; i++)
        n += (size_t)sprintf(big + n, "Received: hop %03d\n", i);
    memcpy(big + n, rfc_msg, sizeof(rfc_msg));
    assert_true(dkim_from_domain(big, strlen(big), d, sizeof(d)));
    assert_string_equal(d, "football.example.com");
    free(big);
}

struct fx {
    char dir[UU_DIR_MAX];
    char key[UU_PATH_MAX];
};

static int
setup(void **state)
{
    return uu_setup_paths(state, sizeof(struct fx), "dkim", "ed.pem", NULL);
}

/* add - dkim_keys_add of "DOMAIN SELECTOR path": its result, reason printed. */
static int
add(struct dkim_keys **ks, const char *dom, const char *sel, const char *path, char *reason)
{
    char line[600];
    int rc;

    snprintf(line, sizeof(line), "%s %s %s", dom, sel, path);
    reason[0] = '\0';
    rc = dkim_keys_add(ks, NULL, line, reason, 300);
    if (rc < 0)
        print_message("%s\n", reason);
    return rc;
}

/* test_key_files - a key file others can read, a missing one, one that holds no key, a
 * bad line and a selector given twice are refused, each with its reason. */
static void
test_key_files(void **state)
{
    struct fx *f = *state;
    struct dkim_keys *ks = NULL;
    char reason[300], buf[200], *junk;

    uu_write_bytes(f->key, ed_pem, strlen(ed_pem));
    chmod(f->key, 0644);
    assert_int_equal(add(&ks, "ex.org", "s1", f->key, reason), -1);
    assert_non_null(strstr(reason, "readable or writable by others (mode 644)"));
    chmod(f->key, 0640);
    assert_int_equal(add(&ks, "Ex.ORG", "s1", f->key, reason), 0);
    assert_int_equal(add(&ks, "ex.org", "S1", f->key, reason), -1);
    assert_non_null(strstr(reason, "given twice"));
    assert_int_equal(add(&ks, "ex.org", "s2", "/nonexistent/k", reason), -1);
    assert_non_null(strstr(reason, "No such file"));
    junk = uu_put(f->dir, "junk.pem", "not a key\n");
    chmod(junk, 0600);
    assert_int_equal(add(&ks, "ex.org", "s2", junk, reason), -1);
    assert_non_null(strstr(reason, "not a PEM private key"));
    assert_int_equal(dkim_keys_add(&ks, NULL, "ex.org s2", reason, sizeof(reason)), -1);
    assert_string_equal(reason, "expected DOMAIN SELECTOR KEYFILE");
    assert_int_equal(add(&ks, "ex..org", "s2", f->key, reason), -1);
    assert_int_equal(dkim_keys_count(ks), 1);
    assert_true(dkim_keys_has(ks, "EX.org"));
    assert_false(dkim_keys_has(ks, "other.org"));
    assert_int_equal(dkim_keys_format(ks, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "ex.org/s1/ed25519");
    free(junk);
    dkim_keys_free(&ks);
    assert_null(ks);
}

/* b_value - the b= tag's value of a signature field without its folding. */
static size_t
b_value(const char *sig, unsigned char *out, size_t max)
{
    const char *p = strstr(sig, "\tb=");
    char b64[2048];
    size_t n = 0;
    int len;

    assert_non_null(p);
    for (p += 3; *p != '\0' && *p != ';' && n + 1 < sizeof(b64); p++)
        if (*p != ' ' && *p != '\t' && *p != '\n')
            b64[n++] = *p;
    b64[n] = '\0';
    assert_true(n / 4 * 3 <= max);
    len = EVP_DecodeBlock(out, (unsigned char *)b64, (int)n);
    assert_true(len > 0);
    while (n > 0 && b64[n - 1] == '=') {
        len--;
        n--;
    }
    return (size_t)len;
}

/* test_sign_rfc8463 - the example message signed with the example key: the fields, and
 * the signature verifies over the canonical form written out by hand. */
static void
test_sign_rfc8463(void **state)
{
    struct fx *f = *state;
    struct dkim_keys *ks = NULL;
    struct dkim_body b;
    unsigned char bh[DKIM_HASH_LEN], sig[128], digest[32];
    unsigned int dl = sizeof(digest);
    char reason[300], err[200], *out;
    size_t sl;
    EVP_MD_CTX *ctx;
    static const char canon[] =
        "from:Joe SixPack <joe@football.example.com>\r\n"
        "subject:Is dinner ready?\r\n"
        "date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
        "to:Suzie Q <suzie@shopping.example.net>\r\n"
        "message-id:<20030712040037.46341.5F8J@football.example.com>\r\n"
        "dkim-signature:v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; "
        "s=brisbane; t=1528637909; h=from:from:subject:date:to:message-id; "
        "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=";

    uu_write_bytes(f->key, ed_pem, strlen(ed_pem));
    assert_int_equal(add(&ks, "football.example.com", "brisbane", f->key, reason), 0);
    dkim_body_init(&b, true);
    dkim_body_feed(&b, rfc_msg, strlen(rfc_msg));
    dkim_body_final(&b, bh);
    assert_null(
        dkim_sign(ks, "other.example", rfc_msg, strlen(rfc_msg), bh, 1528637909, err, sizeof(err)));
    out = dkim_sign(ks, "football.example.com", rfc_msg, strlen(rfc_msg), bh, 1528637909, err,
                    sizeof(err));
    assert_non_null(out);
    print_message("%s", out);
    assert_true(strncmp(out, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;", 57) == 0);
    assert_null(strstr(out, "l="));
    assert_int_equal(out[strlen(out) - 1], '\n');
    sl = b_value(out, sig, sizeof(sig));
    assert_int_equal(sl, 64);
    /* RFC 8463: Ed25519 over the SHA-256 of the data */
    assert_int_equal(EVP_Digest(canon, strlen(canon), digest, &dl, EVP_sha256(), NULL), 1);
    ctx = EVP_MD_CTX_new();
    /* the key's public half: a fresh load of the PEM */
    {
        BIO *bio = BIO_new_mem_buf(ed_pem, -1);
        EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        assert_non_null(pk);
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
        assert_int_equal(EVP_DigestVerify(ctx, sig, sl, digest, dl), 1);
        EVP_PKEY_free(pk);
        BIO_free(bio);
    }
    EVP_MD_CTX_free(ctx);
    free(out);
    dkim_keys_free(&ks);
}

/* test_keygen - dkim_keygen writes a 0600 key that loads, and its TXT record; it does not
 * replace a file. */
static void
test_keygen(void **state)
{
    struct fx *f = *state;
    char txt[1024], txt2[1024], err[200], reason[300];
    struct dkim_keys *ks = NULL;
    struct stat st;
    char *rsa = uu_path(f->dir, "rsa.pem");

    assert_int_equal(dkim_keygen(f->key, false, txt, sizeof(txt), err, sizeof(err)), 0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(strncmp(txt, "v=DKIM1; k=ed25519; p=", 22) == 0);
    assert_int_equal(strlen(txt), 22 + 44);
    assert_int_equal(dkim_txt_record(f->key, txt2, sizeof(txt2), err, sizeof(err)), 0);
    assert_string_equal(txt, txt2);
    assert_int_equal(dkim_keygen(f->key, false, txt, sizeof(txt), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "File exists"));
    assert_int_equal(dkim_keygen(rsa, true, txt, sizeof(txt), err, sizeof(err)), 0);
    assert_true(strncmp(txt, "v=DKIM1; k=rsa; p=MIIBIjAN", 26) == 0);
    assert_int_equal(add(&ks, "ex.org", "ed", f->key, reason), 0);
    assert_int_equal(add(&ks, "ex.org", "rs", rsa, reason), 0);
    assert_int_equal(dkim_keys_format(ks, txt, sizeof(txt)), 0);
    assert_string_equal(txt, "ex.org/ed/ed25519 ex.org/rs/rsa");
    dkim_keys_free(&ks);
    free(rsa);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_body_vectors), cmocka_unit_test(test_from_domain),
        cmocka_unit_test_setup_teardown(test_key_files, setup, uu_teardown_dir),
        cmocka_unit_test_setup_teardown(test_sign_rfc8463, setup, uu_teardown_dir),
        cmocka_unit_test_setup_teardown(test_keygen, setup, uu_teardown_dir))
