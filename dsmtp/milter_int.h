/*
 * milter_int - what milter.c (the stages, the connections) and milter_change.c (the
 * changes a filter asks at the end of the message) share; nothing outside dsmtp/milter*.c
 * includes it.
 *
 * Contract:
 * - One struct milter_sess per SMTP session with filters, one struct milter_conn per
 *   filter of it. All on the event loop; milter_sess lives until the session is gone, every
 *   connection closed and no recipient lookup runs (milter_sess_maybe_free).
 */
#ifndef DMAIL_MILTER_INT_H
#define DMAIL_MILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "milter.h"
#include "milter_addr.h"
#include "milter_edit.h"
#include "milter_pkt.h"

enum milter_stage { MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOM };

enum mc_state { MC_CONNECTING, MC_NEGOTIATING, MC_READY, MC_DEAD };
enum milter_verdict { MV_GO, MV_REJECT, MV_TEMPFAIL, MV_REPLY, MV_CLOSE };
enum milter_stepr { STEP_NEXT, STEP_WAIT, STEP_DONE };

/* a recipient change asked at the end of the message */
struct milter_rchange {
    bool add;
    char *addr;
};

struct milter_sess;

struct milter_conn {
    struct milter_sess *ms;
    struct net_conn *conn; /* NULL once closed */
    char name[MILTER_ADDR_MAX + 8];
    struct milter_addr addr;
    int action; /* enum milter_action, when it fails */
    uint64_t connect_ms, command_ms, content_ms;
    enum mc_state st;
    bool skip;      /* accepted (connect, HELO) or failed with accept: not asked again */
    bool skip_tx;   /* accepted or discarded this transaction */
    bool in_tx;     /* MAIL went to it, no end of message or abort since */
    bool waiting;   /* for its answer */
    bool eom;       /* that answer is the end of message's: changes may come first */
    bool body_skip; /* SMFIR_SKIP: no more body */
    uint64_t wait_ms;
    uint32_t actions, proto; /* negotiated */
    struct milter_edits ed;
    struct milter_rchange *rc;
    size_t nrc;
    bool quarantine;
};

struct milter_sess {
    struct smtp_session *s; /* NULL: the session is gone */
    struct milter_conn *m;
    size_t n, live; /* filters; connections not closed yet */
    bool in_go;
    /* the stage being run */
    enum milter_stage stage;
    bool running, async;
    size_t cur; /* the filter asked now */
    int step;   /* its next step */
    milter_done done;
    char rcpt[COMMAND_ADDR_MAX];
    bool tx_data; /* the DATA stage ran for this transaction */
    bool discard; /* a filter discarded the transaction */
    /* the message at the end of it */
    char *text;
    size_t len, hoff, boff, body;
    bool quarantine;
    size_t rc_next; /* the next recipient change of the filter at end of message */
    bool looking;   /* a recipient it added is being looked up on the pool */
    /* the stage's verdict */
    enum milter_verdict verdict;
    int code;
    char ecode[16];
    char reply[1024];
    const char *by;
};

/* milter.c */
/* milter_go - run the stage on as far as it goes without waiting. */
void milter_go(struct milter_sess *ms);
/* milter_next - on to the next filter. */
void milter_next(struct milter_sess *ms);
/* milter_fail - mc failed: dropped for the session, its default action applies. */
void milter_fail(struct milter_conn *mc, const char *why);
/* milter_sess_maybe_free - free ms if the session and every connection are gone. */
void milter_sess_maybe_free(struct milter_sess *ms);

/* milter_change.c */
/* milter_change_take - a change asked at the end of the message, recorded in mc; false
 * when malformed or not granted at negotiation. */
bool milter_change_take(struct milter_conn *mc, const struct milter_pkt *p);
/* milter_change_apply - mc let the message go on: its changes to the text and the
 * recipients; true while a recipient it added is looked up on the pool (then the stage
 * goes on from there by itself). */
bool milter_change_apply(struct milter_sess *ms, struct milter_conn *mc);
/* milter_change_clear - forget what mc asked to change. */
void milter_change_clear(struct milter_conn *mc);

#endif
