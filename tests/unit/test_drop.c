/*
 * test_drop - dropfile paths, mbox and maildir delivery, locking, failure roll-back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "drop.h"
#include "unit_util.h"

#define NODE "testnode"

struct fixture {
    char dir[UU_DIR_MAX];
    char box[UU_PATH_MAX]; /* DIR/box */
};

/* setup - a fresh temporary directory per test. */
static int
setup(void **state)
{
    return uu_setup_paths(state, sizeof(struct fixture), "test_drop", "box", NULL);
}

/* now_s - monotonic seconds. */
static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* deliver - drop_deliver with strings. */
static enum drop_result
deliver(const char *path, int fmt, const char *sender, const char *headers, const char *text,
        long timeout, unsigned long long max, char *uidl, char *err)
{
    struct drop_msg m = {
        .sender = sender,
        .headers = headers,
        .headers_len = strlen(headers),
        .text = text,
        .text_len = strlen(text),
    };

    return drop_deliver(path, fmt, &m, timeout, max, NODE, uidl, err, 256);
}

/* deliver_x - deliver "x\n" from a@b to the fixture's mbox, waiting 1 s for locks */
static enum drop_result
deliver_x(const struct fixture *f, char *uidl, char *err)
{
    return deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 1, 0, uidl, err);
}

/* expect_locked - deliver_x fails with "mailbox locked" after waiting out its second */
static void
expect_locked(const struct fixture *f, char *uidl, char *err)
{
    double t = now_s();

    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
    t = now_s() - t;
    assert_non_null(strstr(err, "mailbox locked"));
    assert_true(t >= 0.95 && t < 3.0);
}

/* ---- drop_path_for ---- */

