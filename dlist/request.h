/*
 * request - the email commands: a message to LIST-request@domain (DMail's commands and
 * synonyms, REFERENCE 6.2), answered by one reply that says what was done for each line.
 *
 * Contract:
 * - Blocks on: the thread pool (members file, templates, crypt(3) of a password, outbox).
 * - Never answered (logged): mail from <> or MAILER-DAEMON, with Precedence bulk, junk or
 *   list, Auto-Submitted other than "no" (RFC 3834), or our own X-Loop.
 * - The requester is the From: address (else the envelope sender); the reply goes there.
 * - Lines: the Subject (without Re:/Fwd:) when it is a command, then the body's lines.
 *   Blank lines and quoted lines ("> ...") are skipped; "-- " (a signature) or end, stop,
 *   quit, exit end the commands; an unknown line ends them once a command was done, else
 *   it is reported and skipped (at most REQUEST_UNKNOWN_MAX of them).
 * - Commands: help; join|add|subscribe|sub|signon [ADDR]; leave|remove|unsub|unsubscribe|
 *   signoff [ADDR]; who|review; lists; info; confirm TOKEN; approve PASSWORD (as the first
 *   command: moderator rights for the rest); approve PASSWORD ID and reject PASSWORD ID
 *   (held posts, moderate.h). ADDR other than the requester needs moderator rights (leave:
 *   or access_leave anyone).
 * - Double opt-in (join_cookie true): a join of oneself without moderator rights mails a
 *   token (token.h, action "join", valid dlist_confirm_expire) to the address; `confirm
 *   TOKEN` from that address (any Re: subject quoting it works) subscribes it.
 * - A new member gets the welcome text (welcome_file with DMail's %%list-name%%,
 *   %%list%%, %%list-request%% placeholders, else a built-in one).
 */
#ifndef DLIST_REQUEST_H
#define DLIST_REQUEST_H

#define REQUEST_UNKNOWN_MAX 5
#define REQUEST_LINES_MAX 100 /* command lines read from one message */

struct work;

/* request_handle - a message to LIST-request (see above). */
void request_handle(struct work *w);

/* request_handle_owner - a message to LIST-owner: forwarded to the moderators. */
void request_handle_owner(struct work *w);

#endif
