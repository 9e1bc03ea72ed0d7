/*
 * fuzz_dsn - delivery status notifications: the DSN parameters (common/mail/dsnparam:
 * NOTIFY, RET, ENVID, ORCPT, xtext) and a report composed by common/mail/dsn from values a
 * remote server or client controls (ENVID, ORCPT, diagnostic, remote MTA, status, the
 * original message). The input is fields separated by NUL bytes, the last the message.
 * Invariants: NOTIFY formats back to what parses the same; a composed report is
 * NUL-free, no line is longer than DSN_LINE_MAX, and it is 7-bit unless it says 8bit.
 */
#include "../../common/mail/dsn.h"
#include "../../common/mail/dsnparam.h"
#include "fuzz_util.h"

#define NFIELDS 6

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_src src = {data, size};
    uint8_t flags = fuzz_byte(&src);
    char *buf = fuzz_cstr(src.p, src.n);
    const char *f[NFIELDS] = {"", "", "", "", "", ""};
    const char *why;
    size_t off = 0;
    int notify;

    /* fields: envid, orcpt, diagnostic, remote_mta, status, final_rcpt; then the text */
    for (int i = 0; i < NFIELDS && off < src.n; i++) {
        f[i] = buf + off;
        off += strlen(buf + off) + 1;
    }
    const char *text = off < src.n ? buf + off : "";
    size_t text_len = off < src.n ? src.n - off : 0;

    for (int i = 0; i < NFIELDS; i++) {
        size_t n = strlen(f[i]);
        char out[DSNPARAM_NOTIFY_TEXT], x[2048];
        if (dsnparam_notify_parse(f[i], n, &notify, &why) == 0) {
            int again;
            fuzz_check(dsnparam_notify_valid(notify));
            dsnparam_notify_format(notify, flags & 1, out, sizeof out);
            fuzz_check(dsnparam_notify_parse(out, strlen(out), &again, &why) == 0);
            fuzz_check(again == notify);
        }
        enum dsn_ret r = dsnparam_ret_parse(f[i], n);
        fuzz_check(r == DSN_RET_UNSET || dsnparam_ret_name(r, flags & 1) != NULL);
        (void)dsnparam_envid_check(f[i], n, &why);
        (void)dsnparam_orcpt_check(f[i], n, &why);
        if (dsnparam_xtext_encode(f[i], x, sizeof x) == 0)
            fuzz_check(strlen(x) < sizeof x);
    }
    (void)dsn_bounceable(f[5], text, text_len);

    struct dsn_rcpt rc[2] = {
        {
            .final_rcpt = f[5][0] != '\0' ? f[5] : "bob@example.net",
            .orcpt = dsnparam_orcpt_check(f[1], strlen(f[1]), &why) == 0 ? f[1] : NULL,
            .action = (enum dsn_action)((flags >> 1) % 5),
            .status = f[4],
            .remote_mta = f[3][0] != '\0' ? f[3] : NULL,
            .diagnostic = f[2][0] != '\0' ? f[2] : NULL,
            .last_attempt = (flags & 16) ? 1700000000 : 0,
            .retry_until = (flags & 32) ? 1700400000 : 0,
        },
        {
            .final_rcpt = "carol@example.net",
            .action = DSN_DELAYED,
            .status = "4.4.1",
            .diagnostic = f[2],
        },
    };
    struct dsn_msg m = {
        .hostname = "mail.example.org",
        .postmaster = "MAILER-DAEMON@mail.example.org",
        .to = "alice@example.org",
        .envid = dsnparam_envid_check(f[0], strlen(f[0]), &why) == 0 ? f[0] : NULL,
        .ret = (enum dsn_ret)((flags >> 6) % 3),
        .bounce_body = flags & 1,
        .arrival = 1699990000,
        .now = 1700000000,
        .id = "1700000000.A1b2.node",
        .rcpt = rc,
        .nrcpt = (flags & 128) ? 2 : 1,
        .text = text,
        .text_len = text_len,
    };
    struct dsn_out out = {0};
    char err[256];
    if (dsn_compose(&m, &out, err, sizeof err) == 0) {
        fuzz_check(out.text != NULL && strlen(out.text) == out.len);
        size_t col = 0;
        for (size_t i = 0; i < out.len; i++) {
            unsigned char c = (unsigned char)out.text[i];
            fuzz_check(out.eightbit || c < 128);
            fuzz_check(c != '\r');
            if (c == '\n') {
                col = 0;
            } else {
                col++;
                fuzz_check(col <= DSN_LINE_MAX);
            }
        }
        dsn_out_free(&out);
    } else {
        fuzz_check(out.text == NULL);
    }
    free(buf);
    return 0;
}
