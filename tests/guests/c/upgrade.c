/*
 * upgrade.c — a counter server that moves onto new versions of its own
 * code while it runs (wisp_code, hot code reload). Built with -DGUEST_VERSION=N:
 *
 *   1, 2, 5  a good version: replies carry its number and the count so far
 *   3, 9  wisp_code_change refuses the state (returns -7)
 *   4     wisp_code_change traps
 *   6     wisp_code_change loops for ever
 *   7     wisp_code_change returns an index past its table
 *   8     wisp_code_change returns the index of a function of another type
 *
 * main PATHS...: spawns the server (version 1), which watches for new
 * versions and upgrades when told; then for each PATH (a module file to
 * load as the next version, from the preopened directory): sends 3
 * requests while the load and the upgrade happen, and prints what each
 * load and reply said:
 *   "load RC VSN"            wisp_code_load's code and version number
 *   "reply VSN COUNT"        a reply: the version that answered, its count
 *   "refused TEXT"           (from the server) an upgrade that failed
 * Every reply's count must be the next one: none lost, none repeated.
 *
 * main steps PATHS...: the same, one PATH at a time, each after a line on
 * stdin; "on VSN" once a reply comes from the new version (so the server
 * runs it). With "self" as a PATH, the main process moves onto the
 * current version itself and says "main on VSN".
 *
 * main sup: a supervisor (watching for versions, moving onto each) with
 * one worker (registered "w", never moving); for each line on stdin,
 * "sup VSN worker VSN" (the versions they run). A worker killed by a
 * purge is restarted on the current version: the supervisor moves onto
 * it first (a child runs its parent's version).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif

static struct { uint64_t count; } st;

static void serve(void)
{
	for (;;) {
		struct wisp_msg_info info;
		char buf[64];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == WISP_TAG_CODE) {
			char why[200];
			int32_t rc = wisp_code_upgrade(&st, sizeof st, why, sizeof why);
			printf("refused %d %s\n", rc, why);   /* (returns only then) */
			fflush(stdout);
		} else if (info.tag == 1) {
			st.count++;
			uint64_t out[2] = { (uint64_t)wisp_code_version(WISP_CODE_MINE) * 1000 + GUEST_VERSION,
			                    st.count };
			wisp_send(info.from, info.ref, out, sizeof out);
		}
	}
}

static void main_moved(void);
static void server(const void *arg, uint32_t len);
static void sup_resume(void);

/* The supervisor's state ("sup"): its worker, and whether it moved to
 * restart it. */
static struct { wisp_pid_t worker; uint32_t restart; } sup;

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	if (GUEST_VERSION == 3 || GUEST_VERSION == 9)
		return -7;
	if (GUEST_VERSION == 4)
		__builtin_trap();
	if (GUEST_VERSION == 6)
		for (volatile uint32_t spin = 0;; spin++)
			;
	if (GUEST_VERSION == 7)
		return 1 << 20;
	if (GUEST_VERSION == 8)
		return WISP_CODE_RESUME_WITH(server);
	if (len == 1)   /* the main process ("steps ... self") */
		return WISP_CODE_RESUME_WITH(main_moved);
	if (len == sizeof sup && wisp_spawn_arg(&sup, sizeof sup) == sizeof sup)
		return WISP_CODE_RESUME_WITH(sup_resume);
	if (len != sizeof st || wisp_spawn_arg(&st, sizeof st) != sizeof st)
		return -1;
	return WISP_CODE_RESUME_WITH(serve);
}

static void server(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_code_watch(1);
	serve();
}

static void ask(wisp_pid_t srv)
{
	uint64_t r[2];
	struct wisp_msg_info info;
	int32_t rc = wisp_request(srv, 1, "", 0, 10000000000LL, r, sizeof r, &info);
	if (rc != WISP_OK) {
		printf("request failed %d\n", rc);
		exit(3);
	}
	printf("reply %llu %llu\n", (unsigned long long)r[0], (unsigned long long)r[1]);
}

/* "loop": ask until a new version answers (print "started" after the
 * first reply, then "reply ..." when the version changes), checking that
 * every count is the next one; then "done". */
