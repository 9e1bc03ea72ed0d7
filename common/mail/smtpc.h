/*
 * smtpc - the SMTP client of dsmtp (outbound queue) and dlist (posts to dsmtp): one connection to a
 * remote server (an MX, a smarthost, a gateway) over net, carrying one or more transactions (RFC
 * 5321 client side).
 *
 * Contract:
 * - Owns: struct smtpc and its net connection. Runs on the loop; blocks on nothing.
 * - Life: smtpc_open connects to one numeric address and does greeting, EHLO (HELO when
 *   EHLO is refused with 5xx), STARTTLS when offered (policy: see enum smtpc_tls), AUTH
 *   when a user is given (PLAIN, else LOGIN; only over TLS), and calls ready exactly once
 *   (from the loop, never from inside smtpc_open) with the session-level result. Then
 *   smtpc_send runs a transaction and calls done exactly once; the connection can carry
 *   the next transaction (after RSET when the last one did not end with the DATA reply)
 *   until smtpc_close sends QUIT and frees it. After a failure in ready or a broken
 *   connection in done, only smtpc_close is allowed. No callback comes after
 *   smtpc_close.
 * - Transactions: MAIL FROM:<sender> (XVERP when m->xverp and the server announced it) with SIZE=
 * when the server announced SIZE (and a message larger than its limit fails at once with 5.3.4,
 * nothing sent), BODY=8BITMIME when m->eightbit and the server has 8BITMIME (else 8-bit text goes
 * out as it is, as Postfix does), SMTPUTF8 when m->smtputf8 (a server without it: every recipient
 * fails 5.6.7 before MAIL); RET=/ENVID= and per recipient NOTIFY=/ORCPT= only when the server
 *   announced DSN. RCPT for each recipient; with PIPELINING, MAIL, every RCPT and DATA go
 *   in one write (RFC 2920). DATA only if a recipient was accepted. The text (local form,
 *   LF line ends) is sent with CRLF line ends, dot-stuffed, lines longer than 998 octets
 *   folded (RFC 5322 2.1.1), ended by CRLF.CRLF.
 * - Results: every recipient gets a reply: its RCPT reply when that was not 2xx, else the
 *   reply to the end of DATA. A reply is code, enhanced status (from the text, else made
 *   from the code: 2.0.0/4.0.0/5.0.0) and text (multi-line joined by "; ", bounded, never
 *   holding CR/LF). A connection lost or a timeout gives 4.4.2 to every recipient not
 *   answered yet.
 * - Timeouts (RFC 5321 4.5.3.2, shortened): o->timeout_ms for each reply, and
 *   o->data_timeout_ms for the reply to the final dot.
 *
 * Details (what the implementation makes precise):
 * - Replies made here: 421 4.4.1 the connect failed; 421 4.4.2 the connection was lost
 *   or a timeout struck; 421 4.5.0 a malformed reply (the session ends); 421 4.7.4 /
 *   4.7.5 the TLS policy (below); 454 4.7.0 AUTH impossible (no TLS, or neither PLAIN
 *   nor LOGIN offered); 552 5.3.4 SIZE; 553 5.6.7 SMTPUTF8; 501 5.1.3 (5.1.7) a
 *   recipient (the sender) or its DSN parameters holding a control character, never
 *   sent. A 421 from the server at any point ends the session like a lost connection
 *   (its reply goes to whoever has none yet).
 * - TLS: STARTTLS refused under MAY goes on in plaintext; a certificate that does not
 *   verify under VERIFY fails 4.7.5 (without tls_name nothing verifies); under DANE one
 *   that matches none of the TLSA records (dane_ssl_auth) fails 4.7.5, and the records
 *   are given to OpenSSL before the handshake (dane_ssl_setup). After the
 *   handshake EHLO is sent again and what the first EHLO announced is forgotten. A
 *   policy failure sends QUIT.
 * - ready's reply on success is the EHLO/HELO reply, or AUTH's 235.
 * - MAIL refused: every recipient gets MAIL's reply. Pipelined, DATA goes even when every
 *   RCPT was refused; its refusal is nobody's (a 354 then gets a lone dot). RSET precedes
 *   the next MAIL (in the same write when pipelining) after a transaction that did not
 *   end with the reply to the final dot.
 * - XHEADER (dsmtp's, next to XVERP: see man/dsmtp.8): RCPT ... XHEADER=xtext for a recipient
 *   m->xheader gives one (SMTPC_XHEADER_MAX at most), only when the server announced it
 *   (else the parameter is left out); a value with a space or control is left out too.
 * - m->head, when set, goes out before m->text as if it were the text's first lines.
 * - SIZE= declares the text's length with CRLF line ends (dot-stuffing not counted). A
 *   line is broken at 998 octets with CRLF SP (the rest reads as a continuation, as
 *   Postfix's smtp_line_length_limit); a CRLF in the text counts as a line end.
 * - The text is produced in 64 KiB pieces while less than 256 KiB wait in net's queue;
 *   while it goes out, each NET_EV_DRAIN re-arms timeout_ms. data_timeout_ms starts once
 *   the whole text including the dot has left. A timeout of 0 waits for ever;
 *   data_timeout_ms 0 is timeout_ms.
 * - smtpc_close QUITs only an idle session; one in the middle of anything is aborted.
 *   The struct goes from the loop shortly after (a timer handle closes): the loop must
 *   run on.
 * - Credentials are never logged; commands and replies are, at debug level.
 */