static void
test_path_for(void **state)
{
    struct conf cf;
    char buf[256];
    (void)state;

    memset(&cf, 0, sizeof cf);
    cf.drop_path = "/var/drop/";
    cf.hash_spool = 0;
    assert_int_equal(drop_path_for(&cf, "Bob", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/bob");
    cf.hash_spool = 1;
    assert_int_equal(drop_path_for(&cf, "Bob", "", buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/b/bob");
    cf.hash_spool = 2;
    assert_int_equal(drop_path_for(&cf, "Bob", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/b/bo/bob");
    assert_int_equal(drop_path_for(&cf, "Bob", "Example.COM", buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/b/bo/bob@example.com");
    assert_int_equal(drop_path_for(&cf, "a", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/a/a_/a");
    assert_int_equal(drop_path_for(&cf, "j.doe+x", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "/var/drop/j/j_/j.doe+x");
    cf.drop_path = "/d";
    cf.hash_spool = 1;
    assert_int_equal(drop_path_for(&cf, "\xc3\xa9t\xc3\xa9", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "/d/_/\xc3\xa9t\xc3\xa9");

    /* unsafe names */
    static const char *const bad[] = {"",   ".",    "..",   ".hidden", "a/b",
                                      "/x", "a\nb", "a\tb", "a\x7f",   "a\rb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int h = 0; h <= 2; h++) {
            cf.hash_spool = h;
            strcpy(buf, "untouched");
            assert_int_equal(drop_path_for(&cf, bad[i], NULL, buf, sizeof buf), -1);
            assert_int_equal(drop_path_for(&cf, "ok", bad[i][0] ? bad[i] : "..", buf, sizeof buf),
                             -1);
        }
    }
    /* does not fit, bad hash level, no drop_path */
    cf.hash_spool = 2;
    assert_int_equal(drop_path_for(&cf, "bob", NULL, buf, 10), -1);
    assert_int_equal(drop_path_for(&cf, "bob", NULL, buf, 12), 0);
    assert_string_equal(buf, "/d/b/bo/bob");
    assert_int_equal(drop_path_for(&cf, "bob", NULL, buf, 11), -1);
    cf.hash_spool = 3;
    assert_int_equal(drop_path_for(&cf, "bob", NULL, buf, sizeof buf), -1);
    cf.hash_spool = 0;
    cf.drop_path = NULL;
    assert_int_equal(drop_path_for(&cf, "bob", NULL, buf, sizeof buf), -1);
}

/* ---- mboxrd quoting ---- */

static void
test_mboxrd_quote(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"From x\n", ">From x\n"},
        {"From ", ">From "},
        {"From", "From"},
        {"Fromage\n", "Fromage\n"},
        {" From x\n", " From x\n"},
        {">From x\n", ">>From x\n"},
        {">>>From x", ">>>>From x"},
        {">From\n", ">From\n"},
        {"a\nFrom b\n>From c\n\nFrom d", "a\n>From b\n>>From c\n\n>From d"},
        {"x >From y\nFrom\tz\n", "x >From y\nFrom\tz\n"},
        {"\n\nFrom \n", "\n\n>From \n"},
        {"From a\nFrom b\nFrom c\n", ">From a\n>From b\n>From c\n"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len, in = strlen(cases[i].in);
        char *got;
        int fd = open(f->box, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(drop_mboxrd_write(fd, cases[i].in, in), 0);
        close(fd);
        got = uu_read(f->box, &len);
        assert_int_equal(len, strlen(cases[i].out));
        assert_memory_equal(got, cases[i].out, len);
        assert_int_equal(drop_mboxrd_unquote(got, len), in);
        assert_memory_equal(got, cases[i].in, in);
        free(got);
    }
    /* many quoted lines: more pieces than one writev takes */
    {
        size_t n = 1000, len;
        char *in = malloc(n * 8 + 1), *got;
        int fd;
        for (size_t i = 0; i < n; i++)
            memcpy(in + i * 8, "From x\n\n", 8);
        in[n * 8] = '\0';
        fd = open(f->box, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(drop_mboxrd_write(fd, in, n * 8), 0);
        close(fd);
        got = uu_read(f->box, &len);
        assert_int_equal(len, n * 9);
        for (size_t i = 0; i < n; i++)
            assert_memory_equal(got + i * 9, ">From x\n\n", 9);
        assert_int_equal(drop_mboxrd_unquote(got, len), n * 8);
        assert_memory_equal(got, in, n * 8);
        free(in);
        free(got);
    }
    /* a bad descriptor fails */
    assert_int_equal(drop_mboxrd_write(-1, "x", 1), -1);
}

/* ---- mbox delivery ---- */

struct rt_msg {
    const char *sender, *headers, *text;
    const char *from; /* expected sender on the From line */
    const char *body; /* expected bytes after the X-UIDL line */
};

static const struct rt_msg rt_msgs[] = {
    {"bob@x", "Return-Path: <bob@x>\nReceived: from a by b\n",
     "Subject: one\n\nFrom here\n>From there\n>>From x\nFromage\n From y\nend\n", "bob@x",
     "Return-Path: <bob@x>\nReceived: from a by b\nSubject: one\n\n>From here\n>>From "
     "there\n>>>From x\nFromage\n From y\nend\n\n"},
    {"", "", "Subject: two\n\nno newline at end", "MAILER-DAEMON",
     "Subject: two\n\nno newline at end\n\n"},
    {"carol@y", "Return-Path: <carol@y>\n", "", "carol@y", "Return-Path: <carol@y>\n\n"},
    {"d@z", "", "From: d@z\nSubject: blank tail\n\nbody\n\n\n", "d@z",
     "From: d@z\nSubject: blank tail\n\nbody\n\n\n\n"},
    {"e f@z", "", "Subject: x\n\nFrom ", "e_f@z", "Subject: x\n\n>From \n\n"},
    {"g\n@z", "X-H: 1", "\n\nFrom \n", "g_@z", "X-H: 1\n\n\n>From \n\n"},
    /* last in the file: its added newline is not masked by the next separator */
    {"h@z", "", "Subject: last\n\nno newline", "h@z", "Subject: last\n\nno newline\n\n"},
};

#define RT_N (sizeof rt_msgs / sizeof rt_msgs[0])

/* check_from_line - p starts with "From SENDER " and an asctime date of a second in
 * [t0, t1]; returns the length of the line. */
static size_t
check_from_line(const char *p, const char *sender, time_t t0, time_t t1)
{
    size_t n = strlen(sender);
    bool found = false;

    assert_memory_equal(p, "From ", 5);
    assert_memory_equal(p + 5, sender, n);
    assert_int_equal(p[5 + n], ' ');
    for (time_t t = t0; t <= t1 && !found; t++) {
        struct tm tm;
        char date[64];
        asctime_r(gmtime_r(&t, &tm), date); /* "Thu Nov 25 09:00:00 2026\n" */
        found = strncmp(p + 6 + n, date, strlen(date)) == 0;
    }
    assert_true(found);
    return 6 + n + 25;
}

static void
test_mbox_round_trip(void **state)
{
    struct fixture *f = *state;
    size_t nmsg = RT_N, len, off = 0;
    char uidl[RT_N][80], err[256], *got;
    time_t t0 = time(NULL), t1;
    struct stat st;

    for (size_t i = 0; i < nmsg; i++) {
        assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, rt_msgs[i].sender, rt_msgs[i].headers,
                                 rt_msgs[i].text, 5, 0, uidl[i], err),
                         DROP_OK);
        assert_true(strlen(uidl[i]) > 10);
    }
    t1 = time(NULL);
    assert_int_equal(stat(f->box, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    {
        char lock[320];
        snprintf(lock, sizeof lock, "%s.lock", f->box);
        assert_int_equal(access(lock, F_OK), -1); /* the dotlock is gone */
    }
    got = uu_read(f->box, &len);
    for (size_t i = 0; i < nmsg; i++) {
        char xuidl[128];
        size_t body = strlen(rt_msgs[i].body), orig;
        char *copy;
        off += check_from_line(got + off, rt_msgs[i].from, t0, t1);
        snprintf(xuidl, sizeof xuidl, "X-UIDL: %.79s\n", uidl[i]);
        assert_true(off + strlen(xuidl) <= len);
        assert_memory_equal(got + off, xuidl, strlen(xuidl));
        off += strlen(xuidl);
        assert_true(off + body <= len);
        assert_memory_equal(got + off, rt_msgs[i].body, body);
        /* unquoting the message (without the separating blank line) gives back the original
         * headers and text, plus the newline added to an unterminated text */
        copy = malloc(body);
        memcpy(copy, got + off, body - 1);
        orig = drop_mboxrd_unquote(copy, body - 1);
        {
            char want[512];
            snprintf(want, sizeof want, "%s%s%s%s", rt_msgs[i].headers,
                     strlen(rt_msgs[i].headers) &&
                             rt_msgs[i].headers[strlen(rt_msgs[i].headers) - 1] != '\n'
                         ? "\n"
                         : "",
                     rt_msgs[i].text,
                     strlen(rt_msgs[i].text) && rt_msgs[i].text[strlen(rt_msgs[i].text) - 1] != '\n'
                         ? "\n"
                         : "");
            assert_int_equal(orig, strlen(want));
            assert_memory_equal(copy, want, orig);
        }
        free(copy);
        off += body;
    }
    assert_int_equal(off, len);
    free(got);
}

static void
test_mbox_separation(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *old, *prefix;
    } cases[] = {
        {"x", "x\n\nFrom "},
        {"x\n", "x\n\nFrom "},
        {"x\n\n", "x\n\nFrom "},
        {"\n", "\nFrom "},
        {"From a Thu Nov 25 09:00:00 2026\nSubject: s\n\nbody",
         "From a Thu Nov 25 09:00:00 2026\nSubject: s\n\nbody\n\nFrom "},
    };
    char err[256], uidl[80];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *got;
        uu_write(f->box, cases[i].old);
        assert_int_equal(
            deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "S: 1\n\nhi\n", 5, 0, uidl, err), DROP_OK);
        got = uu_read(f->box, &len);
        assert_true(len > strlen(cases[i].prefix));
        assert_memory_equal(got, cases[i].prefix, strlen(cases[i].prefix));
        assert_memory_equal(got + len - 6, "\n\nhi\n\n", 6);
        free(got);
    }
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_mbox_uidl_unique(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    static char uidl[N][80];
    char err[256], *got;
    size_t len;

    for (int i = 0; i < N; i++) {
        assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "Subject: same\n\nsame\n", 5,
                                 0, uidl[i], err),
                         DROP_OK);
        assert_in_range(strlen(uidl[i]), 1, 70);
        for (const char *p = uidl[i]; *p; p++)
            assert_true(*p > 0x20 && *p < 0x7f);
        assert_non_null(strstr(uidl[i], NODE));
    }
    got = uu_read(f->box, &len);
    for (int i = 0; i < N; i++) {
        char hdr[128], *p;
        snprintf(hdr, sizeof hdr, "\nX-UIDL: %.79s\n", uidl[i]);
        p = strstr(got, hdr);
        assert_non_null(p);
        assert_null(strstr(p + 1, hdr));
    }
    free(got);
    qsort(uidl, N, sizeof uidl[0], cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(uidl[i - 1], uidl[i]);
}

/* lock_path - PATH.lock of the fixture's box. */
static void
lock_path(const struct fixture *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s.lock", f->box);
}

static void
test_mbox_dotlock_busy(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80], *got;
    size_t len;

    lock_path(f, lock, sizeof lock);
    uu_write(f->box, "");
    uu_write(lock, "1 elsewhere\n");
    expect_locked(f, uidl, err);
    assert_string_equal(uidl, "");
    assert_int_equal(uu_size(f->box), 0);
    got = uu_read(lock, &len); /* someone else's lock is left alone */
    assert_string_equal(got, "1 elsewhere\n");
    free(got);
}

static void
test_mbox_dotlock_stale(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80];
    struct timeval tv[2];
    double t;

    lock_path(f, lock, sizeof lock);
    uu_write(lock, "1 elsewhere\n");
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 600;
    tv[1] = tv[0];
    assert_int_equal(utimes(lock, tv), 0);
    t = now_s();
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 5, 0, uidl, err), DROP_OK);
    assert_true(now_s() - t < 1.0);
    assert_int_equal(access(lock, F_OK), -1);
    assert_true(uu_size(f->box) > 0);
}

/* An empty dotlock (its creator died before writing it) is broken after a few seconds, but
 * a fresh one is respected. */
static void
test_mbox_dotlock_empty(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80];
    struct timeval tv[2];
    DIR *d;
    struct dirent *de;

    lock_path(f, lock, sizeof lock);
    uu_write(lock, "");
    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 30;
    tv[1] = tv[0];
    assert_int_equal(utimes(lock, tv), 0);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 5, 0, uidl, err), DROP_OK);
    assert_int_equal(access(lock, F_OK), -1);
    /* our own lock was made by link(2): no temporary name is left behind */
    d = opendir(f->dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        assert_null(strstr(de->d_name, ".lock."));
    closedir(d);
}

/* kill -9 in the middle of an append: the dead appender's lock names the old size, and the
 * next delivery cuts the torn message off before appending. */
static void
test_mbox_torn_append_recovered(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80], buf[96], *got;
    size_t len, good;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "first\n", 5, 0, uidl, err),
                     DROP_OK);
    good = (size_t)uu_size(f->box);
    got = uu_read(f->box, &len);
    /* the torn append: a From line and half a message, then the writer died */
    uu_write(f->box, got);
    {
        FILE *fp = fopen(f->box, "a");
        assert_non_null(fp);
        fputs("From torn@b Thu Nov 25 09:00:00 2026\nX-UIDL: torn\nSubject: half", fp);
        fclose(fp);
    }
    free(got);
    assert_true((size_t)uu_size(f->box) > good);
    lock_path(f, lock, sizeof lock);
    snprintf(buf, sizeof buf, "%ld " NODE " %zu\n", (long)pid, good);
    uu_write(lock, buf);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "second\n", 5, 0, uidl, err),
                     DROP_OK);
    got = uu_read(f->box, &len);
    assert_null(strstr(got, "torn"));
    assert_non_null(strstr(got, "first\n"));
    assert_non_null(strstr(got, "second\n"));
    free(got);
}

