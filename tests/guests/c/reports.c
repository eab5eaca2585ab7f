/* reports.c — processes that end in every way a crash report knows, and
 * bad calls of wisp_panic and wisp_supervisor_report
 * (tests/e2e/test_crash_reports.py). argv[1] picks the case; the main
 * process prints what it saw and "main done". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wisp/guest.h>

__attribute__((noinline)) static void boom(void)
{
	__builtin_trap();
}

__attribute__((noinline)) static void handler(const void *a, uint32_t n)
{
	(void)a; (void)n;
	boom();
}

static void hog(const void *a, uint32_t n)
{
	(void)a; (void)n;
	for (volatile unsigned long i = 0;; i++) {}
}

static void sleeper(const void *a, uint32_t n)
{
	(void)a; (void)n;
	wisp_sleep(60000000000LL);
}

static void exiter(const void *a, uint32_t n)
{
	(void)a; (void)n;
	exit(3);
}

static void named(const void *a, uint32_t n)
{
	(void)a; (void)n;
	const char name[] = "worker\x1b[2J";
	wisp_register(name, sizeof(name) - 1, wisp_self());
	boom();
}

/* Links to a process that crashes, and does not trap exits. */
static void victim(const void *a, uint32_t n)
{
	(void)a; (void)n;
	wisp_spawn_link(handler, NULL, 0);
	wisp_sleep(60000000000LL);
}

static void panic_text(const void *a, uint32_t n)
{
	(void)a; (void)n;
	const char text[] = "bad state: \x1b[2J\nwisp: fake line";
	wisp_panic(text, sizeof(text) - 1, 0);
}

static void panic_quiet(const void *a, uint32_t n)
{
	(void)a; (void)n;
	wisp_panic("expected", 8, WISP_PANIC_QUIET);
}

static void panic_outside(const void *a, uint32_t n)
{
	(void)a; (void)n;
	wisp_panic((const char *)(uintptr_t)0xfffffff0u, 64, 0);
}

static void panic_huge(const void *a, uint32_t n)
{
	(void)a; (void)n;
	static const char text[] = "huge";
	wisp_panic(text, 0xffffffffu, 0);
}

static void panic_long(const void *a, uint32_t n)
{
	(void)a; (void)n;
	/* "x" and 49,999 two-byte characters: the reason's 199 bytes end in
	 * the middle of one, so the cut must move back to where it starts. */
	static char text[100000];
	text[0] = 'x';
	for (int i = 1; i + 1 < 100000; i += 2) {
		text[i] = (char)0xc3;
		text[i + 1] = (char)0xa9;
	}
	wisp_panic(text, 99999, 0);
}

static void report_outside(const void *a, uint32_t n)
{
	(void)a; (void)n;
	struct wisp_sup_report r = { .event = WISP_SUP_START_FAILED, .id = 0xfffffff0u, .id_len = 64 };
	wisp_supervisor_report(&r);
}

/* Wait for the DOWN of ref; print its reason. */
static void print_down(const char *what, uint64_t ref)
{
	struct wisp_exit_reason r;
	char text[256];
	wisp_wait_down(ref, &r, text, sizeof(text));
	printf("%s: kind %u code %d len %zu text %s\n", what, r.kind, r.code, strlen(text), text);
}

static void watch(const char *what, wisp_fn fn)
{
	uint64_t ref;
	wisp_spawn_monitor(fn, NULL, 0, &ref);
	print_down(what, ref);
}

/* A supervisor's reports: each event, and the ones refused. */
static void supervisor_reports(void)
{
	uint64_t ref;
	wisp_pid_t child = wisp_spawn_monitor(handler, NULL, 0, &ref);
	/* The DOWN's payload, as a supervisor passes an EXIT's on. */
	unsigned char payload[256];
	struct wisp_msg_info info;
	wisp_receive(&ref, 1, WISP_INFINITY, payload, sizeof(payload), &info);
	const char id[] = "db-conn";
	struct wisp_sup_report r = {
		.event = WISP_SUP_RESTARTING, .child = child,
		.id = (uint32_t)(uintptr_t)id, .id_len = sizeof(id) - 1,
		.reason = (uint32_t)(uintptr_t)payload, .reason_len = info.len,
	};
	printf("restarting %d\n", wisp_supervisor_report(&r));
	r.event = WISP_SUP_GIVING_UP;
	r.max_restarts = 3;
	r.period_ms = 5000;
	printf("giving up %d\n", wisp_supervisor_report(&r));
	const char error[] = "no such host";
	struct wisp_sup_report f = {
		.event = WISP_SUP_START_FAILED, .id = (uint32_t)(uintptr_t)id, .id_len = sizeof(id) - 1,
		.error = (uint32_t)(uintptr_t)error, .error_len = sizeof(error) - 1,
	};
	printf("start failed %d\n", wisp_supervisor_report(&f));
	struct wisp_sup_report bad = r;
	bad.event = 99;
	printf("bad event %d\n", wisp_supervisor_report(&bad));
	bad = r;
	bad.reserved = 1;
	printf("reserved %d\n", wisp_supervisor_report(&bad));
	bad = r;
	bad.reason_len = 3;
	printf("short reason %d\n", wisp_supervisor_report(&bad));
	watch("report outside memory", report_outside);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	uint64_t ref;
	if (!strcmp(c, "one")) {
		wisp_spawn(handler, NULL, 0);
		wisp_sleep(300000000LL);
	} else if (!strcmp(c, "monitored")) {
		watch("monitored", handler);
	} else if (!strcmp(c, "linked")) {
		watch("victim", victim);
	} else if (!strcmp(c, "limit")) {
		int32_t h;
		struct wisp_spawned out;
		wisp_caps_new(&h);
		wisp_caps_limit(h, WISP_LIMIT_CPU, 100000);
		wisp_spawn_with(h, (uint32_t)(uintptr_t)hog, NULL, 0, WISP_SPAWN_MONITOR, &out);
		print_down("hog", out.monitor);
	} else if (!strcmp(c, "kill")) {
		wisp_pid_t p = wisp_spawn_monitor(sleeper, NULL, 0, &ref);
		printf("main is %llx\n", (unsigned long long)wisp_self());
		wisp_kill(p);
		print_down("sleeper", ref);
	} else if (!strcmp(c, "exit")) {
		watch("exiter", exiter);
	} else if (!strcmp(c, "named")) {
		watch("named", named);
	} else if (!strcmp(c, "storm")) {
		int n = argc > 2 ? atoi(argv[2]) : 100;
		uint64_t *refs = calloc((size_t)n, sizeof(*refs));
		for (int i = 0; i < n; i++)
			wisp_spawn_monitor(handler, NULL, 0, &refs[i]);
		for (int i = 0; i < n; i++) {
			struct wisp_exit_reason r;
			wisp_wait_down(refs[i], &r, NULL, 0);
		}
		printf("storm of %d done\n", n);
	} else if (!strcmp(c, "main")) {
		handler(NULL, 0);
	} else if (!strcmp(c, "panic")) {
		watch("text", panic_text);
		watch("quiet", panic_quiet);
		watch("outside", panic_outside);
		watch("huge", panic_huge);
		watch("long", panic_long);
	} else if (!strcmp(c, "supervisor")) {
		supervisor_reports();
	}
	printf("main done\n");
	return 0;
}
