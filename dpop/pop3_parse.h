/*
 * pop3_parse - pure parsing of POP3 command lines (RFC 1939, 2449, 2595, 5034).
 *
 * Contract:
 * - Owns: nothing; results point into the caller's line (which must stay alive and
 *   unchanged while they are used).
 * - Blocks on: nothing. No I/O, no globals, no allocation: safe for unit tests and fuzzing.
 * - Line splitting is not done here: the session takes lines with buf_getline() and a
 *   struct linereader whose limit is POP3_LINE_MAX (RFC 2449: 255 octets including CRLF).
 * - Keywords are whole tokens of 3 or 4 letters matched case-insensitively (never
 *   prefixes). Arguments are separated by one or more spaces; trailing spaces are ignored,
 *   except by PASS, whose argument is everything after the first space (RFC 1939 allows
 *   spaces inside a password).
 * - Numbers (message numbers, TOP's line count) are 1 to 9 decimal digits, no sign.
 *   Message numbers are at least 1; TOP's line count may be 0.
 * - A line holding a NUL or a bare CR is refused (POP3_PERR_BADCHAR).
 * - On failure pop3_parse returns -1 and sets c->err; pop3_parse_errtext() gives the
 *   reply text to put after "-ERR ".
 */
#ifndef DPOP_POP3_PARSE_H
#define DPOP_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 2449 4: a command line is at most 255 octets, the CRLF included. */
#define POP3_LINE_MAX 255
/* RFC 1939 7: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define POP3_UID_MAX 70
/* Largest number accepted as a message number or line count (9 digits). */
#define POP3_NUM_MAX 999999999UL

/* Every keyword: name, argument shape. */
#define POP3_VERBS(X)                                                                              \
    X(USER, POP3_A_WORD)                                                                           \
    X(PASS, POP3_A_REST)                                                                           \
    X(APOP, POP3_A_APOP)                                                                           \
    X(STAT, POP3_A_NONE)                                                                           \
    X(LIST, POP3_A_OPTNUM)                                                                         \
    X(UIDL, POP3_A_OPTNUM)                                                                         \
    X(RETR, POP3_A_NUM)                                                                            \
    X(TOP, POP3_A_TOP)                                                                             \
    X(DELE, POP3_A_NUM)                                                                            \
    X(NOOP, POP3_A_NONE)                                                                           \
    X(RSET, POP3_A_NONE)                                                                           \
    X(QUIT, POP3_A_NONE)                                                                           \
    X(CAPA, POP3_A_NONE)                                                                           \
    X(STLS, POP3_A_NONE)                                                                           \
    X(AUTH, POP3_A_AUTH)                                                                           \
    X(LAST, POP3_A_NONE)

/* The shapes of the arguments. */
enum pop3_args {
    POP3_A_NONE,   /* no argument */
    POP3_A_WORD,   /* exactly one token */
    POP3_A_REST,   /* the rest of the line after one space, spaces included, not empty */
    POP3_A_OPTNUM, /* [msg] */
    POP3_A_NUM,    /* msg */
    POP3_A_TOP,    /* msg lines */
    POP3_A_APOP,   /* name digest (32 hex digits) */
    POP3_A_AUTH,   /* [mechanism [initial-response]] */
};

enum pop3_verb {
    POP3_V_UNKNOWN = 0,
#define POP3_VERB_ENUM(n, a) POP3_V_##n,
    POP3_VERBS(POP3_VERB_ENUM)
#undef POP3_VERB_ENUM
        POP3_V_COUNT
};

enum pop3_perr {
    POP3_PERR_NONE = 0,
    POP3_PERR_EMPTY,   /* an empty line */
    POP3_PERR_UNKNOWN, /* not a keyword we know */
    POP3_PERR_BADCHAR, /* NUL or bare CR in the line */
    POP3_PERR_NOARG,   /* a required argument is missing */
    POP3_PERR_TOOMANY, /* more arguments than the command takes */
    POP3_PERR_BADNUM,  /* not a number, zero where a message number is needed, too big */
    POP3_PERR_BADAPOP, /* the APOP digest is not 32 hex digits */
    POP3_PERR_TOOLONG, /* for the session: the line exceeded POP3_LINE_MAX */
    POP3_PERR_COUNT
};

/* A parsed command line. Pointers point into the line given to pop3_parse. */
struct pop3_cmd {
    enum pop3_verb verb;
    enum pop3_perr err;
    const char *arg1; /* USER name, PASS password, APOP name, AUTH mechanism; NULL if none */
    size_t arg1_len;
    const char *arg2; /* APOP digest, AUTH initial response; NULL if none */
    size_t arg2_len;
    bool has_num;       /* LIST/UIDL gave a number; always true for RETR/DELE/TOP */
    unsigned long num;  /* message number */
    unsigned long num2; /* TOP: lines of body */
};

/* pop3_parse - parse one command line: line (NUL-terminated, CRLF/LF removed, len bytes;
 * the line may hold a NUL, so len counts). Returns 0, or -1 with c->err set. c->verb is
 * set whenever the keyword was recognised, also on argument errors. */
int pop3_parse(const char *line, size_t len, struct pop3_cmd *c);

/* pop3_parse_verb_name - "USER" for POP3_V_USER; "?" for POP3_V_UNKNOWN. */
const char *pop3_parse_verb_name(enum pop3_verb v);

/* pop3_parse_errtext - the reply text for an error, e.g. "unknown command". */
const char *pop3_parse_errtext(enum pop3_perr e);

/* pop3_parse_uid_ok - s[0..n) is a valid unique-id (1..70 characters in 0x21..0x7E). */
bool pop3_parse_uid_ok(const char *s, size_t n);

#endif
