/*
 * inspect.c — a zoo of processes for wisp ps, inspect, kill and trace
 * (tests/e2e/test_inspect.py), each waiting in its own way, in a function
 * of its own (so the wasm function a listing names is known):
 *
 *   server    registered "server" (and "zoo.server"): receive in
 *             server_loop; answers tag PING with "pong", ends on STOP,
 *             counts FLOOD messages and answers COUNT with the count
 *   sleeper   sleep (an hour) in sleeper_loop
 *   caller    a request to the server that is never answered (tag
 *             IGNORED), in caller_wait
 *   busy      a loop that never waits, in busy_loop
 *   trapper   traps exits, linked to main; receive in trapper_loop; says
 *             "trapper EXIT <from> <reason>" for every exit signal
 *   victim    receive in victim_loop; main monitors it; registered
 *             under a name made of terminal escapes
 *
 *   reader    reads stdin (a WASI read, parked on the pipe) in
 *             reader_loop and sends each line to main
 *
 * main prints "pids KEY=PID ..." (hex), then takes commands from the
 * reader (and prints the DOWNs it gets meanwhile: "down KEY <reason>"):
 *   ping       request PING to the server, print "pong"
 *   link       link to the server ("linked")
 *   flood N    send the server N messages, then ask COUNT ("flooded N")
 *   stop       send the server STOP
 *   exit       return from main
 *
 * "many N": N idle processes in receive, then "ready N", then wait on
 * stdin until it closes.
 *
 * "churn": processes come and go until stdin closes, 50 at a time, each
 * registering a name, monitored by main, telling main it is up and
 * waiting to be told to end ("churning" first, "churned N" at the end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

enum { PING = 1, STOP, IGNORED, FLOOD, COUNT, LINE, END };

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	__builtin_va_list ap;
	__builtin_va_start(ap, fmt);
	vprintf(fmt, ap);
	__builtin_va_end(ap);
	fflush(stdout);
}

/* "normal", "killed", "code 3", "shutdown", "term N bytes", "trap ...". */
static void reason(const char *buf, uint32_t len, char *out, size_t cap)
{
	struct wisp_exit_reason r = { 0, 0 };
	if (len >= sizeof r)
		memcpy(&r, buf, sizeof r);
	const char *text = buf + sizeof r;
	int tl = len > sizeof r ? (int)(len - sizeof r) : 0;
	switch (r.kind) {
	case WISP_EXIT_NORMAL: snprintf(out, cap, "normal"); break;
	case WISP_EXIT_CODE: snprintf(out, cap, "code %d", r.code); break;
	case WISP_EXIT_KILLED: snprintf(out, cap, "killed %.*s", tl, text); break;
	case WISP_EXIT_SHUTDOWN: snprintf(out, cap, "shutdown"); break;
	case WISP_EXIT_TERM:
		/* An atom: SMALL_ATOM_UTF8_EXT (119), its length, its bytes. */
		if (tl >= 2 && (unsigned char)text[0] == 119)
			snprintf(out, cap, "atom %.*s", (unsigned char)text[1], text + 2);
		else
			snprintf(out, cap, "term %d bytes", tl);
		break;
	default: snprintf(out, cap, "kind %u %.*s", r.kind, tl, text); break;
	}
}

__attribute__((noinline)) static void server_loop(void)
{
	uint64_t floods = 0;
	for (;;) {
		char buf[64];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.tag == PING)
			wisp_send(info.from, info.ref, "pong", 4);
		else if (info.tag == FLOOD)
			floods++;
		else if (info.tag == COUNT)
			wisp_send(info.from, info.ref, &floods, sizeof floods);
		else if (info.tag == STOP)
			return;
	}
}

static void server(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_register_name("server", wisp_self());
	wisp_register_name("zoo.server", wisp_self());
	server_loop();
}

__attribute__((noinline)) static void sleeper_loop(void)
{
	for (;;)
		wisp_sleep(3600LL * 1000000000LL);
}

static void sleeper(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	sleeper_loop();
}

__attribute__((noinline)) static void caller_wait(wisp_pid_t to)
{
	char buf[16];
	struct wisp_msg_info info;
	wisp_request(to, IGNORED, "?", 1, WISP_INFINITY, buf, sizeof buf, &info);
}

static void caller(const void *arg, uint32_t len)
{
	wisp_pid_t to;
	(void)len;
	memcpy(&to, arg, sizeof to);
	caller_wait(to);
}

__attribute__((noinline)) static void busy_loop(void)
{
	volatile uint64_t n = 0;
	for (;;)
		n++;
}

static void busy(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	busy_loop();
}

__attribute__((noinline)) static void trapper_loop(void)
{
	for (;;) {
		char buf[300], why[300];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_EXIT) {
			reason(buf, info.len, why, sizeof why);
			say("trapper EXIT %llx %s\n", (unsigned long long)info.from, why);
		}
	}
}

static void trapper(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	wisp_trap_exit(1);
	trapper_loop();
}

__attribute__((noinline)) static void victim_loop(void)
{
	char buf[16];
	struct wisp_msg_info info;
	for (;;)
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
}

/* Wait for one message. */
__attribute__((noinline)) static void victim_loop_once(void)
{
	char buf[16];
	struct wisp_msg_info info;
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
}

static void victim(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	/* A name meant for a terminal: set its title, then reverse the text. */
	wisp_register_name("victim\x1b]0;pwned\x07\xe2\x80\xae", wisp_self());
	victim_loop();
}

static void idle(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	victim_loop();
}

struct zoo {
	const char *key[10];
	wisp_pid_t pid[10];
	uint64_t ref[10];
	int n;
};

