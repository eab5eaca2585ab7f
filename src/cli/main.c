/*
 * main.c — the wisp command.
 *
 *   wisp run [options] module.wasm [args...]
 *   wisp compile [--tier fast|opt] [--quiet] module.wasm
 *   wisp --version | help
 *
 * Exit status of `wisp run` is the guest's: proc_exit's code, 0 when _start
 * returns; 134 when the guest traps (after "wisp: trap: <kind> in <function>"
 * on stderr); 1 when the module cannot be loaded, compiled or started; 2 for
 * a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../compile/pipeline.h"
#include "../engine/engine.h"
#include "../host/host.h"
#include "../host/wasi.h"
#include "../proc/proc.h"

#define EXIT_TRAP 134
#define EXIT_KILLED 137
#define EXIT_LOAD 1
#define EXIT_USAGE 2
#define MAX_PREOPENS 64
#define MAX_ENV 1024

static const char usage_text[] =
	"usage: wisp <command> [options]\n"
	"\n"
	"commands:\n"
	"  run [options] module.wasm [args...]   run a WASI command module\n"
	"  compile [options] module.wasm         build the optimized code ahead of time\n"
	"  help                                  this text\n"
	"  --version                             print the version\n"
	"\n"
	"run options:\n"
	"  --dir HOST[::GUEST]      give the guest a directory, read-write; it sees\n"
	"                           it as GUEST (default: the same path)\n"
	"  --dir-ro HOST[::GUEST]   the same, read-only\n"
	"  --env KEY=VALUE          set a guest environment variable (the host's\n"
	"                           environment is not passed through)\n"
	"  --schedulers N           scheduler threads (default: one per CPU)\n"
	"  --reductions N           reductions per time slice (default: 4000)\n"
	"  --tier fast|opt          fast: compile with tcc (instant start, slower code);\n"
	"                           opt: compile with gcc -O2 (cached; first build takes\n"
	"                           seconds). Default: opt if cached, else fast now and\n"
	"                           opt in the background for the next run\n"
	"  --                       end of options\n"
	"\n"
	"By default a guest gets no directories, no environment and no network.\n"
	"\n"
	"compile options:\n"
	"  --tier fast|opt          which tier to build (default: opt)\n"
	"  --quiet                  no progress output\n"
	"\n"
	"environment:\n"
	"  WISP_CACHE_DIR           compiled-module cache (default:\n"
	"                           $XDG_CACHE_HOME/wisp, else ~/.cache/wisp)\n"
	"  WISP_BACKGROUND_COMPILE  0 disables the background optimized build\n"
	"  WISP_CC, WISP_FAST_CC    compilers for the opt and fast tiers (gcc, tcc)\n"
	"\n"
	"exit status: the main process's; 134 if it traps (or a linked process's\n"
	"trap ends it); 137 if it is killed; 1 if the module cannot be loaded;\n"
	"2 for a usage error.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "wisp: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'wisp help')\n");
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

/* Take an option's value: "--opt=value" or "--opt value". */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static bool opt_is(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

struct run_opts {
	struct wasi_preopen preopens[MAX_PREOPENS];
	int npreopens;
	const char *env[MAX_ENV];
	int nenv;
	enum tier tier;
	bool tier_given;
	bool quiet;
	int schedulers;
	int64_t reductions;
	const char *module;
	int nargs;
	char **args;
};

static int add_dir(struct run_opts *o, const char *spec, bool ro)
{
	if (o->npreopens == MAX_PREOPENS)
		return usage_error("too many directories (at most 64)%s", "");
	if (*spec == '\0')
		return usage_error("empty directory in --dir%s", "");
	char *copy = strdup(spec);
	if (copy == NULL)
		return EXIT_LOAD;
	char *sep = strstr(copy, "::");
	struct wasi_preopen *p = &o->preopens[o->npreopens++];
	p->host_path = copy;
	p->guest_path = copy;
	p->read_only = ro;
	if (sep != NULL) {
		*sep = '\0';
		p->guest_path = sep + 2;
		if (*copy == '\0' || *p->guest_path == '\0')
			return usage_error("bad directory '%s': expected HOST or HOST::GUEST", spec);
	}
	return 0;
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
			if (o->nenv == MAX_ENV)
				return usage_error("too many --env options%s", "");
			o->env[o->nenv++] = v;
		} else if (for_run && (opt_is(a, "--schedulers") || opt_is(a, "--reductions"))) {
			bool sch = opt_is(a, "--schedulers");
			char *end;
			if ((v = opt_value(argc, argv, &i, sch ? "--schedulers" : "--reductions")) == NULL)
				return usage_error("%s needs a number", a);
			long long n = strtoll(v, &end, 10);
			if (*end != '\0' || n < 1 || n > (sch ? 1024 : 1000000000LL))
				return usage_error("bad number '%s'", v);
			if (sch)
				o->schedulers = (int)n;
			else
				o->reductions = n;
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
	struct wasm_file wf;
	if (wasm_file_load(&wf, o.module, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		pipeline_close(&p);
		return EXIT_LOAD;
	}
	char so[PATH_MAX];
	int status = 0;
	if (pipeline_compile(&p, &wf, o.tier, so, sizeof(so), err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s: %s\n", o.module, err);
		status = EXIT_LOAD;
	} else if (!o.quiet && isatty(2)) {
		fprintf(stderr, "wisp: compiled %s (%s tier)\n", o.module,
		        o.tier == TIER_OPT ? "opt" : "fast");
	}
	wasm_file_free(&wf);
	pipeline_close(&p);
	return status;
}

/* Pick and build the code to run; on success *so holds its path. */
static int prepare(struct pipeline *p, struct wasm_file *wf, const struct run_opts *o,
                   char *so, size_t solen, char *err, size_t errlen)
{
	if (o->tier_given)
		return pipeline_compile(p, wf, o->tier, so, solen, err, errlen);
	if (pipeline_lookup(p, wf, TIER_OPT, so, solen))
		return 0;
	int rc = pipeline_compile(p, wf, TIER_FAST, so, solen, err, errlen);
	const char *bg = getenv("WISP_BACKGROUND_COMPILE");
	if (rc == 0 && !(bg && strcmp(bg, "0") == 0))
		pipeline_compile_in_background(p, wf);
	return rc;
}

/* The exit status of `wisp run` from the main process's end. */
static int report(const struct engine_result *r, const struct reason *why)
{
	switch (why->kind) {
	case WISP_EXIT_NORMAL:
		return 0;
	case WISP_EXIT_CODE:
		return why->code;
	case WISP_EXIT_KILLED:
		fprintf(stderr, "wisp: the main process was killed\n");
		return EXIT_KILLED;
	case WISP_EXIT_NOPROC:
		fprintf(stderr, "wisp: the main process exited: a linked process did not exist\n");
		return EXIT_TRAP;
	case WISP_EXIT_TRAP:
		break;
	}
	if (r->outcome == ENGINE_TRAPPED && r->trap == WASM_RT_TRAP_NONE) {
		fprintf(stderr, "wisp: %s\n", r->message);   /* could not start */
		return EXIT_LOAD;
	}
	if (r->outcome == ENGINE_TRAPPED)
		fprintf(stderr, "wisp: trap: %s\n", why->text);
	else   /* a linked process's trap ended the main process */
		fprintf(stderr, "wisp: the main process exited: a linked process "
		        "trapped: %s\n", why->text);
	return EXIT_TRAP;
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	int rc = parse_args(argc, argv, &o, true);
	if (rc)
		return rc;
	char err[2048];
	struct pipeline p;
	if (pipeline_open(&p, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		return EXIT_LOAD;
	}
	p.progress = true;
	int status = EXIT_LOAD;
	struct wasm_file wf;
	engine_module *mod = NULL;
	if (wasm_file_load(&wf, o.module, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		pipeline_close(&p);
		return EXIT_LOAD;
	}
	if (wasm_find_export(&wf.info, "_start", WASM_KIND_FUNC) == NULL) {
		fprintf(stderr, "wisp: %s: the module has no _start function export: "
		        "wisp runs WASI command modules\n", o.module);
		goto out;
	}
	char so[PATH_MAX];
	if (prepare(&p, &wf, &o, so, sizeof(so), err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s: %s\n", o.module, err);
		goto out;
	}
	if (engine_module_load(so, &mod, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}

	const char **gargv = calloc((size_t)o.nargs + 2, sizeof(*gargv));
	if (gargv == NULL)
		goto out;
	gargv[0] = o.module;
	for (int i = 0; i < o.nargs; i++)
		gargv[i + 1] = o.args[i];
	struct rt_config cfg = {
		.schedulers = o.schedulers,
		.reductions = o.reductions,
		.wasi = {
			.argc = o.nargs + 1, .argv = gargv,
			.envc = o.nenv, .envp = o.env,
			.npreopens = o.npreopens, .preopens = o.preopens,
			.stdio = { 0, 1, 2 },
		},
	};
	/* Check the directories once here, so a missing one is a clear error
	 * before anything runs (every process opens its own copies). */
	struct wasi_ctx *probe = NULL;
	rc = wasi_ctx_new(&cfg.wasi, &probe, err, sizeof(err));
	wasi_ctx_free(probe);
	if (rc != 0) {
		free(gargv);
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	struct engine_result res;
	struct reason why;
	rc = rt_run_main(mod, &cfg, &res, &why, err, sizeof(err));
	free(gargv);
	if (rc != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	status = report(&res, &why);
out:
	engine_module_unload(mod);
	wasm_file_free(&wf);
	pipeline_close(&p);
	for (int i = 0; i < o.npreopens; i++)
		free((char *)o.preopens[i].host_path);
	return status;
}

int main(int argc, char **argv)
{
	/* A guest writing to a closed pipe gets EPIPE, not a dead host. */
	signal(SIGPIPE, SIG_IGN);
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
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(cmd, "compile") == 0)
		return cmd_compile(argc - 2, argv + 2);
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("wisp %s (module ABI %d)\n", WISP_VERSION, WISP_MODULE_ABI);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	return usage_error("unknown command '%s'", cmd);
}
