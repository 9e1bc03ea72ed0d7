/*
 * ldapriv - the root helper that starts programs as their user. See ldapriv.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "deliver.h"
#include "drop.h"
#include "ldapriv.h"
#include "log.h"

#define LDAPRIV_FWD_MAX 65536 /* a forward file read to find the command (as dotfwd.h) */

/* One request: fixed size, NUL-terminated strings; its descriptors travel beside it. */
struct ldapriv_req {
    char user[256];
    char home[1024];
    char source[1024]; /* the forward file, or "" (an alias file: default_privs) */
    char sender[512];
    char rcpt[512];
    char cmd[LDAPRIV_CMD_MAX]; /* the command, or the file (file) */
    bool file;                 /* append the message to the file cmd, in mbox format */
};

static int ldapriv_sock = -1;   /* dsmtp's end */
static char ldapriv_privs[256]; /* default_privs at start-up */
static char ldapriv_node[256];  /* lock_id or host name: dotlock owners (drop.h) */
static long ldapriv_lock_timeout;

bool
ldapriv_on(void)
{
    return ldapriv_sock >= 0;
}

/* ldapriv_answer - "ok STATUS" (why NULL) or "err WHY" on fd (one SEQPACKET message). */
static void
ldapriv_answer(int fd, const char *why, int status)
{
    char buf[400];
    int len = why != NULL ? snprintf(buf, sizeof(buf), "err %s", why)
                          : snprintf(buf, sizeof(buf), "ok %d", status);

    if (len > 0 && send(fd, buf, strlen(buf), MSG_NOSIGNAL) < 0)
        return;
}

/* ldapriv_check_source - the forward file path is pw's (or root's), safe, and holds cmd.
 * NULL, or why not. */
static const char *
ldapriv_check_source(const char *path, const struct passwd *pw, const char *cmd)
{
    static char buf[LDAPRIV_FWD_MAX + 1];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return "the forward file cannot be opened";
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return "the forward file is not a regular file";
    }
    if (st.st_uid != pw->pw_uid && st.st_uid != 0) {
        close(fd);
        return "the forward file is not the user's";
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        close(fd);
        return "the forward file is group- or world-writable";
    }
    n = read(fd, buf, LDAPRIV_FWD_MAX);
    close(fd);
    if (n < 0)
        return "the forward file cannot be read";
    buf[n] = '\0';
    if (strstr(buf, cmd) == NULL)
        return "the forward file does not hold the command";
    return NULL;
}

/* ldapriv_fail - in the program's process: what failed, on its output (the report's first
 * line), and EX_OSERR (tried again later). */
static void
ldapriv_fail(const char *what)
{
    char buf[200];
    int n = snprintf(buf, sizeof(buf), "cannot start the command as the user: %s: %s\n", what,
                     strerror(errno));

    if (n > 0 && write(1, buf, (size_t)n) < 0)
        _exit(71);
    _exit(71);
}

/* ldapriv_append - in the process that became the user: the message (stdin, its two header
 * lines first) appended to the file r->cmd in mbox format (drop.h: locks, fsync); exits 0,
 * 75 (for now) or 1, the reason on stdout. */
