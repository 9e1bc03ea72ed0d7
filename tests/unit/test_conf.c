/*
 * test_conf - dmail.conf parser: every type, every error path, includes, matching.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "file.h"
#include "milter_addr.h"
#include "xmem.h"
#include "unit_util.h"

/* load_value - the snapshot of "NAME VALUE" lines for each setting name given (a NULL
 * ends them), which must load without any message. */
static struct conf *
load_value(const char *value, ...)
{
    char *text = xstrdup("");
    va_list ap;

    va_start(ap, value);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        char *t = xasprintf("%s%s %s\n", text, name, value);
        free(text);
        text = t;
    }
    va_end(ap);
    struct conf *c = uu_conf_ok(text);
    free(text);
    return c;
}

/* file_ok - the snapshot of file path: it loads, with nmsgs messages (warnings). */
static struct conf *
file_ok(const char *path, size_t nmsgs)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load(path, &d);

    uu_diag_print(&d);
    assert_non_null(c);
    assert_int_equal(d.n, nmsgs);
    conf_diag_free(&d);
    return c;
}

/* file_err - file path does not load, with errors errors; the first message is
 * "PATH_OR_DIR..." as printed from fmt (first), or some message contains it (!first). */
static void __attribute__((format(printf, 4, 5)))
file_err(const char *path, int errors, bool first, const char *fmt, ...)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load(path, &d);
    char want[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    uu_diag_print(&d);
    assert_null(c);
    assert_int_equal(d.errors, errors);
    if (first)
        assert_string_equal(d.msgs[0], want);
    else
        assert_true(uu_diag_has(&d, want, true));
    conf_diag_free(&d);
}

static void
test_defaults(void **state)
{
    char buf[256];
    struct conf *c = uu_conf_ok("");

    assert_int_equal(c->refs, 1);
    assert_string_equal(c->path, "t.conf");
    assert_true(c->loaded > 0);
    assert_string_equal(c->main_domain, "localhost");
    assert_int_equal(c->host_domain.n, 0);
    assert_string_equal(c->drop_path, "/var/spool/dmail/drop");
    assert_string_equal(c->run_as, "dmail");
    assert_string_equal(c->lock_id, "");
    assert_true(c->hostname != NULL && c->hostname[0] != '\0'); /* from gethostname */
    assert_int_equal(c->max_rcpts, 100);
    assert_int_equal(c->io_threads, 16);
    assert_int_equal(c->max_msg_size, 10ULL << 20);
    assert_int_equal(c->drop_max, 0);
    assert_int_equal(c->queue_lifetime, 5 * 86400);
    assert_int_equal(c->smtp_timeout, 300);
    assert_false(c->vrfy);
    assert_false(c->auth_plaintext);
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MBOX);
    assert_int_equal(c->log_level, LOGLVL_INFO);
    assert_int_equal(c->authent_method, AUTHENT_USERS_FILE);
    assert_int_equal(c->bare_newline, BARE_NL_REJECT);
    assert_int_equal(c->listen.n, 2);
    assert_string_equal(c->listen.v[0], "0.0.0.0");
    assert_string_equal(c->listen.v[1], "::");
    for (int i = 0; i < CONF_NSETTINGS; i++) {
        assert_null(c->origin[i]);
        /* every default formats back to something */
        assert_int_equal(conf_format(c, i, buf, sizeof(buf)), 0);
    }
    conf_unref(&c);
    assert_null(c);
}

/* Every setting written back by conf_format re-reads to the same value. */
static void
test_format_roundtrip(void **state)
{
    char buf[512], again[512];
    struct conf *c = uu_conf_ok("host_domain example.org,example.net\n"
                                "max_msg_size 1536K\nqueue_lifetime 90m\ndrop_max 3000B\n"
                                "forward_from_ip 127.0.0.1,!10.0.0.1,10.*\nmailbox_format maildir\n"
                                "sysadmin root@example.org\nerror_delay 0\n");
    char *text = xstrdup("");
    for (int i = 0; i < CONF_NSETTINGS; i++) {
        assert_int_equal(conf_format(c, i, buf, sizeof(buf)), 0);
        if (buf[0] == '\0')
            continue;
        char *t = xasprintf("%s%s %s\n", text, conf_settings[i].name, buf);
        free(text);
        text = t;
    }
    struct conf *c2 = uu_conf_ok(text);
    for (int i = 0; i < CONF_NSETTINGS; i++) {
        assert_int_equal(conf_format(c, i, buf, sizeof(buf)), 0);
        assert_int_equal(conf_format(c2, i, again, sizeof(again)), 0);
        assert_string_equal(buf, again);
    }
    assert_int_equal(c2->max_msg_size, 1536 * 1024);
    assert_int_equal(c2->drop_max, 3000);
    assert_int_equal(c2->queue_lifetime, 5400);
    free(text);
    conf_unref(&c);
    conf_unref(&c2);
}

static void
test_format_values(void **state)
{
    static const struct {
        int setting;
        const char *want;
    } cases[] = {
        {CONF_max_msg_size, "3000000"}, {CONF_queue_lifetime, "2h"},
        {CONF_smtp_timeout, "5m"},      {CONF_listen, "127.0.0.1,::1"},
        {CONF_log_level, "info"},       {CONF_authent_method, "users_file"},
        {CONF_vrfy, "false"},
    };
    char buf[64];
    struct conf *c = uu_conf_ok("queue_lifetime 2h\nmax_msg_size 3000000\nlisten 127.0.0.1,::1\n");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(conf_format(c, cases[i].setting, buf, sizeof(buf)), 0);
        assert_string_equal(buf, cases[i].want);
    }
    /* too small: -1, still terminated */
    assert_int_equal(conf_format(c, CONF_listen, buf, 5), -1);
    assert_true(strlen(buf) < 5);
    assert_int_equal(conf_format(c, CONF_drop_path, buf, 4), -1);
    assert_int_equal(conf_format(c, CONF_NSETTINGS, buf, sizeof(buf)), -1);
    conf_unref(&c);
}

