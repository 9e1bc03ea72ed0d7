/*
 * test_dropview - the read side of the dropfile store: client-form conversion (whole and
 * byte by byte), the mbox index (full, incremental, invalidated, corrupt tail), UIDs stable
 * across deletions, compaction that keeps mail delivered meanwhile, maildir listing and
 * update.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "drop.h"
#include "dropview.h"
#include "xmem.h"
#include "unit_util.h"

#define NODE "testnode"

struct fixture {
    char dir[UU_DIR_MAX];
    char box[UU_PATH_MAX]; /* DIR/box */
    char idx[UU_PATH_MAX]; /* DIR/idx */
};

static int
setup(void **state)
{
    return uu_setup_paths(state, sizeof(struct fixture), "test_dropview", "box", "idx", NULL);
}

/* ---- conversion ---- */

struct ccase {
    const char *name;
    const char *in;
    bool mboxrd, dotstuff;
    const char *status;
    long top;
    const char *out;
    bool has_status, has_body;
};

static const struct ccase ccases[] = {
    {"lf to crlf", "A: b\n\nbody\n", true, false, NULL, -1, "A: b\r\n\r\nbody\r\n", false, true},
    {"crlf kept", "A: b\r\n\r\nbody\r\n", true, false, NULL, -1, "A: b\r\n\r\nbody\r\n", false,
     true},
    {"unterminated", "A: b\n\nbody", true, false, NULL, -1, "A: b\r\n\r\nbody\r\n", false, true},
    {"unterminated cr", "A: b\n\nbody\r", true, false, NULL, -1, "A: b\r\n\r\nbody\r\r\n", false,
     true},
    {"bare cr", "A: b\n\nx\ry\n", true, false, NULL, -1, "A: b\r\n\r\nx\ry\r\n", false, true},
    {"no body", "A: b\nC: d\n", true, false, NULL, -1, "A: b\r\nC: d\r\n", false, false},
    {"mboxrd", "A: b\n\n>From x\n>>From y\n>Fro\n>>\nFrom z\n> From\n", true, false, NULL, -1,
     "A: b\r\n\r\nFrom x\r\n>From y\r\n>Fro\r\n>>\r\nFrom z\r\n> From\r\n", false, true},
    {"mboxrd off", "A: b\n\n>From x\n", false, false, NULL, -1, "A: b\r\n\r\n>From x\r\n", false,
     true},
    {"mboxrd at end", "A: b\n\n>Fro", true, false, NULL, -1, "A: b\r\n\r\n>Fro\r\n", false, true},
    {"dot stuffing", "A: b\n\n.\n..x\n.From\n x.\n", true, true, NULL, -1,
     "A: b\r\n\r\n..\r\n...x\r\n..From\r\n x.\r\n", false, true},
    {"status inserted", "Subject: s\nStatus: RO\n\nbody\n", true, false, "Status: O\r\n", -1,
     "Subject: s\r\nStatus: RO\r\nStatus: O\r\n\r\nbody\r\n", true, true},
    {"status detected", "status:RO\n\nb\n", true, false, NULL, -1, "status:RO\r\n\r\nb\r\n", true,
     true},
    {"status in body ignored", "A: b\n\nStatus: x\n", true, false, NULL, -1,
     "A: b\r\n\r\nStatus: x\r\n", false, true},
    {"top 0", "A: b\n\nl1\nl2\n", true, false, NULL, 0, "A: b\r\n\r\n", false, true},
    {"top 1", "A: b\n\nl1\nl2\n", true, true, NULL, 1, "A: b\r\n\r\nl1\r\n", false, true},
    {"top more than there is", "A: b\n\nl1", true, false, NULL, 5, "A: b\r\n\r\nl1\r\n", false,
     true},
    {"top with status", "A: b\n\nl1\nl2\n", true, false, "Status: RO\r\n", 1,
     "A: b\r\nStatus: RO\r\n\r\nl1\r\n", false, true},
    {"empty", "", true, true, NULL, -1, "", false, false},
};

/* run_conv - convert c->in in pieces of step bytes (0 = whole) and compare. */
static void
run_conv(const struct ccase *c, size_t step)
{
    struct dropview_conv cv;
    size_t n = strlen(c->in), w = 0;
    char out[1024];

    dropview_conv_init(&cv, c->mboxrd, c->dotstuff, c->status, c->top);
    for (size_t i = 0; i < n;) {
        size_t k = step == 0 ? n : (n - i < step ? n - i : step);
        assert_true(w + DROPVIEW_CONV_BOUND(&cv, k) < sizeof out);
        w += dropview_conv_feed(&cv, c->in + i, k, out + w);
        i += k;
    }
    w += dropview_conv_finish(&cv, out + w);
    out[w] = '\0';
    if (strcmp(out, c->out) != 0)
        fail_msg("%s (step %zu): got \"%s\"", c->name, step, out);
    assert_int_equal(cv.out, w);
    assert_int_equal(cv.has_status, c->has_status);
    assert_int_equal(cv.has_body, c->has_body);
}

/* test_conv - one case of the table (a test each): converted whole, byte by byte and in
 * pieces of 3; counting (out == NULL) gives the same length as converting. */
static void
test_conv(void **state)
{
    const struct ccase *c = *state;
    struct dropview_conv cv;

    run_conv(c, 0);
    run_conv(c, 1);
    run_conv(c, 3);
    dropview_conv_init(&cv, c->mboxrd, c->dotstuff, c->status, c->top);
    for (size_t j = 0; c->in[j] != '\0'; j++)
        dropview_conv_feed(&cv, c->in + j, 1, NULL);
    dropview_conv_finish(&cv, NULL);
    assert_int_equal(cv.out, strlen(c->out));
}

