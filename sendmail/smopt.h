/*
 * smopt - sendmail's command line: the modern flags, the historic ones (accepted and
 * ignored), and the mode chosen by the program's name (mailq, newaliases).
 *
 * Contract:
 * - Owns: nothing; strings in struct smopt point into argv.
 * - Blocks on: nothing.
 * - DSN, as Postfix's sendmail: -N never|success,failure,delay (any case), -R full|hdrs,
 *   -V envid (printable ASCII, written in xtext: at most 100 octets so). A bad value is a
 *   usage error.
 * - -XV or -XVXY (Postfix's): VERP, each recipient its own envelope sender (dsmtp(8)
 *   XVERP); the delimiters are checked by the caller (verp_delimiter_filter). Any other
 *   -X argument is the historic traffic log file, ignored.
 * - Options may be clustered (-ti), take their argument attached or as the next word
 *   (-fbob / -f bob), and may follow recipients (GNU getopt order); "--" ends them.
 */
#ifndef DMAIL_SMOPT_H
#define DMAIL_SMOPT_H

#include <stdbool.h>
#include <stddef.h>

enum smopt_mode {
    SMOPT_DELIVER,    /* default (-bm): read a message, drop it for dsmtp */
    SMOPT_MAILQ,      /* -bp, or called as mailq */
    SMOPT_NEWALIASES, /* -bi / -I, or called as newaliases */
    SMOPT_SMTP,       /* -bs: SMTP on stdin/stdout */
    SMOPT_QRUN,       /* -q[...] */
    SMOPT_HELP,       /* --help */
    SMOPT_VERSION,    /* --version */
};

struct smopt {
    enum smopt_mode mode;
    bool extract;         /* -t */
    bool ignore_dots;     /* -i, -oi */
    bool verbose;         /* -v */
    const char *sender;   /* -f / -r */
    const char *fullname; /* -F */
    const char *config;   /* -C */
    int notify;           /* -N (DSN_NOTIFY_* of dsnparam.h), 0: not given */
    int ret;              /* -R (enum dsn_ret), 0: not given */
    char envid[101];      /* -V in xtext, "" if not given */
    bool xverp;           /* -XV[XY]: VERP, as Postfix's sendmail */
    char verp[3];         /* -XVXY: the delimiters, "" for verp_delimiters */
    size_t nrcpt;
    char **rcpt; /* malloc'd array of pointers into argv */
};

/* smopt_parse - argv (argv[0] picks the mode for mailq/newaliases) into o. Returns 0, or
 * -1 with a message in err (a usage error: EX_USAGE). */
int smopt_parse(int argc, char **argv, struct smopt *o, char *err, size_t errlen);
void smopt_free(struct smopt *o);
/* smopt_progname - the base name of argv[0]. */
const char *smopt_progname(const char *argv0);

#endif
