/*
 * stats.c — `wisp stats`: how busy a running wisp is, from another
 * terminal.
 *
 * It asks the run's control socket for its figures ("stats": the same
 * text the metrics endpoint serves, metrics.c), twice, --interval apart
 * (1 s by default), and prints what changed between the two as rates:
 * each scheduler's utilisation (time running processes over the
 * interval), spawns and exits a second, messages a second, reductions a
 * second, reactor events a second; beside them the totals since the run
 * started, run-queue lengths and memory by kind as they are now. --once
 * asks once and prints totals, with utilisation since the start.
 *
 * Reusing the exposition text (instead of a format of its own) keeps one
 * renderer for both consumers: whatever Prometheus sees, `wisp stats`
 * sees. The parser here reads only what it prints, by name and labels.
 */
#include "stats.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"

#define STATS_EXIT_FAIL 1
#define STATS_EXIT_USAGE 2
#define WHO "wisp stats"
#define CMD "stats"        /* (control_ask says "wisp CMD: ...") */

static const char stats_usage[] =
	"usage: wisp stats [--interval TIME | --once] [NODE | OSPID]\n";

static const char stats_help[] =
	"usage: wisp stats [--interval TIME | --once] [NODE | OSPID]\n"
	"\n"
	"How busy a running 'wisp run' (of this user) is: each scheduler's\n"
	"utilisation and run queue, processes spawned and ended a second (by\n"
	"reason), messages sent and dropped, reductions, reactor events, and\n"
	"memory by kind. The run is found as 'wisp reload' finds it: the only\n"
	"one, or the one named by its node name or its OS process id.\n"
	"\n"
	"  --interval TIME   rates over TIME (e.g. 500ms, 2s; default 1s)\n"
	"  --once            no rates: totals since the run started\n"
	"  --pid PID         the run whose OS process id is PID (also: PID alone)\n"
	"  --node NAME       the run started with --sname/--name NAME (also: NAME)\n"
	"\n"
	"The same figures, for Prometheus: wisp run --metrics ADDRESS:PORT.\n"
	"exit status: 0 shown; 1 no such run, or it ended; 2 usage error.\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(WHO ": ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s('wisp stats --help' says more)\n", stats_usage);
	return STATS_EXIT_USAGE;
}

/* ---- reading the figures ---- */

/* The value of sample `name{labels}` (labels "" for none) in text, or
 * NAN if there is none. */
static double value(const char *text, const char *name, const char *labels)
{
	size_t nl = strlen(name), ll = strlen(labels);
	for (const char *line = text; line != NULL && *line;) {
		const char *next = strchr(line, '\n');
		const char *rest = line + nl;
		if (*line != '#' && strncmp(line, name, nl) == 0) {
			if (ll == 0 && *rest == ' ')
				return strtod(rest + 1, NULL);
			if (ll > 0 && rest[0] == '{' && strncmp(rest + 1, labels, ll) == 0 &&
			    strncmp(rest + 1 + ll, "} ", 2) == 0)
				return strtod(rest + 3 + ll, NULL);
		}
		line = next != NULL ? next + 1 : NULL;
	}
	return NAN;
}

/* A figure that may be absent (a run without a node has no node count). */
static double v0(const char *text, const char *name, const char *labels)
{
	double v = value(text, name, labels);
	return isnan(v) ? 0 : v;
}

/* The run's figures (malloc'd), or NULL with a message. */
static char *ask(const char *pid, const char *node)
{
	char *reply;
	size_t len;
	if (control_ask(CMD, pid, node, "stats", &reply, &len) != 0)
		return NULL;
	char *nl = strchr(reply, '\n');
	char *end;
	unsigned long long n = strncmp(reply, "ok ", 3) == 0 ? strtoull(reply + 3, &end, 10) : 0;
	if (nl == NULL || n == 0 || end != nl || len - (size_t)(nl + 1 - reply) != n) {
		const char *said = strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply;
		int shown = (int)strcspn(said, "\n");
		fprintf(stderr, WHO ": the running wisp said: %.*s\n", shown < 300 ? shown : 300, said);
		free(reply);
		return NULL;
	}
	memmove(reply, nl + 1, n + 1);
	return reply;
}

/* ---- printing ---- */

/* bytes, readably: "812 B", "1.5 KiB", "12.0 MiB". */
static const char *size(double bytes, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", bytes, unit[u]);
	return buf;
}