/* ---- helpers ---- */

/* deliver - one message through drop_deliver; uid (>= 80 bytes) gets its UID. */
static void
deliver(const char *path, int fmt, const char *sender, const char *text, char *uid)
{
    struct drop_msg m = {sender, "", 0, text, strlen(text)};
    char err[256], u[80];

    if (drop_deliver(path, fmt, &m, 5, 0, NODE, uid != NULL ? uid : u, err, sizeof err) != DROP_OK)
        fail_msg("deliver: %s", err);
}

/* view - open the mailbox or fail. */
static struct dropview *
view(const struct fixture *f, int fmt, bool index)
{
    struct dropview_params p = {f->box, fmt, index ? f->idx : NULL, 5};
    struct dropview *v;
    char err[256];

    if (dropview_open(&p, &v, err, sizeof err) != DROP_OK)
        fail_msg("dropview_open: %s", err);
    return v;
}

/* put - deliver text from a@x to the fixture's mbox (its UID into uid, unless NULL). */
static void
put(const struct fixture *f, const char *text, char *uid)
{
    deliver(f->box, MBOX_FORMAT_MBOX, "a@x", text, uid);
}

/* view_n - the fixture's mbox viewed (with its index, when index) holds n messages. */
static struct dropview *
view_n(const struct fixture *f, bool index, size_t n)
{
    struct dropview *v = view(f, MBOX_FORMAT_MBOX, index);

    assert_int_equal(dropview_count(v), n);
    return v;
}

/* indexed - view the fixture's mbox once with its index (which writes the index): it
 * holds n messages. */
static void
indexed(const struct fixture *f, size_t n)
{
    struct dropview *v = view_n(f, true, n);

    dropview_free(&v);
}

/* served - message i as the client gets it (RETR: dot-stuffed, without the final dot),
 * read through dropview_read in small pieces. */
static char *
served(struct dropview *v, size_t i, const char *status, long top, bool dotstuff)
{
    const struct dropview_msg *m = dropview_msg(v, i);
    struct dropview_conv cv;
    size_t cap = 2 * (m->size + 64) + 1024, w = 0;
    unsigned long long pos = 0;
    char *out = malloc(cap), piece[7];

    assert_non_null(out);
    dropview_conv_init(&cv, dropview_format(v) == MBOX_FORMAT_MBOX, dotstuff, status, top);
    for (;;) {
        long r = dropview_read(v, i, pos, piece, sizeof piece);
        assert_true(r >= 0);
        if (r == 0)
            break;
        pos += (unsigned long long)r;
        assert_true(w + DROPVIEW_CONV_BOUND(&cv, (size_t)r) < cap);
        w += dropview_conv_feed(&cv, piece, (size_t)r, out + w);
    }
    w += dropview_conv_finish(&cv, out + w);
    out[w] = '\0';
    return out;
}

/* check_msg - message i is served as want, and its size is want's length. */
static void
check_msg(struct dropview *v, size_t i, const char *want)
{
    char *got = served(v, i, NULL, -1, false);
    if (strcmp(got, want) != 0)
        fail_msg("message %zu: got \"%s\" want \"%s\"", i, got, want);
    assert_int_equal(dropview_msg(v, i)->size, strlen(want));
    free(got);
}

/* commit - dropview_commit or fail. */
static void
commit(struct dropview *v, const unsigned char *del, const unsigned char *seen)
{
    char err[256];

    if (dropview_commit(v, del, seen, err, sizeof err) != DROP_OK)
        fail_msg("commit: %s", err);
}

/* ---- mbox ---- */

/* Messages delivered by drop_deliver: UIDs are the X-UIDL values, the X-UIDL and From
 * lines are not served, mboxrd quoting is undone, sizes are CRLF sizes. */
static void
test_mbox_basic(void **state)
{
    struct fixture *f = *state;
    char u1[80], u2[80], u3[80];
    struct dropview *v;

    put(f, "Subject: one\n\nhello\n", u1);
    deliver(f->box, MBOX_FORMAT_MBOX, "", "Subject: two\n\nFrom me\n>From you\n.\n", u2);
    deliver(f->box, MBOX_FORMAT_MBOX, "c@x", "Subject: three\n\nno newline", u3);
    v = view_n(f, true, 3);
    assert_string_equal(dropview_uid(v, 0), u1);
    assert_string_equal(dropview_uid(v, 1), u2);
    assert_string_equal(dropview_uid(v, 2), u3);
    check_msg(v, 0, "Subject: one\r\n\r\nhello\r\n");
    check_msg(v, 1, "Subject: two\r\n\r\nFrom me\r\n>From you\r\n.\r\n");
    check_msg(v, 2, "Subject: three\r\n\r\nno newline\r\n");
    assert_int_equal(dropview_total(v), dropview_msg(v, 0)->size + dropview_msg(v, 1)->size +
                                            dropview_msg(v, 2)->size);
    assert_true(dropview_msg(v, 0)->flags & DV_HAS_BODY);
    assert_false(dropview_msg(v, 0)->flags & DV_HAS_STATUS);
    /* dot-stuffed and TOP forms */
    char *s = served(v, 1, NULL, -1, true);
    assert_string_equal(s, "Subject: two\r\n\r\nFrom me\r\n>From you\r\n..\r\n");
    free(s);
    s = served(v, 1, "Status: O\r\n", 1, true);
    assert_string_equal(s, "Subject: two\r\nStatus: O\r\n\r\nFrom me\r\n");
    free(s);
    assert_null(dropview_msg(v, 3));
    assert_null(dropview_uid(v, 3));
    dropview_free(&v);
    assert_null(v);
}

