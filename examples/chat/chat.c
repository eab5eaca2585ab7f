/*
 * chat — a line-based chat server: one room process, one process per client.
 *
 *   wisp run --allow-listen PORT examples/chat.wasm [PORT]   (default 7001; 0 picks one)
 *
 * A client's first line is its name; every later line goes to everyone in
 * the room as "name: line". The room monitors its members, so a client that
 * disconnects — or whose process crashes — is announced as gone. Each
 * client process waits on its socket and its mailbox at once
 * (wisp_receive_fd): lines from the room are written out, lines from the
 * socket are sent to the room.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

enum { TAG_CONN = 1, TAG_JOIN, TAG_SAY, TAG_LINE };
#define MAX_MEMBERS 1024

struct member {
	wisp_pid_t pid;
	uint64_t mref;
	char name[32];
};

static struct member members[MAX_MEMBERS];
static int nmembers;

static void broadcast(const char *text, uint32_t len)
{
	for (int i = 0; i < nmembers; i++)
		wisp_send(members[i].pid, TAG_LINE, text, len);
}

static void room(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	char buf[600], line[700];
	struct wisp_msg_info info;
	for (;;) {
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof(buf) - 1, &info) != WISP_OK)
			continue;
		buf[info.len] = '\0';
		if (info.kind == WISP_MSG_DOWN) {
			for (int i = 0; i < nmembers; i++) {
				if (members[i].mref == info.tag) {
					int n = snprintf(line, sizeof(line), "* %s left\n", members[i].name);
					members[i] = members[--nmembers];
					broadcast(line, (uint32_t)n);
					break;
				}
			}
		} else if (info.tag == TAG_JOIN && nmembers < MAX_MEMBERS) {
			struct member *m = &members[nmembers++];
			m->pid = info.from;
			snprintf(m->name, sizeof(m->name), "%s", buf);
			wisp_monitor(m->pid, &m->mref);
			int n = snprintf(line, sizeof(line), "* %s joined\n", m->name);
			broadcast(line, (uint32_t)n);
		} else if (info.tag == TAG_SAY) {
			const char *who = "?";
			for (int i = 0; i < nmembers; i++)
				if (members[i].pid == info.from)
					who = members[i].name;
			int n = snprintf(line, sizeof(line), "%s: %s\n", who, buf);
			broadcast(line, (uint32_t)n);
		}
	}
}

static int write_all(int32_t fd, const char *p, uint32_t n)
{
	uint32_t w;
	while (n > 0) {
		if (wisp_net_write(fd, p, n, WISP_INFINITY, &w) != 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

static void client(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t tag = TAG_CONN;
	struct wisp_msg_info info;
	int32_t fd;
	if (wisp_receive(&tag, 1, WISP_INFINITY, &fd, 4, &info) != WISP_OK)
		return;
	wisp_pid_t room_pid = wisp_whereis_name("room");
	char in[1024], out[700];
	uint32_t have = 0;
	int named = 0;
	write_all(fd, "name? ", 6);
	for (;;) {
		uint64_t lt = TAG_LINE;
		int rc = wisp_receive_fd(&lt, 1, fd, WISP_INFINITY, out, sizeof(out), &info);
		if (rc == WISP_OK) {
			if (write_all(fd, out, info.len) != 0)
				break;
			continue;
		}
		if (rc != WISP_EREADY)
			break;
		uint32_t n = 0;
		if (wisp_net_read(fd, in + have, sizeof(in) - have, 0, &n) != 0 || n == 0)
			break;   /* the peer left */
		have += n;
		char *nl;
		while ((nl = memchr(in, '\n', have)) != NULL) {
			uint32_t ll = (uint32_t)(nl - in);
			if (ll > 0 && in[ll - 1] == '\r')
				ll--;
			if (ll >= 5 && memcmp(in, "/crash", 6) == 0)
				__builtin_trap();   /* the room announces the loss */
			wisp_send(room_pid, named ? TAG_SAY : TAG_JOIN, in, ll > 500 ? 500 : ll);
			named = 1;
			uint32_t used = (uint32_t)(nl - in) + 1;
			memmove(in, in + used, have - used);
			have -= used;
		}
		if (have == sizeof(in))
			have = 0;    /* an over-long line: dropped */
	}
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned port = argc > 1 ? (unsigned)atoi(argv[1]) : 7001;
	int32_t lfd;
	int rc = wisp_tcp_listen("127.0.0.1", 9, port, 1024, &lfd);
	if (rc != 0) {
		fprintf(stderr, "chat: cannot listen on port %u: %s%s\n", port, strerror(rc),
		        rc == ENOTCAPABLE ? " (give it 'wisp run --allow-listen PORT')" : "");
		return 1;
	}
	wisp_register_name("room", wisp_spawn(room, NULL, 0));
	char text[64];
	uint32_t tl = 0, actual = 0;
	wisp_net_local_addr(lfd, text, sizeof(text), &tl, &actual);
	printf("chat on %.*s:%u\n", (int)tl, text, actual);
	fflush(stdout);
	for (;;) {
		int32_t conn;
		if (wisp_tcp_accept(lfd, WISP_INFINITY, &conn) != 0)
			continue;
		wisp_pid_t pid = wisp_spawn(client, NULL, 0);
		if (pid == 0 || wisp_send_fd(pid, TAG_CONN, conn) != WISP_OK)
			close(conn);
	}
}
