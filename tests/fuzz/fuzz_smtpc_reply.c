/*
 * fuzz_smtpc_reply - what dsmtp's SMTP client reads from a remote server
 * (dsmtp/smtpc_reply.c): reply lines one after the other (multi-line replies, enhanced
 * status codes) and EHLO keywords; and, on the same bytes as a message text, the encoder
 * that puts a message on the wire.
 * Invariants: a complete reply has a code 200..599 and a text without control bytes that
 * fits its field; the encoder always ends with ".\r\n", makes no wire line longer than
 * SMTPC_LINE_MAX octets, and every line that starts with '.' was stuffed.
 */
#include "smtpc_int.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    struct smtpc_rx rx = {0};
    struct smtpc_info info;
    unsigned ext = 0;
    size_t off = 0;

    memset(&info, 0, sizeof info);
    while (off < size) {
        char *line = text + off, *nl = memchr(line, '\n', size - off);
        size_t len = nl != NULL ? (size_t)(nl - line) : size - off;
        off += len + 1;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        char save = line[len];
        line[len] = '\0';
        const char *t = NULL;
        int rc = smtpc_reply_line(&rx, line, len, &t);
        fuzz_check(rc >= -1 && rc <= 1);
        if (rc == 1) {
            fuzz_check(rx.r.code >= 200 && rx.r.code <= 599);
            size_t tl = strnlen(rx.r.text, sizeof rx.r.text);
            fuzz_check(tl < sizeof rx.r.text);
            for (size_t i = 0; i < tl; i++)
                fuzz_check((unsigned char)rx.r.text[i] >= 0x20 && rx.r.text[i] != 0x7f);
        }
        if (rc == -1)
            memset(&rx, 0, sizeof rx);
        if (t != NULL)
            smtpc_ehlo_line(&info, &ext, t);
        line[len] = save;
    }

    /* the same bytes as a message text, encoded in small pieces */
    struct smtpc_enc e = {0};
    char out[64];
    size_t col = 0, total = 0, unstuffed = 0, unstuffed_at = 0;
    bool bol = true, dot_first = false;
    char last[3] = {0, 0, 0};
    while (!e.done) {
        size_t k = smtpc_enc_chunk(&e, text, size, out, sizeof out);
        fuzz_check(k <= sizeof out);
        fuzz_check(k > 0 || e.done);
        for (size_t i = 0; i < k; i++, total++) {
            char c = out[i];
            if (dot_first && c != '.') {
                unstuffed++; /* a line starting with a lone '.': only the terminator may */
                unstuffed_at = total - 1;
            }
            dot_first = bol && c == '.';
            if (c == '\n') {
                col = 0;
                bol = true;
            } else {
                bol = false;
                if (c != '\r')
                    col++;
                fuzz_check(col <= SMTPC_LINE_MAX);
            }
            last[0] = last[1];
            last[1] = last[2];
            last[2] = c;
        }
        fuzz_check(total <= 3 * size + 64); /* bounded growth: it terminates */
    }
    fuzz_check(memcmp(last, ".\r\n", 3) == 0);
    fuzz_check(unstuffed == 1 && unstuffed_at == total - 3);
    free(text);
    return 0;
}
