/*
 * control - dsmtp's control socket (work_path/dsmtp.ctl, the tellsmtp commands), its
 * live reload and its counters.
 *
 * Contract:
 * - Owns: the ctl server in d->ctl and the reload job. Runs on the loop; parsing, the
 *   users file, TLS keys and every queue command run on the thread pool (queue commands
 *   through queue_job, so they never race the queue runner).
 * - Reload (invariant 6): a new conf and users snapshot replace d->cf/d->db only when the
 *   whole file is clean; sessions keep the snapshots they started with. Listener
 *   addresses and ports, run_as, io_threads, log_file and work_path need a restart (the
 *   answer names them); a new tls_cert/tls_key serves new STARTTLS sessions at once,
 *   the SMTPS listener keeps its key until a restart.
 */
#ifndef DSMTP_CONTROL_H
#define DSMTP_CONTROL_H

#include "ctl.h"
#include "smtpd.h"

/* control_open - listen on work_path/dsmtp.ctl (after the privilege drop). */
int control_open(struct smtpd *d, char *err, size_t errlen);
/* control_close - stop listening (graceful stop). */
void control_close(struct smtpd *d);
/* control_reload - reload now; r is the asking client or NULL (SIGHUP). */
void control_reload(struct smtpd *d, struct ctl_req *r);
/* control_count_reply - count a 4xx/5xx reply (session_reply calls it). */
void control_count_reply(struct smtpd *d, int code, const char *ecode);

#endif
