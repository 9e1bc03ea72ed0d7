/*
 * test_smtp_spf - the removal of forged Authentication-Results: fields (dsmtp/spf.c,
 * spf_strip_authres): only fields whose authserv-id is ours, in any case, after comments
 * or quoted; folded lines go with their field; the body and a prefix are never touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../dsmtp/spf.h"
#include "unit_util.h"

/* strip - spf_strip_authres on a copy of in after prefix; the result (static). */
static const char *
strip(const char *prefix, const char *in)
{
    static char buf[4096];
    size_t plen = strlen(prefix), len;

    snprintf(buf, sizeof(buf), "%s%s", prefix, in);
    len = spf_strip_authres(buf, strlen(buf), plen, "mx.example.org");
    buf[len] = '\0';
    return buf;
}

static void
test_strip(void **state)
{
    (void)state;
    assert_string_equal(strip("", "Authentication-Results: mx.example.org; spf=pass\n"
                                  "Subject: x\n\nbody\n"),
                        "Subject: x\n\nbody\n");
    assert_string_equal(strip("", "Subject: x\nAUTHENTICATION-RESULTS: MX.Example.ORG;\n"
                                  "\tdkim=pass\n  header.d=x\nFrom: a@b\n\nbody\n"),
                        "Subject: x\nFrom: a@b\n\nbody\n");
    assert_string_equal(strip("", "Authentication-Results : (c (nested)) \"mx.example.org\";"
                                  " none\n\n"),
                        "\n");
    assert_string_equal(strip("", "Authentication-Results: mx.example.org 1; none\n\n"), "\n");
    /* others' fields, and look-alikes, stay */
    static const char *const keep[] = {
        "Authentication-Results: other.example; spf=pass\n\n",
        "Authentication-Results: mx.example.org.evil; spf=pass\n\n",
        "Authentication-Results: sub.mx.example.org; spf=pass\n\n",
        "Authentication-Results-X: mx.example.org; spf=pass\n\n",
        "X-Authentication-Results: mx.example.org; spf=pass\n\n",
        "Subject: x\n\nAuthentication-Results: mx.example.org; in the body\n",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        assert_string_equal(strip("", keep[i]), keep[i]);
    /* our own fields, in the prefix, stay */
    assert_string_equal(strip("Authentication-Results: mx.example.org;\n\tspf=pass\n",
                              "Authentication-Results: mx.example.org; spf=fail\n\nb\n"),
                        "Authentication-Results: mx.example.org;\n\tspf=pass\n\nb\n");
    /* no body, no final line end */
    assert_string_equal(strip("", "Authentication-Results: mx.example.org; x"), "");
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_strip))
