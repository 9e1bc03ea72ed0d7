/*
 * test_qfile - the queue file format: round trips, torn and foreign files, refused values,
 * atomic rewrite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dsnparam.h"
#include "xheader.h"
#include "qfile.h"
#include "unit_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char root[64];
    char dir[96];
    char tmp[96];
};

/* setup - a fresh spool with queue/ and tmp/. */
static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (uu_tmpdir_into(f->root, sizeof f->root, "test_qfile") < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/queue", f->root);
    snprintf(f->tmp, sizeof f->tmp, "%s/tmp", f->root);
    if (mkdir(f->dir, 0700) < 0 || mkdir(f->tmp, 0700) < 0)
        return -1;
    *state = f;
    return 0;
}

/* teardown - remove the spool. */
static int
teardown(void **state)
{
    struct fixture *f = *state;

    uu_rmtree(f->root);
    free(f);
    return 0;
}

/* sample - a message with three recipients in different states. */
static void
sample(struct qfile *q, const char *text)
{
    memset(q, 0, sizeof *q);
    q->arrival = 1700000000;
    q->sender = strdup("bob@example.test");
    q->origin = strdup("smtp 192.0.2.1 sid=00000000deadbeef helo=<client.example>");
    q->flags = QF_HOLD;
    qfile_add_rcpt(q, "alice@example.test");
    qfile_add_rcpt(q, "carol@example.org");
    qfile_add_rcpt(q, "dave@example.net");
    q->rcpt[1].state = QR_FAILED;
    q->rcpt[1].attempts = 3;
    q->rcpt[1].next_try = 1700003600;
    q->rcpt[1].last_error = strdup("550 5.1.1 <carol@example.org>: user unknown");
    q->rcpt[2].state = QR_DONE;
    q->rcpt[2].attempts = 1;
    q->text = strdup(text);
    q->text_len = strlen(text);
}

/* path_of - DIR/ID. */
static char *
path_of(const char *dir, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, id);
    return buf;
}

/* assert_read_ok - qfile_read succeeds (else the reason is the failure message). */
static void
assert_read_ok(const char *path, struct qfile *r, char *err, size_t errlen)
{
    if (qfile_read(path, r, err, errlen) != 0)
        fail_msg("qfile_read %s: %s", path, err);
}

/* assert_same - two qfiles hold the same envelope and text. */
static void
assert_same(const struct qfile *a, const struct qfile *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->arrival, b->arrival);
    assert_string_equal(a->sender, b->sender);
    assert_string_equal(a->origin ? a->origin : "", b->origin);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->nrcpt, b->nrcpt);
    for (size_t i = 0; i < a->nrcpt; i++) {
        assert_string_equal(a->rcpt[i].addr, b->rcpt[i].addr);
        assert_int_equal(a->rcpt[i].state, b->rcpt[i].state);
        assert_int_equal(a->rcpt[i].attempts, b->rcpt[i].attempts);
        assert_int_equal(a->rcpt[i].next_try, b->rcpt[i].next_try);
        if (a->rcpt[i].last_error == NULL)
            assert_null(b->rcpt[i].last_error);
        else
            assert_string_equal(a->rcpt[i].last_error, b->rcpt[i].last_error);
    }
    assert_int_equal(a->text_len, b->text_len);
    assert_memory_equal(a->text, b->text, a->text_len);
    assert_int_equal(b->text[b->text_len], '\0');
}

/* test_round_trip - write then read gives back every field; the file is the documented
 * text, and the temporary directory is left empty. */
static void
test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256];
    const char *text = "From: bob@example.test\nSubject: hi\n\nbody\n";

    sample(&q, text);
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_true(qfile_id_valid(q.id));
    assert_int_equal(uu_count_entries(f->tmp), 0);
    assert_int_equal(uu_count_entries(f->dir), 1);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);

    /* The documented layout, byte for byte. */
    char *expect, *got = uu_read(path, NULL);
    assert_true(asprintf(&expect,
                         "DMQ 1\nid %s\narrival 1700000000\nsender <bob@example.test>\n"
                         "origin smtp 192.0.2.1 sid=00000000deadbeef helo=<client.example>\n"
                         "flags 1\nrcpts 3\n"
                         "rcpt pending 0 0 <alice@example.test>\n"
                         "rcpt failed 3 1700003600 <carol@example.org> 550 5.1.1 "
                         "<carol@example.org>: user unknown\n"
                         "rcpt done 1 0 <dave@example.net>\n"
                         "size %zu\n\n%send\n",
                         q.id, strlen(text), text) > 0);
    assert_string_equal(got, expect);
    free(got);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    free(expect);
    qfile_free(&q);
    qfile_free(&r);
    assert_null(q.rcpt);
}

