/*
 * fuzz_mbox - the mbox side of common/mail/dropview: the input as an mbox file, scanned
 * into messages (From_ lines, mboxrd quoting, X-UIDL, Status) and each message read back
 * whole; with the first byte odd, the input is instead the index file dropview keeps for
 * a mailbox (dv_index_load; mbox or, with bit 1, maildir) of the name "/fuzz/mbox".
 * Invariants: the messages' sizes add up to the total; the raw bytes read are those from
 * start to end; every UID is a valid POP3 unique-id.
 */
#include "../../common/mail/dropview_int.h"
#include "fuzz_util.h"

static void
view_check(struct dropview *v)
{
    unsigned long long sum = 0;
    size_t n = dropview_count(v);
    char buf[4096];

    for (size_t i = 0; i < n; i++) {
        const struct dropview_msg *m = dropview_msg(v, i);
        const char *uid = dropview_uid(v, i);
        fuzz_check(m != NULL && uid != NULL);
        fuzz_check(dv_uid_ok(uid, strlen(uid)));
        sum += m->size;
        fuzz_check(m->off <= m->start && m->start <= m->end && m->end <= m->next);
        unsigned long long pos = 0;
        long r = 1;
        for (int k = 0; k < 64 && r > 0; k++) {
            r = dropview_read(v, i, pos, buf, sizeof buf);
            fuzz_check(r <= (long)sizeof buf);
            if (r > 0)
                pos += (unsigned long long)r;
        }
        /* the raw bytes served are exactly those between start and end */
        fuzz_check(r != 0 || pos == m->end - m->start);
    }
    fuzz_check(sum == dropview_total(v));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_src src = {data, size};
    uint8_t mode = fuzz_byte(&src);
    struct dropview *v = NULL;
    char err[256], box[128];

    if ((mode & 1) == 0) {
        snprintf(box, sizeof box, "%s", fuzz_file("mbox", src.p, src.n));
        struct dropview_params p = {box, MBOX_FORMAT_MBOX, NULL, 1};
        if (dropview_open(&p, &v, err, sizeof err) == DROP_OK) {
            view_check(v);
            dropview_free(&v);
        }
        return 0;
    }
    /* the index names its mbox; only the name is compared, the file is not read */
    struct dropview_params p = {"/fuzz/mbox", (mode & 2) ? MBOX_FORMAT_MAILDIR : MBOX_FORMAT_MBOX,
                                NULL, 1};
    const char *idx = fuzz_file("index", src.p, src.n);
    v = dv_index_load(&p, idx);
    if (v != NULL) {
        size_t n = dropview_count(v);
        for (size_t i = 0; i < n; i++) {
            const char *uid = dropview_uid(v, i);
            fuzz_check(uid != NULL && dv_uid_ok(uid, strlen(uid)));
        }
        dropview_free(&v);
    }
    return 0;
}
