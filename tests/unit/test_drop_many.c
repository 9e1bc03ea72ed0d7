/*
 * test_drop_many - batches into one mailbox (drop_deliver_many): order and format as single
 * deliveries, one failing message among good ones, crash in the middle of a batch, maildir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "drop.h"
#include "unit_util.h"

#define NODE "testnode"

struct fixture {
    char dir[UU_DIR_MAX];
    char box[UU_PATH_MAX]; /* DIR/box */
    char ref[UU_PATH_MAX]; /* DIR/ref: a second mbox filled by single deliveries */
};

/* setup - a fresh temporary directory per test. */
static int
setup(void **state)
{
    return uu_setup_paths(state, sizeof(struct fixture), "test_drop_many", "box", "ref", NULL);
}

/* normalize - in place: the date of every "From " line and every X-UIDL value go, so two
 * mboxes written at other times compare equal. Returns s. */
static char *
normalize(char *s)
{
    char *w = s, *r = s;
    bool bol = true;

    while (*r != '\0') {
        if (bol && strncmp(r, "From ", 5) == 0) {
            char *sp = strchr(r + 5, ' '), *nl = strchr(r, '\n');
            if (sp != NULL && nl != NULL && sp < nl) {
                memmove(w, r, (size_t)(sp - r));
                w += sp - r;
                r = nl;
            }
        } else if (bol && strncmp(r, "X-UIDL: ", 8) == 0) {
            memcpy(w, "X-UIDL:", 7);
            w += 7;
            r = strchr(r, '\n');
            if (r == NULL)
                break;
        }
        bol = *r == '\n';
        *w++ = *r++;
    }
    *w = '\0';
    return s;
}

/* item - an item for text with a Return-Path header for sender. */
static struct drop_item
item(const char *sender, const char *headers, const char *text)
{
    struct drop_item it;

    memset(&it, 0, sizeof it);
    it.msg.sender = sender;
    it.msg.headers = headers;
    it.msg.headers_len = strlen(headers);
    it.msg.text = text;
    it.msg.text_len = strlen(text);
    it.res = DROP_PERM; /* must be overwritten */
    return it;
}

/* big_text - about n bytes, every third line a "From " line to quote. */
static char *
big_text(const char *tag, size_t n)
{
    char *t = malloc(n + 128);
    size_t off = 0;

    assert_non_null(t);
    off += (size_t)sprintf(t, "Subject: %s\n\n", tag);
    for (size_t i = 0; off + 60 < n; i++)
        off +=
            (size_t)sprintf(t + off, i % 3 == 0 ? "From %s line %zu\n" : "%s line %zu\n", tag, i);
    return t;
}

/* A batch is exactly what the same messages delivered one by one give. */
static void
test_many_same_as_single(void **state)
{
    struct fixture *f = *state;
    const char *texts[] = {
        "Subject: 1\n\none\n",
        "Subject: 2\n\nFrom the start\n>From quoted\n",
        "Subject: 3\n\nno newline at the end",
        "Subject: 4\n\n\n\nblank lines\n\n",
        "Subject: 5\n\nfive\n",
    };
    const char *senders[] = {"a@b", "", "c d@e", "x@y", "a@b"};
    struct drop_item it[5];
    char err[256], uidl[80], *a, *b;
    size_t alen, blen;

    /* both start with a message that lacks the blank line at the end */
    for (int k = 0; k < 2; k++) {
        FILE *fp = fopen(k ? f->ref : f->box, "w");
        assert_non_null(fp);
        fputs("From old@b Thu Nov 25 09:00:00 2026\nSubject: old\n\nold\n", fp);
        fclose(fp);
    }
    for (size_t i = 0; i < 5; i++) {
        struct drop_msg m = {senders[i], "Return-Path: <r>\n", 17, texts[i], strlen(texts[i])};
        it[i] = item(senders[i], "Return-Path: <r>\n", texts[i]);
        assert_int_equal(drop_deliver(f->ref, MBOX_FORMAT_MBOX, &m, 5, 0, NODE, uidl, err, 256),
                         DROP_OK);
    }
    assert_int_equal(drop_deliver_many(f->box, MBOX_FORMAT_MBOX, it, 5, 5, 0, NODE), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(it[i].res, DROP_OK);
        assert_string_equal(it[i].err, "");
        assert_true(strlen(it[i].uidl) > 10);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(it[i].uidl, it[k].uidl);
    }
    a = uu_read_or_empty(f->box, &alen);
    b = uu_read_or_empty(f->ref, &blen);
    for (size_t i = 0; i < 5; i++) { /* each UID is the X-UIDL of its own message, in order */
        char want[120];
        snprintf(want, sizeof want, "X-UIDL: %s\nReturn-Path: <r>\n%.10s", it[i].uidl, texts[i]);
        assert_non_null(strstr(a, want));
        if (i > 0) {
            char prev[120];
            snprintf(prev, sizeof prev, "X-UIDL: %s\n", it[i - 1].uidl);
            assert_true(strstr(a, prev) < strstr(a, want));
        }
    }
    assert_string_equal(normalize(a), normalize(b));
    assert_non_null(strstr(a, "\n>From the start\n>>From quoted\n"));
    assert_non_null(strstr(a, "From MAILER-DAEMON\n"));
    assert_non_null(strstr(a, "From c_d@e\n"));
    free(a);
    free(b);
    assert_int_equal(access(f->box, F_OK), 0);
    {
        char lock[320];
        snprintf(lock, sizeof lock, "%s.lock", f->box);
        assert_int_equal(access(lock, F_OK), -1);
    }
}

