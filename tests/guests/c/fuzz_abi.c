/*
 * fuzz_abi.c — the host ABI fuzzer (issue 7): a guest that calls every host
 * function, all 46 of wasi_snapshot_preview1 (and the six of wasi_unstable
 * with code of their own) and every wisp_* import, with
 * random and adversarial arguments, while a watcher checks that nothing
 * outside the fuzzing process is hurt.
 *
 *   wisp run --dir D fuzz_abi.wasm ROUNDS SEED CALLS  (stdin must be empty)
 *
 * Processes:
 *   main (the watcher)  spawns one fuzzer per round (seed SEED+round),
 *                       monitored; meanwhile it works: request/reply with the
 *                       echo process, checked value by value, and a pattern
 *                       in its own memory checked after every round (a host
 *                       writing into the wrong process's memory shows there).
 *                       It traps exits, drains whatever junk the fuzzer sends,
 *                       and kills a fuzzer that runs past its deadline
 *                       (counted as "hung": the test expects none).
 *   echo                answers every request with its payload; traps exits.
 *   fuzzer              CALLS random host calls, then returns. It may also
 *                       end early: trap (a bad pointer to a wisp call traps
 *                       by contract), proc_exit, kill itself, or die of an
 *                       exit signal; the watcher counts the reasons.
 *
 * What the fuzzer must not do is block forever, so every timeout it passes
 * is bounded, poll_oneoff always carries a short clock, and kill never
 * targets the watcher or echo (exit signals may: both trap exits). Writes the
 * host makes through a "valid" pointer land in the fuzzer's scratch area or
 * at the very end of its memory.
 *
 * A spawned process runs role_entry only if its argument carries the magic
 * and the watcher confirms, by request, that it spawned it: the fuzzer
 * spawning random table indices with random bytes cannot start fuzzers.
 *
 * Output (main, last lines): "rounds N/N: NORMAL a TRAP b CODE c KILLED d
 * NOPROC e, hung h", "work: ...", and "ALL ROUNDS DONE" when every check held.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

/* ---- the raw WASI imports (all 46; i32 and i64 arguments only) ---- */

#define WI(n) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#n)))
typedef int32_t I;
typedef int64_t L;
WI(args_get) I x_args_get(I, I);
WI(args_sizes_get) I x_args_sizes_get(I, I);
WI(environ_get) I x_environ_get(I, I);
WI(environ_sizes_get) I x_environ_sizes_get(I, I);
WI(clock_res_get) I x_clock_res_get(I, I);
WI(clock_time_get) I x_clock_time_get(I, L, I);
WI(fd_advise) I x_fd_advise(I, L, L, I);
WI(fd_allocate) I x_fd_allocate(I, L, L);
WI(fd_close) I x_fd_close(I);
WI(fd_datasync) I x_fd_datasync(I);
WI(fd_fdstat_get) I x_fd_fdstat_get(I, I);
WI(fd_fdstat_set_flags) I x_fd_fdstat_set_flags(I, I);
WI(fd_fdstat_set_rights) I x_fd_fdstat_set_rights(I, L, L);
WI(fd_filestat_get) I x_fd_filestat_get(I, I);
WI(fd_filestat_set_size) I x_fd_filestat_set_size(I, L);
WI(fd_filestat_set_times) I x_fd_filestat_set_times(I, L, L, I);
WI(fd_pread) I x_fd_pread(I, I, I, L, I);
WI(fd_prestat_get) I x_fd_prestat_get(I, I);
WI(fd_prestat_dir_name) I x_fd_prestat_dir_name(I, I, I);
WI(fd_pwrite) I x_fd_pwrite(I, I, I, L, I);
WI(fd_read) I x_fd_read(I, I, I, I);
WI(fd_readdir) I x_fd_readdir(I, I, I, L, I);
WI(fd_renumber) I x_fd_renumber(I, I);
WI(fd_seek) I x_fd_seek(I, L, I, I);
WI(fd_sync) I x_fd_sync(I);
WI(fd_tell) I x_fd_tell(I, I);
WI(fd_write) I x_fd_write(I, I, I, I);
WI(path_create_directory) I x_path_create_directory(I, I, I);
WI(path_filestat_get) I x_path_filestat_get(I, I, I, I, I);
WI(path_filestat_set_times) I x_path_filestat_set_times(I, I, I, I, L, L, I);
WI(path_link) I x_path_link(I, I, I, I, I, I, I);
WI(path_open) I x_path_open(I, I, I, I, I, L, L, I, I);
WI(path_readlink) I x_path_readlink(I, I, I, I, I, I);
WI(path_remove_directory) I x_path_remove_directory(I, I, I);
WI(path_rename) I x_path_rename(I, I, I, I, I, I);
WI(path_symlink) I x_path_symlink(I, I, I, I, I);
WI(path_unlink_file) I x_path_unlink_file(I, I, I);
WI(poll_oneoff) I x_poll_oneoff(I, I, I, I);
WI(proc_exit) __attribute__((noreturn)) void x_proc_exit(I);
WI(proc_raise) I x_proc_raise(I);
WI(sched_yield) I x_sched_yield(void);
WI(random_get) I x_random_get(I, I);
WI(sock_accept) I x_sock_accept(I, I, I);
WI(sock_recv) I x_sock_recv(I, I, I, I, I, I);
WI(sock_send) I x_sock_send(I, I, I, I, I);
WI(sock_shutdown) I x_sock_shutdown(I, I);

/* wasi_unstable (preview 0): the functions with layouts of their own (the
 * rest forward to the ones above). */
#define WI0(n) __attribute__((import_module("wasi_unstable"), import_name(#n)))
WI0(fd_fdstat_get) I x0_fd_fdstat_get(I, I);
WI0(fd_fdstat_set_rights) I x0_fd_fdstat_set_rights(I, L, L);
WI0(fd_filestat_get) I x0_fd_filestat_get(I, I);
WI0(fd_seek) I x0_fd_seek(I, L, I, I);
WI0(path_filestat_get) I x0_path_filestat_get(I, I, I, I, I);
WI0(poll_oneoff) I x0_poll_oneoff(I, I, I, I);

