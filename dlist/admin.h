/*
 * admin - dlist's own control commands (`dlist -c CONF lists | who LIST | add LIST ADDR |
 * remove LIST ADDR | held LIST | approve LIST ID | reject LIST ID`, also through the control socket
 * work_path/dlist.ctl).
 *
 * Contract:
 * - Owns: one job per request; the members files of work_path/dlist/LIST/members.
 * - Blocks on: nothing on the loop: every members file is read, changed and saved
 *   (members_save: atomic) on the thread pool, one request at a time (a mutex), so two
 *   changes of one list never lose each other.
 * - held LIST / approve LIST ID / reject LIST ID: the held posts (moderate.h), run by
 *   spool.c's jobs (one at a time with the scans).
 * - Answers: lists: a line "NAME MEMBERS TITLE" per list; who LIST: one address a line;
 *   add/remove: "OK added ADDR" / "OK ADDR is a member already", "OK removed ADDR" /
 *   "ERR ADDR is not a member". An unknown list, a bad address or a file that cannot be
 *   written is ERR.
 */
#ifndef DLIST_ADMIN_H
#define DLIST_ADMIN_H

#include "ctl.h"

#define ADMIN_NCMDS 7
extern const struct ctl_cmd admin_cmds[ADMIN_NCMDS];

/* admin_members_lock / admin_members_unlock - the one lock every change of a members file
 * takes (pool threads only): a read-change-save never loses another's change. */
void admin_members_lock(void);
void admin_members_unlock(void);

/* admin_members_path - work_path/dlist/LIST/members, malloc'd. */
struct conf;
char *admin_members_path(const struct conf *cf, const char *list);

#endif
