/*
 * test_pop3_bulletin - bulletins: which files count, the message made of each, delivery
 * once per user in number order, hide_old_bulls for new users.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "dropview.h"
#include "../../dpop/bulletin.h"
#include "unit_util.h"

struct fixture {
    char dir[UU_DIR_MAX], bull[UU_PATH_MAX], state[UU_PATH_MAX], box[UU_PATH_MAX];
};

static int
setup(void **state)
{
    if (uu_setup_paths(state, sizeof(struct fixture), "test_bulletin", "bull", "state",
                       "drop/alice", NULL) < 0)
        return -1;
    return mkdir(((struct fixture *)*state)->bull, 0700);
}

/* put - write a bulletin file. */
static void
put(const struct fixture *f, const char *name, const char *text)
{
    free(uu_put(f->bull, name, text));
}

static struct bulletin_params
params(const struct fixture *f, const char *login, bool hide)
{
    struct bulletin_params p = {f->bull, "",     "example.test",   hide, f->state,
                                login,   f->box, MBOX_FORMAT_MBOX, 5,    "node"};
    return p;
}

/* served - message i of the mailbox as a client would get it. */
static char *
served(struct dropview *v, size_t i)
{
    struct dropview_conv c;
    static char out[65536];
    char in[4096];
    size_t w = 0;
    long n;
    unsigned long long pos = 0;

    dropview_conv_init(&c, true, false, NULL, -1);
    while ((n = dropview_read(v, i, pos, in, sizeof in)) > 0) {
        pos += (unsigned long long)n;
        w += dropview_conv_feed(&c, in, (size_t)n, out + w);
    }
    w += dropview_conv_finish(&c, out + w);
    out[w] = '\0';
    return out;
}

static struct dropview *
open_box(const struct fixture *f)
{
    struct dropview_params p = {f->box, MBOX_FORMAT_MBOX, NULL, 5};
    struct dropview *v;
    char err[256];

    assert_int_equal(dropview_open(&p, &v, err, sizeof err), DROP_OK);
    return v;
}

static void
test_deliver_once_in_order(void **state)
{
    struct fixture *f = *state;
    struct bulletin_params p = params(f, "alice", false);
    struct dropview *v;
    char err[256] = "";
    char *m;

    put(f, "10.txt", "Tenth.\n");
    put(f, "2.txt", "Subject: Maintenance tonight\nX-Prio: 1\n\nDown at 22:00.\n");
    put(f, "1.txt", "Welcome to the new mail server.\nFrom now on, use TLS.\n");
    put(f, "x.txt", "not a bulletin\n");
    put(f, "3.TXT", "not a bulletin\n");
    put(f, "4.txt.bak", "not a bulletin\n");
    put(f, "1234567890.txt", "too many digits\n");
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 3);
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 0); /* once */
    v = open_box(f);
    assert_int_equal(dropview_count(v), 3);
    m = served(v, 0);
    assert_non_null(strstr(m, "From: Email System Administrator <postmaster@example.test>\r\n"));
    assert_non_null(strstr(m, "To: alice\r\n"));
    assert_non_null(strstr(m, "Subject: Bulletin 1\r\n"));
    assert_non_null(strstr(m, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(m, "Message-ID: <bulletin.1."));
    assert_non_null(
        strstr(m, "\r\n\r\nWelcome to the new mail server.\r\nFrom now on, use TLS.\r\n"));
    m = served(v, 1);
    const char *head2 = "Subject: Maintenance tonight\r\nX-Prio: 1\r\nFrom: ";
    if (strncmp(m, head2, strlen(head2)) != 0)
        fail_msg("bulletin 2: %s", m);
    assert_null(strstr(m, "Bulletin 2"));
    assert_null(strstr(m, "Content-Type"));
    assert_non_null(strstr(m, "\r\n\r\nDown at 22:00.\r\n"));
    m = served(v, 2);
    assert_non_null(strstr(m, "Subject: Bulletin 10\r\n"));
    dropview_free(&v);
    /* a new one later: only that one */
    put(f, "11.txt", "Eleventh.\n");
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 1);
    v = open_box(f);
    assert_int_equal(dropview_count(v), 4);
    assert_non_null(strstr(served(v, 3), "Eleventh."));
    dropview_free(&v);
}

static void
test_hide_old_for_new_users(void **state)
{
    struct fixture *f = *state;
    struct bulletin_params p = params(f, "alice", true);
    char err[256] = "";

    put(f, "1.txt", "old\n");
    put(f, "2.txt", "old too\n");
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 0);
    assert_int_equal(access(f->box, F_OK), -1); /* nothing delivered */
    put(f, "3.txt", "new\n");
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 1);
    struct dropview *v = open_box(f);
    assert_int_equal(dropview_count(v), 1);
    assert_non_null(strstr(served(v, 0), "\r\n\r\nnew\r\n"));
    dropview_free(&v);
    /* without hide_old_bulls a new user gets them all */
    p = params(f, "bob", false);
    snprintf(f->box, sizeof f->box, "%s/drop/bob", f->dir);
    p.mailbox = f->box;
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 3);
}

static void
test_compose_from_and_nothing_to_do(void **state)
{
    struct fixture *f = *state;
    struct bulletin_params p = params(f, "carol@example.net", false);
    char sender[300], err[256] = "";
    char *m;

    p.from = "Help Desk";
    m = bulletin_compose(&p, 7, "Hi.\n", 4, 0, sender, sizeof sender);
    assert_string_equal(sender, "postmaster@example.test");
    assert_non_null(strstr(m, "From: Help Desk <postmaster@example.test>\n"));
    assert_non_null(strstr(m, "To: carol@example.net\n"));
    assert_non_null(strstr(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\n"));
    assert_non_null(strstr(m, "\n\nHi.\n"));
    free(m);
    p.from = "Admin <admin@example.test>";
    m = bulletin_compose(&p, 7, "From: x@y\n\nbody\n", 16, 0, sender, sizeof sender);
    assert_non_null(strstr(m, "From: x@y\n"));
    assert_null(strstr(m, "admin@example.test")); /* the file's own From: wins */
    free(m);
    /* a first line that only looks like a header, without an empty line after the block */
    m = bulletin_compose(&p, 8, "Note: read this\nmore text\n", 26, 0, sender, sizeof sender);
    assert_non_null(strstr(m, "Subject: Bulletin 8\n"));
    assert_non_null(strstr(m, "\n\nNote: read this\nmore text\n"));
    free(m);
    /* no directory, or an empty one */
    p.dir = "";
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 0);
    p.dir = f->bull;
    assert_int_equal(bulletin_deliver(&p, err, sizeof err), 0);
}

UU_MAIN(NULL, NULL, UU_DIR(test_deliver_once_in_order), UU_DIR(test_hide_old_for_new_users),
        UU_DIR(test_compose_from_and_nothing_to_do))
