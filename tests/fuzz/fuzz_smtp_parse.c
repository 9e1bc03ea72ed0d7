/*
 * fuzz_smtp_parse - one SMTP command line through dsmtp/smtp_parse: the verb split, then
 * the argument parser of that verb (MAIL, RCPT, HELO/EHLO, BDAT, AUTH with its base64 and
 * SASL PLAIN), with and without ESMTP. Invariants: replies are 4xx/5xx with a status.
 */
#include "../../dsmtp/smtp_parse.h"
#include "fuzz_util.h"

static void
check_err(int rc, const struct smtp_perr *e)
{
    if (rc == 0)
        return;
    fuzz_check(rc == -1);
    fuzz_check(e->code >= 400 && e->code <= 599);
    fuzz_check(e->ecode != NULL);
    fuzz_check(memchr(e->text, '\0', sizeof e->text) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_cstr(data, size);
    struct smtp_cmdline cl;
    struct smtp_perr e;
    char fmt[600];

    smtp_parse_line(line, &cl);
    fuzz_check(smtp_parse_verb_name(cl.verb) != NULL);
    fuzz_check(cl.args != NULL);
    (void)smtp_parse_has_arg(cl.args);
    (void)smtp_parse_is_8bit(cl.args);
    for (int esmtp = 0; esmtp <= 1; esmtp++) {
        struct smtp_mail m;
        struct smtp_rcpt r;
        memset(&e, 0, sizeof e);
        memset(&m, 0, sizeof m);
        int rc = smtp_parse_mail(cl.args, esmtp, &m, &e);
        check_err(rc, &e);
        if (rc == 0) {
            addr_format(&m.from, fmt, sizeof fmt);
            fuzz_check(strlen(m.envid) <= DSNPARAM_ENVID_MAX);
        }
        memset(&e, 0, sizeof e);
        memset(&r, 0, sizeof r);
        rc = smtp_parse_rcpt(cl.args, esmtp, &r, &e);
        check_err(rc, &e);
        if (rc == 0) {
            addr_format(&r.to, fmt, sizeof fmt);
            fuzz_check(dsnparam_notify_valid(r.notify));
            fuzz_check(strlen(r.orcpt) <= DSNPARAM_ORCPT_MAX);
        }
    }
    char helo[256];
    memset(&e, 0, sizeof e);
    if (smtp_parse_helo(cl.args, helo, sizeof helo, &e) == 0)
        fuzz_check(strlen(helo) < sizeof helo);
    else
        check_err(-1, &e);
    unsigned long long n;
    bool last;
    memset(&e, 0, sizeof e);
    check_err(smtp_parse_bdat(cl.args, &n, &last, &e), &e);
    char mech[21];
    const char *initial = NULL;
    memset(&e, 0, sizeof e);
    if (smtp_parse_auth(cl.args, mech, sizeof mech, &initial, &e) == 0) {
        fuzz_check(strlen(mech) < sizeof mech);
        if (initial != NULL) {
            char dec[512];
            long k = smtp_parse_base64(initial, strlen(initial), dec, sizeof dec);
            if (k >= 0) {
                const char *user, *pass;
                char enc[800];
                fuzz_check((size_t)k < sizeof dec);
                (void)smtp_parse_plain(dec, (size_t)k, &user, &pass);
                /* round trip: what was decoded, encoded and decoded again, is the same */
                if (smtp_parse_base64_encode(dec, (size_t)k, enc, sizeof enc) >= 0 && k > 0) {
                    char again[512];
                    long k2 = smtp_parse_base64(enc, strlen(enc), again, sizeof again);
                    fuzz_check(k2 == k && memcmp(again, dec, (size_t)k) == 0);
                }
            }
        }
    } else {
        check_err(-1, &e);
    }
    free(line);
    return 0;
}
