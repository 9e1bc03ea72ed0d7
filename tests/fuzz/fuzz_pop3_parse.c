/*
 * fuzz_pop3_parse - one POP3 command line (NULs and all) through dpop/pop3_parse.
 * Invariants: an error has its reply text; arguments point into the line; numbers are in
 * range.
 */
#include "../../dpop/pop3_parse.h"
#include "fuzz_util.h"

static void
check_arg(const char *line, size_t len, const char *arg, size_t alen)
{
    if (arg == NULL)
        return;
    fuzz_check(arg >= line && arg + alen <= line + len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_cstr(data, size);
    struct pop3_cmd c;

    memset(&c, 0, sizeof c);
    int rc = pop3_parse(line, size, &c);
    fuzz_check(pop3_parse_verb_name(c.verb) != NULL);
    if (rc != 0) {
        fuzz_check(rc == -1 && c.err != POP3_PERR_NONE && c.err < POP3_PERR_COUNT);
        fuzz_check(pop3_parse_errtext(c.err) != NULL);
    } else {
        fuzz_check(c.verb != POP3_V_UNKNOWN);
        check_arg(line, size, c.arg1, c.arg1_len);
        check_arg(line, size, c.arg2, c.arg2_len);
        fuzz_check(c.num <= POP3_NUM_MAX && c.num2 <= POP3_NUM_MAX);
        if (c.verb == POP3_V_RETR || c.verb == POP3_V_DELE || c.verb == POP3_V_TOP)
            fuzz_check(c.has_num && c.num >= 1);
    }
    (void)pop3_parse_uid_ok(line, size);
    free(line);
    return 0;
}
