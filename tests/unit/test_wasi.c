/*
 * test_wasi.c — WASI preview 1 host functions called directly, as generated
 * code calls them: fd table, I/O, seeking, metadata, readdir paging, poll,
 * clocks, args/env, randomness, sockets, and guest-pointer checking.
 * Path confinement is in test_wasi_path.c. The preview 0 (wasi_unstable)
 * functions with layouts of their own are checked at their bounds here;
 * what they write, end to end (tests/e2e/test_wasi_unstable.py).
 *
 * Each test builds a fresh process: 64 KiB of guest memory, stdio on pipes
 * (stdin: a pipe we write to; stdout and stderr: a pipe we read), and one
 * preopen "/sandbox" on a temporary directory, all from a capability set
 * as the runtime builds them (the pipes are what "inherit" stands for).
 */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "host/wasi_impl.h"
#include "proc/caps.h"

/* The engine's engine_exit is only reachable with a running instance; a
 * weak fallback keeps this binary linkable if the engine lacks it. */
__attribute__((weak)) _Noreturn void engine_exit(engine_instance *in, int code)
{
	(void)in;
	exit(code);
}

/* A mkdtemp template under $TMPDIR (the test runner gives each binary its
 * own), or /tmp. */
static void tmp_template(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");
	snprintf(buf, len, "%s/%s-XXXXXX", t && *t ? t : "/tmp", "wisp-wasi");
}

#define MEMSZ 65536u
#define SELF ((struct Z_wasi_snapshot_preview1_instance_t *)(void *)&fx->hp)

/* guest addresses used by the tests */
enum { A_OUT = 256, A_OUT2 = 320, A_PATH = 1024, A_IOV = 2048, A_BUF = 4096,
       A_BIG = 16384 };

struct fx {
	char root[512];
	int in[2], out[2];
	uint8_t *data;
	wasm_rt_memory_t mem;
	struct host_proc hp;
	struct caps *caps;
	struct wasi_ctx *w;
};

/* A set with the given directories ((host, guest, read-only) triples). */
static struct caps *caps_with(int ndirs, const char *const *dirs,
                              const bool *ro)
{
	struct caps *c = caps_new();
	assert_non_null(c);
	for (int i = 0; i < ndirs; i++)
		assert_int_equal(caps_add_dir(c, dirs[2 * i], dirs[2 * i + 1],
		                              ro[i]), 0);
	return c;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	tmp_template(fx->root, sizeof(fx->root));
	assert_non_null(mkdtemp(fx->root));
	assert_int_equal(pipe(fx->in), 0);
	assert_int_equal(pipe(fx->out), 0);
	fx->data = calloc(1, MEMSZ);
	fx->mem.data = fx->data;
	fx->mem.size = MEMSZ;
	fx->mem.pages = MEMSZ / 65536;
	fx->mem.max_pages = MEMSZ / 65536;
	const char *argv[] = { "prog", "one", "" };
	const char *dirs[] = { fx->root, "/sandbox" };
	const bool ro[] = { false };
	fx->caps = caps_with(1, dirs, ro);
	assert_int_equal(caps_set_args(fx->caps, 3, argv), 0);
	assert_int_equal(caps_add_env(fx->caps, "A=1"), 0);
	assert_int_equal(caps_add_env(fx->caps, "LONGER=value"), 0);
	assert_int_equal(caps_finish(fx->caps), 0);
	const int inherit[3] = { fx->in[0], fx->out[1], fx->out[1] };
	char err[256];
	assert_int_equal(wasi_ctx_new(fx->caps, inherit, &fx->w, err,
	                              sizeof(err)), 0);
	fx->hp.mem = &fx->mem;
	fx->hp.wasi = fx->w;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	wasi_ctx_free(fx->w);
	caps_unref(fx->caps);
	/* stdio belongs to the embedder: still open after the free */
	assert_int_not_equal(fcntl(fx->in[0], F_GETFD), -1);
	assert_int_not_equal(fcntl(fx->out[1], F_GETFD), -1);
	close(fx->in[0]);
	close(fx->in[1]);
	close(fx->out[0]);
	close(fx->out[1]);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
	assert_int_equal(system(cmd), 0);
	free(fx->data);
	free(fx);
	return 0;
}

static uint32_t ld32(struct fx *fx, uint32_t a) { return wasi_ld32(fx->data + a); }
static uint64_t ld64(struct fx *fx, uint32_t a) { return wasi_ld64(fx->data + a); }

static void put_str(struct fx *fx, uint32_t a, const char *s)
{
	memcpy(fx->data + a, s, strlen(s));
}

/* One iovec at A_IOV pointing at (buf, len). */
static void iov1(struct fx *fx, uint32_t buf, uint32_t len)
{
	wasi_st32(fx->data + A_IOV, buf);
	wasi_st32(fx->data + A_IOV + 4, len);
}

static void host_write(struct fx *fx, const char *name, const char *text)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", fx->root, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* path_open relative to the preopen (fd 3), following symlinks. */
static uint32_t open_at(struct fx *fx, uint32_t dir, const char *path,
                        uint32_t oflags, uint64_t rights, uint32_t fdflags,
                        uint32_t *fd)
{
	put_str(fx, A_PATH, path);
	uint32_t r = Z_wasi_snapshot_preview1Z_path_open(
		SELF, dir, WASI_LOOKUP_SYMLINK_FOLLOW, A_PATH,
		(uint32_t)strlen(path), oflags, rights, WASI_RIGHTS_ALL, fdflags,
		A_OUT);
	*fd = ld32(fx, A_OUT);
	return r;
}

#define RW (WASI_RIGHTS_FILE)
#define RO (WASI_RIGHTS_FILE & ~(WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE | \
                                 WASI_RIGHT_FD_FILESTAT_SET_SIZE))

