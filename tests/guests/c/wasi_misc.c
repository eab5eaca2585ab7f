/*
 * wasi_misc.c — WASI calls outside the file system: args, environment,
 * clocks, sleeping and polling (poll_oneoff), randomness, sched_yield,
 * proc_raise, fd_renumber, prestats, sockets on non-sockets, stdio, and
 * proc_exit with a status. argv[1] is a writable preopen's guest path.
 * Stdin carries "ping\n" from the test. With PORTABLE=1 in the
 * environment the steps where wisp knowingly differs from wasmtime are left
 * out (marked PORTABLE; see tests/e2e/test_wasi_differential.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

extern char **environ;

/* wasi-libc no longer wraps proc_raise; import it directly. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
int32_t raw_proc_raise(int32_t sig);

static uint64_t ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void args_env(int argc, char **argv)
{
	printf("argc: %d\n", argc);
	for (int i = 1; i < argc; i++)
		printf("argv[%d]: [%s]\n", i, argv[i]);
	const char *v = getenv("WISP_T");
	printf("env WISP_T: %s\n", v ? v : "(unset)");
	int n = 0;
	for (char **e = environ; *e; e++)
		n++;
	printf("environ count: %d\n", n);
}

static int portable;

static void clocks(void)
{
	printf("realtime_sane: %d\n", ns(CLOCK_REALTIME) > 1600000000ull * 1000000000ull);
	uint64_t a = ns(CLOCK_MONOTONIC), b = ns(CLOCK_MONOTONIC);
	printf("monotonic: %d\n", b >= a);
	volatile unsigned x = 0;
	for (unsigned i = 0; i < 20000000; i++)
		x += i;
	printf("process_cputime: %d\n", ns(CLOCK_PROCESS_CPUTIME_ID) > 0);
	__wasi_timestamp_t t = 0;
	/* PORTABLE: wasmtime has no thread CPU-time clock (EBADF) */
	if (!portable)
		printf("thread_cputime: %d %d\n",
		       __wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &t),
		       t > 0);
	/* PORTABLE: wasmtime ends the guest for an out-of-range enum value;
	 * wisp answers EINVAL */
	if (!portable)
		printf("bad_clock: %d\n", __wasi_clock_time_get(9, 1, &t));
	struct timespec res;
	printf("getres: %d %d\n", clock_getres(CLOCK_MONOTONIC, &res),
	       res.tv_sec == 0 && res.tv_nsec > 0);
	if (!portable)
		printf("bad_clock_res: %d\n", __wasi_clock_res_get(9, &t));
}

static void sleeping(void)
{
	uint64_t t0 = ns(CLOCK_MONOTONIC);
	struct timespec d = { 0, 80000000 };
	nanosleep(&d, NULL);
	uint64_t dt = ns(CLOCK_MONOTONIC) - t0;
	printf("nanosleep_80ms: %s\n", dt >= 80000000 ? "ok" : "TOO SHORT");
	/* absolute realtime deadline through the raw call */
	__wasi_subscription_t s = { .userdata = 7 };
	s.u.tag = __WASI_EVENTTYPE_CLOCK;
	s.u.u.clock.id = __WASI_CLOCKID_REALTIME;
	s.u.u.clock.timeout = ns(CLOCK_REALTIME) + 50000000;
	s.u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
	__wasi_event_t ev;
	__wasi_size_t nev = 0;
	t0 = ns(CLOCK_MONOTONIC);
	int r = __wasi_poll_oneoff(&s, &ev, 1, &nev);
	dt = ns(CLOCK_MONOTONIC) - t0;
	printf("poll_abs_realtime: %d %lu %llu %s\n", r, (unsigned long)nev,
	       (unsigned long long)ev.userdata, dt >= 45000000 ? "ok" : "TOO SHORT");
	printf("poll_zero_subs: %d\n", __wasi_poll_oneoff(&s, &ev, 0, &nev));
}