static void
test_bool(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        {"true", true}, {"false", false}, {"yes", true}, {"no", false},  {"on", true},
        {"off", false}, {"1", true},      {"0", false},  {"TRUE", true}, {"Off", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf *c = load_value(cases[i].text, "vrfy", "auth_plaintext", NULL);
        assert_int_equal(c->vrfy, cases[i].want);
        assert_int_equal(c->auth_plaintext, cases[i].want);
        conf_unref(&c);
    }
}

static void
test_int(void **state)
{
    struct conf *c = uu_conf_ok("max_rcpts 5\nhash_spool 2\nerror_soft_limit +0\n");
    assert_int_equal(c->max_rcpts, 5);
    assert_int_equal(c->hash_spool, 2);
    assert_int_equal(c->error_soft_limit, 0);
    conf_unref(&c);
    c = uu_conf_ok("smtp_port 0\nsubmission_port 65535\n");
    assert_int_equal(c->smtp_port, 0);
    assert_int_equal(c->submission_port, 65535);
    conf_unref(&c);
}

static void
test_size(void **state)
{
    static const struct {
        const char *text;
        unsigned long long want;
    } cases[] = {
        {"2048", 2048},   {"10K", 10 << 10}, {"10KB", 10 << 10}, {"10kb", 10 << 10},
        {"2M", 2 << 20},  {"2MB", 2 << 20},  {"1G", 1ULL << 30}, {"1gb", 1ULL << 30},
        {"3 M", 3 << 20}, {"4096B", 4096},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf *c = load_value(cases[i].text, "max_msg_size", NULL);
        assert_int_equal(c->max_msg_size, cases[i].want);
        conf_unref(&c);
    }
    /* drop_max: a bare number is KB, as in DMail */
    struct conf *c = uu_conf_ok("drop_max 100\n");
    assert_int_equal(c->drop_max, 100 * 1024);
    conf_unref(&c);
    c = uu_conf_ok("drop_max 5M\n");
    assert_int_equal(c->drop_max, 5 << 20);
    conf_unref(&c);
}

static void
test_time(void **state)
{
    static const struct {
        const char *text;
        long want;
    } cases[] = {
        {"30", 30}, {"30s", 30}, {"5m", 300}, {"2h", 7200}, {"1d", 86400}, {"1 D", 86400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct conf *c = load_value(cases[i].text, "smtp_timeout", NULL);
        assert_int_equal(c->smtp_timeout, cases[i].want);
        conf_unref(&c);
    }
}

static void
test_enum(void **state)
{
    struct conf *c = uu_conf_ok("mailbox_format maildir\nlog_level DEBUG\nauthent_method external\n"
                                "authent_process /bin/true\nbare_newline normalize\n");
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MAILDIR);
    assert_int_equal(c->log_level, LOGLVL_DEBUG);
    assert_int_equal(c->authent_method, AUTHENT_EXTERNAL);
    assert_int_equal(c->bare_newline, BARE_NL_NORMALIZE);
    conf_unref(&c);
    c = uu_conf_ok("log_level warn\nauthent_method unix_user\n");
    assert_int_equal(c->log_level, LOGLVL_WARN);
    assert_int_equal(c->authent_method, AUTHENT_UNIX_USER);
    conf_unref(&c);
}

static void
test_string(void **state)
{
    struct conf *c = uu_conf_ok("sysadmin   Post Master <pm@example.org>   \r\n"
                                "drop_path\t/srv/mail/drop\t\r\n");
    assert_string_equal(c->sysadmin, "Post Master <pm@example.org>");
    assert_string_equal(c->drop_path, "/srv/mail/drop");
    assert_string_equal(c->origin[CONF_sysadmin], "t.conf:1");
    assert_string_equal(c->origin[CONF_drop_path], "t.conf:2");
    conf_unref(&c);
}

static void
test_lists(void **state)
{
    struct conf *c = uu_conf_ok("host_domain example.org\n"
                                "host_domain example.net, example.com\n"
                                "host_domain a.example b.example\n"
                                "forward_from_ip 127.0.0.1,10.1.2.*\n"
                                "forward_from_ip 192.168.0.0/16\n"
                                "listen 127.0.0.1\n");
    assert_int_equal(c->host_domain.n, 5);
    assert_string_equal(c->host_domain.v[0], "example.org");
    assert_string_equal(c->host_domain.v[1], "example.net");
    assert_string_equal(c->host_domain.v[2], "example.com");
    assert_string_equal(c->host_domain.v[4], "b.example");
    assert_string_equal(c->main_domain, "example.org");
    assert_int_equal(c->forward_from_ip.n, 3);
    assert_string_equal(c->forward_from_ip.v[2], "192.168.0.0/16");
    /* the file's lines replace the default list */
    assert_int_equal(c->listen.n, 1);
    assert_string_equal(c->listen.v[0], "127.0.0.1");
    assert_string_equal(c->origin[CONF_host_domain], "t.conf:3");
    assert_true(conf_list_has(&c->host_domain, "EXAMPLE.NET"));
    assert_false(conf_list_has(&c->host_domain, "example"));
    conf_unref(&c);

    /* an empty list line clears the list */
    c = uu_conf_ok("listen\n");
    assert_int_equal(c->listen.n, 0);
    conf_unref(&c);

    /* dns_host: addresses with optional ports, never names */
    c = uu_conf_ok("dns_host 192.0.2.53, 192.0.2.54:5353\ndns_host ::1 [::1]:53\n");
    assert_int_equal(c->dns_host.n, 4);
    assert_string_equal(c->dns_host.v[3], "[::1]:53");
    conf_unref(&c);
}

