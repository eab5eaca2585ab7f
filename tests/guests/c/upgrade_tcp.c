/*
 * upgrade_tcp.c — a line server whose connections live through an upgrade
 * of its code (wisp_code). Built with -DGUEST_VERSION=N. main listens on
 * 127.0.0.1 (port 0: the kernel's choice), prints "listening PORT", and
 * gives each connection to a process of its own. A handler answers each
 * line "X" with "vN X COUNT" (N its version, COUNT the lines it answered
 * so far on that connection) and, told of a new version, moves onto it
 * between two lines, with its socket and count. main itself never
 * upgrades: it keeps accepting with the old code (new connections get
 * handlers of main's version, which then upgrade when told).
 *
 * main also reads commands on its stdin: "load PATH" loads PATH as the
 * next version ("loaded RC VSN").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#ifndef GUEST_VERSION
#define GUEST_VERSION 1
#endif

#define TAG_CONN 7

static struct { int32_t fd; uint32_t lines; } st;

static void serve(void)
{
	char line[256];
	size_t have = 0;
	for (;;) {
		struct wisp_msg_info info;
		char buf[16];
		int32_t rc = wisp_receive_fd(NULL, 0, st.fd, WISP_INFINITY, buf, sizeof buf, &info);
		if (rc == WISP_OK && info.kind == WISP_MSG_DATA && info.tag == WISP_TAG_CODE) {
			if (have == 0) {   /* (between two lines: nothing half-read) */
				char why[160];
				wisp_code_upgrade(&st, sizeof st, why, sizeof why);
			}
			continue;
		}
		if (rc != WISP_EREADY)
			continue;
		uint32_t n = 0;
		if (wisp_net_read(st.fd, line + have, (uint32_t)(sizeof line - have), 0, &n) != 0 ||
		    n == 0)
			return;   /* the peer closed */
		have += n;
		char *nl;
		while ((nl = memchr(line, '\n', have)) != NULL) {
			*nl = '\0';
			char out[320];
			st.lines++;
			int k = snprintf(out, sizeof out, "v%d %s %u\n", GUEST_VERSION, line, st.lines);
			uint32_t w;
			if (wisp_net_write(st.fd, out, (uint32_t)k, WISP_INFINITY, &w) != 0)
				return;
			size_t used = (size_t)(nl - line) + 1;
			memmove(line, nl + 1, have - used);
			have -= used;
		}
		if (have == sizeof line)
			return;   /* a line too long: drop the connection */
	}
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	if (len != sizeof st || wisp_spawn_arg(&st, sizeof st) != sizeof st)
		return -1;
	return WISP_CODE_RESUME_WITH(serve);
}

static void handler(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct wisp_msg_info info;
	uint64_t tag = TAG_CONN;
	wisp_code_watch(1);
	if (wisp_receive(&tag, 1, WISP_INFINITY, &st.fd, sizeof st.fd, &info) != WISP_OK)
		return;
	/* Spawned with older code than the current (by an acceptor that does
	 * not move): move now, before the first line. */
	if (wisp_code_version(WISP_CODE_MINE) != wisp_code_version(WISP_CODE_CURRENT)) {
		char why[160];
		wisp_code_upgrade(&st, sizeof st, why, sizeof why);
	}
	serve();
}

static void acceptor(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	int32_t lfd;
	struct wisp_msg_info info;
	uint64_t tag = TAG_CONN;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &lfd, sizeof lfd, &info) != WISP_OK)
		return;
	for (;;) {
		int32_t conn;
		if (wisp_tcp_accept(lfd, WISP_INFINITY, &conn) != 0)
			continue;
		wisp_pid_t pid = wisp_spawn(handler, NULL, 0);
		if (pid == 0 || wisp_send_fd(pid, TAG_CONN, conn) != WISP_OK)
			printf("lost a connection\n");
	}
}

int main(void)
{
	int32_t lfd;
	char addr[64];
	uint32_t alen, port;
	if (wisp_tcp_listen("127.0.0.1", 9, 0, 512, &lfd) != 0 ||
	    wisp_net_local_addr(lfd, addr, sizeof addr, &alen, &port) != 0)
		return 2;
	wisp_pid_t acc = wisp_spawn(acceptor, NULL, 0);
	if (acc == 0 || wisp_send_fd(acc, TAG_CONN, lfd) != WISP_OK)
		return 3;
	printf("listening %u\n", port);
	fflush(stdout);
	char cmd[512];
	while (fgets(cmd, sizeof cmd, stdin) != NULL) {
		cmd[strcspn(cmd, "\n")] = '\0';
		if (strncmp(cmd, "load ", 5) != 0)
			continue;
		FILE *f = fopen(cmd + 5, "rb");
		static char bytes[4 << 20];
		size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
		if (f)
			fclose(f);
		uint32_t vsn = 0;
		int32_t rc = wisp_code_load(bytes, (uint32_t)n, &vsn);
		printf("loaded %d %u\n", rc, vsn);
		fflush(stdout);
	}
	return 0;
}
