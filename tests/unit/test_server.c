/*
 * test_server - command line, config check exit codes, privilege drop, pid file.
 *
 * Functions that exit run in a forked child; the test checks its exit code and output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "file.h"
#include "server.h"
#include "xmem.h"
#include "unit_util.h"

struct child {
    int status; /* exit code, or -1 if killed */
    char out[8192];
    char err[8192];
};

/* drain - read a pipe until EOF into buf. */
static void
drain(int fd, char *buf, size_t len)
{
    size_t off = 0;
    ssize_t n;
    while ((n = read(fd, buf + off, len - off - 1)) > 0)
        off += (size_t)n;
    buf[off] = '\0';
    close(fd);
}

/* run_args - server_args (and, with load, server_load_config) in a child. */
static void
run_args(struct child *ch, bool load, int argc, ...)
{
    char *argv[16];
    int po[2], pe[2], st;
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct server_opts o;
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        server_args(argc, argv, "dtest", "dtest - a test server", &o);
        printf("conf=%s fg=%d test=%d\n", o.conf_path, o.foreground, o.test_only);
        if (load) {
            struct conf *c = server_load_config(&o);
            printf("loaded max_rcpts=%ld\n", c->max_rcpts);
            conf_unref(&c);
        }
        fflush(NULL);
        _exit(42);
    }
    close(po[1]);
    close(pe[1]);
    /* outputs are small: read one, then the other */
    drain(po[0], ch->out, sizeof(ch->out));
    drain(pe[0], ch->err, sizeof(ch->err));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ch->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_args(void **state)
{
    struct child ch;

    run_args(&ch, false, 4, "dtest", "-c", "/x.conf", "-f");
    assert_int_equal(ch.status, 42);
    assert_string_equal(ch.out, "conf=/x.conf fg=1 test=0\n");

    run_args(&ch, false, 3, "dtest", "-ft", "-i/y.conf");
    assert_int_equal(ch.status, 42);
    assert_string_equal(ch.out, "conf=/y.conf fg=1 test=1\n");

    run_args(&ch, false, 3, "dtest", "-tc", "/z.conf");
    assert_int_equal(ch.status, 42);
    assert_string_equal(ch.out, "conf=/z.conf fg=0 test=1\n");

    setenv("DMAIL_CONF", "/env.conf", 1);
    run_args(&ch, false, 1, "dtest");
    assert_int_equal(ch.status, 42);
    assert_string_equal(ch.out, "conf=/env.conf fg=0 test=0\n");
    unsetenv("DMAIL_CONF");

    run_args(&ch, false, 2, "dtest", "--version");
    assert_int_equal(ch.status, 0);
    assert_string_equal(ch.out, "dtest (dmail) " DMAIL_VERSION "\n");

    run_args(&ch, false, 2, "dtest", "--help");
    assert_int_equal(ch.status, 0);
    assert_non_null(strstr(ch.out, "usage: dtest [-c FILE] [-f] [-t]"));
    assert_non_null(strstr(ch.out, "dtest - a test server"));
    assert_string_equal(ch.err, "");
}

static void
test_args_bad(void **state)
{
    struct child ch;

    run_args(&ch, false, 2, "dtest", "-x");
    assert_int_equal(ch.status, 64);
    assert_non_null(strstr(ch.err, "dtest: unknown flag -x"));
    assert_non_null(strstr(ch.err, "usage:"));
    assert_string_equal(ch.out, "");

    run_args(&ch, false, 2, "dtest", "-c");
    assert_int_equal(ch.status, 64);
    assert_non_null(strstr(ch.err, "-c needs a file name"));

    run_args(&ch, false, 3, "dtest", "-f", "extra");
    assert_int_equal(ch.status, 64);
    assert_non_null(strstr(ch.err, "unexpected argument 'extra'"));

    run_args(&ch, false, 2, "dtest", "--verbose");
    assert_int_equal(ch.status, 64);
}