/* A directory is opened when it is added to the set: a missing one or a
 * file is refused then, not at some process's first WASI call. */
static void caps_add_dir_opens_now(void **state)
{
	(void)state;
	struct caps *c = caps_new();
	assert_int_equal(caps_add_dir(c, "/nonexistent/wisp-dir", "/x", false),
	                 -ENOENT);
	assert_int_equal(caps_add_dir(c, "/etc/passwd", "/x", false), -ENOTDIR);
	assert_int_equal(c->ndirs, 0);
	caps_unref(c);
}

static void ctx_closed_stdio_and_preopen_numbers(void **state)
{
	(void)state;
	char dir[512];
	tmp_template(dir, sizeof(dir));
	assert_non_null(mkdtemp(dir));
	const char *dirs[] = { dir, "/a", dir, "." };
	const bool ro[] = { false, true };
	struct caps *c = caps_with(2, dirs, ro);
	for (int i = 0; i < 3; i++)
		c->stdio[i] = CAP_STDIO_CLOSED;
	struct wasi_ctx *w;
	char err[256];
	assert_int_equal(wasi_ctx_new(c, NULL, &w, err, sizeof(err)), 0);
	uint8_t mem[64] = { 0 };
	wasm_rt_memory_t m = { .data = mem, .size = sizeof(mem) };
	struct host_proc hp = { .mem = &m, .wasi = w };
	void *self = &hp;
	/* closed stdio: EBADF; preopens still at 3 and 4 */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(self, 1, 0),
	                 WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(self, 3, 0), 0);
	assert_int_equal(wasi_ld32(mem + 4), 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(self, 4, 0), 0);
	assert_int_equal(wasi_ld32(mem + 4), 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(self, 5, 0),
	                 WASI_EBADF);
	wasi_ctx_free(w);
	wasi_ctx_free(NULL);
	caps_unref(c);
	rmdir(dir);
}

/* Flags a guest sets on its stdio are its own: the host's open file
 * descriptions (shared with whoever ran wisp) never change. */
static void stdio_flags_are_virtual(void **state)
{
	struct fx *fx = *state;
	/* stdin: an empty pipe; NONBLOCK is emulated */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(SELF, 0, WASI_FDFLAG_NONBLOCK), 0);
	assert_false(fcntl(fx->in[0], F_GETFL) & O_NONBLOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, 0, A_BUF), 0);
	assert_int_equal(wasi_ld16(fx->data + A_BUF + 2), WASI_FDFLAG_NONBLOCK);
	iov1(fx, A_BUF, 8);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, 0, A_IOV, 1, A_OUT), WASI_EAGAIN);
	assert_int_equal(write(fx->in[1], "abc", 3), 3);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, 0, A_IOV, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 3);
	/* a preopen directory has no I/O flags */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(SELF, 3, WASI_FDFLAG_NONBLOCK), WASI_EBADF);

	/* stdout a regular file without O_APPEND: the guest's APPEND appends */
	char path[600];
	snprintf(path, sizeof(path), "%s/log", fx->root);
	int log = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	assert_true(log >= 0);
	assert_int_equal(write(log, "0123456789", 10), 10);
	struct caps *c = caps_new();
	const int inherit[3] = { -1, log, -1 };
	c->stdio[0] = c->stdio[2] = CAP_STDIO_CLOSED;
	struct wasi_ctx *w;
	char err[128];
	assert_int_equal(wasi_ctx_new(c, inherit, &w, err, sizeof(err)), 0);
	struct host_proc hp = { .mem = &fx->mem, .wasi = w };
	void *self = &hp;
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(self, 1, WASI_FDFLAG_APPEND), 0);
	assert_int_equal(lseek(log, 0, SEEK_SET), 0);
	put_str(fx, A_BUF, "XY");
	iov1(fx, A_BUF, 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(self, 1, A_IOV, 1, A_OUT), 0);
	assert_false(fcntl(log, F_GETFL) & O_APPEND);
	char got[16] = { 0 };
	assert_int_equal(pread(log, got, sizeof(got), 0), 12);
	assert_string_equal(got, "0123456789XY");
	/* clearing it again: plain writes at the offset */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(self, 1, 0), 0);
	assert_int_equal(lseek(log, 0, SEEK_SET), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(self, 1, A_IOV, 1, A_OUT), 0);
	assert_int_equal(pread(log, got, sizeof(got), 0), 12);
	assert_string_equal(got, "XY23456789XY");
	wasi_ctx_free(w);
	caps_unref(c);
	close(log);
}

/* The per-process fd limit: a new fd must be numbered below max_fds. */
static void fd_limit(void **state)
{
	struct fx *fx = *state;
	fx->w->max_fds = 6;     /* 0-2 stdio, 3 the preopen: two more */
	uint32_t a, b, c;
	assert_int_equal(open_at(fx, 3, "x", WASI_O_CREAT, RW, 0, &a), 0);
	assert_int_equal(open_at(fx, 3, "x", 0, RW, 0, &b), 0);
	assert_int_equal(open_at(fx, 3, "x", 0, RW, 0, &c), WASI_EMFILE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(SELF, a), 0);
	assert_int_equal(open_at(fx, 3, "x", 0, RW, 0, &c), 0);
	assert_int_equal(c, a);
	/* a host fd in the runtime's reserve is refused, the slot stays free */
	fx->w->max_fds = 100;
	fx->w->host_fd_ceiling = 0;
	assert_int_equal(open_at(fx, 3, "x", 0, RW, 0, &c), WASI_ENFILE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, 6, A_BUF), WASI_EBADF);
}

