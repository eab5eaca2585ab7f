/*
 * hibernate.c — hibernated processes wake on every kind of event with their
 * state intact (stack, static data, heap), by themselves (auto) or after
 * wisp_hibernate(). argv[1] names the case; output is checked by
 * tests/e2e/test_hibernate.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>

#define MS 1000000LL

static unsigned char statics[3 * 65536];   /* spans linear-memory pages */

struct state {
	unsigned char *heap;
	uint32_t seed;
};

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

static int same(const unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 31 + (i >> 8)))
			return 0;
	return 1;
}

static void report(wisp_pid_t to, const char *what, int ok)
{
	char msg[64];
	int n = snprintf(msg, sizeof msg, "%s %s", what, ok ? "ok" : "CORRUPT");
	wisp_send(to, 1, msg, (uint32_t)n);
}

struct arg { wisp_pid_t parent; int how; };

enum { BY_MESSAGE, BY_TIMER, BY_EXIT_SIGNAL, BY_SLEEP, BY_AUTO_RECEIVE };
static const char *const NAMES[] = { "message", "timer", "exit signal", "sleep", "auto receive" };

static void child(const void *a, uint32_t len)
{
	struct arg arg;
	memcpy(&arg, a, sizeof arg);
	(void)len;
	volatile unsigned char stack[3000];
	uint32_t seed = (uint32_t)wisp_self();
	fill((unsigned char *)stack, sizeof stack, seed);
	fill(statics, sizeof statics, seed + 1);
	unsigned char *heap = malloc(100000);
	fill(heap, 100000, seed + 2);
	char buf[128];
	struct wisp_msg_info info;
	uint64_t id;
	switch (arg.how) {
	case BY_MESSAGE:
		wisp_send(arg.parent, 2, "", 0);      /* "about to hibernate" */
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	case BY_TIMER:
		wisp_send_after(wisp_self(), 9, "t", 1, 300 * MS, &id);
		wisp_send(arg.parent, 2, "", 0);
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	case BY_EXIT_SIGNAL:
		wisp_trap_exit(1);
		wisp_send(arg.parent, 2, "", 0);
		wisp_hibernate();
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		if (info.kind != WISP_MSG_EXIT)
			report(arg.parent, "not an EXIT", 0);
		break;
	case BY_SLEEP:
		wisp_send(arg.parent, 2, "", 0);
		wisp_sleep(400 * MS);                /* auto-hibernates meanwhile */
		break;
	case BY_AUTO_RECEIVE:
		wisp_send(arg.parent, 2, "", 0);
		wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		break;
	}
	int ok = same((unsigned char *)stack, sizeof stack, seed) &&
	         same(statics, sizeof statics, seed + 1) && same(heap, 100000, seed + 2);
	report(arg.parent, NAMES[arg.how], ok);
}

static void events(void)
{
	wisp_pid_t me = wisp_self();
	for (int how = BY_MESSAGE; how <= BY_AUTO_RECEIVE; how++) {
		struct arg a = { me, how };
		wisp_pid_t c = wisp_spawn(child, &a, sizeof a);
		char buf[128];
		struct wisp_msg_info info;
		uint64_t two = 2, one = 1;
		wisp_receive(&two, 1, WISP_INFINITY, buf, sizeof buf, &info);
		wisp_sleep(200 * MS);                /* well past --hibernate-after */
		if (how == BY_MESSAGE || how == BY_AUTO_RECEIVE)
			wisp_send(c, 5, "wake", 4);
		else if (how == BY_EXIT_SIGNAL)
			wisp_exit_signal(c, 42);
		wisp_receive(&one, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
		buf[info.len] = 0;
		printf("%s\n", buf);
	}
}

/* Many processes hibernating and waking in a loop. */
static void looper(const void *a, uint32_t len)
{
	(void)len;
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	volatile uint64_t local[64];
	for (int i = 0; i < 64; i++)
		local[i] = wisp_self() * 1000003u + (uint64_t)i;
	for (;;) {
		char buf[16];
		struct wisp_msg_info info;
		wisp_hibernate();
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			return;
		int ok = 1;
		for (int i = 0; i < 64; i++)
			ok &= local[i] == wisp_self() * 1000003u + (uint64_t)i;
		wisp_send(parent, ok ? 1 : 3, "", 0);
	}
}

static void loop(int n, int rounds)
{
	wisp_pid_t me = wisp_self();
	wisp_pid_t *kids = malloc((size_t)n * sizeof *kids);
	for (int i = 0; i < n; i++)
		kids[i] = wisp_spawn(looper, &me, sizeof me);
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++)
			wisp_send(kids[i], 5, "", 0);
		for (int i = 0; i < n; i++) {
			struct wisp_msg_info info;
			char b[8];
			wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info);
			bad += info.tag != 1;
		}
	}
	printf("loop: %d processes, %d rounds, %d corrupt\n", n, rounds, bad);
}

