/*
 * milter_pkt - framing and decoding of milter protocol packets. See milter_pkt.h.
 */
#include "milter_pkt.h"

#include <string.h>

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

long
milter_pkt_take(const uint8_t *in, size_t len, size_t max, struct milter_pkt *out)
{
    if (len < 4)
        return 0;
    uint32_t n = get32(in);
    if (n == 0 || n > max)
        return -1;
    if (len - 4 < n)
        return 0;
    out->cmd = in[4];
    out->data = in + 5;
    out->len = n - 1;
    return (long)n + 4;
}

void
milter_pkt_head(uint8_t out[5], uint8_t cmd, size_t datalen)
{
    put32(out, (uint32_t)(datalen + 1));
    out[4] = cmd;
}

void
milter_pkt_optneg(uint8_t out[13], uint32_t version, uint32_t actions, uint32_t proto)
{
    put32(out, version);
    put32(out + 4, actions);
    put32(out + 8, proto);
}

bool
milter_pkt_optneg_parse(const struct milter_pkt *p, uint32_t *version, uint32_t *actions,
                        uint32_t *proto)
{
    if (p->cmd != SMFIC_OPTNEG || p->len < 12)
        return false;
    *version = get32(p->data);
    *actions = get32(p->data + 4);
    *proto = get32(p->data + 8);
    return *version >= 2;
}

/* The string starting at off, if a NUL ends it inside the data. */
static const char *
str_at(const struct milter_pkt *p, size_t off, size_t *next)
{
    if (off >= p->len)
        return NULL;
    const uint8_t *nul = memchr(p->data + off, 0, p->len - off);
    if (!nul)
        return NULL;
    *next = (size_t)(nul - p->data) + 1;
    return (const char *)p->data + off;
}

bool
milter_pkt_replycode(const struct milter_pkt *p, int *code, const char **text)
{
    size_t next;
    const char *s = str_at(p, 0, &next);
    if (!s || strlen(s) < 3)
        return false;
    if ((s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return false;
    if (s[3] != ' ' && s[3] != '-' && s[3] != '\0')
        return false;
    *code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    *text = s[3] ? s + 4 : s + 3;
    return true;
}

bool
milter_pkt_header(const struct milter_pkt *p, struct milter_hdr *h)
{
    size_t off = 0, next;
    h->index = 0;
    if (p->cmd == SMFIR_CHGHEADER || p->cmd == SMFIR_INSHEADER) {
        if (p->len < 4)
            return false;
        h->index = get32(p->data);
        off = 4;
    } else if (p->cmd != SMFIR_ADDHEADER) {
        return false;
    }
    h->name = str_at(p, off, &next);
    if (!h->name || !*h->name)
        return false;
    h->value = str_at(p, next, &next);
    return h->value != NULL;
}

bool
milter_pkt_str(const struct milter_pkt *p, const char **s)
{
    size_t next;
    *s = str_at(p, 0, &next);
    return *s != NULL;
}

void
milter_out_begin(struct milter_out *o, uint8_t *buf, size_t cap, uint8_t cmd)
{
    *o = (struct milter_out){.buf = buf, .cap = cap, .len = 0, .overflow = cap < 5};
    if (!o->overflow) {
        buf[4] = cmd;
        o->len = 5;
    }
}

void
milter_out_bytes(struct milter_out *o, const void *p, size_t n)
{
    if (o->overflow || o->cap - o->len < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

void
milter_out_str(struct milter_out *o, const char *s)
{
    milter_out_bytes(o, s, strlen(s) + 1);
}

size_t
milter_out_end(struct milter_out *o)
{
    if (o->overflow || o->len - 4 > MILTER_LEN_MAX)
        return 0;
    put32(o->buf, (uint32_t)(o->len - 4));
    return o->len;
}

size_t
milter_pkt_connect(uint8_t *buf, size_t cap, const char *name, char family, uint16_t port,
                   const char *addr)
{
    struct milter_out o;
    milter_out_begin(&o, buf, cap, SMFIC_CONNECT);
    milter_out_str(&o, name);
    milter_out_bytes(&o, &family, 1);
    if (family != 'U') {
        uint8_t p[2] = {(uint8_t)(port >> 8), (uint8_t)port};
        milter_out_bytes(&o, p, 2);
        milter_out_str(&o, addr);
    }
    return milter_out_end(&o);
}