/* A missing mbox is an empty mailbox; a symlink or a directory is refused. */
static void
test_mbox_missing_and_bad(void **state)
{
    struct fixture *f = *state;
    struct dropview_params p = {f->box, MBOX_FORMAT_MBOX, f->idx, 5};
    struct dropview *v;
    char err[256];

    v = view_n(f, true, 0);
    commit(v, NULL, NULL);
    dropview_free(&v);
    assert_int_equal(symlink("/etc/passwd", f->box), 0);
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_PERM);
    assert_null(v);
    unlink(f->box);
    /* a second name for another file */
    char *other = xasprintf("%s.other", f->box);
    FILE *o = fopen(other, "w");
    assert_non_null(o);
    fclose(o);
    assert_int_equal(link(other, f->box), 0);
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_PERM);
    assert_non_null(strstr(err, "hard links"));
    unlink(f->box);
    unlink(other);
    free(other);
    assert_int_equal(mkdir(f->box, 0700), 0);
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_PERM);
    p.format = 7;
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_PERM);
}

/* set_mtime - move the file's mtime (so an in-place edit is seen as a change). */
static void
bump_mtime(const char *path)
{
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, 0}};
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    ts[1].tv_sec = st.st_mtim.tv_sec + 7;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* poke - overwrite bytes at the offset of the first occurrence of what. */
static void
poke(const char *path, const char *what, const char *with)
{
    size_t len;
    char *s = uu_read(path, &len), *at = strstr(s, what);
    int fd = open(path, O_WRONLY);

    assert_non_null(at);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, with, strlen(with), at - s), (ssize_t)strlen(with));
    close(fd);
    free(s);
}

/* Appends extend the index without rescanning the old messages (an in-place change to an
 * early message that the tail check cannot see stays unnoticed, which proves the old
 * entries were reused), and an index file is used as it is when nothing changed. */
static void
test_mbox_incremental(void **state)
{
    struct fixture *f = *state;
    char u[3][80], filler[6000];
    struct dropview *v;

    memset(filler, 'x', sizeof filler - 2);
    filler[sizeof filler - 2] = '\n';
    filler[sizeof filler - 1] = '\0';
    put(f, "Subject: early\n\nearly body\n", u[0]);
    put(f, filler, u[1]);
    indexed(f, 2);
    /* change the early message's UID in place (same length), then deliver more */
    poke(f->box, u[0], "Q");
    deliver(f->box, MBOX_FORMAT_MBOX, "b@x", "Subject: late\n\nlate\n", u[2]);
    v = view_n(f, true, 3);
    assert_string_equal(dropview_uid(v, 2), u[2]);
    check_msg(v, 2, "Subject: late\r\n\r\nlate\r\n");
    /* the early message was not rescanned: its cached UID is the old one */
    assert_string_equal(dropview_uid(v, 0), u[0]);
    dropview_free(&v);
    /* without an index everything is scanned and the change shows */
    v = view_n(f, false, 3);
    assert_int_equal(dropview_uid(v, 0)[0], 'Q');
    assert_memory_equal(dropview_uid(v, 0) + 1, u[0] + 1, strlen(u[0]) - 1);
    check_msg(v, 0, "Subject: early\r\n\r\nearly body\r\n");
    dropview_free(&v);
    /* unchanged file: the index is taken as it is */
    v = view_n(f, true, 3);
    assert_string_equal(dropview_uid(v, 0), u[0]);
    assert_string_equal(dropview_uid(v, 1), u[1]);
    dropview_free(&v);
}

/* A change inside the last 4 KiB, or a shrunk or replaced file, forces a full rescan. */
static void
test_mbox_invalidated(void **state)
{
    struct fixture *f = *state;
    char u1[80], u2[80];
    struct dropview *v;

    put(f, "Subject: a\n\naaaa\n", u1);
    put(f, "Subject: b\n\nbbbb\n", u2);
    indexed(f, 2);
    /* rewrite the first UID in place and append: the tail digest no longer matches */
    poke(f->box, u1, "Z");
    put(f, "Subject: c\n\ncccc\n", NULL);
    v = view_n(f, true, 3);
    assert_int_equal(dropview_uid(v, 0)[0], 'Z');
    dropview_free(&v);
    /* same size, new mtime, text changed: rebuilt (the body anchored by its blank line:
     * a random UID may hold "bbbb" too) */
    poke(f->box, "\n\nbbbb\n", "\n\nBBBB\n");
    bump_mtime(f->box);
    v = view(f, MBOX_FORMAT_MBOX, true);
    check_msg(v, 1, "Subject: b\r\n\r\nBBBB\r\n");
    dropview_free(&v);
    /* replaced by a shorter file (another program rewrote it) */
    size_t len;
    char *s = uu_read(f->box, &len);
    char *second = strstr(s + 1, "\nFrom ");
    assert_non_null(second);
    unlink(f->box);
    uu_write_bytes(f->box, s, (size_t)(second - s) + 1);
    free(s);
    v = view_n(f, true, 1);
    check_msg(v, 0, "Subject: a\r\n\r\naaaa\r\n");
    dropview_free(&v);
}

/* A truncated index file is ignored (rebuilt), as is one for another mailbox. */
static void
test_mbox_bad_index(void **state)
{
    struct fixture *f = *state;
    char ipath[600], u1[80];
    struct dropview *v;

    put(f, "Subject: a\n\naaaa\n", u1);
    indexed(f, 1);
    assert_int_equal(dropview_index_path(f->idx, f->box, ipath, sizeof ipath), 0);
    size_t len;
    char *s = uu_read(ipath, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, u1));
    assert_non_null(strstr(s, "\nend 1\n"));
    uu_write_bytes(ipath, s, len - 6); /* no end line */
    put(f, "Subject: b\n\nbbbb\n", NULL);
    v = view_n(f, true, 2);
    assert_string_equal(dropview_uid(v, 0), u1);
    dropview_free(&v);
    /* garbage in a record */
    uu_write_bytes(ipath, "dpopidx 1 mbox\npath /x\nend 0\n", 29);
    indexed(f, 2);
    free(s);
}

