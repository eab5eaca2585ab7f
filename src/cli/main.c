/*
 * main.c — the wisp command.
 *
 *   wisp run [options] module.wasm [args...]
 *   wisp compile [--tier fast|opt] [--quiet] module.wasm
 *   wisp new [--c] NAME      (new.c)
 *   wisp --version | help
 *
 * Exit status of `wisp run` is the guest's: proc_exit's code, 0 when _start
 * returns; 134 when the guest traps (after "wisp: trap: <kind> in <function>"
 * on stderr); 128 + the signal when SIGINT or SIGTERM stops it; 1 when the
 * module cannot be loaded, compiled or started (or its initial memory is over
 * --max-memory); 2 for a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../compile/pipeline.h"
#include "../engine/engine.h"
#include "../host/host.h"
#include "../proc/caps.h"
#include "../proc/proc.h"
#include "control.h"
#include "metrics.h"
#include "observe.h"
#include "serve.h"
#include "stats.h"
#include "tierwatch.h"
#include "new.h"
#include "node.h"
#include "opts.h"
#include "common/log.h"
#include "common/sha256.h"
#include "../compile/wasm_lines.h"

#define EXIT_TRAP 134
#define EXIT_KILLED 137
#define EXIT_LOAD 1
#define EXIT_USAGE 2
/* Stacks: the engine keeps 128 KiB of headroom for host calls below
 * which a guest call traps, and a guest frame may take 64 KiB. */
#define MIN_STACK (192u * 1024)
#define DEFAULT_HIBERNATE_NS (10ull * 1000000000)
#define MAX_STACK (64u * 1024 * 1024)

