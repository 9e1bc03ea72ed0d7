/*
 * fuzz_alias - an alias file (common/mail/alias.c) from memory: the parser (continuation
 * and comment lines, quoting, every kind of destination, the errors), then lookups and
 * expansions through the table it built (route.c), and its release. :include: is not
 * honoured (the file is not trusted), so no path of the input is ever opened.
 */
#include "fuzz_util.h"

#include "alias.h"
#include "conf.h"
#include "route.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"a", "b", "root", "postmaster", "", "x.y", "list"};
    char *text = fuzz_cstr(data, size);
    struct conf_diag diag = {0};
    struct route *rt = NULL;
    struct route_expansion *x = malloc(sizeof(*x));
    int errors = alias_parse(&rt, "fuzz.aliases", "example.org", text, size, false, &diag);

    fuzz_check(errors >= 0 && x != NULL);
    fuzz_check(errors == 0 || diag.errors > 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *l = route_lookup(rt, names[i], "example.org");
        for (; l != NULL && *l != '\0'; l += strlen(l) + 1)
            fuzz_check(strlen(l) < 2000);
        route_expand(rt, names[i], "example.org", NULL, NULL, x);
        fuzz_check(x->n <= ROUTE_EXPAND_MAX);
        fuzz_check(x->status == ROUTE_FORWARDED || x->n == 0);
    }
    free(x);
    route_free(&rt);
    conf_diag_free(&diag);
    free(text);
    return 0;
}
