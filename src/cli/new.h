/*
 * new.h — `wisp new`: a ready Rust or C project from the SDK templates
 * (new.c says how).
 */
#ifndef WISP_CLI_NEW_H
#define WISP_CLI_NEW_H

/* Run `wisp new` with the arguments after "new"; returns the exit status
 * (0, 1 when the project could not be made, 2 for a usage error). */
int cli_new(int argc, char **argv);

#endif