#define MAGIC 0x5749535046555a5aull   /* "WISPFUZZ" */
#define TAG_HELLO    0x48454c4cull
#define TAG_PROGRESS 0x50524f47ull
#define TAG_WORK     0x574f524bull
#define NWASI (46 + 6)
#define NWISP 44
#define NFUNCS (NWASI + NWISP)

enum role { ROLE_ECHO = 1, ROLE_FUZZER = 2 };

struct role_arg {
	uint64_t magic;
	uint32_t role, calls;
	uint64_t seed;
	wisp_pid_t watcher, echo, stale;
};

/* ---- random numbers and argument domains ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }
static int chance(uint32_t percent) { return below(100) < percent; }

#define SCRATCH (64 * 1024)
static unsigned char scratch[SCRATCH] __attribute__((aligned(16)));
/* Writes through valid pointers land in [scratch, scratch + SCRATCH - 4096);
 * arguments the fuzzer builds (iovecs, subscriptions, paths) live above. */
#define ARGS_AREA (SCRATCH - 4096)

static uint32_t mem_size(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }
static uint32_t sp(void) { return (uint32_t)(uintptr_t)scratch; }

/* A pointer: mostly inside the scratch area, else adversarial. `bad` is the
 * percentage of adversarial ones (wisp calls trap on those, by contract). */
static uint32_t ptr(uint32_t bad)
{
	if (!chance(bad))
		return sp() + below(ARGS_AREA - 256);
	switch (below(8)) {
	case 0: return mem_size() - below(16);          /* the last bytes */
	case 1: return mem_size();
	case 2: return mem_size() + below(1u << 16);
	case 3: return 0xffffffffu - below(8);          /* u32 wraparound */
	case 4: return 0;
	case 5: return 0x80000000u;
	case 6: return (uint32_t)rnd();
	default: return mem_size() - 4096 + below(4096);
	}
}

/* A length: mostly small, sometimes huge or wrapping. */
static uint32_t len(uint32_t bad)
{
	if (!chance(bad))
		return chance(20) ? 0 : below(chance(50) ? 64 : 256);
	switch (below(6)) {
	case 0: return 0xffffffffu;
	case 1: return 0x80000000u;
	case 2: return 0x7fffffffu;
	case 3: return (uint32_t)rnd();
	case 4: return mem_size();
	default: return 4096 + below(65536);
	}
}

static int64_t i64(void)
{
	static const int64_t v[] = { 0, 1, -1, INT64_MAX, INT64_MIN, 4096, 1ll << 40,
	                             1ll << 62, 1000000, -4096 };
	return chance(70) ? v[below(sizeof v / sizeof v[0])] : (int64_t)rnd();
}

static int32_t flags32(void)
{
	switch (below(5)) {
	case 0: return 0;
	case 1: return -1;
	case 2: return (int32_t)rnd();
	default: return (int32_t)below(64);
	}
}

static int32_t opened[16];
static uint32_t nopened;

static int32_t fd(void)
{
	if (nopened && chance(30))
		return opened[below(nopened)];
	switch (below(10)) {
	case 0: return -1;
	case 1: return (int32_t)rnd();
	case 2: return 1024;
	case 3: return 0x7fffffff;
	default: return (int32_t)below(8);   /* stdio, the preopen (3), a few more */
	}
}

/* A path in the argument area; returns its pointer, its length in *n. */
static uint32_t path_(uint32_t *n, int may_be_bad)
{
	static const char *const names[] = {
		"a", "b", "dir", "dir/x", "..", "../x", "/etc/passwd", ".", "",
		"a/../b", "link", "dir/../../x", "/proc/self/root", "lnk/x", "aaaaaaaaaaaaaaaaaaaaaa/b",
	};
	static uint32_t k;
	uint32_t at = ARGS_AREA + 2048 + (k++ % 4) * 512;
	char *p = (char *)scratch + at;
	uint32_t l;
	if (chance(85)) {
		const char *s = names[below(sizeof names / sizeof names[0])];
		l = (uint32_t)strlen(s);
		memcpy(p, s, l);
	} else {
		l = below(300);
		for (uint32_t i = 0; i < l; i++)
			p[i] = (char)rnd();
	}
	if (!may_be_bad)
		return *n = l, sp() + at;
	*n = chance(90) ? l : len(60);
	return chance(95) ? sp() + at : ptr(100);
}
#define path(n) path_(n, 1)

/* n iovecs in the argument area, each pointing at a valid or bad buffer. */
static uint32_t iovecs(uint32_t *n)
{
	static uint32_t k;
	uint32_t at = ARGS_AREA + (k++ % 2) * 512;
	*n = chance(80) ? below(5) : (chance(50) ? 0xffffffffu : below(1000));
	uint32_t fill = *n < 64 ? *n : 64;
	for (uint32_t i = 0; i < fill; i++) {
		uint32_t v[2] = { ptr(10), len(10) };
		memcpy(scratch + at + 8 * i, v, 8);
	}
	return chance(95) ? sp() + at : ptr(100);
}

/* poll_oneoff subscriptions; a clock of at most 1 ms is always among them.
 * Preview 0's (p0) are 56 bytes, a clock's fields 8 further (after an
 * identifier, random here). */
