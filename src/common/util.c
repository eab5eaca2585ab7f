/*
 * util.c — see util.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int util_read_file(const char *path, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n + 1 >= cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 0;
}

int util_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return -errno;
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

void util_rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
				continue;
			struct stat st;
			if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
				util_rm_rf(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* The length of the well-formed UTF-8 sequence at p (1 to 4) and its code
 * point, or 0 if p does not start one (a stray continuation byte, an
 * overlong form, a surrogate, a truncated sequence: a terminal in another
 * encoding may take such bytes as controls, 0x9b as CSI). */
size_t util_utf8_seq(const unsigned char *p, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 :
	             (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (len == 0)
		return 0;
	uint32_t c = len == 1 ? p[0] : p[0] & (0x7fu >> len);
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)     /* (the NUL ends the string here) */
			return 0;
		c = c << 6 | (p[k] & 0x3fu);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Code points a terminal obeys or that change how the rest of the line
 * reads: C0, DEL, C1, line and paragraph separators, and the bidi
 * embeddings, overrides and isolates (which can make a line show text in
 * another order than it has). */
bool util_unprintable(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 ||
	       (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

void util_printable(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)src; *p;) {
		uint32_t c = 0;
		size_t len = util_utf8_seq(p, &c);
		bool bad = len == 0 || util_unprintable(c);
		if (len == 0)
			len = 1;                    /* escaped a byte at a time */
		if (n + (bad ? 4 * len : len) + 1 > cap)
			break;
		for (size_t k = 0; k < len; k++) {
			if (!bad) {
				dst[n++] = (char)p[k];
				continue;
			}
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[p[k] >> 4];
			dst[n++] = hex[p[k] & 15];
		}
		p += len;
	}
	dst[n] = '\0';
}

double util_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int util_find_program(const char *name, char *path, size_t pathlen)
{
	if (strchr(name, '/') != NULL) {
		snprintf(path, pathlen, "%s", name);
		return access(path, X_OK) == 0 ? 0 : -errno;
	}
	const char *p = getenv("PATH");
	if (p == NULL)
		p = "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		struct stat sb;
		if (n > 0 && (size_t)snprintf(path, pathlen, "%.*s/%s", (int)n, p, name) < pathlen &&
		    stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0)
			return 0;
		p += n + (colon != NULL);
	}
	return -ENOENT;
}

/* In the tool's process, before exec: its own process group, its limits,
 * its stdio, default signal handling. Only async-signal-safe calls (the
 * parent may have threads). */
static _Noreturn void exec_tool(const char *path, char *const argv[],
                                const struct util_limits *lim, int out_fd, bool capture_stdout)
{
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);     /* if the supervisor dies */
	int null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int null_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null_in < 0 || null_out < 0)
		_exit(127);
	dup2(null_in, 0);
	dup2(capture_stdout ? out_fd : null_out, 1);
	dup2(out_fd, 2);
	static const int defaults[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGCHLD };
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		signal(defaults[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (lim != NULL && lim->cpu_seconds > 0) {
		/* SIGXCPU at the limit, SIGKILL a little later if it is ignored */
		struct rlimit rl = { lim->cpu_seconds, lim->cpu_seconds + 2 };
		setrlimit(RLIMIT_CPU, &rl);
	}
	if (lim != NULL && lim->memory_bytes > 0) {
		struct rlimit rl = { lim->memory_bytes, lim->memory_bytes };
		setrlimit(RLIMIT_AS, &rl);
	}
	if (lim != NULL && lim->nice > 0)
		setpriority(PRIO_PROCESS, 0, lim->nice);
	/* wasm2c recurses per nested block: give it the stack the module
	 * reader's nesting limit assumes, where the hard limit allows. */
	struct rlimit st;
	if (getrlimit(RLIMIT_STACK, &st) == 0 && st.rlim_cur != RLIM_INFINITY &&
	    st.rlim_cur < (64u << 20)) {
		st.rlim_cur = st.rlim_max == RLIM_INFINITY || st.rlim_max > (64u << 20) ?
		              (64u << 20) : st.rlim_max;
		setrlimit(RLIMIT_STACK, &st);
	}
	execv(path, argv);
	_exit(127);
}

/* Close every descriptor but stdio and a and b: a supervisor started while
 * another thread runs a tool must not hold that tool's output pipe open
 * (its reader would wait for this supervisor to end too). */
static void close_others(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	if (lo > 3)
		close_range(3, (unsigned)lo - 1, 0);
	if (hi > lo + 1)
		close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
	close_range((unsigned)hi + 1, ~0u, 0);
}

/* The supervisor: start the tool, wait for it, kill its group when it ends,
 * when the parent dies (PR_SET_PDEATHSIG) or at the wall-clock limit; then
 * report on status_fd. Signals are taken synchronously (sigwaitinfo), so no
 * handler and no global state. */
static _Noreturn void supervise(pid_t parent, const char *path, char *const argv[],
                                const struct util_limits *lim, int out_fd,
                                bool capture_stdout, int status_fd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGCHLD, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);                        /* the parent is already gone */
	close_others(out_fd, status_fd);
	pid_t tool = fork();
	if (tool == 0)
		exec_tool(path, argv, lim, out_fd, capture_stdout);
	close(out_fd);
	struct util_run_status st = { .code = -1 };
	if (tool < 0) {
		st.code = 127;
		(void)!write(status_fd, &st, sizeof(st));
		_exit(0);
	}
	setpgid(tool, tool);                       /* also done by the tool: no race */
	if (lim != NULL && lim->wall_seconds > 0)
		alarm(lim->wall_seconds > 1000000 ? 1000000 : (unsigned)lim->wall_seconds);
	int status = 0;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig == SIGCHLD) {
			if (waitpid(tool, &status, WNOHANG) == tool)
				break;
		} else if (sig > 0) {              /* the parent died, a ^C, the clock */
			st.timed_out |= sig == SIGALRM;
			kill(-tool, SIGKILL);
		}
	}
	kill(-tool, SIGKILL);                      /* whatever the tool left running */
	struct rusage ru;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
		st.cpu_seconds = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
		st.max_rss = (uint64_t)ru.ru_maxrss * 1024;
	}
	if (WIFEXITED(status)) {
		st.code = WEXITSTATUS(status);
	} else {
		st.code = -1;
		st.signal = WTERMSIG(status);
	}
	(void)!write(status_fd, &st, sizeof(st));
	_exit(0);
}

