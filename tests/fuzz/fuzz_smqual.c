/*
 * fuzz_smqual - sendmail/smqual (and smaddr, which parses the same header values): a
 * header value whose bare addresses get a domain. Invariants: the result only grows by
 * whole "@domain" insertions; qualifying it again changes nothing; smaddr finds as many
 * addresses in it as in the input, and parses it when it parsed the input.
 */
#include "../../sendmail/smaddr.h"
#include "../../sendmail/smqual.h"
#include "fuzz_util.h"

#define DOMAIN "example.test"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size), *out, *again, err[128];
    size_t len = strlen(in), dlen = strlen(DOMAIN);
    struct smaddr_list a = {0}, b = {0};

    out = smqual_value(in, len, DOMAIN);
    if (out != NULL) {
        size_t olen = strlen(out);
        fuzz_check(olen > len && (olen - len) % (dlen + 1) == 0);
        again = smqual_value(out, olen, DOMAIN);
        fuzz_check(again == NULL);
        if (smaddr_extract(in, len, &a, err, sizeof err) == 0) {
            fuzz_check(smaddr_extract(out, olen, &b, err, sizeof err) == 0);
            fuzz_check(a.n == b.n);
        }
    }
    smaddr_free(&a);
    smaddr_free(&b);
    free(out);
    free(in);
    return 0;
}