static void polling_stdin(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	int r = poll(&p, 1, 5000);
	printf("poll_stdin: %d %d\n", r, (p.revents & POLLIN) != 0);
	char buf[16] = { 0 };
	ssize_t n = read(0, buf, sizeof(buf) - 1);
	printf("stdin: %zd %s", n, buf);
	/* at EOF, poll reports readable (hang-up) at once */
	r = poll(&p, 1, 5000);
	printf("poll_eof: %d\n", r);
	/* nothing to wait for but a timeout */
	uint64_t t0 = ns(CLOCK_MONOTONIC);
	r = poll(NULL, 0, 30);
	printf("poll_timeout: %d %s\n", r,
	       ns(CLOCK_MONOTONIC) - t0 >= 30000000 ? "ok" : "TOO SHORT");
}

static void randomness(void)
{
	unsigned char buf[256];
	memset(buf, 0, sizeof(buf));
	printf("getentropy: %d\n", getentropy(buf, sizeof(buf)));
	int zeros = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		zeros += buf[i] == 0;
	printf("entropy_nonzero: %d\n", zeros < 16);
	static unsigned char big[1 << 20];
	printf("random_get_1MiB: %d\n", __wasi_random_get(big, sizeof(big)));
}

static void process(void)
{
	printf("sched_yield: %d\n", sched_yield());
	printf("proc_raise: %d\n", raw_proc_raise(15));
}

static void fds(const char *root)
{
	char p1[256], p2[256];
	snprintf(p1, sizeof(p1), "%s/one.txt", root);
	snprintf(p2, sizeof(p2), "%s/two.txt", root);
	FILE *f = fopen(p1, "w");
	fputs("first", f);
	fclose(f);
	f = fopen(p2, "w");
	fputs("second", f);
	fclose(f);
	int a = open(p1, O_RDONLY), b = open(p2, O_RDONLY);
	printf("renumber: %d\n", __wasi_fd_renumber(a, b));
	char buf[16] = { 0 };
	read(b, buf, sizeof(buf) - 1);
	printf("renumbered_reads: %s\n", buf);
	printf("old_fd_gone: %d\n", __wasi_fd_renumber(a, b));
	close(b);
	__wasi_prestat_t ps;
	printf("prestat: %d %lu\n", __wasi_fd_prestat_get(3, &ps),
	       (unsigned long)ps.u.dir.pr_name_len);
	char name[64] = { 0 };
	printf("prestat_name: %d %s\n",
	       __wasi_fd_prestat_dir_name(3, (uint8_t *)name, ps.u.dir.pr_name_len), name);
	printf("prestat_stdout: %d\n", __wasi_fd_prestat_get(1, &ps));
	printf("isatty_stdout: %d\n", isatty(1));
	/* sockets: stdio here are pipes */
	__wasi_ciovec_t ci = { (const uint8_t *)"x", 1 };
	__wasi_iovec_t io = { (uint8_t *)buf, 1 };
	__wasi_size_t n;
	__wasi_roflags_t rf;
	__wasi_fd_t nfd;
	printf("sock_send_pipe: %d\n", __wasi_sock_send(1, &ci, 1, 0, &n));
	printf("sock_recv_pipe: %d\n", __wasi_sock_recv(0, &io, 1, 0, &n, &rf));
	printf("sock_shutdown_pipe: %d\n", __wasi_sock_shutdown(1, __WASI_SDFLAGS_WR));
	printf("sock_accept_dir: %d\n", __wasi_sock_accept(3, 0, &nfd));
	printf("sock_accept_badf: %d\n", __wasi_sock_accept(99, 0, &nfd));
	printf("sock_send_badf: %d\n", __wasi_sock_send(99, &ci, 1, 0, &n));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	portable = getenv("PORTABLE") != NULL;
	args_env(argc, argv);
	clocks();
	sleeping();
	polling_stdin();
	randomness();
	process();
	fds(argv[1]);
	/* stdout closed by the guest: writing to it is EBADF, stderr works */
	printf("bye\n");
	fflush(stdout);
	close(1);
	errno = 0;
	ssize_t w = write(1, "lost\n", 5);
	fprintf(stderr, "write_closed_stdout: %zd %s\n", w, errno == EBADF ? "EBADF" : "?");
	exit(42);
}
