/*
 * smopt - the sendmail command line, as one table indexed by option letter.
 */
#include "smopt.h"

#include "dsnparam.h"

#include "xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum smopt_arg {
    OA_UNKNOWN, /* not an option sendmail knows (the zero rows of the table) */
    OA_NONE,    /* a flag; may be clustered */
    OA_REQ,     /* takes an argument: the rest of the word, or the next word */
    OA_REST,    /* takes the rest of the word, possibly empty (-o..., -b..., -q...) */
};

struct smopt_def {
    enum smopt_arg arg;
    /* handler; NULL: accepted and ignored (historic). Returns 0 or -1 with err set. */
    int (*fn)(struct smopt *o, const char *val, char *err, size_t errlen);
};

/* smopt_t - -t: recipients from To/Cc/Bcc. */
static int
smopt_t(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->extract = true;
    return 0;
}

/* smopt_i - -i: a lone "." line does not end the message. */
static int
smopt_i(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->ignore_dots = true;
    return 0;
}

/* smopt_v - -v: say what is done. */
static int
smopt_v(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->verbose = true;
    return 0;
}

/* smopt_f - -f SENDER (and its old spelling -r). */
static int
smopt_f(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->sender = val;
    return 0;
}

/* smopt_F - -F NAME: the display name for an added From: header. */
static int
smopt_F(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->fullname = val;
    return 0;
}

/* smopt_N - -N never|success,failure,delay: the DSN NOTIFY of every recipient. */
static int
smopt_N(struct smopt *o, const char *val, char *err, size_t errlen)
{
    const char *why;

    if (dsnparam_notify_parse(val, strlen(val), &o->notify, &why) < 0) {
        snprintf(err, errlen, "-N %s: %s", val, why);
        return -1;
    }
    return 0;
}

/* smopt_R - -R full|hdrs: what a failure report returns. */
static int
smopt_R(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->ret = (int)dsnparam_ret_parse(val, strlen(val));
    if (o->ret == DSN_RET_UNSET) {
        snprintf(err, errlen, "-R takes full or hdrs, not \"%s\"", val);
        return -1;
    }
    return 0;
}

/* smopt_V - -V ENVID: the DSN envelope id, printable ASCII, kept in xtext. */
static int
smopt_V(struct smopt *o, const char *val, char *err, size_t errlen)
{
    const char *why = "";

    for (const char *p = val; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            snprintf(err, errlen, "-V: the envelope id must be printable ASCII");
            return -1;
        }
    if (dsnparam_xtext_encode(val, o->envid, sizeof o->envid) < 0 ||
        dsnparam_envid_check(o->envid, strlen(o->envid), &why) < 0) {
        o->envid[0] = '\0';
        snprintf(err, errlen, "-V: %s", why[0] ? why : "the envelope id is too long (100 octets)");
        return -1;
    }
    return 0;
}

/* smopt_X - -XV[XY]: VERP (Postfix); any other -X FILE (traffic log) is ignored. */
static int
smopt_X(struct smopt *o, const char *val, char *err, size_t errlen)
{
    if (val[0] != 'V')
        return 0;
    if (val[1] != '\0' && strlen(val + 1) != 2) {
        snprintf(err, errlen, "-XV: give two delimiter characters, or none");
        return -1;
    }
    o->xverp = true;
    snprintf(o->verp, sizeof o->verp, "%s", val + 1);
    return 0;
}

/* smopt_C - -C FILE: the dmail.conf to read. */
static int
smopt_C(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->config = val;
    return 0;
}

/* smopt_o - -oX: only -oi means something; -oem, -om, -odb, -oQ... are ignored. */
static int
smopt_o(struct smopt *o, const char *val, char *err, size_t errlen)
{
    if (strcmp(val, "i") == 0)
        o->ignore_dots = true;
    return 0;
}

/* smopt_I - -I: old spelling of -bi. */
static int
smopt_I(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->mode = SMOPT_NEWALIASES;
    return 0;
}

/* smopt_q - -q[TIME|Xsubstr]: ask for a queue run. */
static int
smopt_q(struct smopt *o, const char *val, char *err, size_t errlen)
{
    o->mode = SMOPT_QRUN;
    return 0;
}

/* The -b modes, by letter. */
static const struct {
    char letter;
    enum smopt_mode mode;
    const char *refuse; /* non-NULL: not offered, with this explanation */
} smopt_bmodes[] = {
    {'m', SMOPT_DELIVER, NULL},
    {'p', SMOPT_MAILQ, NULL},
    {'i', SMOPT_NEWALIASES, NULL},
    {'s', SMOPT_SMTP, NULL},
    {'d', SMOPT_DELIVER, "-bd is not offered: the SMTP daemon is dsmtp"},
    {'D', SMOPT_DELIVER, "-bD is not offered: the SMTP daemon is dsmtp"},
    {'a', SMOPT_DELIVER, "-ba (ARPANET mode) is not supported"},
    {'h', SMOPT_DELIVER, "-bh (host status) is not supported"},
    {'H', SMOPT_DELIVER, "-bH (purge host status) is not supported"},
    {'t', SMOPT_DELIVER, "-bt (address test mode) is not supported"},
    {'v', SMOPT_DELIVER, "-bv (verify addresses) is not supported"},
    {'P', SMOPT_DELIVER, "-bP (queue counts) is not supported; use mailq"},
};

