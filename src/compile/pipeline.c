/*
 * pipeline.c — validate → translate (codegen.c) → C compiler → cache.
 *
 * Cache: <dir>/v2/<key>.<tier>.so where key = XXH3-128 over everything that
 * determines the machine code: the wasm bytes, wisp's version, module ABI
 * and code generator version, the prelude text, the tier, the identity
 * (path, size, mtime) of wasm2c and of the C compiler, the optimizing
 * flags (ccrun_opt_flags) and a forced unit count. A file in the cache
 * is complete by construction: it is compiled under <dir>/tmp/, sealed with
 * an integrity trailer (cache.c), flushed to disk and renamed into place, so
 * concurrent runs either see the whole file or none. A per-(key, tier) lock
 * file (flock) makes concurrent runs of the same module compile it once.
 * Nothing is loaded from the cache unless cache.c trusts it: the directory
 * is this user's and writable by no one else (else a private temporary
 * cache is used, with a warning), and the file is verified through an open
 * descriptor, which is then what gets loaded; an entry that fails is
 * compiled again (with a warning). Hashing the cache key needs no
 * cryptographic strength: the MAC is what protects the files.
 *
 * Tiers: TIER_FAST compiles with tcc (≈50 ms for a 100 KB module, code
 * several times slower); TIER_OPT with gcc -O2 (seconds, near-native code;
 * a large module cut into units compiled in parallel: split.c, ccrun.c).
 * The optimizing flags keep line tables and inlining records (-g1), the
 * source order of functions, and distinct functions distinct (no
 * identical-code folding), so that a trap can name its wasm function
 * (src/engine/symbolize.c) without costing frame pointers or inlining, and
 * make gcc report each function's stack use (-fstack-usage, stackcheck.c).
 *
 * Limits (limits.c): a module is checked against the compile limits (size,
 * functions, data) and its code against what wasm2c can translate
 * (wasm_code.c) before anything runs; every tool runs under CPU and memory
 * limits, in its own process group, and dies with wisp (util_run).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "cache.h"
#include "ccrun.h"
#include "codegen.h"
#include "pipeline.h"
#include "split.h"
#include "stackcheck.h"
#include "../engine/engine.h"
#include "../common/util.h"
#include "../engine/vmctx.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define WISP_ABI_STR STR(WISP_MODULE_ABI)
/* Bump when the generated code changes for the same wasm, prelude and
 * tools (a new rewrite in codegen.c): it is part of the cache key. */
#define CODEGEN_VERSION 6   /* 6: split units (5: the local memory record) */
#define CACHE_SUBDIR "v2"

static const char *tier_name(enum tier t)
{
	return t == TIER_OPT ? "opt" : "fast";
}

