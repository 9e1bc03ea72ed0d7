/*
 * smaddr - the addresses of an RFC 5322 address-list (To:, Cc:, Bcc: header values), for
 * sendmail -t.
 *
 * Contract:
 * - Owns: the array it returns (smaddr_free releases it).
 * - Blocks on: nothing.
 * - Handles folded values, comments (nested), quoted strings, `Name <addr>` forms, groups
 *   (`team: a@b, c@d;`, also empty ones like `undisclosed-recipients:;`) and source routes
 *   inside angle brackets. Returns each address as written (addr-spec text, comments
 *   removed, surrounding space trimmed); checking and normalising it is the caller's job
 *   (addr_parse_mailbox).
 */
#ifndef DMAIL_SMADDR_H
#define DMAIL_SMADDR_H

#include <stddef.h>

struct smaddr_list {
    size_t n;
    char **v;
};

/* smaddr_extract - append the addresses of the header value val[0..len) to out. Returns
 * 0, or -1 with a reason in err (an unterminated quote, comment or angle address). */
int smaddr_extract(const char *val, size_t len, struct smaddr_list *out, char *err, size_t errlen);
/* smaddr_free - release the list; it is empty afterwards. */
void smaddr_free(struct smaddr_list *l);

#endif
