/*
 * upgrade_image.c — what a new process of a version starts with, after
 * the version before it was unloaded (hot code reload, issue 14). Built
 * with -DGUEST_VERSION=N: the module's data (a 256 KiB array, first byte
 * the version's digit) differs per version, and a process checks it holds
 * its own version's.
 *
 * main V2: 20 processes of version 1 check their data and end (their
 * memories go back to the runtime's pool, which keeps version 1's data
 * as the image its slots are reset to); main loads V2 and moves onto it,
 * so nobody runs version 1 and it is unloaded; then 20 processes of
 * version 2 check their data. Prints "v1 ok N", "v2 ok N" (the processes
 * whose data was their version's) and "main on VSN".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

#define S6 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
#define S8 S6 S6 S6 S6
#define S10 S8 S8 S8 S8
#define S12 S10 S10 S10 S10
#define S14 S12 S12 S12 S12
#define S16 S14 S14 S14 S14
#define S18 S16 S16 S16 S16

/* In the module's data: every page of it nonzero, so it is all image. */
static char data[] = STR(GUEST_VERSION) S18;

static void check(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int ok = data[0] == STR(GUEST_VERSION)[0] && data[1] == 'a' && data[sizeof data - 2] == '/';
	data[0] = 'X';   /* (a memory its slot's next owner must not see) */
	exit(ok ? 0 : 1);
}

static int run_checks(void)
{
	uint64_t refs[20];
	for (int i = 0; i < 20; i++)
		wisp_spawn_monitor(check, "", 0, &refs[i]);
	int ok = 0;
	for (int i = 0; i < 20; i++) {
		struct wisp_msg_info info;
		struct wisp_exit_reason r;
		char b[300];
		if (wisp_receive(&refs[i], 1, WISP_INFINITY, b, sizeof b, &info) != WISP_OK)
			continue;
		memcpy(&r, b, sizeof r);
		ok += r.kind == WISP_EXIT_NORMAL;
	}
	return ok;
}

static void main_moved(void)
{
	printf("v%d ok %d\n", GUEST_VERSION, run_checks());
	printf("main on %d\n", wisp_code_version(WISP_CODE_MINE));
	fflush(stdout);
	exit(0);
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	(void)len;
	return WISP_CODE_RESUME_WITH(main_moved);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	printf("v%d ok %d\n", GUEST_VERSION, run_checks());
	fflush(stdout);
	FILE *f = fopen(argv[1], "rb");
	if (f == NULL)
		return 2;
	char *bytes = malloc(4 << 20);   /* (not static: the children's memory stays small) */
	uint32_t n = bytes ? (uint32_t)fread(bytes, 1, 4 << 20, f) : 0, vsn = 0;
	fclose(f);
	if (wisp_code_load(bytes, n, &vsn) != WISP_OK)
		return 3;
	char why[200];
	wisp_code_upgrade("", 1, why, sizeof why);
	printf("main refused: %s\n", why);
	return 4;
}
