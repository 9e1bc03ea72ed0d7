/*
 * conf_int - what the files of the conf module share (conf.c: the table, loading and
 * snapshots; conf_value.c: single values). Nothing outside conf includes this.
 */
#ifndef DMAIL_CONF_INT_H
#define DMAIL_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

#define CONF_REASON_MAX 512 /* one diagnostic's reason */

/* conf.c */
/* conf_field - the struct conf field of setting id. */
void *conf_field(const struct conf *c, int id);

/* conf_value.c: each parser is 0, or -1 with a reason in reason[len] */
/* conf_value_bool - true/false, yes/no, on/off, 1/0 (any case). */
int conf_value_bool(const char *v, bool *out, char *reason, size_t len);
/* conf_value_int - a whole decimal number, optionally signed. */
int conf_value_int(const char *v, long *out, char *reason, size_t len);
/* conf_value_size - bytes, with K/M/G (or KB/MB/GB, B) suffixes; bare is KB if kb. */
int conf_value_size(const char *v, bool kb, unsigned long long *out, char *reason, size_t len);
/* conf_value_time - seconds, with s/m/h/d suffixes. */
int conf_value_time(const char *v, long *out, char *reason, size_t len);
/* conf_value_enum - the index of v among the row's choices "a|b|c" (any case). */
int conf_value_enum(const struct conf_setting *row, const char *v, int *out, char *reason,
                    size_t len);
/* conf_value_bounds - v (or u when isunsigned) within the row's min/max (0,0 = unbounded);
 * text is the value as written, for the reason. */
int conf_value_bounds(const struct conf_setting *row, long long v, unsigned long long u,
                      bool isunsigned, const char *text, char *reason, size_t len);
/* conf_value_item - check one list item (or string value) of setting id, normalising it
 * in place (*item may
 * be replaced: host_domain entries become lower-case A-labels). */
int conf_value_item(int id, char **item, char *reason, size_t len);

#endif