/* test_dsn_round_trip - RET, ENVID, the default NOTIFY and each recipient's NOTIFY and
 * ORCPT survive a write and a read, in the documented lines; a file written before them
 * (no dsn or notify line) reads as nothing set; bad DSN lines and values are refused. */
static void
test_dsn_round_trip(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256], *expect;
    const char *text = "Subject: dsn\n\nbody\n";

    sample(&q, text);
    q.ret = DSN_RET_FULL;
    q.envid = strdup("QQ+2B314159");
    q.notify = DSN_NOTIFY_DELAY;
    q.rcpt[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
    q.rcpt[0].orcpt = strdup("rfc822;Alice+2Bx@example.test");
    q.rcpt[1].notify = DSN_NOTIFY_NEVER;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    assert_int_equal(r.ret, DSN_RET_FULL);
    assert_string_equal(r.envid, "QQ+2B314159");
    assert_int_equal(r.notify, DSN_NOTIFY_DELAY);
    assert_int_equal(r.rcpt[0].notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE);
    assert_string_equal(r.rcpt[0].orcpt, "rfc822;Alice+2Bx@example.test");
    assert_int_equal(r.rcpt[1].notify, DSN_NOTIFY_NEVER);
    assert_null(r.rcpt[1].orcpt);
    assert_int_equal(r.rcpt[2].notify, 0);
    assert_null(r.rcpt[2].orcpt);
    char *got = uu_read(path, NULL);
    assert_true(asprintf(&expect,
                         "flags 1\ndsn full QQ+2B314159 delay\nrcpts 3\n"
                         "rcpt pending 0 0 <alice@example.test>\n"
                         "notify success,failure rfc822;Alice+2Bx@example.test\n"
                         "rcpt failed 3 1700003600 <carol@example.org> 550 5.1.1 "
                         "<carol@example.org>: user unknown\n"
                         "notify never -\n"
                         "rcpt done 1 0 <dave@example.net>\n"
                         "size %zu\n",
                         strlen(text)) > 0);
    if (strstr(got, expect) == NULL)
        fail_msg("layout:\n%s\nwant inside:\n%s", got, expect);
    free(got);
    free(expect);
    qfile_free(&r);

    /* only RET: the other values are "-" */
    free(q.envid);
    q.envid = NULL;
    q.notify = 0;
    q.ret = DSN_RET_HDRS;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path, &r, err, sizeof err);
    assert_int_equal(r.ret, DSN_RET_HDRS);
    assert_null(r.envid);
    assert_int_equal(r.notify, 0);
    qfile_free(&r);

    /* values the format cannot hold are refused before anything is written */
    const char *bad_envid[] = {"two words", "a=b", "", "x+0Ay"};
    for (size_t i = 0; i < sizeof bad_envid / sizeof bad_envid[0]; i++) {
        q.envid = strdup(bad_envid[i]);
        errno = 0;
        assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
        assert_int_equal(errno, EINVAL);
        free(q.envid);
        q.envid = NULL;
    }
    free(q.rcpt[0].orcpt);
    q.rcpt[0].orcpt = strdup("alice@example.test");
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
    free(q.rcpt[0].orcpt);
    q.rcpt[0].orcpt = NULL;
    q.rcpt[0].notify = DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
    q.rcpt[0].notify = 0;
    q.ret = (enum dsn_ret)7;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
    q.ret = DSN_RET_UNSET;
    qfile_free(&q);

    /* an old file without the lines; bad lines */
    static const struct {
        const char *lines, *reason;
    } cases[] = {
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n", NULL},
        {"flags 0\ndsn - - -\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify - -\n", NULL},
        {"flags 0\ndsn hdrs E never\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify delay x;y\n", NULL},
        {"flags 0\ndsn body - -\nrcpts 1\nrcpt done 0 0 <x@y>\n", "bad dsn ret"},
        {"flags 0\ndsn full a=b -\nrcpts 1\nrcpt done 0 0 <x@y>\n", "bad dsn envid"},
        {"flags 0\ndsn full - often\nrcpts 1\nrcpt done 0 0 <x@y>\n", "bad notify"},
        {"flags 0\ndsn full -\nrcpts 1\nrcpt done 0 0 <x@y>\n", "bad dsn line"},
        {"flags 0\ndsn full - - -\nrcpts 1\nrcpt done 0 0 <x@y>\n", "bad dsn line"},
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify never\n", "bad notify line"},
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify never,delay -\n", "bad notify"},
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify - rfc822\n", "bad orcpt"},
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\nnotify - -\nnotify - -\n", "expected \"size\""},
        {"flags 0\nrcpts 1\nnotify - -\nrcpt done 0 0 <x@y>\n", "expected \"rcpt\""},
        {"dsn - - -\nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n", "expected \"flags\""},
        {"flags 0\nrcpts 1\nrcpt done 0 0 <x@y>\ndsn - - -\n", "expected \"size\""},
    };
    snprintf(path, sizeof path, "%s/old", f->dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *file;
        assert_true(asprintf(&file,
                             "DMQ 1\nid a\narrival 1\nsender <>\norigin \n%ssize 4\n\nabc\nend\n",
                             cases[i].lines) > 0);
        uu_write_bytes(path, file, strlen(file));
        free(file);
        err[0] = '\0';
        int rc = qfile_read(path, &r, err, sizeof err);
        if (cases[i].reason == NULL) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, err);
            assert_int_equal(r.nrcpt, 1);
            assert_string_equal(r.text, "abc\n");
            if (i == 2) {
                assert_int_equal(r.ret, DSN_RET_HDRS);
                assert_string_equal(r.envid, "E");
                assert_int_equal(r.notify, DSN_NOTIFY_NEVER);
                assert_int_equal(r.rcpt[0].notify, DSN_NOTIFY_DELAY);
                assert_string_equal(r.rcpt[0].orcpt, "x;y");
            } else {
                assert_int_equal(r.ret, DSN_RET_UNSET);
                assert_null(r.envid);
                assert_int_equal(r.notify, 0);
                assert_int_equal(r.rcpt[0].notify, 0);
                assert_null(r.rcpt[0].orcpt);
            }
            qfile_free(&r);
        } else if (rc != -1 || strstr(err, cases[i].reason) == NULL) {
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, rc, err, cases[i].reason);
        }
    }
    unlink(path);
}

