/*
 * fuzz_addr - common/mail/addr: a path in angle brackets, a bare mailbox and a domain, with
 * the flags (null path allowed, SMTPUTF8) taken from the first byte. Invariants: results
 * fit their fields; domains are lower-case ASCII, local parts ASCII unless SMTPUTF8 and
 * never hold CR or LF; a parsed path, formatted and parsed again, gives the same address.
 */
#include "../../common/mail/addr.h"
#include "fuzz_util.h"

/* check_ascii - the domain is a lower-case A-label or a literal (ASCII, no controls, no
 * upper case); the local part is ASCII unless UTF-8 was allowed and never holds CR or LF
 * (it is written into SMTP lines and queue files). */
static void
check_ascii(const struct addr *a, bool utf8)
{
    for (const char *p = a->domain; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        fuzz_check(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z' && a->domain[0] != '['));
    }
    for (const char *p = a->local; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        fuzz_check(c != '\r' && c != '\n' && (utf8 || c < 0x80));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_src src = {data, size};
    uint8_t flags = fuzz_byte(&src);
    char *s = fuzz_cstr(src.p, src.n);
    struct addr a, b;
    const char *end = NULL;
    char err[128], buf[ADDR_LOCAL_MAX * 2 + ADDR_DOMAIN_MAX + 8], unq[ADDR_LOCAL_MAX * 2 + 3];
    bool allow_null = flags & 1, utf8 = flags & 2;

    memset(&a, 0, sizeof a);
    if (addr_parse_path(s, allow_null, utf8, &a, &end, err, sizeof err) == 0) {
        fuzz_check(end != NULL && end > s && end <= s + strlen(s));
        fuzz_check(strlen(a.local) < sizeof a.local && strlen(a.domain) < sizeof a.domain);
        check_ascii(&a, utf8);
        addr_format(&a, buf, sizeof buf);
        addr_local_unquoted(&a, flags & 4, unq, sizeof unq);
        if (addr_is_null(&a)) {
            fuzz_check(allow_null && buf[0] == '\0');
        } else {
            /* the canonical form reads back as itself */
            char path[sizeof buf + 3];
            snprintf(path, sizeof path, "<%s>", buf);
            memset(&b, 0, sizeof b);
            fuzz_check(addr_parse_path(path, false, true, &b, &end, err, sizeof err) == 0);
            fuzz_check(strcmp(a.local, b.local) == 0 && strcmp(a.domain, b.domain) == 0);
        }
    }
    memset(&a, 0, sizeof a);
    if (addr_parse_mailbox(s, (flags & 8) ? "example.org" : NULL, &a, err, sizeof err) == 0) {
        check_ascii(&a, true);
        addr_format(&a, buf, sizeof buf);
        addr_local_unquoted(&a, flags & 4, unq, sizeof unq);
    }
    char dom[ADDR_DOMAIN_MAX + 1];
    if (addr_domain_normalize(s, dom, sizeof dom) == 0) {
        /* normalizing is idempotent */
        char again[ADDR_DOMAIN_MAX + 1];
        fuzz_check(addr_domain_normalize(dom, again, sizeof again) == 0);
        fuzz_check(strcmp(dom, again) == 0);
    }
    free(s);
    return 0;
}
