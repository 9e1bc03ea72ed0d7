/*
 * tellsmtp - control dsmtp through its control socket (see common/tell.h, tellsmtp(8)).
 */
#include "tell.h"

/* main - tellsmtp. */
int
main(int argc, char **argv)
{
    return tell_main(argc, argv, "tellsmtp", "dsmtp");
}