static const char usage_text[] =
	"usage: wisp <command> [options]\n"
	"\n"
	"commands:\n"
	"  run [options] module.wasm [args...]   run a WASI command module\n"
	"  serve --listen ADDRESS:PORT [serve options] [run options] module.wasm [args...]\n"
	"                                        run it once per TCP connection, its\n"
	"                                        stdin and stdout the connection (its\n"
	"                                        stderr wisp's: --stderr applies)\n"
	"  compile [options] module.wasm         build the optimized code ahead of time\n"
	"  new [--c] NAME                        a new Rust (or C) project in NAME:\n"
	"                                        cargo run, cargo test (make run)\n"
	"  reload [--pid P | --node N] [--purge] [--push] new.wasm\n"
	"                                        load a new version into a running wisp\n"
	"                                        (from another terminal): new processes\n"
	"                                        start on it, running ones move when\n"
	"                                        they ask (wisp reload --help)\n"
	"  stats [--interval TIME | --once] [NODE | OSPID]\n"
	"                                        how busy a running wisp is: schedulers,\n"
	"                                        spawn and exit rates, messages, memory\n"
	"                                        (wisp stats --help)\n"
	"  ps [--sort KEY] [--limit N] [--json] [NODE|OSPID]\n"
	"                                        list a running wisp's processes: state,\n"
	"                                        what each waits for, reductions, memory,\n"
	"                                        mailbox (wisp ps --help)\n"
	"  inspect PID                           one process in detail: links, monitors,\n"
	"                                        capabilities, where it waits\n"
	"  kill PID [REASON]                     an exit signal from outside (default:\n"
	"                                        kill, untrappable)\n"
	"  trace PID                             its messages, links, monitors and exit\n"
	"                                        signals, live\n"
	"  help                                  this text\n"
	"  --version                             print the version\n"
	"\n"
	"serve options:\n"
	"  --listen ADDRESS:PORT    where to accept ([v6]:PORT too; port 0: any, said)\n"
	"  --max-connections N      programs alive at once, what they spawn included\n"
	"                           (default 1024); more clients wait in the backlog\n"
	"  --idle-timeout SECS      kill a connection's program once no data has\n"
	"                           crossed it either way for SECS (default 300;\n"
	"                           0: never). Clients the host has no fds left for\n"
	"                           are closed at once, said once on stderr\n"
	"\n"
	"run options:\n"
	"  --dir HOST[::GUEST]      give the guest a directory, read-write; it sees\n"
	"                           it as GUEST (default: the same path). HOST is\n"
	"                           opened once, when wisp starts\n"
	"  --dir-ro HOST[::GUEST]   the same, read-only\n"
	"  --env KEY=VALUE          set a guest environment variable (the host's\n"
	"                           environment is not passed through)\n"
	"  --schedulers N           scheduler threads (default: one per usable CPU)\n"
	"  --reductions N           reductions per time slice (default: 4000)\n"
	"  --stack-size SIZE        native stack per process (default: 256K; at\n"
	"                           least 192K: guest frames plus host headroom)\n"
	"  --hibernate-after TIME   processes waiting longer than TIME (e.g. 500ms,\n"
	"                           10s; 0: never) hibernate: their stack and memory\n"
	"                           go back to the system until a message arrives\n"
	"                           (default: 10s)\n"
	"  --shutdown-grace TIME    on SIGTERM/SIGINT the main process gets an exit\n"
	"                           signal (reason SHUTDOWN); after TIME (default 5s)\n"
	"                           or a second signal everything stops\n"
	"  --tier fast|opt          fast: compile with tcc (instant start, slower code);\n"
	"                           opt: compile with gcc -O2 (cached; first build takes\n"
	"                           seconds). Default: opt if cached, else fast now and\n"
	"                           opt in the background for the next run\n"
	"  --name NAME[@HOST]       run as a distributed node (Erlang's distribution\n"
	"                           protocol: BEAM nodes are peers); --sname for a\n"
	"                           short host name. NAME@HOST:PORT listens on PORT\n"
	"                           without EPMD (EPMD is started when absent, as erl\n"
	"                           does, otherwise)\n"
	"  --cookie COOKIE          the cluster's cookie (default: ~/.erlang.cookie,\n"
	"                           made when missing)\n"
	"  --connect NODE           connect to NODE at start (repeatable; NODE may be\n"
	"                           NAME@HOST:PORT to skip EPMD)\n"
	"  --dist-port P[-Q]        listen for nodes on port P (or one of P..Q)\n"
	"  --net-ticktime SECONDS   a node silent this long is down (default: 60)\n"
	"  --allow-remote-spawn     other nodes (with the cookie) may start processes\n"
	"                           here, of modules they ship, with this run's\n"
	"                           capabilities\n"
	"  --allow-code-push        other nodes (with the cookie) may push new versions\n"
	"                           of the running module here (wisp reload --push)\n"
	"  --allow-cache-dir        allow --dir/--dir-ro of a directory that holds wisp's\n"
	"                           compile cache or lies inside it (refused by default:\n"
	"                           the guest could rewrite native code wisp loads)\n"
	"  --metrics ADDRESS:PORT   serve the run's figures for Prometheus at\n"
	"                           http://ADDRESS:PORT/metrics (port 0: any; the port\n"
	"                           is said on stderr)\n"
	"  --log-level LEVEL        crash and supervisor reports on stderr: error\n"
	"                           (crashes and supervisor reports), warning (the\n"
	"                           default: also the count of reports a crash storm\n"
	"                           suppressed), info (also exits with a nonzero code\n"
	"                           and expected panics) or none\n"
	"  --log-format text|json   reports as text (the default) or JSON lines\n"
	"  --                       end of options\n"
	"\n"
	"capabilities (by default a guest gets no directories, no environment\n"
	"and no network; it may spawn processes, with no limits):\n"
	"  --allow-connect HOST:PORT   may connect there (HOST or PORT may be *)\n"
	"  --allow-listen [HOST:]PORT  may listen there (HOST or PORT may be *)\n"
	"  --allow-udp                 may use UDP\n"
	"  --allow-dns                 may resolve host names\n"
	"  --max-memory SIZE           linear memory per process (64K, 16M, 1G)\n"
	"  --max-cpu N                 reductions per process over its lifetime;\n"
	"                              beyond, it is killed with reason 'cpu limit'\n"
	"  --max-processes N           live processes it may spawn (0: none)\n"
	"  --max-message SIZE          bytes per message (default, and the most: 64M)\n"
	"  --max-fds N                 file descriptors per process: a new one must\n"
	"                              be numbered below N (default 1024)\n"
	"  --stdin|--stdout|--stderr inherit|null|closed\n"
	"  --caps FILE                 the same options, one per line, without '--'\n"
	"  -v, --verbose               say on stderr which capability a denied call lacked\n"
	"A process can give the processes it spawns less than it has, never more.\n"
	"\n"
	"reload options:\n"
	"  --pid PID                the run to load into (needed when several run;\n"
	"                           wisp reload lists them)\n"
	"  --node NAME              the run started with --sname NAME or --name NAME\n"
	"  --purge                  kill the processes still on the version before the\n"
	"                           current one (without it such a load is refused:\n"
	"                           two versions at most, as in Erlang)\n"
	"  --push                   also load it on the connected nodes that allow it\n"
	"\n"
	"compile options:\n"
	"  --tier fast|opt          which tier to build (default: opt)\n"
	"  --quiet                  no progress output\n"
	"  --background             run as wisp run's background build: niced, at most\n"
	"                           one at a time per cache, each tool stopped after\n"
	"                           30 minutes\n"
	"\n"
	"compile limits (run and compile; 0 means no limit):\n"
	"  --compile-max-module SIZE     .wasm file size (default: 256M)\n"
	"  --compile-max-functions N     functions, imported and defined (default: 50000)\n"
	"  --compile-max-data SIZE       bytes in data segments (default: 256M)\n"
	"  --compile-max-cpu SECONDS     CPU time per compiler process (default: 600)\n"
	"  --compile-max-memory SIZE     address space per compiler process (default: 4G)\n"
	"\n"
	"environment:\n"
	"  WISP_CACHE_DIR           compiled-module cache (default:\n"
	"                           $XDG_CACHE_HOME/wisp, else ~/.cache/wisp)\n"
	"  WISP_BACKGROUND_COMPILE  0 disables the background optimized build\n"
	"  WISP_CC, WISP_FAST_CC    compilers for the opt and fast tiers (gcc, tcc)\n"
	"\n"
	"exit status: the main process's; 134 if it traps (or a linked process's\n"
	"trap ends it); 137 if it is killed; 130 (SIGINT, Ctrl-C) or 143 (SIGTERM)\n"
	"when a signal stops it; 1 if the module cannot be loaded; 2 for a usage\n"
	"error.\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "wisp: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(see 'wisp help')\n");
	va_end(ap);
	return EXIT_USAGE;
}

static int parse_tier(const char *s, enum tier *t, bool *given)
{
	if (strcmp(s, "fast") == 0)
		*t = TIER_FAST;
	else if (strcmp(s, "opt") == 0)
		*t = TIER_OPT;
	else
		return -1;
	*given = true;
	return 0;
}

struct run_opts {
	struct caps *root;         /* what the main process may do */
	enum tier tier;
	bool tier_given;
	bool quiet;
	bool background;           /* compile: the background build */
	bool allow_cache_dir;      /* run: a preopen may overlap the cache */
	struct compile_limits limits;
	int schedulers;
	int64_t reductions;
	uint64_t stack_size;
	uint64_t shutdown_grace_ns;
	uint64_t hibernate_after_ns;
	bool hibernate_given;
	const char *module;
	int nargs;
	char **args;
	int caps_depth;            /* --caps files including --caps files */
	struct node_opts node;     /* --name/--sname and the rest (node.c) */
	bool serving;              /* wisp serve */
	struct serve_opts serve;   /* --listen, --max-connections (serve.c) */
	const char *metrics;       /* --metrics ADDRESS:PORT (metrics.c), or NULL */
	enum log_level log_level;  /* --log-level: crash and supervisor reports */
	enum log_format log_format;/* --log-format */
};

