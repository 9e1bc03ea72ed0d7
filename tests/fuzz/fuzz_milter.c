/*
 * fuzz_milter - what dsmtp's milter client reads from a content filter
 * (dsmtp/milter_pkt.c) and what it does with the changes (dsmtp/milter_edit.c): the
 * input is a stream of packets, framed and decoded by command (option negotiation, reply
 * code, header changes, body replacement, recipient strings), the changes applied to a
 * message made of the same bytes.
 * Invariants: a framed packet lies inside the input; decoded strings end inside their
 * packet; the changed message keeps an empty line between header and body, ends with a
 * line end unless its body is empty, and only grows by what the changes bring.
 */
#include "../../dsmtp/milter_edit.h"
#include "../../dsmtp/milter_pkt.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct milter_edits ed = {0};
    size_t off = 0, added = 0;

    while (off < size) {
        struct milter_pkt p;
        struct milter_hdr h;
        uint32_t v, a, pr;
        const char *text;
        int code;
        long n = milter_pkt_take(data + off, size - off, 4096, &p);
        if (n <= 0)
            break;
        fuzz_check((size_t)n <= size - off && p.data + p.len <= data + size);
        off += (size_t)n;
        switch (p.cmd) {
        case SMFIC_OPTNEG:
            if (milter_pkt_optneg_parse(&p, &v, &a, &pr))
                fuzz_check(v >= 2);
            break;
        case SMFIR_REPLYCODE:
            if (milter_pkt_replycode(&p, &code, &text)) {
                fuzz_check(code >= 400 && code <= 599);
                fuzz_check(text >= (const char *)p.data &&
                           text + strlen(text) < (const char *)p.data + p.len);
            }
            break;
        case SMFIR_ADDHEADER:
        case SMFIR_INSHEADER:
        case SMFIR_CHGHEADER:
            if (milter_pkt_header(&p, &h) && ed.n < 64) {
                milter_edits_header(&ed,
                                    p.cmd == SMFIR_ADDHEADER   ? ME_ADD
                                    : p.cmd == SMFIR_INSHEADER ? ME_INSERT
                                                               : ME_CHANGE,
                                    h.index % 8, h.name, h.value);
                added += strlen(h.name) + strlen(h.value) + 3;
            }
            break;
        case SMFIR_REPLBODY:
            milter_edits_body(&ed, (const char *)p.data, p.len);
            added += p.len + 1;
            break;
        default:
            if (milter_pkt_str(&p, &text))
                fuzz_check(text + strlen(text) < (const char *)p.data + p.len);
            break;
        }
    }
    /* the same bytes as a message (LF line ends), changed */
    size_t outlen;
    char *out = milter_edit_apply((const char *)data, size, &ed, size % 2 == 1, &outlen);
    fuzz_check(outlen <= size + added + 2);
    fuzz_check(outlen >= 1);
    struct milter_field f;
    size_t hoff = 0, body;
    while (milter_field_next(out, outlen, hoff, &f, &body)) {
        fuzz_check(f.start < f.value && f.value <= f.end && f.end <= outlen);
        hoff = f.end;
    }
    fuzz_check(body <= outlen);
    free(out);
    milter_edits_clear(&ed);
    return 0;
}
