/*
 * inject.c — fault injection by LD_PRELOAD, for running the real wisp binary
 * under failing allocators and flaky I/O without changing src/ (issue 7).
 *
 *   LD_PRELOAD=build/fault/inject.so WISP_FAULT_MALLOC=N ./wisp run ...
 *
 * Environment (all optional; nothing is injected without them):
 *   WISP_FAULT_MALLOC=N   malloc, calloc, realloc, posix_memalign,
 *                         aligned_alloc, memalign, valloc and strdup fail
 *                         (NULL, ENOMEM) from the N+1-th call on (N=0: all).
 *   WISP_FAULT_MALLOC_ONCE=1  only the N+1-th call fails (SQLite's
 *                         "transient" mode), the rest succeed.
 *   WISP_FAULT_MMAP=N     mmap and mremap fail with ENOMEM from the N+1-th
 *                         call on (anonymous and file mappings alike).
 *   WISP_FAULT_IO=K       every K-th read/write/readv/writev/pread/pwrite
 *                         fails with EINTR, every other K-th with EAGAIN,
 *                         without doing anything.
 *   WISP_FAULT_ALL=1      also inject in child processes other than wisp
 *                         (wasm2c, the C compilers); by default only a
 *                         process whose program name is "wisp" is affected.
 *   (any of the above)    a fatal SIGSEGV/SIGBUS/SIGABRT/SIGFPE prints
 *                         "fault: signal N" and a backtrace to stderr, then
 *                         dies of the signal as it would have: tests tell
 *                         known findings from new ones by the frames.
 *   WISP_FAULT_REPORT=1   print "fault: malloc M mmap P io Q failed F" to
 *                         stderr at exit: how many calls were counted.
 *
 * Calls made by glibc itself on its internal paths (ld.so's own mappings,
 * pthread stacks) do not go through these symbols and are not counted; the
 * faults land on what wisp, libdw and libxxhash call.
 *
 * Implementation: the allocator functions forward to glibc's __libc_*
 * entry points (no dlsym, so no recursion at start-up); mmap, mremap and
 * the I/O calls go straight to syscall(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static long malloc_after = -1, mmap_after = -1, io_every = 0;
static int malloc_once, report;
static atomic_long n_malloc, n_mmap, n_io, n_failed;

static long env_long(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : -1;
}

static void on_fatal(int sig)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "fault: signal %d\n", sig);
	syscall(SYS_write, 2, buf, (size_t)n);
	void *frames[32];
	backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal(void)
{
	void *frames[4];
	backtrace(frames, 4);      /* loads libgcc_s now, while malloc works */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
}

__attribute__((constructor)) static void init(void)
{
	const char *all = getenv("WISP_FAULT_ALL");
	if (!(all && *all == '1') && strcmp(program_invocation_short_name, "wisp") != 0)
		return;
	malloc_after = env_long("WISP_FAULT_MALLOC");
	malloc_once = env_long("WISP_FAULT_MALLOC_ONCE") == 1;
	mmap_after = env_long("WISP_FAULT_MMAP");
	io_every = env_long("WISP_FAULT_IO");
	report = env_long("WISP_FAULT_REPORT") == 1;
	if (malloc_after >= 0 || mmap_after >= 0 || io_every > 0)
		catch_fatal();
	/* Counting starts now: allocations before main (the loader, libc's
	 * own set-up) are not wisp's. */
	atomic_store(&n_malloc, 0);
}

__attribute__((destructor)) static void fini(void)
{
	if (!report)
		return;
	char buf[160];
	int n = snprintf(buf, sizeof buf, "fault: malloc %ld mmap %ld io %ld failed %ld\n",
	                 atomic_load(&n_malloc), atomic_load(&n_mmap), atomic_load(&n_io),
	                 atomic_load(&n_failed));
	syscall(SYS_write, 2, buf, (size_t)n);
}

static int malloc_fails(void)
{
	long i = atomic_fetch_add(&n_malloc, 1);
	if (malloc_after < 0)
		return 0;
	if (malloc_once ? i == malloc_after : i >= malloc_after) {
		atomic_fetch_add(&n_failed, 1);
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *malloc(size_t n) { return malloc_fails() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return malloc_fails() ? NULL : __libc_calloc(a, b); }
void free(void *p) { __libc_free(p); }

void *realloc(void *p, size_t n)
{
	/* realloc(p, 0) frees; a failure must leave p alone, as the real one. */
	if (p && n == 0)
		return __libc_realloc(p, 0);
	return malloc_fails() ? NULL : __libc_realloc(p, n);
}

void *memalign(size_t al, size_t n) { return malloc_fails() ? NULL : __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { return memalign(al, n); }
void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }
void *pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return memalign(pg, (n + pg - 1) & ~(pg - 1));
}

int posix_memalign(void **out, size_t al, size_t n)
{
	if (al < sizeof(void *) || (al & (al - 1)))
		return EINVAL;
	void *p = memalign(al, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	return d ? memcpy(d, s, n) : NULL;
}

char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int mmap_fails(void)
{
	long i = atomic_fetch_add(&n_mmap, 1);
	if (mmap_after >= 0 && i >= mmap_after) {
		atomic_fetch_add(&n_failed, 1);
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (mmap_fails())
		return MAP_FAILED;
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (mmap_fails())
		return MAP_FAILED;
	long r = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
	return r == -1 ? MAP_FAILED : (void *)r;
}

/* 0, or -1 with errno EINTR / EAGAIN for this call. */
static int io_fails(void)
{
	if (io_every <= 0)
		return 0;
	long i = atomic_fetch_add(&n_io, 1) + 1;
	if (i % io_every)
		return 0;
	atomic_fetch_add(&n_failed, 1);
	errno = (i / io_every) % 2 ? EINTR : EAGAIN;
	return -1;
}

ssize_t read(int fd, void *buf, size_t n)
{
	return io_fails() ? -1 : syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return io_fails() ? -1 : syscall(SYS_write, fd, buf, n);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
	return io_fails() ? -1 : syscall(SYS_readv, fd, iov, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	return io_fails() ? -1 : syscall(SYS_writev, fd, iov, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return io_fails() ? -1 : syscall(SYS_pread64, fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return io_fails() ? -1 : syscall(SYS_pwrite64, fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));
