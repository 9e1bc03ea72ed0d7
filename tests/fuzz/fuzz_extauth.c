/*
 * fuzz_extauth - one authent_process answer line (NULs and all) through
 * common/mail/extauth_proto. Invariants: the kind is one of the five; an +OK has a user
 * and an absolute-or-not drop that are NUL-terminated words without blanks; any other
 * kind leaves user and drop empty.
 */
#include "../../common/mail/extauth_proto.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_cstr(data, size);
    struct extauth_answer a;
    enum extauth_kind k = extauth_parse(line, size, &a);
    char buf[EXTAUTH_WORD_MAX * 3 + 100];

    fuzz_check(k == a.kind && k >= EA_OK && k <= EA_BAD);
    if (k == EA_OK) {
        fuzz_check(a.user[0] != '\0' && strchr(a.user, ' ') == NULL);
        fuzz_check(a.drop[0] != '\0' && strchr(a.drop, ' ') == NULL);
        fuzz_check(a.uid >= 0);
    } else {
        fuzz_check(a.user[0] == '\0' && a.drop[0] == '\0');
    }
    fuzz_check(strlen(a.fwd) < sizeof a.fwd && strlen(a.reason) < sizeof a.reason);
    int n = extauth_format_lookup(buf, sizeof buf, line);
    fuzz_check(n == -1 || (n > 0 && buf[n - 1] == '\n' && strchr(buf, '\r') == NULL));
    free(line);
    return 0;
}
