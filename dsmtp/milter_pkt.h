/*
 * milter_pkt - the packets of the sendmail/Postfix milter protocol, version 6: framing,
 * option negotiation and the filter's replies, as plain bytes (no I/O).
 *
 * Contract:
 * - Owns: nothing. Every function works on caller's buffers; a decoded packet points into
 *   the input buffer and is valid as long as that buffer is.
 * - Blocks on: nothing.
 * - A packet on the wire is a 4-octet big-endian length (counting the command octet),
 *   one command octet, then length-1 octets of data. A length of 0 or above the caller's
 *   limit is a protocol error (the filter is treated as failed), never a huge allocation.
 * - Strings in replies must be NUL-terminated inside the packet; a reply that is not is
 *   refused by its decoder (returns false), never read past its end.
 */
#ifndef DSMTP_MILTER_PKT_H
#define DSMTP_MILTER_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MILTER_VERSION 6
#define MILTER_LEN_MAX (1u << 20) /* largest packet we take from a filter */
#define MILTER_CHUNK 65535u       /* largest body chunk we send (MILTER_CHUNK_SIZE) */

/* Commands (MTA to filter). */
enum {
    SMFIC_ABORT = 'A',
    SMFIC_BODY = 'B',
    SMFIC_CONNECT = 'C',
    SMFIC_MACRO = 'D',
    SMFIC_BODYEOB = 'E',
    SMFIC_HELO = 'H',
    SMFIC_QUIT_NC = 'K',
    SMFIC_HEADER = 'L',
    SMFIC_MAIL = 'M',
    SMFIC_EOH = 'N',
    SMFIC_OPTNEG = 'O',
    SMFIC_QUIT = 'Q',
    SMFIC_RCPT = 'R',
    SMFIC_DATA = 'T',
    SMFIC_UNKNOWN = 'U',
};

/* Replies and modifications (filter to MTA). */
enum {
    SMFIR_ADDRCPT = '+',
    SMFIR_DELRCPT = '-',
    SMFIR_ADDRCPT_PAR = '2',
    SMFIR_SHUTDOWN = '4',
    SMFIR_ACCEPT = 'a',
    SMFIR_REPLBODY = 'b',
    SMFIR_CONTINUE = 'c',
    SMFIR_DISCARD = 'd',
    SMFIR_CHGFROM = 'e',
    SMFIR_CONN_FAIL = 'f',
    SMFIR_ADDHEADER = 'h',
    SMFIR_INSHEADER = 'i',
    SMFIR_SETSYMLIST = 'l',
    SMFIR_CHGHEADER = 'm',
    SMFIR_PROGRESS = 'p',
    SMFIR_QUARANTINE = 'q',
    SMFIR_REJECT = 'r',
    SMFIR_SKIP = 's',
    SMFIR_TEMPFAIL = 't',
    SMFIR_REPLYCODE = 'y',
};

/* Actions a filter may ask for (SMFIF_*). */
enum {
    SMFIF_ADDHDRS = 0x01,
    SMFIF_CHGBODY = 0x02,
    SMFIF_ADDRCPT = 0x04,
    SMFIF_DELRCPT = 0x08,
    SMFIF_CHGHDRS = 0x10,
    SMFIF_QUARANTINE = 0x20,
    SMFIF_CHGFROM = 0x40,
    SMFIF_ADDRCPT_PAR = 0x80,
    SMFIF_SETSYMLIST = 0x100,
};
/* What we offer: all of the above but CHGFROM, ADDRCPT_PAR and SETSYMLIST. */
#define MILTER_ACTIONS                                                                             \
    (SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS |               \
     SMFIF_QUARANTINE)

