/*
 * log - levelled log lines to stderr (-f), a log file, or syslog.
 *
 * Each line is formatted into one bounded buffer and leaves in one write(2) (or one
 * syslog(3) call), so lines from thread-pool workers never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "file.h"

#define LOG_LINE_MAX 4096

enum log_dest { LOG_DEST_STDERR, LOG_DEST_FILE, LOG_DEST_SYSLOG };

static const char *log_prog = "dmail";
static int log_foreground = 1;
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_fd = -1;
static bool log_to_journal;      /* stderr is systemd's journal stream (JOURNAL_STREAM) */
static char log_file_path[4096]; /* the file of LOG_DEST_FILE */
static atomic_int log_level = LOGLVL_INFO;

static const char *const log_names[] = {
    [LOGLVL_ERROR] = "error",
    [LOGLVL_WARN] = "warn",
    [LOGLVL_INFO] = "info",
    [LOGLVL_DEBUG] = "debug",
};

static const int log_syslog_pri[] = {
    [LOGLVL_ERROR] = LOG_ERR,
    [LOGLVL_WARN] = LOG_WARNING,
    [LOGLVL_INFO] = LOG_INFO,
    [LOGLVL_DEBUG] = LOG_DEBUG,
};

/* log_stderr_is_journal - systemd connected stderr to the journal: JOURNAL_STREAM names
 * the device and inode of that stream (systemd.exec(5)); a pipe or file put there since
 * (a child of dwatch, a redirection) does not match. */
