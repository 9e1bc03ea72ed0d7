/*
 * tell_users - tellpop's adduser, deluser, passwd and users: edit the users file in place
 * (locked, atomic, owner and mode kept), then ask the servers to reload it.
 */
#include "tell.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ctl.h"
#include "file.h"
#include "xmem.h"

#define TELL_USERS_MAX (256u << 20) /* largest users file handled */
#define TELL_PASSWORD_MAX 1024
#define TELL_LOCK_WAIT_MS 10000

/* tell_users_name_ok - validate and lower-case "user" or "user@domain". */
int
tell_users_name_ok(const char *user, char *out, size_t outlen)
{
    const char *at = strchr(user, '@');
    size_t n = at ? (size_t)(at - user) : strlen(user);
    char dom[256];

    if (n == 0 || n > 64 || user[0] == '#')
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)user[i];
        if (c <= 0x20 || c >= 0x7f || strchr("@:\"\\<>()[],;", c) != NULL)
            return -1;
    }
    if (at != NULL && addr_domain_normalize(at + 1, dom, sizeof(dom)) < 0)
        return -1;
    if (n + (at ? strlen(dom) + 1 : 0) + 1 > outlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)user[i]);
    out[n] = '\0';
    if (at != NULL) {
        out[n] = '@';
        strcpy(out + n + 1, dom);
    }
    return 0;
}

/* tell_users_line_is - whether a users-file line is the entry of user (normalised). */
static int
tell_users_line_is(const char *line, size_t len, const char *user)
{
    char name[400], norm[400];
    const char *p = line;
    size_t n;

    while (len > 0 && (*p == ' ' || *p == '\t'))
        p++, len--;
    if (len == 0 || *p == '#')
        return 0;
    const char *colon = memchr(p, ':', len);
    if (colon == NULL)
        return 0;
    n = (size_t)(colon - p);
    if (n >= sizeof(name))
        return 0;
    memcpy(name, p, n);
    name[n] = '\0';
    if (tell_users_name_ok(name, norm, sizeof(norm)) < 0)
        return strcasecmp(name, user) == 0;
    return strcmp(norm, user) == 0;
}

/* tell_users_edit - the new text of the users file. */
char *
tell_users_edit(const char *old, const char *cmd, const char *user, const char *hash, char *err,
                size_t errlen)
{
    char norm[400];
    size_t oldlen = old ? strlen(old) : 0, outlen = 0;
    char *out = xmalloc(oldlen + sizeof(norm) + (hash ? strlen(hash) : 0) + 8);
    int found = 0;

    if (tell_users_name_ok(user, norm, sizeof(norm)) < 0) {
        snprintf(err, errlen, "bad user name '%.100s' (want user or user@domain)", user);
        free(out);
        return NULL;
    }
    for (size_t off = 0; off < oldlen;) {
        const char *line = old + off;
        size_t len = strcspn(line, "\n");
        size_t next = off + len + (line[len] == '\n');
        if (!tell_users_line_is(line, len, norm)) {
            memcpy(out + outlen, line, len);
            outlen += len;
            out[outlen++] = '\n';
        } else if (strcmp(cmd, "passwd") == 0 && found == 0) {
            /* name as written, the new hash, the old options */
            const char *colon = memchr(line, ':', len);
            const char *opts = memchr(colon + 1, ':', len - (size_t)(colon + 1 - line));
            size_t keep = (size_t)(colon - line) + 1;
            memcpy(out + outlen, line, keep);
            outlen += keep;
            memcpy(out + outlen, hash, strlen(hash));
            outlen += strlen(hash);
            if (opts != NULL) {
                size_t ol = len - (size_t)(opts - line);
                memcpy(out + outlen, opts, ol);
                outlen += ol;
            }
            out[outlen++] = '\n';
        } else if (strcmp(cmd, "adduser") == 0) {
            memcpy(out + outlen, line, len);
            outlen += len;
            out[outlen++] = '\n';
        }
        /* deluser drops the line; passwd drops later duplicates (the first one counts) */
        if (tell_users_line_is(line, len, norm))
            found++;
        off = next;
    }
    out[outlen] = '\0';
    if (strcmp(cmd, "adduser") == 0) {
        if (found) {
            snprintf(err, errlen, "user %s exists (use passwd to change the password)", norm);
            free(out);
            return NULL;
        }
        outlen += (size_t)sprintf(out + outlen, "%s:%s\n", norm, hash);
    } else if (!found) {
        snprintf(err, errlen, "no user %s in the users file", norm);
        free(out);
        return NULL;
    }
    return out;
}

