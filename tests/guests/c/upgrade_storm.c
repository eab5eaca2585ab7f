/*
 * upgrade_storm.c — versions loaded, taken over and unloaded while
 * processes spawn, move, watch and load at once (hot code reload, issue
 * 14): the module table's counts must hold, so no version is unloaded
 * while anything runs it or is about to. Built with -DGUEST_VERSION=N
 * (the versions differ only in that number).
 *
 * main PATHS...: 6 workers, each spawning short-lived children in a loop
 * (a child runs its parent's version; half of them try to move onto the
 * current one before they end) and moving onto each version they are
 * told of; 3 processes switching wisp_code_watch on and off; 6 loaders
 * loading the same PATHS, in order, at once (each PATH's bytes become one
 * version: the others are told it is one already, or refused while
 * processes still run a version two back, and try again). Once the
 * loaders are done, main stops the workers and prints
 *   "loaded VSN..."          the versions the PATHS became
 *   "workers N on VSN"       how many workers ended, and on which version
 *   "mine 1 current VSN"
 * A worker killed by a purge (wisp reload --purge from outside) is
 * counted as "purged N".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif

enum { TAG_STOP = 1, TAG_DONE = 2, WORKERS = 6, TOGGLERS = 3, LOADERS = 6, MAX_PATHS = 8 };

/* A worker's state, carried across versions. */
static struct wstate { wisp_pid_t main; uint32_t spawned, moved; } ws;

static void child(const void *arg, uint32_t len)
{
	(void)len;
	if (*(const uint8_t *)arg & 1) {
		char why[100];
		uint32_t one = 1;
		wisp_code_upgrade(&one, sizeof one, why, sizeof why);   /* (may refuse) */
	}
}

static void child_moved(void)
{
	/* (ends: a child that moved has nothing left to do) */
}

static void work(void)
{
	for (;;) {
		uint8_t odd = (uint8_t)ws.spawned;
		if (wisp_spawn(child, &odd, 1) != 0)
			ws.spawned++;
		struct wisp_msg_info info;
		char buf[16];
		if (wisp_receive(NULL, 0, 200000, buf, sizeof buf, &info) != WISP_OK ||
		    info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == TAG_STOP) {
			/* (Which version's code says so: the same as its number.) */
			uint32_t v = (uint32_t)wisp_code_version(WISP_CODE_MINE) * 100 + GUEST_VERSION;
			wisp_send(ws.main, TAG_DONE, &v, sizeof v);
			return;
		}
		if (info.tag == WISP_TAG_CODE) {
			char why[100];
			ws.moved++;
			wisp_code_upgrade(&ws, sizeof ws, why, sizeof why);   /* (returns if refused) */
			ws.moved--;
		}
	}
}

static void worker_moved(void)
{
	work();
}

static void worker(const void *arg, uint32_t len)
{
	(void)len;
	memcpy(&ws.main, arg, sizeof ws.main);
	wisp_code_watch(1);
	/* (A version that became current before the watch began goes
	 * untold: move onto it now.) */
	if (wisp_code_version(WISP_CODE_MINE) != wisp_code_version(WISP_CODE_CURRENT)) {
		char why[100];
		wisp_code_upgrade(&ws, sizeof ws, why, sizeof why);
	}
	work();
}

static void toggler(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	for (int i = 0; i < 3000; i++) {
		wisp_code_watch(i & 1);
		if (i % 64 == 0)
			wisp_yield();
	}
	wisp_code_watch(0);
}

/* A loader's job, and how far it got: carried across versions (a loader
 * moves onto each version it made current, or else it would itself be a
 * process two versions back, for which the next load is refused). */
static struct lstate {
	wisp_pid_t main;
	uint32_t n, i;
	uint32_t got[MAX_PATHS];
	char paths[MAX_PATHS][128];
} ls;