/* test_null_sender_and_escapes - <> and addresses with spaces, '+', '<', '>' survive. */
static void
test_null_sender_and_escapes(void **state)
{
    struct fixture *f = *state;
    struct qfile q = {0}, r;
    char path[PATH_MAX], err[256];

    q.sender = strdup("");
    qfile_add_rcpt(&q, "\"john <doe> smith\"@example.test");
    qfile_add_rcpt(&q, "a+tag=x@example.test");
    qfile_add_rcpt(&q, "\xc3\xa9l\xc3\xa8ve@example.test");
    q.text = strdup("");
    assert_int_equal(qfile_write(f->dir, NULL, &q, 0640), 0);
    /* tmpdir NULL: the temporary name is DIR/.ID, nothing else is left behind */
    assert_int_equal(uu_count_entries(f->dir), 1);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    assert_string_equal(r.sender, "");
    assert_string_equal(r.origin, "");
    qfile_free(&q);
    qfile_free(&r);
}

/* test_many_recipients - 5000 recipients with errors round trip in order. */
static void
test_many_recipients(void **state)
{
    struct fixture *f = *state;
    struct qfile q = {0}, r;
    char path[PATH_MAX], err[256], a[64];

    q.sender = strdup("list-bounces@example.test");
    q.origin = strdup("sendmail uid=0 user=root");
    for (int i = 0; i < 5000; i++) {
        snprintf(a, sizeof a, "user%d@host%d.example", i, i % 7);
        qfile_add_rcpt(&q, a);
        q.rcpt[i].attempts = i % 5;
        q.rcpt[i].state = (enum qfile_rstate)(i % 3);
        if (i % 2)
            q.rcpt[i].last_error = strdup("421 4.4.2 connection timed out");
    }
    q.text = strdup("Subject: x\n\ny\n");
    q.text_len = strlen(q.text);
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    qfile_free(&q);
    qfile_free(&r);
}

/* test_binary_text - every byte value 1..255, CRs, a text without a final newline and
 * lines that look like header keywords or the trailer. */