#ifndef DSMTP_SMTPC_H
#define DSMTP_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "net.h"

#define SMTPC_TEXT_MAX 512     /* a reply's text kept */
#define SMTPC_XHEADER_MAX 1500 /* an XHEADER= value (xtext) */

enum smtpc_tls {
    SMTPC_TLS_NONE,    /* never STARTTLS */
    SMTPC_TLS_MAY,     /* STARTTLS when offered; a failed handshake fails this session
                        * (ready gets 4.7.5 "TLS handshake failed"): the caller may
                        * retry in plaintext with SMTPC_TLS_NONE */
    SMTPC_TLS_REQUIRE, /* no STARTTLS offered or a failed handshake: ready fails 4.7.4 */
    SMTPC_TLS_VERIFY,  /* as REQUIRE, and the certificate must verify for o->tls_name */
    SMTPC_TLS_DANE,    /* as REQUIRE, and the certificate must match o->dane's TLSA
                        * records (dane.h; set by o->dane alone): else 4.7.5 */
};

struct dane;

struct smtpc_opts {
    const char *helo; /* our name for EHLO/HELO */
    SSL_CTX *tls;     /* a client context (tls_client_ctx); NULL: no STARTTLS */
    enum smtpc_tls tls_policy;
    const char *tls_name;    /* the server's name for SNI and verification, or NULL */
    const struct dane *dane; /* the MX host's usable TLSA records: DANE (copied), or NULL */
    const char *auth_user;   /* NULL: no AUTH */
    const char *auth_pass;
    uint64_t timeout_ms;      /* each reply (and the connect) */
    uint64_t data_timeout_ms; /* the reply to the final dot */
};

/* A server's reply (or one made up for a local failure). */
struct smtpc_reply {
    int code;        /* 250, 451, 550...; 0 before any */
    char status[16]; /* enhanced status "5.1.1" */
    char text[SMTPC_TEXT_MAX];
};

/* What the session learned (ready). */
struct smtpc_info {
    struct smtpc_reply reply; /* 2xx when ready; else why not */
    const char *stage;        /* where it ended: "connect" "greeting" "ehlo" "starttls" "auth" */
    bool esmtp, pipelining, eightbitmime, smtputf8, dsn, chunking, requiretls;
    bool xverp;                  /* Postfix's XVERP announced */
    bool xheader;                /* dsmtp's XHEADER announced (RCPT ... XHEADER=) */
    unsigned long long size_max; /* SIZE announced, 0: none or unlimited */
    bool tls;                    /* STARTTLS done */
    bool tls_verified;           /* ... and the certificate verified for tls_name */
    char tls_desc[128];          /* net_tls_desc */
    const char *tls_auth;        /* how the peer was authenticated: "dane-ee", "dane-ta",
                                  * "pkix" (verified for tls_name), "none" (static) */
};

