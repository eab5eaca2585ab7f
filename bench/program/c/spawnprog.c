/*
 * spawnprog.c — bench/program_run.py's spawner: starts the WASI program
 * at argv[1] (a file the process may read) N times, one after the other,
 * waiting for each to end, and prints
 *   first US     the first spawn and its end (compiles or loads the module)
 *   each US      the mean of the others (the module in the runtime's table)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <wisp/guest.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	FILE *f = fopen(argv[1], "rb");
	if (f == NULL)
		return 2;
	static char module[1 << 20];
	size_t len = fread(module, 1, sizeof module, f);
	fclose(f);
	int n = atoi(argv[2]);
	static const char args[] = "prog";
	struct wisp_program_spec spec = {
		.module = (uint32_t)(uintptr_t)module, .module_len = (uint32_t)len,
		.args = (uint32_t)(uintptr_t)args, .args_len = sizeof args,
		.caps = -1, .flags = WISP_SPAWN_MONITOR,
		.stdio = { WISP_STDIO_NULL, WISP_STDIO_NULL, WISP_STDIO_INHERIT },
	};
	double first = 0, t0 = 0;
	for (int i = 0; i <= n; i++) {
		if (i == 1)
			t0 = now_us();
		double s = now_us();
		struct wisp_program_out out;
		char why[300];
		if (wisp_program_spawn(&spec, &out, why, sizeof why) != WISP_OK) {
			printf("spawn failed: %s\n", why);
			return 1;
		}
		struct wisp_exit_reason r;
		if (wisp_wait_down(out.monitor, &r, NULL, 0) != WISP_OK || r.kind != WISP_EXIT_NORMAL)
			return 3;
		if (i == 0)
			first = now_us() - s;
	}
	printf("first %.1f\neach %.2f\n", first, (now_us() - t0) / n);
	return 0;
}
