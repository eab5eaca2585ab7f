/*
 * upgbench.c — hot code reload, measured (bench/upgrade_run.py). Built
 * twice: -DGUEST_VERSION=1 (run) and 2 (loaded while it runs).
 *
 *   one BYTES N V2   N servers, each holding BYTES of state; V2 is loaded,
 *                    then each server in turn is told to upgrade (a
 *                    message) and reports how long its handover took, from
 *                    its call of wisp_code_upgrade to its first
 *                    instruction in the new version; prints
 *                    "one BYTES MEDIAN_US MAX_US"
 *   pause N V2       N servers, and a client calling the first 64 of them
 *                    one after another in a loop; V2 is loaded (compiled:
 *                    not part of the pause), then every server is told to
 *                    move onto it; prints "pause N TOTAL_MS CLIENT_MAX_MS
 *                    CLIENT_BASE_MS": from the first "move" to the last
 *                    server's report, the client's longest call meanwhile,
 *                    and its longest call in as long a time after, with
 *                    nothing moving (the machine's own noise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif

enum { TAG_CALL = 1, TAG_GO = 2, TAG_DONE = 3, TAG_STOP = 4, TAG_MAX = 5 };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A server's state: who to report to, when it asked to move, its bytes. */
struct state {
	wisp_pid_t boss;
	uint64_t t0;
	uint32_t len;
	unsigned char *bytes;
};
static struct state st;

static void move(void)
{
	char why[120];
	size_t total = sizeof(struct state) + st.len;
	unsigned char *buf = malloc(total);
	memcpy(buf, &st, sizeof st);
	memcpy(buf + sizeof st, st.bytes, st.len);
	((struct state *)buf)->t0 = now_ns();
	wisp_code_upgrade(buf, (uint32_t)total, why, sizeof why);
	printf("upgrade failed: %s\n", why);
	exit(3);
}

