/*
 * dsnparam - the DSN extension's parameters (RFC 3461): NOTIFY, RET, ENVID and ORCPT, as
 * the SMTP server reads them, the queue file keeps them and the SMTP client passes them on.
 *
 * Contract:
 * - Owns: nothing; results go into the caller's variables and buffers.
 * - Blocks on: nothing. No allocation, no globals: any thread.
 * - NOTIFY is a bit set: 0 means "not given", which RFC 3461 4.1 lets the MTA treat as
 *   FAILURE,DELAY (dsnparam_wants does). NEVER stands alone; SUCCESS, FAILURE and DELAY
 *   may be combined, each at most once; words in any case.
 * - ENVID and ORCPT stay in their xtext form (RFC 3461 4) everywhere: checked here, passed
 *   on as they came, decoded only where a report shows them (dsn.c). xtext: bytes 0x21 to
 *   0x7e except '=', and '+' only as "+XX" with two hex digits (upper case as RFC 3461
 *   says; lower case accepted). A decoded control byte (below 0x20, 0x7f) is refused, in
 *   ENVID also a byte over 0x7e (it is printable US-ASCII). Bounds on the encoded form:
 *   ENVID at most DSNPARAM_ENVID_MAX octets (RFC 3461 4.4), ORCPT DSNPARAM_ORCPT_MAX
 *   (4.2), ORCPT being "addr-type;xtext" with addr-type an RFC 5322 atom.
 * - Error texts (why) are static strings fit for an SMTP reply.
 */
#ifndef DMAIL_DSNPARAM_H
#define DMAIL_DSNPARAM_H

#include <stdbool.h>
#include <stddef.h>

#include "dsn.h"

#define DSNPARAM_ENVID_MAX 100
#define DSNPARAM_ORCPT_MAX 500
#define DSNPARAM_NOTIFY_TEXT 32 /* room for "SUCCESS,FAILURE,DELAY" and its NUL */

enum {
    DSN_NOTIFY_NEVER = 1,
    DSN_NOTIFY_SUCCESS = 2,
    DSN_NOTIFY_FAILURE = 4,
    DSN_NOTIFY_DELAY = 8,
};

/* dsnparam_notify_parse - s (n octets) into *notify; 0, or -1 with why. */
int dsnparam_notify_parse(const char *s, size_t n, int *notify, const char **why);
/* dsnparam_notify_format - "NEVER", "SUCCESS,FAILURE,DELAY" (upper case; lower with
 * lower) or "" for 0, into out (at least DSNPARAM_NOTIFY_TEXT octets). Returns out. */
char *dsnparam_notify_format(int notify, bool lower, char *out, size_t len);
/* dsnparam_notify_valid - notify is 0 or a set dsnparam_notify_parse could give. */
bool dsnparam_notify_valid(int notify);
/* dsnparam_wants - a report of kind (DSN_NOTIFY_SUCCESS, _FAILURE or _DELAY) is asked
 * for by notify (0: FAILURE and DELAY). */
bool dsnparam_wants(int notify, int kind);

/* dsnparam_ret_parse - "FULL" or "HDRS" (any case) of n octets; DSN_RET_UNSET if neither. */
enum dsn_ret dsnparam_ret_parse(const char *s, size_t n);
/* dsnparam_ret_name - "FULL", "HDRS" (lower case with lower); NULL for DSN_RET_UNSET. */
const char *dsnparam_ret_name(enum dsn_ret r, bool lower);

/* dsnparam_envid_check - s (n octets) is a usable ENVID; 0 or -1 with why. */
int dsnparam_envid_check(const char *s, size_t n, const char **why);
/* dsnparam_orcpt_check - s (n octets) is a usable ORCPT; 0 or -1 with why. */
int dsnparam_orcpt_check(const char *s, size_t n, const char **why);

/* dsnparam_xtext_encode - s as xtext into out (NUL-terminated); -1 if it does not fit in
 * len or s holds a control byte. */
int dsnparam_xtext_encode(const char *s, char *out, size_t len);

#endif