static void args_and_environ(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(Z_wasi_snapshot_preview1Z_args_sizes_get(SELF, A_OUT, A_OUT + 4), 0);
	assert_int_equal(ld32(fx, A_OUT), 3);
	assert_int_equal(ld32(fx, A_OUT + 4), sizeof("prog") + sizeof("one") + 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_args_get(SELF, A_OUT, A_BUF), 0);
	assert_int_equal(ld32(fx, A_OUT), A_BUF);
	assert_string_equal((char *)fx->data + ld32(fx, A_OUT + 4), "one");
	assert_string_equal((char *)fx->data + ld32(fx, A_OUT + 8), "");
	assert_int_equal(Z_wasi_snapshot_preview1Z_environ_sizes_get(SELF, A_OUT, A_OUT + 4), 0);
	assert_int_equal(ld32(fx, A_OUT), 2);
	assert_int_equal(ld32(fx, A_OUT + 4), 4 + 13);
	assert_int_equal(Z_wasi_snapshot_preview1Z_environ_get(SELF, A_OUT, A_BUF), 0);
	assert_string_equal((char *)fx->data + ld32(fx, A_OUT + 4), "LONGER=value");
	/* out of bounds: pointer arrays, string buffers, size outputs */
	assert_int_equal(Z_wasi_snapshot_preview1Z_args_get(SELF, MEMSZ - 8, A_BUF), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_args_get(SELF, A_OUT, MEMSZ - 4), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_environ_get(SELF, 0xfffffffcu, A_BUF), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_args_sizes_get(SELF, MEMSZ - 2, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_environ_sizes_get(SELF, A_OUT, 0xffffffffu), WASI_EFAULT);
}

static void clocks(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 0; id < 4; id++) {
		assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, id, 1, A_OUT), 0);
		assert_int_equal(Z_wasi_snapshot_preview1Z_clock_res_get(SELF, id, A_OUT2), 0);
		assert_true(ld64(fx, A_OUT2) > 0);
	}
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, 0, 1, A_OUT), 0);
	uint64_t rt = ld64(fx, A_OUT);
	assert_true(rt > 1600000000ull * 1000000000ull);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, 1, 1, A_OUT), 0);
	uint64_t m1 = ld64(fx, A_OUT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, 1, 1, A_OUT), 0);
	assert_true(ld64(fx, A_OUT) >= m1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, 4, 1, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_res_get(SELF, 99, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_time_get(SELF, 1, 1, MEMSZ - 7), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_clock_res_get(SELF, 1, 0xfffffff9u), WASI_EFAULT);
}

static void write_read_stdio(void **state)
{
	struct fx *fx = *state;
	put_str(fx, A_BUF, "hello, ");
	put_str(fx, A_BUF + 100, "world\n");
	wasi_st32(fx->data + A_IOV, A_BUF);
	wasi_st32(fx->data + A_IOV + 4, 7);
	wasi_st32(fx->data + A_IOV + 8, A_BUF + 100);
	wasi_st32(fx->data + A_IOV + 12, 6);
	/* unaligned result pointer */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 2, A_OUT + 1), 0);
	assert_int_equal(wasi_ld32(fx->data + A_OUT + 1), 13);
	char got[32] = { 0 };
	assert_int_equal(read(fx->out[0], got, sizeof(got)), 13);
	assert_string_equal(got, "hello, world\n");
	/* stdin */
	assert_int_equal(write(fx->in[1], "input", 5), 5);
	iov1(fx, A_BUF, 100);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, 0, A_IOV, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 5);
	assert_memory_equal(fx->data + A_BUF, "input", 5);
	/* zero iovecs is a zero-byte write */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 0, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 0);
}

static void iovec_bounds(void **state)
{
	struct fx *fx = *state;
	/* iovs_len * 8 wraps to 0 in 32 bits: must still be EFAULT */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 0x20000000u, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, 0, A_IOV, 0x20000001u, A_OUT), WASI_EFAULT);
	/* the iovec array itself past the end */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, MEMSZ - 4, 1, A_OUT), WASI_EFAULT);
	/* a buffer that wraps around the 32-bit address space */
	iov1(fx, 0xfffffff0u, 0x20);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), WASI_EFAULT);
	/* a buffer one byte too long */
	iov1(fx, MEMSZ - 10, 11);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), WASI_EFAULT);
	iov1(fx, MEMSZ - 10, 10);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 10);
	/* result pointer out of bounds: nothing is written */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, MEMSZ - 3), WASI_EFAULT);
	char junk[64];
	assert_int_equal(read(fx->out[0], junk, sizeof(junk)), 10);
}

static void bad_fds(void **state)
{
	struct fx *fx = *state;
	iov1(fx, A_BUF, 4);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 99, A_IOV, 1, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 0xffffffffu, A_IOV, 1, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(SELF, 7), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, 42, 0, 0, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, 42, A_BUF), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 42, A_BUF, 100, 0, A_OUT), WASI_EBADF);
	/* closing stdout drops it from the table but not from the host */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(SELF, 1), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(SELF, 1), WASI_EBADF);
	assert_int_not_equal(fcntl(fx->out[1], F_GETFD), -1);
}

static void write_to_closed_pipe_is_epipe(void **state)
{
	struct fx *fx = *state;
	signal(SIGPIPE, SIG_IGN);
	close(fx->out[0]);
	fx->out[0] = open("/dev/null", O_RDONLY);
	put_str(fx, A_BUF, "x");
	iov1(fx, A_BUF, 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), WASI_EPIPE);
}