/* The corrupt tail a crashed writer leaves (a last message without newline, bytes before
 * the first "From ") is served sensibly and heals when the next delivery comes. */
static void
test_mbox_corrupt_tail(void **state)
{
    struct fixture *f = *state;
    const char *text = "junk before\n\nFrom a@x Thu Nov 25 09:00:00 2026\nSubject: a\n\nbody\n\n"
                       "From b@x Thu Nov 25 09:00:01 2026\nSubject: half\n\npart";
    struct dropview *v;
    char u[80];

    uu_write_bytes(f->box, text, strlen(text));
    v = view_n(f, true, 2);
    check_msg(v, 0, "Subject: a\r\n\r\nbody\r\n");
    check_msg(v, 1, "Subject: half\r\n\r\npart\r\n");
    assert_int_equal(dropview_uid(v, 0)[0], 'h');
    assert_int_equal(strlen(dropview_uid(v, 0)), 41);
    assert_string_not_equal(dropview_uid(v, 0), dropview_uid(v, 1));
    dropview_free(&v);
    deliver(f->box, MBOX_FORMAT_MBOX, "c@x", "Subject: c\n\nc\n", u);
    v = view_n(f, true, 3);
    check_msg(v, 1, "Subject: half\r\n\r\npart\r\n");
    check_msg(v, 2, "Subject: c\r\n\r\nc\r\n");
    assert_string_equal(dropview_uid(v, 2), u);
    dropview_free(&v);
    /* a file ending inside a From line */
    uu_write_bytes(f->box, "From x", 6);
    v = view_n(f, false, 1);
    assert_int_equal(dropview_msg(v, 0)->size, 0);
    dropview_free(&v);
    /* no "From " at all: no messages */
    uu_write_bytes(f->box, "not a mailbox\n", 14);
    v = view_n(f, false, 0);
    dropview_free(&v);
}

/* Messages without X-UIDL: UIDs come from their content, do not change when others are
 * deleted or when the index is lost, and duplicates get a counter. A forged X-UIDL below
 * the first header line is ignored. */
static void
test_mbox_uid_stability(void **state)
{
    struct fixture *f = *state;
    const char *text = "From a@x Thu Nov 25 09:00:00 2026\nSubject: 1\n\none\n\n"
                       "From a@x Thu Nov 25 09:00:00 2026\nSubject: 2\nX-UIDL: forged\n\ntwo\n\n"
                       "From a@x Thu Nov 25 09:00:00 2026\nSubject: 3\n\nthree\n\n"
                       "From a@x Thu Nov 25 09:00:00 2026\nSubject: 3\n\nthree\n\n"
                       "From a@x Thu Nov 25 09:00:01 2026\nSubject: 3\n\nthree\n\n"
                       "From a@x Thu Nov 25 09:00:00 2026\nX-UIDL: bad uid\n\nfour\n\n";
    char uids[6][80], ipath[600];
    unsigned char del[6] = {0};
    struct dropview *v;

    uu_write_bytes(f->box, text, strlen(text));
    v = view_n(f, true, 6);
    for (size_t i = 0; i < 6; i++)
        snprintf(uids[i], sizeof uids[i], "%s", dropview_uid(v, i));
    assert_string_not_equal(uids[1], "forged");
    check_msg(v, 1, "Subject: 2\r\nX-UIDL: forged\r\n\r\ntwo\r\n");
    check_msg(v, 5, "X-UIDL: bad uid\r\n\r\nfour\r\n");
    /* identical From line and text: a counter; another delivery time: another UID */
    assert_int_equal(strlen(uids[3]), 43);
    assert_memory_equal(uids[3], uids[2], 41);
    assert_string_equal(uids[3] + 41, "-2");
    assert_string_not_equal(uids[4], uids[2]);
    for (size_t i = 0; i < 6; i++)
        for (size_t j = i + 1; j < 6; j++)
            assert_string_not_equal(uids[i], uids[j]);
    del[0] = 1;
    commit(v, del, NULL);
    dropview_free(&v);
    v = view_n(f, true, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(dropview_uid(v, i), uids[i + 1]);
    dropview_free(&v);
    /* lose the index: the same UIDs again */
    assert_int_equal(dropview_index_path(f->idx, f->box, ipath, sizeof ipath), 0);
    assert_int_equal(unlink(ipath), 0);
    v = view(f, MBOX_FORMAT_MBOX, true);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(dropview_uid(v, i), uids[i + 1]);
    dropview_free(&v);
}

/* no_temp_files - nothing but the mbox (and the index dir) is left in the directory. */
static void
no_temp_files(const struct fixture *f)
{
    DIR *d = opendir(f->dir);
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "box") == 0 || strcmp(e->d_name, "idx") == 0)
            continue;
        fail_msg("left behind: %s", e->d_name);
    }
    closedir(d);
}

/* Compaction removes exactly the deleted messages, keeps one delivered after the
 * snapshot, keeps the file mode, leaves no lock or temp file, and the result parses. */
