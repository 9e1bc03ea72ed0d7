/*
 * test_ctl - the control socket: server on a real loop, the blocking client in a thread,
 * the asynchronous client on the same loop; permissions, caps, limits, stale sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "tell.h"
#include "xmem.h"
#include "unit_util.h"

struct fix {
    uv_loop_t loop;
    uv_async_t wake;
    char dir[64];
    char path[128];
    struct ctl_server *srv;
    struct ctl_req *held; /* a request a handler keeps unanswered */
    uv_timer_t later;
    int later_n;
    int calls;
};

static struct fix *F;

/* sun_set - a socket address for path (the tests' paths are short). */
static void
sun_set(struct sockaddr_un *sun, const char *path)
{
    size_t n = strlen(path);

    assert_true(n < sizeof(sun->sun_path));
    memcpy(sun->sun_path, path, n + 1);
}

/* h_echo - data lines for each argument, then OK with the count. */
static void
h_echo(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct fix *f = arg;

    f->calls++;
    for (int i = 1; i < argc; i++)
        ctl_line(r, "%s", argv[i]);
    ctl_ok(r, "%d words", argc - 1);
}

/* h_fail - an ERR with a data line that looks like a status line. */
static void
h_fail(struct ctl_req *r, int argc, char **argv, void *arg)
{
    ctl_line(r, "OK this is data");
    ctl_line(r, "ERR this too");
    ctl_line(r, "\\backslash");
    ctl_line(r, "tab\there\nnewline");
    ctl_err(r, "failed on purpose");
}

/* later_cb - answer the held request from a timer (asynchronous answer). */
static void
later_cb(uv_timer_t *t)
{
    struct fix *f = t->data;
    struct ctl_req *r = f->held;

    f->held = NULL;
    if (r == NULL)
        return;
    ctl_line(r, "gone=%d", ctl_gone(r));
    ctl_ok(r, "later %d", f->later_n);
}

/* h_later - answer after n ms (argument), 50 by default. */
static void
h_later(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct fix *f = arg;

    f->held = r;
    f->later_n = argc > 1 ? atoi(argv[1]) : 50;
    uv_timer_start(&f->later, later_cb, (uint64_t)f->later_n, 0);
}

/* h_hold - never answers by itself (the test answers or the server close detaches it). */
static void
h_hold(struct ctl_req *r, int argc, char **argv, void *arg)
{
    struct fix *f = arg;

    f->held = r;
}

/* h_big - many data lines (output larger than one flush). */
static void
h_big(struct ctl_req *r, int argc, char **argv, void *arg)
{
    for (int i = 0; i < 5000; i++)
        ctl_line(r, "line %d of the big answer", i);
    ctl_ok(r, "5000");
}

static const struct ctl_cmd cmds[] = {
    {"echo", "[WORD...]", 0, 15, h_echo, "repeat the words"},
    {"fail", "", 0, 0, h_fail, "always fails"},
    {"later", "[MS]", 0, 1, h_later, "answer later"},
    {"hold", "", 0, 0, h_hold, "answer only when told"},
    {"big", "", 0, 0, h_big, "a long answer"},
};

/* wake_cb - a client thread finished. */
static void
wake_cb(uv_async_t *a)
{
    (void)a;
}

/* noop_close - static handles. */
static void
noop_close(uv_handle_t *h)
{
    (void)h;
}

/* setup - a loop and a server in a fresh directory. */
static int
setup(void **state)
{
    char err[256];
    struct fix *f = xcalloc(1, sizeof(*f));

    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_async_init(&f->loop, &f->wake, wake_cb);
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    assert_int_equal(uu_tmpdir_into(f->dir, sizeof(f->dir), "test_ctl"), 0);
    snprintf(f->path, sizeof(f->path), "%s/t.ctl", f->dir);
    f->srv = ctl_server_new(&f->loop, f->path, cmds, sizeof(cmds) / sizeof(cmds[0]), f, err,
                            sizeof(err));
    if (f->srv == NULL)
        fail_msg("ctl_server_new: %s", err);
    F = f;
    *state = f;
    return 0;
}