static void prestat(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 3, A_OUT), 0);
	assert_int_equal(fx->data[A_OUT], 0);
	assert_int_equal(ld32(fx, A_OUT + 4), 8);
	memset(fx->data + A_BUF, '#', 16);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(SELF, 3, A_BUF, 8), 0);
	assert_memory_equal(fx->data + A_BUF, "/sandbox#", 9);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(SELF, 3, A_BUF, 7), WASI_ENAMETOOLONG);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(SELF, 3, MEMSZ - 4, 8), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 3, MEMSZ - 4), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 1, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 4, A_OUT), WASI_EBADF);
	/* an fd opened below the preopen is no preopen */
	host_write(fx, "f", "x");
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "f", 0, RO, 0, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, fd, A_OUT), WASI_EBADF);
}

static void file_io_seek_tell_pread_pwrite(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "new.txt", WASI_O_CREAT | WASI_O_EXCL, RW, 0, &fd), 0);
	assert_int_equal(fd, 4);
	put_str(fx, A_BUF, "0123456789");
	iov1(fx, A_BUF, 10);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, fd, A_IOV, 1, A_OUT), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_tell(SELF, fd, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 10);
	/* seek: set, cur (negative), end */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, 2, 0, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, (uint64_t)-1, 1, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, (uint64_t)-3, 2, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 7);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, 0, 3, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, (uint64_t)-100, 1, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, 0, 0, MEMSZ), WASI_EFAULT);
	iov1(fx, A_BUF + 100, 10);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_read(SELF, fd, A_IOV, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 3);
	assert_memory_equal(fx->data + A_BUF + 100, "789", 3);
	/* pread/pwrite do not move the position */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_pread(SELF, fd, A_IOV, 1, 4, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 6);
	assert_memory_equal(fx->data + A_BUF + 100, "456789", 6);
	put_str(fx, A_BUF, "AB");
	iov1(fx, A_BUF, 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_pwrite(SELF, fd, A_IOV, 1, 12, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_tell(SELF, fd, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 10);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_pwrite(SELF, fd, A_IOV, 1, 1ull << 63, A_OUT), WASI_EINVAL);
	/* filestat sees the hole */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(fx->data[A_BUF + 16], WASI_FILETYPE_REGULAR_FILE);
	assert_int_equal(ld64(fx, A_BUF + 32), 14);
	assert_int_equal(ld64(fx, A_BUF + 24), 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, MEMSZ - 63), WASI_EFAULT);
	/* pread on a pipe: ESPIPE */
	iov1(fx, A_BUF, 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_pread(SELF, 0, A_IOV, 1, 0, A_OUT), WASI_ESPIPE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, 1, 0, 0, A_OUT), WASI_ESPIPE);
}

static void filestat_set_size_and_times(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "t", WASI_O_CREAT, RW, 0, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_size(SELF, fd, 5000), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(ld64(fx, A_BUF + 32), 5000);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_size(SELF, fd, 1ull << 63), WASI_EINVAL);
	uint64_t at = 1000000000ull * 1000 + 5, mt = 1000000000ull * 2000 + 7;
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, at, mt, WASI_FST_ATIM | WASI_FST_MTIM), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(ld64(fx, A_BUF + 40), at);
	assert_int_equal(ld64(fx, A_BUF + 48), mt);
	/* only mtime = now: atime stays */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, 0, 0, WASI_FST_MTIM_NOW), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(ld64(fx, A_BUF + 40), at);
	assert_true(ld64(fx, A_BUF + 48) > 1600000000ull * 1000000000ull);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, 0, 0, WASI_FST_ATIM | WASI_FST_ATIM_NOW), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, 0, 0, WASI_FST_MTIM | WASI_FST_MTIM_NOW), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, fd, 0, 0, 0x10), WASI_EINVAL);
	/* times on the O_PATH preopen itself */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_set_times(SELF, 3, at, mt, WASI_FST_ATIM | WASI_FST_MTIM), 0);
	struct stat st;
	assert_int_equal(stat(fx->root, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 2000);
}

static void fdstat_flags_and_rights(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "r", WASI_O_CREAT, RW, WASI_FDFLAG_APPEND, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, fd, A_BUF + 1), 0);
	uint8_t *b = fx->data + A_BUF + 1;
	assert_int_equal(b[0], WASI_FILETYPE_REGULAR_FILE);
	assert_int_equal(wasi_ld16(b + 2), WASI_FDFLAG_APPEND);
	assert_int_equal(wasi_ld64(b + 8), RW);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(SELF, fd, WASI_FDFLAG_NONBLOCK), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(wasi_ld16(fx->data + A_BUF + 2), WASI_FDFLAG_NONBLOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(SELF, fd, 0x100), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(SELF, fd, WASI_FDFLAG_SYNC), WASI_EINVAL);
	/* preopen: a directory with path rights */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, 3, A_BUF), 0);
	assert_int_equal(fx->data[A_BUF], WASI_FILETYPE_DIRECTORY);
	assert_true(ld64(fx, A_BUF + 8) & WASI_RIGHT_PATH_OPEN);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(SELF, fd, MEMSZ - 23), WASI_EFAULT);
	/* dropping rights works, gaining them back does not */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(SELF, fd, RO, 0), 0);
	put_str(fx, A_BUF, "z");
	iov1(fx, A_BUF, 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, fd, A_IOV, 1, A_OUT), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(SELF, fd, RW, 0), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(SELF, fd, RO, 1), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(SELF, fd, 0, 0), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_tell(SELF, fd, A_OUT), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_seek(SELF, fd, 0, 1, A_OUT), WASI_ENOTCAPABLE);
	/* close needs no right */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(SELF, fd), 0);
}