/* The one message that would pass drop_max fails alone; the ones after it still go in. */
static void
test_many_drop_max_one(void **state)
{
    struct fixture *f = *state;
    char *big = big_text("big", 20000), *got;
    struct drop_item it[3] = {
        item("a@b", "", "Subject: small1\n\nsmall one\n"),
        item("a@b", "", big),
        item("a@b", "", "Subject: small2\n\nsmall two\n"),
    };
    size_t len;

    assert_int_equal(drop_deliver_many(f->box, MBOX_FORMAT_MBOX, it, 3, 5, 10000, NODE), 2);
    assert_int_equal(it[0].res, DROP_OK);
    assert_int_equal(it[1].res, DROP_TEMP);
    assert_int_equal(it[2].res, DROP_OK);
    assert_non_null(strstr(it[1].err, "mailbox full"));
    assert_string_equal(it[1].uidl, "");
    got = uu_read_or_empty(f->box, &len);
    assert_non_null(strstr(got, "small one\n\nFrom a@b "));
    assert_non_null(strstr(got, "small two\n\n"));
    assert_null(strstr(got, "big"));
    assert_true(len < 10000);
    free(got);
    free(big);
}

/* A write that fails half-way (EFBIG under RLIMIT_FSIZE) is cut back; the messages before and
 * after it are intact. Runs in a child, which reports through its exit status. */
static void
test_many_efbig_middle(void **state)
{
    struct fixture *f = *state;
    char *big = big_text("big", 60000), *got;
    int status;
    size_t len;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {30000, 30000};
        struct drop_item it[3] = {
            item("a@b", "", "Subject: s1\n\nsmall one\n"),
            item("a@b", "", big),
            item("a@b", "", "Subject: s2\n\nsmall two\n"),
        };
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        if (drop_deliver_many(f->box, MBOX_FORMAT_MBOX, it, 3, 5, 0, NODE) != 2)
            _exit(3);
        if (it[0].res != DROP_OK || it[1].res != DROP_TEMP || it[2].res != DROP_OK)
            _exit(4);
        _exit(strstr(it[1].err, "File too large") != NULL ? 0 : 5);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    got = uu_read_or_empty(f->box, &len);
    assert_non_null(strstr(got, "small one\n\nFrom a@b "));
    assert_null(strstr(got, "big line"));
    assert_non_null(strstr(got, "small two\n\n"));
    assert_int_equal(len, strlen(got));
    assert_true(len > 10 && got[len - 1] == '\n' && got[len - 2] == '\n');
    free(got);
    free(big);
}