/* Create dir if needed; it must then be a directory this user trusts. */
static int dir_usable(const char *dir, bool follow, char *why, size_t whylen)
{
	int rc = util_mkdir_p(dir);
	if (rc != 0) {
		snprintf(why, whylen, "%s", strerror(-rc));
		return rc;
	}
	if ((rc = cache_dir_trusted(dir, follow, why, whylen)) != 0)
		return rc;
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* The cache directory and its subdirectories, checked; why says what is
 * wrong with the first that is not usable. */
static int cache_usable(const char *dir, char *why, size_t whylen)
{
	char sub[PATH_MAX + 8];
	if (dir[0] == '\0') {
		snprintf(why, whylen, "HOME is not set");
		return -ENOENT;
	}
	if (strlen(dir) > PATH_MAX - 256) {
		snprintf(why, whylen, "%s", strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	int rc = dir_usable(dir, true, why, whylen);
	if (rc == 0) {
		snprintf(sub, sizeof(sub), "%s/" CACHE_SUBDIR, dir);
		rc = dir_usable(sub, false, why, whylen);
	}
	if (rc == 0) {
		snprintf(sub, sizeof(sub), "%s/tmp", dir);
		rc = dir_usable(sub, false, why, whylen);
	}
	return rc;
}

int pipeline_open(struct pipeline *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	limits_default(&p->limits);
	const char *env = getenv("WISP_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (env && *env)
		snprintf(p->cache_dir, sizeof(p->cache_dir), "%s", env);
	else if (xdg && *xdg == '/')
		snprintf(p->cache_dir, sizeof(p->cache_dir), "%s/wisp", xdg);
	else if (home && *home)
		snprintf(p->cache_dir, sizeof(p->cache_dir), "%s/.cache/wisp", home);
	else
		p->cache_dir[0] = '\0';

	char why[256], sub[PATH_MAX + 8];
	int rc = cache_usable(p->cache_dir, why, sizeof(why));
	if (rc == 0)
		rc = cache_load_key(p->cache_dir, p->key, why, sizeof(why));
	if (rc != 0) {
		const char *tmp = getenv("TMPDIR");
		char tmpl[PATH_MAX];
		snprintf(tmpl, sizeof(tmpl), "%s/wisp-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL) {
			snprintf(err, errlen, "no usable cache directory: %s: %s; %s: %s",
			         p->cache_dir[0] ? p->cache_dir : "(none)", why, tmpl,
			         strerror(errno));
			return -errno;
		}
		fprintf(stderr, "wisp: warning: cache directory %s is not usable (%s); "
		        "compiled code will not be kept after this run (set WISP_CACHE_DIR)\n",
		        p->cache_dir[0] ? p->cache_dir : "(none)", why);
		snprintf(p->cache_dir, sizeof(p->cache_dir), "%s", tmpl);
		p->cache_is_temp = true;
		snprintf(sub, sizeof(sub), "%s/" CACHE_SUBDIR, p->cache_dir);
		util_mkdir_p(sub);
		snprintf(sub, sizeof(sub), "%s/tmp", p->cache_dir);
		util_mkdir_p(sub);
		if ((rc = cache_load_key(p->cache_dir, p->key, err, errlen)) != 0) {
			util_rm_rf(p->cache_dir);
			return rc;
		}
	}
	const char *cc = getenv("WISP_CC");
	const char *fcc = getenv("WISP_FAST_CC");
	snprintf(p->opt_cc, sizeof(p->opt_cc), "%s", cc && *cc ? cc : "gcc");
	snprintf(p->fast_cc, sizeof(p->fast_cc), "%s", fcc && *fcc ? fcc : "tcc");
	return 0;
}

void pipeline_close(struct pipeline *p)
{
	if (p->cache_is_temp)
		util_rm_rf(p->cache_dir);
	p->cache_is_temp = false;
}

static int wasm_file_check(struct wasm_file *wf, char *err, size_t errlen);

int wasm_file_load(struct wasm_file *wf, const char *path, char *err, size_t errlen)
{
	memset(wf, 0, sizeof(*wf));
	snprintf(wf->path, sizeof(wf->path), "%s", path);
	int rc = util_read_file(path, &wf->bytes, &wf->len);
	if (rc != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	return wasm_file_check(wf, err, errlen);
}

int wasm_file_from_bytes(struct wasm_file *wf, const char *name, const void *bytes, size_t len,
                         char *err, size_t errlen)
{
	memset(wf, 0, sizeof(*wf));
	snprintf(wf->path, sizeof(wf->path), "%s", name);
	if ((wf->bytes = malloc(len ? len : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(wf->bytes, bytes, len);
	wf->len = len;
	return wasm_file_check(wf, err, errlen);
}

/* Parse and check wf's bytes; fill its key. (Frees them on failure.) */
static int wasm_file_check(struct wasm_file *wf, char *err, size_t errlen)
{
	const char *path = wf->path;
	int rc;
	char msg[512];
	rc = wasm_read(wf->bytes, wf->len, &wf->info, msg, sizeof(msg));
	if (rc == 0)
		rc = wasm_check_wisp(&wf->info, msg, sizeof(msg));
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		wasm_file_free(wf);
		return rc < 0 ? rc : -EINVAL;
	}
	XXH128_hash_t h = XXH3_128bits(wf->bytes, wf->len);
	snprintf(wf->key, sizeof(wf->key), "%016llx%016llx",
	         (unsigned long long)h.high64, (unsigned long long)h.low64);
	return 0;
}

void wasm_file_free(struct wasm_file *wf)
{
	if (wf->bytes)
		wasm_info_free(&wf->info);
	free(wf->bytes);
	wf->bytes = NULL;
}

/* Identity of a program found in PATH: its resolved path, size and mtime. */
static void tool_identity(XXH3_state_t *st, const char *name)
{
	char buf[PATH_MAX];
	const char *path = getenv("PATH");
	struct stat sb;
	if (strchr(name, '/') == NULL && path != NULL) {
		const char *p = path;
		while (*p) {
			const char *colon = strchr(p, ':');
			size_t n = colon ? (size_t)(colon - p) : strlen(p);
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name);
			if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode))
				goto found;
			p += n + (colon != NULL);
		}
		XXH3_128bits_update(st, name, strlen(name));
		return;
	}
	snprintf(buf, sizeof(buf), "%s", name);
	if (stat(buf, &sb) != 0) {
		XXH3_128bits_update(st, name, strlen(name));
		return;
	}
found:;
	char real[PATH_MAX];
	if (realpath(buf, real) != NULL && stat(real, &sb) == 0)
		snprintf(buf, sizeof(buf), "%s", real);
	char ident[PATH_MAX + 64];
	int n = snprintf(ident, sizeof(ident), "%s|%lld|%lld", buf,
	                 (long long)sb.st_size, (long long)sb.st_mtime);
	XXH3_128bits_update(st, ident, (size_t)n);
}

/* How many units to cut the C into (codegen_translate): 1 for the fast
 * tier (tcc takes ~25 ms for a whole module); for the optimizing tier
 * WISP_COMPILE_UNITS if set (tests, measurements), else 0: by size. */
static uint32_t compile_units(enum tier t)
{
	if (t != TIER_OPT)
		return 1;
	const char *env = getenv("WISP_COMPILE_UNITS");
	char *end;
	unsigned long n = env && *env ? strtoul(env, &end, 10) : 0;
	return env && *env && *end == '\0' && n <= SPLIT_MAX_UNITS ? (uint32_t)n : 0;
}

static void cache_path(const struct pipeline *p, const struct wasm_file *wf,
                       enum tier t, const char *suffix, char *out, size_t outlen)
{
	XXH3_state_t *st = XXH3_createState();
	if (st == NULL) {
		/* No memory for the hash: a path that can never be in the cache,
		 * so the module is compiled (and that fails cleanly if memory
		 * stays short). */
		snprintf(out, outlen, "%s/" CACHE_SUBDIR "/unhashed-%ld.%s%s", p->cache_dir, (long)getpid(),
		         tier_name(t), suffix);
		return;
	}
	XXH3_128bits_reset(st);
	char head[128];
	int n = snprintf(head, sizeof(head), "wisp %s abi %d codegen %d tier %s|", WISP_VERSION,
	                 WISP_MODULE_ABI, CODEGEN_VERSION, tier_name(t));
	XXH3_128bits_update(st, head, (size_t)n);
	const char *prelude = codegen_prelude();
	XXH3_128bits_update(st, prelude, strlen(prelude));
	tool_identity(st, "wasm2c");
	tool_identity(st, t == TIER_OPT ? p->opt_cc : p->fast_cc);
	if (t == TIER_OPT) {
		for (const char *const *f = ccrun_opt_flags; *f; f++)
			XXH3_128bits_update(st, *f, strlen(*f) + 1);
	}
	/* A forced split (WISP_COMPILE_UNITS) is other code than the usual. */
	n = snprintf(head, sizeof(head), "|units %u|", compile_units(t));
	XXH3_128bits_update(st, head, (size_t)n);
	XXH3_128bits_update(st, wf->bytes, wf->len);
	XXH128_hash_t h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	snprintf(out, outlen, "%s/" CACHE_SUBDIR "/%016llx%016llx.%s%s", p->cache_dir,
	         (unsigned long long)h.high64, (unsigned long long)h.low64,
	         tier_name(t), suffix);
}

void pipeline_so_close(struct pipeline_so *so)
{
	if (so->fd >= 0)
		close(so->fd);
	so->fd = -1;
}

/* Open a cached entry if it is there and trusted. A file that is there but
 * not trusted is reported if `warn` (it will be compiled again, replacing
 * it). */
static bool open_cached(const struct pipeline *p, struct pipeline_so *so, bool warn)
{
	char why[256];
	const char *entry = strrchr(so->path, '/') + 1;
	int fd = cache_open_verified(so->path, entry, p->key, why, sizeof(why));
	if (fd >= 0) {
		so->fd = fd;
		return true;
	}
	if (fd != -ENOENT && warn)
		fprintf(stderr, "wisp: warning: not loading the cached module %s: %s; "
		        "compiling it again\n", so->path, why);
	return false;
}

bool pipeline_lookup(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, struct pipeline_so *so, bool warn)
{
	so->fd = -1;
	cache_path(p, wf, t, ".so", so->path, sizeof(so->path));
	return open_cached(p, so, warn);
}

bool pipeline_overlaps_cache(const struct pipeline *p, const char *dir)
{
	return cache_path_within(p->cache_dir, dir) || cache_path_within(dir, p->cache_dir);
}

/* Never cache what cannot load, nor a module with a function whose frame
 * could overrun a fiber's stack (stackcheck.c): a compiler that "succeeds"
 * with a broken file would otherwise poison every later run. */
static int check_compiled(const struct pipeline *p, enum tier t, const struct wasm_file *wf,
                          const char *workdir, const char *so, char *err, size_t errlen)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	const struct wisp_module_abi *abi = h ? dlsym(h, "wisp_module_v" WISP_ABI_STR) : NULL;
	if (abi == NULL) {
		snprintf(err, errlen, "the C compiler '%s' produced an unusable module: %s",
		         t == TIER_OPT ? p->opt_cc : p->fast_cc,
		         h ? "no wisp module symbol" : dlerror());
		if (h != NULL)
			dlclose(h);
		return -EIO;
	}
	int rc = stackcheck_module(h, abi, &wf->info, workdir, ENGINE_MAX_FRAME, err, errlen);
	dlclose(h);
	return rc;
}

/* Seal the new shared object and publish it: trailer, fsync, rename, then
 * fsync the directory so the rename survives a crash too. */
static int store(const struct pipeline *p, const char *tmp_so, const char *so_path,
                 char *err, size_t errlen)
{
	const char *entry = strrchr(so_path, '/') + 1;
	int rc = cache_seal(tmp_so, entry, p->key, err, errlen);
	if (rc != 0)
		return rc;
	if (rename(tmp_so, so_path) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot store %s: %s", so_path, strerror(errno));
		return rc;
	}
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/" CACHE_SUBDIR, p->cache_dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* What must hold before any tool sees the module. */
static int check_before_compile(const struct pipeline *p, const struct wasm_file *wf,
                                char *err, size_t errlen)
{
	int rc = limits_check_module(&p->limits, wf->len, &wf->info, err, errlen);
	if (rc == 0)
		rc = wasm_check_code(wf->bytes, wf->len, &wf->info, WASM_LIMIT_NESTING, err, errlen);
	return rc;
}

int pipeline_compile(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, struct pipeline_so *so, char *err, size_t errlen)
{
	if (pipeline_lookup(p, wf, t, so, true))
		return 0;
	int rc = check_before_compile(p, wf, err, errlen);
	if (rc != 0)
		return rc;
	char lock_path[PATH_MAX];
	cache_path(p, wf, t, ".lock", lock_path, sizeof(lock_path));
	int lock = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock >= 0 && flock(lock, LOCK_EX) == 0 && open_cached(p, so, false)) {
		close(lock);         /* another run compiled it while we waited */
		return 0;
	}

	char workdir[PATH_MAX + 32];
	snprintf(workdir, sizeof(workdir), "%s/tmp/build-XXXXXX", p->cache_dir);
	if (mkdtemp(workdir) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a build directory in %s/tmp: %s",
		         p->cache_dir, strerror(errno));
		goto out;
	}
	char tmp_so[PATH_MAX + 16];
	struct codegen_files files;
	rc = codegen_translate(wf->bytes, wf->len, &wf->info, &p->limits.tool,
	                       workdir, compile_units(t), &files, err, errlen);
	if (rc == 0) {
		snprintf(tmp_so, sizeof(tmp_so), "%s/module.so", workdir);
		char display[PATH_MAX];
		snprintf(display, sizeof(display), "%s", wf->path);
		struct ccrun c = {
			.cc = t == TIER_OPT ? p->opt_cc : p->fast_cc, .opt = t == TIER_OPT,
			.lim = &p->limits.tool, .display = basename(display),
			.jobs = ccrun_default_jobs(p->limits.tool.nice > 0),
			.progress = p->progress && t == TIER_OPT && isatty(2),
		};
		rc = ccrun_build(&c, workdir, &files, tmp_so, err, errlen);
	}
	if (rc == 0)
		rc = check_compiled(p, t, wf, workdir, tmp_so, err, errlen);
	if (rc == 0)
		rc = store(p, tmp_so, so->path, err, errlen);
	if (getenv("WISP_KEEP_BUILD") == NULL)
		util_rm_rf(workdir);
	if (rc == 0 && !open_cached(p, so, true)) {
		snprintf(err, errlen, "the module just compiled into %s cannot be loaded back",
		         so->path);
		rc = -EIO;
	}
out:
	if (lock >= 0)
		close(lock);   /* releases the flock */
	return rc;
}

int pipeline_background_lock(const struct pipeline *p)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/tmp/background.lock", p->cache_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void pipeline_compile_in_background(const struct pipeline *p,
                                    const struct wasm_file *wf)
{
	if (p->cache_is_temp)
		return;       /* nowhere to keep the result */
	char lock_path[PATH_MAX];
	cache_path(p, wf, TIER_OPT, ".lock", lock_path, sizeof(lock_path));
	int lock = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0)
		return;
	/* Someone (a foreground compile or another background one) is on it;
	 * and at most one background build runs at a time. */
	int bg = pipeline_background_lock(p);
	bool busy = flock(lock, LOCK_EX | LOCK_NB) != 0 || bg < 0;
	close(lock);
	if (bg >= 0)
		close(bg);
	if (busy)
		return;

	/* The limits of this run, passed on: the build is bounded like a
	 * foreground one, plus a wall-clock limit and niceness (cmd_compile). */
	char cpu[24], mem[24], fns[24], mod[24], data[24];
	snprintf(cpu, sizeof(cpu), "%llu", (unsigned long long)p->limits.tool.cpu_seconds);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)p->limits.tool.memory_bytes);
	snprintf(fns, sizeof(fns), "%llu", (unsigned long long)p->limits.functions);
	snprintf(mod, sizeof(mod), "%llu", (unsigned long long)p->limits.module_bytes);
	snprintf(data, sizeof(data), "%llu", (unsigned long long)p->limits.data_bytes);
	char *argv[] = { "wisp", "compile", "--quiet", "--background",
	                 "--compile-max-cpu", cpu, "--compile-max-memory", mem,
	                 "--compile-max-functions", fns, "--compile-max-module", mod,
	                 "--compile-max-data", data, "--", (char *)wf->path, NULL };

	pid_t pid = fork();
	if (pid != 0) {
		if (pid > 0)
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		return;
	}
	/* Child: detach, then fork again so the compile is not our child. */
	setsid();
	if (fork() != 0)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	setpriority(PRIO_PROCESS, 0, LIMITS_BACKGROUND_NICE);
	setenv("WISP_CACHE_DIR", p->cache_dir, 1);
	execv("/proc/self/exe", argv);
	_exit(127);
}