/* A rate, readably: "0.5", "512.0", "12.3k", "4.2M". */
static const char *rate(double r, char *buf, size_t cap)
{
	if (r >= 1e6)
		snprintf(buf, cap, "%.1fM", r / 1e6);
	else if (r >= 1e4)
		snprintf(buf, cap, "%.1fk", r / 1e3);
	else
		snprintf(buf, cap, "%.1f", r);
	return buf;
}

/* A count and, with an interval, its rate: "5678 (512.0/s)". */
static const char *count(const char *a, const char *b, double dt, const char *name,
                         const char *labels, char *buf, size_t cap)
{
	char r[32];
	double now = v0(b, name, labels);
	if (a == NULL)
		snprintf(buf, cap, "%.0f", now);
	else
		snprintf(buf, cap, "%.0f (%s/s)", now, rate((now - v0(a, name, labels)) / dt, r, sizeof(r)));
	return buf;
}

static void print_schedulers(const char *a, const char *b, double dt, double up)
{
	int n = (int)v0(b, "wisp_schedulers", "");
	printf("scheduler  utilisation  run queue  dispatches%s\n", a ? "/s" : "");
	for (int i = 0; i < n; i++) {
		char l[32];
		snprintf(l, sizeof(l), "scheduler=\"%d\"", i);
		double busy = v0(b, "wisp_scheduler_busy_seconds_total", l);
		double disp = v0(b, "wisp_scheduler_dispatches_total", l);
		if (a != NULL) {
			busy -= v0(a, "wisp_scheduler_busy_seconds_total", l);
			disp = (disp - v0(a, "wisp_scheduler_dispatches_total", l)) / dt;
		}
		double util = 100 * busy / (a ? dt : up);
		printf("%-9d  %10.1f%%  %9.0f  %10.0f\n", i, util > 100 ? 100 : util,
		       v0(b, "wisp_run_queue_length", l), disp);
	}
	printf("%-9s  %11s  %9.0f\n", "global", "",
	       v0(b, "wisp_run_queue_length", "scheduler=\"global\""));
}

static void print_processes(const char *a, const char *b, double dt)
{
	char c1[64], c2[64];
	printf("processes  %.0f alive (%.0f hibernated, %.0f waiting on I/O), %.0f names\n",
	       v0(b, "wisp_processes", ""), v0(b, "wisp_processes_hibernated", ""),
	       v0(b, "wisp_processes_io_waiting", ""), v0(b, "wisp_registered_names", ""));
	double exited = 0, exited_a = 0;
	for (uint32_t k = 0; k < RT_EXIT_KINDS; k++) {
		char l[48];
		snprintf(l, sizeof(l), "reason=\"%s\"", proc_exit_kind_name(k));
		exited += v0(b, "wisp_processes_exited_total", l);
		exited_a += a ? v0(a, "wisp_processes_exited_total", l) : 0;
	}
	printf("           spawned %s, exited %.0f",
	       count(a, b, dt, "wisp_processes_spawned_total", "", c1, sizeof(c1)), exited);
	if (a != NULL)
		printf(" (%s/s)", rate((exited - exited_a) / dt, c2, sizeof(c2)));
	const char *sep = ": ";
	for (uint32_t k = 0; k < RT_EXIT_KINDS; k++) {
		char l[48];
		snprintf(l, sizeof(l), "reason=\"%s\"", proc_exit_kind_name(k));
		double n = v0(b, "wisp_processes_exited_total", l);
		if (n > 0) {
			printf("%s%s %.0f", sep, proc_exit_kind_name(k), n);
			sep = ", ";
		}
	}
	printf("\nmessages   sent %s, dropped %.0f (no such process %.0f, over a memory limit "
	       "%.0f, unknown node %.0f)\n",
	       count(a, b, dt, "wisp_messages_sent_total", "", c1, sizeof(c1)),
	       v0(b, "wisp_messages_dropped_total", "reason=\"noproc\"") +
	       v0(b, "wisp_messages_dropped_total", "reason=\"limit\"") +
	       v0(b, "wisp_messages_dropped_total", "reason=\"nonode\""),
	       v0(b, "wisp_messages_dropped_total", "reason=\"noproc\""),
	       v0(b, "wisp_messages_dropped_total", "reason=\"limit\""),
	       v0(b, "wisp_messages_dropped_total", "reason=\"nonode\""));
	printf("reductions %s\n", count(a, b, dt, "wisp_reductions_total", "", c1, sizeof(c1)));
	printf("reactor    events %s\n",
	       count(a, b, dt, "wisp_reactor_events_total", "", c2, sizeof(c2)));
}