static void load_all(void)
{
	for (; ls.i < ls.n; ls.i++) {
		uint32_t n = 0, vsn = 0;
		void *bytes = wisp_read_file(ls.paths[ls.i], &n);
		int32_t rc = WISP_ELIMIT;
		/* Refused while processes run a version two back: they move on
		 * when told, or end; try again. */
		for (int tries = 0; bytes != NULL && rc == WISP_ELIMIT && tries < 2000; tries++) {
			rc = wisp_code_load(bytes, n, &vsn);
			if (rc == WISP_ELIMIT)
				wisp_sleep(5000000);
		}
		free(bytes);
		ls.got[ls.i] = rc == WISP_OK || rc == WISP_EEXIST ? vsn : 0;
		if (wisp_code_version(WISP_CODE_MINE) != wisp_code_version(WISP_CODE_CURRENT)) {
			char why[100];
			ls.i++;
			wisp_code_upgrade(&ls, sizeof ls, why, sizeof why);   /* (returns if refused) */
			ls.i--;
		}
	}
	wisp_send(ls.main, TAG_DONE, ls.got, sizeof ls.got);
}

static void loader_moved(void)
{
	load_all();
}

static void loader(const void *arg, uint32_t len)
{
	if (len != sizeof ls)
		return;
	memcpy(&ls, arg, sizeof ls);
	load_all();
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	if (len == sizeof(uint32_t))
		return WISP_CODE_RESUME_WITH(child_moved);
	if (len == sizeof ls && wisp_spawn_arg(&ls, sizeof ls) == sizeof ls)
		return WISP_CODE_RESUME_WITH(loader_moved);
	if (len != sizeof ws || wisp_spawn_arg(&ws, sizeof ws) != sizeof ws)
		return -1;
	return WISP_CODE_RESUME_WITH(worker_moved);
}

int main(int argc, char **argv)
{
	wisp_pid_t me = wisp_self();
	static struct lstate j;
	j.main = me;
	for (int i = 1; i < argc && j.n < MAX_PATHS; i++)
		snprintf(j.paths[j.n++], sizeof j.paths[0], "%s", argv[i]);
	wisp_trap_exit(1);
	wisp_pid_t workers[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		workers[i] = wisp_spawn_link(worker, &me, sizeof me);
	for (int i = 0; i < TOGGLERS; i++)
		wisp_spawn(toggler, "", 0);
	for (int i = 0; i < LOADERS; i++)
		wisp_spawn(loader, &j, sizeof j);
	uint32_t loaded[MAX_PATHS] = { 0 };
	bool agree = true;
	for (int done = 0; done < LOADERS;) {
		struct wisp_msg_info info;
		uint32_t got[MAX_PATHS];
		uint64_t tag = TAG_DONE;
		if (wisp_receive(&tag, 1, WISP_INFINITY, got, sizeof got, &info) != WISP_OK)
			continue;
		if (info.len != sizeof got)
			continue;   /* (a worker that stopped early) */
		for (uint32_t i = 0; i < j.n; i++) {
			if (done > 0 && got[i] != loaded[i])
				agree = false;
			loaded[i] = got[i];
		}
		done++;
	}
	printf("loaded");
	for (uint32_t i = 0; i < j.n; i++)
		printf(" %u", loaded[i]);
	printf("%s\n", agree ? "" : " (loaders disagree)");
	for (int i = 0; i < WORKERS; i++)
		wisp_send(workers[i], TAG_STOP, "", 0);
	uint32_t on[64] = { 0 }, purged = 0, ended = 0;
	while (ended + purged < WORKERS) {
		struct wisp_msg_info info;
		union { uint32_t v; struct wisp_exit_reason r; char b[300]; } u;
		if (wisp_receive(NULL, 0, WISP_INFINITY, u.b, sizeof u.b, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_DATA && info.tag == TAG_DONE && info.len == 4) {
			if (u.v / 100 != u.v % 100)
				printf("worker on %u runs the code of %u\n", u.v / 100, u.v % 100);
			on[u.v / 100 < 64 ? u.v / 100 : 63]++;
			ended++;
		} else if (info.kind == WISP_MSG_EXIT && u.r.kind == WISP_EXIT_KILLED) {
			purged++;
		} else if (info.kind == WISP_MSG_EXIT && u.r.kind != WISP_EXIT_NORMAL) {
			printf("worker died %u\n", u.r.kind);
			purged++;
		}
	}
	for (int v = 0; v < 64; v++)
		if (on[v])
			printf("workers %u on %d\n", on[v], v);
	if (purged)
		printf("purged %u\n", purged);
	printf("mine %d current %d\n", wisp_code_version(WISP_CODE_MINE),
	       wisp_code_version(WISP_CODE_CURRENT));
	return 0;
}