/* teardown - close everything; a handle left open fails the test. */
static int
teardown(void **state)
{
    struct fix *f = *state;

    ctl_server_close(&f->srv);
    if (f->held != NULL) {
        struct ctl_req *r = f->held;
        f->held = NULL;
        ctl_ok(r, "late");
    }
    uv_close((uv_handle_t *)&f->wake, noop_close);
    uv_close((uv_handle_t *)&f->later, noop_close);
    for (int i = 0; i < 1000 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++)
        usleep(1000);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(uu_rmtree(f->dir), 0);
    free(f);
    return 0;
}

/* A client running in a thread while the loop runs here. */
struct job {
    void (*fn)(struct job *j);
    const char *path;
    char req[4096];
    int timeout_ms;
    int rc;
    char text[512];
    char lines[65536];
    size_t nlines;
    int fd; /* raw jobs */
    atomic_int done;
};

/* collect - append a data line to the job's transcript. */
static void
collect(void *arg, const char *line)
{
    struct job *j = arg;
    size_t n = strlen(j->lines);

    snprintf(j->lines + n, sizeof(j->lines) - n, "%s\n", line);
    j->nlines++;
}

/* job_call - ctl_call. */
static void
job_call(struct job *j)
{
    j->rc = ctl_call(j->path, j->req, j->timeout_ms ? j->timeout_ms : 5000, collect, j, j->text,
                     sizeof(j->text));
}

/* job_thread - run the job, then wake the loop. */
static void *
job_thread(void *arg)
{
    struct job *j = arg;

    j->fn(j);
    atomic_store(&j->done, 1);
    uv_async_send(&F->wake);
    return NULL;
}

/* run_job - start j in a thread and run the loop until it is done. */
static void
run_job(struct fix *f, struct job *j)
{
    pthread_t t;

    if (j->path == NULL)
        j->path = f->path;
    assert_int_equal(pthread_create(&t, NULL, job_thread, j), 0);
    while (!atomic_load(&j->done))
        uv_run(&f->loop, UV_RUN_ONCE);
    pthread_join(t, NULL);
}

/* call - one blocking request against the fixture's server. */
static int
call(struct fix *f, struct job *j, const char *req)
{
    memset(j, 0, sizeof(*j));
    j->fn = job_call;
    snprintf(j->req, sizeof(j->req), "%s", req);
    run_job(f, j);
    return j->rc;
}

static void
test_ok_err_and_escaping(void **state)
{
    struct fix *f = *state;
    struct job j;
    struct stat st;

    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());

    assert_int_equal(call(f, &j, "echo a  b\tc"), CTL_R_OK);
    assert_string_equal(j.text, "3 words");
    assert_string_equal(j.lines, "a\nb\nc\n");
    assert_int_equal(call(f, &j, "ECHO"), CTL_R_OK); /* names are case-insensitive */
    assert_string_equal(j.text, "0 words");
    assert_int_equal(call(f, &j, "fail"), CTL_R_ERR);
    assert_string_equal(j.text, "failed on purpose");
    assert_string_equal(j.lines, "OK this is data\nERR this too\n\\backslash\ntab?here?newline\n");
    assert_int_equal(call(f, &j, "ping"), CTL_R_OK);
    assert_string_equal(j.text, "pong");
    assert_int_equal(call(f, &j, "big"), CTL_R_OK);
    assert_int_equal(j.nlines, 5000);
    assert_int_equal(f->calls, 2);
}

static void
test_usage_errors(void **state)
{
    struct fix *f = *state;
    struct job j;

    assert_int_equal(call(f, &j, "nosuch thing"), CTL_R_ERR);
    assert_string_equal(j.text, "unknown command nosuch; try help");
    assert_int_equal(call(f, &j, "later 1 2"), CTL_R_ERR);
    assert_string_equal(j.text, "usage: later [MS]");
    assert_int_equal(call(f, &j, "fail x"), CTL_R_ERR);
    assert_string_equal(j.text, "usage: fail");
    assert_int_equal(call(f, &j, ""), CTL_R_ERR);
    assert_int_equal(call(f, &j, "echo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"), CTL_R_ERR);
    assert_non_null(strstr(j.text, "too many words"));
    assert_int_equal(call(f, &j, "help"), CTL_R_OK);
    assert_non_null(strstr(j.lines, "echo [WORD...] - repeat the words\n"));
    assert_non_null(strstr(j.lines, "later [MS] - answer later\n"));
    assert_non_null(strstr(j.lines, "ping - "));
    assert_int_equal(j.nlines, 7);
    assert_int_equal(f->calls, 0);
}

