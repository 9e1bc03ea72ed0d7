/*
 * fuzz_conf - what the two dmail.conf targets share: the text given to conf_load_string
 * with #include lines kept out (an include reads any path the input names), and the
 * checks on the result.
 */
#ifndef DMAIL_FUZZ_CONF_H
#define DMAIL_FUZZ_CONF_H

#include "../../common/mail/conf.h"
#include "fuzz_util.h"

/* fuzz_conf_load - parse text as dmail.conf; the snapshot or its diagnostics must be
 * there. Texts holding "include" are skipped. */
static inline void
fuzz_conf_load(const char *text)
{
    struct conf_diag d = {0};
    struct conf *c;

    if (strcasestr(text, "include") != NULL)
        return;
    c = conf_load_string("fuzz.conf", text, &d);
    if (c == NULL)
        fuzz_check(d.n > 0); /* a refused file says why */
    for (size_t i = 0; i < d.n; i++)
        fuzz_check(d.msgs[i] != NULL && strncmp(d.msgs[i], "fuzz.conf", 9) == 0);
    if (c != NULL) {
        /* every setting can be formatted */
        char buf[4096];
        for (int id = 0; id < CONF_NSETTINGS; id++)
            (void)conf_format(c, (enum conf_setting_id)id, buf, sizeof buf);
        conf_unref(&c);
        fuzz_check(c == NULL);
    }
    conf_diag_free(&d);
}

#endif