/* Protocol steps a filter may skip or not answer (SMFIP_*). */
enum {
    SMFIP_NOCONNECT = 0x01,
    SMFIP_NOHELO = 0x02,
    SMFIP_NOMAIL = 0x04,
    SMFIP_NORCPT = 0x08,
    SMFIP_NOBODY = 0x10,
    SMFIP_NOHDRS = 0x20,
    SMFIP_NOEOH = 0x40,
    SMFIP_NR_HDR = 0x80,
    SMFIP_NOUNKNOWN = 0x100,
    SMFIP_NODATA = 0x200,
    SMFIP_SKIP = 0x400,
    SMFIP_RCPT_REJ = 0x800,
    SMFIP_NR_CONN = 0x1000,
    SMFIP_NR_HELO = 0x2000,
    SMFIP_NR_MAIL = 0x4000,
    SMFIP_NR_RCPT = 0x8000,
    SMFIP_NR_DATA = 0x10000,
    SMFIP_NR_UNKN = 0x20000,
    SMFIP_NR_EOH = 0x40000,
    SMFIP_NR_BODY = 0x80000,
    SMFIP_HDR_LEADSPC = 0x100000,
};
/* What we offer: every no-send and no-reply flag, SKIP and leading-space headers. */
#define MILTER_PROTOCOL 0x1fffffu

/* A packet taken from the input: cmd and its data (not NUL-terminated). */
struct milter_pkt {
    uint8_t cmd;
    const uint8_t *data;
    size_t len;
};

/* milter_pkt_take - frames one packet from in[0..len). Returns the octets it took (> 0),
 * 0 when more input is needed, -1 when the length is 0 or above max. */
long milter_pkt_take(const uint8_t *in, size_t len, size_t max, struct milter_pkt *out);

/* milter_pkt_head - writes the 5-octet header of a packet with cmd and datalen octets of
 * data into out[5]. */
void milter_pkt_head(uint8_t out[5], uint8_t cmd, size_t datalen);

/* milter_pkt_optneg - the 13-octet data of our SMFIC_OPTNEG (version, actions, protocol)
 * into out[13]. */
void milter_pkt_optneg(uint8_t out[13], uint32_t version, uint32_t actions, uint32_t proto);

/* milter_pkt_optneg_parse - the filter's SMFIC_OPTNEG answer: false when it is shorter than
 * 12 octets or its version is below 2. */
bool milter_pkt_optneg_parse(const struct milter_pkt *p, uint32_t *version, uint32_t *actions,
                             uint32_t *proto);

/* milter_pkt_replycode - SMFIR_REPLYCODE data "ddd text\0": the code (4xx or 5xx) and the
 * text after it (may span lines with "\r\n"). False when malformed. */
bool milter_pkt_replycode(const struct milter_pkt *p, int *code, const char **text);

/* A header modification: SMFIR_ADDHEADER (index 0), SMFIR_CHGHEADER and SMFIR_INSHEADER. */
struct milter_hdr {
    uint32_t index; /* CHGHEADER: 1-based occurrence; INSHEADER: position */
    const char *name;
    const char *value; /* CHGHEADER: "" deletes */
};

/* milter_pkt_header - decodes a header modification. False when malformed. */
bool milter_pkt_header(const struct milter_pkt *p, struct milter_hdr *h);

/* milter_pkt_str - the first NUL-terminated string of the data (ADDRCPT, DELRCPT,
 * QUARANTINE). False when none. */
bool milter_pkt_str(const struct milter_pkt *p, const char **s);

/* A packet being built in a caller's buffer: cap octets at buf, len used so far, and
 * overflow set (and nothing more written) once a field did not fit. */
struct milter_out {
    uint8_t *buf;
    size_t cap, len;
    bool overflow;
};

/* milter_out_begin - starts a packet with command cmd (the length is set by _end). */
void milter_out_begin(struct milter_out *o, uint8_t *buf, size_t cap, uint8_t cmd);
/* milter_out_str - appends s and its NUL. */
void milter_out_str(struct milter_out *o, const char *s);
/* milter_out_bytes - appends n raw octets. */
void milter_out_bytes(struct milter_out *o, const void *p, size_t n);
/* milter_out_end - writes the length; returns the packet's size, 0 on overflow. */
size_t milter_out_end(struct milter_out *o);

/* milter_pkt_connect - SMFIC_CONNECT: host name, family ('4', '6', 'L' or 'U'), port and
 * address, as Postfix sends them. Returns the size, 0 when cap is too small. */
size_t milter_pkt_connect(uint8_t *buf, size_t cap, const char *name, char family, uint16_t port,
                          const char *addr);

#endif
