/* Entry points of the `cove` subcommands; each returns the process exit status. */
#ifndef COVE_CLI_COMMANDS_H
#define COVE_CLI_COMMANDS_H

/* argv[0] is the subcommand name ("run", "img", "oci" or the program name). */
int cli_run_main(int argc, char **argv);
int cli_img_main(int argc, char **argv);
int cli_oci_main(int argc, char **argv);

#endif