static void
test_synonyms(void **state)
{
    struct conf *c = uu_conf_ok("drop_dir /d\nwork_dir /w\nrelay_allow 10.0.0.*\n"
                                "max_message_size 2M\nuse_drop maildir\n");
    assert_string_equal(c->drop_path, "/d");
    assert_string_equal(c->work_path, "/w");
    assert_int_equal(c->forward_from_ip.n, 1);
    assert_string_equal(c->forward_from_ip.v[0], "10.0.0.*");
    assert_int_equal(c->max_msg_size, 2 << 20);
    assert_int_equal(c->mailbox_format, MBOX_FORMAT_MAILDIR);
    assert_string_equal(c->origin[CONF_drop_path], "t.conf:1");
    assert_string_equal(c->origin[CONF_mailbox_format], "t.conf:5");
    conf_unref(&c);

    assert_ptr_equal(conf_lookup("drop_dir"), &conf_settings[CONF_drop_path]);
    assert_ptr_equal(conf_lookup("relay_allow"), &conf_settings[CONF_forward_from_ip]);
    assert_ptr_equal(conf_lookup("MAX_RCPTS"), &conf_settings[CONF_max_rcpts]);
    assert_null(conf_lookup("no_such_setting"));
    assert_int_equal(conf_lookup("bare_newline")->type, CT_ENUM);
    assert_string_equal(conf_lookup("bare_newline")->choices, "reject|normalize");
    assert_int_equal(conf_lookup("max_msg_size")->min, 1024);
    assert_int_equal(conf_lookup("listen")->flags, CF_RESTART);
}

static void
test_unknown_and_duplicate(void **state)
{
    /* warnings alone do not fail */
    struct conf *c = uu_conf_warns(
        "# comment\n\n   \n#includes are not this\nfrobnicate 3\nmax_rcpts 10\nmax_rcpts 20\n",
        (const char *const[]){
            "t.conf:5: warning: unknown setting 'frobnicate'",
            "t.conf:7: warning: max_rcpts is already set at t.conf:6; this value wins", NULL});
    assert_int_equal(c->max_rcpts, 20);
    assert_string_equal(c->origin[CONF_max_rcpts], "t.conf:7");
    conf_unref(&c);
}

static void
test_missing_value(void **state)
{
    struct conf *c =
        uu_conf_warns("bad\x1b"
                      "name 1\n",
                      (const char *const[]){"t.conf:1: warning: unknown setting 'bad?name'", NULL});
    conf_unref(&c);
}

/* Every problem in the file is reported, in order, not just the first. */
/* a list line with a bad item keeps its good ones, and the checks made after parsing
 * name that line: found by tests/fuzz/fuzz_conf_line (the warning named a NULL file) */
static void
test_list_partly_bad(void **state)
{
    struct conf_diag d = {0};

    (void)state;
    struct conf *c = conf_load_string("p.conf", "forward_from\t\t_&p 38.7\n", &d);
    uu_diag_print(&d);
    assert_null(c);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.warnings, 1);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.msgs[0], "p.conf:1: forward_from: '_&p' is not a valid domain");
    assert_true(strncmp(d.msgs[1], "p.conf:1: warning: forward_from: anyone", 39) == 0);
    conf_diag_free(&d);
}

/* milter_options is parsed once at load: one entry per milters item, -1 where no line
 * names the filter; no milters, no array. */
static void
test_milter_opts(void **state)
{
    struct conf_diag d = {0};
    struct conf *c;

    (void)state;
    c = conf_load_string("m.conf",
                         "milters inet:127.0.0.1:9001, unix:/run/f.sock, inet:[::1]:9002\n"
                         "milter_options unix:/run/f.sock default_action=reject "
                         "content_timeout=2m\n"
                         "milter_options inet:127.0.0.1:9001 connect_timeout=7s\n"
                         "milter_options inet:127.0.0.1:9999 command_timeout=9s\n",
                         &d);
    uu_diag_print(&d);
    assert_non_null(c);
    assert_non_null(c->milter_opts);
    assert_int_equal(c->milter_opts[0].connect_timeout, 7);
    assert_int_equal(c->milter_opts[0].default_action, -1);
    assert_int_equal(c->milter_opts[0].command_timeout, -1);
    assert_int_equal(c->milter_opts[1].default_action, MILTER_REJECT);
    assert_int_equal(c->milter_opts[1].content_timeout, 120);
    assert_int_equal(c->milter_opts[1].connect_timeout, -1);
    assert_int_equal(c->milter_opts[2].default_action, -1);
    assert_int_equal(c->milter_opts[2].command_timeout, -1);
    conf_unref(&c);
    conf_diag_free(&d);
    c = conf_load_string("n.conf", "milter_options unix:/run/f.sock default_action=accept\n", &d);
    assert_non_null(c);
    assert_null(c->milter_opts);
    conf_unref(&c);
    conf_diag_free(&d);
}

static void
test_many_errors(void **state)
{
    struct conf_diag d = {0};
    struct conf *c = conf_load_string("m.conf",
                                      "vrfy perhaps\n"
                                      "bogus_setting 1\n"
                                      "max_rcpts 0\n"
                                      "max_msg_size 12Q\n"
                                      "smtp_timeout soon\n"
                                      "log_level loud\n"
                                      "sysadmin\n"
                                      "#include\n"
                                      "max_rcpts 7\n",
                                      &d);
    uu_diag_print(&d);
    assert_null(c);
    assert_int_equal(d.errors, 7);
    assert_int_equal(d.warnings, 1);
    assert_int_equal(d.n, 8);
    assert_true(strncmp(d.msgs[0], "m.conf:1: vrfy:", 15) == 0);
    assert_string_equal(d.msgs[1], "m.conf:2: warning: unknown setting 'bogus_setting'");
    assert_true(strncmp(d.msgs[2], "m.conf:3: max_rcpts:", 20) == 0);
    assert_true(strncmp(d.msgs[3], "m.conf:4: max_msg_size:", 23) == 0);
    assert_true(strncmp(d.msgs[4], "m.conf:5: smtp_timeout:", 23) == 0);
    assert_true(strncmp(d.msgs[5], "m.conf:6: log_level:", 20) == 0);
    assert_string_equal(d.msgs[6], "m.conf:7: sysadmin: missing value");
    assert_string_equal(d.msgs[7], "m.conf:8: #include needs a file name");
    conf_diag_free(&d);

    /* messages are appended to a diag that already holds some */
    d.errors = 0;
    c = conf_load_string("a.conf", "vrfy x\n", &d);
    assert_null(c);
    c = conf_load_string("b.conf", "max_rcpts 5\n", &d);
    assert_non_null(c);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.errors, 1);
    conf_unref(&c);
    conf_diag_free(&d);
}

