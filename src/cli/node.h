/*
 * node.h — `wisp run` as a distributed node: its options and cookie
 * (node.c says how).
 */
#ifndef WISP_CLI_NODE_H
#define WISP_CLI_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "dist/dist.h"

#define NODE_MAX_CONNECT 64

struct node_opts {
	const char *name;          /* --name/--sname (NULL: not distributed) */
	bool longnames;
	const char *cookie;        /* --cookie (NULL: ~/.erlang.cookie) */
	const char *connect[NODE_MAX_CONNECT];
	int nconnect;
	const char *ports;         /* --dist-port P or P1-P2 */
	const char *ticktime;      /* --net-ticktime SECONDS */
	bool allow_remote_spawn;   /* --allow-remote-spawn */
	bool allow_code_push;      /* --allow-code-push */
};

/* Parse one of the node options at argv[*i] (moving *i past its value).
 * 1: it was one; 0: it was not; 2: a usage error (said on stderr). */
int node_parse_opt(int argc, char **argv, int *i, struct node_opts *o);

/* Options that need a node given without --name/--sname: 2, said on
 * stderr (a usage error, told before the module is compiled); else 0. */
int node_check_opts(const struct node_opts *o);

/* Start the node the options ask for (*out NULL if none is asked for).
 * 0, or 1 with the reason on stderr. */
int node_start(const struct node_opts *o, const void *module, size_t module_len,
               const unsigned char hash[RT_HASH_BYTES], struct dist **out);

#endif