static int loop(wisp_pid_t srv)
{
	uint64_t first = 0, last = 0;
	for (uint64_t want = 1;; want++) {
		uint64_t r[2];
		struct wisp_msg_info info;
		if (wisp_request(srv, 1, "", 0, 10000000000LL, r, sizeof r, &info) != WISP_OK ||
		    r[1] != want) {
			printf("lost: wanted count %llu\n", (unsigned long long)want);
			return 3;
		}
		if (want == 1) {
			first = r[0];
			printf("started\n");
			fflush(stdout);
		}
		if (r[0] != first && r[0] != last) {
			printf("reply %llu %llu\n", (unsigned long long)r[0], (unsigned long long)r[1]);
			printf("done\n");
			return 0;
		}
		last = r[0];
		wisp_sleep(2000000);
	}
}

/* "hold": monitor a server, print "started", and print "down KIND TEXT"
 * when it ends (a purge ends it). */
static int hold(void)
{
	uint64_t ref;
	wisp_pid_t srv = wisp_spawn_monitor(server, "", 0, &ref);
	ask(srv);
	printf("started\n");
	fflush(stdout);
	struct wisp_msg_info info;
	union { struct wisp_exit_reason r; char b[300]; } u;
	uint64_t tags[1] = { ref };
	if (wisp_receive(tags, 1, WISP_INFINITY, u.b, sizeof u.b - 1, &info) != WISP_OK)
		return 4;
	u.b[info.len] = '\0';
	printf("down %u %s\n", u.r.kind, u.b + 8);
	return 0;
}

/* "denied PATH": a child without the capability to load code (WISP_DENY_CODE)
 * tries to load PATH: "denied RC". */
static void try_load(const void *arg, uint32_t len)
{
	char path[256];
	snprintf(path, sizeof path, "%.*s", (int)len, (const char *)arg);
	uint32_t n = 0, vsn = 0;
	void *bytes = wisp_read_file(path, &n);
	printf("denied %d\n", bytes ? wisp_code_load(bytes, n, &vsn) : -1);
	fflush(stdout);
}

static int denied(const char *path)
{
	int32_t h;
	struct wisp_spawned out;
	uint64_t ref;
	if (wisp_caps_new(&h) != WISP_OK || wisp_caps_deny(h, WISP_DENY_CODE) != WISP_OK ||
	    wisp_spawn_with(h, (uint32_t)(uintptr_t)try_load, path, (uint32_t)strlen(path),
	                    WISP_SPAWN_MONITOR, &out) != WISP_OK)
		return 2;
	ref = out.monitor;
	struct wisp_msg_info info;
	char b[64];
	return wisp_receive(&ref, 1, WISP_INFINITY, b, sizeof b, &info) == WISP_OK ? 0 : 3;
}

/* The main process, moved onto a new version: say so, wait for a line. */
static void main_moved(void)
{
	printf("main on %d\n", wisp_code_version(WISP_CODE_MINE));
	fflush(stdout);
	char line[16];
	fgets(line, sizeof line, stdin);
	exit(0);
}

static int steps(int n, char **paths)
{
	wisp_pid_t srv = wisp_spawn(server, "", 0);
	ask(srv);
	printf("started\n");
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		char line[16];
		if (fgets(line, sizeof line, stdin) == NULL)
			return 0;
		if (strcmp(paths[i], "self") == 0) {
			char why[200];
			printf("refused %d\n", wisp_code_upgrade("", 1, why, sizeof why));
			return 5;
		}
		uint32_t len = 0, vsn = 0;
		void *bytes = wisp_read_file(paths[i], &len);
		int32_t rc = bytes ? wisp_code_load(bytes, len, &vsn) : -1;
		free(bytes);
		if (rc != WISP_OK) {
			printf("load %d\n", rc);
			return 2;
		}
		uint64_t r[2] = { 0, 0 };
		while (r[0] / 1000 != vsn) {
			struct wisp_msg_info info;
			if (wisp_request(srv, 1, "", 0, 10000000000LL, r, sizeof r, &info) != WISP_OK)
				return 3;
		}
		printf("on %u\n", vsn);
		fflush(stdout);
	}
	return 0;
}

/* ---- "sup" ---- */

static void worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_register_name("w", wisp_self());
	for (;;) {
		struct wisp_msg_info info;
		char buf[16];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) == WISP_OK &&
		    info.kind == WISP_MSG_DATA && info.tag == 1) {
			uint32_t v = (uint32_t)wisp_code_version(WISP_CODE_MINE);
			wisp_send(info.from, info.ref, &v, sizeof v);
		}
	}
}

