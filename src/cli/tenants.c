/* switchboard tenants: placeholder until the tenant registry lands. */
#include <stdio.h>

#include "cli/cli.h"

int sb_cli_tenants(int argc, char **argv)
{
	fputs("switchboard tenants: not available yet\n", stderr);
	return 2;
}
