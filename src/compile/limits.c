/*
 * limits.c — bounds on the compile step.
 *
 * Compiling is the one place where a module's size turns into host time and
 * memory without any process limit applying: wasm2c is quadratic in the
 * number of functions (100,000 took 5 min 19 s), and a C compiler given a
 * large module can take minutes and gigabytes. So a module is first checked
 * against counts that real programs stay far below (module size, functions,
 * data bytes), and every compiler process then runs under CPU-time and
 * address-space limits (util_run: setrlimit in the child, inherited by
 * cc1/as/ld). The background build adds a wall-clock limit and niceness.
 *
 * When a compiler fails, the limits are the first suspect: limits_explain
 * turns "killed by SIGXCPU" or "out of memory" into a message that names
 * the limit and the flag that raises it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "limits.h"

void limits_default(struct compile_limits *l)
{
	*l = (struct compile_limits){
		.module_bytes = LIMITS_MODULE_BYTES,
		.functions = LIMITS_FUNCTIONS,
		.data_bytes = LIMITS_DATA_BYTES,
		.tool = { .cpu_seconds = LIMITS_CPU_SECONDS, .memory_bytes = LIMITS_MEMORY_BYTES },
	};
}

void limits_format_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char units[] = "KMGT";
	if (bytes < 1024 || bytes % 1024 != 0) {
		snprintf(out, outlen, "%" PRIu64 " bytes", bytes);
		return;
	}
	int u = -1;
	while (bytes % 1024 == 0 && bytes >= 1024 && u < 3) {
		bytes /= 1024;
		u++;
	}
	snprintf(out, outlen, "%" PRIu64 "%c", bytes, units[u]);
}

int limits_check_module(const struct compile_limits *l, size_t len,
                        const struct wasm_info *info, char *err, size_t errlen)
{
	char have[32], max[32];
	uint64_t nfuncs = (uint64_t)info->nfunc_imports + info->nfuncs;
	if (l->module_bytes > 0 && len > l->module_bytes) {
		limits_format_size(l->module_bytes, max, sizeof(max));
		snprintf(err, errlen, "the module is %zu bytes, over the compile limit of %s "
		         "(raise it with --compile-max-module)", len, max);
		return -E2BIG;
	}
	if (l->functions > 0 && nfuncs > l->functions) {
		snprintf(err, errlen, "the module has %" PRIu64 " functions, over the compile "
		         "limit of %" PRIu64 " (raise it with --compile-max-functions)",
		         nfuncs, l->functions);
		return -E2BIG;
	}
	if (l->data_bytes > 0 && info->data_bytes > l->data_bytes) {
		limits_format_size(info->data_bytes, have, sizeof(have));
		limits_format_size(l->data_bytes, max, sizeof(max));
		snprintf(err, errlen, "the module's data segments hold %s, over the compile "
		         "limit of %s (raise it with --compile-max-data)", have, max);
		return -E2BIG;
	}
	return 0;
}

/* Does a compiler's output say it ran out of memory? (gcc: "out of memory
 * allocating", "virtual memory exhausted"; tcc: "memory full"; C++ tools:
 * "std::bad_alloc"; ld: "Cannot allocate memory"; the dynamic loader, when
 * even the program's libraries do not fit: "failed to map segment".) */
static bool says_out_of_memory(const char *out)
{
	static const char *const words[] = {
		"out of memory", "memory exhausted", "memory full", "bad_alloc",
		"Cannot allocate memory", "failed to map segment",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(out, words[i]) != NULL)
			return true;
	return false;
}

bool limits_explain(const char *tool, const struct util_run_status *st,
                    const struct util_limits *lim, const char *output,
                    char *err, size_t errlen)
{
	char size[32];
	if (lim == NULL)
		return false;
	if (st->timed_out) {
		snprintf(err, errlen, "%s did not finish within %" PRIu64 " s and was stopped "
		         "(the background build's time limit)", tool, lim->wall_seconds);
		return true;
	}
	bool cpu_signal = st->signal == SIGXCPU ||
	                  (output != NULL && strstr(output, "CPU time limit") != NULL);
	if (lim->cpu_seconds > 0 &&
	    (cpu_signal || (st->signal == SIGKILL && st->cpu_seconds + 1 >= lim->cpu_seconds))) {
		snprintf(err, errlen, "%s used more than its CPU time limit of %" PRIu64 " s "
		         "(raise it with --compile-max-cpu)", tool, lim->cpu_seconds);
		return true;
	}
	if (lim->memory_bytes == 0)
		return false;
	limits_format_size(lim->memory_bytes, size, sizeof(size));
	if (output != NULL && says_out_of_memory(output)) {
		snprintf(err, errlen, "%s ran out of its memory limit of %s (raise it with "
		         "--compile-max-memory)", tool, size);
		return true;
	}
	/* A compiler that cannot grow its stack at the limit just crashes
	 * (gcc: "internal compiler error: Segmentation fault signal terminated
	 * program cc1"), and nothing tells that apart from a compiler bug: say
	 * so, with the limit. */
	const char *sig = output != NULL ? strstr(output, "signal terminated program") : NULL;
	if (st->signal != 0 || sig != NULL) {
		snprintf(err, errlen, "%s crashed (%s), possibly at its memory limit of %s "
		         "(if so, raise it with --compile-max-memory)", tool,
		         st->signal != 0 ? strsignal(st->signal) : "one of its processes was killed",
		         size);
		return true;
	}
	return false;
}