static void
test_file_and_crlf(void **state)
{
    char *dir = uu_tmpdir("test_conf");
    char *path = uu_put(dir, "dmail.conf",
                        "max_rcpts 42\r\nhost_domain Example.ORG.\r\n"
                        "sysadmin a b\r\n");
    struct conf *c = file_ok(path, 0);
    assert_int_equal(c->max_rcpts, 42);
    assert_string_equal(c->main_domain, "example.org");
    assert_string_equal(c->sysadmin, "a b");
    assert_string_equal(c->path, path);
    char *want = xasprintf("%s:2", path);
    assert_string_equal(c->origin[CONF_host_domain], want);
    free(want);
    conf_unref(&c);

    /* a missing top-level file is an error */
    char *missing = uu_path(dir, "nope.conf");
    file_err(missing, 1, true, "%s: cannot read: No such file or directory", missing);
    free(missing);

    /* a NUL byte in a line */
    char *nul = uu_path(dir, "nul.conf");
    uu_write_bytes(nul, "vrfy true\nmax\0rcpts 3\n", 22);
    file_err(nul, 1, true, "%s:2: line holds a NUL byte", nul);
    free(nul);
    free(path);
    uu_tmpdir_free(dir);
}

static void
test_include(void **state)
{
    char *dir = uu_tmpdir("test_conf");
    char *sub = xasprintf("%s/sub", dir);
    assert_int_equal(file_mkdirs(sub, 0755), 0);
    free(uu_put(dir, "sub/extra.conf", "max_rcpts 9\n#include \"more.conf\"\n"));
    free(uu_put(dir, "sub/more.conf", "host_domain more.example\n"));
    char *top = uu_put(dir, "top.conf",
                       "vrfy true\n#include sub/extra.conf\nhost_domain "
                       "top.example\n");
    /* relative to the including file, not the working directory */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);
    struct conf *c = file_ok(top, 0);
    assert_true(c->vrfy);
    assert_int_equal(c->max_rcpts, 9);
    assert_int_equal(c->host_domain.n, 2);
    assert_string_equal(c->host_domain.v[0], "more.example");
    assert_string_equal(c->main_domain, "more.example");
    char *want = xasprintf("%s/sub/extra.conf:1", dir);
    assert_string_equal(c->origin[CONF_max_rcpts], want);
    free(want);
    conf_unref(&c);

    /* conf_load_string: includes relative to the name's directory; <file> spelling */
    char *name = uu_path(dir, "virtual.conf");
    c = uu_conf(name, "#include <sub/more.conf>\n");
    assert_string_equal(c->main_domain, "more.example");
    conf_unref(&c);
    free(name);

    /* a missing include is an error at the #include line; the rest is still read */
    char *bad = uu_put(dir, "bad.conf", "#include missing.conf\nmax_rcpts nope\n");
    file_err(bad, 2, true, "%s:1: #include missing.conf: No such file or directory", bad);
    /* a FIFO is refused at once instead of blocking the loader */
    char *fifo = xasprintf("%s/fifo.conf", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *withfifo = uu_put(dir, "withfifo.conf", "#include fifo.conf\n");
    file_err(withfifo, 1, true, "%s:1: #include fifo.conf: not a regular file", withfifo);
    free(withfifo);
    free(fifo);
    free(bad);
    assert_int_equal(chdir(cwd), 0);
    free(top);
    free(sub);
    uu_tmpdir_free(dir);
}

static void
test_include_loop(void **state)
{
    char *dir = uu_tmpdir("test_conf");
    char *a = uu_put(dir, "a.conf", "vrfy true\n#include b.conf\n");
    char *b = uu_put(dir, "b.conf", "max_rcpts 3\n#include ./a.conf\n");
    char *self = uu_put(dir, "self.conf", "#include self.conf\n");

    file_err(a, 1, false, "%s:2: #include ./a.conf: include loop", b);
    file_err(self, 1, false, "include loop");

    /* the same file included twice, not nested, is fine */
    char *twice = uu_put(dir, "twice.conf", "#include b2.conf\n#include b2.conf\n");
    free(uu_put(dir, "b2.conf", "host_domain x.example\n"));
    struct conf *c = file_ok(twice, 0);
    assert_int_equal(c->host_domain.n, 2);
    conf_unref(&c);
    free(twice);
    free(a);
    free(b);
    free(self);
    uu_tmpdir_free(dir);
}

static void
test_include_depth(void **state)
{
    char *dir = uu_tmpdir("test_conf");
    char name[32], text[64];

    /* f0 includes f1 ... includes f17: 17 levels of nesting, one too many */
    for (int i = 0; i <= 17; i++) {
        snprintf(name, sizeof(name), "f%d.conf", i);
        if (i < 17)
            snprintf(text, sizeof(text), "#include f%d.conf\n", i + 1);
        else
            snprintf(text, sizeof(text), "max_rcpts 17\n");
        free(uu_put(dir, name, text));
    }
    char *f0 = uu_path(dir, "f0.conf");
    file_err(f0, 1, true, "%s/f16.conf:1: #include f17.conf: nested deeper than 16 files", dir);

    /* 16 levels are allowed */
    char *f1 = uu_path(dir, "f1.conf");
    struct conf *c = file_ok(f1, 0);
    assert_int_equal(c->max_rcpts, 17);
    conf_unref(&c);
    free(f0);
    free(f1);
    uu_tmpdir_free(dir);
}

static void
test_refs(void **state)
{
    struct conf *c = uu_conf_ok("sysadmin x\n");
    struct conf *r = conf_ref(c);
    assert_ptr_equal(r, c);
    assert_int_equal(c->refs, 2);
    conf_unref(&r);
    assert_null(r);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->sysadmin, "x"); /* still alive */
    conf_unref(&c);
    assert_null(c);
    conf_unref(&c); /* harmless */
    assert_null(conf_ref(NULL));
}

