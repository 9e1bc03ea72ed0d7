/*
 * smqual - qualify the bare addresses of address header values (To: demo) with a domain,
 * as sendmail does for locally submitted mail.
 *
 * Contract:
 * - Owns: nothing; smqual_value returns a malloc'd string the caller frees.
 * - Blocks on: nothing.
 * - Only an address written as a plain dot-atom without '@' gets "@domain": a whole
 *   element (`demo`, `demo (Demo User)`) or the inside of an angle address (`Demo
 *   <demo>`). Display names, quoted strings, comments, group names, `<>` and anything
 *   that does not parse stay byte for byte as they were.
 */
#ifndef DMAIL_SMQUAL_H
#define DMAIL_SMQUAL_H

#include <stddef.h>

/* smqual_value - the header value val[0..len) with each bare address followed by
 * "@domain"; NULL when nothing needs it (or the value does not parse: left alone). */
char *smqual_value(const char *val, size_t len, const char *domain);

#endif
