/*
 * work - one spooled message being handled on the thread pool: what post.c, request.c
 * and moderate.c share (the list, the members file, the message, the mail it makes).
 *
 * Contract:
 * - Blocks on: everything here runs on the thread pool (file I/O), one message at a time
 *   (spool.c runs one job).
 * - Mail made for a message goes through work_emit into the outbox (outbox.h) under the
 *   message's key, numbered in order; nothing is sent from here.
 * - The members file is read under admin.h's lock (work_members_load) and saved at once
 *   when changed (work_members_save: atomic), the lock held from load to the end of the
 *   job (work_done), so a `dlist add` never interleaves.
 */
#ifndef DLIST_WORK_H
#define DLIST_WORK_H

#include <stdbool.h>
#include <stddef.h>

#include "members.h"

struct conf;
struct lists_def;

struct work {
    const struct conf *cf;
    const struct lists_def *def;
    const char *domain; /* the lists' domain */
    char *outdir;       /* spool_dir/dlist/out */
    char *listdir;      /* spool_dir/dlist/LIST */
    char key[300];      /* names this message's mail in the outbox */
    int nout;           /* mail made so far */
    int errors;         /* outbox writes that failed */
    bool later;         /* put aside: handled again after the next scan (a DMARC lookup) */
    const char *text;   /* the message (no Return-Path line), LF line ends */
    size_t len;
    char sender[600]; /* the envelope sender ("" for <>) */
    struct members members;
    bool members_loaded;
    /* files removed once the message is done (a held post approved or rejected): after
     * its spool file is gone, so a crash before never loses the post (work_finish) */
    size_t nremove;
    char *remove[8];
};

/* work_addr - "LIST" "-request" "@domain" and the like into buf; returns buf. */
char *work_addr(const struct work *w, const char *suffix, char *buf, size_t len);

/* work_emit - one transaction into the outbox; list: the recipients are its members, each
 * copy gets its own List-Unsubscribe fields (outbox.h "L"), or NULL. */
void work_emit(struct work *w, const char *sender, bool xverp, char *const *rcpt, size_t n,
               const char *text, size_t len, const char *list);

/* work_mail - a plain-text mail from LIST-request to one address (Auto-Submitted:
 * auto-replied, In-Reply-To the message's Message-ID when reply), sent from LIST-bounces. */
void work_mail(struct work *w, const char *to, const char *subject, const char *body, bool reply);

/* work_members_load - the members (once; under the lock). 0 or -1. */
int work_members_load(struct work *w);

/* work_members_save - the changed members written. 0 or -1. */
int work_members_save(struct work *w);

/* work_remove_later - path removed by work_finish (false: too many, nothing queued). */
bool work_remove_later(struct work *w, const char *path);

/* work_finish - the queued removals done (and their directories fsynced). */
void work_finish(struct work *w);

/* work_done - the lock released, the members freed. */
void work_done(struct work *w);

#endif
