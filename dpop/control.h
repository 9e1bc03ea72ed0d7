/*
 * control - dpop's own part of its control socket (work_path/dpop.ctl): who, kick and
 * its counters. The commands every server answers (status, stats, reload, shutdown,
 * debug, config) and the live reload are the server core's (common/server/server_ctl.c).
 *
 * Contract:
 * - Runs on the loop; handlers get the struct server (popd_of).
 * - kick USER ends USER's sessions without UPDATE (nothing is deleted); a session that is
 *   already committing its deletions (UPDATE) finishes.
 */
#ifndef DPOP_CONTROL_H
#define DPOP_CONTROL_H

#include "ctl.h"
#include "popd.h"

/* control_cmds - who, kick. */
#define CONTROL_NCMDS 4
extern const struct ctl_cmd control_cmds[CONTROL_NCMDS];
/* control_sess_user - the user a session logged in as, or NULL (showchans). */
struct sess;
const char *control_sess_user(struct sess *b);
/* control_stats - dpop's counters of "stats". */
void control_stats(struct server *srv, struct ctl_req *r, bool prom);

#endif