static void
ldapriv_append(const struct ldapriv_req *r)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap), err[300];
    struct drop_msg dm;
    enum drop_result res;
    ssize_t n;

    if (buf == NULL)
        _exit(75);
    while ((n = read(0, buf + len, cap - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            _exit(75);
        len += (size_t)n;
        if (len == cap) {
            char *b = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (b == NULL)
                _exit(75);
            buf = b;
            cap *= 2;
        }
    }
    memset(&dm, 0, sizeof(dm));
    dm.sender = r->sender;
    dm.headers = "";
    dm.text = buf;
    dm.text_len = len;
    res = r->cmd[0] != '/' ? DROP_PERM
                           : drop_deliver(r->cmd, MBOX_FORMAT_MBOX, &dm, ldapriv_lock_timeout, 0,
                                          ldapriv_node, NULL, err, sizeof(err));
    if (r->cmd[0] != '/')
        snprintf(err, sizeof(err), "%.200s: not an absolute path", r->cmd);
    if (res != DROP_OK) {
        size_t el = strlen(err);
        err[el] = '\n';
        if (write(1, err, el + 1) < 0)
            _exit(75);
    }
    _exit(res == DROP_OK ? 0 : res == DROP_TEMP ? 75 : 1);
}

/* ldapriv_exec - in the program's process: become pw, then /bin/sh -c cmd (or append to the
 * file cmd). */
static void
ldapriv_exec(const struct ldapriv_req *r, const struct passwd *pw, int in, int out)
{
    const char *home = r->home[0] == '/' ? r->home : "/";
    char *argv[] = {"/bin/sh", "-c", (char *)r->cmd, NULL};
    char e[7][1200];
    char *envp[8];

    setsid();
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(71);
    if (initgroups(pw->pw_name, pw->pw_gid) < 0)
        ldapriv_fail("initgroups");
    if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        ldapriv_fail("setgid/setuid");
    if (setuid(0) == 0 || geteuid() != pw->pw_uid)
        ldapriv_fail("root not dropped");
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* set again: a change of uid clears it */
    if (chdir(home) < 0 && chdir("/") < 0)
        ldapriv_fail("chdir");
    umask(077);
    snprintf(e[0], sizeof(e[0]), "HOME=%s", home);
    snprintf(e[1], sizeof(e[1]), "USER=%s", pw->pw_name);
    snprintf(e[2], sizeof(e[2]), "LOGNAME=%s", pw->pw_name);
    snprintf(e[3], sizeof(e[3]), "SHELL=/bin/sh");
    snprintf(e[4], sizeof(e[4]), "PATH=/usr/bin:/bin");
    snprintf(e[5], sizeof(e[5]), "SENDER=%s", r->sender);
    snprintf(e[6], sizeof(e[6]), "RECIPIENT=%s", r->rcpt);
    for (int i = 0; i < 7; i++)
        envp[i] = e[i];
    envp[7] = NULL;
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (r->file)
        ldapriv_append(r);
    execve(argv[0], argv, envp);
    ldapriv_fail("execve /bin/sh");
}

/* ldapriv_work - one request, in a process of its own: check, start, wait, answer. */
static void
ldapriv_work(const struct ldapriv_req *r, int in, int out, int ans)
{
    const char *name = r->source[0] != '\0' ? r->user : ldapriv_privs, *why;
    struct passwd *pw = getpwnam(name);
    int status = 0;
    pid_t pid;

    signal(SIGCHLD, SIG_DFL);
    if (pw == NULL || pw->pw_uid == 0) {
        ldapriv_answer(ans, pw == NULL ? "no such account" : "never as root", 0);
        _exit(0);
    }
    if (r->source[0] != '\0' && (why = ldapriv_check_source(r->source, pw, r->cmd)) != NULL) {
        ldapriv_answer(ans, why, 0);
        _exit(0);
    }
    pid = _Fork(); /* not fork: no atfork handler (see ldapriv_loop) */
    if (pid == 0) {
        close(ans);
        ldapriv_exec(r, pw, in, out);
    }
    close(in);
    close(out);
    if (pid < 0) {
        ldapriv_answer(ans, "cannot fork", 0);
        _exit(0);
    }
    for (;;) { /* the program ends, or dsmtp gives up (closes ans): then it is killed */
        struct pollfd p = {ans, POLLIN, 0};
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            _exit(0);
        if (poll(&p, 1, 20) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            _exit(0);
        }
    }
    ldapriv_answer(ans, NULL, status);
    _exit(0);
}

/* ldapriv_loop - the helper: one worker process per request, until dsmtp is gone. */
static void
ldapriv_loop(int sock)
{
    struct ldapriv_req r;

    signal(SIGCHLD, SIG_IGN); /* workers reap themselves */
    for (;;) {
        char ctl[CMSG_SPACE(3 * sizeof(int))];
        struct iovec iov = {&r, sizeof(r)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
        struct cmsghdr *c;
        int fds[3] = {-1, -1, -1}, nfd = 0;
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n == 0 || (n < 0 && errno != EINTR))
            _exit(0);
        if (n < 0)
            continue;
        for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                memcpy(fds, CMSG_DATA(c), (size_t)(nfd > 3 ? 3 : nfd) * sizeof(int));
            }
        if (n == (ssize_t)sizeof(r) && nfd == 3 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
            r.user[sizeof(r.user) - 1] = r.home[sizeof(r.home) - 1] = '\0';
            r.source[sizeof(r.source) - 1] = r.sender[sizeof(r.sender) - 1] = '\0';
            r.rcpt[sizeof(r.rcpt) - 1] = r.cmd[sizeof(r.cmd) - 1] = '\0';
            /* _Fork: the atfork handlers of the libraries dsmtp loaded (libuv reopens its
             * signal pipe) would close descriptor numbers that are now the request's */
            if (_Fork() == 0) {
                close(sock);
                ldapriv_work(&r, fds[0], fds[1], fds[2]);
            }
        }
        for (int i = 0; i < 3 && i < nfd; i++)
            close(fds[i]);
    }
}

/* ldapriv_keep - the keeper: runs the helper (ldapriv_loop) in a child and starts it again
 * when it dies of anything but dsmtp's end (its exit 0), a second later. The socket stays
 * open in the keeper meanwhile: dsmtp's requests wait in it for the new helper. */