static uint32_t subscriptions(uint32_t *n, int p0)
{
	unsigned char *s = scratch + ARGS_AREA + 1024;
	uint32_t count = 1 + below(4), size = p0 ? 56 : 48;
	memset(s, 0, size * count);
	for (uint32_t i = 0; i < count; i++) {
		unsigned char *e = s + size * i;
		uint64_t ud = rnd();
		memcpy(e, &ud, 8);
		uint8_t tag = i == 0 ? 0 : (uint8_t)(chance(90) ? below(3) : rnd());
		e[8] = tag;
		if (tag == 0) {
			if (p0) {
				uint64_t identifier = rnd();
				memcpy(e + 16, &identifier, 8);
				e += 8;
			}
			uint32_t id = chance(90) ? below(4) : (uint32_t)rnd();
			uint64_t timeout = below(1000000);
			uint16_t fl = chance(20) ? 1 : 0;     /* absolute: 0 is long past */
			if (fl)
				timeout = 0;
			memcpy(e + 16, &id, 4);
			memcpy(e + 24, &timeout, 8);
			memcpy(e + 40, &fl, 2);
		} else {
			int32_t f = fd();
			memcpy(e + 16, &f, 4);
		}
	}
	*n = count;
	return sp() + ARGS_AREA + 1024;
}

/* ---- process ids, references, timers the fuzzer has seen ---- */

static struct role_arg cfg;
static wisp_pid_t kids[64];
static uint32_t nkids, nspawned;
static uint64_t refs[32], timers[32];
static uint32_t nrefs, ntimers;

static wisp_pid_t any_pid(int may_be_protected)
{
	switch (below(10)) {
	case 0: return 0;
	case 1: return rnd();
	case 2: return cfg.stale;
	case 3: return (rnd() & 0xffffffff00000000ull) | (wisp_self() & 0xffffffffu);
	case 4:
	case 5: if (nkids) return kids[below(nkids)]; return wisp_self() + 1;
	case 6: return chance(10) ? wisp_self() : wisp_self() ^ (1ull << 32);
	default:
		if (may_be_protected)
			return chance(50) ? cfg.watcher : cfg.echo;
		return 0x7ffffffffffffff1ull;
	}
}

static uint64_t any_ref(uint64_t *pool, uint32_t n)
{
	if (n && chance(50))
		return pool[below(n)];
	return chance(50) ? (rnd() | (1ull << 63)) : rnd();
}

static void keep(uint64_t *pool, uint32_t *n, uint32_t at)
{
	uint64_t v;
	memcpy(&v, scratch + (at - sp()), 8);
	pool[*n % 32] = v;
	if (*n < 32)
		(*n)++;
}

/* Children the fuzzer spawns: quick, sleepy, trapping, receiving. */
static void kid_quick(const void *a, uint32_t n) { (void)a; (void)n; }
static void kid_sleepy(const void *a, uint32_t n) { (void)a; (void)n; wisp_sleep(200000); }
static void kid_trap(const void *a, uint32_t n) { (void)a; (void)n; __builtin_trap(); }
static void kid_recv(const void *a, uint32_t n)
{
	(void)a; (void)n;
	char b[64];
	struct wisp_msg_info info;
	wisp_receive(NULL, 0, 2000000, b, sizeof b, &info);
}
static void role_entry(const void *arg, uint32_t n);

static uint32_t fn_index(void)
{
	static const wisp_fn fns[] = { kid_quick, kid_sleepy, kid_trap, kid_recv, role_entry };
	switch (below(8)) {
	case 0: return (uint32_t)rnd();
	case 1: return 0;
	case 2: return below(64);
	default: return (uint32_t)(uintptr_t)fns[below(5)];
	}
}

/* ---- one call ---- */

static uint32_t calls_by_fn[NFUNCS];

/* Keep the own mailbox short: the fuzzer sends itself messages too. */
static void drain_own_mailbox(void)
{
	static char buf[4096];
	struct wisp_msg_info info;
	for (int i = 0; i < 256; i++) {
		int32_t rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, sizeof buf, &info);
		if (rc == WISP_ETOOSMALL) {
			void *big = malloc(info.len);
			if (!big)
				return;
			rc = wisp_receive(NULL, 0, WISP_NOWAIT, big, info.len, &info);
			free(big);
		}
		if (rc != WISP_OK)
			return;
	}
}