static void serve(void)
{
	for (;;) {
		struct wisp_msg_info info;
		char b[16];
		if (wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			continue;
		if (info.tag == TAG_CALL)
			wisp_send(info.from, info.ref, b, 0);
		else if (info.tag == TAG_GO || info.tag == WISP_TAG_CODE)
			move();
	}
}

static void resumed(void)
{
	uint64_t took = now_ns() - st.t0;
	if (GUEST_VERSION == 1)
		exit(7);   /* (v1 never takes over: this makes the versions' bytes differ) */
	wisp_send(st.boss, TAG_DONE, &took, sizeof took);
	serve();
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	unsigned char *buf = malloc(len);
	if (buf == NULL || len < sizeof st || wisp_spawn_arg(buf, len) != len)
		return -1;
	memcpy(&st, buf, sizeof st);
	st.bytes = malloc(st.len ? st.len : 1);
	memcpy(st.bytes, buf + sizeof st, st.len);
	free(buf);
	return WISP_CODE_RESUME_WITH(resumed);
}

static void server(const void *arg, uint32_t len)
{
	if (len < sizeof st.boss + 8)
		return;
	memcpy(&st.boss, arg, sizeof st.boss);
	memcpy(&st.len, (const char *)arg + sizeof st.boss, sizeof st.len);
	uint32_t watch;
	memcpy(&watch, (const char *)arg + sizeof st.boss + sizeof st.len, sizeof watch);
	st.bytes = calloc(st.len ? st.len : 1, 1);
	for (uint32_t i = 0; i < st.len; i++)
		st.bytes[i] = (unsigned char)i;
	if (watch)
		wisp_code_watch(1);
	serve();
}

static wisp_pid_t start(uint32_t bytes, uint32_t watch)
{
	unsigned char arg[sizeof(wisp_pid_t) + 8];
	wisp_pid_t me = wisp_self();
	memcpy(arg, &me, sizeof me);
	memcpy(arg + sizeof me, &bytes, 4);
	memcpy(arg + sizeof me + 4, &watch, 4);
	return wisp_spawn(server, arg, sizeof arg);
}

static void load(const char *path)
{
	FILE *f = fopen(path, "rb");
	static char bytes[8 << 20];
	size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
	if (f)
		fclose(f);
	uint32_t vsn;
	int32_t rc = wisp_code_load(bytes, (uint32_t)n, &vsn);
	if (rc != WISP_OK) {
		printf("load failed %d\n", rc);
		exit(2);
	}
}

static uint64_t done(void)
{
	uint64_t took;
	struct wisp_msg_info info;
	uint64_t tag = TAG_DONE;
	if (wisp_receive(&tag, 1, 60000000000LL, &took, sizeof took, &info) != WISP_OK) {
		printf("a server never reported\n");
		exit(4);
	}
	return took;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int one(uint32_t bytes, int n, const char *v2)
{
	wisp_pid_t *srv = malloc((size_t)n * sizeof *srv);
	uint64_t *t = malloc((size_t)n * sizeof *t);
	for (int i = 0; i < n; i++)
		srv[i] = start(bytes, 0);
	load(v2);
	for (int i = 0; i < n; i++) {
		wisp_send(srv[i], TAG_GO, "", 0);
		t[i] = done();
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("one %u %.1f %.1f\n", bytes, t[n / 2] / 1e3, t[n - 1] / 1e3);
	return 0;
}

/* The client: calls server after server until told to stop; then sends
 * its longest call (ns) to the boss. A TAG_MAX message asks for the
 * longest so far (and starts a new window). */
static void client(const void *arg, uint32_t len)
{
	int n = (int)(len / sizeof(wisp_pid_t)) - 1;
	const wisp_pid_t *v = arg;
	wisp_pid_t boss = v[0];
	uint64_t longest = 0;
	for (int i = 0;; i = (i + 1) % n) {
		struct wisp_msg_info info;
		char b[8];
		uint64_t t0 = now_ns();
		if (wisp_request(v[1 + i], TAG_CALL, "", 0, 60000000000LL, b, sizeof b, &info) != WISP_OK)
			exit(5);
		uint64_t dt = now_ns() - t0;
		if (dt > longest)
			longest = dt;
		uint64_t tags[2] = { TAG_MAX, TAG_STOP };
		if (wisp_receive(tags, 2, WISP_NOWAIT, b, sizeof b, &info) == WISP_OK) {
			wisp_send(boss, TAG_MAX, &longest, sizeof longest);
			longest = 0;
			if (info.tag == TAG_STOP)
				return;
		}
	}
}

static uint64_t ask_max(wisp_pid_t c, uint64_t tag)
{
	wisp_send(c, tag, "", 0);
	uint64_t m;
	struct wisp_msg_info info;
	uint64_t want = TAG_MAX;
	if (wisp_receive(&want, 1, 60000000000LL, &m, sizeof m, &info) != WISP_OK)
		exit(6);
	return m;
}

static int pause_(int n, const char *v2)
{
	wisp_pid_t *arg = malloc((size_t)(n + 1) * sizeof *arg);
	arg[0] = wisp_self();
	for (int i = 0; i < n; i++)
		arg[1 + i] = start(64, 0);
	int k = n < 64 ? n : 64;   /* the client calls the first 64 in turn */
	wisp_pid_t c = wisp_spawn(client, arg, (uint32_t)((k + 1) * sizeof *arg));
	wisp_sleep(200000000);
	ask_max(c, TAG_MAX);           /* (a fresh window) */
	load(v2);
	ask_max(c, TAG_MAX);           /* (the load's own time is not the pause) */
	uint64_t t0 = now_ns(), t1 = t0;
	for (int i = 0; i < n; i++)   /* "every server, move now" */
		wisp_send(arg[1 + i], TAG_GO, "", 0);
	for (int i = 0; i < n; i++)
		done();
	uint64_t t2 = now_ns();
	uint64_t during = ask_max(c, TAG_MAX);
	/* As long again, with nothing moving: the client's own noise. */
	uint64_t span = t2 - t0;
	wisp_sleep((int64_t)span);
	uint64_t base = ask_max(c, TAG_STOP);
	printf("pause %d %.1f %.2f %.2f\n", n, (t2 - t1) / 1e6, during / 1e6, base / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "one") == 0)
		return one((uint32_t)atol(argv[2]), atoi(argv[3]), argv[4]);
	if (argc == 4 && strcmp(argv[1], "pause") == 0)
		return pause_(atoi(argv[2]), argv[3]);
	fprintf(stderr, "usage: upgbench one BYTES N V2 | pause N V2\n");
	return 2;
}
