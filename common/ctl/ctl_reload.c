/*
 * ctl_reload - what dsmtp's and dpop's control handlers share: the reload job (parse off
 * the loop, compare, report), config, debug and the statistics output. See ctl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "conf.h"
#include "ctl.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "xmem.h"

#define CTL_VALUE_MAX (64u << 20) /* longest formatted setting */

/* ctl_format_alloc - a setting's value as written, in a malloc'd string. */
static char *
ctl_format_alloc(const struct conf *c, enum conf_setting_id id)
{
    size_t len = 256;

    for (;;) {
        char *buf = xmalloc(len);
        if (conf_format(c, id, buf, len) == 0)
            return buf;
        free(buf);
        if (len >= CTL_VALUE_MAX)
            return xstrdup("(too long to show)");
        len *= 4;
    }
}

/* ctl_reload_compare - count changed settings; name the restart-only ones. */
static void
ctl_reload_compare(struct ctl_reload *rl)
{
    size_t off = 0;

    for (int id = 0; id < CONF_NSETTINGS; id++) {
        char *a = ctl_format_alloc(rl->old, (enum conf_setting_id)id);
        char *b = ctl_format_alloc(rl->cf, (enum conf_setting_id)id);
        if (strcmp(a, b) != 0) {
            rl->changed++;
            if ((conf_settings[id].flags & CF_RESTART) && off < sizeof(rl->restart)) {
                int n = snprintf(rl->restart + off, sizeof(rl->restart) - off, "%s%s",
                                 off ? ", " : "", conf_settings[id].name);
                off += n > 0 ? (size_t)n : 0;
            }
        }
        free(a);
        free(b);
    }
}