static void
test_binary_text(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256];
    char text[600];
    size_t n = 0;

    for (int i = 1; i < 256; i++)
        text[n++] = (char)i;
    const char *tricky = "\nend\nsize 3\n\nDMQ 1\r\nend";
    memcpy(text + n, tricky, strlen(tricky));
    n += strlen(tricky);
    text[n] = '\0';
    sample(&q, "");
    free(q.text);
    q.text = malloc(n + 1);
    memcpy(q.text, text, n + 1);
    q.text_len = n;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    qfile_free(&r);

    /* and with a final newline: no extra newline is written or read back */
    q.text[n - 1] = '\n';
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_int_equal(qfile_read(path, &r, err, sizeof err), 0);
    assert_same(&q, &r);
    qfile_free(&r);
    qfile_free(&q);
}

/* read_raw - a whole file into a malloc'd buffer. */
static char *
read_raw(const char *path, size_t *lenp)
{
    struct stat st;
    char *buf;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    buf[st.st_size] = '\0';
    *lenp = (size_t)st.st_size;
    return buf;
}

/* test_torn_file - every proper prefix of a valid file is refused with a reason, both for
 * a text with and without a final newline. */
static void
test_torn_file(void **state)
{
    struct fixture *f = *state;
    const char *texts[] = {"Subject: torn\n\nline one\nline two\n", "no final newline"};

    for (size_t t = 0; t < 2; t++) {
        struct qfile q, r;
        char path[PATH_MAX], torn[PATH_MAX], err[256];
        size_t len;

        sample(&q, texts[t]);
        assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
        char *full = read_raw(path_of(f->dir, q.id, path, sizeof path), &len);
        snprintf(torn, sizeof torn, "%s/torn", f->dir);
        for (size_t cut = 0; cut < len; cut++) {
            uu_write_bytes(torn, full, cut);
            err[0] = '\0';
            assert_int_equal(qfile_read(torn, &r, err, sizeof err), -1);
            assert_true(err[0] != '\0');
            assert_null(r.rcpt);
        }
        /* the whole file with junk after the trailer is refused too */
        char *longer = malloc(len + 2);
        memcpy(longer, full, len);
        memcpy(longer + len, "x\n", 2);
        uu_write_bytes(torn, longer, len + 2);
        assert_int_equal(qfile_read(torn, &r, err, sizeof err), -1);
        unlink(torn);
        free(longer);
        free(full);
        qfile_free(&q);
    }
    /* a missing file reports the system error */
    struct qfile r;
    char err[256];
    assert_int_equal(qfile_read("/nonexistent/qfile", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
}

/* The bad files of test_bad_header: each differs from a good one in one place. */
static const struct {
    const char *name, *text, *reason;
} bad_files[] = {
    {"empty", "", "truncated"},
    {"magic", "DMQX 1\n", "not a dmail queue file"},
    {"version", "DMQ 2\n", "unsupported version"},
    {"version junk", "DMQ 1x\n", "unsupported version"},
    {"id missing", "DMQ 1\narrival 1\n", "expected \"id\""},
    {"id slash", "DMQ 1\nid ../etc/passwd\n", "bad id"},
    {"id dot", "DMQ 1\nid .hidden\n", "bad id"},
    {"arrival neg", "DMQ 1\nid a\narrival -1\n", "bad arrival"},
    {"arrival junk", "DMQ 1\nid a\narrival 12x\n", "bad arrival"},
    {"sender brackets", "DMQ 1\nid a\narrival 1\nsender b@c\n", "bad sender"},
    {"sender escape", "DMQ 1\nid a\narrival 1\nsender <b+0Ac>\n", "bad sender"},
    {"sender nul escape", "DMQ 1\nid a\narrival 1\nsender <b+00c>\n", "bad sender"},
    {"sender bad hex", "DMQ 1\nid a\narrival 1\nsender <b+G0c>\n", "bad sender"},
    {"sender junk", "DMQ 1\nid a\narrival 1\nsender <b> x\n", "bad sender"},
    {"cr in header", "DMQ 1\nid a\narrival 1\nsender <b>\r\n", "control character"},
    {"flags", "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags x\n", "bad flags"},
    {"no rcpts", "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 0\n", "no recipients"},
    {"rcpt state",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt maybe 0 0 <x@y>\n",
     "bad rcpt state"},
    {"rcpt attempts",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done -1 0 <x@y>\n",
     "bad rcpt attempts"},
    {"rcpt empty addr",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <>\n",
     "bad rcpt address"},
    {"rcpt short", "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0\n",
     "short rcpt"},
    {"rcpt junk",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>junk\n",
     "junk after"},
    {"fewer rcpt lines",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 2\nrcpt done 0 0 <x@y>\n"
     "size 0\n\nend\n",
     "expected \"rcpt\""},
    {"more rcpt lines",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "rcpt done 0 0 <x@z>\nsize 0\n\nend\n",
     "expected \"size\""},
    {"no blank line",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "size 0\nend\n",
     "blank line"},
    {"size too big",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "size 6\n\nabc\nend\n",
     "size does not match"},
    {"size too small",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "size 2\n\nabc\nend\n",
     "size does not match"},
    {"huge size",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "size 99999999999\n\nabc\nend\n",
     "truncated text"},
    {"bad trailer",
     "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\nrcpt done 0 0 <x@y>\n"
     "size 4\n\nabc\nEND\n",
     "size does not match"},
};

/* test_bad_header - each malformed file is refused with the expected reason, and the
 * good file they derive from is accepted (so the table can fail). */
static void
test_bad_header(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], err[256];
    struct qfile r;
    const char *good = "DMQ 1\nid a\narrival 1\nsender <>\norigin \nflags 0\nrcpts 1\n"
                       "rcpt done 0 0 <x@y>\nsize 4\n\nabc\nend\n";

    snprintf(path, sizeof path, "%s/bad", f->dir);
    uu_write_bytes(path, good, strlen(good));
    assert_int_equal(qfile_read(path, &r, err, sizeof err), 0);
    assert_string_equal(r.text, "abc\n");
    assert_string_equal(r.origin, "");
    qfile_free(&r);
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        uu_write_bytes(path, bad_files[i].text, strlen(bad_files[i].text));
        err[0] = '\0';
        if (qfile_read(path, &r, err, sizeof err) != -1 || strstr(err, bad_files[i].reason) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", bad_files[i].name, err, bad_files[i].reason);
    }
    /* a header line over the limit */
    char *huge = malloc(10000);
    int n = snprintf(huge, 10000, "DMQ 1\nid a\narrival 1\nsender <>\norigin ");
    memset(huge + n, 'o', 5000);
    memcpy(huge + n + 5000, "\n", 2);
    uu_write_bytes(path, huge, strlen(huge));
    assert_int_equal(qfile_read(path, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "too long"));
    free(huge);
    unlink(path);
}

/* test_injection_refused - CR/LF in any value, bad ids, no recipients: EINVAL and no file
 * anywhere. */
static void
test_injection_refused(void **state)
{
    struct fixture *f = *state;
    struct qfile q;
    enum { SENDER, ORIGIN, ADDR, ERROR, ID, ID2, NORCPT, LONG, NCASES };

    for (int c = 0; c < NCASES; c++) {
        sample(&q, "x\n");
        switch (c) {
        case SENDER:
            free(q.sender);
            q.sender = strdup("a@b>\nrcpt pending 0 0 <victim@example.test");
            break;
        case ORIGIN:
            free(q.origin);
            q.origin = strdup("sendmail\rrcpts 9");
            break;
        case ADDR:
            free(q.rcpt[0].addr);
            q.rcpt[0].addr = strdup("x@y\nrcpt pending 0 0 <z@w>");
            break;
        case ERROR:
            q.rcpt[0].last_error = strdup("550 no\nsize 0");
            break;
        case ID:
            snprintf(q.id, sizeof q.id, "../escape");
            break;
        case ID2:
            snprintf(q.id, sizeof q.id, ".dot");
            break;
        case NORCPT:
            for (size_t i = 0; i < q.nrcpt; i++) {
                free(q.rcpt[i].addr);
                free(q.rcpt[i].last_error);
            }
            q.nrcpt = 0;
            break;
        case LONG:
            free(q.origin);
            q.origin = malloc(5000);
            memset(q.origin, 'o', 4999);
            q.origin[4999] = '\0';
            break;
        }
        errno = 0;
        if (qfile_write(f->dir, f->tmp, &q, 0600) != -1 || errno != EINVAL)
            fail_msg("case %d was written", c);
        assert_int_equal(uu_count_entries(f->dir), 0);
        assert_int_equal(uu_count_entries(f->tmp), 0);
        assert_int_equal(uu_count_entries(f->root), 2);
        qfile_free(&q);
    }
    /* zero recipients are fine when the recipients come from the headers */
    sample(&q, "To: a@b\n\n");
    for (size_t i = 0; i < q.nrcpt; i++) {
        free(q.rcpt[i].addr);
        free(q.rcpt[i].last_error);
    }
    q.nrcpt = 0;
    q.flags = QF_RCPT_FROM_HEADERS;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    struct qfile r;
    char path[PATH_MAX], err[256];
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_int_equal(r.nrcpt, 0);
    qfile_free(&r);
    qfile_free(&q);
}

/* test_rewrite_atomic - rewriting an id replaces the file by rename: a reader holding the
 * old file still sees it whole, the path shows the new one, no temporary is left, and a
 * temporary left over by a crash does not stop the rewrite. */
static void
test_rewrite_atomic(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], stale[PATH_MAX], err[256];
    struct stat st1, st2;

    sample(&q, "Subject: rewrite\n\nbody\n");
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    path_of(f->dir, q.id, path, sizeof path);
    assert_int_equal(stat(path, &st1), 0);
    int oldfd = open(path, O_RDONLY);
    assert_true(oldfd >= 0);

    q.rcpt[0].attempts = 7;
    q.rcpt[0].next_try = 1800000000;
    q.rcpt[0].last_error = strdup("451 4.3.0 try later");
    snprintf(stale, sizeof stale, "%s/%s", f->tmp, q.id);
    uu_write_bytes(stale, "half a file", 11);
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_int_equal(uu_count_entries(f->tmp), 0);
    assert_int_equal(uu_count_entries(f->dir), 1);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st1.st_ino != st2.st_ino);
    assert_int_equal(qfile_read(path, &r, err, sizeof err), 0);
    assert_same(&q, &r);
    qfile_free(&r);

    /* the old inode is still the complete old file */
    char old[4096];
    ssize_t n = read(oldfd, old, sizeof old - 1);
    close(oldfd);
    assert_true(n > 0);
    old[n] = '\0';
    assert_non_null(strstr(old, "rcpt pending 0 0 <alice@example.test>\n"));
    assert_int_equal(strcmp(old + n - 4, "end\n"), 0);

    /* two fresh writes get two different ids */
    char first[sizeof q.id];
    snprintf(first, sizeof first, "%s", q.id);
    q.id[0] = '\0';
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_string_not_equal(first, q.id);
    assert_int_equal(uu_count_entries(f->dir), 2);

    /* a dot-file temporary in the maildrop style is replaced the same way */
    snprintf(stale, sizeof stale, "%s/.%s", f->dir, q.id);
    uu_write_bytes(stale, "torn", 4);
    assert_int_equal(qfile_write(f->dir, f->dir, &q, 0600), 0);
    assert_int_equal(uu_count_entries(f->dir), 2);
    qfile_free(&q);
}