static void renumber(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "out.txt", WASI_O_CREAT, RW, 0, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, fd, 1), 0);
	put_str(fx, A_BUF, "to file");
	iov1(fx, A_BUF, 7);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, fd, A_IOV, 1, A_OUT), WASI_EBADF);
	/* the borrowed stdout pipe was dropped, not closed */
	assert_int_not_equal(fcntl(fx->out[1], F_GETFD), -1);
	char p[600], got[16] = { 0 };
	snprintf(p, sizeof(p), "%s/out.txt", fx->root);
	int h = open(p, O_RDONLY);
	assert_int_equal(read(h, got, sizeof(got)), 7);
	close(h);
	assert_string_equal(got, "to file");
	/* errors: bad source, bad target; same fd is a no-op */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, 50, 1), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, 1, 50), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, 1, 1), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_write(SELF, 1, A_IOV, 1, A_OUT), 0);
	/* renumbering the preopen carries its name */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_renumber(SELF, 3, 2), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 2, A_OUT), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_prestat_get(SELF, 3, A_OUT), WASI_EBADF);
	/* freed slots are reused lowest first */
	assert_int_equal(open_at(fx, 2, "out.txt", 0, RO, 0, &fd), 0);
	assert_int_equal(fd, 3);
}

/* Read a whole directory through fd_readdir with a buffer of `bufsz`
 * bytes, growing it only when a single entry does not fit, the way
 * wasi-libc does. Returns the names joined by '/' in cookie order. */
static void list_dir(struct fx *fx, uint32_t fd, uint32_t bufsz, char *names,
                     size_t cap, int *count)
{
	uint64_t cookie = 0;
	names[0] = '\0';
	*count = 0;
	for (int guard = 0; guard < 10000; guard++) {
		assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, fd, A_BIG, bufsz, cookie, A_OUT), 0);
		uint32_t used = ld32(fx, A_OUT);
		assert_true(used <= bufsz);
		uint32_t off = 0;
		int whole = 0;
		while (off + WASI_DIRENT_SIZE <= used) {
			uint8_t *e = fx->data + A_BIG + off;
			uint32_t nl = wasi_ld32(e + 16);
			if (off + WASI_DIRENT_SIZE + nl > used)
				break;
			snprintf(names + strlen(names), cap - strlen(names), "%.*s/",
			         (int)nl, (char *)e + WASI_DIRENT_SIZE);
			cookie = wasi_ld64(e);
			off += WASI_DIRENT_SIZE + nl;
			whole++;
			(*count)++;
		}
		if (used < bufsz)
			return;                  /* end of directory */
		if (whole == 0)
			bufsz *= 2;              /* one entry did not fit */
		assert_true(bufsz <= 4096);
	}
	fail_msg("readdir did not terminate");
}

static void readdir_paging(void **state)
{
	struct fx *fx = *state;
	char name[64];
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "file-%02d-%.*s", i, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		host_write(fx, name, "");
	}
	static char big[8192], small[8192];
	int nbig, nsmall;
	/* the preopen itself (an O_PATH fd) can be listed */
	list_dir(fx, 3, 4096, big, sizeof(big), &nbig);
	assert_int_equal(nbig, 32);  /* 30 files, ".", ".." */
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "/file-%02d-%.*s/", i, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		assert_non_null(strstr(big, name + 1));
	}
	/* tiny buffers: every entry truncated at least once, same listing */
	for (uint32_t sz = 1; sz < 80; sz += 13) {
		list_dir(fx, 3, sz, small, sizeof(small), &nsmall);
		assert_int_equal(nsmall, nbig);
		assert_string_equal(small, big);
	}
	/* cookies are small ordinals: any of them resumes the same listing */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 4096, 0, A_OUT), 0);
	assert_int_equal(ld64(fx, A_BIG), 1);
	for (uint64_t k = 0; k < 32; k += 7) {
		assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 4096, k, A_OUT), 0);
		const char *want = big;
		for (uint64_t i = 0; i < k; i++)
			want = strchr(want, '/') + 1;
		uint32_t nl = ld32(fx, A_BIG + 16);
		assert_memory_equal(fx->data + A_BIG + WASI_DIRENT_SIZE, want, nl);
		assert_int_equal(want[nl], '/');
		assert_int_equal(ld64(fx, A_BIG), k + 1);
	}
	/* past the end: nothing; then back to a cookie already seen */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 4096, 1000, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 4096, 31, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), WASI_DIRENT_SIZE + ld32(fx, A_BIG + 16));
	assert_int_equal(ld64(fx, A_BIG), 32);
	/* a truncated entry fills the buffer exactly */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 30, 0, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 30);
	/* an opened directory fd, and the dirent type field */
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, ".", WASI_O_DIRECTORY, WASI_RIGHT_FD_READDIR, 0, &fd), 0);
	list_dir(fx, fd, 200, small, sizeof(small), &nsmall);
	assert_string_equal(small, big);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, fd, A_BIG, 4096, 0, A_OUT), 0);
	uint32_t used = ld32(fx, A_OUT), off = 0;
	while (off < used) {
		uint8_t *e = fx->data + A_BIG + off;
		uint32_t nl = wasi_ld32(e + 16);
		if (nl > 2)
			assert_int_equal(e[20], WASI_FILETYPE_REGULAR_FILE);
		else
			assert_int_equal(e[20], WASI_FILETYPE_DIRECTORY);
		off += WASI_DIRENT_SIZE + nl;
	}
	/* errors */
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, MEMSZ - 10, 11, 0, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 0xffffffffu, 0, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 3, A_BIG, 100, 0, MEMSZ), WASI_EFAULT);
	assert_int_equal(open_at(fx, 3, "file-00-", 0, RO | WASI_RIGHT_FD_READDIR, 0, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, fd, A_BIG, 100, 0, A_OUT), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_readdir(SELF, 0, A_BIG, 100, 0, A_OUT), WASI_ENOTCAPABLE);
}