/* An item that cannot be read fails for good; the others are delivered. */
static void
test_many_bad_item(void **state)
{
    struct fixture *f = *state;
    struct drop_item it[3] = {
        item("a@b", "", "Subject: 1\n\none\n"),
        item("a@b", "", "Subject: 2\n\ntwo\n"),
        item("a@b", "", "Subject: 3\n\nthree\n"),
    };
    char *got;
    size_t len;

    it[1].msg.text = NULL;
    assert_int_equal(drop_deliver_many(f->box, MBOX_FORMAT_MBOX, it, 3, 5, 0, NODE), 2);
    assert_int_equal(it[1].res, DROP_PERM);
    assert_int_equal(it[0].res, DROP_OK);
    assert_int_equal(it[2].res, DROP_OK);
    got = uu_read_or_empty(f->box, &len);
    assert_non_null(strstr(got, "one\n\nFrom a@b "));
    assert_non_null(strstr(got, "three\n\n"));
    assert_null(strstr(got, "two"));
    free(got);
    /* a missing mailbox path fails every item */
    assert_int_equal(drop_deliver_many("", MBOX_FORMAT_MBOX, it, 3, 5, 0, NODE), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(it[i].res, DROP_PERM);
    /* an unknown format too */
    it[1].msg.text = "x\n";
    assert_int_equal(drop_deliver_many(f->box, 99, it, 3, 5, 0, NODE), 0);
    assert_non_null(strstr(it[2].err, "unknown mailbox format"));
}

/* kill -9 in the middle of a batch: the dotlock names the size before the batch, and the
 * next delivery cuts every message of the dead batch off (none of them was acknowledged). */
static void
test_many_crash_mid_batch(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    char lock[320], err[256], uidl[80], *got, *texts[N];
    long long before, grown = 0;
    long pid_in_lock = 0;
    long long size_in_lock = -1;
    int status;
    size_t len;
    pid_t pid;

    snprintf(lock, sizeof lock, "%s.lock", f->box);
    assert_int_equal(drop_deliver(f->box, MBOX_FORMAT_MBOX,
                                  &(struct drop_msg){"a@b", "", 0, "first\n", 6}, 5, 0, NODE, uidl,
                                  err, sizeof err),
                     DROP_OK);
    before = uu_size(f->box);
    for (int i = 0; i < N; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "batch%d", i);
        texts[i] = big_text(tag, 3000000);
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct drop_item *it = calloc(N, sizeof *it);
        for (int i = 0; i < N; i++)
            it[i] = item("a@b", "", texts[i]);
        drop_deliver_many(f->box, MBOX_FORMAT_MBOX, it, N, 5, 0, NODE);
        _exit(0);
    }
    /* wait until the batch is past its first message, then kill it */
    for (int i = 0; i < 20000; i++) {
        grown = uu_size(f->box) - before;
        if (grown > 4000000)
            break;
        usleep(500);
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status)); /* killed before it finished */
    assert_true(grown > 4000000);
    got = uu_read_or_empty(lock, &len);
    assert_int_equal(sscanf(got, "%ld " NODE " %lld", &pid_in_lock, &size_in_lock), 2);
    assert_int_equal(pid_in_lock, (long)pid);
    assert_int_equal(size_in_lock, before); /* the size before the whole batch */
    free(got);
    assert_true(uu_size(f->box) > before + 3000000); /* a whole message of it was written */
    assert_int_equal(drop_deliver(f->box, MBOX_FORMAT_MBOX,
                                  &(struct drop_msg){"a@b", "", 0, "after\n", 6}, 5, 0, NODE, uidl,
                                  err, sizeof err),
                     DROP_OK);
    got = uu_read_or_empty(f->box, &len);
    assert_null(strstr(got, "batch"));
    assert_non_null(strstr(got, "first\n\nFrom a@b "));
    assert_non_null(strstr(got, "after\n\n"));
    assert_int_equal(access(lock, F_OK), -1);
    free(got);
    for (int i = 0; i < N; i++)
        free(texts[i]);
}

/* count_dir - entries (not starting with '.') in dir. */
static int
count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Maildir: one file per message, the one over drop_max fails alone, tmp/ is left empty. */
static void
test_many_maildir(void **state)
{
    struct fixture *f = *state;
    char *big = big_text("big", 5000), path[400], *got;
    struct drop_item it[4] = {
        item("a@b", "Return-Path: <a@b>\n", "Subject: 1\n\none\n"),
        item("a@b", "Return-Path: <a@b>\n", big),
        item("a@b", "Return-Path: <a@b>\n", "Subject: 3\n\nthree\n"),
        item("a@b", "Return-Path: <a@b>\n", "Subject: 4\n\nfour\n"),
    };
    size_t len;

    assert_int_equal(drop_deliver_many(f->box, MBOX_FORMAT_MAILDIR, it, 4, 5, 2000, NODE), 3);
    assert_int_equal(it[1].res, DROP_TEMP);
    assert_non_null(strstr(it[1].err, "mailbox full"));
    snprintf(path, sizeof path, "%s/new", f->box);
    assert_int_equal(count_dir(path), 3);
    snprintf(path, sizeof path, "%s/tmp", f->box);
    assert_int_equal(count_dir(path), 0);
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        assert_int_equal(it[i].res, DROP_OK);
        snprintf(path, sizeof path, "%s/new/%s,S=%zu", f->box, it[i].uidl,
                 it[i].msg.headers_len + it[i].msg.text_len);
        got = uu_read_or_empty(path, &len);
        assert_int_equal(len, it[i].msg.headers_len + it[i].msg.text_len);
        assert_memory_equal(got + it[i].msg.headers_len, it[i].msg.text, it[i].msg.text_len);
        free(got);
    }
    free(big);
}

UU_MAIN(NULL, NULL, UU_DIR(test_many_same_as_single), UU_DIR(test_many_drop_max_one),
        UU_DIR(test_many_efbig_middle), UU_DIR(test_many_bad_item),
        UU_DIR(test_many_crash_mid_batch), UU_DIR(test_many_maildir))
