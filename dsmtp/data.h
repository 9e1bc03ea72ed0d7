/*
 * data - the DATA phase: a streaming scanner that turns the bytes after "354" into the
 * message in local form, and the Received: trace header.
 *
 * Contract:
 * - Owns: struct data_rx and its message buffer (data_rx_free releases it, data_rx_take
 *   hands the buffer over).
 * - Blocks on: nothing; pure functions, no I/O.
 * - The message ends ONLY at <CRLF>.<CRLF> (the first CRLF may be the one that ended the
 *   DATA command). Bare CR and bare LF never end a line that could start the terminator:
 *   `<LF>.<LF>`, `<LF>.<CRLF>`, `<CR>.<CR>`, `<CRLF>.<CR><CR><LF>` never end the message.
 * - Strict mode (default, bare_newline reject): a bare CR or LF marks the message
 *   DATA_ERR_BARE; scanning goes on to the real terminator and the message is refused.
 *   Normalize mode (bare_newline normalize, forward_from_ip clients only): a bare CR or LF
 *   is a line end; the line after it is taken literally (no dot-unstuffing), so only a
 *   real <CRLF>.<CRLF> ends the message.
 * - Dot-unstuffing: a line that begins (after CRLF) with "." loses that first dot.
 * - Chunked mode (BDAT, RFC 3030; data_rx_chunked after data_rx_init): no terminator and no
 *   dot-unstuffing, the caller counts the octets; line ends, bare CR/LF, NUL and the limits
 *   are as above, so a message stores the same by BDAT as by DATA. A CRLF may be split
 *   between chunks. data_rx_finish ends the message: a CR still waiting for its LF is bare,
 *   and a last line without a line end gets one (the local form ends every line with LF).
 * - Spilling (large messages, so that a session holds tens of KB whatever the message's
 *   size): once the stored octets reach DATA_SPILL_AT, the caller moves everything after
 *   the first DATA_SPILL_KEEP octets (prefix and header, normally) to a spill file
 *   (data_rx_spill_part, then data_rx_spilled) and feeds no more than
 *   data_rx_feed_room allows meanwhile; at the end the message is the kept head, the
 *   spill file and what came after (data_rx_unspill). max_size counts the spilled octets.
 * - Limits: a text line over max_line octets (CRLF not counted) is DATA_ERR_LONG. dsmtp
 *   gives DATA_LINE_LIMIT (64 KiB), far above RFC 5321's 1000 with CRLF (DATA_MAX_LINE),
 *   as Postfix's line_length_limit lets real-world mail through; outbound delivery folds
 *   lines longer than DATA_MAX_LINE (RFC 5322 2.1.1); more
 *   than max_size octets received is DATA_ERR_SIZE; a NUL byte is DATA_ERR_NUL. After the
 *   first error nothing more is stored (memory stays bounded by max_size + prefix), but
 *   the scanner keeps consuming until the terminator so the session stays in sync.
 */
#ifndef DSMTP_DATA_H
#define DSMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum {
    DATA_ERR_BARE = 1, /* bare CR or LF in strict mode */
    DATA_ERR_NUL = 2,
    DATA_ERR_LONG = 4,
    DATA_ERR_SIZE = 8,
    DATA_ERR_HOPS = 16, /* more Received: fields than hopcount_limit (command.c) */
    DATA_ERR_MEM = 32,  /* the buffer would take the budget past its max: try later */
    DATA_ERR_DISK = 64, /* the spill file could not be written: try later */
};

#define DATA_SPILL_KEEP 16384 /* octets of a large message that stay in memory */
#define DATA_SPILL_AT 49152   /* stored octets from which the rest goes to the spill file */

/* data_budget - the octets all message buffers of a process hold together (dsmtp's
 * data_memory_max). A buffer grows only while the sum stays within max; a message whose
 * buffer cannot grow is DATA_ERR_MEM, its buffer is released at once and scanning goes
 * on to the terminator (so the session stays in sync), storing nothing. A buffer's charge
 * is returned when it is freed or handed over (data_rx_take). */
struct data_budget {
    unsigned long long max;     /* 0: no limit */
    unsigned long long used;    /* octets charged now */
    unsigned long long refused; /* messages refused with DATA_ERR_MEM */
};

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including its CRLF */
#define DATA_MAX_LINE 998
/* what dsmtp accepts in a line (CRLF not counted) before it refuses the message */
#define DATA_LINE_LIMIT 65536

