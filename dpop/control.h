/*
 * control - dpop's control socket (work_path/dpop.ctl, the tellpop commands) and its live
 * reload.
 *
 * Contract:
 * - Owns: the ctl server in d->ctl and the reload job. Runs on the loop; parsing, the
 *   users file and TLS keys are loaded on the thread pool.
 * - Reload (invariant 6): a new conf and users snapshot replace d->cf/d->db only when the
 *   whole file is clean; sessions keep the snapshots they started with, so a user added
 *   with tellpop adduser can log in at once and a running session is not disturbed.
 *   Listener addresses and ports, run_as, io_threads, log_file and work_path need a
 *   restart (the answer names them); a new tls_cert/tls_key serves new STLS sessions at
 *   once, the POP3S listener keeps its key until a restart.
 * - kick USER ends USER's sessions without UPDATE (nothing is deleted); a session that is
 *   already committing its deletions (UPDATE) finishes.
 */
#ifndef DPOP_CONTROL_H
#define DPOP_CONTROL_H

#include "ctl.h"
#include "popd.h"

/* control_open - listen on work_path/dpop.ctl (after the privilege drop). */
int control_open(struct popd *d, char *err, size_t errlen);
/* control_close - stop listening (graceful stop). */
void control_close(struct popd *d);
/* control_reload - reload now; r is the asking client or NULL (SIGHUP). */
void control_reload(struct popd *d, struct ctl_req *r);

#endif
