/*
 * fuzz_conf_file - a whole dmail.conf (common/mail/conf*.c) from memory: every line, the
 * checks across settings, the snapshot's formatting and release.
 */
#include "fuzz_conf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);

    fuzz_conf_load(text);
    free(text);
    return 0;
}