static void
test_mbox_compaction(void **state)
{
    struct fixture *f = *state;
    char u[5][80], late[80];
    unsigned char del[5] = {1, 0, 1, 0, 1}, seen[5] = {0, 1, 0, 0, 0};
    struct dropview *v, *w;
    struct stat st1, st2;
    size_t len;
    char *s;

    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "Subject: m%d\n\nFrom body %d\n\n", i, i);
        put(f, text, u[i]);
    }
    assert_int_equal(chmod(f->box, 0640), 0);
    v = view_n(f, true, 5);
    /* mail arrives during the session */
    deliver(f->box, MBOX_FORMAT_MBOX, "late@x", "Subject: late\n\nlate\n", late);
    assert_int_equal(stat(f->box, &st1), 0);
    commit(v, del, seen);
    dropview_free(&v);
    assert_int_equal(stat(f->box, &st2), 0);
    assert_true(st1.st_ino != st2.st_ino);
    assert_int_equal(st2.st_mode & 07777, 0640);
    no_temp_files(f);
    w = view_n(f, true, 3);
    assert_string_equal(dropview_uid(w, 0), u[1]);
    assert_string_equal(dropview_uid(w, 1), u[3]);
    assert_string_equal(dropview_uid(w, 2), late);
    check_msg(w, 0, "Subject: m1\r\n\r\nFrom body 1\r\n\r\n");
    check_msg(w, 1, "Subject: m3\r\n\r\nFrom body 3\r\n\r\n");
    check_msg(w, 2, "Subject: late\r\n\r\nlate\r\n");
    assert_true(dropview_msg(w, 0)->flags & DV_SEEN);
    assert_false(dropview_msg(w, 1)->flags & DV_SEEN);
    dropview_free(&w);
    /* the file is what an mbox reader expects: quoting intact, blank line separators */
    s = uu_read(f->box, &len);
    assert_non_null(strstr(s, "\n>From body 1\n\n\n"));
    assert_null(strstr(s, "m0"));
    assert_int_equal(strncmp(s, "From a@x ", 9), 0);
    assert_int_equal(s[len - 1], '\n');
    assert_int_equal(s[len - 2], '\n');
    free(s);
    /* the seen flag survives a full rebuild (another inode) */
    s = uu_read(f->box, &len);
    unlink(f->box);
    uu_write_bytes(f->box, s, len);
    free(s);
    w = view(f, MBOX_FORMAT_MBOX, true);
    assert_true(dropview_msg(w, 0)->flags & DV_SEEN);
    /* delete everything: an empty file stays */
    unsigned char all[3] = {1, 1, 1};
    commit(w, all, NULL);
    dropview_free(&w);
    assert_int_equal(stat(f->box, &st2), 0);
    assert_int_equal(st2.st_size, 0);
}

/* Bytes before the first message survive compaction; a commit with nothing to do leaves
 * the file alone. */
static void
test_mbox_compaction_preamble(void **state)
{
    struct fixture *f = *state;
    const char *text = "preamble\n\nFrom a@x Thu Nov 25 09:00:00 2026\nSubject: a\n\na\n\n"
                       "From b@x Thu Nov 25 09:00:00 2026\nSubject: b\n\nb\n\n";
    unsigned char del[2] = {1, 0}, none[2] = {0, 0};
    struct dropview *v;
    struct stat st1, st2;
    size_t len;
    char *s;

    uu_write_bytes(f->box, text, strlen(text));
    v = view(f, MBOX_FORMAT_MBOX, true);
    assert_int_equal(stat(f->box, &st1), 0);
    commit(v, none, none);
    assert_int_equal(stat(f->box, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    commit(v, del, NULL);
    dropview_free(&v);
    s = uu_read(f->box, &len);
    assert_string_equal(s, "preamble\n\nFrom b@x Thu Nov 25 09:00:00 2026\nSubject: b\n\nb\n\n");
    free(s);
}

/* A busy lock makes open (when the file changed) and commit temporary failures. */
static void
test_mbox_locked(void **state)
{
    struct fixture *f = *state;
    struct dropview_params p = {f->box, MBOX_FORMAT_MBOX, f->idx, 1};
    unsigned char del[1] = {1};
    struct dropview *v;
    char err[256], lock[320];
    int fd;

    put(f, "Subject: a\n\na\n", NULL);
    snprintf(lock, sizeof lock, "%s.lock", f->box);
    fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "1 othernode\n", 12), 12);
    close(fd);
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_TEMP);
    assert_non_null(strstr(err, "locked"));
    unlink(lock);
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_OK);
    /* unchanged: opening needs no lock */
    fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_int_equal(write(fd, "1 othernode\n", 12), 12);
    close(fd);
    struct dropview *v2;
    assert_int_equal(dropview_open(&p, &v2, err, sizeof err), DROP_OK);
    dropview_free(&v2);
    assert_int_equal(dropview_commit(v, del, NULL, err, sizeof err), DROP_TEMP);
    unlink(lock);
    assert_int_equal(dropview_commit(v, del, NULL, err, sizeof err), DROP_OK);
    dropview_free(&v);
}

/* A reader whose file was replaced after the snapshot gets ESTALE, not other bytes. */
static void
test_mbox_read_stale(void **state)
{
    struct fixture *f = *state;
    struct dropview *v;
    char buf[64];

    put(f, "Subject: a\n\na\n", NULL);
    char old[400];
    v = view(f, MBOX_FORMAT_MBOX, false);
    snprintf(old, sizeof old, "%s.old", f->box); /* keep the inode alive: no reuse */
    assert_int_equal(rename(f->box, old), 0);
    put(f, "Subject: b\n\nb\n", NULL);
    errno = 0;
    assert_int_equal(dropview_read(v, 0, 0, buf, sizeof buf), -1);
    assert_int_equal(errno, ESTALE);
    assert_int_equal(dropview_read(v, 5, 0, buf, sizeof buf), -1);
    dropview_free(&v);
}

