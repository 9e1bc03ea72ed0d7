/*
 * test_milter_edit - the header fields a filter is shown and the changes it asks for:
 * continuation lines, a header without a body, the obsolete "Name :" form, a first line
 * that is no field; add, insert, change, delete (by occurrence, any case), a change of a
 * missing field, body replacement (CRLF made LF, last line ended), leading space.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../dsmtp/milter_edit.h"
#include "unit_util.h"

/* apply - the changes of m to text, as a NUL-terminated string (freed by the caller). */
static char *
apply(const char *text, const struct milter_edits *m, bool leadspc)
{
    size_t n;
    char *out = milter_edit_apply(text, strlen(text), m, leadspc, &n), *s = malloc(n + 1);

    memcpy(s, out, n);
    s[n] = '\0';
    free(out);
    return s;
}

static void
test_fields(void **state)
{
    (void)state;
    const char *t = "Subject: a\n\tfolded\nX-A : b\nTo: c\n\nbody\n";
    struct milter_field f;
    size_t off = 0, body, n = 0;
    while (milter_field_next(t, strlen(t), off, &f, &body)) {
        if (n == 0) {
            assert_int_equal(f.name_len, 7);
            assert_memory_equal(t + f.value, " a\n\tfolded\n", f.end - f.value);
        }
        if (n == 1)
            assert_int_equal(f.name_len, 3); /* "X-A", the blank before the colon left out */
        off = f.end;
        n++;
    }
    assert_int_equal(n, 3);
    assert_string_equal(t + body, "body\n");
    /* no empty line: a line that is no field starts the body */
    t = "A: 1\nnot a field\n";
    assert_true(milter_field_next(t, strlen(t), 0, &f, &body));
    assert_false(milter_field_next(t, strlen(t), f.end, &f, &body));
    assert_string_equal(t + body, "not a field\n");
    /* header only */
    t = "A: 1\n";
    assert_true(milter_field_next(t, strlen(t), 0, &f, &body));
    assert_false(milter_field_next(t, strlen(t), f.end, &f, &body));
    assert_int_equal(body, strlen(t));
}

static void
test_headers(void **state)
{
    (void)state;
    const char *t = "Received: x\nSubject: s\nX-Spam: 1\nx-spam: 2\n\nbody\n";
    struct milter_edits m = {0};
    char *out;

    milter_edits_header(&m, ME_ADD, 0, "X-Added", "yes");
    milter_edits_header(&m, ME_INSERT, 0, "X-Top", "first\r\n\tfolded");
    milter_edits_header(&m, ME_CHANGE, 2, "X-SPAM", "");     /* deletes "x-spam: 2" */
    milter_edits_header(&m, ME_CHANGE, 1, "subject", "new"); /* in place */
    milter_edits_header(&m, ME_CHANGE, 1, "X-Missing", "added");
    milter_edits_header(&m, ME_CHANGE, 3, "X-Spam", ""); /* no third: nothing */
    assert_true(milter_edits_any(&m));
    out = apply(t, &m, false);
    assert_string_equal(out, "X-Top: first\n\tfolded\nReceived: x\nsubject: new\nX-Spam: 1\n"
                             "X-Added: yes\nX-Missing: added\n\nbody\n");
    free(out);
    milter_edits_clear(&m);
    assert_false(milter_edits_any(&m));
    milter_edits_header(&m, ME_ADD, 0, "X-Lead", " spaced");
    out = apply("A: 1\n", &m, true);
    assert_string_equal(out, "A: 1\nX-Lead: spaced\n\n");
    free(out);
    milter_edits_clear(&m);
}

static void
test_body(void **state)
{
    (void)state;
    struct milter_edits m = {0};
    char *out;

    milter_edits_body(&m, "new\r\nbo", 7);
    milter_edits_body(&m, "dy", 2);
    out = apply("A: 1\n\nold body\n", &m, false);
    assert_string_equal(out, "A: 1\n\nnew\nbody\n");
    free(out);
    milter_edits_clear(&m);
    milter_edits_body(&m, "", 0); /* an empty body */
    out = apply("A: 1\n\nold\n", &m, false);
    assert_string_equal(out, "A: 1\n\n");
    free(out);
    milter_edits_clear(&m);
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_fields), cmocka_unit_test(test_headers),
        cmocka_unit_test(test_body))
