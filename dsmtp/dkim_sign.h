/*
 * dkim_sign - DKIM signatures on the mail dsmtp sends out for its users (dmail.conf's
 * dkim_sign lines, common/mail/dkim.h).
 *
 * Contract:
 * - What is signed: a message of an SMTP session whose client authenticated (AUTH) or is
 *   in forward_from_ip (relay_allow), and a message of the sendmail pickup, when the
 *   domain of its From: address has a dkim_sign key: one DKIM-Signature field per key of
 *   that domain, above the other fields. Mail from anyone else (mail coming in for local
 *   users, even with a From: of a signing domain) is never signed.
 * - A message held in bomb_dir (bombs.h: a suspected bomb, a filter's quarantine) is
 *   signed before it is held, so its release sends it signed.
 * - The body hash is computed while the message streams in: dkim_sign_begin hands the
 *   scanner (data.c) a running hash that sees every octet it stores, the spilled middle of
 *   a large message included, so nothing is read twice. When content filters ran (they
 *   may replace the body) the hash is taken again from the final text.
 * - Blocks on: nothing on the loop: the signatures are made on the thread pool (rsa-2048
 *   costs about 1 ms). The job holds a reference to the configuration snapshot, so a
 *   reload meanwhile does not free its keys.
 * - A signature that cannot be made is logged (warn) and the message goes on unsigned:
 *   an accepted message is never lost for it.
 */
#ifndef DSMTP_DKIM_SIGN_H
#define DSMTP_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_session;
struct conf;

/* dkim_sign_begin - after data_rx_init: when the session's mail is to be signed, start
 * the body hash (s->tx.dkim) and have the scanner feed it. */
void dkim_sign_begin(struct smtp_session *s);
/* dkim_sign_session - the message (text, len: taken over) goes to delivery: when it is to
 * be signed, sign it on the pool and call done with the signed text later (true: the
 * session waits); false: nothing to sign, the caller goes on with text itself. */
bool dkim_sign_session(struct smtp_session *s, char *text, size_t len,
                       void (*done)(struct smtp_session *s, char *text, size_t len));
/* dkim_sign_tx_end - the transaction ends: drop its body hash. */
void dkim_sign_tx_end(struct smtp_session *s);
/* dkim_sign_cancel - the session is gone: a job in flight finishes without it. */
void dkim_sign_cancel(struct smtp_session *s);
/* dkim_sign_text - for a thread-pool caller (the pickup): *text (local form, *len octets)
 * with the signatures of its From: domain prepended (the old buffer freed); a no-op when
 * the domain has no key. Returns the domain signed for into dom ("" if none), or -1 on
 * failure with why in err (the text is then unchanged). */
int dkim_sign_text(const struct conf *cf, char **text, size_t *len, char *dom, size_t dlen,
                   char *err, size_t elen);

#endif
