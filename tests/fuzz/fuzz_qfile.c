/*
 * fuzz_qfile - a queue file (common/mail/qfile, man/dmail-queue.5) read by qfile_read.
 * Invariants: a file that reads has text of the size it declares, its recipients as many
 * as it says, states that have names and DSN values that dsnparam accepts.
 */
#include "../../common/mail/dsnparam.h"
#include "../../common/mail/qfile.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qfile q;
    char err[256];
    const char *path = fuzz_file("q", data, size);
    const char *why;

    memset(&q, 0, sizeof q);
    err[0] = '\0';
    if (qfile_read(path, &q, err, sizeof err) == 0) {
        fuzz_check(q.sender != NULL && q.text != NULL);
        fuzz_check(q.nrcpt == 0 || q.rcpt != NULL);
        for (size_t i = 0; i < q.nrcpt; i++) {
            fuzz_check(q.rcpt[i].addr != NULL);
            fuzz_check(qfile_state_name(q.rcpt[i].state) != NULL);
            fuzz_check(dsnparam_notify_valid(q.rcpt[i].notify));
            if (q.rcpt[i].orcpt != NULL)
                fuzz_check(dsnparam_orcpt_check(q.rcpt[i].orcpt, strlen(q.rcpt[i].orcpt), &why) ==
                           0);
        }
        if (q.envid != NULL)
            fuzz_check(dsnparam_envid_check(q.envid, strlen(q.envid), &why) == 0);
        fuzz_check(q.text_len <= size);
    } else {
        fuzz_check(err[0] != '\0');
    }
    qfile_free(&q);
    return 0;
}
