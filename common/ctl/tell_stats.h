/*
 * tell_stats - `tellpop statistics`: DMail's usage report over the oneline_stats files
 * work_path/dmDDMM.log that dsmtp writes (dsmtp/ostats.h has the line format).
 *
 * Contract:
 * - Owns: nothing long-lived. Blocks on: reading the day files (a command-line tool).
 * - Usage: statistics [-d[N|all] | -u[N|all]] [-s | -r] [-sortby FIELD] [TIMEFRAME]:
 *   -d groups by domain (the default), -u by user (the whole address); N the top N rows
 *   (default 20, "all" every row, 0 none: only the totals). -s counts senders only, -r
 *   recipients only (default both). FIELD: recv sent brecv bsent (default recv).
 *   TIMEFRAME: so_far_today (default), hour, day, week, month (the last 1 h, 24 h, 7 days,
 *   30 days), or "MM/dd [to MM/dd]" (whole days, this year).
 * - Output: "KEY sent=N bsent=BYTES recv=N brecv=BYTES" per row, then an OK-style total
 *   "messages=N bytes=B from FROM to TO".
 */
#ifndef DMAIL_TELL_STATS_H
#define DMAIL_TELL_STATS_H

#include <stddef.h>
#include <time.h>

/* One message line, parsed in place (pointers into the line). */
struct tell_stats_rec {
    time_t when;
    unsigned long long size;
    const char *from; /* without <>; "" for the null sender */
    char *to;         /* comma-separated recipients ("" for none) */
    const char *user; /* "-" without AUTH */
};

/* tell_stats_parse - parse one dmDDMM.log line (no newline); 0, or -1 when it is not one. */
int tell_stats_parse(char *line, struct tell_stats_rec *r);

/* tell_stats_cmd - the command (argv[0] "statistics") over the files in work_path; prints
 * the report; returns a TELL_EX_* code. now: the current time (tests). */
int tell_stats_cmd(const char *prog, const char *work_path, int argc, char **argv, time_t now);

#endif
