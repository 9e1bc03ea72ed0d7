/*
 * fuzz_lists - lists.dat (common/mail/lists.c) from memory: the parser (lists, every
 * setting, the errors), then the address lookups and access rules of the set it built,
 * and its release. Nothing of the input is opened as a file.
 */
#include "fuzz_util.h"

#include "conf.h"
#include "lists.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const locals[] = {
        "talk", "talk-request", "talk-owner", "talk-bounces", "a-bounces+b=c", "x", ""};
    struct conf_diag diag = {0};
    struct lists_set *ls = NULL;
    int errors = lists_parse("fuzz.dat", "/d", "example.org", (const char *)data, size, &diag, &ls);

    fuzz_check(errors >= 0);
    fuzz_check(errors == 0 || (diag.errors > 0 && ls == NULL));
    for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
        const struct lists_def *def = NULL;
        const char *verp = NULL;
        enum lists_role r = lists_role(ls, locals[i], "example.org", &def, &verp);
        fuzz_check((r == LISTS_NONE) == (def == NULL));
        fuzz_check(r != LISTS_ROLE_BOUNCES || verp != NULL);
    }
    for (size_t i = 0; ls != NULL && i < ls->n; i++) {
        const struct lists_def *d = &ls->v[i];
        fuzz_check(lists_find(ls, d->name) == d);
        fuzz_check(d->max_size > 0 && d->nmoderators <= LISTS_MODERATORS_MAX);
        for (size_t k = 0; k < LISTS_NRULES; k++) {
            fuzz_check(lists_access_text(&d->access[k]) != NULL);
            (void)lists_may(&d->access[k], "bob@example.org", false, false);
        }
    }
    lists_free(&ls);
    conf_diag_free(&diag);
    return 0;
}