static void
test_mbox_dotlock_dead_owner(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80], buf[64];
    pid_t pid = fork();
    double t;

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    lock_path(f, lock, sizeof lock);
    /* a dead process of another node is not ours to judge: the lock holds */
    snprintf(buf, sizeof buf, "%ld othernode\n", (long)pid);
    uu_write(lock, buf);
    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
    /* a dead process of this node: broken at once */
    snprintf(buf, sizeof buf, "%ld " NODE "\n", (long)pid);
    uu_write(lock, buf);
    t = now_s();
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 5, 0, uidl, err), DROP_OK);
    assert_true(now_s() - t < 1.0);
    assert_int_equal(access(lock, F_OK), -1);
    /* a live process of this node (us) holds it */
    snprintf(buf, sizeof buf, "%ld " NODE "\n", (long)getpid());
    uu_write(lock, buf);
    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
}

/* child_lock - fork a child that takes a classic fcntl write lock on path and holds it
 * until *release is closed. */
static pid_t
child_lock(const char *path, int *release)
{
    int ready[2], hold[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        close(ready[0]);
        close(hold[1]);
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0)
            _exit(1);
        if (write(ready[1], "k", 1) != 1)
            _exit(1);
        while (read(hold[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    *release = hold[1];
    return pid;
}

static void
test_mbox_fcntl_busy(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80];
    int release, status;
    pid_t pid;

    lock_path(f, lock, sizeof lock);
    pid = child_lock(f->box, &release);
    expect_locked(f, uidl, err);
    assert_int_equal(uu_size(f->box), 0);
    assert_int_equal(access(lock, F_OK), -1); /* our dotlock was not left behind */
    close(release);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_OK);
}

#ifdef F_OFD_SETLK
/* Other threads of this process: their locks must exclude us although fcntl record locks
 * are per process, and closing another descriptor of the mbox must not drop ours. */
static void
test_mbox_same_process_locks(void **state)
{
    struct fixture *f = *state;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char err[256], uidl[80];
    int fd = open(f->box, O_RDWR | O_CREAT, 0600), fd2, status;
    pid_t pid;

    assert_true(fd >= 0);
    /* an open-file-description lock (what drop takes) */
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
    assert_non_null(strstr(err, "mailbox locked"));
    close(fd);
    /* a classic process lock taken by this very process */
    fd = open(f->box, O_RDWR);
    assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_TEMP);
    close(fd);
    /* drop_lock's lock survives the close of another descriptor of the file */
    fd = open(f->box, O_RDWR);
    assert_int_equal(drop_lock(f->box, fd, 1, err, sizeof err), DROP_OK);
    fd2 = open(f->box, O_RDWR);
    close(fd2);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int cfd = open(f->box, O_RDWR);
        _exit(cfd >= 0 && fcntl(cfd, F_SETLK, &fl) != 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    drop_unlock(f->box, fd);
    close(fd);
    assert_int_equal(deliver_x(f, uidl, err), DROP_OK);
}
#else
static void
test_mbox_same_process_locks(void **state)
{
    (void)state;
    skip(); /* no open-file-description locks here */
}
#endif

static void
test_drop_lock_unlock(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], *got, want[32];
    int fd, status;
    size_t len;
    pid_t pid;

    lock_path(f, lock, sizeof lock);
    fd = open(f->box, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(drop_lock(f->box, fd, 1, err, sizeof err), DROP_OK);
    got = uu_read(lock, &len);
    snprintf(want, sizeof want, "%ld ", (long)getpid());
    assert_memory_equal(got, want, strlen(want));
    free(got);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int cfd = open(f->box, O_RDWR);
        _exit(cfd >= 0 && fcntl(cfd, F_SETLK, &fl) != 0 && (errno == EAGAIN || errno == EACCES)
                  ? 0
                  : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* a second locker times out */
    {
        int fd2 = open(f->box, O_RDWR);
        assert_int_equal(drop_lock(f->box, fd2, 1, err, sizeof err), DROP_TEMP);
        assert_non_null(strstr(err, "mailbox locked"));
        close(fd2);
    }
    drop_unlock(f->box, fd);
    assert_int_equal(access(lock, F_OK), -1);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int cfd = open(f->box, O_RDWR);
        _exit(cfd >= 0 && fcntl(cfd, F_SETLK, &fl) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
}

/* A compaction that renames a new mbox in while we wait for the lock: the message must go
 * into the new file, not the replaced one. */
static void
test_mbox_replaced_while_waiting(void **state)
{
    struct fixture *f = *state;
    char lock[320], err[256], uidl[80], *got;
    int ready[2], status;
    size_t len;
    pid_t pid;
    char c;

    lock_path(f, lock, sizeof lock);
    uu_write(f->box, "old\n\n");
    uu_write(lock, "1 elsewhere\n");
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char tmp[320];
        struct timespec ts = {0, 300 * 1000000L};
        close(ready[0]);
        if (write(ready[1], "k", 1) != 1)
            _exit(1);
        nanosleep(&ts, NULL);
        snprintf(tmp, sizeof tmp, "%s.new", f->box);
        FILE *fp = fopen(tmp, "w");
        if (fp == NULL || fputs("new\n\n", fp) < 0 || fclose(fp) != 0)
            _exit(1);
        if (rename(tmp, f->box) != 0 || unlink(lock) != 0)
            _exit(1);
        _exit(0);
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "S: 1\n\nhi\n", 5, 0, uidl, err),
                     DROP_OK);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    got = uu_read(f->box, &len);
    assert_memory_equal(got, "new\n\nFrom a@b ", 14);
    assert_non_null(strstr(got, "\nS: 1\n\nhi\n\n"));
    free(got);
}

/* deliver_limited - in a child with RLIMIT_FSIZE = limit (SIGXFSZ ignored, so writes past
 * it fail with EFBIG), deliver text; the child's exit status is 0 if the delivery failed
 * with DROP_TEMP and said "File too large". */
static int
deliver_limited(const char *path, int fmt, rlim_t limit, const char *text)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {limit, limit};
        char err[256], uidl[80];
        enum drop_result r;
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        r = deliver(path, fmt, "a@b", "Return-Path: <a@b>\n", text, 5, 0, uidl, err);
        _exit(r == DROP_TEMP && strstr(err, "File too large") != NULL && uidl[0] == '\0' ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* big_text - a message of about n bytes with some lines to quote. */
static char *
big_text(size_t n)
{
    char *t = malloc(n + 64);
    size_t off = 0;

    assert_non_null(t);
    off += (size_t)sprintf(t, "Subject: big\n\n");
    for (size_t i = 0; off + 40 < n; i++)
        off += (size_t)sprintf(
            t + off, i % 7 == 0 ? "From line %zu of the text\n" : "ordinary line %zu of the text\n",
            i);
    return t;
}

static void
test_mbox_failure_truncates(void **state)
{
    struct fixture *f = *state;
    char err[256], uidl[80], *before, *after;
    size_t blen, alen;
    char *text = big_text(100000);
    char lock[320];

    assert_int_equal(
        deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "Subject: 1\n\none\n", 5, 0, uidl, err),
        DROP_OK);
    before = uu_read(f->box, &blen);
    /* the write fails part way: 100 bytes fit, the rest do not */
    assert_int_equal(deliver_limited(f->box, MBOX_FORMAT_MBOX, (rlim_t)blen + 100, text), 0);
    after = uu_read(f->box, &alen);
    assert_int_equal(alen, blen);
    assert_memory_equal(after, before, blen);
    free(after);
    /* also when not even the From line fits */
    assert_int_equal(deliver_limited(f->box, MBOX_FORMAT_MBOX, (rlim_t)blen, text), 0);
    assert_int_equal(uu_size(f->box), (long long)blen);
    lock_path(f, lock, sizeof lock);
    assert_int_equal(access(lock, F_OK), -1);
    /* and the mailbox still takes mail afterwards */
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", text, 5, 0, uidl, err), DROP_OK);
    after = uu_read(f->box, &alen);
    assert_true(alen > blen + 100000);
    assert_memory_equal(after, before, blen);
    assert_memory_equal(after + blen, "From a@b ", 9);
    free(after);
    free(before);
    free(text);
}

static void
test_mbox_drop_max(void **state)
{
    struct fixture *f = *state;
    char err[256], uidl[80];
    long long size;

    assert_int_equal(
        deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "Subject: 1\n\none\n", 5, 1000, uidl, err),
        DROP_OK);
    size = uu_size(f->box);
    assert_true(size > 0 && size < 200);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "Subject: 2\n\ntwo\n", 5,
                             (unsigned long long)size + 20, uidl, err),
                     DROP_TEMP);
    assert_non_null(strstr(err, "mailbox full"));
    assert_string_equal(uidl, "");
    assert_int_equal(uu_size(f->box), size);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", "Subject: 2\n\ntwo\n", 5,
                             (unsigned long long)size * 3, uidl, err),
                     DROP_OK);
    assert_true(uu_size(f->box) > size);
}

