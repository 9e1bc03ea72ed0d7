/*
 * smsubmit - turning a message read by sendmail (command line or -bs) into a maildrop
 * queue file: envelope addresses, -t extraction, the headers an MTA adds when missing.
 *
 * Contract:
 * - Owns: the recipient lists it builds (smaddr_free) and nothing else.
 * - Blocks on: the maildrop write (through smdrop).
 * - Returns sysexits codes (0, EX_NOUSER for a bad address, EX_DATAERR for a message
 *   with no recipients, EX_CANTCREAT / EX_TEMPFAIL when the maildrop cannot take it),
 *   with a reason in err.
 */
#ifndef DMAIL_SMSUBMIT_H
#define DMAIL_SMSUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "smaddr.h"

struct conf;
struct smdrop;
struct smmsg;

struct smsubmit {
    const struct conf *cf;
    struct smdrop *drop;
    uid_t uid;
    char user[64];    /* login name (printable, no spaces), or "uidN" without one */
    char gecos[128];  /* full name from the password file, may be "" */
    char origin[160]; /* "sendmail uid=N user=NAME" */
    bool verbose;
    int notify;        /* DSN NOTIFY for every recipient (-N), 0: none */
    int ret;           /* DSN RET (-R, enum dsn_ret), 0: none */
    const char *envid; /* DSN ENVID in xtext (-V), NULL: none */
    const char *verp;  /* VERP delimiters (-XV), NULL: none; not for the null sender */
};

/* smsubmit_init - the invoking user's identity; cf gives the main domain. */
void smsubmit_init(struct smsubmit *s, const struct conf *cf, struct smdrop *drop, bool verbose);
/* smsubmit_default_sender - "login@main_domain" into buf. 0 or EX_NOUSER. */
int smsubmit_default_sender(const struct smsubmit *s, char *buf, size_t len, char *err,
                            size_t errlen);
/* smsubmit_sender - -f's argument ("<>" or "" is the null sender; a bare name gets the
 * main domain; angle brackets are allowed) normalised into buf. 0 or EX_NOUSER. */
int smsubmit_sender(const struct smsubmit *s, const char *arg, char *buf, size_t len, char *err,
                    size_t errlen);
/* smsubmit_add_rcpts - the addresses of text (an address list: "a, Name <b@c>", bare
 * names get the main domain) normalised and appended to rcpts, skipping duplicates.
 * 0 or EX_NOUSER (what names the source, for the message). */
int smsubmit_add_rcpts(const struct smsubmit *s, const char *text, size_t len, const char *what,
                       struct smaddr_list *rcpts, char *err, size_t errlen);
/* smsubmit_message - finish m (index its headers; with extract take To/Cc/Bcc
 * recipients and remove Bcc; give bare addresses in To, Cc, Bcc, From, Sender and Reply-To
 * the main domain (smqual.h); add From:, Date:, Message-ID: when missing, From: with
 * fullname or the user's full name) and write it with sender and rcpts (and the DSN
 * parameters of s) into the maildrop. The queue id goes into id (size >= 96). */
int smsubmit_message(const struct smsubmit *s, struct smmsg *m, const char *sender,
                     struct smaddr_list *rcpts, bool extract, const char *fullname, char *id,
                     char *err, size_t errlen);

#endif
