/*
 * test_smtp_dotfwd - forward files (dsmtp/dotfwd.c: format, owner and mode checks) and the
 * local delivery agent (dsmtp/lda.c: exit codes, time limit, mbox files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../dsmtp/dotfwd.h"
#include "../../dsmtp/lda.h"
#include "file.h"
#include "unit_util.h"

static char *tmpdir;

static struct conf *
load(const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "host_domain example.org\ndrop_path %s\nspool_dir %s/spool\nlock_timeout 1\n%s",
             tmpdir, tmpdir, extra);
    return uu_conf("test.conf", text);
}

/* A forward file's text parsed for bob@example.org. */
static void
test_parse(void **state)
{
    struct conf *cf = load("");
    char path[600], mbox[600], err[200];
    struct dotfwd f;

    (void)state;
    snprintf(mbox, sizeof(mbox), "%s/bob", tmpdir);
    snprintf(path, sizeof(path), "%s/bob.fwd", tmpdir);
    assert_int_equal(dotfwd_read(cf, "bob@example.org", mbox, &f, err, sizeof(err)), 0);
    uu_write(path, "# comment, with a comma\n\n  Alice@Example.NET , carol\n\\bob\n"
                   "\"|/usr/bin/procmail -a x,y\"\n/var/mail/archive\n$user\nbob@example.org\n"
                   "not an address\n");
    chmod(path, 0600);
    assert_int_equal(dotfwd_read(cf, "bob@example.org", mbox, &f, err, sizeof(err)), 1);
    assert_int_equal(f.n, 7);
    assert_int_equal(f.e[0].kind, DOTFWD_ADDR);
    assert_string_equal(f.e[0].s, "Alice@example.net");
    assert_int_equal(f.e[1].kind, DOTFWD_ADDR);
    assert_string_equal(f.e[1].s, "carol@example.org");
    assert_int_equal(f.e[2].kind, DOTFWD_SELF);
    assert_int_equal(f.e[3].kind, DOTFWD_PROGRAM);
    assert_string_equal(f.e[3].s, "/usr/bin/procmail -a x,y");
    assert_int_equal(f.e[4].kind, DOTFWD_FILE);
    assert_string_equal(f.e[4].s, "/var/mail/archive");
    assert_int_equal(f.e[5].kind, DOTFWD_SELF);
    assert_int_equal(f.e[6].kind, DOTFWD_SELF);
    assert_null(f.deny);
    assert_string_equal(f.user, "bob");
    assert_string_equal(f.home, tmpdir);
    dotfwd_free(&f);
    /* group-writable: read, but programs and files refused */
    chmod(path, 0620);
    assert_int_equal(dotfwd_read(cf, "bob@example.org", mbox, &f, err, sizeof(err)), 1);
    assert_non_null(f.deny);
    dotfwd_free(&f);
    /* world-writable or a symbolic link: ignored */
    chmod(path, 0602);
    assert_int_equal(dotfwd_read(cf, "bob@example.org", mbox, &f, err, sizeof(err)), 0);
    dotfwd_free(&f);
    chmod(path, 0600);
    unlink(path);
    assert_int_equal(symlink(mbox, path), 0);
    assert_int_equal(dotfwd_read(cf, "bob@example.org", mbox, &f, err, sizeof(err)), 0);
    dotfwd_free(&f);
    unlink(path);
    conf_unref(&cf);
}

struct lda_case {
    const char *cmd;
    enum drop_result want;
    const char *err; /* a part of err, or NULL */
};

static const struct lda_case lda_cases[] = {
    {"cat > /dev/null", DROP_OK, NULL},
    {"/bin/cat", DROP_OK, NULL},                      /* run without the shell */
    {"/bin/sh -c 'exit 75'", DROP_TEMP, "status 75"}, /* quotes: through the shell */
    {"/usr/bin/test -n x", DROP_OK, NULL},
    {"/nonexistent/prog arg", DROP_PERM, "status 127: cannot execute the command"},
    {"read a; test \"$a\" = 'Return-Path: <s@example.net>' && read b && "
     "test \"$b\" = 'Delivered-To: bob@example.org' && test \"$PATH\" = /usr/bin:/bin && "
     "test \"$(umask)\" = 0077 && test \"$RECIPIENT\" = bob@example.org",
     DROP_OK, NULL},
    {"echo try later; exit 75", DROP_TEMP, "command exited with status 75: try later"},
    {"echo '  ' ; echo 'bad folder' >&2; exit 1", DROP_PERM,
     "command exited with status 1: bad folder"},
    {"exit 73", DROP_PERM, "status 73"},
    {"kill -TERM $$", DROP_TEMP, "signal 15"},
    {"sleep 30", DROP_TEMP, "command time limit exceeded (1s)"},
    {"exec >&-; exec 2>&-; sleep 30", DROP_TEMP, "time limit"},
};

static void
test_lda_program(void **state)
{
    struct conf *cf = load("command_time_limit 1\n");
    const char *text = "Subject: hi\n\nbody\n";
    struct lda_msg m = {
        "bob@example.org", "s@example.net", text, strlen(text), "bob", tmpdir, NULL};

    (void)state;
    for (size_t i = 0; i < sizeof(lda_cases) / sizeof(lda_cases[0]); i++) {
        char err[300] = "";
        enum drop_result r = lda_program(cf, lda_cases[i].cmd, &m, err, sizeof(err));
        if (r != lda_cases[i].want || (lda_cases[i].err && !strstr(err, lda_cases[i].err)))
            fail_msg("case %zu (%s): result %d err '%s'", i, lda_cases[i].cmd, (int)r, err);
    }
    conf_unref(&cf);
}

static void
test_lda_file(void **state)
{
    struct conf *cf = load("");
    const char *text = "Subject: hi\n\nFrom me\n";
    struct lda_msg m = {
        "bob@example.org", "s@example.net", text, strlen(text), "bob", tmpdir, NULL};
    char path[600], link[600], err[200], *got;
    size_t n;

    (void)state;
    snprintf(path, sizeof(path), "%s/archive", tmpdir);
    snprintf(link, sizeof(link), "%s/archive-link", tmpdir);
    assert_int_equal(lda_file(cf, path, &m, err, sizeof(err)), DROP_OK);
    assert_int_equal(lda_file(cf, path, &m, err, sizeof(err)), DROP_OK);
    assert_int_equal(file_read_all(path, 1 << 20, &got, &n), 0);
    assert_non_null(strstr(got, "Return-Path: <s@example.net>\nDelivered-To: bob@example.org\n"));
    assert_non_null(strstr(got, "\n>From me\n")); /* mbox quoting */
    assert_int_equal(strncmp(got, "From s@example.net ", 19), 0);
    free(got);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(lda_file(cf, link, &m, err, sizeof(err)), DROP_PERM);
    assert_int_equal(lda_file(cf, "relative", &m, err, sizeof(err)), DROP_PERM);
    conf_unref(&cf);
}

static int
setup(void **state)
{
    if (uu_setup_dir(state, UU_DIR_MAX, "test_smtp_dotfwd") < 0)
        return -1;
    tmpdir = *state;
    return 0;
}

UU_MAIN(setup, uu_teardown_dir, cmocka_unit_test(test_parse), cmocka_unit_test(test_lda_program),
        cmocka_unit_test(test_lda_file))
