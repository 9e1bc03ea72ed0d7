/*
 * smtp_parse - pure parsing of SMTP command lines (RFC 5321, 1869, 6152, 6531, 4954).
 *
 * Contract:
 * - Owns: nothing; results go into caller-provided structs and point into (or are copied
 *   from) the caller's line.
 * - Blocks on: nothing. No I/O, no globals, no allocation: safe for unit tests and fuzzing.
 * - Verbs are whole tokens matched case-insensitively (never prefixes).
 * - On a syntax error the parse functions fill struct smtp_perr with the full reply to
 *   send (code, RFC 3463 enhanced code, text) and return -1.
 * - DSN (RFC 3461, dsnparam.h): MAIL's RET=FULL|HDRS and ENVID=xtext, RCPT's
 *   NOTIFY=NEVER|SUCCESS,FAILURE,DELAY and ORCPT=addr-type;xtext. A bad value or a
 *   parameter given twice is 501 5.5.4 with the reason; ENVID and ORCPT are kept as sent.
 * - Leniency: spaces between "FROM:"/"TO:" and the path are accepted (as Postfix does);
 *   `RCPT TO:<postmaster>` without a domain is accepted (RFC 5321 4.5.1).
 */
#ifndef DSMTP_SMTP_PARSE_H
#define DSMTP_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "dsnparam.h"
#include "xheader.h"

/* Every verb we recognise; those we do not implement still get their own 502. */
#define SMTP_VERBS(X)                                                                              \
    X(EHLO)                                                                                        \
    X(HELO)                                                                                        \
    X(MAIL)                                                                                        \
    X(RCPT)                                                                                        \
    X(DATA)                                                                                        \
    X(RSET)                                                                                        \
    X(NOOP)                                                                                        \
    X(QUIT)                                                                                        \
    X(HELP)                                                                                        \
    X(VRFY)                                                                                        \
    X(EXPN)                                                                                        \
    X(STARTTLS)                                                                                    \
    X(AUTH)                                                                                        \
    X(BDAT)                                                                                        \
    X(ETRN)                                                                                        \
    X(TURN)                                                                                        \
    X(SEND)                                                                                        \
    X(SOML)                                                                                        \
    X(SAML)

enum smtp_verb {
    SMTP_V_UNKNOWN = 0,
#define SMTP_VERB_ENUM(n) SMTP_V_##n,
    SMTP_VERBS(SMTP_VERB_ENUM)
#undef SMTP_VERB_ENUM
        SMTP_V_COUNT
};

/* A reply the parser wants sent: "code ecode text". */
struct smtp_perr {
    int code;
    const char *ecode; /* "5.5.4" */
    char text[160];
};

/* A command line split into its verb and the rest. */
struct smtp_cmdline {
    enum smtp_verb verb;
    const char *verb_text; /* the verb as sent (points into the line) */
    size_t verb_len;
    const char *args; /* after the verb and the spaces behind it; "" if none */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

/* MAIL FROM:<path> [params] */
struct smtp_mail {
    struct addr from;
    bool size_set;
    unsigned long long size;            /* SIZE= */
    enum smtp_body body;                /* BODY= */
    bool smtputf8;                      /* SMTPUTF8 */
    bool requiretls;                    /* REQUIRETLS (RFC 8689) */
    bool xverp;                         /* XVERP (Postfix's VERP extension) */
    char verp[3];                       /* XVERP=XY: the delimiters, "" if not given */
    enum dsn_ret ret;                   /* RET= */
    char envid[DSNPARAM_ENVID_MAX + 1]; /* ENVID= as sent (xtext), "" if none */
};

/* RCPT TO:<path> [NOTIFY=...] [ORCPT=...] [XHEADER=...] */
struct smtp_rcpt {
    struct addr to;
    bool bare_postmaster;               /* <postmaster> without a domain: to.domain is "" */
    int notify;                         /* DSN_NOTIFY_* bits, 0 if not given */
    char orcpt[DSNPARAM_ORCPT_MAX + 1]; /* ORCPT= as sent, "" if none */
    char xheader[XHEADER_MAX + 1];      /* XHEADER= as sent (xheader.h), "" if none */
};

/* smtp_parse_line - split a command line (NUL-terminated, no CRLF) into verb and args. */
void smtp_parse_line(const char *line, struct smtp_cmdline *out);

/* smtp_parse_verb_name - "EHLO" for SMTP_V_EHLO; "?" for SMTP_V_UNKNOWN. */
const char *smtp_parse_verb_name(enum smtp_verb v);

/* smtp_parse_mail - the arguments of MAIL ("FROM:<a> SIZE=10"). esmtp: parameters are
 * allowed (the session began with EHLO). 0 or -1 with e filled. */
int smtp_parse_mail(const char *args, bool esmtp, struct smtp_mail *m, struct smtp_perr *e);

/* smtp_parse_rcpt - the arguments of RCPT ("TO:<a> NOTIFY=NEVER"): NOTIFY and ORCPT;
 * any other parameter is 555. 0 or -1 with e filled. */
int smtp_parse_rcpt(const char *args, bool esmtp, struct smtp_rcpt *r, struct smtp_perr *e);

/* smtp_parse_helo - the domain argument of HELO/EHLO: one token of printable ASCII (a
 * domain or an address literal) of at most 255 octets, copied into out. 0 or -1. */
int smtp_parse_helo(const char *args, char *out, size_t outlen, struct smtp_perr *e);

/* smtp_parse_bdat - the arguments of BDAT (RFC 3030): "count [LAST]", count 1 to 19
 * digits. A syntax error is 521 5.5.4: the octets that follow cannot be found, so the
 * caller closes the session (as Postfix does). 0 or -1 with e filled. */
int smtp_parse_bdat(const char *args, unsigned long long *size, bool *last, struct smtp_perr *e);

/* smtp_parse_auth - "MECH [initial-response]" into mech (upper-cased, at most 20
 * characters) and *initial (NULL if absent; points into args). 0 or -1. */
int smtp_parse_auth(const char *args, char *mech, size_t mechlen, const char **initial,
                    struct smtp_perr *e);

/* smtp_parse_base64 - decode standard base64 (padding required, no whitespace) into out;
 * "=" alone is the empty string (RFC 4954). Returns the decoded length or -1 when the
 * input is not base64 or does not fit (out is NUL-terminated when it fits). */
long smtp_parse_base64(const char *in, size_t inlen, char *out, size_t outlen);

/* smtp_parse_base64_encode - encode n bytes into out (NUL-terminated); -1 if too small. */
long smtp_parse_base64_encode(const void *in, size_t n, char *out, size_t outlen);

/* smtp_parse_plain - split a decoded SASL PLAIN message "authzid NUL authcid NUL passwd".
 * The pointers point into msg. An authzid other than "" or authcid is refused. 0 or -1. */
int smtp_parse_plain(const char *msg, size_t len, const char **authcid, const char **passwd);

/* smtp_parse_is_8bit - the string holds a byte >= 0x80. */
bool smtp_parse_is_8bit(const char *s);

/* smtp_parse_has_arg - args is not empty (after trailing spaces). */
bool smtp_parse_has_arg(const char *args);

#endif