struct data_rx {
    bool normalize;
    unsigned long long max_size; /* octets the client may send */
    size_t max_line;
    char *text; /* prefix + message, LF line ends (not NUL-terminated) */
    size_t len, size, limit;
    size_t prefix_len;
    unsigned long long spilled; /* octets moved to the spill file (after DATA_SPILL_KEEP) */
    struct data_budget *budget; /* NULL: none */
    size_t charged;             /* octets of budget this buffer holds */
    unsigned long long wire;    /* octets consumed so far */
    int errors;                 /* DATA_ERR_* */
    bool done;                  /* the terminator was seen (chunked: data_rx_finish) */
    bool chunked;               /* BDAT: no terminator, no dot-unstuffing */
    struct dkim_body *dkim;     /* NULL, or fed every octet stored (not owned; dkim_sign.h) */
    /* scanner state */
    bool bol;       /* at the start of a line that followed a CRLF */
    bool cr;        /* the last byte was a CR; its LF has not come yet */
    bool dot;       /* the line began with a "." that is not stored yet */
    size_t linelen; /* octets of the current line so far */
};

/* data_rx_init - start a message; prefix (may be NULL) is stored first (the Received:
 * header) and not counted against max_size. budget (may be NULL) is charged for the
 * buffer as it grows. */
void data_rx_init(struct data_rx *rx, bool normalize, unsigned long long max_size, size_t max_line,
                  const char *prefix, struct data_budget *budget);
/* data_rx_feed - scan n bytes; returns how many were consumed. When the terminator is
 * seen, rx->done is set and the bytes after it are not consumed (they are the next
 * command, pipelined). */
size_t data_rx_feed(struct data_rx *rx, const char *p, size_t n);
/* data_rx_feed_room - how many more octets the caller may feed before it must spill
 * (stored octets never pass DATA_SPILL_AT + 1 line end). */
size_t data_rx_feed_room(const struct data_rx *rx);
/* data_rx_spill_due - the stored octets reached DATA_SPILL_AT (and nothing is wrong). */
bool data_rx_spill_due(const struct data_rx *rx);
/* data_rx_spill_part - the octets to spill now: text + DATA_SPILL_KEEP, *n of them. */
const char *data_rx_spill_part(const struct data_rx *rx, size_t *n);
/* data_rx_spilled - they are copied away: forget them (rx->spilled grows). */
void data_rx_spilled(struct data_rx *rx);
/* data_rx_unspill - the whole message from head (the taken buffer of a scanner that
 * spilled: head_len >= DATA_SPILL_KEEP) and the spill file's octets mid (mid_len): a new
 * buffer (malloc'd), *len its length. */
char *data_rx_unspill(const char *head, size_t head_len, const char *mid, size_t mid_len,
                      size_t *len);
/* data_rx_chunked - switch a freshly initialized scanner to chunked mode (BDAT). */
void data_rx_chunked(struct data_rx *rx);
/* data_rx_finish - the last chunk is in: settle a pending CR, end an open last line and
 * set rx->done. */
void data_rx_finish(struct data_rx *rx);
/* data_hops - the Received: fields in the header of text (LF line ends, the header ends
 * at the first empty line): the hops the message has made (RFC 5321 6.3). */
int data_hops(const char *text, size_t len);
/* data_rx_take - hand over the message buffer (*len gets its length); rx is then empty
 * and the buffer no longer counts against the budget. */
char *data_rx_take(struct data_rx *rx, size_t *len);
void data_rx_free(struct data_rx *rx);

/* data_received - format the Received: header of RFC 5321 4.4 (LF line ends, folded)
 * into buf:
 *   Received: from HELO ([IP])                -- [IPv6:addr] for IPv6 clients
 *   \tby HOSTNAME (dsmtp) with PROTO id ID     -- ID must be an atom (no dots)
 *   \t(TLS)                                   -- only if tls is not ""
 *   \tfor <RCPT>; DATE                        -- "for" only if rcpt is not NULL
 * A HELO that is neither a domain nor an address literal becomes
 * "from [IP]\n\t(HELO text)" with ( ) \\ in text replaced by '?'. helo must already be
 * printable ASCII. Returns the length or -1 if it does not fit. */
int data_received(char *buf, size_t len, const char *helo, const char *ip, const char *host,
                  const char *proto, const char *id, const char *tls, const char *rcpt,
                  time_t when);

/* data_received_ptr - the same with the client's PTR name (from rdns, a plain host name;
 * NULL: none): "from HELO (PTR [IP])" (RFC 5321 4.4 TCP-info). */
int data_received_ptr(char *buf, size_t len, const char *helo, const char *ip, const char *ptr,
                      const char *host, const char *proto, const char *id, const char *tls,
                      const char *rcpt, time_t when);

/* data_rfc5322_date - "Tue, 25 Nov 2026 09:04:58 +0000" (local time) into buf. */
char *data_rfc5322_date(char *buf, size_t len, time_t when);

#endif