/* ctl_reload_work - the pool: parse, load the users file, compare, extra. */
static void
ctl_reload_work(uv_work_t *w)
{
    struct ctl_reload *rl = w->data;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rl->cf = conf_load(rl->path, &rl->diag);
    if (rl->cf != NULL && rl->want_db && rl->cf->authent_method == AUTHENT_EXTERNAL) {
        rl->db = auth_db_external(); /* the helpers' answers, asked again */
    } else if (rl->cf != NULL && rl->want_db && rl->cf->authent_method == AUTHENT_UNIX_USER) {
        rl->db = auth_db_unix(rl->cf->mail_spool); /* the accounts, looked up when asked */
    } else if (rl->cf != NULL && rl->want_db) {
        rl->db = auth_db_load(rl->cf->users_file, &rl->dbdiag);
        if (rl->db == NULL)
            snprintf(rl->error, sizeof(rl->error), "cannot read users file %s", rl->cf->users_file);
    }
    if (rl->cf != NULL && rl->old != NULL && rl->error[0] == '\0' &&
        (rl->cf->authent_method == AUTHENT_EXTERNAL) !=
            (rl->old->authent_method == AUTHENT_EXTERNAL))
        snprintf(rl->error, sizeof(rl->error),
                 "authent_method: a change to or from external needs a restart");
    if (rl->cf != NULL && rl->old != NULL)
        ctl_reload_compare(rl);
    if (rl->cf != NULL && rl->error[0] == '\0' && rl->extra_fn != NULL)
        rl->extra_fn(rl, rl->arg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    rl->ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* ctl_reload_after - back on the loop. */
static void
ctl_reload_after(uv_work_t *w, int status)
{
    struct ctl_reload *rl = w->data;

    conf_unref(&rl->old);
    rl->bad = rl->cf == NULL || rl->error[0] != '\0';
    rl->done_fn(rl, rl->arg);
}

/* ctl_reload_start - queue the job. */
int
ctl_reload_start(uv_loop_t *loop, const char *path, struct conf *old, bool want_db,
                 void (*extra)(struct ctl_reload *rl, void *arg),
                 void (*done)(struct ctl_reload *rl, void *arg), void *arg)
{
    struct ctl_reload *rl = xcalloc(1, sizeof(*rl));

    rl->path = xstrdup(path);
    rl->old = old != NULL ? conf_ref(old) : NULL;
    rl->want_db = want_db;
    rl->extra_fn = extra;
    rl->done_fn = done;
    rl->arg = arg;
    rl->w.data = rl;
    if (uv_queue_work(loop, &rl->w, ctl_reload_work, ctl_reload_after) < 0) {
        ctl_reload_free(&rl);
        return -1;
    }
    return 0;
}

/* ctl_reload_ok - usable. */
bool
ctl_reload_ok(const struct ctl_reload *rl)
{
    return !rl->bad;
}

/* ctl_reload_free - release what the server did not take. */
void
ctl_reload_free(struct ctl_reload **rlp)
{
    struct ctl_reload *rl = *rlp;

    if (rl == NULL)
        return;
    *rlp = NULL;
    conf_unref(&rl->cf);
    conf_unref(&rl->old);
    if (rl->db != NULL)
        auth_db_unref(&rl->db);
    conf_diag_free(&rl->diag);
    conf_diag_free(&rl->dbdiag);
    free(rl->path);
    free(rl);
}

/* ctl_reload_lines - diagnostics to the log and the client. */
static void
ctl_reload_lines(const struct conf_diag *d, struct ctl_req *r, bool fatal)
{
    for (size_t i = 0; i < d->n; i++) {
        if (fatal)
            log_error("reload: %s", d->msgs[i]);
        else
            log_warn("reload: %s", d->msgs[i]);
        if (r != NULL)
            ctl_line(r, "%s", d->msgs[i]);
    }
}

/* ctl_reload_report - log and answer. */
void
ctl_reload_report(const struct ctl_reload *rl, struct ctl_req *r)
{
    ctl_reload_lines(&rl->diag, r, rl->diag.errors > 0);
    ctl_reload_lines(&rl->dbdiag, r, false);
    if (rl->bad && rl->error[0] == '\0') {
        log_error("reload: %s has %d error%s; the old configuration stays", rl->path,
                  rl->diag.errors, rl->diag.errors == 1 ? "" : "s");
        if (r != NULL)
            ctl_err(r, "%s has %d error%s; the old configuration stays", rl->path, rl->diag.errors,
                    rl->diag.errors == 1 ? "" : "s");
        return;
    }
    if (rl->error[0] != '\0') {
        log_error("reload: %s; the old configuration stays", rl->error);
        if (r != NULL)
            ctl_err(r, "%s; the old configuration stays", rl->error);
        return;
    }
    if (rl->restart[0] != '\0') {
        log_warn("reload: changed settings that need a restart: %s", rl->restart);
        if (r != NULL)
            ctl_line(r, "restart needed for: %s (the old values stay until then)", rl->restart);
    }
    log_info("reload: %s: %d setting%s changed, %.1f ms", rl->path, rl->changed,
             rl->changed == 1 ? "" : "s", rl->ms);
    if (r != NULL)
        ctl_ok(r, "reloaded %s: %d setting%s changed in %.1f ms%s", rl->path, rl->changed,
               rl->changed == 1 ? "" : "s", rl->ms, rl->restart[0] ? "; restart needed" : "");
}

/* ctl_answer_config - value and origin of one setting. */
void
ctl_answer_config(struct ctl_req *r, const struct conf *cf, const char *name)
{
    const struct conf_setting *row = conf_lookup(name);
    char *v;

    if (row == NULL) {
        char esc[80];
        ctl_err(r, "unknown setting %s", log_escape(esc, sizeof(esc), name, strlen(name), 64));
        return;
    }
    int id = (int)(row - conf_settings);
    v = ctl_format_alloc(cf, (enum conf_setting_id)id);
    if (id == CONF_manager_password && v[0] != '\0') { /* a secret: never shown */
        free(v);
        v = xstrdup("(set, hidden)");
    }
    if (strcasecmp(name, row->name) != 0)
        ctl_line(r, "%s is a synonym of %s", name, row->name);
    ctl_line(r, "%s %s", row->name, v);
    ctl_line(r, "from %s", cf->origin[id] != NULL ? cf->origin[id] : "the default");
    ctl_line(r, "default %s", row->def[0] ? row->def : "(empty)");
    ctl_line(r, "changes %s", row->flags & CF_RESTART ? "at restart" : "at reload");
    ctl_ok(r, "%s %s (%s)", row->name, v, cf->origin[id] != NULL ? cf->origin[id] : "default");
    free(v);
}

/* ctl_answer_debug - a new log level. */
void
ctl_answer_debug(struct ctl_req *r, const char *level)
{
    int old = log_get_level();

    for (int l = LOGLVL_ERROR; l <= LOGLVL_DEBUG; l++) {
        char num[12];
        snprintf(num, sizeof(num), "%d", l);
        if (strcasecmp(level, log_level_name(l)) == 0 || strcmp(level, num) == 0) {
            log_set_level(l);
            log_info("log level %s (was %s)", log_level_name(l), log_level_name(old));
            ctl_ok(r, "log level %s (was %s)", log_level_name(l), log_level_name(old));
            return;
        }
    }
    ctl_err(r, "unknown level; use error, warn, info or debug");
}

/* ctl_stat - one value, plain or Prometheus. */
void
ctl_stat(struct ctl_req *r, bool prom, const char *prog, const char *name, const char *type,
         const char *help, const char *labels, unsigned long long value)
{
    if (!prom) {
        ctl_line(r, "%s%s%s%s %llu", name, labels ? "{" : "", labels ? labels : "",
                 labels ? "}" : "", value);
        return;
    }
    if (help != NULL) {
        ctl_line(r, "# HELP %s_%s %s", prog, name, help);
        ctl_line(r, "# TYPE %s_%s %s", prog, name, type);
    }
    ctl_line(r, "%s_%s%s%s%s %llu", prog, name, labels ? "{" : "", labels ? labels : "",
             labels ? "}" : "", value);
}

/* ctl_stats_args - "stats" or "stats -p". */
bool
ctl_stats_args(struct ctl_req *r, int argc, char **argv, bool *prom)
{
    *prom = false;
    if (argc == 1)
        return true;
    if (argc == 2 && (strcmp(argv[1], "-p") == 0 || strcmp(argv[1], "--prometheus") == 0)) {
        *prom = true;
        return true;
    }
    ctl_err(r, "usage: stats [-p]");
    return false;
}

/* ctl_reload_tls - the pool: the TLS context of the new settings, see ctl.h. */
void
ctl_reload_tls(struct ctl_reload *rl, void *arg)
{
    const struct conf *cf = rl->cf;
    char err[300];

    (void)arg;
    if (cf->tls_cert == NULL || cf->tls_cert[0] == '\0' || cf->tls_key == NULL ||
        cf->tls_key[0] == '\0')
        return;
    struct tls_policy pol;

    conf_tls_policy(cf, &pol);
    rl->extra = tls_server_ctx(cf->tls_cert, cf->tls_key, &pol, err, sizeof(err));
    if (rl->extra == NULL)
        snprintf(rl->error, sizeof(rl->error), "%s", err);
}

/* ctl_reload_apply - the loop: the new snapshots in force in a server, see ctl.h. */
void
ctl_reload_apply(struct ctl_reload *rl, struct conf **cf, struct auth_db **db, SSL_CTX **tls,
                 struct net_server *net)
{
    struct net_limits lim;

    conf_unref(cf);
    *cf = rl->cf;
    rl->cf = NULL;
    if (*db != NULL)
        auth_db_unref(db);
    *db = rl->db;
    rl->db = NULL;
    if (*tls != NULL)
        SSL_CTX_free(*tls);
    *tls = rl->extra; /* NULL if the certificate was removed */
    rl->extra = NULL;
    net_server_set_tls(net, *tls);
    log_set_level((*cf)->log_level);
    lim.max_connections = (*cf)->max_connections;
    lim.max_per_ip = (*cf)->max_per_ip;
    lim.reserved = (*cf)->reserved_connections;
    net_server_set_limits(net, &lim);
    if ((*cf)->authent_method == AUTHENT_USERS_FILE)
        log_info("reload: users file %s: %zu users", (*cf)->users_file,
                 *db != NULL ? auth_db_count(*db) : (size_t)0);
}