static void
test_ip_match(void **state)
{
    struct conf *c = uu_conf_ok("forward_from_ip 127.0.0.1,10.1.2.*\n"
                                "forward_from_ip !10.0.0.5,10.0.0.*\n"
                                "forward_from_ip 10.0.0.5\n"
                                "forward_from_ip !192.168.1.128/25,192.168.0.0/16\n"
                                "forward_from_ip 2001:db8::/32,::1/128,fe80::*\n");
    const struct conf_list *l = &c->forward_from_ip;
    static const struct {
        const char *ip;
        bool want;
    } cases[] = {
        {"127.0.0.1", true},
        {"127.0.0.2", false},
        {"10.1.2.99", true},
        {"10.1.3.1", false},
        {"10.1.20.1", false},
        {"::ffff:10.1.2.3", true},
        {"::FFFF:127.0.0.1", true},
        {"10.0.0.5", false}, /* negation listed first wins */
        {"10.0.0.6", true},
        {"192.168.1.1", true},
        {"192.168.1.127", true},
        {"192.168.1.128", false},
        {"192.168.1.255", false},
        {"192.169.0.1", false},
        {"2001:db8::1", true},
        {"2001:db8:ffff::1", true},
        {"2001:db9::1", false},
        {"::1", true},
        {"0:0:0:0:0:0:0:1", true},
        {"::2", false},
        {"fe80::1", true},
        {"FE80::abcd", true},
        {"", false},
        {"not an ip", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (conf_ip_match(l, cases[i].ip) != cases[i].want)
            fail_msg("conf_ip_match(%s) should be %d", cases[i].ip, cases[i].want);
    }
    conf_unref(&c);

    /* first matching entry wins either way; wildcards and prefixes over both families */
    static const struct {
        const char *list, *ip;
        bool want;
    } more[] = {
        {"10.0.0.*,!10.0.0.5", "10.0.0.5", true},
        {"*", "203.0.113.9", true},
        {"*", "2001:db8::9", true},
        {"0.0.0.0/0,!*", "203.0.113.9", true},
        {"0.0.0.0/0,!*", "2001:db8::9", false},
        {"127.0.0.0/8", "::ffff:127.1.2.3", true},
        {"127.0.0.0/8", "::1", false},
    };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        c = load_value(more[i].list, "forward_from_ip", NULL);
        if (conf_ip_match(&c->forward_from_ip, more[i].ip) != more[i].want)
            fail_msg("%s: conf_ip_match(%s) should be %d", more[i].list, more[i].ip, more[i].want);
        conf_unref(&c);
    }

    struct conf_list empty = {0};
    assert_false(conf_ip_match(&empty, "127.0.0.1"));
    assert_false(conf_ip_match(NULL, "127.0.0.1"));
}

/* ban lists: the rule that matched (for the log), address wildcards, "!" exemptions. */
static void
test_ban_rules(void **state)
{
    struct conf *c = uu_conf_ok("ban_ip 192.0.2.*,2001:db8::/32\n"
                                "ban_ip_except 192.0.2.7\n"
                                "ban_mailfrom !ok@spam.example,*@spam.example\n"
                                "ban_mailfrom offers-*@*\n"
                                "ban_rcptto Victim@Example.ORG\n");
    assert_string_equal(conf_ip_rule(&c->ban_ip, "192.0.2.9"), "192.0.2.*");
    assert_string_equal(conf_ip_rule(&c->ban_ip, "2001:db8::5"), "2001:db8::/32");
    assert_null(conf_ip_rule(&c->ban_ip, "198.51.100.1"));
    assert_true(conf_ip_match(&c->ban_ip_except, "192.0.2.7"));
    assert_string_equal(conf_addr_rule(&c->ban_mailfrom, "X@SPAM.example"), "*@spam.example");
    assert_null(conf_addr_rule(&c->ban_mailfrom, "ok@spam.example"));
    assert_string_equal(conf_addr_rule(&c->ban_mailfrom, "offers-42@shop.example"), "offers-*@*");
    assert_null(conf_addr_rule(&c->ban_mailfrom, "offers@shop.example"));
    assert_null(conf_addr_rule(&c->ban_mailfrom, ""));
    assert_non_null(conf_addr_rule(&c->ban_rcptto, "victim@example.org"));
    assert_null(conf_addr_rule(&c->ban_rcptto, "victim@example.org.evil"));
    assert_null(conf_addr_rule(NULL, "a@b"));
    conf_unref(&c);

    struct conf_diag d = {0};
    assert_null(conf_load_string("t.conf", "ban_mailfrom <x@y>\nban_ip not-an-ip\n", &d));
    assert_int_equal(d.errors, 2);
    conf_diag_free(&d);

    /* rbl_except_*: "ZONE ENTRY" pairs, a zone on several lines, normalised */
    c = uu_conf_ok("rbl_except_ip  BL.Example.   192.0.2.*\n"
                   "rbl_except_ip bl.example 10.0.0.0/8\n"
                   "rbl_except_rcpt * postmaster@*\n");
    assert_int_equal(c->rbl_except_ip.n, 2);
    assert_string_equal(c->rbl_except_ip.v[0], "bl.example 192.0.2.*");
    assert_string_equal(c->rbl_except_rcpt.v[0], "* postmaster@*");
    conf_unref(&c);
    memset(&d, 0, sizeof(d));
    assert_null(conf_load_string("t.conf",
                                 "rbl_except_ip bl.example\nrbl_except_ip a b c\n"
                                 "rbl_except_mail bl.example <x>\nrbl_ban bad..zone\n",
                                 &d));
    assert_int_equal(d.errors, 4);
    conf_diag_free(&d);
}