/* test_state_names - the words of the format. */
static void
test_state_names(void **state)
{
    static const char *const names[] = {
        [QR_PENDING] = "pending",
        [QR_DONE] = "done",
        [QR_FAILED] = "failed",
    };
    UU_NAMES_ARE(qfile_state_name, enum qfile_rstate, names); /* every state named here */
    assert_null(qfile_state_name((enum qfile_rstate)17));
    assert_true(qfile_id_valid("1700000000.123_1_abcdef.host-1.example"));
    assert_false(qfile_id_valid(""));
    assert_false(qfile_id_valid("a/b"));
    assert_false(qfile_id_valid("a b"));
    /* a lock_id with bytes a file name may not hold still gives a valid, fresh id */
    char a[96], b[96];
    qfile_new_id(a, sizeof a, "node+x=y~z,w");
    qfile_new_id(b, sizeof b, "node+x=y~z,w");
    assert_true(qfile_id_valid(a));
    assert_string_not_equal(a, b);
    assert_non_null(strstr(a, "node_x_y_z_w"));
}

/* test_requiretls_round_trip - QF_REQUIRETLS (RFC 8689) goes out as a flags bit and
 * comes back; a file of before it (flags without the bit) reads as not REQUIRETLS. */
static void
test_requiretls_round_trip(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256];

    sample(&q, "Subject: rt\n\nbody\n");
    q.flags = QF_REQUIRETLS;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    assert_true(r.flags & QF_REQUIRETLS);
    char *got = uu_read(path, NULL);
    assert_non_null(strstr(got, "\nflags 8\n"));
    free(got);
    qfile_free(&r);
    q.flags = QF_HOLD; /* as an old file: no REQUIRETLS */
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path, &r, err, sizeof err);
    assert_false(r.flags & QF_REQUIRETLS);
    qfile_free(&r);
    qfile_free(&q);
}

