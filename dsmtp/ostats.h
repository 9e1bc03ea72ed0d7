/*
 * ostats - DMail's oneline_stats: one line per message dsmtp accepted, appended to the
 * daily file work_path/dmDDMM.log (DD day, MM month, local time), which
 * `tellpop statistics` reads (tell_stats.h).
 *
 * Contract:
 * - Line format (one message, fields separated by single spaces, values without spaces):
 *   "YYYY-MM-DDTHH:MM:SS id=ID ip=CLIENT size=OCTETS from=SENDER rcpts=N to=R1,R2,...
 *   user=AUTHUSER" (from "<>" for the null sender; user "-" without AUTH), in local time.
 * - Blocks on: nothing; the append (open O_APPEND, one write, close) runs on the thread
 *   pool, counted in srv->jobs so a stop waits for it. A failure is logged, the message
 *   is not affected.
 * - Only when oneline_stats is true in the config the session started with.
 */
#ifndef DSMTP_OSTATS_H
#define DSMTP_OSTATS_H

struct smtp_session;

/* ostats_message - the line of the message s just accepted (its tx), written off the
 * loop. */
void ostats_message(struct smtp_session *s);

#endif
