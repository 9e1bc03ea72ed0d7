/*
 * test_dwatch - dwatch's pure parts: the back-off schedule, the death window, the stderr
 * ring behind .ded files, the state names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../dwatch/dwatch.h"
#include "unit_util.h"

static void
test_backoff(void **state)
{
    assert_int_equal(dw_backoff_ms(1, 60), 1000);
    assert_int_equal(dw_backoff_ms(2, 60), 2000);
    assert_int_equal(dw_backoff_ms(3, 60), 4000);
    assert_int_equal(dw_backoff_ms(6, 60), 32000);
    assert_int_equal(dw_backoff_ms(7, 60), 60000); /* capped */
    assert_int_equal(dw_backoff_ms(1000, 60), 60000);
    assert_int_equal(dw_backoff_ms(5, 3), 3000);
    assert_int_equal(dw_backoff_ms(1, 1), 1000);
}

static void
test_death_window(void **state)
{
    struct dw_server *s = calloc(1, sizeof(*s));

    s->deaths[0] = 1000;
    s->deaths[1] = 5000;
    s->deaths[2] = 9000;
    s->ndeaths = 3;
    assert_int_equal(dw_deaths_in_window(s, 10000, 20000), 3);
    assert_int_equal(dw_deaths_in_window(s, 10000, 6000), 2); /* 1000 is too old */
    assert_int_equal(s->deaths[0], 5000);
    assert_int_equal(dw_deaths_in_window(s, 100000, 6000), 0);
    assert_int_equal(s->ndeaths, 0);
    free(s);
}

/* lines_seen - the relay callback. */
static void
lines_seen(void *arg, const char *line)
{
    int *n = arg;

    (*n)++;
    assert_null(strchr(line, '\n'));
}

static void
test_ring(void **state)
{
    struct dw_ring r;
    int relayed = 0;
    char *t;

    dw_ring_init(&r, 3);
    dw_ring_feed(&r, "one\ntw", 6, lines_seen, &relayed);
    dw_ring_feed(&r, "o\nthree\nfour\nfi", 15, lines_seen, &relayed);
    assert_int_equal(relayed, 4);
    t = dw_ring_text(&r);
    assert_string_equal(t, "two\nthree\nfour\n"); /* the oldest went */
    free(t);
    dw_ring_flush(&r); /* "fi" without newline */
    t = dw_ring_text(&r);
    assert_string_equal(t, "three\nfour\nfi\n");
    free(t);
    /* a very long line is cut, NUL bytes become '?' */
    char big[3000];
    memset(big, 'x', sizeof(big));
    big[5] = '\0';
    big[sizeof(big) - 1] = '\n';
    dw_ring_feed(&r, big, sizeof(big), NULL, NULL);
    t = dw_ring_text(&r);
    const char *last = strrchr(t, '\n');
    const char *prev = t;
    for (const char *p = t; p < last; p++)
        if (*p == '\n')
            prev = p + 1;
    assert_int_equal((size_t)(last - prev), DW_LINE_MAX);
    assert_int_equal(prev[5], '?');
    free(t);
    dw_ring_free(&r);

    dw_ring_init(&r, 2);
    t = dw_ring_text(&r);
    assert_string_equal(t, "");
    free(t);
    dw_ring_free(&r);
}

static void
test_state_names(void **state)
{
    static const char *const names[] = {
        [DW_STOPPED] = "stopped",   [DW_STARTING] = "starting", [DW_RUNNING] = "running",
        [DW_STOPPING] = "stopping", [DW_BACKOFF] = "backoff",   [DW_FAILED] = "failed",
    };
    UU_NAMES_ARE(dw_state_name, enum dw_state, names); /* every state named here */
}

UU_MAIN(NULL, NULL, cmocka_unit_test(test_backoff), cmocka_unit_test(test_death_window),
        cmocka_unit_test(test_ring), cmocka_unit_test(test_state_names))