/* smopt_b - -bX: the operating mode. */
static int
smopt_b(struct smopt *o, const char *val, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof smopt_bmodes / sizeof smopt_bmodes[0]; i++) {
        if (val[0] == smopt_bmodes[i].letter && val[1] == '\0') {
            if (smopt_bmodes[i].refuse != NULL) {
                snprintf(err, errlen, "%s", smopt_bmodes[i].refuse);
                return -1;
            }
            o->mode = smopt_bmodes[i].mode;
            return 0;
        }
    }
    snprintf(err, errlen, "unknown mode -b%s", val);
    return -1;
}

/* Every option letter sendmail knows. Those without a handler are historic: accepted with
 * their argument and ignored. */
static const struct smopt_def smopt_table[128] = {
    ['t'] = {OA_NONE, smopt_t}, ['i'] = {OA_NONE, smopt_i}, ['v'] = {OA_NONE, smopt_v},
    ['I'] = {OA_NONE, smopt_I}, ['n'] = {OA_NONE, NULL}, /* no aliasing */
    ['U'] = {OA_NONE, NULL},                             /* initial user submission */
    ['G'] = {OA_NONE, NULL},                             /* gateway submission */
    ['m'] = {OA_NONE, NULL},                             /* me too */
    ['s'] = {OA_NONE, NULL},                             /* save From lines (obsolete) */
    ['f'] = {OA_REQ, smopt_f},  ['r'] = {OA_REQ, smopt_f},  ['F'] = {OA_REQ, smopt_F},
    ['C'] = {OA_REQ, smopt_C},  ['h'] = {OA_REQ, NULL}, /* hop count */
    ['B'] = {OA_REQ, NULL},                             /* body type */
    ['N'] = {OA_REQ, smopt_N},                          /* DSN notify */
    ['R'] = {OA_REQ, smopt_R},                          /* DSN return */
    ['V'] = {OA_REQ, smopt_V},                          /* DSN envelope id */
    ['X'] = {OA_REQ, smopt_X},                          /* -XV: VERP; else traffic log */
    ['L'] = {OA_REQ, NULL},                             /* syslog label */
    ['O'] = {OA_REQ, NULL},                             /* Option=value */
    ['o'] = {OA_REST, smopt_o}, ['b'] = {OA_REST, smopt_b}, ['q'] = {OA_REST, smopt_q},
    ['d'] = {OA_REST, NULL}, /* debug flags */
    ['A'] = {OA_REST, NULL}, /* -Ac / -Am */
    ['M'] = {OA_REST, NULL}, /* macro definition */
    ['e'] = {OA_REST, NULL}, /* old error mode */
    ['p'] = {OA_REST, NULL}, /* protocol and host */
};

/* smopt_progname - the base name of argv[0]. */
const char *
smopt_progname(const char *argv0)
{
    const char *s;

    if (argv0 == NULL || argv0[0] == '\0')
        return "sendmail";
    s = strrchr(argv0, '/');
    return s ? s + 1 : argv0;
}

/* smopt_word - the option letters of one argument word; *i advances past a consumed
 * next word. */
static int
smopt_word(int argc, char **argv, int *i, struct smopt *o, char *err, size_t errlen)
{
    const char *w = argv[*i] + 1;

    while (*w != '\0') {
        unsigned char c = (unsigned char)*w++;
        const struct smopt_def *d = c < 128 ? &smopt_table[c] : NULL;
        const char *val = NULL;

        if (d == NULL || d->arg == OA_UNKNOWN) {
            snprintf(err, errlen, "unknown option -%c", c);
            return -1;
        }
        if (d->arg == OA_REST) {
            val = w;
            w += strlen(w);
        } else if (d->arg == OA_REQ) {
            if (*w != '\0') {
                val = w;
                w += strlen(w);
            } else if (*i + 1 < argc) {
                val = argv[++*i];
            } else {
                snprintf(err, errlen, "option -%c needs an argument", c);
                return -1;
            }
        }
        if (d->fn != NULL && d->fn(o, val, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* smopt_parse - argv into o. */
int
smopt_parse(int argc, char **argv, struct smopt *o, char *err, size_t errlen)
{
    const char *prog = smopt_progname(argc > 0 ? argv[0] : NULL);
    bool options = true;

    memset(o, 0, sizeof *o);
    o->rcpt = xcalloc((size_t)(argc > 0 ? argc : 1), sizeof *o->rcpt);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && strcmp(a, "--help") == 0) {
            o->mode = SMOPT_HELP;
            return 0;
        } else if (options && strcmp(a, "--version") == 0) {
            o->mode = SMOPT_VERSION;
            return 0;
        } else if (options && a[0] == '-' && a[1] == '-') {
            snprintf(err, errlen, "unknown option %s", a);
            return -1;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            if (smopt_word(argc, argv, &i, o, err, errlen) < 0)
                return -1;
        } else {
            o->rcpt[o->nrcpt++] = argv[i];
        }
    }
    if (strcmp(prog, "mailq") == 0)
        o->mode = SMOPT_MAILQ;
    else if (strcmp(prog, "newaliases") == 0)
        o->mode = SMOPT_NEWALIASES;
    return 0;
}

/* smopt_free - release the recipient array. */
void
smopt_free(struct smopt *o)
{
    free(o->rcpt);
    o->rcpt = NULL;
    o->nrcpt = 0;
}
