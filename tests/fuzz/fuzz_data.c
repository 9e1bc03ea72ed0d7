/*
 * fuzz_data - the DATA/BDAT scanner of dsmtp/data: the message bytes after 354 (or the BDAT
 * chunks) fed in one piece and again in random splits, strict and normalize mode, small
 * and large limits, with a memory budget.
 *
 * The first bytes choose: mode (DATA strict, DATA normalize, BDAT), max_size, max_line,
 * the budget and the split seed; the rest is the wire. Invariants:
 * - the split does not matter: same octets consumed, same errors, same message;
 * - DATA ends exactly at the first <CRLF>.<CRLF> (the DATA command's CRLF counts), and
 *   consumes nothing after it;
 * - the stored message never exceeds the buffer's limit, the budget's count is exact and
 *   back to 0 when the buffer is freed;
 * - a message without errors is exactly the reference: in DATA the lines up to the
 *   terminator with CRLF made LF and one leading dot removed; in BDAT the chunks with CRLF
 *   made LF and a last line end added.
 */
#include "../../dsmtp/data.h"
#include "fuzz_util.h"

#define PREFIX "Received: from fuzz\n"

struct run {
    size_t consumed;
    int errors;
    bool done;
    char *text;
    size_t len;
};

/* scan - the whole wire in pieces whose sizes come from seed (0: one piece). */
static void
scan(const char *wire, size_t n, int mode, unsigned long long max_size, size_t max_line,
     unsigned long long budget_max, uint32_t seed, struct run *out)
{
    struct data_budget budget = {.max = budget_max};
    struct data_rx rx;
    size_t off = 0;

    data_rx_init(&rx, mode == 1, max_size, max_line, PREFIX, &budget);
    if (mode == 2)
        data_rx_chunked(&rx);
    while (off < n && !rx.done) {
        size_t piece = n - off;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 17;
            if (piece > n - off)
                piece = n - off;
        }
        size_t k = data_rx_feed(&rx, wire + off, piece);
        fuzz_check(k <= piece);
        if (k < piece)
            fuzz_check(rx.done); /* only the terminator stops the scanner early */
        off += k;
        if (rx.text != NULL) {
            fuzz_check(rx.len <= rx.limit && rx.len <= rx.size);
            fuzz_check(rx.len >= rx.prefix_len);
        }
        fuzz_check(budget.used == rx.charged);
        fuzz_check(budget.max == 0 || budget.used <= budget.max);
    }
    if (mode == 2) {
        data_rx_finish(&rx);
        fuzz_check(rx.done);
        fuzz_check(budget.used == rx.charged);
    }
    out->consumed = off;
    out->errors = rx.errors;
    out->done = rx.done;
    out->text = NULL;
    out->len = 0;
    if (rx.errors == 0) {
        fuzz_check(rx.text != NULL && rx.len >= strlen(PREFIX));
        fuzz_check(memcmp(rx.text, PREFIX, strlen(PREFIX)) == 0);
        /* what is stored is never more than came in, but for BDAT's added last LF */
        fuzz_check(rx.len - strlen(PREFIX) <= max_size + (mode == 2));
        size_t len;
        char *t = data_rx_take(&rx, &len);
        fuzz_check(budget.used == 0);
        out->len = len - strlen(PREFIX);
        out->text = malloc(out->len + 1);
        if (out->text == NULL)
            abort();
        memcpy(out->text, t + strlen(PREFIX), out->len);
        free(t);
    }
    data_rx_free(&rx);
    fuzz_check(budget.used == 0);
}

/* reference - the message the wire should give (no errors assumed): LF line ends, in DATA
 * one leading dot off each line and the end at the terminator. *consumed, *done as the
 * scanner should report them. Returns a malloc'd text of *len octets. */
static char *
reference(const char *w, size_t n, bool chunked, size_t *len, size_t *consumed, bool *done)
{
    char *t = malloc(n + 2);
    size_t o = 0, i = 0;

    if (t == NULL)
        abort();
    *done = false;
    while (i < n) {
        /* one line: [i, e) then CRLF (or the end of the wire) */
        size_t e = i;
        while (e + 1 < n && !(w[e] == '\r' && w[e + 1] == '\n'))
            e++;
        bool crlf = e + 1 < n;
        if (!crlf) {
            e = n;
            if (!chunked && e > i && w[e - 1] == '\r')
                e--; /* a CR waiting for its LF is not stored yet */
        }
        if (!chunked && crlf && e - i == 1 && w[i] == '.') {
            *done = true;
            i = e + 2;
            break;
        }
        size_t from = i;
        if (!chunked && e > i && w[i] == '.')
            from++;
        memcpy(t + o, w + from, e - from);
        o += e - from;
        if (crlf || chunked)
            t[o++] = '\n';
        i = crlf ? e + 2 : n;
    }
    *len = o;
    *consumed = i;
    return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_src src = {data, size};
    uint8_t b0 = fuzz_byte(&src), b1 = fuzz_byte(&src), b2 = fuzz_byte(&src);
    uint8_t b3 = fuzz_byte(&src), b4 = fuzz_byte(&src);
    int mode = b0 % 3;
    unsigned long long max_size = (b1 & 0x80) ? 1u << 20 : b1;
    size_t max_line = (b2 & 0x80) ? DATA_LINE_LIMIT : (size_t)b2 + 1;
    unsigned long long budget_max = (b3 & 0x80) ? 0 : (unsigned long long)b3 * 64;
    uint32_t seed = ((uint32_t)b4 << 8) | 1;
    const char *wire = (const char *)src.p;
    size_t n = src.n;
    struct run whole, split;

    scan(wire, n, mode, max_size, max_line, budget_max, 0, &whole);
    scan(wire, n, mode, max_size, max_line, budget_max, seed, &split);
    fuzz_check(whole.consumed == split.consumed);
    fuzz_check(whole.errors == split.errors);
    fuzz_check(whole.done == split.done);
    fuzz_check(whole.len == split.len);
    fuzz_check(whole.len == 0 || memcmp(whole.text, split.text, whole.len) == 0);

    if (mode != 2) {
        /* the message ends at the first CRLF.CRLF, the 354's CRLF counting as the first */
        size_t end = 0;
        bool found = false;
        for (size_t i = 0; i + 3 <= n; i++) {
            bool after_crlf = i == 0 || (i >= 2 && wire[i - 2] == '\r' && wire[i - 1] == '\n');
            if (after_crlf && memcmp(wire + i, ".\r\n", 3) == 0) {
                end = i + 3;
                found = true;
                break;
            }
        }
        fuzz_check(whole.done == found);
        fuzz_check(whole.consumed == (found ? end : n));
    }
    if (whole.errors == 0) {
        size_t rlen, rconsumed;
        bool rdone;
        char *ref = reference(wire, whole.consumed, mode == 2, &rlen, &rconsumed, &rdone);
        if (mode != 1) {
            /* strict mode without errors: no bare CR or LF, every line ends in CRLF */
            fuzz_check(rlen == whole.len && memcmp(ref, whole.text, rlen) == 0);
        }
        if (mode == 0) {
            fuzz_check(rdone == whole.done && rconsumed == whole.consumed);
        }
        free(ref);
    }
    free(whole.text);
    free(split.text);
    return 0;
}