/* test_verp_round_trip - the XVERP delimiters go out on a "verp" line and come back; a
 * file without the line (as before it) reads as no VERP; bad delimiters are refused on
 * write and on read. */
static void
test_verp_round_trip(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256];

    sample(&q, "Subject: verp\n\nbody\n");
    snprintf(q.verp, sizeof q.verp, "%s", "-=");
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    assert_string_equal(r.verp, "-=");
    char *got = uu_read(path, NULL);
    assert_non_null(strstr(got, "\nflags 1\nverp -=\nrcpts 3\n"));
    qfile_free(&r);
    /* the same file without the line: an old file, no VERP */
    char *v = strstr(got, "verp -=\n");
    memmove(v, v + 8, strlen(v + 8) + 1);
    uu_write(path, got);
    assert_read_ok(path, &r, err, sizeof err);
    assert_string_equal(r.verp, "");
    qfile_free(&r);
    free(got);
    /* a bad line is a foreign file */
    got = uu_read(path, NULL);
    v = strstr(got, "\nrcpts ");
    char *bad = NULL;
    assert_true(asprintf(&bad, "%.*s\nverp + =%s", (int)(v - got), got, v) > 0);
    uu_write(path, bad);
    assert_int_equal(qfile_read(path, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "verp"));
    qfile_free(&r);
    free(bad);
    free(got);
    snprintf(q.verp, sizeof q.verp, "%s", "+ ");
    errno = 0;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
    assert_int_equal(errno, EINVAL);
    qfile_free(&q);
}

