/* `cove oci`: placeholder until its component lands. */
#include "cli/commands.h"

#include <stdio.h>

int cli_oci_main(int argc, char **argv)
{
	fprintf(stderr, "cove: 'oci' is not built yet\n");
	return 1;
}
