/*
 * space - the free-space guard of min_space (DMail's name): new mail and POP logins are
 * refused while a filesystem holding mail has less than min_space MB free.
 *
 * Contract:
 * - Owns: the server's space_* fields (server.h): the last check's verdict and whether a
 *   check runs. One check at a time.
 * - Blocks on: statvfs; space_start runs once before the loop (start-up, like the config),
 *   later checks go to the thread pool (space_tick, from the server's sweep each second,
 *   starts one every SPACE_EVERY_MS). The snapshot in force at each check decides, so a
 *   reload's min_space applies within SPACE_EVERY_MS.
 * - Checked: drop_path, spool_dir and work_path (the blocks an unprivileged user may take,
 *   f_bavail). A path that cannot be checked (missing) does not count as low: the server
 *   reports those itself when it writes there.
 * - Log: a warning when the space goes below min_space (which path, MB free), an info line
 *   when it is back; nothing while it stays the same.
 * - min_space 0 (the default): no check at all, space_low is false.
 */
#ifndef DMAIL_SPACE_H
#define DMAIL_SPACE_H

#include <stdbool.h>

#define SPACE_EVERY_MS 5000

struct server;

/* space_start - the first check, at once (before the loop runs). */
void space_start(struct server *srv);

/* space_tick - the sweep: start a check on the pool when one is due. */
void space_tick(struct server *srv);

/* space_low - the last check found less than min_space MB free somewhere. */
bool space_low(const struct server *srv);

#endif
