/*
 * log - levelled log lines to stderr (-f), a log file, or syslog.
 *
 * Contract:
 * - Owns: the process-wide log destination and level. Every line is one write(2), so
 *   lines from thread-pool workers never interleave mid-line; errno is preserved.
 * - Blocks on: the write to the log file or syslog (short, append-only); log_reopen's
 *   open(2) of the file (on the loop, as short as a line's write).
 * - Families: log_X() writes the text; log_Xe() also appends ": strerror(errno)".
 *   log_fatal*() log at error level and exit(1).
 * - Session lines: log_sess(level, sid, fmt, ...) starts with the 16-hex-digit session id
 *   and continues with key=value fields. Text that a client sent goes through log_escape()
 *   first (non-printables become \xNN, cut with "..." past the limit). Never pass AUTH data
 *   or passwords to any log function.
 */
#ifndef DMAIL_LOG_H
#define DMAIL_LOG_H

#include <stddef.h>
#include <stdint.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* The levels, in the order of the log_level setting's choices (settings.def). */
enum { LOGLVL_ERROR, LOGLVL_WARN, LOGLVL_INFO, LOGLVL_DEBUG };

/* log_init - name the program; foreground = 1 logs to stderr. When stderr is systemd's
 * journal (JOURNAL_STREAM matches it), its lines start with the syslog priority "<N>"
 * (sd-daemon(3)) instead of the time, so journalctl -p filters them. */
void log_init(const char *prog, int foreground);
/* log_journal - whether lines to stderr go to the journal that way. */
int log_journal(void);
/* log_open - file != NULL/"": append to that file; else syslog (unless foreground). When
 * no syslog daemon listens on _PATH_LOG (/dev/log), one warning goes to stderr and the lines
 * follow it there instead of being dropped. Returns 0 or -1 with errno set. */
int log_open(const char *file);
/* log_reopen - after logrotate moved the log file: open log_open's file name again
 * (created when missing, mode 0640, as the user the process runs as now) and put it in
 * place of the old descriptor with dup2, so threads writing meanwhile go to one or the
 * other, whole lines. Returns 1 done, 0 nothing to do (logging to stderr or syslog), -1
 * with errno (the old file stays in use). log_path() names the file ("" if none). */
int log_reopen(void);
const char *log_path(void);
/* log_set_level - one of LOGLVL_*. */
void log_set_level(int level);
int log_get_level(void);
/* log_level_name - "error", "warn", "info", "debug"; NULL for others. */
const char *log_level_name(int level);

void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_errore(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warne(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void log_fatale(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

/* log_sess - a session line: "<sid> fmt..." at the given level. */
void log_sess(int level, uint64_t sid, const char *fmt, ...) LOG_PRINTF(3, 4);

/* log_escape - copy at most max bytes of client text src[0..len) into dst (size dstlen,
 * always NUL-terminated), escaping bytes outside 0x20..0x7e as \xNN and '\\' as \\, and
 * ending with "..." when cut. Returns dst. */
char *log_escape(char *dst, size_t dstlen, const char *src, size_t len, size_t max);

/* log_new_sid - a fresh session id (random start, then counting). */
uint64_t log_new_sid(void);

#endif
