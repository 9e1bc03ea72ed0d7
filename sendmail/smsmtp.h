/*
 * smsmtp - sendmail -bs: a small, honest SMTP server on stdin/stdout for programs that
 * submit mail that way. Each accepted DATA becomes one maildrop file (smsubmit); 250 is
 * said only after it is written and fsynced.
 *
 * Contract:
 * - Owns: its transaction state.
 * - Blocks on: reads of in, writes of out, the maildrop write.
 * - Commands: HELO, EHLO (8BITMIME, SIZE, PIPELINING), MAIL, RCPT, DATA, RSET, NOOP, QUIT,
 *   HELP, VRFY (252). Lines may end with CRLF or LF; command lines are limited to 512
 *   octets, message size to max_msg_size; 20 errors end the session with 421.
 * - Returns 0 after QUIT or end of input, EX_PROTOCOL after too many errors.
 */
#ifndef DMAIL_SMSMTP_H
#define DMAIL_SMSMTP_H

#include <stdio.h>

struct smsubmit;

int smsmtp_run(const struct smsubmit *s, FILE *in, FILE *out);

#endif
