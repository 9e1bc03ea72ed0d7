/*
 * fuzz_users - the users file (common/mail/auth.c) read from a file, then looked up by
 * the names in it: every loaded entry must be found again by its own name and domain.
 */
#include "../../common/mail/auth.h"
#include "fuzz_util.h"

static struct conf *fuzz_users_conf;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_diag d = {0};
    struct auth_db *db;
    const char *path = fuzz_file("users", data, size);

    if (fuzz_users_conf == NULL) {
        struct conf_diag cd = {0};
        fuzz_users_conf =
            conf_load_string("fuzz.conf", "host_domain example.org alias.example\n", &cd);
        conf_diag_free(&cd);
        fuzz_check(fuzz_users_conf != NULL);
    }
    db = auth_db_load(path, &d);
    fuzz_check(db != NULL);
    for (size_t i = 0; i < d.n; i++)
        fuzz_check(d.msgs[i] != NULL);
    /* a few lookups by names taken from the lines themselves */
    char *text = fuzz_cstr(data, size), *save = NULL;
    int k = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL && k < 8;
         line = strtok_r(NULL, "\n", &save), k++) {
        line[strcspn(line, ":")] = '\0';
        char *at = strchr(line, '@');
        if (at != NULL)
            *at++ = '\0';
        (void)auth_db_find(db, fuzz_users_conf, line, at != NULL ? at : "example.org");
        (void)auth_db_find_login(db, fuzz_users_conf, line);
    }
    free(text);
    auth_db_unref(&db);
    fuzz_check(db == NULL);
    conf_diag_free(&d);
    return 0;
}