/* Read the tool's output until every writer has closed the pipe; the
 * first time progress() asks for it, tell the supervisor `sup` to kill the
 * tool (*stopped). */
static size_t drain(int fd, char *out, size_t outlen, pid_t sup, bool *stopped,
                    bool (*progress)(void *arg, double secs), void *arg)
{
	size_t n = 0;
	double t0 = util_now();
	char sink[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, progress ? 250 : -1);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr > 0) {
			char *dst = sink;
			size_t room = sizeof(sink);
			if (out != NULL && n + 1 < outlen) {
				dst = out + n;
				room = outlen - 1 - n;
			}
			ssize_t r = read(fd, dst, room);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			if (dst != sink)
				n += (size_t)r;
		}
		if (progress && progress(arg, util_now() - t0) && !*stopped) {
			kill(sup, SIGTERM);        /* it kills the tool's group */
			*stopped = true;
		}
	}
	return n;
}

int util_run(char *const argv[], const struct util_limits *lim, char *out, size_t outlen,
             bool (*progress)(void *arg, double secs), void *arg,
             struct util_run_status *st)
{
	char path[PATH_MAX];
	memset(st, 0, sizeof(*st));
	int rc = util_find_program(argv[0], path, sizeof(path));
	if (rc != 0)
		return rc;
	int outp[2], statp[2];
	if (pipe2(outp, O_CLOEXEC) != 0)
		return -errno;
	if (pipe2(statp, O_CLOEXEC) != 0) {
		rc = -errno;
		close(outp[0]);
		close(outp[1]);
		return rc;
	}
	pid_t parent = getpid();
	pid_t sup = fork();
	if (sup == 0) {
		close(outp[0]);
		close(statp[0]);
		supervise(parent, path, argv, lim, outp[1], out != NULL, statp[1]);
	}
	rc = sup < 0 ? -errno : 0;
	close(outp[1]);
	close(statp[1]);
	bool stopped = false;
	size_t n = sup > 0 ? drain(outp[0], out, outlen, sup, &stopped, progress, arg) : 0;
	close(outp[0]);
	if (out != NULL && outlen > 0)
		out[n] = '\0';
	if (sup > 0) {
		ssize_t got;
		while ((got = read(statp[0], st, sizeof(*st))) < 0 && errno == EINTR)
			;
		while (waitpid(sup, NULL, 0) < 0 && errno == EINTR)
			;
		if (got != (ssize_t)sizeof(*st))
			rc = -ECHILD;
		st->stopped = stopped;
	}
	close(statp[0]);
	return rc;
}

/* Room for n more bytes and a NUL; false (oom set) if there is none. */
static bool text_room(struct util_text *t, size_t n)
{
	if (t->oom)
		return false;
	if (t->len + n + 1 <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < t->len + n + 1)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (p == NULL) {
		t->oom = true;
		return false;
	}
	t->p = p;
	t->cap = cap;
	return true;
}

void util_text_add(struct util_text *t, const char *s, size_t n)
{
	if (!text_room(t, n))
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void util_text_printf(struct util_text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->oom = true;
		return;
	}
	if (!text_room(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

#define RANDOM_BATCH 512
static _Thread_local uint32_t random_batch[RANDOM_BATCH];
static _Thread_local unsigned random_left;

uint32_t util_random31(void)
{
	if (random_left == 0) {
		size_t got = 0;
		while (got < sizeof(random_batch)) {
			ssize_t r = getrandom((char *)random_batch + got, sizeof(random_batch) - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		/* (The kernel's generator cannot fail once seeded, which it is
		 * long before a node runs; if it did, what was not filled keeps
		 * the last batch's bits: less unpredictable, still 31 bits.) */
		random_left = RANDOM_BATCH;
	}
	return random_batch[--random_left] & 0x7fffffffu;
}
