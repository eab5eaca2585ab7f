/*
 * opts.h — reading the command line's options, shared by main.c and
 * node.c: "--opt value" and "--opt=value" alike.
 */
#ifndef WISP_CLI_OPTS_H
#define WISP_CLI_OPTS_H

#include <stdbool.h>
#include <string.h>

/* Whether arg is the option name (alone or with "=value"). */
static inline bool opt_is(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* The value of option `name` at argv[*i] ("--opt=value" or "--opt value",
 * moving *i past it), or NULL if it has none. */
static inline const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

#endif