static void print_memory(const char *b)
{
	char s[5][32];
	printf("memory     linear %s, stacks %s, messages %s, process table %s "
	       "(address space); resident %s\n",
	       size(v0(b, "wisp_memory_bytes", "kind=\"linear\""), s[0], sizeof(s[0])),
	       size(v0(b, "wisp_memory_bytes", "kind=\"stacks\""), s[1], sizeof(s[1])),
	       size(v0(b, "wisp_memory_bytes", "kind=\"messages\""), s[2], sizeof(s[2])),
	       size(v0(b, "wisp_memory_bytes", "kind=\"process_table\""), s[3], sizeof(s[3])),
	       size(v0(b, "process_resident_memory_bytes", ""), s[4], sizeof(s[4])));
	printf("sockets    %.0f open", v0(b, "wisp_sockets_open", ""));
	double nodes = value(b, "wisp_dist_nodes_connected", "");
	if (!isnan(nodes))
		printf("; %.0f node%s connected", nodes, nodes == 1 ? "" : "s");
	printf("\ncompile    cache %.0f hit%s, %.0f miss%s\n",
	       v0(b, "wisp_compile_cache_hits_total", ""),
	       v0(b, "wisp_compile_cache_hits_total", "") == 1 ? "" : "s",
	       v0(b, "wisp_compile_cache_misses_total", ""),
	       v0(b, "wisp_compile_cache_misses_total", "") == 1 ? "" : "es");
}

/* What the figures say: a (the first sample, or NULL: totals only) and
 * b (the last). */
static void print_stats(const char *a, const char *b)
{
	double up = v0(b, "wisp_uptime_seconds", "");
	double dt = a != NULL ? up - v0(a, "wisp_uptime_seconds", "") : 0;
	if (a != NULL && dt <= 0)
		a = NULL;
	printf("up %.1f s, %.0f scheduler%s; %s\n", up, v0(b, "wisp_schedulers", ""),
	       v0(b, "wisp_schedulers", "") == 1 ? "" : "s",
	       a ? "rates over the last interval" : "totals since the start");
	if (a != NULL)
		printf("(interval %.2f s)\n", dt);
	print_schedulers(a, b, dt, up > 0 ? up : 1);
	print_processes(a, b, dt);
	print_memory(b);
}

/* "1", "0.5", "500ms", "2s": seconds, or a negative number. */
static double parse_interval(const char *v)
{
	char *end;
	double x = strtod(v, &end);
	if (end == v || !(x >= 0) || x > 3600)
		return -1;
	if (strcmp(end, "ms") == 0)
		return x / 1000;
	return strcmp(end, "s") == 0 || *end == '\0' ? x : -1;
}

int cli_stats(int argc, char **argv)
{
	const char *pid = NULL, *node = NULL;
	double interval = 1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(stats_help, stdout);
			return 0;
		} else if (strcmp(a, "--once") == 0) {
			interval = 0;
		} else if (strcmp(a, "--interval") == 0) {
			if (i + 1 == argc || (interval = parse_interval(argv[++i])) <= 0)
				return usage_error("--interval takes a time above 0 and at most an hour "
				                   "(500ms, 2s)");
		} else if (strcmp(a, "--pid") == 0 || strcmp(a, "--node") == 0 ||
		           (a[0] != '-' && a[0] != '\0')) {
			bool named = a[0] == '-';
			const char *v = named ? (i + 1 < argc ? argv[++i] : NULL) : a;
			if (v == NULL)
				return usage_error("%s needs %s", a, a[2] == 'p' ? "the process id of a run"
				                                                : "the name of a node");
			if (pid != NULL || node != NULL)
				return usage_error("one run at a time ('%s')", v);
			bool as_pid = named ? a[2] == 'p' : control_is_pid(v);
			if (as_pid && !control_is_pid(v))
				return usage_error("--pid takes the process id of a run, not '%s'", v);
			if (!as_pid && (v[0] == '.' || strchr(v, '/') != NULL))
				return usage_error("'%s' cannot name a node", v);
			*(as_pid ? &pid : &node) = v;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	char *first = interval > 0 ? ask(pid, node) : NULL;
	if (interval > 0 && first == NULL)
		return STATS_EXIT_FAIL;
	if (interval > 0) {
		struct timespec ts = { (time_t)interval, (long)((interval - (time_t)interval) * 1e9) };
		nanosleep(&ts, NULL);
	}
	char *last = ask(pid, node);
	if (last == NULL) {
		free(first);
		return STATS_EXIT_FAIL;
	}
	print_stats(first, last);
	free(first);
	free(last);
	return 0;
}