/* Write one subscription at guest address a. */
static void sub_clock(struct fx *fx, uint32_t a, uint64_t ud, uint32_t id,
                      uint64_t timeout, uint16_t flags)
{
	memset(fx->data + a, 0, WASI_SUBSCRIPTION_SIZE);
	wasi_st64(fx->data + a, ud);
	fx->data[a + 8] = 0;
	wasi_st32(fx->data + a + 16, id);
	wasi_st64(fx->data + a + 24, timeout);
	wasi_st16(fx->data + a + 40, flags);
}

static void sub_fd(struct fx *fx, uint32_t a, uint64_t ud, uint8_t type,
                   uint32_t fd)
{
	memset(fx->data + a, 0, WASI_SUBSCRIPTION_SIZE);
	wasi_st64(fx->data + a, ud);
	fx->data[a + 8] = type;
	wasi_st32(fx->data + a + 16, fd);
}

static uint64_t mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void poll_clocks(void **state)
{
	struct fx *fx = *state;
	enum { IN = 8192, OUT = 12288 };
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 0, A_OUT), WASI_EINVAL);
	/* relative: sleeps for the earliest of two */
	sub_clock(fx, IN, 11, WASI_CLOCK_MONOTONIC, 3000000000ull, 0);
	sub_clock(fx, IN + 48, 22, WASI_CLOCK_MONOTONIC, 50000000, 0);
	uint64_t t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 2, A_OUT), 0);
	uint64_t dt = mono() - t0;
	assert_true(dt >= 50000000);
	assert_true(dt < 2000000000);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(ld64(fx, OUT), 22);
	assert_int_equal(wasi_ld16(fx->data + OUT + 8), 0);
	assert_int_equal(fx->data[OUT + 10], 0);
	/* absolute monotonic */
	sub_clock(fx, IN, 33, WASI_CLOCK_MONOTONIC, mono() + 40000000, 1);
	t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 1, A_OUT), 0);
	assert_true(mono() - t0 >= 39000000);
	/* absolute realtime */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t rt = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	sub_clock(fx, IN, 44, WASI_CLOCK_REALTIME, rt + 30000000, 1);
	t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 1, A_OUT), 0);
	assert_true(mono() - t0 >= 25000000);
	assert_int_equal(ld64(fx, OUT), 44);
	/* a deadline in the past fires at once; in and out may overlap */
	sub_clock(fx, IN, 55, WASI_CLOCK_MONOTONIC, 1, 1);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, IN, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(ld64(fx, IN), 55);
	/* bad clock ids and flags: an error event, no waiting */
	sub_clock(fx, IN, 66, 9, 1000000000, 0);
	sub_clock(fx, IN + 48, 77, WASI_CLOCK_MONOTONIC, 5000000000ull, 0);
	t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 2, A_OUT), 0);
	assert_true(mono() - t0 < 2500000000ull);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(ld64(fx, OUT), 66);
	assert_int_equal(wasi_ld16(fx->data + OUT + 8), WASI_EINVAL);
	/* bounds: nsubscriptions * 48 wraps past 2^32 */
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 0x5555556u, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, MEMSZ - 47, OUT, 1, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, MEMSZ - 31, 1, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 1, MEMSZ - 3), WASI_EFAULT);
}

static void poll_fds(void **state)
{
	struct fx *fx = *state;
	enum { IN = 8192, OUT = 12288 };
	/* empty stdin + timeout: only the clock fires, after the timeout */
	sub_fd(fx, IN, 1, 1, 0);
	sub_clock(fx, IN + 48, 2, WASI_CLOCK_MONOTONIC, 30000000, 0);
	uint64_t t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 2, A_OUT), 0);
	assert_true(mono() - t0 >= 30000000);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(ld64(fx, OUT), 2);
	/* data on stdin: ready at once with its size */
	assert_int_equal(write(fx->in[1], "abcde", 5), 5);
	sub_clock(fx, IN + 48, 2, WASI_CLOCK_MONOTONIC, 5000000000ull, 0);
	t0 = mono();
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 2, A_OUT), 0);
	assert_true(mono() - t0 < 2500000000ull);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(ld64(fx, OUT), 1);
	assert_int_equal(fx->data[OUT + 10], 1);
	assert_int_equal(ld64(fx, OUT + 16), 5);
	/* stdout writable; bad fd is an error event */
	sub_fd(fx, IN, 3, 2, 1);
	sub_fd(fx, IN + 48, 4, 1, 77);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 2, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 2);
	assert_int_equal(ld64(fx, OUT), 3);
	assert_int_equal(fx->data[OUT + 10], 2);
	assert_int_equal(ld64(fx, OUT + 32), 4);
	assert_int_equal(wasi_ld16(fx->data + OUT + 32 + 8), WASI_EBADF);
	/* hang-up: the writer of stdin goes away */
	close(fx->in[1]);
	fx->in[1] = open("/dev/null", O_WRONLY);
	char junk[8];
	assert_int_equal(read(fx->in[0], junk, sizeof(junk)), 5);
	sub_fd(fx, IN, 5, 1, 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 1, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 1);
	assert_int_equal(wasi_ld16(fx->data + OUT + 24), 1);
	/* unknown subscription type */
	sub_fd(fx, IN, 6, 7, 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_poll_oneoff(SELF, IN, OUT, 1, A_OUT), 0);
	assert_int_equal(wasi_ld16(fx->data + OUT + 8), WASI_EINVAL);
}