/* drop_max counts exactly what will be written, '>' quotes included. */
static void
test_mbox_drop_max_exact(void **state)
{
    struct fixture *f = *state;
    char err[256], uidl[80], other[320], text[2048];
    long long size;
    size_t off = (size_t)sprintf(text, "Subject: q\n\n");

    for (int i = 0; i < 50; i++)
        off += (size_t)sprintf(text + off, "From %d\n", i);
    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", text, 5, 0, uidl, err), DROP_OK);
    size = uu_size(f->box);
    snprintf(other, sizeof other, "%s/other", f->dir);
    /* the UID of the next delivery may be one character longer, not more */
    assert_int_equal(deliver(other, MBOX_FORMAT_MBOX, "a@b", "", text, 5,
                             (unsigned long long)size - 10, uidl, err),
                     DROP_TEMP);
    assert_int_equal(uu_size(other), 0);
    assert_int_equal(deliver(other, MBOX_FORMAT_MBOX, "a@b", "", text, 5,
                             (unsigned long long)size + 2, uidl, err),
                     DROP_OK);
    assert_in_range(uu_size(other), size, size + 2);
}

static void
test_mbox_not_regular(void **state)
{
    struct fixture *f = *state;
    char err[256], uidl[80], real[320], link2[320], *got;
    size_t len;

    snprintf(real, sizeof real, "%s/real", f->dir);
    uu_write(real, "precious\n");
    assert_int_equal(symlink(real, f->box), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_PERM);
    assert_non_null(strstr(err, "symbolic link"));
    got = uu_read(real, &len);
    assert_string_equal(got, "precious\n");
    free(got);
    unlink(f->box);
    /* a dangling symlink is not followed to create a file either */
    assert_int_equal(symlink("nowhere", f->box), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_PERM);
    unlink(f->box);
    /* a directory, a FIFO (must not hang) */
    assert_int_equal(mkdir(f->box, 0700), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_PERM);
    rmdir(f->box);
    assert_int_equal(mkfifo(f->box, 0600), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_PERM);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(f->box);
    /* a hard link to someone else's file */
    snprintf(link2, sizeof link2, "%s/box", f->dir);
    assert_int_equal(link(real, link2), 0);
    assert_int_equal(deliver_x(f, uidl, err), DROP_PERM);
    assert_non_null(strstr(err, "hard links"));
    got = uu_read(real, &len);
    assert_string_equal(got, "precious\n");
    free(got);
    /* unknown format, bad request */
    assert_int_equal(deliver(f->box, 7, "a@b", "", "x\n", 1, 0, uidl, err), DROP_PERM);
    assert_int_equal(drop_deliver(f->box, MBOX_FORMAT_MBOX, NULL, 1, 0, NODE, uidl, err, 256),
                     DROP_PERM);
}