static void
test_local_domain_idn(void **state)
{
    struct conf *c = uu_conf_ok("host_domain Bücher.Example\nhost_domain alias.example\n");
    assert_string_equal(c->host_domain.v[0], "xn--bcher-kva.example");
    assert_string_equal(c->main_domain, "xn--bcher-kva.example");
    assert_true(conf_is_local_domain(c, "xn--bcher-kva.example"));
    assert_true(conf_is_local_domain(c, "XN--BCHER-KVA.EXAMPLE."));
    assert_true(conf_is_local_domain(c, "bücher.example"));
    assert_true(conf_is_local_domain(c, "Alias.Example"));
    assert_false(conf_is_local_domain(c, "bucher.example"));
    assert_false(conf_is_local_domain(c, "example"));
    assert_false(conf_is_local_domain(c, ""));
    assert_false(conf_is_local_domain(c, "localhost"));
    conf_unref(&c);

    /* no host_domain: the main domain is localhost */
    c = uu_conf_ok("");
    assert_true(conf_is_local_domain(c, "LOCALHOST"));
    assert_false(conf_is_local_domain(c, "example.org"));
    conf_unref(&c);
}

static void
test_default_path(void **state)
{
    assert_string_equal(conf_default_path("/x/y.conf"), "/x/y.conf");
    setenv("DMAIL_CONF", "/env/dmail.conf", 1);
    assert_string_equal(conf_default_path(NULL), "/env/dmail.conf");
    assert_string_equal(conf_default_path("/cli.conf"), "/cli.conf");
    unsetenv("DMAIL_CONF");
    const char *p = conf_default_path(NULL);
    if (access("/etc/dmail/dmail.conf", F_OK) == 0)
        assert_string_equal(p, "/etc/dmail/dmail.conf");
    else
        assert_string_equal(p, "/etc/dmail.conf");
}

/* read_doc - a documentation file of the source tree (tests run from its top). */
static char *
read_doc(const char *path)
{
    char *text = NULL;
    size_t len;
    if (file_read_all(path, 1 << 20, &text, &len) < 0)
        fail_msg("%s: %s (run the tests from the top of the source tree)", path, strerror(errno));
    return text;
}

/* The sample names every setting once, and uncommented it gives the defaults. */
static void
test_sample_file(void **state)
{
    char *text = read_doc("conf/dmail.conf.sample");
    char *active = xstrdup("");
    int seen[CONF_NSETTINGS] = {0};
    char a[512], b[512];

    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] != '#' || line[1] == ' ' || line[1] == '#' || line[1] == '\0')
            continue;
        char name[64];
        size_t n = strcspn(line + 1, " \t");
        assert_true(n < sizeof(name));
        memcpy(name, line + 1, n);
        name[n] = '\0';
        const struct conf_setting *row = conf_lookup(name);
        if (row == NULL)
            fail_msg("sample names unknown setting '%s'", name);
        assert_string_equal(row->name, name); /* the main name, not a synonym */
        seen[row - conf_settings]++;
        if (row->type == CT_DKIM)
            continue; /* its key file is not here: it is read while loading */
        char *t = xasprintf("%s%s\n", active, line + 1);
        free(active);
        active = t;
    }
    for (int i = 0; i < CONF_NSETTINGS; i++)
        if (seen[i] != 1)
            fail_msg("sample shows %s %d times", conf_settings[i].name, seen[i]);
    /* the DMail names accepted without effect warn about their example values */
    struct conf_diag dd = {0};
    struct conf *c = conf_load_string("t.conf", active, &dd);
    assert_non_null(c);
    for (size_t i = 0; i < dd.n; i++)
        if (strstr(dd.msgs[i], " is accepted but has no effect: ") == NULL)
            fail_msg("sample: %s", dd.msgs[i]);
    conf_diag_free(&dd);
    struct conf *d = uu_conf_ok("");
    for (int i = 0; i < CONF_NSETTINGS; i++) {
        if (conf_settings[i].def[0] == '\0')
            continue; /* an example value */
        assert_int_equal(conf_format(c, i, a, sizeof(a)), 0);
        assert_int_equal(conf_format(d, i, b, sizeof(b)), 0);
        if (strcmp(a, b) != 0)
            fail_msg("sample default of %s is %s, not %s", conf_settings[i].name, a, b);
    }
    conf_unref(&c);
    conf_unref(&d);
    free(active);
    free(text);
}

/* The DMail names of issue 12: a NOTE warning once per setting set to a value other than
 * its default; allow_dds true refused at its line; a host setting must be an address. */
static void
test_dmail_compat(void **state)
{
    struct conf_diag d = {0};
    struct conf *c;

    c = conf_load_string("t.conf",
                         "allow_ip 10.0.0.*\nallow_ip 10.1.0.*\ndlist_rotate 50000\n"
                         "hash_bindir false\ndlist_rotate 60000\nmsg_filter a b c\n",
                         &d);
    assert_non_null(c);
    uu_diag_print(&d);
    assert_int_equal(d.errors, 0);
    assert_true(uu_diag_has(&d,
                            "t.conf:1: warning: allow_ip is accepted but has no effect: DMail "
                            "never said what it did; dmail talks to every client not in ban_ip",
                            false));
    assert_true(
        uu_diag_has(&d, "t.conf:5: warning: dlist_rotate is accepted but has no effect", true));
    assert_true(
        uu_diag_has(&d, "t.conf:6: warning: msg_filter is accepted but has no effect", true));
    /* allow_ip once; dlist_rotate twice only by "already set"; hash_bindir false is default */
    assert_int_equal(d.warnings, 4);
    assert_true(uu_diag_has(&d, "dlist_rotate is already set at t.conf:3", true));
    assert_int_equal(c->allow_ip.n, 2);
    assert_int_equal(c->dlist_rotate, 60000);
    assert_string_equal(c->msg_filter.v[0], "a b c");
    conf_unref(&c);
    conf_diag_free(&d);

    assert_non_null(conf_note(CONF_dlist_rotate));
    assert_null(conf_note(CONF_smtp_port));
    assert_true(conf_settings[CONF_bin_path].flags & CF_NOEFFECT);
    assert_false(conf_settings[CONF_min_space].flags & CF_NOEFFECT);

    assert_null(conf_load_string("t.conf", "vrfy false\nallow_dds true\n", &d));
    uu_diag_print(&d);
    assert_int_equal(d.errors, 1);
    assert_true(uu_diag_has(&d, "t.conf:2: allow_dds true is refused: user names with ../", true));
    conf_diag_free(&d);
    c = uu_conf_ok("allow_dds false\nbounce_body true\nmin_space 100\n"
                   "user_ip_address 10.0.0.*,127.0.0.1\ndsmtp_host 192.0.2.1\ndpop_host ::1\n");
    assert_false(c->allow_dds);
    assert_true(c->bounce_body);
    assert_int_equal(c->min_space, 100);
    assert_true(conf_ip_match(&c->user_ip_address, "10.0.0.5"));
    assert_false(conf_ip_match(&c->user_ip_address, "10.0.1.5"));
    assert_string_equal(c->dsmtp_host, "192.0.2.1");
    assert_string_equal(c->dpop_host, "::1");
    conf_unref(&c);

    c = conf_load_string("t.conf", "dpop_host pop.example.com\n", &d);
    assert_non_null(c);
    assert_true(uu_diag_has(&d,
                            "t.conf:1: warning: dpop_host pop.example.com is not an IP address; "
                            "dpop listens on the listen addresses",
                            false));
    assert_string_equal(c->dpop_host, "");
    conf_unref(&c);
    conf_diag_free(&d);

    assert_null(conf_load_string("t.conf", "min_space -1\nuser_ip_address not-an-ip\n", &d));
    assert_int_equal(d.errors, 2);
    conf_diag_free(&d);
}