/* raw_of - message i as dropview_read gives it, whole; its length in *len. */
static char *
raw_of(struct dropview *v, size_t i, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    long r;

    assert_non_null(buf);
    while ((r = dropview_read(v, i, n, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        assert_true(n < cap);
    }
    assert_int_equal(r, 0);
    *len = n;
    return buf;
}

/* check_read_msgs - dropview_read_msgs(i, len, max) gives whole messages that are what
 * dropview_read gives, in order, inside len, as many as fit; returns the count. */
static long
check_read_msgs(struct dropview *v, size_t i, size_t len, size_t max)
{
    struct dropview_span span[16];
    char *buf = malloc(len + 1);
    size_t end = 0;
    long k;

    assert_non_null(buf);
    assert_true(max <= 16);
    k = dropview_read_msgs(v, i, buf, len, span, max);
    assert_true(k >= 0 && (size_t)k <= max && i + (size_t)k <= dropview_count(v));
    for (long j = 0; j < k; j++) {
        size_t rl;
        char *raw = raw_of(v, i + (size_t)j, &rl);
        assert_true(span[j].off >= end);
        assert_int_equal(span[j].len, rl);
        assert_true(span[j].off + span[j].len <= len);
        assert_memory_equal(buf + span[j].off, raw, rl);
        end = span[j].off + span[j].len;
        free(raw);
    }
    if (k > 0 && (size_t)k < max && i + (size_t)k < dropview_count(v)) {
        /* the next one did not fit: exactly the room used holds the same count, one byte
         * less one fewer */
        struct dropview_span s2[16];
        assert_int_equal(dropview_read_msgs(v, i, buf, end, s2, max), k);
        assert_int_equal(dropview_read_msgs(v, i, buf, end - 1, s2, max), k - 1);
    }
    free(buf);
    return k;
}

/* check_cached - dropview_read_msgs_cached gives what dropview_read_msgs gives (the
 * mbox was just read, so it is open and in the page cache) or EAGAIN where RWF_NOWAIT is
 * not supported; always EAGAIN for a maildir and for an mbox not opened yet. */
static void
check_cached(struct dropview *v, int fmt)
{
    struct dropview_span s1[16], s2[16];
    char *b1 = malloc(1 << 16), *b2 = malloc(1 << 16);
    long k1, k2;

    assert_true(b1 != NULL && b2 != NULL);
    for (size_t i = 0; i < dropview_count(v); i += 3) {
        k1 = dropview_read_msgs(v, i, b1, 1 << 16, s1, 16);
        errno = 0;
        k2 = dropview_read_msgs_cached(v, i, b2, 1 << 16, s2, 16);
        if (fmt == MBOX_FORMAT_MAILDIR || k2 < 0) {
            assert_int_equal(k2, -1);
            assert_int_equal(errno, EAGAIN);
            continue;
        }
        assert_int_equal(k2, k1);
        for (long j = 0; j < k1; j++) {
            assert_int_equal(s2[j].len, s1[j].len);
            assert_memory_equal(b2 + s2[j].off, b1 + s1[j].off, s1[j].len);
        }
    }
    free(b1);
    free(b2);
}

/* dropview_read_msgs: whole messages from i on, as many as fit, byte-exact, in both
 * formats; too small a buffer reads none; a message that is gone is ESTALE when it is the
 * first, the end of the run when it is a later one. */
static void
test_read_msgs(void **state)
{
    struct fixture *f = *state;
    static const int fmts[] = {MBOX_FORMAT_MBOX, MBOX_FORMAT_MAILDIR};

    for (int t = 0; t < 2; t++) {
        struct dropview *v;
        struct dropview_span span[4];
        char path[700], buf[64];
        size_t n, total = 0;

        uu_rmtree(f->box);
        for (int i = 0; i < 12; i++) {
            char text[2048];
            int w = snprintf(text, sizeof text, "Subject: %d\n\n", i);
            for (int j = 0; j < i * 7; j++)
                w += snprintf(text + w, sizeof text - (size_t)w, "%s line %d\n",
                              j % 3 == 0   ? ">From"
                              : j % 3 == 1 ? "From"
                                           : ".",
                              j);
            deliver(f->box, fmts[t], "a@x", text, NULL);
            if (fmts[t] == MBOX_FORMAT_MAILDIR)
                usleep(1500); /* names in delivery order */
        }
        v = view(f, fmts[t], false);
        n = dropview_count(v);
        assert_int_equal(n, 12);
        for (size_t i = 0; i < n; i++) {
            size_t rl;
            free(raw_of(v, i, &rl));
            total += rl;
            assert_int_equal(check_read_msgs(v, i, rl - 1, 16), 0);
            assert_int_equal(check_read_msgs(v, i, rl, 16), 1);
            assert_true(check_read_msgs(v, i, rl + 600, 16) >= 1);
            assert_int_equal(check_read_msgs(v, i, 1 << 16, 16), (long)(n - i));
            assert_int_equal(check_read_msgs(v, i, 1 << 16, 3), (long)(n - i < 3 ? n - i : 3));
        }
        assert_int_equal(check_read_msgs(v, 0, total + 4096, 16), 12);
        check_cached(v, fmts[t]);
        errno = 0;
        assert_int_equal(dropview_read_msgs(v, n, buf, sizeof buf, span, 4), -1);
        assert_int_equal(errno, EINVAL);
        dropview_free(&v);

        /* the file or files are gone from under a fresh view */
        v = view(f, fmts[t], false);
        errno = 0;
        assert_int_equal(dropview_read_msgs_cached(v, 0, buf, sizeof buf, span, 4), -1);
        assert_int_equal(errno, EAGAIN); /* nothing is open yet */
        if (fmts[t] == MBOX_FORMAT_MBOX) {
            snprintf(path, sizeof path, "%s.old", f->box); /* keeps the inode: no reuse */
            assert_int_equal(rename(f->box, path), 0);
            put(f, "Subject: new\n\nnew\n", NULL);
            errno = 0;
            assert_int_equal(dropview_read_msgs(v, 0, buf, sizeof buf, span, 4), -1);
            assert_int_equal(errno, ESTALE);
            assert_int_equal(remove(path), 0);
        } else {
            char *names[12];
            for (int i = 0; i < 2; i++) {
                DIR *d;
                struct dirent *e;
                snprintf(path, sizeof path, "%s/new", f->box);
                d = opendir(path);
                assert_non_null(d);
                int cnt = 0;
                while ((e = readdir(d)) != NULL)
                    if (e->d_name[0] != '.')
                        names[cnt++] = strdup(e->d_name);
                closedir(d);
                assert_int_equal(cnt, 12 - i);
                /* the first file in the view's order: smallest name */
                int lo = 0;
                for (int j = 1; j < cnt; j++)
                    if (strverscmp(names[j], names[lo]) < 0)
                        lo = j;
                /* i == 0: remove message 1 (the second); i == 1: message 0 */
                if (i == 0) {
                    int second = lo == 0 ? 1 : 0;
                    for (int j = 0; j < cnt; j++)
                        if (j != lo && strverscmp(names[j], names[second]) < 0)
                            second = j;
                    lo = second;
                }
                snprintf(path, sizeof path, "%s/new/%s", f->box, names[lo]);
                assert_int_equal(remove(path), 0);
                for (int j = 0; j < cnt; j++)
                    free(names[j]);
                if (i == 0) {
                    assert_int_equal(dropview_read_msgs(v, 0, buf, sizeof buf, span, 4), 1);
                } else {
                    errno = 0;
                    assert_int_equal(dropview_read_msgs(v, 0, buf, sizeof buf, span, 4), -1);
                    assert_int_equal(errno, ESTALE);
                }
            }
        }
        dropview_free(&v);
    }
}

/* Concurrent deliveries during repeated compactions: every message delivered is there
 * exactly once at the end, and each compaction removed only what it was asked to. */
struct deliverer {
    const char *box;
    int n;
};

static void *
deliver_thread(void *arg)
{
    struct deliverer *d = arg;

    for (int i = 0; i < d->n; i++) {
        char text[64];
        snprintf(text, sizeof text, "Subject: t%d\n\nthread %d\n", i, i);
        deliver(d->box, MBOX_FORMAT_MBOX, "t@x", text, NULL);
    }
    return NULL;
}

static void
test_mbox_compaction_concurrent(void **state)
{
    struct fixture *f = *state;
    struct deliverer d = {f->box, 60};
    pthread_t th;
    int deleted = 0, rounds = 0;
    size_t len;
    char *s;

    for (int i = 0; i < 10; i++) {
        char text[64];
        snprintf(text, sizeof text, "Subject: k%d\n\nkeep %d\n", i, i);
        deliver(f->box, MBOX_FORMAT_MBOX, "k@x", text, NULL);
    }
    assert_int_equal(pthread_create(&th, NULL, deliver_thread, &d), 0);
    for (rounds = 0; rounds < 15; rounds++) {
        struct dropview *v = view(f, MBOX_FORMAT_MBOX, rounds % 2 == 0);
        size_t n = dropview_count(v);
        unsigned char *del = calloc(n + 1, 1);
        /* delete the first "thread" message of this snapshot, if any */
        for (size_t i = 0; i < n; i++) {
            char *m = served(v, i, NULL, -1, false);
            if (strstr(m, "Subject: t") != NULL) {
                del[i] = 1;
                deleted++;
                free(m);
                break;
            }
            free(m);
        }
        commit(v, del, NULL);
        free(del);
        dropview_free(&v);
    }
    pthread_join(th, NULL);
    struct dropview *v = view(f, MBOX_FORMAT_MBOX, false);
    assert_int_equal(dropview_count(v), 10 + 60 - deleted);
    dropview_free(&v);
    s = uu_read(f->box, &len);
    for (int i = 0; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof want, "\nkeep %d\n", i);
        char *at = strstr(s, want);
        assert_non_null(at);
        assert_null(strstr(at + 1, want));
    }
    int threads = 0;
    for (int i = 0; i < 60; i++) {
        char want[32];
        snprintf(want, sizeof want, "\nthread %d\n", i);
        char *at = strstr(s, want);
        if (at != NULL) {
            threads++;
            assert_null(strstr(at + 1, want));
        }
    }
    assert_int_equal(threads, 60 - deleted);
    free(s);
}

/* ---- maildir ---- */

static void
test_maildir(void **state)
{
    struct fixture *f = *state;
    char u[3][80], path[600];
    unsigned char del[3] = {0, 1, 0}, seen[3] = {1, 0, 0};
    struct dropview *v;
    DIR *d;
    struct dirent *e;
    int incur = 0;

    v = view(f, MBOX_FORMAT_MAILDIR, true); /* no maildir yet */
    assert_int_equal(dropview_count(v), 0);
    dropview_free(&v);
    deliver(f->box, MBOX_FORMAT_MAILDIR, "a@x", "Subject: 1\n\n.one\n", u[0]);
    usleep(2000);
    deliver(f->box, MBOX_FORMAT_MAILDIR, "a@x", "Subject: 2\n\n>From two\n", u[1]);
    usleep(2000);
    deliver(f->box, MBOX_FORMAT_MAILDIR, "a@x", "Subject: 3\n\nthree", u[2]);
    /* dot files and directories are not messages */
    snprintf(path, sizeof path, "%s/new/.hidden", f->box);
    uu_write_bytes(path, "x", 1);
    snprintf(path, sizeof path, "%s/cur/subdir", f->box);
    assert_int_equal(mkdir(path, 0700), 0);
    v = view(f, MBOX_FORMAT_MAILDIR, true);
    assert_int_equal(dropview_count(v), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(dropview_uid(v, i), u[i]);
    check_msg(v, 0, "Subject: 1\r\n\r\n.one\r\n");
    check_msg(v, 1, "Subject: 2\r\n\r\n>From two\r\n"); /* no mboxrd in maildir */
    check_msg(v, 2, "Subject: 3\r\n\r\nthree\r\n");
    char *s = served(v, 0, NULL, -1, true);
    assert_string_equal(s, "Subject: 1\r\n\r\n..one\r\n");
    free(s);
    commit(v, del, seen);
    dropview_free(&v);
    snprintf(path, sizeof path, "%s/cur", f->box);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, u[0], strlen(u[0])) == 0) {
            incur++;
            assert_non_null(strstr(e->d_name, ":2,S"));
        }
    }
    closedir(d);
    assert_int_equal(incur, 1);
    v = view(f, MBOX_FORMAT_MAILDIR, true);
    assert_int_equal(dropview_count(v), 2);
    assert_string_equal(dropview_uid(v, 0), u[0]);
    assert_true(dropview_msg(v, 0)->flags & DV_SEEN);
    assert_string_equal(dropview_uid(v, 1), u[2]);
    assert_false(dropview_msg(v, 1)->flags & DV_SEEN);
    check_msg(v, 0, "Subject: 1\r\n\r\n.one\r\n");
    /* the cached sizes are used next time: same answers */
    dropview_free(&v);
    v = view(f, MBOX_FORMAT_MAILDIR, true);
    assert_int_equal(dropview_msg(v, 1)->size, strlen("Subject: 3\r\n\r\nthree\r\n"));
    /* a message another client moved to cur/ meanwhile is still deleted */
    char from[700], to[700];
    const struct dropview_msg *m = dropview_msg(v, 1);
    (void)m;
    DIR *nd;
    snprintf(path, sizeof path, "%s/new", f->box);
    nd = opendir(path);
    assert_non_null(nd);
    while ((e = readdir(nd)) != NULL)
        if (strncmp(e->d_name, u[2], strlen(u[2])) == 0)
            break;
    assert_non_null(e);
    snprintf(from, sizeof from, "%s/new/%s", f->box, e->d_name);
    snprintf(to, sizeof to, "%s/cur/%s:2,F", f->box, e->d_name);
    closedir(nd);
    assert_int_equal(rename(from, to), 0);
    unsigned char del2[2] = {0, 1};
    commit(v, del2, NULL);
    dropview_free(&v);
    v = view(f, MBOX_FORMAT_MAILDIR, true);
    assert_int_equal(dropview_count(v), 1);
    dropview_free(&v);
}