static void
ldapriv_keep(int sock)
{
    for (;;) {
        pid_t w = _Fork(); /* see ldapriv_loop */
        int st = 0;
        if (w == 0) {
            prctl(PR_SET_NAME, "dsmtp-ldapriv");
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            ldapriv_loop(sock);
        }
        if (w > 0)
            while (waitpid(w, &st, 0) < 0 && errno == EINTR)
                ;
        if (w > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            _exit(0); /* dsmtp is gone */
        sleep(1);
    }
}

/* ldapriv_start - see ldapriv.h. */
void
ldapriv_start(const struct conf *cf)
{
    int sv[2];
    pid_t pid;

    if (geteuid() != 0 || cf->allow_mail_to_commands.n == 0)
        return;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        log_warne("ldapriv: socketpair: programs run as %s", cf->run_as);
        return;
    }
    deliver_node(cf, ldapriv_node, sizeof(ldapriv_node));
    ldapriv_lock_timeout = cf->lock_timeout;
    snprintf(ldapriv_privs, sizeof(ldapriv_privs), "%s",
             cf->default_privs != NULL && cf->default_privs[0] != '\0' ? cf->default_privs
                                                                       : "nobody");
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_NAME, "dsmtp-ldakeep");
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (dup2(sv[1], 3) < 0)
            _exit(1);
        close_range(4, ~0U, 0); /* listeners, the log, sv[0]: nothing but the socket */
        ldapriv_keep(3);
    }
    close(sv[1]);
    if (pid < 0) {
        log_warne("ldapriv: fork: programs run as %s", cf->run_as);
        close(sv[0]);
        return;
    }
    ldapriv_sock = sv[0];
    log_info("ldapriv: pid %ld starts the programs of forward and alias files as their user",
             (long)pid);
}

/* ldapriv_spawn - see ldapriv.h. */
int
ldapriv_spawn(const char *user, const char *home, const char *cmd, bool file, const char *source,
              const char *sender, const char *rcpt, int in, int out, char *err, size_t errlen)
{
    struct ldapriv_req r;
    char ctl[CMSG_SPACE(3 * sizeof(int))];
    struct iovec iov = {&r, sizeof(r)};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
    struct cmsghdr *c;
    int ap[2], fds[3];

    memset(&r, 0, sizeof(r));
    memset(ctl, 0, sizeof(ctl));
    if (strlen(cmd) >= sizeof(r.cmd) || strlen(user) >= sizeof(r.user) ||
        strlen(home) >= sizeof(r.home) || strlen(source) >= sizeof(r.source)) {
        snprintf(err, errlen, "command, user or path too long");
        close(in);
        close(out);
        return -1;
    }
    snprintf(r.user, sizeof(r.user), "%s", user);
    snprintf(r.home, sizeof(r.home), "%s", home);
    snprintf(r.source, sizeof(r.source), "%s", source);
    snprintf(r.sender, sizeof(r.sender), "%s", sender);
    snprintf(r.rcpt, sizeof(r.rcpt), "%s", rcpt);
    snprintf(r.cmd, sizeof(r.cmd), "%s", cmd);
    r.file = file;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ap) < 0) {
        snprintf(err, errlen, "cannot run the command: socketpair: %s", strerror(errno));
        close(in);
        close(out);
        return -1;
    }
    fds[0] = in;
    fds[1] = out;
    fds[2] = ap[1];
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    if (sendmsg(ldapriv_sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(r)) {
        snprintf(err, errlen, "cannot run the command: the delivery helper is gone (%s)",
                 strerror(errno));
        close(ap[0]);
        ap[0] = -1;
    }
    close(ap[1]);
    close(in);
    close(out);
    return ap[0];
}

/* ldapriv_wait - see ldapriv.h. */
int
ldapriv_wait(int fd, long long deadline_ms, long long (*now_ms)(void), int *status, char *err,
             size_t errlen)
{
    char buf[400];

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = deadline_ms - now_ms();
        if (left <= 0) {
            close(fd);
            return -2;
        }
        int rc = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (rc < 0 && errno != EINTR) {
            snprintf(err, errlen, "cannot wait for the command: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (rc > 0)
            break;
    }
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (n <= 0) {
        snprintf(err, errlen, "the delivery helper gave no answer");
        return -1;
    }
    buf[n] = '\0';
    if (strncmp(buf, "ok ", 3) == 0) {
        *status = atoi(buf + 3);
        return 0;
    }
    snprintf(err, errlen, "refused by the delivery helper: %s",
             strncmp(buf, "err ", 4) == 0 ? buf + 4 : buf);
    return -1;
}