/* man_entry - the text of setting name's entry in the man page, or NULL. */
static char *
man_entry(const char *man, const char *name)
{
    char *head = xasprintf("\n.It Cm %s ", name);
    const char *start = strstr(man, head);

    if (start == NULL) {
        free(head);
        return NULL;
    }
    start += strlen(head);
    if (strstr(start, head) != NULL)
        fail_msg("dmail.conf.5 has %s twice", name);
    free(head);
    const char *end = start + strlen(start);
    const char *next = strstr(start, "\n.It Cm ");
    const char *el = strstr(start, "\n.El");
    if (next != NULL && next < end)
        end = next;
    if (el != NULL && el < end)
        end = el;
    return xstrndup(start, (size_t)(end - start));
}

/* dmail.conf.5 documents every setting with its right type, default and reload class. */
static void
test_man_page(void **state)
{
    static const char *const types[] = {
        [CT_BOOL] = "Boolean;",     [CT_INT] = "Number;",  [CT_SIZE] = "Size;",
        [CT_TIME] = "Time;",        [CT_STR] = "String;",  [CT_LIST] = "List;",
        [CT_ENUM] = "Enumeration;", [CT_ROUTE] = "Table;", [CT_DKIM] = "Table;",
    };
    static const char *const syn[][2] = {
#define SETTING(name, type, def, min, max, flags)
#define SYNONYM(alias, name) {#alias, #name},
#include "settings.def"
    };
    char *man = read_doc("man/dmail.conf.5");
    char want[512], got[512];
    struct conf *d = uu_conf_ok("");

    for (int i = 0; i < CONF_NSETTINGS; i++) {
        const struct conf_setting *row = &conf_settings[i];
        char *entry = man_entry(man, row->name);
        if (entry == NULL)
            fail_msg("dmail.conf.5 lacks %s", row->name);
        if (strstr(entry, types[row->type]) == NULL)
            fail_msg("dmail.conf.5: %s is not documented as %s", row->name, types[row->type]);
        const char *cls = row->flags & CF_RELOAD ? "reload." : "restart.";
        const char *other = row->flags & CF_RELOAD ? "restart." : "reload.";
        if (strstr(entry, cls) == NULL || strstr(entry, other) != NULL)
            fail_msg("dmail.conf.5: %s should say %s", row->name, cls);
        if (row->def[0] == '\0') {
            if (strstr(entry, "default empty") == NULL)
                fail_msg("dmail.conf.5: %s should say 'default empty'", row->name);
        } else {
            const char *def = strstr(entry, "default\n.Li ");
            if (def == NULL)
                def = strstr(entry, "default\n.Pa ");
            if (def == NULL)
                fail_msg("dmail.conf.5: %s has no 'default .Li VALUE'", row->name);
            def += strlen("default\n.Li ");
            char *text = xasprintf("%s %.*s\n", row->name, (int)strcspn(def, " \n"), def);
            struct conf *c = uu_conf_ok(text);
            assert_int_equal(conf_format(c, i, got, sizeof(got)), 0);
            assert_int_equal(conf_format(d, i, want, sizeof(want)), 0);
            if (strcmp(got, want) != 0)
                fail_msg("dmail.conf.5: default of %s is %s, not %s", row->name, got, want);
            conf_unref(&c);
            free(text);
        }
        if (row->type == CT_ENUM) {
            char *choices = xstrdup(row->choices), *save = NULL;
            for (char *ch = strtok_r(choices, "|", &save); ch; ch = strtok_r(NULL, "|", &save))
                if (strstr(entry, ch) == NULL)
                    fail_msg("dmail.conf.5: %s does not name %s", row->name, ch);
            free(choices);
        }
        for (size_t k = 0; k < sizeof(syn) / sizeof(syn[0]); k++)
            if (strcmp(syn[k][1], row->name) == 0 && strstr(entry, syn[k][0]) == NULL)
                fail_msg("dmail.conf.5: %s does not name its synonym %s", row->name, syn[k][0]);
        free(entry);
    }
    for (size_t i = 0; i < sizeof(syn) / sizeof(syn[0]); i++) {
        char *line = xasprintf(".It Cm %s Ta Cm %s\n", syn[i][0], syn[i][1]);
        if (strstr(man, line) == NULL)
            fail_msg("dmail.conf.5: synonym %s of %s missing from the table", syn[i][0], syn[i][1]);
        free(line);
    }
    conf_unref(&d);
    free(man);
}

/* ---- one bad line each: the error it gives, alone (a test case each, from main) ---- */