static bool
log_stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (v == NULL || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* log_init - name the program; foreground = 1 logs to stderr. */
void
log_init(const char *prog, int foreground)
{
    log_prog = prog ? prog : "dmail";
    log_foreground = foreground;
    log_dest = LOG_DEST_STDERR;
    log_to_journal = log_stderr_is_journal();
}

/* log_journal - stderr is the journal: lines carry "<N>" priorities, no time. */
int
log_journal(void)
{
    return log_to_journal;
}

/* log_syslog_listens - whether something takes datagrams on syslog's socket (glibc's
 * syslog(3) drops every line silently when nothing does). */
static bool
log_syslog_listens(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return true; /* cannot tell: leave it to syslog(3) */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", _PATH_LOG);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* log_open - the log file if one is named, else syslog (standard error, after one warning
 * there, when no syslog daemon listens); stderr stays in the foreground. */
int
log_open(const char *file)
{
    if (log_foreground) {
        log_dest = LOG_DEST_STDERR;
        return 0;
    }
    if (file != NULL && *file != '\0') {
        int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
            return -1;
        if (log_fd >= 0)
            close(log_fd);
        log_fd = fd;
        log_dest = LOG_DEST_FILE;
        snprintf(log_file_path, sizeof(log_file_path), "%s", file);
        return 0;
    }
    if (!log_syslog_listens()) {
        char msg[512];
        int n = snprintf(msg, sizeof(msg),
                         "%s: warning: no syslog daemon listens on %s: logging to standard "
                         "error instead (set log_file, or start syslog)\n",
                         log_prog, _PATH_LOG);
        if (n > 0)
            (void)file_write_all(STDERR_FILENO, msg,
                                 (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        log_dest = LOG_DEST_STDERR;
        return 0;
    }
    openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
    log_dest = LOG_DEST_SYSLOG;
    return 0;
}

/* log_reopen - the log file's name opened again, in place of the old descriptor. */
int
log_reopen(void)
{
    int fd;

    if (log_dest != LOG_DEST_FILE || log_fd < 0)
        return 0;
    fd = open(log_file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return -1;
    if (fd != log_fd && dup3(fd, log_fd, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (fd != log_fd)
        close(fd);
    return 1;
}

/* log_path - the log file's name, "" when not logging to a file. */
const char *
log_path(void)
{
    return log_dest == LOG_DEST_FILE ? log_file_path : "";
}

/* log_set_level - one of LOGLVL_*; others are clamped. */
void
log_set_level(int level)
{
    if (level < LOGLVL_ERROR)
        level = LOGLVL_ERROR;
    if (level > LOGLVL_DEBUG)
        level = LOGLVL_DEBUG;
    atomic_store(&log_level, level);
}

/* log_get_level - the level in force. */
int
log_get_level(void)
{
    return atomic_load(&log_level);
}

/* log_level_name - "error", "warn", "info", "debug"; NULL for others. */
const char *
log_level_name(int level)
{
    if (level < LOGLVL_ERROR || level > LOGLVL_DEBUG)
        return NULL;
    return log_names[level];
}

/* log_vline - format one line (with an optional errno text) and emit it in one write. */
__attribute__((format(printf, 4, 0))) static void
log_vline(int level, int err, const char *prefix, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    char ebuf[256];
    size_t off = 0, room = sizeof(line) - 2; /* keep space for "\n" and NUL */
    int saved = errno;
    int n;

    if (level > atomic_load(&log_level))
        goto out;
    if (log_dest == LOG_DEST_STDERR && log_to_journal) {
        /* sd-daemon(3) priority prefix; the journal has its own time */
        n = snprintf(line, room, "<%d>%s[%ld]: %s: ", log_syslog_pri[level], log_prog,
                     (long)getpid(), log_names[level]);
    } else if (log_dest != LOG_DEST_SYSLOG) {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        localtime_r(&tv.tv_sec, &tm);
        off = strftime(line, room, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line + off, room - off, ".%03ld", (long)(tv.tv_usec / 1000));
        off += (size_t)n;
        off += strftime(line + off, room - off, "%z ", &tm);
        n = snprintf(line + off, room - off, "%s[%ld]: %s: ", log_prog, (long)getpid(),
                     log_names[level]);
    } else {
        n = snprintf(line, room, "%s: ", log_names[level]);
    }
    off += (size_t)n;
    size_t start = off;
    if (prefix != NULL && off < room) {
        n = snprintf(line + off, room - off, "%s", prefix);
        off = off + (size_t)n < room ? off + (size_t)n : room - 1;
    }
    if (off < room) {
        n = vsnprintf(line + off, room - off, fmt, ap);
        if (n > 0)
            off = off + (size_t)n < room ? off + (size_t)n : room - 1;
    }
    if (err >= 0 && off < room) {
        n = snprintf(line + off, room - off, ": %s", strerror_r(err, ebuf, sizeof(ebuf)));
        if (n > 0)
            off = off + (size_t)n < room ? off + (size_t)n : room - 1;
    }
    /* one line per call, whatever the text held */
    for (size_t i = start; i < off; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    switch (log_dest) {
    case LOG_DEST_SYSLOG:
        line[off] = '\0';
        syslog(log_syslog_pri[level], "%s", line);
        break;
    case LOG_DEST_FILE:
        line[off++] = '\n';
        (void)file_write_all(log_fd, line, off);
        break;
    case LOG_DEST_STDERR:
        line[off++] = '\n';
        (void)file_write_all(STDERR_FILENO, line, off);
        break;
    }
out:
    errno = saved;
}

#define LOG_FN(fname, level, witherr)                                                              \
    void fname(const char *fmt, ...)                                                               \
    {                                                                                              \
        int err = (witherr) ? errno : -1;                                                          \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vline(level, err, NULL, fmt, ap);                                                      \
        va_end(ap);                                                                                \
    }

/* log_error, log_errore, log_warn, log_warne, log_info, log_debug - one line each. */
LOG_FN(log_error, LOGLVL_ERROR, 0)
LOG_FN(log_errore, LOGLVL_ERROR, 1)
LOG_FN(log_warn, LOGLVL_WARN, 0)
LOG_FN(log_warne, LOGLVL_WARN, 1)
LOG_FN(log_info, LOGLVL_INFO, 0)
LOG_FN(log_debug, LOGLVL_DEBUG, 0)

/* log_fatal - log at error level (always) and exit(1). */
void
log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline(LOGLVL_ERROR, -1, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

/* log_fatale - log_fatal with ": strerror(errno)" appended. */
void
log_fatale(const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    log_vline(LOGLVL_ERROR, err, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

/* log_sess - a session line: "<sid> fmt..." at the given level. */
void
log_sess(int level, uint64_t sid, const char *fmt, ...)
{
    char prefix[24];
    va_list ap;

    if (level < LOGLVL_ERROR)
        level = LOGLVL_ERROR;
    if (level > LOGLVL_DEBUG)
        level = LOGLVL_DEBUG;
    snprintf(prefix, sizeof(prefix), "%016llx ", (unsigned long long)sid);
    va_start(ap, fmt);
    log_vline(level, -1, prefix, fmt, ap);
    va_end(ap);
}

/* log_escape - client text made safe to log: \xNN for non-printables, "..." when cut. */
char *
log_escape(char *dst, size_t dstlen, const char *src, size_t len, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = len < max ? len : max;
    bool cut = len > max;
    size_t need = 0, off = 0;

    if (dstlen == 0)
        return dst;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        need += c == '\\' ? 2 : (c >= 0x20 && c <= 0x7e) ? 1 : 4;
    }
    if (need + (cut ? 3 : 0) + 1 > dstlen) {
        cut = true; /* the output does not fit: it is cut too */
    }
    size_t limit = cut ? (dstlen >= 4 ? dstlen - 4 : 0) : dstlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        char piece[4];
        size_t plen;
        if (c == '\\') {
            piece[0] = piece[1] = '\\';
            plen = 2;
        } else if (c >= 0x20 && c <= 0x7e) {
            piece[0] = (char)c;
            plen = 1;
        } else {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[c >> 4];
            piece[3] = hex[c & 15];
            plen = 4;
        }
        if (off + plen > limit)
            break;
        memcpy(dst + off, piece, plen);
        off += plen;
    }
    if (cut) {
        for (int i = 0; i < 3 && off + 1 < dstlen; i++)
            dst[off++] = '.';
    }
    dst[off] = '\0';
    return dst;
}

/* log_new_sid - a fresh session id: a random start, then counting. */
uint64_t
log_new_sid(void)
{
    static atomic_uint_fast64_t next;
    static atomic_int seeded;
    uint64_t seed;

    if (!atomic_load(&seeded)) {
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
            seed = ((uint64_t)time(NULL) << 32) ^ (uint64_t)getpid() ^ (uint64_t)clock();
        uint_fast64_t zero = 0;
        atomic_compare_exchange_strong(&next, &zero, seed);
        atomic_store(&seeded, 1);
    }
    return atomic_fetch_add(&next, 1) + 1;
}
