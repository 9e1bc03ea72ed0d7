/*
 * vdomain - DMail's virtual domains: `vdomain` lines, the dropfile names of their users,
 * `alt_drop_path`, and which domain a POP3/SMTP AUTH login name means.
 *
 * Contract:
 * - Owns: nothing. Everything is read from a conf snapshot (the `vdomain` and
 *   `alt_drop_path` lists, `vdomain_separator`, `drop_prefix`); answers go into the caller's
 *   buffers. Blocks on nothing; any thread.
 * - `vdomain DOMAIN [IP] [PREFIX]` (DMail's exact syntax is unknown; the words after the
 *   domain are told apart: an IPv4/IPv6 address is the IP, anything else the prefix, in
 *   either order). The prefix defaults to the domain name. The conf hook
 *   (vdomain_conf_item) stores each line as "DOMAIN IP PREFIX", IP "*" when none, DOMAIN a
 *   lower-case A-label; a prefix is [a-z0-9._-] (lower-cased), at most VDOMAIN_PREFIX_MAX,
 *   not starting with '.'.
 * - A vdomain is a local domain with its own users: only `user@DOMAIN` lines of the users
 *   file. host_domain entries after the first are aliases of the main domain and share its
 *   bare `user` lines.
 * - Dropfile of user@VDOMAIN (users file): ALT/user with `alt_drop_path VDOMAIN ALT`, else
 *   DROP/PREFIX/user with `drop_prefix true`, else DROP/PREFIX<sep>user (sep =
 *   `vdomain_separator`, default "_"); hash_spool directories go between the directory and
 *   the file name and hash the file name (see drop.h).
 * - Login names (vdomain_login): "user@domain" and "user%domain" (domain local) name that
 *   domain; a bare "user" names the vdomain whose IP the client connected to, else the main
 *   domain. The result is "user@domain" or "user", for auth_verify.
 * - Returns: lookups 1 found / 0 not; the conf hooks 0 or -1 with a reason.
 */
#ifndef DMAIL_VDOMAIN_H
#define DMAIL_VDOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define VDOMAIN_PREFIX_MAX 64
#define VDOMAIN_IP_MAX 46

struct vdomain {
    char domain[256];        /* lower-case A-label */
    char ip[VDOMAIN_IP_MAX]; /* "" when the line has none */
    char prefix[VDOMAIN_PREFIX_MAX + 1];
};

/* The form a login name had (vdomain_login). */
enum vdomain_form {
    VDOMAIN_FORM_PLAIN,   /* bare user: the main domain */
    VDOMAIN_FORM_ADDRESS, /* user@domain */
    VDOMAIN_FORM_PERCENT, /* user%domain */
    VDOMAIN_FORM_IP,      /* bare user: the vdomain of the address connected to */
};

/* vdomain_conf_item - conf hook of `vdomain`: check one line, store it canonical. */
int vdomain_conf_item(char **item, char *reason, size_t len);
/* vdomain_conf_alt - conf hook of `alt_drop_path DOMAIN PATH` (PATH absolute). */
int vdomain_conf_alt(char **item, char *reason, size_t len);
/* vdomain_conf_sep - conf hook of `vdomain_separator`: 1 to 8 of [A-Za-z0-9._+=~-]. */
int vdomain_conf_sep(char **item, char *reason, size_t len);
/* vdomain_check - whole-snapshot checks at load: a vdomain that is also a host_domain, two
 * vdomains with one prefix or one IP, alt_drop_path of a domain that is not local, or
 * alt_drop_path with authent_method external. */
void vdomain_check(const struct conf *c, struct conf_diag *d);

/* vdomain_find - the vdomain line of domain (any case, final dot allowed). */
bool vdomain_find(const struct conf *cf, const char *domain, struct vdomain *out);
/* vdomain_by_ip - the vdomain line whose IP is ip (an address string). */
bool vdomain_by_ip(const struct conf *cf, const char *ip, struct vdomain *out);
/* vdomain_alt_path - the alt_drop_path directory of domain, or NULL. */
const char *vdomain_alt_path(const struct conf *cf, const char *domain);

/* vdomain_login - the login name for auth_verify from what the client typed: see the
 * contract. local_ip (may be NULL) is the address the client connected to. Writes out
 * (a copy of login when it does not fit or has no other meaning); returns the form. */
enum vdomain_form vdomain_login(const struct conf *cf, const char *login, const char *local_ip,
                                char *out, size_t outlen);
/* vdomain_form_name - "plain", "address", "percent", "ip" (for the log). */
const char *vdomain_form_name(enum vdomain_form f);

#endif