static void wasi_call(uint32_t which)
{
	uint32_t n, m, p = 0, q;
	switch (which) {
	case 0: x_args_get((I)ptr(10), (I)ptr(10)); break;
	case 1: x_args_sizes_get((I)ptr(10), (I)ptr(10)); break;
	case 2: x_environ_get((I)ptr(10), (I)ptr(10)); break;
	case 3: x_environ_sizes_get((I)ptr(10), (I)ptr(10)); break;
	case 4: x_clock_res_get(flags32(), (I)ptr(10)); break;
	case 5: x_clock_time_get(flags32(), i64(), (I)ptr(10)); break;
	case 6: x_fd_advise(fd(), i64(), i64(), flags32()); break;
	case 7: {
		/* never allocate more than 1 MiB of real disk */
		int64_t lens[] = { 0, 1, 4096, 1 << 20, -1, INT64_MAX, 1ll << 62 };
		x_fd_allocate(fd(), chance(50) ? 0 : i64(), lens[below(7)]);
		break;
	}
	case 8: if (chance(30)) x_fd_close(fd()); break;
	case 9: x_fd_datasync(fd()); break;
	case 10: x_fd_fdstat_get(fd(), (I)ptr(10)); break;
	case 11: x_fd_fdstat_set_flags(fd(), flags32()); break;
	case 12: x_fd_fdstat_set_rights(fd(), i64(), i64()); break;
	case 13: x_fd_filestat_get(fd(), (I)ptr(10)); break;
	case 14: x_fd_filestat_set_size(fd(), chance(50) ? below(100000) : i64()); break;
	case 15: x_fd_filestat_set_times(fd(), i64(), i64(), flags32()); break;
	case 16: p = iovecs(&n); x_fd_pread(fd(), (I)p, (I)n, i64(), (I)ptr(10)); break;
	case 17: x_fd_prestat_get(fd(), (I)ptr(10)); break;
	case 18: x_fd_prestat_dir_name(fd(), (I)ptr(10), (I)len(10)); break;
	case 19: p = iovecs(&n); x_fd_pwrite(fd(), (I)p, (I)n, chance(50) ? below(100000) : i64(), (I)ptr(10)); break;
	case 20: p = iovecs(&n); x_fd_read(fd(), (I)p, (I)n, (I)ptr(10)); break;
	case 21: x_fd_readdir(fd(), (I)ptr(10), (I)len(20), i64(), (I)ptr(10)); break;
	case 22: if (chance(30)) x_fd_renumber(fd(), fd()); break;
	case 23: x_fd_seek(fd(), i64(), flags32(), (I)ptr(10)); break;
	case 24: x_fd_sync(fd()); break;
	case 25: x_fd_tell(fd(), (I)ptr(10)); break;
	case 26: p = iovecs(&n); x_fd_write(fd(), (I)p, (I)n, (I)ptr(10)); break;
	case 27: p = path(&n); x_path_create_directory(fd(), (I)p, (I)n); break;
	case 28: p = path(&n); x_path_filestat_get(fd(), flags32(), (I)p, (I)n, (I)ptr(10)); break;
	case 29: p = path(&n); x_path_filestat_set_times(fd(), flags32(), (I)p, (I)n, i64(), i64(), flags32()); break;
	case 30: p = path(&n); q = path(&m); x_path_link(fd(), flags32(), (I)p, (I)n, fd(), (I)q, (I)m); break;
	case 31: {
		p = path(&n);
		uint32_t out = ptr(10);
		int32_t rc = x_path_open(fd(), flags32(), (I)p, (I)n, chance(70) ? (I)below(16) : flags32(),
		                         i64(), i64(), chance(70) ? (I)below(32) : flags32(), (I)out);
		if (rc == 0 && out >= sp() && out + 4 <= sp() + SCRATCH) {
			int32_t f;
			memcpy(&f, scratch + (out - sp()), 4);
			opened[nopened % 16] = f;
			if (nopened < 16)
				nopened++;
		}
		break;
	}
	case 32: p = path(&n); x_path_readlink(fd(), (I)p, (I)n, (I)ptr(10), (I)len(10), (I)ptr(10)); break;
	case 33: p = path(&n); x_path_remove_directory(fd(), (I)p, (I)n); break;
	case 34: p = path(&n); q = path(&m); x_path_rename(fd(), (I)p, (I)n, fd(), (I)q, (I)m); break;
	case 35: p = path(&n); q = path(&m); x_path_symlink((I)p, (I)n, fd(), (I)q, (I)m); break;
	case 36: p = path(&n); x_path_unlink_file(fd(), (I)p, (I)n); break;
	case 37:
		if (chance(80)) {
			p = subscriptions(&n, 0);
			x_poll_oneoff((I)p, (I)ptr(10), (I)n, (I)ptr(10));
		} else {   /* bad arguments only: nothing that could wait */
			static const volatile uint32_t ns[] = { 0, 0xffffffffu, 0x80000000u, 1u << 26 };
			uint32_t k = ns[below(4)];
			if (k != 0 && k < 1u << 26)
				k = 0;   /* (the table overwritten: see bounded()) */
			x_poll_oneoff((I)ptr(100), (I)ptr(50), (I)k, (I)ptr(50));
		}
		break;
	case 38: if (chance(2)) x_proc_exit(chance(50) ? 0 : flags32()); break;
	case 39: x_proc_raise(flags32()); break;
	case 40: x_sched_yield(); break;
	case 41: x_random_get((I)ptr(10), (I)len(10)); break;
	case 42: x_sock_accept(fd(), flags32(), (I)ptr(10)); break;
	case 43: p = iovecs(&n); x_sock_recv(fd(), (I)p, (I)n, flags32(), (I)ptr(10), (I)ptr(10)); break;
	case 44: p = iovecs(&n); x_sock_send(fd(), (I)p, (I)n, flags32(), (I)ptr(10)); break;
	case 45: x_sock_shutdown(fd(), flags32()); break;
	case 46: x0_fd_fdstat_get(fd(), (I)ptr(10)); break;
	case 47: x0_fd_fdstat_set_rights(fd(), i64(), i64()); break;
	case 48: x0_fd_filestat_get(fd(), (I)ptr(10)); break;
	case 49: x0_fd_seek(fd(), i64(), flags32(), (I)ptr(10)); break;
	case 50: p = path(&n); x0_path_filestat_get(fd(), flags32(), (I)p, (I)n, (I)ptr(10)); break;
	case 51:
		if (chance(80)) {
			p = subscriptions(&n, 1);
			x0_poll_oneoff((I)p, (I)ptr(10), (I)n, (I)ptr(10));
		} else {
			static const volatile uint32_t ns[] = { 0, 0xffffffffu, 0x80000000u, 1u << 26 };
			uint32_t k = ns[below(4)];
			if (k != 0 && k < 1u << 26)
				k = 0;   /* (the table overwritten: see bounded()) */
			x0_poll_oneoff((I)ptr(100), (I)ptr(50), (I)k, (I)ptr(50));
		}
		break;
	}
}

/* At most `max`, and never forever, whatever t is. The fuzzer's own calls
 * write into its memory (random bytes, file contents, at address 0 with
 * large lengths), its constant tables included: clang keeps v[] below in
 * linear memory, and a round once waited for 4,928 days on a timeout read
 * from a table random_get had overwritten. The bound is in code, which no
 * write reaches; the tables it bounds are volatile, or clang, trusting
 * their contents, drops the bound. */
static int64_t bounded(int64_t t, int64_t max)
{
	return t < 0 || t > max ? max : t;
}

/* Timeouts a fuzzer may wait: never forever. */
static int64_t timeout(void)
{
	static const volatile int64_t v[] = { 0, 1, 1000, 100000, 1000000 };
	return bounded(v[below(5)], 1000000);
}

