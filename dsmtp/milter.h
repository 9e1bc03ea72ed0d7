/*
 * milter - the milter client: the content filters of the `milters` setting (rspamd,
 * OpenDKIM, clamav-milter...) see each SMTP session stage by stage over the
 * sendmail/Postfix milter protocol, version 6, as under Postfix's smtpd_milters, and
 * their verdicts and changes apply before dsmtp answers.
 *
 * Contract:
 * - Owns: struct milter_sess of a session (s->milter): one connection per filter, opened
 *   when the session starts and closed (SMFIC_QUIT) when it ends; the changes a filter
 *   asks for; the message text while the filters read it.
 * - Blocks on: nothing: every connection is a net_conn on the loop. A stage function
 *   returns true when the session must wait (the caller calls sess_go_async; done(s)
 *   follows from the loop, once) and false when the answer is known now. Filters are
 *   asked one after the other, in the setting's order; the first that does not let a
 *   stage go on decides it.
 * - Verdicts (milter_refuse writes the reply): reject 550 5.7.1 (554 at connect),
 *   tempfail 451 4.7.1 (421 at connect), SMFIR_REPLYCODE the filter's own code and text,
 *   connect-stage refusals and SMFIR_SHUTDOWN/CONN_FAIL close the session. accept skips
 *   the filter for the rest of the transaction (for the session, at connect and HELO).
 *   discard (any stage of a transaction) and quarantine (end of message) are reported by
 *   milter_eom_result: the message gets 250 and is not delivered, resp. held in bomb_dir.
 * - A filter that cannot be reached, breaks the protocol or does not answer within its
 *   timeout (milter_connect_timeout, milter_command_timeout, milter_content_timeout for
 *   the message, milter_options per filter; SMFIR_PROGRESS restarts it) is dropped for the
 *   session and its default action (milter_default_action or its own) applies: tempfail
 *   and reject refuse the stage (and every later one), accept goes on without it.
 * - Changes at the end of the message: header add/insert/change/delete and body replace
 *   (milter_edit.h), each filter seeing the message as the ones before it left it;
 *   recipients added (routed like a RCPT: local, or relayed) and deleted. Under
 *   authent_method unix_user an added local recipient may cost an account lookup on the
 *   loop (rare: a filter's addition).
 */
#ifndef DSMTP_MILTER_H
#define DSMTP_MILTER_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_session;

typedef void (*milter_done)(struct smtp_session *s);

/* milter_connect - the session starts: connect to the filters, SMFIC_CONNECT. */
bool milter_connect(struct smtp_session *s, milter_done done);
/* milter_helo - HELO/EHLO with s->arg.helo. */
bool milter_helo(struct smtp_session *s, milter_done done);
/* milter_mail - MAIL with s->arg.mail (the transaction has not begun yet). */
bool milter_mail(struct smtp_session *s, milter_done done);
/* milter_rcpt - RCPT of addr (as formatted). */
bool milter_rcpt(struct smtp_session *s, const char *addr, milter_done done);
/* milter_data - the DATA command (s->tx.id is set). */
bool milter_data(struct smtp_session *s, milter_done done);
/* milter_eom - the message (text, len: taken over; LF line ends) to every filter, then
 * end of message; milter_eom_result gives it back. */
bool milter_eom(struct smtp_session *s, char *text, size_t len, milter_done done);

/* What became of the message after milter_eom. */
enum milter_fate { MILTER_DELIVER, MILTER_REFUSED, MILTER_DISCARD, MILTER_QUARANTINE };
/* milter_eom_result - the message back (changed or not; NULL when refused: the reply is
 * written) and its fate. */
enum milter_fate milter_eom_result(struct smtp_session *s, char **text, size_t *len);

/* milter_refuse - after a stage: true when it was refused (the reply written and logged;
 * closing stages closed the session). */
bool milter_refuse(struct smtp_session *s);
/* milter_abort - the transaction ended without its end of message (RSET, EHLO, a refusal,
 * the client gone): SMFIC_ABORT to the filters that saw it begin. */
void milter_abort(struct smtp_session *s);
/* milter_end - the session is gone: close the connections (they finish on their own). */
void milter_end(struct smtp_session *s);

#endif
