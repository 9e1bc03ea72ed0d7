/*
 * extauth_proto - DMail's external-authentication line protocol (REFERENCE.md 4.5):
 * the request lines dmail writes to an authent_process helper and the parser of its
 * answers. No I/O: extauth.c drives the helpers.
 *
 * Contract:
 * - Requests: `check <user> <password> [<client-ip>]`, `lookup <user>`, `exit`, each
 *   ended by LF. A word that is empty, longer than EXTAUTH_WORD_MAX or holds a space,
 *   a control character or DEL cannot be sent (the protocol splits at blanks): the
 *   formatters refuse it (-1) and the caller answers "no such user / bad password".
 * - Answers, one per line (CR LF or LF; the caller strips the end): `+OK <user>
 *   <drop_file_path> [<uid> [<info>]]`, `-ERR [reason]`, `+DATA ...` (an item of a
 *   multi-line answer, always followed by a final +OK or -ERR), `-DEAD [reason]` (the
 *   helper cannot answer now: a temporary failure). info is `label="value"` fields
 *   separated by blanks; `fwd="a@b,$user"` is kept, other labels are ignored. Anything
 *   else is EA_BAD (the caller treats the helper as broken).
 * - The parser only reads line and writes *a; it never fails on any byte string of at
 *   most EXTAUTH_LINE_MAX bytes (fuzzed: tests/fuzz/fuzz_extauth.c).
 */
#ifndef DMAIL_EXTAUTH_PROTO_H
#define DMAIL_EXTAUTH_PROTO_H

#include <stddef.h>

#define EXTAUTH_LINE_MAX 4096 /* an answer line, without its end */
#define EXTAUTH_WORD_MAX 1000 /* a user name or password sent */

enum extauth_kind { EA_OK, EA_ERR, EA_DATA, EA_DEAD, EA_BAD };

struct extauth_answer {
    enum extauth_kind kind;
    char user[256];
    char drop[4096];
    long uid;
    char fwd[1024];   /* the fwd="..." value, "" if none */
    char reason[128]; /* -ERR / -DEAD text (sanitized, may be empty) */
};

/* extauth_parse - one answer line (without CR LF) into *a; returns a->kind. */
enum extauth_kind extauth_parse(const char *line, size_t len, struct extauth_answer *a);

/* extauth_format_check / extauth_format_lookup - the request line, LF included, into
 * buf; its length, or -1 if a word cannot be sent or it does not fit. ip may be NULL. */
int extauth_format_check(char *buf, size_t len, const char *user, const char *password,
                         const char *ip);
int extauth_format_lookup(char *buf, size_t len, const char *user);

#endif