static uint64_t tag(void)
{
	return chance(70) ? below(16) : chance(50) ? (rnd() | (1ull << 63)) : rnd();
}

static void wisp_call(uint32_t which)
{
	/* Pointers and lengths of wisp calls are rarely bad (0.2%): a bad one
	 * traps the fuzzer by contract, which ends the round. */
	uint32_t bad = below(1000) < 2 ? 100 : 0;
	uint32_t out;
	int32_t rc;
	switch (which) {
	case 0: (void)wisp_abi_version(); break;
	case 1: (void)wisp_self(); break;
	case 2:
		if (nspawned >= 200)
			break;
		out = ptr(bad);
		rc = wisp_spawn_raw(fn_index(), (void *)(uintptr_t)ptr(bad), chance(90) ? below(64) : len(bad),
		                    chance(80) ? below(4) : (uint32_t)flags32(),
		                    (struct wisp_spawned *)(uintptr_t)out);
		nspawned++;
		if (rc == WISP_OK && out >= sp() && out + 16 <= sp() + SCRATCH)
			keep(kids, &nkids, out);
		break;
	case 3: wisp_spawn_arg((void *)(uintptr_t)ptr(bad), len(bad)); break;
	case 4: if (chance(20)) wisp_kill(any_pid(0)); break;
	case 5: wisp_exit_signal(any_pid(1), chance(50) ? 0 : flags32()); break;
	case 6: wisp_link(any_pid(1)); break;
	case 7: wisp_unlink(any_pid(1)); break;
	case 8:
		out = ptr(bad);
		if (wisp_monitor(any_pid(1), (uint64_t *)(uintptr_t)out) == WISP_OK && !bad)
			keep(refs, &nrefs, out);
		break;
	case 9: wisp_demonitor(any_ref(refs, nrefs)); break;
	case 10: wisp_trap_exit(chance(95) ? 1 : chance(50) ? 0 : flags32()); break;
	case 11: wisp_alive(any_pid(1)); break;
	case 12: wisp_yield(); break;
	case 13: wisp_send(any_pid(1), tag(), (void *)(uintptr_t)ptr(bad), len(bad)); break;
	case 14: {
		uint32_t ntags = chance(70) ? below(4) : chance(50) ? 5000 : (uint32_t)rnd();
		/* Wait forever only when a message is known to be there. */
		int64_t t = timeout();
		if (chance(5) && wisp_send(wisp_self(), 1, NULL, 0) == WISP_OK) {
			ntags = 0;
			t = WISP_INFINITY;
		}
		wisp_receive((uint64_t *)(uintptr_t)ptr(bad), ntags, t, (void *)(uintptr_t)ptr(bad),
		             len(bad), (struct wisp_msg_info *)(uintptr_t)ptr(bad));
		break;
	}
	case 15:
		wisp_request(any_pid(1), tag(), (void *)(uintptr_t)ptr(bad), len(bad), timeout(),
		             (void *)(uintptr_t)ptr(bad), len(bad),
		             (struct wisp_msg_info *)(uintptr_t)ptr(bad));
		break;
	case 16: {
		static const volatile int64_t v[] = { 0, -1, INT64_MIN, 1000, 100000 };
		int64_t t = v[below(5)];
		wisp_sleep(t <= 0 ? t : bounded(t, 100000));   /* (negative: at once) */
		break;
	}
	case 17: {
		static const int64_t d[] = { 0, -1, 1000, 1000000, 1000000000000000000ll, INT64_MAX };
		out = ptr(bad);
		rc = wisp_send_after(any_pid(1), tag(), (void *)(uintptr_t)ptr(bad), len(bad),
		                     d[below(6)], (uint64_t *)(uintptr_t)out);
		if (rc == WISP_OK && !bad)
			keep(timers, &ntimers, out);
		break;
	}
	case 18: wisp_cancel_timer(any_ref(timers, ntimers)); break;
	case 19: {
		uint32_t n;
		uint32_t p = path_(&n, 0);
		wisp_register((const char *)(uintptr_t)(bad ? ptr(100) : p), chance(90) || bad ? n : len(bad), any_pid(1));
		break;
	}
	case 20: {
		uint32_t n;
		uint32_t p = path_(&n, 0);
		wisp_unregister((const char *)(uintptr_t)(bad ? ptr(100) : p), chance(90) || bad ? n : len(bad));
		break;
	}
	case 21: {
		uint32_t n;
		uint32_t p = path_(&n, 0);
		wisp_whereis((const char *)(uintptr_t)(bad ? ptr(100) : p), chance(90) || bad ? n : len(bad),
		             (wisp_pid_t *)(uintptr_t)ptr(bad));
		break;
	}
	/* wisp_net: no network capability is granted, so calls that get past
	 * argument checking are denied; descriptors are any numbers. Timeouts
	 * are zero or tiny so nothing waits long. */
	case 22: {
		static const char *const addrs[] = { "127.0.0.1", "::1", "0.0.0.0", "bogus", "" };
		const char *a = addrs[below(5)];
		wisp_tcp_listen(bad ? (const char *)(uintptr_t)ptr(bad) : a, bad ? len(bad) : (uint32_t)strlen(a),
		                (uint32_t)rnd() % 70000, (uint32_t)rnd(), (int32_t *)(uintptr_t)ptr(bad));
		break;
	}
	case 23: wisp_tcp_accept(fd(), below(2) ? 0 : 1000, (int32_t *)(uintptr_t)ptr(bad)); break;
	case 24: wisp_tcp_connect(bad ? (const char *)(uintptr_t)ptr(bad) : "127.0.0.1", bad ? len(bad) : 9,
	                          (uint32_t)rnd() % 70000, 1000, (int32_t *)(uintptr_t)ptr(bad)); break;
	case 25: wisp_net_read(fd(), (void *)(uintptr_t)ptr(bad), len(bad), 0, (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 26: wisp_net_write(fd(), (void *)(uintptr_t)ptr(bad), len(bad), 0, (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 27: wisp_net_set_nodelay(fd(), (uint32_t)rnd()); break;
	case 28: wisp_net_local_addr(fd(), (char *)(uintptr_t)ptr(bad), len(bad),
	                             (uint32_t *)(uintptr_t)ptr(bad), (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 29: wisp_net_peer_addr(fd(), (char *)(uintptr_t)ptr(bad), len(bad),
	                            (uint32_t *)(uintptr_t)ptr(bad), (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 30: wisp_resolve(bad ? (const char *)(uintptr_t)ptr(bad) : "localhost", bad ? len(bad) : 9,
	                      (char *)(uintptr_t)ptr(bad), len(bad), (uint32_t *)(uintptr_t)ptr(bad),
	                      (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 31: wisp_udp_bind(bad ? (const char *)(uintptr_t)ptr(bad) : "127.0.0.1", bad ? len(bad) : 9,
	                       (uint32_t)rnd() % 70000, (int32_t *)(uintptr_t)ptr(bad)); break;
	case 32: wisp_udp_recv_from(fd(), (void *)(uintptr_t)ptr(bad), len(bad), 0,
	                            (uint32_t *)(uintptr_t)ptr(bad), (char *)(uintptr_t)ptr(bad), len(bad),
	                            (uint32_t *)(uintptr_t)ptr(bad), (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 33: wisp_udp_send_to(fd(), (void *)(uintptr_t)ptr(bad), len(bad),
	                          (const char *)(uintptr_t)ptr(bad), len(bad), (uint32_t)rnd(), 0,
	                          (uint32_t *)(uintptr_t)ptr(bad)); break;
	case 34: wisp_send_fd(any_pid(1), tag(), fd()); break;
	case 35: wisp_receive_fd((const uint64_t *)(uintptr_t)ptr(bad), below(4), fd(), 0,
	                         (void *)(uintptr_t)ptr(bad), len(bad),
	                         (struct wisp_msg_info *)(uintptr_t)ptr(bad)); break;
	/* wisp_caps: handles are small numbers (some real, most not). */
	case 36: {
		int32_t h = -1;
		if (wisp_caps_new(bad ? (int32_t *)(uintptr_t)ptr(bad) : &h) == WISP_OK && !bad && chance(50))
			wisp_caps_free(h);
		break;
	}
	case 37: wisp_caps_drop_dir((int32_t)below(20) - 2, (const char *)(uintptr_t)ptr(bad), len(bad)); break;
	case 38: {
		int32_t h = (int32_t)below(20) - 2;
		switch (below(6)) {
		case 0: wisp_caps_read_only(h, (const char *)(uintptr_t)ptr(bad), len(bad)); break;
		case 1: wisp_caps_clear_env(h); break;
		case 2: wisp_caps_set_stdio(h, (uint32_t)rnd() % 5, (uint32_t)rnd() % 5); break;
		case 3: wisp_caps_drop_network(h); break;
		case 4: wisp_caps_limit(h, (uint32_t)rnd() % 6, (uint64_t)rnd()); break;
		default: wisp_caps_deny(h, (uint32_t)rnd()); break;
		}
		break;
	}
	case 39: {
		struct wisp_spawned o;
		wisp_spawn_with((int32_t)below(20) - 2, fn_index(), (void *)(uintptr_t)ptr(bad),
		                len(bad) % 64, 0, bad ? (struct wisp_spawned *)(uintptr_t)ptr(bad) : &o);
		break;
	}
	/* Ends the round, as proc_exit does: rarely. */
	case 40:
		if (chance(2))
			wisp_panic((const char *)(uintptr_t)ptr(bad), len(bad), flags32());
		break;
	case 41: {
		/* A report of random fields whose texts and reason point
		 * anywhere the domains say (lengths mostly small). */
		struct wisp_sup_report r = {
			.event = chance(80) ? below(6) : flags32(), .max_restarts = flags32(),
			.child = any_pid(1), .id = ptr(bad), .id_len = chance(90) ? below(300) : len(bad),
			.reason = ptr(bad), .reason_len = chance(90) ? below(300) : len(bad),
			.error = ptr(bad), .error_len = chance(90) ? below(600) : len(bad),
			.period_ms = flags32(), .reserved = chance(90) ? 0 : flags32(),
		};
		wisp_supervisor_report(bad ? (struct wisp_sup_report *)(uintptr_t)ptr(bad) : &r);
		break;
	}
	/* wisp_tls: options whose strings point and reach anywhere, paths the
	 * fuzzer's files and escapes, on any fd (no network: none is a TCP
	 * stream, unless a socket came another way); no time to wait. */
	case 42: {
		uint32_t n[3];
		uint32_t p[3] = { path_(&n[0], 0), path_(&n[1], 0), path_(&n[2], 0) };
		struct wisp_tls_options o = {
			.flags = chance(80) ? below(2) : (uint32_t)flags32(),
			.server_name = (const char *)(uintptr_t)(chance(80) ? p[0] : ptr(bad)),
			.server_name_len = chance(80) ? n[0] : len(bad),
			.alpn = (const char *)(uintptr_t)ptr(bad), .alpn_len = len(bad),
			.ca_file = (const char *)(uintptr_t)p[1], .ca_file_len = chance(90) ? n[1] : len(bad),
			.cert_file = (const char *)(uintptr_t)p[1], .cert_file_len = n[1],
			.key_file = (const char *)(uintptr_t)(chance(90) ? p[2] : ptr(bad)),
			.key_file_len = chance(90) ? n[2] : len(bad),
		};
		uint32_t ol = chance(90) ? WISP_TLS_OPTIONS_SIZE : len(bad);
		const struct wisp_tls_options *op = bad ? (const void *)(uintptr_t)ptr(bad) : &o;
		if (below(2))
			wisp_tls_connect(fd(), op, ol, chance(50) ? 0 : 1000);
		else
			wisp_tls_accept(fd(), op, ol, chance(50) ? 0 : 1000);
		break;
	}
	case 43:
		if (below(2))
			wisp_tls_alpn(fd(), (char *)(uintptr_t)ptr(bad), len(bad), (uint32_t *)(uintptr_t)ptr(bad));
		else
			wisp_tls_last_error((char *)(uintptr_t)ptr(bad), len(bad), (uint32_t *)(uintptr_t)ptr(bad));
		break;
	}
}

/* The fuzzer's stdout and stderr go to files in the preopen (fd 3), so
 * that the bytes it writes never mix with the watcher's report. */
static void redirect_stdio(void)
{
	static const char *const names[] = { "stdout.txt", "stderr.txt" };
	for (int i = 0; i < 2; i++) {
		int32_t f = -1;
		memcpy(scratch + ARGS_AREA + 3072, names[i], 10);
		if (x_path_open(3, 0, (I)(sp() + ARGS_AREA + 3072), 10, 1 | 8, -1, -1, 0,
		                (I)(uintptr_t)&f) != 0 || x_fd_renumber(f, 1 + i) != 0) {
			x_fd_close(1 + i);   /* no preopen: drop stdio instead */
		}
	}
}

static void fuzz(void)
{
	rng = cfg.seed * 0x9e3779b97f4a7c15ull + 1;
	wisp_trap_exit(1);
	redirect_stdio();
	for (uint32_t i = 0; i < cfg.calls; i++) {
		uint32_t which = below(NFUNCS);
		calls_by_fn[which]++;
		if (which < NWASI)
			wasi_call(which);
		else
			wisp_call(which - NWASI);
		if (i % 64 == 63) {
			drain_own_mailbox();
			uint32_t done = i + 1;
			wisp_send(cfg.watcher, TAG_PROGRESS, &done, sizeof done);
		}
	}
	uint32_t done = cfg.calls;
	wisp_send(cfg.watcher, TAG_PROGRESS, &done, sizeof done);
}

/* ---- echo ---- */

static void echo(void)
{
	static char buf[1 << 16];
	struct wisp_msg_info info;
	wisp_trap_exit(1);
	for (;;) {
		int32_t rc = wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info);
		if (rc == WISP_ETOOSMALL) {
			void *big = malloc(info.len);
			if (big)
				wisp_receive(NULL, 0, WISP_NOWAIT, big, info.len, &info);
			free(big);
			continue;
		}
		if (rc == WISP_OK && info.kind == WISP_MSG_DATA && info.ref != 0)
			wisp_send(info.from, info.ref, buf, info.len);
	}
}

/* Entry of the echo and the fuzzers: only for processes the watcher made. */
static void role_entry(const void *arg, uint32_t n)
{
	if (n != sizeof cfg)
		return;
	memcpy(&cfg, arg, sizeof cfg);
	if (cfg.magic != MAGIC)
		return;
	uint8_t yes = 0;
	struct wisp_msg_info info;
	if (wisp_request(cfg.watcher, TAG_HELLO, NULL, 0, 10000000000ll, &yes, 1, &info) != WISP_OK || !yes)
		return;
	if (cfg.role == ROLE_ECHO)
		echo();
	else if (cfg.role == ROLE_FUZZER)
		fuzz();
}

/* ---- the watcher ---- */

static unsigned char pattern[8192];
static unsigned char inbox[1 << 20];

struct watch {
	wisp_pid_t echo, fuzzer;
	uint64_t mon;
	uint32_t progress, reasons[5], other_reason, hung;
	char last[120];                 /* how the last fuzzer ended */
	uint64_t work_ok, work_bad, junk, exits, hellos_refused;
};

static void fill_pattern(uint64_t seed)
{
	uint64_t s = rng;
	rng = seed | 1;
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)rnd();
	rng = s;
}

static int pattern_ok(uint64_t seed)
{
	uint64_t s = rng;
	rng = seed | 1;
	int ok = 1;
	for (size_t i = 0; i < sizeof pattern; i++)
		ok &= pattern[i] == (unsigned char)rnd();
	rng = s;
	return ok;
}

/* One message from the mailbox, waiting up to t: 2 for the fuzzer's DOWN,
 * 1 for another message, 0 for none. */
static int handle_one(struct watch *w, int64_t t)
{
	struct wisp_msg_info info;
	void *buf = inbox;
	int32_t rc = wisp_receive(NULL, 0, t, inbox, sizeof inbox, &info);
	if (rc == WISP_ETOOSMALL) {
		buf = malloc(info.len);
		if (!buf) {
			printf("FAIL: cannot allocate %u bytes for a message\n", info.len);
			exit(1);
		}
		rc = wisp_receive(NULL, 0, WISP_NOWAIT, buf, info.len, &info);
	}
	int down = rc == WISP_OK;
	if (rc == WISP_OK) {
		if (info.kind == WISP_MSG_DOWN && info.tag == w->mon && info.from == w->fuzzer) {
			struct wisp_exit_reason r;
			memcpy(&r, buf, sizeof r);
			uint32_t tl = info.len - 8 < sizeof w->last - 1 ? info.len - 8 : sizeof w->last - 1;
			snprintf(w->last, sizeof w->last, "kind %u code %d %.*s", r.kind, r.code,
			         (int)tl, (char *)buf + 8);
			/* A panic's text is the fuzzer's random bytes: printable
			 * ASCII only on the watcher's report. */
			for (char *c = w->last; *c; c++)
				if (*c < 0x20 || *c > 0x7e)
					*c = '?';
			if (r.kind < 5)
				w->reasons[r.kind]++;
			else
				w->other_reason++;
			down = 2;
		} else if (info.kind == WISP_MSG_DATA && info.tag == TAG_HELLO && info.ref) {
			uint8_t yes = info.from == w->fuzzer || info.from == w->echo;
			w->hellos_refused += !yes;
			wisp_send(info.from, info.ref, &yes, 1);
		} else if (info.kind == WISP_MSG_DATA && info.tag == TAG_PROGRESS &&
		           info.from == w->fuzzer && info.len == 4) {
			memcpy(&w->progress, buf, 4);
		} else if (info.kind == WISP_MSG_EXIT) {
			w->exits++;
		} else {
			w->junk++;
		}
	} else if (rc != WISP_ETIMEDOUT) {
		printf("FAIL: watcher receive: %d\n", rc);
		exit(1);
	}
	if (buf != inbox)
		free(buf);
	return down;
}

/* Useful work: a request to echo whose reply must be exactly the value. */
static void work(struct watch *w, uint64_t i)
{
	uint64_t v[4] = { i, ~i, i * 0x9e3779b97f4a7c15ull, TAG_WORK }, back[4];
	struct wisp_msg_info info;
	int32_t rc = wisp_request(w->echo, TAG_WORK, v, sizeof v, 10000000000ll, back, sizeof back, &info);
	if (rc == WISP_OK && info.len == sizeof v && memcmp(v, back, sizeof v) == 0)
		w->work_ok++;
	else {
		w->work_bad++;
		printf("work %llu: request rc %d len %u\n", (unsigned long long)i, rc, info.len);
		if (w->work_bad > 10) {
			printf("FAIL: echo does not answer\n");
			exit(1);
		}
	}
}

static wisp_pid_t spawn_role(struct watch *w, uint32_t role, uint64_t seed, uint32_t calls,
                             wisp_pid_t stale, uint64_t *mon)
{
	struct role_arg a = { MAGIC, role, calls, seed, wisp_self(), w->echo, stale };
	struct wisp_spawned out;
	int32_t rc = wisp_spawn_raw((uint32_t)(uintptr_t)role_entry, &a, sizeof a,
	                            mon ? WISP_SPAWN_MONITOR : 0, &out);
	if (rc != WISP_OK) {
		printf("FAIL: spawn role %u: %d\n", role, rc);
		exit(1);
	}
	if (mon)
		*mon = out.monitor;
	return out.pid;
}

int main(int argc, char **argv)
{
	uint32_t rounds = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 5;
	uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
	uint32_t calls = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 2000;
	double deadline_s = argc > 4 ? strtod(argv[4], NULL) : 20.0;
	printf("abi fuzz: seed %llu, %u rounds of %u calls\n", (unsigned long long)seed, rounds, calls);
	fflush(stdout);

	struct watch w;
	memset(&w, 0, sizeof w);
	wisp_trap_exit(1);
	fill_pattern(seed);
	w.echo = spawn_role(&w, ROLE_ECHO, 0, 0, 0, NULL);
	/* Answer echo's hello before anything else: the first work request
	 * would otherwise wait for echo while echo waits for us. */
	for (;;) {
		uint64_t hello = TAG_HELLO;
		struct wisp_msg_info info;
		if (wisp_receive(&hello, 1, WISP_INFINITY, inbox, sizeof inbox, &info) != WISP_OK)
			continue;
		uint8_t yes = info.from == w.echo;
		if (info.ref)
			wisp_send(info.from, info.ref, &yes, 1);
		if (yes)
			break;
	}
	uint64_t i = 0;
	wisp_pid_t stale = 0;
	uint32_t done_rounds = 0, full_rounds = 0;
	for (uint32_t r = 0; r < rounds; r++) {
		w.progress = 0;
		w.fuzzer = spawn_role(&w, ROLE_FUZZER, seed + r, calls, stale, &w.mon);
		uint64_t start_work = w.work_ok;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			/* a batch of messages, then a unit of work */
			int got = 1, down = 0;
			for (int k = 0; k < 32 && got && !down; k++) {
				got = handle_one(&w, k == 0 ? 100000 : WISP_NOWAIT);
				down = got == 2;
			}
			if (down)
				break;
			work(&w, i++);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 > deadline_s) {
				printf("round %u (seed %llu): fuzzer hung after %u calls, killed\n", r,
				       (unsigned long long)(seed + r), w.progress);
				w.hung++;
				wisp_kill(w.fuzzer);
				t0 = t1;
			}
		}
		full_rounds += w.progress == calls;
		done_rounds++;
		stale = w.fuzzer;
		if (!pattern_ok(seed)) {
			printf("FAIL: round %u: the watcher's memory changed\n", r);
			exit(1);
		}
		printf("round %u: seed %llu, %u calls, work %llu, ended: %s\n", r,
		       (unsigned long long)(seed + r), w.progress,
		       (unsigned long long)(w.work_ok - start_work), w.last);
		fflush(stdout);
	}
	/* Drain what is left, then a last check of echo. */
	while (handle_one(&w, WISP_NOWAIT) != 0) {
	}
	for (int k = 0; k < 100; k++)
		work(&w, i++);
	printf("rounds %u/%u: NORMAL %u TRAP %u CODE %u KILLED %u NOPROC %u other %u, hung %u, "
	       "full %u\n", done_rounds, rounds, w.reasons[0], w.reasons[2], w.reasons[1],
	       w.reasons[3], w.reasons[4], w.other_reason, w.hung, full_rounds);
	printf("work: %llu ok, %llu bad; junk %llu, exits %llu, refused hellos %llu\n",
	       (unsigned long long)w.work_ok, (unsigned long long)w.work_bad,
	       (unsigned long long)w.junk, (unsigned long long)w.exits,
	       (unsigned long long)w.hellos_refused);
	if (done_rounds == rounds && w.work_bad == 0 && w.hung == 0 && pattern_ok(seed) &&
	    wisp_alive(w.echo))
		printf("ALL ROUNDS DONE\n");
	return 0;
}