/* test_xheader_round_trip - a recipient's own fields (XHEADER) in their "xheader" line,
 * read back as given and decoded to LF-ended lines; a bad value is neither written nor
 * read. */
static void
test_xheader_round_trip(void **state)
{
    struct fixture *f = *state;
    struct qfile q, r;
    char path[PATH_MAX], err[256], *text;
    size_t len;

    sample(&q, "Subject: x\n\nbody\n");
    q.rcpt[0].xheader = strdup("X-A:+20b+0D+0A+09c+0D+0AX-B:+20d");
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), 0);
    assert_read_ok(path_of(f->dir, q.id, path, sizeof path), &r, err, sizeof err);
    assert_same(&q, &r);
    assert_string_equal(r.rcpt[0].xheader, q.rcpt[0].xheader);
    assert_null(r.rcpt[1].xheader);
    text = xheader_decode(r.rcpt[0].xheader, &len);
    assert_string_equal(text, "X-A: b\n\tc\nX-B: d\n");
    assert_int_equal(len, strlen(text));
    free(text);
    qfile_free(&r);
    char *got = uu_read(path, NULL);
    assert_non_null(strstr(got, "<alice@example.test>\nxheader X-A:+20b+0D+0A+09c+0D+0AX-B:+20d\n"
                                "rcpt "));
    char *v = strstr(got, "+0AX-B:");
    v[3] = ' '; /* "+0A X-B": a space in the value */
    uu_write(path, got);
    assert_int_equal(qfile_read(path, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "xheader"));
    qfile_free(&r);
    free(got);
    free(q.rcpt[0].xheader);
    q.rcpt[0].xheader = strdup("Received:+20x"); /* the server's own field */
    errno = 0;
    assert_int_equal(qfile_write(f->dir, f->tmp, &q, 0600), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(xheader_decode("X-A+20b", &len));
    qfile_free(&q);
}

UU_MAIN(NULL, NULL, UU_FX(test_round_trip), UU_FX(test_dsn_round_trip),
        UU_FX(test_null_sender_and_escapes), UU_FX(test_many_recipients), UU_FX(test_binary_text),
        UU_FX(test_torn_file), UU_FX(test_bad_header), UU_FX(test_injection_refused),
        UU_FX(test_rewrite_atomic), UU_FX(test_requiretls_round_trip), UU_FX(test_verp_round_trip),
        UU_FX(test_xheader_round_trip), cmocka_unit_test(test_state_names))
