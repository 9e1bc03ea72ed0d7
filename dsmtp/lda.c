/*
 * lda - program and file delivery for forward files. See lda.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "lda.h"
#include "ldapriv.h"
#include "ldaspawn.h"
#include "xmem.h"

#define LDA_OUT_MAX 512 /* output kept for the report */
#define LDA_ARGS_MAX 64 /* words of a command run without the shell */
/* Postfix's: a command without these runs without the shell (pipe_command.c) */
#define LDA_SHELL_META "|&;<>()$`\\\"'*?[#~=%\n"

/* lda_now_ms - the monotonic clock in milliseconds. */
static long long
lda_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* lda_header - "Return-Path: <sender>\nDelivered-To: rcpt\n" into a new string. */
static char *
lda_header(const struct lda_msg *m)
{
    return xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", m->sender, m->rcpt);
}

/* lda_child - in the forked child: only async-signal-safe calls, then exec. */
static void
lda_child(pid_t parent, int in, int out, const char *home, char *const argv[], char *const envp[])
{
    sigset_t none;

    /* dies with dsmtp (kill -9 included): the queue runs it again, so it is not run twice */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(71);
    setsid();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(71);
    if (chdir(home) < 0 && chdir("/") < 0)
        _exit(71);
    umask(077);
    execve(argv[0], argv, envp);
    if (errno == ENOENT || errno == EACCES || errno == ENOEXEC) { /* as the shell says it */
        static const char msg[] = "cannot execute the command\n";
        ssize_t w = write(1, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    _exit(71); /* EX_OSERR: tried again */
}

/* lda_argv - the argv of cmd into argv (words split into buf): the command itself when it
 * is an absolute path with no shell metacharacter (as Postfix does; then it is the child
 * that dsmtp's death kills), else /bin/sh -c cmd. */
static void
lda_argv(const char *cmd, char *buf, size_t len, char *argv[LDA_ARGS_MAX + 1])
{
    size_t n = 0;
    char *save = NULL;

    snprintf(buf, len, "%s", cmd);
    if (cmd[0] == '/' && strpbrk(cmd, LDA_SHELL_META) == NULL && strlen(cmd) < len)
        for (char *w = strtok_r(buf, " \t", &save); w != NULL && n < LDA_ARGS_MAX;
             w = strtok_r(NULL, " \t", &save))
            argv[n++] = w;
    if (n == 0 || n == LDA_ARGS_MAX) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = (char *)cmd;
        n = 3;
    }
    argv[n] = NULL;
}

/* lda_keep - output bytes into the report buffer (the first LDA_OUT_MAX). */
static void
lda_keep(char *out, size_t *n, const char *buf, size_t len)
{
    size_t room = LDA_OUT_MAX - *n;

    if (len > room)
        len = room;
    memcpy(out + *n, buf, len);
    *n += len;
}

/* lda_pump - feed hdr+text to fd in, read fd out into kept, until out closes or the
 * deadline passes. false: timed out. */
static bool
lda_pump(int in, int out, const char *hdr, const struct lda_msg *m, long long deadline, char *kept,
         size_t *nkept)
{
    size_t hlen = strlen(hdr), off = 0, total = hlen + m->len;
    char buf[4096];

    fcntl(in, F_SETFL, O_NONBLOCK);
    fcntl(out, F_SETFL, O_NONBLOCK);
    while (out >= 0) {
        struct pollfd p[2] = {{out, POLLIN, 0}, {in, POLLOUT, 0}};
        long long left = deadline - lda_now_ms();
        int np = in >= 0 ? 2 : 1;
        if (left <= 0)
            break;
        if (poll(p, (nfds_t)np, left > 1000 ? 1000 : (int)left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (np == 2 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            const char *src = off < hlen ? hdr + off : m->text + (off - hlen);
            size_t n = off < hlen ? hlen - off : total - off;
            ssize_t w = write(in, src, n);
            if (w > 0)
                off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == total) {
                close(in); /* EPIPE: it read what it wanted */
                in = -1;
            }
        }
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = read(out, buf, sizeof(buf));
            if (r > 0) {
                lda_keep(kept, nkept, buf, (size_t)r);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(out);
                out = -1;
            }
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0) {
        close(out);
        return false;
    }
    return true;
}

/* lda_wait - reap pid by the deadline; past it, kill its process group. -1: timed out. */
static int
lda_wait(pid_t pid, long long deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (lda_now_ms() >= deadline)
            break;
        usleep(10000);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

/* lda_first_line - the first non-empty line of the output, printable, into buf. */
static void
lda_first_line(const char *out, size_t n, char *buf, size_t len)
{
    size_t i = 0, o = 0;

    while (i < n && (out[i] == '\n' || out[i] == '\r' || out[i] == ' '))
        i++;
    for (; i < n && out[i] != '\n' && o + 1 < len; i++)
        buf[o++] = (unsigned char)out[i] < ' ' || out[i] == 0x7f ? ' ' : out[i];
    while (o > 0 && buf[o - 1] == ' ')
        o--;
    buf[o] = '\0';
}

/* lda_status - the result of a program by its wait status, its output in line. */
static enum drop_result
lda_status(int status, const char *line, char *err, size_t errlen)
{
    if (WIFSIGNALED(status)) {
        snprintf(err, errlen, "command died with signal %d%s%s", WTERMSIG(status),
                 line[0] ? ": " : "", line);
        return DROP_TEMP;
    }
    if (WEXITSTATUS(status) == 0)
        return DROP_OK;
    snprintf(err, errlen, "command exited with status %d%s%s", WEXITSTATUS(status),
             line[0] ? ": " : "", line);
    return WEXITSTATUS(status) == 75 || WEXITSTATUS(status) == 71 ? DROP_TEMP : DROP_PERM;
}

/* lda_program_priv - cmd started as its user by the root helper (ldapriv.h), or with file
 * the file cmd appended to as the user; hdr freed. */
static enum drop_result
lda_program_priv(const struct conf *cf, const char *cmd, bool file, const struct lda_msg *m,
                 char *hdr, long long deadline, char *err, size_t errlen)
{
    char kept[LDA_OUT_MAX], line[200];
    int in[2], out[2], fd, status = 0, rc;
    size_t nkept = 0;
    bool pumped;

    if (pipe2(in, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot run the command: pipe: %s", strerror(errno));
        free(hdr);
        return DROP_TEMP;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot run the command: pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        free(hdr);
        return DROP_TEMP;
    }
    fd = ldapriv_spawn(m->user, m->home != NULL ? m->home : "/", cmd, file, m->priv, m->sender,
                       m->rcpt, in[0], out[1], err, errlen);
    if (fd < 0) {
        close(in[1]);
        close(out[0]);
        free(hdr);
        return DROP_TEMP;
    }
    pumped = lda_pump(in[1], out[0], hdr, m, deadline, kept, &nkept);
    free(hdr);
    rc = ldapriv_wait(fd, pumped ? deadline : 0, lda_now_ms, &status, err, errlen);
    lda_first_line(kept, nkept, line, sizeof(line));
    if (rc == -2) {
        snprintf(err, errlen, "command time limit exceeded (%lds)", cf->command_time_limit);
        return DROP_TEMP;
    }
    if (rc < 0) /* refused by the helper's own checks: for good; it could not start: later */
        return strstr(err, "refused by") != NULL && strstr(err, "cannot fork") == NULL ? DROP_PERM
                                                                                       : DROP_TEMP;
    if (file && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s", line[0] ? line : "cannot write the file");
        return WEXITSTATUS(status) == 75 || WEXITSTATUS(status) == 71 ? DROP_TEMP : DROP_PERM;
    }
    return lda_status(status, line, err, errlen);
}

/* lda_program - fork /bin/sh -c cmd with the message on its stdin, wait, map its exit. */
enum drop_result
lda_program(const struct conf *cf, const char *cmd, const struct lda_msg *m, char *err,
            size_t errlen)
{
    const char *home = m->home != NULL && m->home[0] == '/' ? m->home : "/";
    char *env[8], *argv[LDA_ARGS_MAX + 1], *words = xmalloc(strlen(cmd) + 1);
    char *hdr = lda_header(m), kept[LDA_OUT_MAX], line[200];
    int in[2], out[2], status = 0, waited;
    long long deadline = lda_now_ms() + cf->command_time_limit * 1000LL;
    size_t nkept = 0;
    bool pumped;
    pid_t pid, self = getpid();

    env[0] = xasprintf("HOME=%s", home);
    env[1] = xasprintf("USER=%s", m->user);
    env[2] = xasprintf("LOGNAME=%s", m->user);
    env[3] = xstrdup("SHELL=/bin/sh");
    env[4] = xstrdup("PATH=/usr/bin:/bin");
    env[5] = xasprintf("SENDER=%s", m->sender);
    env[6] = xasprintf("RECIPIENT=%s", m->rcpt);
    env[7] = NULL;
    lda_argv(cmd, words, strlen(cmd) + 1, argv);
    if (m->priv != NULL && ldapriv_on()) {
        free(words);
        for (int i = 0; env[i] != NULL; i++)
            free(env[i]);
        return lda_program_priv(cf, cmd, false, m, hdr, deadline, err, errlen);
    }
    if (pipe2(in, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot run the command: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot run the command: pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        goto fail;
    }
    if (ldaspawn_on()) { /* uv_spawn on the loop (ldaspawn.h) */
        struct ldaspawn *sp = ldaspawn_run(argv, env, home, in[0], out[1], err, errlen);
        close(in[0]);
        close(out[1]);
        if (sp == NULL) {
            close(in[1]);
            close(out[0]);
            goto fail;
        }
        pumped = lda_pump(in[1], out[0], hdr, m, deadline, kept, &nkept);
        waited = ldaspawn_wait(sp, pumped ? deadline : 0, lda_now_ms, &status);
        goto ended;
    }
    pid = fork();
    if (pid == 0)
        lda_child(self, in[0], out[1], home, argv, env);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        snprintf(err, errlen, "cannot run the command: fork: %s", strerror(errno));
        close(in[1]);
        close(out[0]);
        goto fail;
    }
    pumped = lda_pump(in[1], out[0], hdr, m, deadline, kept, &nkept);
    waited = lda_wait(pid, pumped ? deadline : 0, &status);
ended:
    for (int i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(words);
    free(hdr);
    lda_first_line(kept, nkept, line, sizeof(line));
    if (!pumped || waited < 0) {
        snprintf(err, errlen, "command time limit exceeded (%lds)", cf->command_time_limit);
        return DROP_TEMP;
    }
    return lda_status(status, line, err, errlen);
fail:
    for (int i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(words);
    free(hdr);
    return DROP_TEMP;
}

/* lda_file - append the message in mbox format to path (drop.h: locks, fsync). */
enum drop_result
lda_file(const struct conf *cf, const char *path, const struct lda_msg *m, char *err, size_t errlen)
{
    char node[256], *hdr;
    struct drop_msg dm;
    enum drop_result res;

    if (path[0] != '/') {
        snprintf(err, errlen, "%s: not an absolute path", path);
        return DROP_PERM;
    }
    if (m->priv != NULL && ldapriv_on()) /* another user's forward file, or an alias file's */
        return lda_program_priv(cf, path, true, m, lda_header(m),
                                lda_now_ms() + cf->command_time_limit * 1000LL, err, errlen);
    deliver_node(cf, node, sizeof(node));
    hdr = lda_header(m);
    dm.sender = m->sender;
    dm.headers = hdr;
    dm.headers_len = strlen(hdr);
    dm.text = m->text;
    dm.text_len = m->len;
    res = drop_deliver(path, MBOX_FORMAT_MBOX, &dm, cf->lock_timeout, 0, node, NULL, err, errlen);
    free(hdr);
    return res;
}