/* A trap right after waking names the function it happened in. */
__attribute__((noinline)) static void after_waking_breaks(int x)
{
	if (x > 0)
		__builtin_trap();
}

static void trapper(const void *a, uint32_t len)
{
	(void)a;
	(void)len;
	wisp_hibernate();
	after_waking_breaks(1);
}

static void trap_after_wake(void)
{
	uint64_t ref;
	wisp_pid_t c = wisp_spawn_monitor(trapper, NULL, 0, &ref);
	wisp_sleep(100 * MS);
	wisp_send(c, 5, "", 0);
	char buf[256];
	struct wisp_msg_info info;
	wisp_receive(&ref, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
	buf[info.len] = 0;
	printf("trap after wake: %s\n", buf + 8);
}

/* ---- the initial image: each process its own copy --------------------
 *
 * A writer changes a global, a data-segment string, a zeroed (bss) array
 * and grows its memory, hibernates (its memory is kept as differences from
 * the module's image) and wakes; readers spawned before, during and after
 * must see the initial image, the writer its own changes. */
static int counter = 7;                       /* data segment */
static char text[32] = "initial image";       /* data segment */
static unsigned char zeroed[70000];           /* bss, over a page */

struct view { int counter; char text[32]; unsigned zeroed_sum; uint32_t pages; };

static void look(struct view *v)
{
	v->counter = counter;
	memcpy(v->text, text, sizeof v->text);
	v->zeroed_sum = 0;
	for (size_t i = 0; i < sizeof zeroed; i++)
		v->zeroed_sum += zeroed[i];
	v->pages = (uint32_t)__builtin_wasm_memory_size(0);
}

static void reader(const void *a, uint32_t len)
{
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	(void)len;
	struct view v;
	look(&v);
	wisp_send(parent, 10, &v, sizeof v);
}

static void writer(const void *a, uint32_t len)
{
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	(void)len;
	counter = 99;
	strcpy(text, "written by the writer");
	memset(zeroed, 0xab, sizeof zeroed);
	uint32_t old = (uint32_t)__builtin_wasm_memory_grow(0, 2);
	unsigned char *grown = (unsigned char *)(uintptr_t)(old * 65536u);
	memset(grown, 0x5a, 2 * 65536);
	wisp_send(parent, 11, "", 0);               /* written */
	wisp_hibernate();
	char buf[8];
	struct wisp_msg_info info;
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
	struct view v;
	look(&v);
	int grown_ok = 1;
	for (uint32_t i = 0; i < 2 * 65536; i++)
		grown_ok &= grown[i] == 0x5a;
	v.counter = grown_ok ? v.counter : -1;
	wisp_send(parent, 12, &v, sizeof v);
}

/* A process whose memory came from the image is still held to its limit:
 * with room for one more page (and 48 KiB for its table and the host's
 * state, which the limit counts too), the first grow works, the second
 * fails. */
static void limited(const void *a, uint32_t len)
{
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	(void)len;
	int first = __builtin_wasm_memory_grow(0, 1) != (size_t)-1;
	int second = __builtin_wasm_memory_grow(0, 1) != (size_t)-1;
	char r[2] = { (char)('0' + first), (char)('0' + second) };
	wisp_send(parent, 13, r, 2);
}

static struct view receive_view(uint64_t tag)
{
	struct view v;
	struct wisp_msg_info info;
	wisp_receive(&tag, 1, WISP_INFINITY, &v, sizeof v, &info);
	return v;
}

static int initial(const struct view *v, uint32_t pages)
{
	return v->counter == 7 && strcmp(v->text, "initial image") == 0 &&
	       v->zeroed_sum == 0 && v->pages == pages;
}

static void cow(void)
{
	wisp_pid_t me = wisp_self();
	uint64_t eleven = 11, thirteen = 13;
	char buf[8];
	struct wisp_msg_info info;

	wisp_spawn(reader, &me, sizeof me);
	struct view before = receive_view(10);
	uint32_t pages = before.pages;
	int ok = initial(&before, pages);

	wisp_pid_t w = wisp_spawn(writer, &me, sizeof me);
	wisp_receive(&eleven, 1, WISP_INFINITY, buf, sizeof buf, &info);
	wisp_spawn(reader, &me, sizeof me);         /* while the writer has written */
	struct view during = receive_view(10);
	wisp_sleep(200 * MS);                        /* the writer is frozen by now */
	wisp_spawn(reader, &me, sizeof me);
	struct view frozen = receive_view(10);
	wisp_send(w, 5, "wake", 4);
	struct view mine = receive_view(12);
	wisp_spawn(reader, &me, sizeof me);
	struct view after = receive_view(10);
	printf("before %s, during %s, while frozen %s, after %s\n",
	       ok ? "initial" : "CHANGED", initial(&during, pages) ? "initial" : "CHANGED",
	       initial(&frozen, pages) ? "initial" : "CHANGED",
	       initial(&after, pages) ? "initial" : "CHANGED");
	unsigned want = 0xab * (unsigned)sizeof zeroed;
	printf("writer: counter %d, text \"%s\", zeroed %s, pages +%d\n", mine.counter,
	       mine.text, mine.zeroed_sum == want ? "written" : "WRONG",
	       (int)mine.pages - (int)pages);
	struct view own;
	look(&own);
	printf("main: counter %d, text \"%s\"\n", own.counter, own.text);

	int32_t h;
	struct wisp_spawned out = { 0, 0 };
	if (wisp_caps_new(&h) != WISP_OK ||
	    wisp_caps_limit(h, WISP_LIMIT_MEMORY, (uint64_t)(pages + 1) * 65536 + 49152) != WISP_OK ||
	    wisp_spawn_with(h, (uint32_t)(uintptr_t)limited, &me, sizeof me, 0, &out) != WISP_OK) {
		printf("limited: spawn failed\n");
		return;
	}
	wisp_caps_free(h);
	char r[2];
	wisp_receive(&thirteen, 1, WISP_INFINITY, r, sizeof r, &info);
	printf("limited: first grow %s, second %s\n", r[0] == '1' ? "ok" : "refused",
	       r[1] == '1' ? "ok" : "refused");
}

/* ---- a selective receive hibernated, its old slot reused by others ----
 * The tag set lives in the receiver's memory; a hibernated receiver's
 * memory wakes in another pool slot, and the slot it left goes to other
 * processes, which write there. The receive must keep matching the tags it
 * was given (a copy), not what the slot's next owner put at that address. */

#define SEL_WANT 77
#define SEL_JUNK 99

static void sel_receiver(const void *a, uint32_t len)
{
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	(void)len;
	volatile uint64_t tags[512];             /* the same frame as sel_filler's */
	for (int i = 0; i < 512; i++)
		tags[i] = SEL_WANT;
	char buf[16];
	struct wisp_msg_info info;
	wisp_send(parent, 2, "", 0);
	wisp_receive((const uint64_t *)&tags[256], 1, WISP_INFINITY, buf, sizeof buf, &info);
	char msg[64];
	int n = snprintf(msg, sizeof msg, "selective receive got tag %llu",
	                 (unsigned long long)info.tag);
	wisp_send(parent, 1, msg, (uint32_t)n);
}

static void sel_filler(const void *a, uint32_t len)
{
	(void)a;
	(void)len;
	volatile uint64_t junk[512];
	for (int i = 0; i < 512; i++)
		junk[i] = SEL_JUNK;
	char buf[8];
	struct wisp_msg_info info;
	wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
}

static void selective(void)
{
	wisp_pid_t me = wisp_self();
	uint64_t two = 2, one = 1;
	char buf[64] = { 0 };
	struct wisp_msg_info info;
	wisp_pid_t r = wisp_spawn(sel_receiver, &me, sizeof me);
	wisp_receive(&two, 1, WISP_INFINITY, buf, sizeof buf, &info);
	wisp_sleep(200 * MS);                    /* the receiver hibernates */
	for (int i = 0; i < 600; i++)            /* its old slot is cleared and reused */
		wisp_spawn(sel_filler, NULL, 0);
	wisp_sleep(100 * MS);
	wisp_send(r, SEL_JUNK, "junk", 4);
	wisp_send(r, SEL_WANT, "want", 4);
	wisp_receive(&one, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
	printf("%s\n", buf);
}

/* ---- a process hibernated while parked in a WASI read ----
 * fd_read keeps host pointers into the reader's memory (its iovecs) while
 * it waits for data; the reader hibernates meanwhile. The data must land
 * in the reader's memory, where it is when it wakes. */

static void parked_reader(const void *a, uint32_t len)
{
	wisp_pid_t parent;
	memcpy(&parent, a, sizeof parent);
	(void)len;
	int32_t lfd, conn;
	char addr[64];
	uint32_t alen, port;
	if (wisp_tcp_listen("127.0.0.1", 9, 0, 4, &lfd) != WISP_OK ||
	    wisp_net_local_addr(lfd, addr, sizeof addr, &alen, &port) != WISP_OK) {
		report(parent, "parked read: listen", 0);
		return;
	}
	wisp_send(parent, 20, &port, sizeof port);
	if (wisp_tcp_accept(lfd, WISP_INFINITY, &conn) != WISP_OK) {
		report(parent, "parked read: accept", 0);
		return;
	}
	static char got[64];
	ssize_t n = read(conn, got, 5);          /* WASI fd_read: parks, hibernates */
	report(parent, "parked read", n == 5 && memcmp(got, "hello", 5) == 0);
}

static void parked_io(void)
{
	wisp_pid_t me = wisp_self();
	uint64_t twenty = 20, one = 1;
	struct wisp_msg_info info;
	uint32_t port;
	wisp_spawn(parked_reader, &me, sizeof me);
	wisp_receive(&twenty, 1, WISP_INFINITY, &port, sizeof port, &info);
	int32_t fd;
	uint32_t n;
	if (wisp_tcp_connect("127.0.0.1", 9, port, WISP_INFINITY, &fd) != WISP_OK) {
		printf("connect failed\n");
		return;
	}
	wisp_sleep(300 * MS);                    /* the reader hibernates, parked */
	wisp_net_write(fd, "hello", 5, WISP_INFINITY, &n);
	char buf[64] = { 0 };
	wisp_receive(&one, 1, WISP_INFINITY, buf, sizeof buf - 1, &info);
	printf("%s\n", buf);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "events"))
		events();
	else if (!strcmp(c, "loop"))
		loop(argc > 2 ? atoi(argv[2]) : 1000, argc > 3 ? atoi(argv[3]) : 5);
	else if (!strcmp(c, "trap"))
		trap_after_wake();
	else if (!strcmp(c, "cow"))
		cow();
	else if (!strcmp(c, "parked_io"))
		parked_io();
	else if (!strcmp(c, "selective"))
		selective();
	else
		return 2;
	return 0;
}
