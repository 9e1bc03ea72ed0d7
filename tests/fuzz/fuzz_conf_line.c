/*
 * fuzz_conf_line - one dmail.conf line (common/mail/conf*.c): the first line of the input
 * as a file of its own, and its value through each value parser (bool, int, size, time,
 * enum and list item of the setting it names).
 */
#include "../../common/mail/conf_int.h"
#include "fuzz_conf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char *line = fuzz_cstr(data, nl != NULL ? (size_t)(nl - data) : size);
    char reason[CONF_REASON_MAX];
    unsigned long long u;
    long l;
    bool b;
    int e;

    fuzz_conf_load(line);
    /* "name value": the value alone through every parser */
    char *v = line + strcspn(line, " \t");
    v += strspn(v, " \t");
    reason[0] = '\0';
    if (conf_value_bool(v, &b, reason, sizeof reason) < 0)
        fuzz_check(reason[0] != '\0');
    reason[0] = '\0';
    if (conf_value_int(v, &l, reason, sizeof reason) < 0)
        fuzz_check(reason[0] != '\0');
    (void)conf_value_size(v, true, &u, reason, sizeof reason);
    (void)conf_value_size(v, false, &u, reason, sizeof reason);
    (void)conf_value_time(v, &l, reason, sizeof reason);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(line, " \t"), line);
    const struct conf_setting *row = conf_lookup(name);
    if (row != NULL) {
        int id = (int)(row - conf_settings);
        if (row->type == CT_ENUM && conf_value_enum(row, v, &e, reason, sizeof reason) == 0)
            fuzz_check(e >= 0);
        if (row->type == CT_LIST) {
            char *item = strdup(v);
            if (item == NULL)
                abort();
            (void)conf_value_item(id, &item, reason, sizeof reason);
            free(item);
        }
    }
    free(line);
    return 0;
}
