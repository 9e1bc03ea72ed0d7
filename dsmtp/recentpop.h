/*
 * recentpop - POP-before-SMTP on dsmtp's side (forward_user, hide_auth recentpop): whether
 * the client's address logged in to dpop within forward_user_window (popauth.h); such a
 * client of the public smtp port may relay as if it were in forward_from_ip, is not SPF-
 * or FCrDNS-checked, and with `hide_auth recentpop` is not offered AUTH.
 *
 * Contract:
 * - Owns: struct recentpop (s->recentpop) and its thread-pool job.
 * - Blocks on: nothing: the file is read on the pool when the session opens; EHLO (under
 *   hide_auth recentpop) and MAIL wait for the answer when it has not come yet.
 * - recentpop_free (the session goes) detaches a running job: it frees itself, no
 *   callback follows.
 */
#ifndef DSMTP_RECENTPOP_H
#define DSMTP_RECENTPOP_H

#include <stdbool.h>

struct smtp_session;
struct recentpop;

/* recentpop_start - read the file for s on the pool if forward_user applies to it. */
void recentpop_start(struct smtp_session *s);
/* recentpop_wait - true while the job runs; done(s) follows its end. */
bool recentpop_wait(struct smtp_session *s, void (*done)(struct smtp_session *s));
/* recentpop_allowed - whether s's address logged in to dpop within the window. */
bool recentpop_allowed(const struct smtp_session *s);
/* recentpop_hide_asked - whether EHLO leaves AUTH out for s (hide_auth recentpop) and
 * must first wait for the answer (recentpop_wait). */
bool recentpop_hide_asked(const struct smtp_session *s);
/* recentpop_free - the session goes; sets s->recentpop to NULL. */
void recentpop_free(struct smtp_session *s);

#endif
