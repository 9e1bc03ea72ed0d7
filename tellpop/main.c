/*
 * tellpop - control dpop through its control socket and manage the users file (see
 * common/tell.h, tellpop(8)).
 */
#include "tell.h"

/* main - tellpop. */
int
main(int argc, char **argv)
{
    return tell_main(argc, argv, "tellpop", "dpop");
}
