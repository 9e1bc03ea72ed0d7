/*
 * tell_dkim - tellsmtp dkim-keygen: a DKIM key file and its DNS record. See tell.h.
 */
#include "tell.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkim.h"

/* tell_dkim_name_ok - a domain or selector: letters, digits, '-', '_', '.'. */
static bool
tell_dkim_name_ok(const char *s)
{
    if (*s == '\0' || *s == '.' || strlen(s) > 253 || strstr(s, "..") != NULL)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

int
tell_dkim_keygen(const struct tell_ctx *ctx, int argc, char **argv)
{
    const char *domain = argv[1], *sel = argv[2], *alg = argc > 3 ? argv[3] : "rsa";
    char txt[2048], err[300], *path, *abs = NULL;
    bool rsa = strcmp(alg, "rsa") == 0;
    size_t n;

    if (!rsa && strcmp(alg, "ed25519") != 0) {
        fprintf(stderr, "%s: dkim-keygen: the algorithm is rsa or ed25519, not %s\n", ctx->prog,
                alg);
        return TELL_EX_USAGE;
    }
    if (!tell_dkim_name_ok(domain) || !tell_dkim_name_ok(sel)) {
        fprintf(stderr, "%s: dkim-keygen: bad domain or selector: %s %s\n", ctx->prog, domain, sel);
        return TELL_EX_USAGE;
    }
    path = argc > 4 ? strdup(argv[4]) : NULL;
    if (path == NULL && asprintf(&path, "%s.%s.pem", domain, sel) < 0)
        return TELL_EX_REFUSED;
    if (dkim_keygen(path, rsa, txt, sizeof(txt), err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: dkim-keygen: %s\n", ctx->prog, err);
        free(path);
        return TELL_EX_REFUSED;
    }
    if (geteuid() == 0 && ctx->run_as != NULL && ctx->run_as[0] != '\0') {
        struct passwd *pw = getpwnam(ctx->run_as); /* dsmtp reads it as run_as on reload */
        if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0)
            fprintf(stderr, "%s: dkim-keygen: chown %s %s: %s\n", ctx->prog, ctx->run_as, path,
                    strerror(errno));
    }
    abs = realpath(path, NULL);
    printf("# %s key written to %s (mode 0600)\n", rsa ? "RSA-2048" : "Ed25519", abs ? abs : path);
    printf("# dmail.conf:\ndkim_sign %s %s %s\n", domain, sel, abs ? abs : path);
    printf("# DNS:\n%s._domainkey.%s. IN TXT (", sel, domain);
    /* a TXT string holds at most 255 octets: the record in pieces */
    n = strlen(txt);
    for (size_t i = 0; i < n; i += 250)
        printf(" \"%.*s\"", (int)(n - i < 250 ? n - i : 250), txt + i);
    printf(" )\n");
    free(abs);
    free(path);
    return TELL_EX_OK;
}