static void
test_mbox_creates_parents(void **state)
{
    struct fixture *f = *state;
    char path[400], dir[400], err[256], uidl[80];
    struct stat st;

    snprintf(path, sizeof path, "%s/a/b/c/user", f->dir);
    assert_int_equal(deliver(path, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 1, 0, uidl, err), DROP_OK);
    assert_true(uu_size(path) > 0);
    snprintf(dir, sizeof dir, "%s/a/b", f->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a file where a directory should be */
    snprintf(path, sizeof path, "%s/a/b/c/user/sub", f->dir);
    assert_int_equal(deliver(path, MBOX_FORMAT_MBOX, "a@b", "", "x\n", 1, 0, uidl, err), DROP_PERM);
}

static void
test_mbox_big(void **state)
{
    struct fixture *f = *state;
    char err[256], uidl[80], *got, *text = big_text(8 << 20);
    size_t len, tlen = strlen(text), hdr;
    double t = now_s();

    assert_int_equal(deliver(f->box, MBOX_FORMAT_MBOX, "a@b", "", text, 5, 0, uidl, err), DROP_OK);
    t = now_s() - t;
    print_message("8 MB delivery took %.3f s\n", t);
    got = uu_read(f->box, &len);
    hdr = (size_t)(strstr(got, "\nSubject: big\n") + 1 - got);
    assert_int_equal(drop_mboxrd_unquote(got + hdr, len - hdr - 1), tlen);
    assert_memory_equal(got + hdr, text, tlen);
    free(got);
    free(text);
}

/* ---- concurrency: threads of this process and other processes on one mbox ---- */

enum { CONC_THREADS = 6, CONC_PROCS = 3, CONC_EACH = 20 };

struct conc_arg {
    const char *path;
    int id;
    int failures;
};

/* conc_text - message i of worker w, quoted or not; its "From " lines need more pieces
 * than one writev takes, so unserialised writers would interleave. */
static void
conc_text(char *buf, size_t len, int w, int i, bool quoted)
{
    size_t off = (size_t)snprintf(buf, len, "Subject: w%d m%d\n\n", w, i);

    for (int k = 0; k < 40; k++)
        off += (size_t)snprintf(buf + off, len - off, "%sFrom worker %d line %d\n",
                                quoted ? ">" : "", w, k);
    snprintf(buf + off, len - off, "message %d\n", i);
}

/* conc_worker - deliver CONC_EACH numbered messages. */
static void *
conc_worker(void *p)
{
    struct conc_arg *a = p;

    for (int i = 0; i < CONC_EACH; i++) {
        char text[2048], err[256], uidl[80];
        conc_text(text, sizeof text, a->id, i, false);
        if (deliver(a->path, MBOX_FORMAT_MBOX, "a@b", "", text, 20, 0, uidl, err) != DROP_OK)
            a->failures++;
    }
    return NULL;
}

static void
test_mbox_concurrent(void **state)
{
    struct fixture *f = *state;
    pthread_t th[CONC_THREADS];
    struct conc_arg args[CONC_THREADS + CONC_PROCS];
    pid_t pids[CONC_PROCS];
    size_t len, count = 0;
    char *got;

    for (int p = 0; p < CONC_PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct conc_arg a = {f->box, CONC_THREADS + p, 0};
            conc_worker(&a);
            _exit(a.failures == 0 ? 0 : 1);
        }
    }
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t] = (struct conc_arg){f->box, t, 0};
        assert_int_equal(pthread_create(&th[t], NULL, conc_worker, &args[t]), 0);
    }
    for (int t = 0; t < CONC_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(args[t].failures, 0);
    }
    for (int p = 0; p < CONC_PROCS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    got = uu_read(f->box, &len);
    /* every message exactly once, whole, in one piece */
    for (int w = 0; w < CONC_THREADS + CONC_PROCS; w++) {
        for (int i = 0; i < CONC_EACH; i++) {
            char want[2200], *p;
            want[0] = '\n';
            conc_text(want + 1, sizeof want - 12, w, i, true);
            strcat(want, "\nFrom a@b ");
            p = strstr(got, want);
            if (p == NULL) { /* the last message of the file */
                size_t n = strlen(want) - strlen("From a@b ");
                assert_true(len >= n);
                assert_memory_equal(got + len - n, want, n);
            } else {
                assert_null(strstr(p + 1, want));
            }
        }
    }
    for (char *p = got; (p = strstr(p, "\n\nFrom a@b ")) != NULL; p++)
        count++;
    assert_int_equal(count + 1, (size_t)(CONC_THREADS + CONC_PROCS) * CONC_EACH);
    assert_memory_equal(got, "From a@b ", 9);
    free(got);
}