static wisp_pid_t add(struct zoo *z, const char *key, wisp_pid_t pid, uint64_t ref)
{
	if (pid == 0) {
		printf("FAIL spawn %s\n", key);
		exit(1);
	}
	z->key[z->n] = key;
	z->pid[z->n] = pid;
	z->ref[z->n++] = ref;
	return pid;
}

/* A command from stdin (a line). */
static int command(struct zoo *z, const char *line)
{
	wisp_pid_t srv = z->pid[0];
	char buf[16];
	struct wisp_msg_info info;
	if (strcmp(line, "ping") == 0) {
		int32_t rc = wisp_request(srv, PING, "ping", 4, 5000000000LL, buf, sizeof buf, &info);
		say(rc == WISP_OK ? "pong\n" : "no pong %d\n", rc);
	} else if (strcmp(line, "link") == 0) {
		say(wisp_link(srv) == WISP_OK ? "linked\n" : "not linked\n");
	} else if (strncmp(line, "flood ", 6) == 0) {
		long n = atol(line + 6);
		for (long i = 0; i < n; i++)
			wisp_send(srv, FLOOD, &i, sizeof i);
		uint64_t count = 0;
		wisp_request(srv, COUNT, NULL, 0, WISP_INFINITY, &count, sizeof count, &info);
		say("flooded %llu\n", (unsigned long long)count);
	} else if (strcmp(line, "stop") == 0) {
		wisp_send(srv, STOP, NULL, 0);
		say("stopping\n");
	} else if (strcmp(line, "exit") == 0) {
		return 1;
	}
	return 0;
}

__attribute__((noinline)) static void reader_loop(wisp_pid_t to)
{
	char line[256];
	size_t n = 0;
	while (read(0, line + n, 1) == 1) {
		if (line[n] != '\n' && n + 1 < sizeof line) {
			n++;
			continue;
		}
		wisp_send(to, LINE, line, (uint32_t)n);
		n = 0;
	}
	wisp_send(to, END, NULL, 0);
}

static void reader(const void *arg, uint32_t len)
{
	wisp_pid_t to;
	(void)len;
	memcpy(&to, arg, sizeof to);
	reader_loop(to);
}

/* DOWNs and commands, until "exit" or the end of stdin. */
static void serve_stdin(struct zoo *z)
{
	for (;;) {
		char buf[300], why[300];
		struct wisp_msg_info info;
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf - 1, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_DOWN) {
			reason(buf, info.len, why, sizeof why);
			for (int i = 0; i < z->n; i++)
				if (z->pid[i] == info.from)
					say("down %s %s\n", z->key[i], why);
			continue;
		}
		if (info.tag == END)
			return;
		buf[info.len < sizeof buf - 1 ? info.len : sizeof buf - 1] = '\0';
		if (info.tag == LINE && command(z, buf))
			return;
	}
}

static void churner(const void *arg, uint32_t len)
{
	wisp_pid_t to;
	char name[32];
	(void)len;
	memcpy(&to, arg, sizeof to);
	snprintf(name, sizeof name, "churn.%llx", (unsigned long long)wisp_self());
	wisp_register_name(name, wisp_self());
	wisp_send(to, LINE, name, (uint32_t)strlen(name));
	victim_loop_once();
}

static int churn(void)
{
	wisp_pid_t self = wisp_self();
	if (wisp_spawn(reader, &self, sizeof self) == 0)
		return 1;
	say("churning\n");
	uint64_t done = 0, end[] = { END };
	for (;;) {
		wisp_pid_t kids[50];
		for (int i = 0; i < 50; i++) {
			uint64_t ref;
			if ((kids[i] = wisp_spawn_monitor(churner, &self, sizeof self, &ref)) == 0)
				return 1;
		}
		/* Each says it is up (and waits), then is told to end. */
		for (int got = 0; got < 100;) {
			char buf[64];
			struct wisp_msg_info info;
			if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
				continue;
			if (info.tag == END) {
				say("churned %llu\n", (unsigned long long)done);
				return 0;
			}
			if (++got == 50)
				for (int i = 0; i < 50; i++)
					wisp_send(kids[i], STOP, NULL, 0);
		}
		done += 50;
		char buf[8];
		struct wisp_msg_info info;
		if (wisp_receive(end, 1, 0, buf, sizeof buf, &info) == WISP_OK) {
			say("churned %llu\n", (unsigned long long)done);
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "churn") == 0)
		return churn();
	if (argc > 2 && strcmp(argv[1], "many") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++)
			if (wisp_spawn(idle, NULL, 0) == 0)
				return 1;
		say("ready %ld\n", n);
		char c;
		while (read(0, &c, 1) > 0)
			;
		return 0;
	}
	struct zoo z = { .n = 0 };
	uint64_t ref;
	wisp_pid_t srv = add(&z, "server", wisp_spawn_monitor(server, NULL, 0, &ref), ref);
	add(&z, "sleeper", wisp_spawn(sleeper, NULL, 0), 0);
	add(&z, "caller", wisp_spawn(caller, &srv, sizeof srv), 0);
	add(&z, "busy", wisp_spawn(busy, NULL, 0), 0);
	add(&z, "trapper", wisp_spawn_link(trapper, NULL, 0), 0);
	add(&z, "victim", wisp_spawn_monitor(victim, NULL, 0, &ref), ref);
	wisp_pid_t self = wisp_self();
	add(&z, "reader", wisp_spawn(reader, &self, sizeof self), 0);
	add(&z, "main", self, 0);
	/* (The server registers itself: wait until it has.) */
	while (wisp_whereis_name("server") == 0)
		wisp_sleep(1000000);
	printf("pids");
	for (int i = 0; i < z.n; i++)
		printf(" %s=%llx", z.key[i], (unsigned long long)z.pid[i]);
	say("\n");
	serve_stdin(&z);
	return 0;
}