/* tell_hash - yescrypt with libxcrypt's default cost. */
int
tell_hash(const char *password, char *out, size_t outlen)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    const char *h;
    int rc = -1;

    if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
        return -1;
    cd = xcalloc(1, sizeof(*cd));
    h = crypt_rn(password, setting, cd, sizeof(*cd));
    if (h != NULL && strncmp(h, "$y$", 3) == 0 && strlen(h) < outlen) {
        strcpy(out, h);
        rc = 0;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

/* tell_read_line - one line from fd 0 into buf, without its newline; -1 on EOF/error. */
static int
tell_read_line(char *buf, size_t len)
{
    size_t n = 0;
    char c;

    for (;;) {
        ssize_t r = read(0, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return n > 0 ? 0 : -1;
        if (c == '\n')
            break;
        if (n + 1 < len)
            buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return 0;
}

/* tell_prompt - read a password from the terminal without echo. */
static int
tell_prompt(const char *prompt, char *buf, size_t len)
{
    struct termios old, quiet;
    int rc;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(0, &old) < 0)
        return tell_read_line(buf, len);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(0, TCSAFLUSH, &quiet);
    rc = tell_read_line(buf, len);
    tcsetattr(0, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return rc;
}

/* tell_password - from argv, or stdin ("-" or none). 0, or an exit code. */
static int
tell_password(const struct tell_ctx *ctx, const char *arg, const char *user, char *pw, size_t len)
{
    if (arg != NULL && strcmp(arg, "-") != 0) {
        if (strlen(arg) >= len) {
            fprintf(stderr, "%s: password too long\n", ctx->prog);
            return TELL_EX_USAGE;
        }
        strcpy(pw, arg);
    } else if (isatty(0)) {
        char again[TELL_PASSWORD_MAX];
        char *prompt = xasprintf("New password for %s: ", user);
        int rc = tell_prompt(prompt, pw, len);
        free(prompt);
        if (rc == 0)
            rc = tell_prompt("Again: ", again, sizeof(again));
        if (rc == 0 && strcmp(pw, again) != 0) {
            fprintf(stderr, "%s: the passwords differ\n", ctx->prog);
            rc = -1;
        }
        explicit_bzero(again, sizeof(again));
        if (rc < 0)
            return TELL_EX_USAGE;
    } else if (tell_read_line(pw, len) < 0) {
        fprintf(stderr, "%s: no password on standard input\n", ctx->prog);
        return TELL_EX_USAGE;
    }
    if (pw[0] == '\0') {
        fprintf(stderr, "%s: empty password\n", ctx->prog);
        return TELL_EX_USAGE;
    }
    return 0;
}

/* tell_users_lock - an exclusive lock on USERS.lock (waits a while); the fd or -1. */
static int
tell_users_lock(const struct tell_ctx *ctx)
{
    char *path = xasprintf("%s.lock", ctx->users_file);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        fprintf(stderr, "%s: cannot open %s: %s\n", ctx->prog, path, strerror(errno));
        free(path);
        return -1;
    }
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 50) {
        if (errno != EWOULDBLOCK || waited >= TELL_LOCK_WAIT_MS) {
            fprintf(stderr, "%s: cannot lock %s: %s\n", ctx->prog, path,
                    errno == EWOULDBLOCK ? "held by another program" : strerror(errno));
            close(fd);
            free(path);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(path);
    return fd;
}

/* tell_users_write - replace the users file atomically, keeping its owner and mode; a
 * new file gets 0640 and, when we are root, run_as as its owner. */
static int
tell_users_write(const struct tell_ctx *ctx, const char *text)
{
    const char *path = ctx->users_file;
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    mode_t mode = 0640;
    struct stat st;
    int fd, saved;

    if (stat(path, &st) == 0) {
        mode = st.st_mode & 07777;
        uid = st.st_uid;
        gid = st.st_gid;
    } else if (geteuid() == 0 && ctx->run_as[0] != '\0') {
        struct passwd *pw = getpwnam(ctx->run_as);
        if (pw != NULL && pw->pw_uid != 0) {
            uid = pw->pw_uid;
            gid = pw->pw_gid;
        }
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (file_write_all(fd, text, strlen(text)) < 0 ||
        (geteuid() == 0 && uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) || fchmod(fd, mode) < 0 ||
        fsync(fd) < 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        saved = errno;
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    file_fsync_dir(path);
    free(tmp);
    return 0;
fail:
    fprintf(stderr, "%s: cannot write %s: %s\n", ctx->prog, path, strerror(errno));
    free(tmp);
    return -1;
}

/* tell_users_reload - ask one server to reload; prints what happened. The exit code. */
static int
tell_users_reload(const struct tell_ctx *ctx, const char *server)
{
    char *path = xasprintf("%s/%s.ctl", ctx->work_path, server);
    char text[1024];
    int rc = ctl_call(path, "reload", ctx->timeout_ms, NULL, NULL, text, sizeof(text));

    free(path);
    switch (rc) {
    case CTL_R_OK:
        printf("%s reloaded\n", server);
        return TELL_EX_OK;
    case CTL_R_ERR:
        fprintf(stderr, "%s: %s refused the reload: %s\n", ctx->prog, server, text);
        return TELL_EX_REFUSED;
    default:
        printf("%s is not running (nothing to reload)\n", server);
        return TELL_EX_OK;
    }
}

/* tell_users_list - the names in the users file. */
static int
tell_users_list(const struct tell_ctx *ctx)
{
    char *text = NULL, *save = NULL;
    size_t len;

    if (file_read_all(ctx->users_file, TELL_USERS_MAX, &text, &len) < 0) {
        if (errno == ENOENT)
            return TELL_EX_OK;
        fprintf(stderr, "%s: cannot read %s: %s\n", ctx->prog, ctx->users_file, strerror(errno));
        return TELL_EX_REFUSED;
    }
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        l += strspn(l, " \t");
        size_t n = strcspn(l, ":");
        if (*l == '#' || l[n] != ':' || n == 0)
            continue;
        printf("%.*s\n", (int)n, l);
    }
    free(text);
    return TELL_EX_OK;
}

/* tell_users_cmd - adduser/deluser/passwd/users. */
int
tell_users_cmd(const struct tell_ctx *ctx, int argc, char **argv)
{
    const char *cmd = argv[0];
    char pw[TELL_PASSWORD_MAX], hash[CRYPT_OUTPUT_SIZE], err[512], norm[400];
    char *old = NULL, *text;
    size_t len;
    int rc, lock;

    if (ctx->authent_method == AUTHENT_UNIX_USER) {
        fprintf(stderr,
                "%s: authent_method is unix_user: the users are the system's accounts "
                "(useradd, passwd), not %s\n",
                ctx->prog, ctx->users_file);
        return TELL_EX_REFUSED;
    }
    if (strcmp(cmd, "users") == 0)
        return tell_users_list(ctx);
    if (tell_users_name_ok(argv[1], norm, sizeof(norm)) < 0) {
        fprintf(stderr, "%s: bad user name '%s' (want user or user@domain)\n", ctx->prog, argv[1]);
        return TELL_EX_USAGE;
    }
    hash[0] = '\0';
    if (strcmp(cmd, "deluser") != 0) {
        rc = tell_password(ctx, argc > 2 ? argv[2] : NULL, norm, pw, sizeof(pw));
        if (rc != 0)
            return rc;
        rc = tell_hash(pw, hash, sizeof(hash));
        explicit_bzero(pw, sizeof(pw));
        if (rc < 0) {
            fprintf(stderr, "%s: crypt(3) could not make a yescrypt hash\n", ctx->prog);
            return TELL_EX_REFUSED;
        }
    }
    lock = tell_users_lock(ctx);
    if (lock < 0)
        return TELL_EX_REFUSED;
    if (file_read_all(ctx->users_file, TELL_USERS_MAX, &old, &len) < 0 && errno != ENOENT) {
        fprintf(stderr, "%s: cannot read %s: %s\n", ctx->prog, ctx->users_file, strerror(errno));
        close(lock);
        return TELL_EX_REFUSED;
    }
    text = tell_users_edit(old, cmd, norm, hash, err, sizeof(err));
    free(old);
    if (text == NULL) {
        fprintf(stderr, "%s: %s\n", ctx->prog, err);
        close(lock);
        return TELL_EX_REFUSED;
    }
    rc = tell_users_write(ctx, text);
    free(text);
    close(lock);
    if (rc < 0)
        return TELL_EX_REFUSED;
    printf("%s: %s %s (%s)\n", cmd, norm,
           strcmp(cmd, "adduser") == 0   ? "added"
           : strcmp(cmd, "deluser") == 0 ? "removed"
                                         : "has a new password",
           ctx->users_file);
    fflush(stdout);
    rc = tell_users_reload(ctx, ctx->server);
    int rc2 = tell_users_reload(ctx, strcmp(ctx->server, "dpop") == 0 ? "dsmtp" : "dpop");
    return rc != TELL_EX_OK ? rc : rc2;
}