struct bad {
    const char *want, *text; /* want: the test's name too */
};
#define WHY_SIZE "is not a size (a number with an optional K, M or G suffix)"
#define BAD_SIZE(v)                                                                                \
    {                                                                                              \
        "t.conf:1: max_msg_size: '" v "' " WHY_SIZE, "max_msg_size " v "\n"                        \
    }
#define WHY_TIME "is not a time (a number with an optional s, m, h or d suffix)"
#define BAD_TIME(v)                                                                                \
    {                                                                                              \
        "t.conf:1: data_timeout: '" v "' " WHY_TIME, "data_timeout " v "\n"                        \
    }
#define WHY_IP "is not an IP address, wildcard or CIDR range"

static const struct bad bad_values[] = {
    /* booleans */
    {"t.conf:1: vrfy: 'maybe' is not a boolean (true or false)", "vrfy maybe\n"},
    {"t.conf:1: vrfy: '2' is not a boolean (true or false)", "vrfy 2\n"},
    /* numbers */
    {"t.conf:1: max_rcpts: '12x' is not a whole number", "max_rcpts 12x\n"},
    {"t.conf:1: max_rcpts: 'ten' is not a whole number", "max_rcpts ten\n"},
    {"t.conf:1: max_rcpts: '99999999999999999999999' is not a whole number",
     "max_rcpts 99999999999999999999999\n"},
    {"t.conf:1: max_rcpts: '0' is out of range (1 to 100000)", "max_rcpts 0\n"},
    {"t.conf:1: max_rcpts: '-3' is out of range (1 to 100000)", "max_rcpts -3\n"},
    {"t.conf:1: hash_spool: '3' is out of range (0 to 2)", "hash_spool 3\n"},
    {"t.conf:1: smtp_port: '65536' is out of range (0 to 65535)", "smtp_port 65536\n"},
    /* sizes */
    BAD_SIZE("10X"),
    BAD_SIZE("M"),
    BAD_SIZE("10 MiB"),
    BAD_SIZE("-5"),
    BAD_SIZE("1.5M"),
    BAD_SIZE("99999999999999999999G"),
    {"t.conf:1: max_msg_size: '100' is out of range (1024 to 2147483647 bytes)",
     "max_msg_size 100\n"},
    {"t.conf:1: max_msg_size: '2G' is out of range (1024 to 2147483647 bytes)",
     "max_msg_size 2G\n"},
    {"t.conf:1: drop_max: '20000000000000000G' " WHY_SIZE, "drop_max 20000000000000000G\n"},
    /* times */
    BAD_TIME("5x"),
    BAD_TIME("-1"),
    BAD_TIME("m"),
    BAD_TIME("1w"),
    BAD_TIME("2.5h"),
    {"t.conf:1: queue_lifetime: '30s' is out of range (60 to 3153600 seconds)",
     "queue_lifetime 30s\n"},
    {"t.conf:1: smtp_timeout: '0' is out of range (1 to 86400 seconds)", "smtp_timeout 0\n"},
    {"t.conf:1: smtp_timeout: '2d' is out of range (1 to 86400 seconds)", "smtp_timeout 2d\n"},
    /* enumerations */
    {"t.conf:1: mailbox_format: 'mh' is not one of mbox|maildir", "mailbox_format mh\n"},
    {"t.conf:1: log_level: 'verbose' is not one of error|warn|info|debug", "log_level verbose\n"},
    {"t.conf:1: authent_method: 'nt_user' (Windows accounts) is not supported on this "
     "system; use users_file, unix_user or external",
     "authent_method nt_user\n"},
    /* lists */
    {"t.conf:1: listen: '1.2.3' is not an IPv4 or IPv6 address", "listen 127.0.0.1,1.2.3\n"},
    {"t.conf:1: forward_from_ip: '10.0.0.0/33' " WHY_IP, "forward_from_ip 10.0.0.0/33\n"},
    {"t.conf:1: forward_from_ip: 'host.example' " WHY_IP, "forward_from_ip host.example\n"},
    {"t.conf:1: host_domain: 'bad!domain' is not a valid domain", "host_domain bad!domain\n"},
    {"t.conf:1: host_domain: 'a..b' is not a valid domain", "host_domain a..b\n"},
    {"t.conf:1: host_domain: 'b\xc3\xbc\xff.example' is not a valid domain (string "
     "encoding error)",
     "host_domain xn--bcher-kva.example,b\xc3\xbc\xff.example\n"},
    {"t.conf:1: dns_host: 'resolver.example' is not an IP address with an optional port",
     "dns_host resolver.example\n"},
    {"t.conf:1: dns_host: '192.0.2.53:0' is not an IP address with an optional port",
     "dns_host 192.0.2.53:0\n"},
    /* missing values */
    {"t.conf:1: max_rcpts: missing value", "max_rcpts\n"},
    {"t.conf:1: drop_path: missing value", "drop_path   \t\n"},
    {"t.conf:1: vrfy: missing value", "vrfy\r\n"},
};

static void
test_bad_value(void **state)
{
    const struct bad *b = *state;

    uu_conf_errs(b->text, (const char *const[]){b->want, NULL});
}

int
main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_format_values),
        cmocka_unit_test(test_milter_opts),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_synonyms),
        cmocka_unit_test(test_unknown_and_duplicate),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_list_partly_bad),
        cmocka_unit_test(test_file_and_crlf),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_include_loop),
        cmocka_unit_test(test_include_depth),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_ip_match),
        cmocka_unit_test(test_local_domain_idn),
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_sample_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_format_values),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_synonyms),
        cmocka_unit_test(test_unknown_and_duplicate),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_file_and_crlf),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_include_loop),
        cmocka_unit_test(test_include_depth),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_ip_match),
        cmocka_unit_test(test_ban_rules),
        cmocka_unit_test(test_local_domain_idn),
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_sample_file),
        cmocka_unit_test(test_man_page),
        cmocka_unit_test(test_dmail_compat),
    };
    return UU_RUN_CASES(fixed, test_bad_value, bad_values);
}