static void
test_load_config(void **state)
{
    char *dir = uu_tmpdir("test_server");
    struct child ch;

    char *good = xasprintf("%s/good.conf", dir);
    char *warn = xasprintf("%s/warn.conf", dir);
    char *bad = xasprintf("%s/bad.conf", dir);
    char *missing = xasprintf("%s/missing.conf", dir);
    assert_int_equal(file_write_atomic(good, "max_rcpts 7\n", 12, 0644), 0);
    assert_int_equal(file_write_atomic(warn, "max_rcpts 8\nfoo 1\n", 18, 0644), 0);
    assert_int_equal(file_write_atomic(bad, "max_rcpts x\nvrfy y\nbar 2\n", 25, 0644), 0);

    /* -t: exit 0 on a clean file or warnings only, 78 on errors, every problem printed */
    run_args(&ch, true, 4, "dtest", "-t", "-c", good);
    assert_int_equal(ch.status, 0);
    assert_string_equal(ch.err, "");
    run_args(&ch, true, 4, "dtest", "-t", "-c", warn);
    assert_int_equal(ch.status, 0);
    char *want = xasprintf("%s:2: warning: unknown setting 'foo'\n", warn);
    assert_true(strncmp(ch.err, want, strlen(want)) == 0);
    free(want);
    run_args(&ch, true, 4, "dtest", "-t", "-c", bad);
    assert_int_equal(ch.status, 78);
    want = xasprintf("%s:1: max_rcpts: 'x' is not a whole number\n"
                     "%s:2: vrfy: 'y' is not a boolean (true or false)\n"
                     "%s:3: warning: unknown setting 'bar'\n"
                     "dtest: %s: 2 errors, 1 warning\n",
                     bad, bad, bad, bad);
    assert_string_equal(ch.err, want);
    free(want);
    run_args(&ch, true, 4, "dtest", "-t", "-c", missing);
    assert_int_equal(ch.status, 78);

    /* without -t: the snapshot comes back, or exit 78 */
    run_args(&ch, true, 3, "dtest", "-c", good);
    assert_int_equal(ch.status, 42);
    assert_non_null(strstr(ch.out, "loaded max_rcpts=7"));
    run_args(&ch, true, 3, "dtest", "-c", bad);
    assert_int_equal(ch.status, 78);
    assert_non_null(strstr(ch.err, "has errors"));
    assert_null(strstr(ch.out, "loaded"));
    uu_tmpdir_free(dir);
    free(good);
    free(warn);
    free(bad);
    free(missing);
}

/* drop_in_child - server_drop_privileges in a child; its result as an exit code. */
static int
drop_in_child(const char *user, char *err, size_t errlen)
{
    int p[2], st;

    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[256] = "";
        close(p[0]);
        int rc = server_drop_privileges(user, e, sizeof(e));
        if (rc == 0 && getuid() == 0)
            _exit(3);
        if (write(p[1], e, strlen(e)) < 0)
            _exit(4);
        _exit(rc == 0 ? 0 : 1);
    }
    close(p[1]);
    drain(p[0], err, errlen);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_drop_privileges(void **state)
{
    char err[256];

    if (geteuid() != 0) {
        /* not root: nothing to do, whatever run_as says */
        assert_int_equal(drop_in_child("root", err, sizeof(err)), 0);
        assert_int_equal(drop_in_child("no-such-user-x", err, sizeof(err)), 0);
        skip();
    }
    assert_int_equal(drop_in_child("root", err, sizeof(err)), 1);
    assert_non_null(strstr(err, "refusing to run as root"));
    assert_int_equal(drop_in_child("", err, sizeof(err)), 1);
    assert_non_null(strstr(err, "refusing to run as root"));
    assert_int_equal(drop_in_child("no-such-user-x", err, sizeof(err)), 1);
    assert_non_null(strstr(err, "no-such-user-x"));
    assert_int_equal(drop_in_child("nobody", err, sizeof(err)), 0);
}

static void
test_pidfile(void **state)
{
    char *dir = uu_tmpdir("test_server");
    char *text;
    size_t len;

    char *path = xasprintf("%s/dtest.pid", dir);
    assert_int_equal(server_pidfile(path), 0);
    assert_int_equal(file_read_all(path, 64, &text, &len), 0);
    char *want = xasprintf("%ld\n", (long)getpid());
    assert_string_equal(text, want);
    free(want);
    free(text);
    uu_tmpdir_free(dir);
    free(path);
    assert_int_equal(server_pidfile("/nonexistent-dir/x.pid"), -1);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_args), cmocka_unit_test(test_args_bad),
        cmocka_unit_test(test_load_config), cmocka_unit_test(test_drop_privileges),
        cmocka_unit_test(test_pidfile))