/* Maildir names that are not valid UIDs get a derived one; a file is not a maildir. */
static void
test_maildir_names(void **state)
{
    struct fixture *f = *state;
    char path[600];
    struct dropview *v;
    struct dropview_params p = {f->box, MBOX_FORMAT_MAILDIR, NULL, 5};
    char err[256];

    snprintf(path, sizeof path, "%s/new", f->box);
    assert_int_equal(mkdir(f->box, 0700), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path,
             "%s/new/"
             "a-name-that-is-much-too-long-to-be-a-pop3-unique-id-because-it-"
             "has-more-than-seventy-characters",
             f->box);
    uu_write_bytes(path, "A: b\n\nx\n", 8);
    snprintf(path, sizeof path, "%s/new/10.1.host,S=8", f->box);
    uu_write_bytes(path, "A: b\n\ny\n", 8);
    snprintf(path, sizeof path, "%s/new/9.1.host", f->box);
    uu_write_bytes(path, "A: b\n\nz\n", 8);
    v = view(f, MBOX_FORMAT_MAILDIR, false);
    assert_int_equal(dropview_count(v), 3);
    assert_string_equal(dropview_uid(v, 0), "9.1.host"); /* numeric order */
    assert_string_equal(dropview_uid(v, 1), "10.1.host");
    assert_int_equal(dropview_uid(v, 2)[0], 'h');
    assert_int_equal(strlen(dropview_uid(v, 2)), 41);
    dropview_free(&v);
    snprintf(path, sizeof path, "%s/file", f->dir);
    uu_write_bytes(path, "x", 1);
    p.path = path;
    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_PERM);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {UU_DIR(test_mbox_basic),
                                       UU_DIR(test_mbox_missing_and_bad),
                                       UU_DIR(test_mbox_incremental),
                                       UU_DIR(test_mbox_invalidated),
                                       UU_DIR(test_mbox_bad_index),
                                       UU_DIR(test_mbox_corrupt_tail),
                                       UU_DIR(test_mbox_uid_stability),
                                       UU_DIR(test_mbox_compaction),
                                       UU_DIR(test_mbox_compaction_preamble),
                                       UU_DIR(test_mbox_locked),
                                       UU_DIR(test_mbox_read_stale),
                                       UU_DIR(test_read_msgs),
                                       UU_DIR(test_mbox_compaction_concurrent),
                                       UU_DIR(test_maildir),
                                       UU_DIR(test_maildir_names)};

    return UU_RUN_CASES(tests, test_conv, ccases);
}