static int add_dir(struct run_opts *o, const char *spec, bool ro)
{
	if (*spec == '\0')
		return usage_error("empty directory in --dir%s", "");
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", spec);
	char *sep = strstr(copy, "::");
	const char *guest = copy;
	if (sep != NULL) {
		*sep = '\0';
		guest = sep + 2;
		if (*copy == '\0' || *guest == '\0')
			return usage_error("bad directory '%s': expected HOST or HOST::GUEST", spec);
	}
	int rc = caps_add_dir(o->root, copy, guest, ro);
	if (rc != 0) {
		fprintf(stderr, "wisp: cannot open directory '%s': %s\n", copy,
		        strerror(-rc));
		return EXIT_LOAD;
	}
	return 0;
}

/* "64M", "1G", "4096": bytes. */
/* "0", "250ms", "10s", "2m", or plain seconds: ns in *out. 0 or -1. */
static int parse_duration(const char *v, uint64_t *out)
{
	char *end;
	double x = strtod(v, &end);
	if (end == v || !(x >= 0) || x > 1e9)
		return -1;
	double unit = 1e9;
	if (strcmp(end, "ms") == 0)
		unit = 1e6;
	else if (strcmp(end, "m") == 0)
		unit = 60e9;
	else if (strcmp(end, "s") != 0 && *end != '\0')
		return -1;
	*out = (uint64_t)(x * unit);
	return 0;
}

static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	if (end == v)
		return -1;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0' || n > UINT64_MAX / mul)
		return -1;
	*out = n * mul;
	return 0;
}

static int parse_args(int argc, char **argv, struct run_opts *o, bool for_run);

/* --caps FILE: one option per line, as on the command line without the
 * leading "--" ("dir /srv::/data", "allow-connect 127.0.0.1:5432", "max-memory
 * 64M"); blank lines and lines starting with # are ignored. */
static int read_caps_file(struct run_opts *o, const char *path)
{
	if (++o->caps_depth > 8)
		return usage_error("--caps files nest too deeply (%s)", path);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "wisp: cannot read capability file %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	char line[4096];
	int rc = 0, lineno = 0;
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		char *p = line + strspn(line, " \t");
		p[strcspn(p, "\r\n")] = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		char opt[128], *val = p + strcspn(p, " \t");
		size_t nl = (size_t)(val - p);
		if (nl + 3 > sizeof(opt)) {
			rc = usage_error("bad line in capability file: %s", p);
			break;
		}
		snprintf(opt, sizeof(opt), "--%.*s", (int)nl, p);
		val += strspn(val, " \t");
		char *args[3] = { opt, val, "x.wasm" };
		int n = *val ? 3 : 2;
		if (!*val)
			args[1] = "x.wasm";
		struct run_opts tmp = *o;
		rc = parse_args(n, args, &tmp, true);
		if (rc == 0) {
			tmp.module = o->module;
			tmp.args = o->args;
			tmp.nargs = o->nargs;
			*o = tmp;
		} else {
			fprintf(stderr, "wisp: (in %s, line %d)\n", path, lineno);
		}
	}
	fclose(f);
	o->caps_depth--;
	return rc;
}

