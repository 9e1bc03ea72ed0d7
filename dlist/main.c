/*
 * dlist - dmail's mailing-list server (DMail's DList). This milestone: `dlist -t` checks
 * dmail.conf and dlist_path/lists.dat and names the lists; the daemon is to come.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conf.h"
#include "lists.h"
#include "server.h"

/* main_check - -t: every problem as file:line, then the lists; the exit status. */
static int
main_check(const struct server_opts *o)
{
    struct conf_diag d = {0};
    struct conf *cf = conf_load(o->conf_path, &d);

    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    if (d.n > 0)
        fprintf(stderr, "dlist: %s: %d error%s, %d warning%s\n", o->conf_path, d.errors,
                d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
    conf_diag_free(&d);
    if (cf == NULL)
        return 78; /* EX_CONFIG, as server_load_config */
    if (cf->lists == NULL)
        printf("dlist: no lists (%s)\n",
               cf->dlist_path[0] != '\0' ? "no lists.dat in dlist_path" : "dlist_path is not set");
    else {
        printf("dlist: %zu list%s at %s:", cf->lists->n, cf->lists->n == 1 ? "" : "s",
               cf->lists->domain);
        for (size_t i = 0; i < cf->lists->n; i++)
            printf(" %s", cf->lists->v[i].name);
        printf("\n");
    }
    conf_unref(&cf);
    return 0;
}

/* main - dlist [-c FILE] -t. */
int
main(int argc, char **argv)
{
    struct server_opts o = {0};
    struct conf *cf;

    server_args(argc, argv, "dlist", "dmail mailing-list server (DList): lists.dat, list mail", &o);
    if (o.test_only)
        return main_check(&o);
    cf = server_load_config(&o);
    fprintf(stderr, "dlist: the list daemon is not part of this build yet; dlist -t checks "
                    "dmail.conf and lists.dat\n");
    conf_unref(&cf);
    return 69;
}
