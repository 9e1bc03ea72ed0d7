/*
 * chunk - BDAT (RFC 3030). See chunk.h for the contract.
 */
#include <stdio.h>
#include <string.h>

#include "chunk.h"
#include "command.h"
#include "log.h"
#include "logq.h"
#include "spill.h"

/* chunk_fail - the transaction's message is refused: drop what it holds, read and drop
 * its later chunks up to LAST. */
static void
chunk_fail(struct smtp_session *s)
{
    struct smtp_tx *tx = &s->tx;

    tx->bdat_failed = true;
    if (tx->rx_active)
        data_rx_free(&tx->rx); /* rx.wire stays for the log */
    sess_enter_state(&s->base, SS_BDAT);
}

/* chunk_check - syntax, then whether this chunk may go into a message. */
int
chunk_check(struct smtp_session *s, const char *args)
{
    struct smtp_chunk *c = &s->chunk;
    struct smtp_tx *tx = &s->tx;
    unsigned long long size, max = s->base.cf->max_msg_size;
    struct smtp_perr e;
    char esc[200];
    bool last;

    if (smtp_parse_bdat(args, &size, &last, &e) < 0) {
        logq_text(esc, sizeof(esc), args, strlen(args), 100);
        log_sess(LOGLVL_INFO, s->base.sid, "command-refused reason=bdat-syntax args=%s", esc);
        session_reply(s, e.code, e.ecode, "%s", e.text);
        sess_close(&s->base, "bdat-syntax");
        return -1;
    }
    *c = (struct smtp_chunk){.pending = true, .last = last, .size = size, .left = size};
    if (s->base.state == SS_CONNECTED) {
        session_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
        return -1;
    }
    if (s->base.state == SS_MAIL) {
        session_reply(s, 554, "5.5.1", "Error: no valid recipients");
        return -1;
    }
    if (s->base.state != SS_RCPT && s->base.state != SS_BDAT) {
        session_reply(s, 503, "5.5.1", "Error: need MAIL command");
        return -1;
    }
    if (tx->bdat_failed) { /* the refusal was counted: its echoes are not */
        session_reply(s, 551, "5.0.0", "Discarded %llu octets after earlier error", size);
        s->uncounted = true;
        return -1;
    }
    if (size == 0 && !last) {
        log_sess(LOGLVL_INFO, s->base.sid, "refused id=%s size=%llu reason=null-chunk", tx->id,
                 tx->rx.wire);
        session_reply(s, 551, "5.7.1", "Null BDAT request");
        chunk_fail(s);
        return -1;
    }
    if (size > max - (tx->rx.wire < max ? tx->rx.wire : max)) {
        log_sess(LOGLVL_INFO, s->base.sid, "refused id=%s size=%llu chunk=%llu reason=too-big",
                 tx->id, tx->rx.wire, size);
        session_reply(s, 552, "5.3.4", "Chunk exceeds message size limit");
        chunk_fail(s);
        return -1;
    }
    return 0;
}

/* chunk_proceed - the octets go into the message, which starts with the first chunk. */
void
chunk_proceed(struct smtp_session *s, const char *args)
{
    s->chunk.keep = true;
    if (!s->tx.rx_active) {
        command_data_begin(s);
        data_rx_chunked(&s->tx.rx);
    }
    sess_enter_state(&s->base, SS_BDAT);
}

/* chunk_end - the chunk's last octet is in: its reply, or the message's end. */
static enum sess_in
chunk_end(struct smtp_session *s)
{
    struct smtp_chunk *c = &s->chunk;
    struct smtp_tx *tx = &s->tx;

    c->active = false;
    net_set_timeout(s->base.conn, (uint64_t)s->base.cf->smtp_timeout * 1000);
    log_sess(LOGLVL_DEBUG, s->base.sid, "bdat size=%llu last=%d kept=%d", c->size, c->last,
             c->keep);
    if (!c->keep) { /* the reply was written by chunk_check */
        if (c->last && (s->base.state == SS_MAIL || s->base.state == SS_BDAT))
            session_tx_reset(s); /* LAST ends even a failed transaction */
        return SI_CMD;
    }
    if (c->last) {
        data_rx_finish(&tx->rx);
        command_data_end(s); /* refused, or delivery and the session waits */
        return SI_CMD;
    }
    if (tx->rx.errors != 0) {
        command_data_refuse(s, tx->rx.errors);
        chunk_fail(s);
        return SI_CMD;
    }
    session_reply(s, 250, "2.0.0", "%llu octets received", c->size);
    return SI_CMD;
}

/* chunk_begin - read the octets, unless there are none. */
enum sess_in
chunk_begin(struct smtp_session *s)
{
    struct smtp_chunk *c = &s->chunk;

    c->pending = false;
    if (c->left == 0)
        return chunk_end(s);
    c->active = true;
    net_set_timeout(s->base.conn, (uint64_t)s->base.cf->data_timeout * 1000);
    return SI_SKIP;
}

/* chunk_input - take what is there of the chunk (never more: what follows is the next
 * command). */
enum sess_in
chunk_input(struct smtp_session *s)
{
    struct smtp_chunk *c = &s->chunk;
    struct buf *in = net_inbuf(s->base.conn);
    size_t n = in->len < c->left ? in->len : (size_t)c->left;

    if (c->keep && spill_maybe(s)) /* a large message: its middle to the spill file */
        return SI_NONE;
    if (c->keep && n > data_rx_feed_room(&s->tx.rx))
        n = data_rx_feed_room(&s->tx.rx);
    if (n == 0 && c->left > 0)
        return SI_NONE;
    if (c->keep)
        data_rx_feed(&s->tx.rx, buf_peek(in), n);
    if (memchr(buf_peek(in), '\n', n) != NULL) /* progress: the deadline restarts */
        sess_progress(&s->base);
    buf_consume(in, n);
    c->left -= n;
    if (c->keep && c->left > 0 && spill_maybe(s))
        return SI_NONE;
    if (c->left > 0) /* input left over (a large message feeds in steps): go on with it */
        return n > 0 && in->len > 0 ? SI_SKIP : SI_NONE;
    return chunk_end(s);
}