static int parse_args(int argc, char **argv, struct run_opts *o, bool for_run)
{
	int i;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		int nr = for_run ? node_parse_opt(argc, argv, &i, &o->node) : 0;
		if (nr == 0 && o->serving)
			nr = serve_parse_opt(argc, argv, &i, &o->serve);
		if (nr == 0 && for_run)
			nr = metrics_parse_opt(argc, argv, &i, &o->metrics);
		if (nr == 2)
			return 2;
		if (nr == 1)
			continue;
		if (for_run && (opt_is(a, "--dir") || opt_is(a, "--dir-ro"))) {
			bool ro = opt_is(a, "--dir-ro");
			if ((v = opt_value(argc, argv, &i, ro ? "--dir-ro" : "--dir")) == NULL)
				return usage_error("%s needs a directory", a);
			int rc = add_dir(o, v, ro);
			if (rc)
				return rc;
		} else if (for_run && opt_is(a, "--env")) {
			if ((v = opt_value(argc, argv, &i, "--env")) == NULL)
				return usage_error("%s needs KEY=VALUE", a);
			if (strchr(v, '=') == NULL || v[0] == '=')
				return usage_error("bad --env '%s': expected KEY=VALUE", v);
			if (caps_add_env(o->root, v) != 0)
				return EXIT_LOAD;
		} else if (for_run && (opt_is(a, "--allow-connect") || opt_is(a, "--allow-listen"))) {
			bool listen = opt_is(a, "--allow-listen");
			if ((v = opt_value(argc, argv, &i, listen ? "--allow-listen" : "--allow-connect")) == NULL ||
			    caps_add_rule(o->root, listen, v) != 0)
				return usage_error(listen ? "--allow-listen takes [HOST:]PORT (HOST or PORT may be *)%s"
				                          : "--allow-connect takes HOST:PORT (HOST or PORT may be *)%s", "");
		} else if (for_run && strcmp(a, "--allow-udp") == 0) {
			o->root->udp = true;
		} else if (for_run && strcmp(a, "--allow-dns") == 0) {
			o->root->dns = true;
		} else if (for_run && (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)) {
			o->root->verbose = true;
		} else if (for_run && (opt_is(a, "--max-memory") || opt_is(a, "--max-message"))) {
			bool mem = opt_is(a, "--max-memory");
			uint64_t n;
			if ((v = opt_value(argc, argv, &i, mem ? "--max-memory" : "--max-message")) == NULL ||
			    parse_size(v, &n) != 0)
				return usage_error("%s takes a size (4096, 64K, 16M, 1G)", a);
			if (mem)
				o->root->max_memory = n;
			else
				o->root->max_message = n;
		} else if (for_run && (opt_is(a, "--max-cpu") || opt_is(a, "--max-processes") ||
		                       opt_is(a, "--max-fds"))) {
			bool cpu = opt_is(a, "--max-cpu"), fds = opt_is(a, "--max-fds");
			const char *name = cpu ? "--max-cpu" : fds ? "--max-fds" : "--max-processes";
			char *end;
			if ((v = opt_value(argc, argv, &i, name)) == NULL)
				return usage_error("%s needs a number", name);
			unsigned long long n = strtoull(v, &end, 10);
			if (*v == '\0' || *end != '\0' || *v == '-')
				return usage_error("bad number '%s' for %s: it takes a whole number, 0 or more",
				                   v, name);
			if (cpu) {
				o->root->max_cpu = n;
			} else if (fds) {
				o->root->max_fds = n;
			} else {
				o->root->max_processes = n;
				o->root->may_spawn = n > 0;
			}
		} else if (for_run && (opt_is(a, "--stdin") || opt_is(a, "--stdout") || opt_is(a, "--stderr"))) {
			int fd = opt_is(a, "--stdin") ? 0 : opt_is(a, "--stdout") ? 1 : 2;
			const char *name = fd == 0 ? "--stdin" : fd == 1 ? "--stdout" : "--stderr";
			if ((v = opt_value(argc, argv, &i, name)) == NULL)
				return usage_error("%s takes inherit, null or closed", a);
			if (!strcmp(v, "inherit"))
				o->root->stdio[fd] = CAP_STDIO_INHERIT;
			else if (!strcmp(v, "null"))
				o->root->stdio[fd] = CAP_STDIO_NULL;
			else if (!strcmp(v, "closed"))
				o->root->stdio[fd] = CAP_STDIO_CLOSED;
			else
				return usage_error("%s takes inherit, null or closed", a);
		} else if (for_run && opt_is(a, "--caps")) {
			if ((v = opt_value(argc, argv, &i, "--caps")) == NULL)
				return usage_error("%s needs a file", a);
			int rc = read_caps_file(o, v);
			if (rc)
				return rc;
		} else if (for_run && (opt_is(a, "--schedulers") || opt_is(a, "--reductions"))) {
			bool sch = opt_is(a, "--schedulers");
			const char *name = sch ? "--schedulers" : "--reductions";
			char *end;
			if ((v = opt_value(argc, argv, &i, name)) == NULL)
				return usage_error("%s needs a number", name);
			long long n = strtoll(v, &end, 10);
			if (*end != '\0' || n < 1 || n > (sch ? 1024 : 1000000000LL))
				return usage_error("bad number '%s' for %s: it takes 1 to %s", v, name,
				                   sch ? "1024" : "1000000000");
			if (sch)
				o->schedulers = (int)n;
			else
				o->reductions = n;
		} else if (for_run && opt_is(a, "--stack-size")) {
			uint64_t n;
			if ((v = opt_value(argc, argv, &i, "--stack-size")) == NULL ||
			    parse_size(v, &n) != 0 || n < MIN_STACK || n > MAX_STACK)
				return usage_error("--stack-size takes a size from 192K to 64M%s", "");
			o->stack_size = n;
		} else if (for_run && opt_is(a, "--hibernate-after")) {
			if ((v = opt_value(argc, argv, &i, "--hibernate-after")) == NULL ||
			    parse_duration(v, &o->hibernate_after_ns) != 0)
				return usage_error("--hibernate-after takes a time (0, 500ms, 10s, 2m)%s", "");
			o->hibernate_given = true;
		} else if (for_run && opt_is(a, "--shutdown-grace")) {
			/* A time like --hibernate-after's; 0 is refused: the runtime
			 * reads 0 as its default. */
			uint64_t ns;
			if ((v = opt_value(argc, argv, &i, "--shutdown-grace")) == NULL ||
			    parse_duration(v, &ns) != 0 || ns == 0 || ns > 86400ull * 1000000000)
				return usage_error("--shutdown-grace takes a time above 0 and at most a day "
				                   "(5, 0.5, 500ms, 10s, 2m; a plain number is seconds)");
			o->shutdown_grace_ns = ns;
		} else if (for_run && strcmp(a, "--allow-cache-dir") == 0) {
			o->allow_cache_dir = true;
		} else if (for_run && opt_is(a, "--log-level")) {
			if ((v = opt_value(argc, argv, &i, "--log-level")) == NULL ||
			    log_parse_level(v, &o->log_level) != 0)
				return usage_error("--log-level takes error, warning, info or none%s", "");
		} else if (for_run && opt_is(a, "--log-format")) {
			if ((v = opt_value(argc, argv, &i, "--log-format")) == NULL ||
			    log_parse_format(v, &o->log_format) != 0)
				return usage_error("--log-format takes text or json%s", "");
		} else if (opt_is(a, "--compile-max-cpu") || opt_is(a, "--compile-max-functions")) {
			bool cpu = opt_is(a, "--compile-max-cpu");
			const char *name = cpu ? "--compile-max-cpu" : "--compile-max-functions";
			char *end;
			if ((v = opt_value(argc, argv, &i, name)) == NULL)
				return usage_error("%s needs a number", name);
			unsigned long long n = strtoull(v, &end, 10);
			if (*v == '\0' || *end != '\0' || *v == '-')
				return usage_error("bad number '%s' for %s: it takes a whole number%s, "
				                   "0 for no limit", v, name, cpu ? " of seconds" : "");
			if (cpu)
				o->limits.tool.cpu_seconds = n;
			else
				o->limits.functions = n;
		} else if (opt_is(a, "--compile-max-memory") || opt_is(a, "--compile-max-module") ||
		           opt_is(a, "--compile-max-data")) {
			const char *name = opt_is(a, "--compile-max-memory") ? "--compile-max-memory" :
			                   opt_is(a, "--compile-max-module") ? "--compile-max-module" :
			                   "--compile-max-data";
			uint64_t n;
			if ((v = opt_value(argc, argv, &i, name)) == NULL || parse_size(v, &n) != 0)
				return usage_error("%s takes a size (4096, 64K, 16M, 1G)", a);
			if (strcmp(name, "--compile-max-memory") == 0)
				o->limits.tool.memory_bytes = n;
			else if (strcmp(name, "--compile-max-module") == 0)
				o->limits.module_bytes = n;
			else
				o->limits.data_bytes = n;
		} else if (!for_run && strcmp(a, "--background") == 0) {
			o->background = true;
		} else if (opt_is(a, "--tier")) {
			if ((v = opt_value(argc, argv, &i, "--tier")) == NULL ||
			    parse_tier(v, &o->tier, &o->tier_given) != 0)
				return usage_error("--tier takes 'fast' or 'opt'%s", "");
		} else if (!for_run && strcmp(a, "--quiet") == 0) {
			o->quiet = true;
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (i >= argc)
		return usage_error("missing module.wasm%s", "");
	o->module = argv[i];
	o->args = argv + i + 1;
	o->nargs = argc - i - 1;
	return 0;
}

static int cmd_compile(int argc, char **argv)
{
	struct run_opts o = { .tier = TIER_OPT };
	limits_default(&o.limits);
	int rc = parse_args(argc, argv, &o, false);
	if (rc)
		return rc;
	char err[2048];
	struct pipeline p;
	if (pipeline_open(&p, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		return EXIT_LOAD;
	}
	p.progress = !o.quiet;
	p.limits = o.limits;
	int bg_lock = -1;
	if (o.background) {
		/* Bounded: one at a time per cache (the lock, held until exit),
		 * niced, and each tool stopped by the clock too. */
		if ((bg_lock = pipeline_background_lock(&p)) < 0) {
			pipeline_close(&p);
			return 0;
		}
		p.limits.tool.wall_seconds = LIMITS_BACKGROUND_WALL_SECONDS;
		p.limits.tool.nice = LIMITS_BACKGROUND_NICE;
	}
	struct wasm_file wf;
	if (wasm_file_load(&wf, o.module, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		pipeline_close(&p);
		return EXIT_LOAD;
	}
	struct pipeline_so so;
	int status = 0;
	if (pipeline_compile(&p, &wf, o.tier, &so, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s: %s\n", o.module, err);
		status = EXIT_LOAD;
	} else {
		pipeline_so_close(&so);
		if (!o.quiet && isatty(2))
			fprintf(stderr, "wisp: compiled %s (%s tier)\n", o.module,
			        o.tier == TIER_OPT ? "opt" : "fast");
	}
	wasm_file_free(&wf);
	pipeline_close(&p);
	if (bg_lock >= 0)
		close(bg_lock);
	return status;
}

/* The build of (wf, t): from the cache, else compiled; m counts which. */
static int build(struct pipeline *p, struct wasm_file *wf, enum tier t, struct metrics *m,
                 struct pipeline_so *so, char *err, size_t errlen)
{
	bool hit = pipeline_lookup(p, wf, t, so, false);
	metrics_count_compile(m, hit);
	return hit ? 0 : pipeline_compile(p, wf, t, so, err, errlen);
}

/* Pick and build the code to run; on success *so is open, and *building
 * (if given) says whether the optimized build is being made in the
 * background meanwhile (the run is on the fast tier). m (may be NULL)
 * counts the cache's hits and misses. */
static int prepare(struct pipeline *p, struct wasm_file *wf, const struct run_opts *o,
                   struct metrics *m, struct pipeline_so *so, bool *building, char *err,
                   size_t errlen)
{
	if (building != NULL)
		*building = false;
	if (o->tier_given)
		return build(p, wf, o->tier, m, so, err, errlen);
	if (pipeline_lookup(p, wf, TIER_OPT, so, true)) {
		metrics_count_compile(m, true);
		return 0;
	}
	int rc = build(p, wf, TIER_FAST, m, so, err, errlen);
	const char *bg = getenv("WISP_BACKGROUND_COMPILE");
	if (rc == 0 && !(bg && strcmp(bg, "0") == 0)) {
		pipeline_compile_in_background(p, wf);
		if (building != NULL)
			*building = true;
	}
	return rc;
}

/* What the CLI runs beside the runtime: the control socket and the watch
 * for the optimized build (the runtime's proc_control). */
struct services {
	struct proc_control hooks;
	struct control *control;
	struct tierwatch *tier;
	struct serve *serve;
	struct metrics *metrics;
	struct dist *dist;
};

static int services_attach(void *ctx, struct rt *rt, char *err, size_t errlen)
{
	struct services *s = ctx;
	const struct proc_control *c = control_hooks(s->control);
	int rc = c != NULL ? c->attach(c->ctx, rt, err, errlen) : 0;
	if (rc == 0) {
		metrics_attach(s->metrics, rt, s->dist);
		tierwatch_start(s->tier, rt);
		serve_start(s->serve, rt);
	}
	return rc;
}

static void services_detach(void *ctx)
{
	struct services *s = ctx;
	serve_stop(s->serve);
	tierwatch_stop(s->tier);
	metrics_detach(s->metrics);
	const struct proc_control *c = control_hooks(s->control);
	if (c != NULL)
		c->detach(c->ctx);
}

/* Modules other nodes ship (proc_loader): compiled like the main one
 * (cached; the fast tier now and the optimized one in the background),
 * on the distribution layer's thread. */
struct loader_ctx {
	const struct pipeline *p;
	const struct run_opts *o;
	struct metrics *m;
};

/* Give mod the source positions of its functions, when wf carries DWARF
 * (crash reports' backtraces say file:line then). A module without, or
 * out of memory: nothing (no backtrace needs them). */
static void attach_sources(engine_module *mod, const struct wasm_file *wf)
{
	struct engine_sources *src = NULL;
	if (wasm_source_lines(wf->bytes, wf->len, &wf->info, &src) == 0 && src != NULL) {
		engine_module_set_sources(mod, src);
		engine_sources_unref(src);
	}
}

static int load_module_bytes(void *ctx, const char *what, const void *bytes, size_t len,
                        engine_module **out, char *err, size_t errlen)
{
	const struct loader_ctx *l = ctx;
	struct wasm_file wf;
	int rc = wasm_file_from_bytes(&wf, what, bytes, len, err, errlen);
	if (rc != 0)
		return rc;
	struct pipeline_so so = { .fd = -1 };
	rc = prepare((struct pipeline *)l->p, &wf, l->o, l->m, &so, NULL, err, errlen);
	if (rc == 0)
		rc = engine_module_load(so.path, so.fd, out, err, errlen);
	if (rc == 0)
		attach_sources(*out, &wf);
	pipeline_so_close(&so);
	wasm_file_free(&wf);
	return rc;
}

/* SIGTERM and SIGINT: a request to stop (rt_config.stop). The one
 * mutable global of wisp: a signal handler can reach nothing else. */
static atomic_int stop_request;

static void on_stop_signal(int sig)
{
	/* A second signal replaces the number with a count: "now". */
	int old = atomic_load(&stop_request);
	atomic_store(&stop_request, old == 0 ? sig : old + 1000);
}

static void catch_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* A preopen that holds the cache, or lies inside it, would let the guest
 * read the cache's key and rewrite native code that wisp loads; refused
 * unless --allow-cache-dir. */
static int check_preopens(const struct run_opts *o, const struct pipeline *p)
{
	for (int i = 0; i < o->root->ndirs && !o->allow_cache_dir; i++) {
		const char *dir = o->root->dirs[i].host;
		if (!pipeline_overlaps_cache(p, dir))
			continue;
		fprintf(stderr, "wisp: refusing to give the guest %s: it %s wisp's compile cache "
		        "%s, and a guest could rewrite native code that wisp loads from there; "
		        "use --allow-cache-dir to allow it anyway, or set WISP_CACHE_DIR to a "
		        "directory outside the guest's reach\n", dir,
		        cache_path_within(p->cache_dir, dir) ? "holds" : "is inside",
		        p->cache_dir);
		return EXIT_USAGE;
	}
	return 0;
}

/* True if the module imports anything from WASI (preview 1 or 0). */
static bool imports_wasi(const struct wasm_info *info)
{
	for (uint32_t i = 0; i < info->nimports; i++)
		if (strcmp(info->imports[i].module, "wasi_snapshot_preview1") == 0 ||
		    strcmp(info->imports[i].module, "wasi_unstable") == 0)
			return true;
	return false;
}

/* A module without _start was built as something else than a program:
 * say what it looks like and how to build a command instead. */
static void explain_no_start(const struct wasm_file *wf, const char *module)
{
	fprintf(stderr, "wisp: %s: the module has no _start function export: "
	        "wisp runs WASI command modules (programs with a main function)\n", module);
	if (wasm_find_export(&wf->info, "_initialize", WASM_KIND_FUNC) != NULL || imports_wasi(&wf->info))
		fprintf(stderr, "wisp: it looks like a WASI library (a reactor or a Rust cdylib): "
		        "build it as a program (without -mexec-model=reactor; a Rust binary "
		        "crate, e.g. 'wisp new NAME')\n");
	else
		fprintf(stderr, "wisp: it uses nothing from WASI, as modules built for plain wasm32 or "
		        "wasm32-unknown-unknown do: build for WASI ('clang --target=wasm32-wasi "
		        "--sysroot=/usr', 'cargo build --target wasm32-wasip1', or 'wisp new NAME')\n");
}

/* WASI commands: _start takes nothing and returns nothing. */
static int check_start(const struct wasm_file *wf, const char *module)
{
	const struct wasm_export *start = wasm_find_export(&wf->info, "_start", WASM_KIND_FUNC);
	if (start == NULL) {
		explain_no_start(wf, module);
		return EXIT_LOAD;
	}
	const struct wasm_functype *t = wasm_func_type(&wf->info, start->index);
	if (t != NULL && (t->nparams != 0 || t->nresults != 0)) {
		char type[256];
		wasm_format_type(t, type, sizeof(type));
		fprintf(stderr, "wisp: %s: the module's _start has type %s; a WASI command's "
		        "_start takes no parameters and returns nothing\n", module, type);
		return EXIT_LOAD;
	}
	return 0;
}

/* A --max-memory that fits the module's initial memory and its tables,
 * with room to grow: whole MiB above the initial memory plus 64 KiB (the
 * tables' size is not known here; the engine charges them too). */
static uint64_t suggested_max_memory(uint64_t initial)
{
	return ((initial + (64u << 10)) >> 20) + 1;
}

/* A main process whose initial linear memory is over --max-memory could
 * only trap while it is being created: refuse it here, saying how much it
 * needs. */
static int check_memory_limit(const struct wasm_file *wf, const struct run_opts *o)
{
	uint64_t limit = o->root->max_memory;
	if (limit == 0 || wf->info.nmemories == 0)
		return 0;
	uint64_t need = wf->info.mem_min * 65536;
	if (need <= limit)
		return 0;
	fprintf(stderr, "wisp: %s: the module's initial memory is %" PRIu64 " KiB (%" PRIu64
	        " pages of 64 KiB), more than --max-memory allows (%" PRIu64 " KiB); its tables "
	        "count too: try --max-memory %" PRIu64 "M\n", o->module, need >> 10,
	        wf->info.mem_min, limit >> 10, suggested_max_memory(need));
	return EXIT_LOAD;
}

/* The text of the reason as the run's last line shows it: made printable,
 * as the crash report shows it (it is guest text: a panic's message, a
 * function name from the module, an atom from another node). */
static void shown_reason(const struct reason *why, char *out, size_t cap)
{
	char raw[512];
	if (why->kind == WISP_EXIT_TERM) {
		dist_print_term(why->text, reason_text_len(why), raw, sizeof(raw));
	} else {
		size_t n = reason_text_len(why);
		memcpy(raw, why->text, n);
		raw[n] = '\0';
	}
	util_printable(out, cap, raw);
}

/* The exit status of `wisp run` from the main process's end. */
static int report(const struct engine_result *r, const struct reason *why,
                  const struct wasm_file *wf, uint64_t max_memory)
{
	int sig = atomic_load(&stop_request) % 1000;
	char text[4 * 512];
	shown_reason(why, text, sizeof(text));
	if (sig != 0 && (why->kind == WISP_EXIT_NORMAL || why->kind == WISP_EXIT_SHUTDOWN)) {
		fprintf(stderr, "wisp: stopped by %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
		return 128 + sig;
	}
	switch (why->kind) {
	case WISP_EXIT_NORMAL:
		return 0;
	case WISP_EXIT_CODE:
		return why->code;
	case WISP_EXIT_KILLED:
		/* (A text is a purge's, which reaches main through a link only:
		 * main is never purged.) */
		fprintf(stderr, "wisp: the main process was killed%s%s\n",
		        text[0] ? ", through a link: " : "", text);
		return EXIT_KILLED;
	case WISP_EXIT_NOPROC:
		fprintf(stderr, "wisp: the main process exited: a linked process did not exist\n");
		return EXIT_TRAP;
	case WISP_EXIT_LIMIT:
		fprintf(stderr, "wisp: the main process was killed: %s\n", text);
		return EXIT_KILLED;
	case WISP_EXIT_SHUTDOWN:
		fprintf(stderr, "wisp: the main process was shut down\n");
		return EXIT_KILLED;
	case WISP_EXIT_NOCONNECTION:
		fprintf(stderr, "wisp: the main process exited: the node of a linked process "
		        "was lost (noconnection)\n");
		return EXIT_TRAP;
	case WISP_EXIT_TERM:
		fprintf(stderr, "wisp: the main process exited: a linked process ended with "
		        "reason %s\n", text);
		return EXIT_TRAP;
	case WISP_EXIT_TRAP:
		break;
	}
	if (r->outcome == ENGINE_TRAPPED && r->trap == WASM_RT_TRAP_NONE) {
		fprintf(stderr, "wisp: %s\n", r->message);   /* could not start */
		return EXIT_LOAD;
	}
	bool panic = why->code == WISP_TRAP_PANIC;
	if (r->outcome != ENGINE_TRAPPED) {   /* a linked process's trap ended the main process */
		fprintf(stderr, "wisp: the main process exited: a linked process %s: %s\n",
		        panic ? "panicked" : "trapped", text);
		return EXIT_TRAP;
	}
	if (panic) {
		fprintf(stderr, "wisp: panicked: %s\n", text);
		return EXIT_TRAP;
	}
	fprintf(stderr, "wisp: trap: %s\n", text);
	/* Memory and tables over the limit as the instance is made (the CLI
	 * checked the memory alone before). */
	if (max_memory != 0 && strcmp(r->function, "<instantiation>") == 0 &&
	    (strstr(r->message, "memory limit") || strstr(r->message, "table too large")))
		fprintf(stderr, "wisp: the module's initial memory and tables need more than "
		        "--max-memory gives: try --max-memory %" PRIu64 "M\n",
		        suggested_max_memory(wf->info.mem_min * 65536));
	return EXIT_TRAP;
}

/* wisp serve's options that o holds wrongly: a usage error (said), or 0.
 * A --listen after the module is the program's own argument; stdin and
 * stdout are the connection, whatever --stdin or --stdout says. */
static int check_serve_opts(const struct run_opts *o)
{
	if (o->serve.listen == NULL) {
		bool after = false;
		for (int i = 0; i < o->nargs; i++)
			after = after || opt_is(o->args[i], "--listen");
		return usage_error("wisp serve needs --listen ADDRESS:PORT (e.g. --listen "
		                   "127.0.0.1:7000)%s", after ? ", before module.wasm: what follows "
		                   "the module is the program's own arguments" : "");
	}
	if (o->root->stdio[0] != CAP_STDIO_INHERIT || o->root->stdio[1] != CAP_STDIO_INHERIT)
		return usage_error("wisp serve: a program's stdin and stdout are its connection: "
		                   "--stdin and --stdout do not apply (--stderr does)%s", "");
	return 0;
}

/* wisp run, and wisp serve (serving: the module runs once per
 * connection instead of once). */
static int cmd_run(int argc, char **argv, bool serving)
{
	struct run_opts o = { .serving = serving, .log_level = LOG_WARNING, .log_format = LOG_TEXT };
	limits_default(&o.limits);
	o.root = caps_new();
	if (o.root == NULL)
		return EXIT_LOAD;
	/* The root's defaults: no directories, no environment, no network;
	 * it may spawn and build capability sets, with no limits. */
	o.root->may_spawn = true;
	o.root->may_create_caps = true;
	o.root->may_use_nodes = true;
	o.root->may_load_code = true;
	int rc = parse_args(argc, argv, &o, true);
	if (rc == 0)
		rc = node_check_opts(&o.node);
	if (rc == 0 && serving)
		rc = check_serve_opts(&o);
	if (rc) {
		caps_unref(o.root);
		return rc;
	}
	char err[2048];
	struct pipeline p;
	if (pipeline_open(&p, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		return EXIT_LOAD;
	}
	p.progress = true;
	p.limits = o.limits;
	int status = EXIT_LOAD;
	struct wasm_file wf;
	engine_module *mod = NULL;
	struct dist *node = NULL;
	struct control *control = NULL;
	struct tierwatch *tier = NULL;
	struct serve *serve = NULL;
	struct log *log = NULL;
	struct pipeline_so so = { .fd = -1 };
	if ((rc = check_preopens(&o, &p)) != 0) {
		pipeline_close(&p);
		caps_unref(o.root);
		return rc;
	}
	/* (Bound before anything is compiled: a taken port is said at once.) */
	struct metrics *metrics = metrics_new(o.metrics, err, sizeof(err));
	if (metrics == NULL) {
		fprintf(stderr, "wisp: %s\n", err);
		pipeline_close(&p);
		caps_unref(o.root);
		return EXIT_LOAD;
	}
	if (wasm_file_load(&wf, o.module, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		metrics_free(metrics);
		pipeline_close(&p);
		caps_unref(o.root);
		return EXIT_LOAD;
	}
	if (check_start(&wf, o.module) != 0 || check_memory_limit(&wf, &o) != 0)
		goto out;
	bool building;
	if (prepare(&p, &wf, &o, metrics, &so, &building, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s: %s\n", o.module, err);
		goto out;
	}
	rc = engine_module_load(so.path, so.fd, &mod, err, sizeof(err));
	pipeline_so_close(&so);
	if (rc != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	attach_sources(mod, &wf);

	const char **gargv = calloc((size_t)o.nargs + 2, sizeof(*gargv));
	if (gargv == NULL) {
		fprintf(stderr, "wisp: out of memory\n");
		goto out;
	}
	gargv[0] = o.module;
	for (int i = 0; i < o.nargs; i++)
		gargv[i + 1] = o.args[i];
	rc = caps_set_args(o.root, o.nargs + 1, gargv);
	free(gargv);
	if (rc != 0 || caps_finish(o.root) != 0) {
		fprintf(stderr, "wisp: cannot set up the capabilities: %s\n", strerror(errno));
		goto out;
	}
	struct rt_config cfg = {
		.schedulers = o.schedulers,
		.reductions = o.reductions,
		.root = o.root,
		.hooks = &host_proc_hooks,
		.stop = &stop_request,
		.stack_size = o.stack_size,
		.shutdown_grace_ns = o.shutdown_grace_ns,
		.hibernate_after_ns = o.hibernate_given ? o.hibernate_after_ns : DEFAULT_HIBERNATE_NS,
	};
	struct engine_result res;
	struct reason why;
	util_sha256(wf.bytes, wf.len, cfg.module_hash);
	struct loader_ctx lctx = { &p, &o, metrics };
	struct proc_loader loader = { load_module_bytes, &lctx };
	cfg.loader = &loader;
	if ((rc = node_start(&o.node, wf.bytes, wf.len, cfg.module_hash, &node)) != 0) {
		status = rc == 2 ? 2 : EXIT_LOAD;
		goto out;
	}
	if (node != NULL)
		cfg.remote = dist_remote(node);
	struct services services = {
		{ services_attach, services_detach, &services },
		control_new(node != NULL ? dist_node_name(node) : NULL, node),
		building ? tierwatch_new(&p, &wf, cfg.module_hash) : NULL,
		NULL,
		metrics,
		node,
	};
	control = services.control;
	control_set_metrics(control, metrics);
	tier = services.tier;
	cfg.control = &services.hooks;
	if (o.serving && (serve = services.serve = serve_new(&o.serve, o.root, &stop_request, err,
	                                                      sizeof(err))) == NULL) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	cfg.no_main = o.serving;
	struct log_config lc = { .fd = 2, .level = o.log_level, .format = o.log_format };
	if (log_open(&lc, &log) != 0) {
		fprintf(stderr, "wisp: cannot start the report log\n");
		goto out;
	}
	cfg.log = log;
	metrics_set_log(metrics, log);
	catch_stop_signals();
	rc = rt_run_main(mod, &cfg, &res, &why, err, sizeof(err));
	mod = NULL;   /* (the runtime's from then on: it unloads it) */
	/* Its reports before wisp's own last words. */
	log_close(log);
	log = NULL;
	if (rc < 0) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	/* (A service ends when it is told to: that is no failure.) */
	status = o.serving && rc == RT_STOPPED ? 0 : report(&res, &why, &wf, o.root->max_memory);
	if (rc == 1) {
		/* A process is still inside a blocking host call on some thread:
		 * the runtime and its modules stay. Exit now. */
		fflush(stdout);
		fflush(stderr);
		_exit(status);
	}
out:
	log_close(log);
	serve_free(serve);
	tierwatch_free(tier);
	control_free(control);
	metrics_free(metrics);
	dist_free(node);
	engine_module_unload(mod);
	wasm_file_free(&wf);
	pipeline_close(&p);
	caps_unref(o.root);
	return status;
}

/* Guests' files and sockets share the host's RLIMIT_NOFILE with the runtime:
 * take all the kernel allows. WASI keeps the top of it for the runtime
 * (src/host/wasi.c), so guests together cannot starve it. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Fds 0-2 closed when wisp starts would be the numbers the next open gets:
 * a preopened directory opened as fd 0 would then also be the guests'
 * "inherited" stdin, with a directory's rights. Put /dev/null there first
 * (a guest inheriting a closed stdio reads EOF and writes into nothing). */
static void fill_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

int main(int argc, char **argv)
{
	/* A guest writing to a closed pipe gets EPIPE, not a dead host. */
	signal(SIGPIPE, SIG_IGN);
	fill_stdio();
	raise_fd_limit();
	/* Processes come and go by the million: glibc's default of handing
	 * freed heap back to the kernel as soon as 128 KiB are free at its
	 * top makes every burst of exits an madvise and every burst of spawns
	 * page faults again. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	/* `wisp serve --help` and the like (only first: later, --help may be
	 * the module's argument). */
	bool help = argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
	if (help && (strcmp(cmd, "run") == 0 || strcmp(cmd, "serve") == 0 ||
	             strcmp(cmd, "compile") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 2, argv + 2, false);
	if (strcmp(cmd, "serve") == 0)
		return cmd_run(argc - 2, argv + 2, true);
	if (strcmp(cmd, "compile") == 0)
		return cmd_compile(argc - 2, argv + 2);
	if (strcmp(cmd, "new") == 0)
		return cli_new(argc - 2, argv + 2);
	if (strcmp(cmd, "reload") == 0)
		return cli_reload(argc - 2, argv + 2);
	if (strcmp(cmd, "stats") == 0)
		return cli_stats(argc - 2, argv + 2);
	if (strcmp(cmd, "ps") == 0)
		return cli_ps(argc - 2, argv + 2);
	if (strcmp(cmd, "inspect") == 0)
		return cli_inspect(argc - 2, argv + 2);
	if (strcmp(cmd, "kill") == 0)
		return cli_kill(argc - 2, argv + 2);
	if (strcmp(cmd, "trace") == 0)
		return cli_trace(argc - 2, argv + 2);
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("wisp %s (module ABI %d)\n", WISP_VERSION, WISP_MODULE_ABI);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	size_t n = strlen(cmd);
	if (cmd[0] == '-')   /* a run option given before the command */
		return usage_error("unknown command '%s': options go after the command, "
		                   "e.g. 'wisp run %s ... module.wasm'", cmd, cmd);
	if (n > 5 && strcmp(cmd + n - 5, ".wasm") == 0)
		return usage_error("unknown command '%s': to run a module, 'wisp run %s'", cmd, cmd);
	return usage_error("unknown command '%s'", cmd);
}
