/*
 * control - dsmtp's own part of its control socket (work_path/dsmtp.ctl): the queue
 * commands, its status and stats lines, and the counting of 4xx/5xx replies. The
 * commands every server answers (status, stats, reload, shutdown, debug, config) and the
 * live reload are the server core's (common/server/server_ctl.c).
 *
 * Contract:
 * - Runs on the loop; every queue command runs on the thread pool through queue_job, so
 *   it never races the queue runner. Handlers get the struct server (smtpd_of).
 */
#ifndef DSMTP_CONTROL_H
#define DSMTP_CONTROL_H

#include "ctl.h"
#include "smtpd.h"

/* control_cmds - queue, flush, delete, hold, release. */
#define CONTROL_NCMDS 12
extern const struct ctl_cmd control_cmds[CONTROL_NCMDS];
/* control_sess_user - the user a session logged in as, or NULL (showchans). */
struct sess;
const char *control_sess_user(struct sess *b);
/* control_status / control_stats - dsmtp's lines of "status" and "stats". */
void control_status(struct server *srv, struct ctl_req *r);
void control_stats(struct server *srv, struct ctl_req *r, bool prom);
/* control_count_reply - count a 4xx/5xx reply (session_reply calls it). */
void control_count_reply(struct smtpd *d, int code, const char *ecode);

#endif