/* ---- maildir ---- */

/* dir_names - the entries of dir (without dot files) into names; returns the count. */
static int
dir_names(const char *dir, char names[][128], int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && n < max)
            snprintf(names[n++], 128, "%.127s", de->d_name);
    closedir(d);
    return n;
}

static void
test_maildir(void **state)
{
    struct fixture *f = *state;
    char md[320], sub[400], file[600], err[256], uidl[2][80], names[4][128], *got;
    static const char *const texts[] = {"Subject: one\n\nFrom here\nno newline",
                                        "Subject: two\n\n>From x\n"};
    const char *hdr = "Return-Path: <a@b>\n";
    size_t len;
    struct stat st;

    snprintf(md, sizeof md, "%s/deep/Maildir", f->dir);
    for (int i = 0; i < 2; i++)
        assert_int_equal(deliver(md, MBOX_FORMAT_MAILDIR, "a@b", hdr, texts[i], 1, 0, uidl[i], err),
                         DROP_OK);
    assert_string_not_equal(uidl[0], uidl[1]);
    static const char *const subs[] = {"tmp", "new", "cur"};
    for (int i = 0; i < 3; i++) {
        snprintf(sub, sizeof sub, "%s/%s", md, subs[i]);
        assert_int_equal(stat(sub, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    snprintf(sub, sizeof sub, "%s/tmp", md);
    assert_int_equal(dir_names(sub, names, 4), 0);
    snprintf(sub, sizeof sub, "%s/cur", md);
    assert_int_equal(dir_names(sub, names, 4), 0);
    snprintf(sub, sizeof sub, "%s/new", md);
    assert_int_equal(dir_names(sub, names, 4), 2);
    for (int i = 0; i < 2; i++) {
        char want[256], name[128];
        int k = strncmp(names[0], uidl[i], strlen(uidl[i])) == 0 ? 0 : 1;
        snprintf(want, sizeof want, "%s%s", hdr, texts[i]);
        snprintf(name, sizeof name, "%s,S=%zu", uidl[i], strlen(want));
        assert_string_equal(names[k], name);
        assert_null(strchr(uidl[i], ':'));
        assert_null(strchr(uidl[i], '/'));
        assert_in_range(strlen(uidl[i]), 1, 70);
        snprintf(file, sizeof file, "%s/%s", sub, names[k]);
        assert_int_equal(stat(file, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_nlink, 1);
        got = uu_read(file, &len);
        assert_int_equal(len, strlen(want)); /* no From line, no quoting, no X-UIDL */
        assert_memory_equal(got, want, len);
        free(got);
    }
}

static void
test_maildir_failures(void **state)
{
    struct fixture *f = *state;
    char md[320], sub[400], err[256], uidl[80], names[4][128];
    char *text = big_text(100000);

    snprintf(md, sizeof md, "%s/Maildir", f->dir);
    assert_int_equal(
        deliver(md, MBOX_FORMAT_MAILDIR, "a@b", "", "Subject: 1\n\nx\n", 1, 0, uidl, err), DROP_OK);
    /* a failed write leaves nothing in tmp/ or new/ */
    assert_int_equal(deliver_limited(md, MBOX_FORMAT_MAILDIR, 1000, text), 0);
    snprintf(sub, sizeof sub, "%s/tmp", md);
    assert_int_equal(dir_names(sub, names, 4), 0);
    snprintf(sub, sizeof sub, "%s/new", md);
    assert_int_equal(dir_names(sub, names, 4), 1);
    /* drop_max counts new/ and cur/ */
    assert_int_equal(deliver(md, MBOX_FORMAT_MAILDIR, "a@b", "", text, 1, 50000, uidl, err),
                     DROP_TEMP);
    assert_non_null(strstr(err, "mailbox full"));
    assert_int_equal(dir_names(sub, names, 4), 1);
    assert_int_equal(deliver(md, MBOX_FORMAT_MAILDIR, "a@b", "", text, 1, 200000, uidl, err),
                     DROP_OK);
    assert_int_equal(dir_names(sub, names, 4), 2);
    /* a maildir path that is a file */
    snprintf(sub, sizeof sub, "%s/file", f->dir);
    uu_write(sub, "x");
    assert_int_equal(deliver(sub, MBOX_FORMAT_MAILDIR, "a@b", "", "x\n", 1, 0, uidl, err),
                     DROP_PERM);
    free(text);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_path_for), UU_DIR(test_mboxrd_quote),
        UU_DIR(test_mbox_round_trip), UU_DIR(test_mbox_separation), UU_DIR(test_mbox_uidl_unique),
        UU_DIR(test_mbox_dotlock_busy), UU_DIR(test_mbox_dotlock_stale),
        UU_DIR(test_mbox_dotlock_empty), UU_DIR(test_mbox_torn_append_recovered),
        UU_DIR(test_mbox_dotlock_dead_owner), UU_DIR(test_mbox_fcntl_busy),
        UU_DIR(test_mbox_same_process_locks), UU_DIR(test_drop_lock_unlock),
        UU_DIR(test_mbox_replaced_while_waiting), UU_DIR(test_mbox_failure_truncates),
        UU_DIR(test_mbox_drop_max), UU_DIR(test_mbox_drop_max_exact), UU_DIR(test_mbox_not_regular),
        UU_DIR(test_mbox_creates_parents), UU_DIR(test_mbox_big), UU_DIR(test_mbox_concurrent),
        UU_DIR(test_maildir), UU_DIR(test_maildir_failures))
