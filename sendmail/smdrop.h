/*
 * smdrop - sendmail's privileges and its one privileged act: putting a queue file into
 * spool_dir/maildrop/.
 *
 * Contract:
 * - Owns: the process's group privilege. Installed setgid to the group of run_as (the
 *   group that owns maildrop/, mode 1770), sendmail holds that group only in its saved
 *   set-group-ID: smdrop_init lowers the effective group to the real one at once, and it is
 *   raised again only around the maildrop write (smdrop_write), the listing of mailq
 *   (smdrop_raise/lower) and, for the default configuration file only, a config read that
 *   the real user was refused. smdrop_drop gives it up for good. A setuid bit is never
 *   wanted: smdrop_init drops any effective user id other than the real one permanently.
 * - Blocks on: file I/O.
 * - Returns 0, or -1 with errno set.
 */
#ifndef DMAIL_SMDROP_H
#define DMAIL_SMDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct qfile;

struct smdrop {
    gid_t rgid, pgid; /* real group; the privileged (set-group-ID) group */
    bool priv;        /* pgid differs from rgid and is still held in the saved set */
    bool raised;
};

/* smdrop_init - record and lower the privilege; drop a setuid identity. -1 on failure
 * (the caller must exit). */
int smdrop_init(struct smdrop *d);
/* smdrop_raise - the privileged group becomes effective (no-op when there is none). */
int smdrop_raise(struct smdrop *d);
/* smdrop_lower - back to the real group (keeping the saved one). */
int smdrop_lower(struct smdrop *d);
/* smdrop_drop - give the privilege up for good: real, effective and saved group = real. */
int smdrop_drop(struct smdrop *d);
/* smdrop_dir - "spool_dir/maildrop" into buf. */
char *smdrop_dir(const char *spool_dir, char *buf, size_t len);
/* smdrop_write - write q into spool_dir/maildrop/ (temporary ".ID" in the same directory,
 * mode 0640) with the privilege raised only for that. The directory is created (mode
 * 1770) only when it is missing and the caller, not root, owns spool_dir (a development
 * set-up where everything runs as one user). On failure err holds a reason. */
int smdrop_write(struct smdrop *d, const char *spool_dir, struct qfile *q, char *err,
                 size_t errlen);

#endif