static void sup_serve(void)
{
	for (;;) {
		struct wisp_msg_info info;
		char buf[300];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		bool purged = info.kind == WISP_MSG_EXIT && info.from == sup.worker;
		if (info.kind == WISP_MSG_DATA && info.tag == 1) {
			uint32_t v = (uint32_t)wisp_code_version(WISP_CODE_MINE);
			wisp_send(info.from, info.ref, &v, sizeof v);
			continue;
		}
		if (!purged && !(info.kind == WISP_MSG_DATA && info.tag == WISP_TAG_CODE))
			continue;
		/* Onto the current version first, if there is a newer one: the
		 * worker is restarted there. */
		sup.restart = purged;
		if (wisp_code_version(WISP_CODE_MINE) != wisp_code_version(WISP_CODE_CURRENT)) {
			char why[200];
			wisp_code_upgrade(&sup, sizeof sup, why, sizeof why);
			printf("sup refused %s\n", why);
			fflush(stdout);
		}
		if (purged)
			sup.worker = wisp_spawn_link(worker, "", 0);
	}
}

static void sup_resume(void)
{
	if (sup.restart)
		sup.worker = wisp_spawn_link(worker, "", 0);
	sup_serve();
}

static void supervisor(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_trap_exit(1);
	wisp_code_watch(1);
	sup.worker = wisp_spawn_link(worker, "", 0);
	sup_serve();
}

static uint32_t version_of(wisp_pid_t pid)
{
	uint32_t v = 0;
	struct wisp_msg_info info;
	if (pid == 0 || wisp_request(pid, 1, "", 0, 10000000000LL, &v, sizeof v, &info) != WISP_OK)
		return 0;
	return v;
}

static int supervised(void)
{
	wisp_pid_t s = wisp_spawn(supervisor, "", 0);
	char line[16];
	while (fgets(line, sizeof line, stdin) != NULL) {
		wisp_pid_t w = 0;
		for (int tries = 0; tries < 500 && (w = wisp_whereis_name("w")) == 0; tries++)
			wisp_sleep(10000000);   /* (a restarted worker registers itself) */
		printf("sup %u worker %u\n", version_of(s), version_of(w));
		fflush(stdout);
	}
	return 0;
}

/* "loadexit PATH": load PATH while the server runs, give it 100 ms to
 * start moving, and end the run ("exit" printed first). */
static int load_and_exit(const char *path)
{
	wisp_pid_t srv = wisp_spawn(server, "", 0);
	ask(srv);
	uint32_t len = 0, vsn = 0;
	void *bytes = wisp_read_file(path, &len);
	printf("load %d\n", bytes ? wisp_code_load(bytes, len, &vsn) : -1);
	wisp_sleep(100000000);
	printf("exit\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "sup") == 0)
		return supervised();
	if (argc == 3 && strcmp(argv[1], "loadexit") == 0)
		return load_and_exit(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "steps") == 0)
		return steps(argc - 2, argv + 2);
	if (argc == 3 && strcmp(argv[1], "denied") == 0)
		return denied(argv[2]);
	if (argc == 2 && strcmp(argv[1], "hold") == 0)
		return hold();
	wisp_pid_t srv = wisp_spawn(server, "", 0);
	if (argc == 2 && strcmp(argv[1], "loop") == 0)
		return loop(srv);
	ask(srv);
	ask(srv);
	for (int i = 1; i < argc; i++) {
		uint32_t len = 0, vsn = 0;
		void *bytes = strcmp(argv[i], "garbage") == 0 ? strdup("not wasm at all") : wisp_read_file(argv[i], &len);
		if (strcmp(argv[i], "garbage") == 0)
			len = 15;
		if (bytes == NULL) {
			printf("cannot read %s\n", argv[i]);
			return 2;
		}
		int32_t rc = wisp_code_load(bytes, len, &vsn);
		free(bytes);
		printf("load %d %u\n", rc, vsn);
		fflush(stdout);
		for (int k = 0; k < 3; k++)
			ask(srv);
		fflush(stdout);
	}
	printf("mine %d current %d\n", wisp_code_version(WISP_CODE_MINE),
	       wisp_code_version(WISP_CODE_CURRENT));
	return 0;
}