/* job_raw - send j->req as is on a raw socket; read everything until EOF or the timeout. */
static void
job_raw(struct job *j)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = j->timeout_ms ? j->timeout_ms / 1000 : 5,
                         .tv_usec = (j->timeout_ms % 1000) * 1000};
    size_t off = 0;
    ssize_t n;

    sun_set(&sun, j->path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        j->rc = -errno;
        close(fd);
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (j->req[0] != '\0' && send(fd, j->req, strlen(j->req), MSG_NOSIGNAL) < 0)
        j->rc = -errno;
    while (off < sizeof(j->lines) - 1 &&
           (n = recv(fd, j->lines + off, sizeof(j->lines) - 1 - off, 0)) > 0)
        off += (size_t)n;
    j->lines[off] = '\0';
    j->rc = n == 0 || (n < 0 && errno == ECONNRESET) ? 0 : -1; /* 0: the server closed */
    close(fd);
}

static void
test_several_requests_and_async_answers(void **state)
{
    struct fix *f = *state;
    struct job j = {.fn = job_raw};

    /* three requests in one write; the second is answered later; the order holds */
    snprintf(j.req, sizeof(j.req), "echo one\r\nlater 30\necho two\n");
    j.timeout_ms = 500;
    run_job(f, &j);
    assert_string_equal(j.lines, "one\nOK 1 words\ngone=0\nOK later 30\ntwo\nOK 1 words\n");
    assert_int_equal(j.rc, -1); /* the connection stayed open for more */
}