static void random_bytes(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(Z_wasi_snapshot_preview1Z_random_get(SELF, A_BIG, 0), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_random_get(SELF, A_BIG, 40000), 0);
	int zeros = 0;
	for (int i = 0; i < 40000; i++)
		zeros += fx->data[A_BIG + i] == 0;
	assert_true(zeros < 400);
	assert_int_equal(Z_wasi_snapshot_preview1Z_random_get(SELF, 0, MEMSZ), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_random_get(SELF, 1, MEMSZ), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_random_get(SELF, 0xffffff00u, 0x200), WASI_EFAULT);
}

static void sched_raise(void **state)
{
	struct fx *fx = *state;
	assert_int_equal(Z_wasi_snapshot_preview1Z_sched_yield(SELF), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_proc_raise(SELF, 2), WASI_ENOTSUP);
}

static void advise_allocate_sync(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "a", WASI_O_CREAT, RW, 0, &fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_advise(SELF, fd, 0, 100, 1), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_advise(SELF, fd, 0, 100, 6), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_allocate(SELF, fd, 10, 4086), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, A_BUF), 0);
	assert_int_equal(ld64(fx, A_BUF + 32), 4096);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_allocate(SELF, fd, 1ull << 62, 1ull << 62), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_datasync(SELF, fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_sync(SELF, fd), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_sync(SELF, 3), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_datasync(SELF, 42), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_advise(SELF, 3, 0, 0, 0), WASI_ENOTCAPABLE);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_allocate(SELF, 3, 0, 1), WASI_ENOTCAPABLE);
}

static void sockets_on_files_and_bad_fds(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	assert_int_equal(open_at(fx, 3, "s", WASI_O_CREAT, RW, 0, &fd), 0);
	iov1(fx, A_BUF, 4);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(SELF, fd, A_IOV, 1, 0, A_OUT, A_OUT2), WASI_ENOTSOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_send(SELF, fd, A_IOV, 1, 0, A_OUT), WASI_ENOTSOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_shutdown(SELF, 1, 2), WASI_ENOTSOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_accept(SELF, 3, 0, A_OUT), WASI_ENOTSOCK);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_accept(SELF, 60, 0, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(SELF, 60, A_IOV, 1, 0, A_OUT, A_OUT2), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_send(SELF, 60, A_IOV, 1, 0, A_OUT), WASI_EBADF);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_shutdown(SELF, 60, 1), WASI_EBADF);
}

/* A process whose stdio are sockets: stdin a listening unix socket,
 * stdout one end of a socketpair. */
static void sockets_real(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	int lst = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/wisp-wasi-sock-%d", getpid());
	unlink(sa.sun_path);
	assert_int_equal(bind(lst, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lst, 4), 0);
	struct caps *cs = caps_new();
	cs->stdio[2] = CAP_STDIO_CLOSED;
	const int inherit[3] = { lst, sp[0], -1 };
	struct wasi_ctx *w;
	char err[128];
	assert_int_equal(wasi_ctx_new(cs, inherit, &w, err, sizeof(err)), 0);
	uint8_t *data = calloc(1, MEMSZ);
	wasm_rt_memory_t m = { .data = data, .size = MEMSZ };
	struct host_proc hp = { .mem = &m, .wasi = w };
	void *self = &hp;
	/* send/recv on the socketpair, with peek and truncation flags */
	memcpy(data + A_BUF, "ping", 4);
	wasi_st32(data + A_IOV, A_BUF);
	wasi_st32(data + A_IOV + 4, 4);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_send(self, 1, A_IOV, 1, 0, A_OUT), 0);
	assert_int_equal(wasi_ld32(data + A_OUT), 4);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_send(self, 1, A_IOV, 1, 1, A_OUT), WASI_EINVAL);
	char got[8] = { 0 };
	assert_int_equal(read(sp[1], got, sizeof(got)), 4);
	assert_string_equal(got, "ping");
	assert_int_equal(write(sp[1], "pong!", 5), 5);
	wasi_st32(data + A_IOV, A_BUF + 100);
	wasi_st32(data + A_IOV + 4, 16);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, 1, A_IOV, 1, 1, A_OUT, A_OUT2), 0);
	assert_int_equal(wasi_ld32(data + A_OUT), 5);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, 1, A_IOV, 1, 0, A_OUT, A_OUT2 + 1), 0);
	assert_int_equal(wasi_ld32(data + A_OUT), 5);
	assert_int_equal(wasi_ld16(data + A_OUT2 + 1), 0);
	assert_memory_equal(data + A_BUF + 100, "pong!", 5);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, 1, A_IOV, 1, 4, A_OUT, A_OUT2), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, 1, A_IOV, 1, 0, A_OUT, MEMSZ - 1), WASI_EFAULT);
	/* shutdown: the peer sees EOF; then sending is EPIPE, not SIGPIPE */
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_shutdown(self, 1, 0), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_shutdown(self, 1, 2), 0);
	assert_int_equal(read(sp[1], got, sizeof(got)), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_send(self, 1, A_IOV, 1, 0, A_OUT), WASI_EPIPE);
	/* accept on the listener */
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_accept(self, 0, 2, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_accept(self, 0, WASI_FDFLAG_NONBLOCK, A_OUT), 0);
	uint32_t fd = wasi_ld32(data + A_OUT);
	assert_int_equal(fd, 2);
	assert_int_equal(write(c, "hi", 2), 2);
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, fd, A_IOV, 1, 0, A_OUT, A_OUT2), 0);
	assert_int_equal(wasi_ld32(data + A_OUT), 2);
	/* nonblocking: nothing pending is EAGAIN; no second connection */
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_recv(self, fd, A_IOV, 1, 0, A_OUT, A_OUT2), WASI_EAGAIN);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_fdstat_get(self, fd, A_BUF), 0);
	assert_int_equal(data[A_BUF], WASI_FILETYPE_SOCKET_STREAM);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_close(self, fd), 0);
	/* a connected (non-listening) socket cannot accept */
	assert_int_equal(Z_wasi_snapshot_preview1Z_sock_accept(self, 1, 0, A_OUT), WASI_EINVAL);
	wasi_ctx_free(w);
	caps_unref(cs);
	close(c);
	close(lst);
	close(sp[0]);
	close(sp[1]);
	unlink(sa.sun_path);
	free(data);
}