/* A recipient's reply: as struct smtpc_reply, but its text kept once in the message's pool
 * for recipients answered alike in a row (100,000 "2.1.5 Ok" hold one copy, not 50 MB). */
struct smtpc_answer {
    int code;         /* 0 before any */
    char status[16];  /* enhanced status "5.1.1" */
    const char *text; /* "" before any; valid until smtpc_msg_clear or m's next send */
};

struct smtpc_rcpt {
    const char *addr;          /* recipient */
    const char *notify;        /* DSN NOTIFY value ("SUCCESS,FAILURE"), or NULL */
    const char *orcpt;         /* DSN ORCPT ("rfc822;a@b" as xtext), or NULL */
    struct smtpc_answer reply; /* out */
};

struct smtpc_msg {
    const char *sender; /* "" for <> */
    const char *envid;  /* DSN ENVID (xtext), or NULL */
    const char *ret;    /* DSN RET ("FULL"/"HDRS"), or NULL */
    bool eightbit, smtputf8;
    bool requiretls; /* RFC 8689: MAIL ... REQUIRETLS; a server without it: every
                      * recipient fails 5.7.30 before MAIL */
    bool xverp;      /* MAIL ... XVERP when the server announced it (Postfix's extension:
                      * the server writes each recipient's VERP sender), else plain MAIL */
    struct smtpc_rcpt *rcpt;
    size_t nrcpt;
    /* XHEADER= of recipient i (its own header fields as xtext, dsmtp's extension) into
     * buf[len]: its length, 0 for none (or too long for len). Asked for only when the
     * server announced XHEADER, while RCPT is written. NULL: nobody has any. */
    size_t (*xheader)(void *arg, size_t i, char *buf, size_t len);
    void *xheader_arg;
    const char *head; /* header lines (LF-ended) sent above text, or NULL: this copy's own */
    size_t head_len;
    const char *text; /* headers + body, LF line ends */
    size_t len;
    char **pool; /* smtpc's: the texts of the recipients' replies (smtpc_msg_clear) */
    size_t npool;
};

struct smtpc;

typedef void (*smtpc_ready_cb)(struct smtpc *c, void *arg, const struct smtpc_info *info);
/* done - the transaction ended; m->rcpt[i].reply filled for every i. broken: the
 * connection cannot carry another transaction. */
typedef void (*smtpc_done_cb)(struct smtpc *c, void *arg, struct smtpc_msg *m, bool broken);

/* smtpc_open - connect to ip:port and set up the session; NULL with err when the
 * connection cannot even start (bad address). */
struct smtpc *smtpc_open(struct net_server *net, const char *ip, int port,
                         const struct smtpc_opts *o, smtpc_ready_cb ready, void *arg, char *err,
                         size_t errlen);
/* smtpc_send - one transaction on a ready session; m stays the caller's and must live
 * until done. -1 when the session is not ready for one (busy, failed, closed). */
int smtpc_send(struct smtpc *c, struct smtpc_msg *m, smtpc_done_cb done, void *arg);
/* smtpc_msg_clear - free the texts of m's recipients' replies (after done has read them;
 * smtpc_send clears them too). */
void smtpc_msg_clear(struct smtpc_msg *m);
/* smtpc_answer_reply - a as a whole reply (its text copied, cut at SMTPC_TEXT_MAX). */
void smtpc_answer_reply(const struct smtpc_answer *a, struct smtpc_reply *r);
/* smtpc_close - QUIT (when the session is usable) and free; no callback afterwards (a
 * transaction in flight: its recipients' answers cleared, smtpc_msg_clear). */
void smtpc_close(struct smtpc *c);
/* smtpc_peer - "ip:port" of the server ("[ip]:port" for IPv6). */
const char *smtpc_peer(const struct smtpc *c);

#endif