static void
test_half_close_gets_its_answer(void **state)
{
    struct fix *f = *state;

    /* a request, then EOF at once: answered, then the server closes */
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sun_set(&sun, f->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(send(fd, "later 20\n", 9, 0), 9);
    shutdown(fd, SHUT_WR);
    char buf[256];
    size_t off = 0;
    for (int i = 0; i < 200; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf + off, sizeof(buf) - 1 - off, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            off += (size_t)n;
        usleep(2000);
    }
    buf[off] = '\0';
    close(fd);
    assert_string_equal(buf, "gone=0\nOK later 20\n");
}

static void
test_line_too_long(void **state)
{
    struct fix *f = *state;
    struct job j = {.fn = job_raw};

    memset(j.req, 'x', 2000);
    j.req[2000] = '\0';
    run_job(f, &j);
    assert_int_equal(j.rc, 0);
    assert_string_equal(j.lines, "ERR request line too long\n");

    /* 1023 characters and the newline are still fine */
    memset(&j, 0, sizeof(j));
    j.fn = job_raw;
    j.timeout_ms = 300;
    memcpy(j.req, "echo ", 5);
    memset(j.req + 5, 'y', 1018);
    j.req[1023] = '\n';
    run_job(f, &j);
    assert_int_equal(strlen(j.lines), 1018 + 1 + strlen("OK 1 words\n"));
}

static void
test_idle_timeout(void **state)
{
    struct fix *f = *state;
    struct job j = {.fn = job_raw};

    ctl_server_set_limits(f->srv, 8, 100);
    run_job(f, &j);
    assert_int_equal(j.rc, 0);
    assert_string_equal(j.lines, "ERR idle timeout\n");
}

/* open_idle - a raw connection that has been accepted by the server. */
static int
open_idle(struct fix *f)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    sun_set(&sun, f->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    return fd;
}

static void
test_per_uid_cap(void **state)
{
    struct fix *f = *state;
    struct job j;
    int a, b;

    ctl_server_set_limits(f->srv, 2, 5000);
    a = open_idle(f);
    b = open_idle(f);
    assert_int_equal(call(f, &j, "ping"), CTL_R_ERR);
    assert_string_equal(j.text, "too many control connections");
    close(a);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(call(f, &j, "ping"), CTL_R_OK);
    close(b);
}

/* job_other_uid - the client as another user, in a child process. */
static void
job_other_uid(struct job *j)
{
    int p[2];
    pid_t pid;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    if (pid == 0) {
        char text[256];
        close(p[0]);
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(99);
        int rc = ctl_call(j->path, "ping", 3000, NULL, NULL, text, sizeof(text));
        dprintf(p[1], "%d %s", rc, text);
        _exit(0);
    }
    close(p[1]);
    ssize_t n = read(p[0], j->text, sizeof(j->text) - 1);
    j->text[n > 0 ? n : 0] = '\0';
    close(p[0]);
    waitpid(pid, &j->rc, 0);
}

static void
test_other_uid_refused(void **state)
{
    struct fix *f = *state;
    struct job j = {.fn = job_other_uid};

    if (geteuid() != 0)
        skip();
    /* the file mode keeps others out ... */
    run_job(f, &j);
    assert_int_equal(WEXITSTATUS(j.rc), 0);
    assert_int_equal(atoi(j.text), CTL_R_UNREACHABLE);
    assert_non_null(strstr(j.text, "permission denied"));
    /* ... and with the mode opened up, the peer credentials still do */
    assert_int_equal(chmod(f->path, 0666), 0);
    assert_int_equal(chmod(f->dir, 0755), 0);
    memset(&j, 0, sizeof(j));
    j.fn = job_other_uid;
    run_job(f, &j);
    assert_int_equal(atoi(j.text), CTL_R_ERR);
    assert_non_null(strstr(j.text, "permission denied: only root"));
}

static void
test_stale_and_foreign_files(void **state)
{
    struct fix *f = *state;
    char err[256], path[160];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct ctl_server *s2;
    struct job j;
    int fd;

    /* a live server holds the path: refused */
    s2 = ctl_server_new(&f->loop, f->path, cmds, 1, f, err, sizeof(err));
    assert_null(s2);
    assert_non_null(strstr(err, "another process is listening"));
    assert_int_equal(call(f, &j, "ping"), CTL_R_OK);

    /* a stale socket (bound, then its owner went away): replaced */
    snprintf(path, sizeof(path), "%s/stale.ctl", f->dir);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sun_set(&sun, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    s2 = ctl_server_new(&f->loop, path, cmds, 1, f, err, sizeof(err));
    if (s2 == NULL)
        fail_msg("%s", err);
    memset(&j, 0, sizeof(j));
    j.fn = job_call;
    j.path = path;
    snprintf(j.req, sizeof(j.req), "echo hi");
    run_job(f, &j);
    assert_int_equal(j.rc, CTL_R_OK);
    ctl_server_close(&s2);
    assert_null(s2);
    assert_int_equal(access(path, F_OK), -1); /* removed at close */

    /* a regular file: left alone */
    snprintf(path, sizeof(path), "%s/file.ctl", f->dir);
    FILE *fp = fopen(path, "w");
    fputs("not a socket\n", fp);
    fclose(fp);
    assert_null(ctl_server_new(&f->loop, path, cmds, 1, f, err, sizeof(err)));
    assert_non_null(strstr(err, "not a socket"));
    assert_int_equal(access(path, F_OK), 0);

    /* a path too long for a Unix socket */
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_null(ctl_server_new(&f->loop, longp, cmds, 1, f, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
}

static void
test_unreachable(void **state)
{
    struct fix *f = *state;
    char text[256], path[160];

    snprintf(path, sizeof(path), "%s/none.ctl", f->dir);
    assert_int_equal(ctl_call(path, "ping", 1000, NULL, NULL, text, sizeof(text)),
                     CTL_R_UNREACHABLE);
    assert_non_null(strstr(text, "no control socket"));
    assert_int_equal(ctl_call(f->path, "two\nlines", 1000, NULL, NULL, text, sizeof(text)),
                     CTL_R_BROKEN);
}

static void
test_client_gone_then_answer(void **state)
{
    struct fix *f = *state;
    int fd = open_idle(f);

    assert_int_equal(send(fd, "hold\n", 5, 0), 5);
    for (int i = 0; i < 20 && f->held == NULL; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_non_null(f->held);
    assert_false(ctl_gone(f->held));
    assert_int_equal(ctl_uid(f->held), geteuid());
    close(fd);
    for (int i = 0; i < 20 && !ctl_gone(f->held); i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(ctl_gone(f->held));
    struct ctl_req *r = f->held;
    f->held = NULL;
    ctl_line(r, "into the void");
    ctl_ok(r, "nobody listens"); /* frees r, writes nothing */
}

/* Asynchronous client results. */
struct ares {
    int n;
    int result;
    char text[256];
    char lines[1024];
};

/* ares_line - collect a data line. */
static void
ares_line(void *arg, const char *line)
{
    struct ares *a = arg;
    size_t n = strlen(a->lines);

    snprintf(a->lines + n, sizeof(a->lines) - n, "%s\n", line);
}

/* ares_cb - the result. */
static void
ares_cb(void *arg, int result, const char *text)
{
    struct ares *a = arg;

    a->n++;
    a->result = result;
    snprintf(a->text, sizeof(a->text), "%s", text);
}

/* run_until - run the loop until *n becomes nonzero (bounded). */
static void
run_until(struct fix *f, int *n)
{
    for (int i = 0; i < 2000 && *n == 0; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void
test_async_client(void **state)
{
    struct fix *f = *state;
    struct ares a = {0}, b = {0}, c = {0}, d = {0};
    char path[160];

    ctl_call_async(&f->loop, f->path, "echo x OKAY", 2000, ares_line, ares_cb, &a);
    assert_int_equal(a.n, 0); /* never from inside the call */
    run_until(f, &a.n);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.result, CTL_R_OK);
    assert_string_equal(a.text, "2 words");
    assert_string_equal(a.lines, "x\nOKAY\n");

    snprintf(path, sizeof(path), "%s/none.ctl", f->dir);
    ctl_call_async(&f->loop, path, "ping", 2000, NULL, ares_cb, &b);
    assert_int_equal(b.n, 0);
    run_until(f, &b.n);
    assert_int_equal(b.result, CTL_R_UNREACHABLE);

    /* a server that does not answer: the timeout */
    ctl_call_async(&f->loop, f->path, "hold", 100, NULL, ares_cb, &c);
    run_until(f, &c.n);
    assert_int_equal(c.result, CTL_R_BROKEN);
    assert_non_null(strstr(c.text, "no answer in time"));

    /* cancelled: no callback */
    struct ctl_async *x = ctl_call_async(&f->loop, f->path, "ping", 2000, NULL, ares_cb, &d);
    ctl_async_cancel(x);
    for (int i = 0; i < 50; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(d.n, 0);
}

static void
test_close_while_answering(void **state)
{
    struct fix *f = *state;
    struct ares a = {0}, b = {0};

    ctl_call_async(&f->loop, f->path, "later 100", 2000, ares_line, ares_cb, &a);
    for (int i = 0; i < 50 && f->held == NULL; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_non_null(f->held);
    ctl_server_close(&f->srv);
    assert_int_equal(access(f->path, F_OK), -1);
    /* the answer in progress still arrives */
    run_until(f, &a.n);
    assert_int_equal(a.result, CTL_R_OK);
    assert_string_equal(a.text, "later 100");
    /* nobody listens any more */
    ctl_call_async(&f->loop, f->path, "ping", 2000, NULL, ares_cb, &b);
    run_until(f, &b.n);
    assert_int_equal(b.result, CTL_R_UNREACHABLE);
}

static void
test_split(void **state)
{
    char line[64] = "  a b\t\tc  ";
    char *argv[4];

    assert_int_equal(ctl_split(line, argv, 4), 3);
    assert_string_equal(argv[0], "a");
    assert_string_equal(argv[2], "c");
    char l2[] = "a b c d e";
    assert_int_equal(ctl_split(l2, argv, 4), -1);
    char l3[] = "   ";
    assert_int_equal(ctl_split(l3, argv, 4), 0);
}

static void
test_tell_users_edit(void **state)
{
    const char *old =
        "# users\nalice:$6$a$b:apop=s3cret\n\n  Bob@Example.COM:$y$x$y\nalice:$6$dup$dup";
    char err[256];
    char *t;

    t = tell_users_edit(old, "adduser", "Carol", "$y$new", err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(t, "# users\nalice:$6$a$b:apop=s3cret\n\n  Bob@Example.COM:$y$x$y\n"
                           "alice:$6$dup$dup\ncarol:$y$new\n");
    free(t);
    assert_null(tell_users_edit(old, "adduser", "ALICE", "$y$new", err, sizeof(err)));
    assert_non_null(strstr(err, "user alice exists"));
    assert_null(tell_users_edit(old, "adduser", "bob@example.com", "$y$n", err, sizeof(err)));

    /* passwd keeps the options and drops later duplicates */
    t = tell_users_edit(old, "passwd", "alice", "$y$pw", err, sizeof(err));
    assert_non_null(t);
    assert_string_equal(t, "# users\nalice:$y$pw:apop=s3cret\n\n  Bob@Example.COM:$y$x$y\n");
    free(t);
    t = tell_users_edit(old, "passwd", "bob@EXAMPLE.com", "$y$b", err, sizeof(err));
    assert_non_null(strstr(t, "  Bob@Example.COM:$y$b\n"));
    free(t);
    assert_null(tell_users_edit(old, "passwd", "dave", "$y$b", err, sizeof(err)));
    assert_non_null(strstr(err, "no user dave"));

    t = tell_users_edit(old, "deluser", "alice", NULL, err, sizeof(err));
    assert_string_equal(t, "# users\n\n  Bob@Example.COM:$y$x$y\n");
    free(t);
    assert_null(tell_users_edit(old, "deluser", "bob", NULL, err, sizeof(err)));

    /* no file yet */
    t = tell_users_edit(NULL, "adduser", "eve", "$y$e", err, sizeof(err));
    assert_string_equal(t, "eve:$y$e\n");
    free(t);
    assert_null(tell_users_edit(NULL, "deluser", "eve", NULL, err, sizeof(err)));
    /* names that would break the file */
    assert_null(tell_users_edit(old, "adduser", "a:b", "$y$e", err, sizeof(err)));
    assert_null(tell_users_edit(old, "adduser", "#x", "$y$e", err, sizeof(err)));
    assert_null(tell_users_edit(old, "adduser", "a b", "$y$e", err, sizeof(err)));
    assert_null(tell_users_edit(old, "adduser", "a@-bad-.", "$y$e", err, sizeof(err)));
}

static void
test_tell_hash(void **state)
{
    char h[256], h2[256];

    assert_int_equal(tell_hash("correct horse:battery", h, sizeof(h)), 0);
    assert_memory_equal(h, "$y$", 3);
    assert_int_equal(tell_hash("correct horse:battery", h2, sizeof(h2)), 0);
    assert_string_not_equal(h, h2); /* fresh salt */
    assert_true(auth_check_hash("correct horse:battery", h));
    assert_false(auth_check_hash("correct horse", h));
    assert_int_equal(tell_hash("x", h, 10), -1); /* too small */
}

static void
test_tell_name(void **state)
{
    char out[300];

    assert_int_equal(tell_users_name_ok("Alice", out, sizeof(out)), 0);
    assert_string_equal(out, "alice");
    assert_int_equal(tell_users_name_ok("Bob@B\xc3\xbc"
                                        "cher.example",
                                        out, sizeof(out)),
                     0);
    assert_string_equal(out, "bob@xn--bcher-kva.example");
    assert_int_equal(tell_users_name_ok("", out, sizeof(out)), -1);
    assert_int_equal(tell_users_name_ok("@x.example", out, sizeof(out)), -1);
    assert_int_equal(tell_users_name_ok("tab\tname", out, sizeof(out)), -1);
    assert_int_equal(tell_users_name_ok("alice", out, 3), -1);
}

/* quiet_log - the group's setup: only errors are logged, to stderr */
static int
quiet_log(void **state)
{
    (void)state;
    log_init("test_ctl", 1);
    log_set_level(LOGLVL_ERROR);
    return 0;
}

UU_MAIN(quiet_log, NULL, cmocka_unit_test(test_split), cmocka_unit_test(test_tell_users_edit),
        cmocka_unit_test(test_tell_hash), cmocka_unit_test(test_tell_name),
        UU_FX(test_ok_err_and_escaping), UU_FX(test_usage_errors),
        UU_FX(test_several_requests_and_async_answers), UU_FX(test_half_close_gets_its_answer),
        UU_FX(test_line_too_long), UU_FX(test_idle_timeout), UU_FX(test_per_uid_cap),
        UU_FX(test_other_uid_refused), UU_FX(test_stale_and_foreign_files), UU_FX(test_unreachable),
        UU_FX(test_client_gone_then_answer), UU_FX(test_async_client),
        UU_FX(test_close_while_answering))