/* Preview 0's structures are smaller: a 56-byte filestat fits in the last
 * 56 bytes of memory, where preview 1's 64 do not; subscriptions are 56
 * bytes apart; a whence beyond preview 0's three is EINVAL. */
static void preview0_sizes(void **state)
{
	struct fx *fx = *state;
	uint32_t fd;
	host_write(fx, "f.txt", "12345");
	assert_int_equal(open_at(fx, 3, "f.txt", 0, RO, 0, &fd), 0);
	assert_int_equal(Z_wasi_unstableZ_fd_filestat_get(SELF, fd, MEMSZ - 56), 0);
	assert_int_equal(ld32(fx, MEMSZ - 36), 1);      /* nlink at 20 */
	assert_int_equal(ld64(fx, MEMSZ - 32), 5);      /* size at 24 */
	assert_int_equal(Z_wasi_unstableZ_fd_filestat_get(SELF, fd, MEMSZ - 55), WASI_EFAULT);
	assert_int_equal(Z_wasi_snapshot_preview1Z_fd_filestat_get(SELF, fd, MEMSZ - 56), WASI_EFAULT);
	put_str(fx, A_PATH, "f.txt");
	assert_int_equal(Z_wasi_unstableZ_path_filestat_get(SELF, 3, 0, A_PATH, 5, MEMSZ - 56), 0);
	assert_int_equal(ld64(fx, MEMSZ - 32), 5);
	assert_int_equal(Z_wasi_unstableZ_path_filestat_get(SELF, 3, 0, A_PATH, 5, MEMSZ - 55), WASI_EFAULT);
	/* two clock subscriptions ending at the end of memory, deadlines past */
	enum { OUT = 12288 };
	uint32_t in = MEMSZ - 112;
	memset(fx->data + in, 0, 112);
	for (uint32_t i = 0; i < 2; i++) {
		uint8_t *sub = fx->data + in + 56 * i;
		wasi_st64(sub, 100 + i);                         /* userdata */
		wasi_st64(sub + 16, 0xdeadbeefdeadbeefull);      /* identifier */
		wasi_st32(sub + 24, WASI_CLOCK_MONOTONIC);
		wasi_st64(sub + 32, 1);                          /* timeout */
		wasi_st16(sub + 48, 1);                          /* abstime */
	}
	assert_int_equal(Z_wasi_unstableZ_poll_oneoff(SELF, in, OUT, 2, A_OUT), 0);
	assert_int_equal(ld32(fx, A_OUT), 2);
	assert_int_equal(ld64(fx, OUT), 100);
	assert_int_equal(wasi_ld16(fx->data + OUT + 8), 0);
	assert_int_equal(ld64(fx, OUT + 32), 101);
	assert_int_equal(wasi_ld16(fx->data + OUT + 40), 0);
	assert_int_equal(Z_wasi_unstableZ_poll_oneoff(SELF, in + 1, OUT, 2, A_OUT), WASI_EFAULT);
	assert_int_equal(Z_wasi_unstableZ_poll_oneoff(SELF, in, OUT, 0x4924925u, A_OUT), WASI_EFAULT);
	/* whence: SET is 2, then CUR 0 and END 1; 3 and up are EINVAL */
	assert_int_equal(Z_wasi_unstableZ_fd_seek(SELF, fd, 2, 2, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 2);
	assert_int_equal(Z_wasi_unstableZ_fd_seek(SELF, fd, 1, 0, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 3);
	assert_int_equal(Z_wasi_unstableZ_fd_seek(SELF, fd, -1, 1, A_OUT), 0);
	assert_int_equal(ld64(fx, A_OUT), 4);
	assert_int_equal(Z_wasi_unstableZ_fd_seek(SELF, fd, 0, 3, A_OUT), WASI_EINVAL);
	assert_int_equal(Z_wasi_unstableZ_fd_seek(SELF, fd, 0, 0xffffffffu, A_OUT), WASI_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(caps_add_dir_opens_now),
		cmocka_unit_test(ctx_closed_stdio_and_preopen_numbers),
		cmocka_unit_test_setup_teardown(args_and_environ, setup, teardown),
		cmocka_unit_test_setup_teardown(stdio_flags_are_virtual, setup, teardown),
		cmocka_unit_test_setup_teardown(fd_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(clocks, setup, teardown),
		cmocka_unit_test_setup_teardown(write_read_stdio, setup, teardown),
		cmocka_unit_test_setup_teardown(iovec_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(write_to_closed_pipe_is_epipe, setup, teardown),
		cmocka_unit_test_setup_teardown(prestat, setup, teardown),
		cmocka_unit_test_setup_teardown(file_io_seek_tell_pread_pwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(filestat_set_size_and_times, setup, teardown),
		cmocka_unit_test_setup_teardown(fdstat_flags_and_rights, setup, teardown),
		cmocka_unit_test_setup_teardown(renumber, setup, teardown),
		cmocka_unit_test_setup_teardown(readdir_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(poll_clocks, setup, teardown),
		cmocka_unit_test_setup_teardown(poll_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(preview0_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(random_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(sched_raise, setup, teardown),
		cmocka_unit_test_setup_teardown(advise_allocate_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(sockets_on_files_and_bad_fds, setup, teardown),
		cmocka_unit_test(sockets_real),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
