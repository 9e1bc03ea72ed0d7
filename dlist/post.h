/*
 * post - a message to LIST@domain: refused (loops, bounces), held for the moderator
 * (moderate.h), or sent to every subscriber in one transaction.
 *
 * Contract:
 * - Blocks on: the thread pool (members file, footer file, outbox).
 * - Refused without a word (logged): a message that carries our own X-Loop or List-Id
 *   (it has been through this list), and mail from <> or MAILER-DAEMON (a bounce sent to
 *   the posting address).
 * - The poster is the From: address (the envelope sender without one). Held: a poster
 *   access_post does not allow (moderators always may), and a message over max_size.
 * - Distribution: the poster's header minus Return-Path, Delivered-To, the List-* headers,
 *   Precedence, X-Loop (and Reply-To when the list sets it); subject_prefix put before the
 *   Subject unless it holds it already (replies); Reply-To the list (reply_to_user false),
 *   the poster (true), or the address given (the old one kept as X-Reply-To); the
 *   RFC 2369/2919 headers List-Id, List-Help, List-Subscribe, List-Unsubscribe, List-Post,
 *   List-Owner, List-Archive (archive true); Precedence: list; X-Loop: LIST@domain. The
 *   footer file is added to a text/plain body that is not base64 or quoted-printable.
 *   Envelope: MAIL FROM:<LIST-bounces@domain> XVERP, every member a RCPT.
 * - After the transaction is in the outbox, post_sent_hook(cf, def, text, len) runs (the
 *   archive and the digests hang there).
 */
#ifndef DLIST_POST_H
#define DLIST_POST_H

#include <stdbool.h>
#include <stddef.h>

struct work;
struct conf;
struct lists_def;

/* post_handle - a message to LIST (see above). */
void post_handle(struct work *w);

/* post_send - distribute w's message now (a held post approved). */
void post_send(struct work *w, const char *poster);

/* post_sent_hook - called with every distributed post (its final text), on the pool: it
 * goes into the list's archive (archive true, archive.h). A post handled again after a
 * crash may be archived twice; it is never lost from the archive. */
void post_sent_hook(const struct conf *cf, const struct lists_def *def, const char *text,
                    size_t len);

#endif
