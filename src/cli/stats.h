/*
 * stats.h — `wisp stats`: a running wisp's figures, from another
 * terminal (stats.c).
 */
#ifndef WISP_CLI_STATS_H
#define WISP_CLI_STATS_H

/* `wisp stats [--interval TIME | --once] [NODE | PID]`: the exit status. */
int cli_stats(int argc, char **argv);

#endif
