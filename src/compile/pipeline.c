/*
 * pipeline.c — validate → translate (codegen.c) → C compiler → cache.
 *
 * Cache: <dir>/v1/<key>.<tier>.so where key = XXH3-128 over everything that
 * determines the machine code: the wasm bytes, wisp's version and module
 * ABI, the prelude text, the tier, and the identity (path, size, mtime) of
 * wasm2c and of the C compiler. A file in the cache is complete by
 * construction: it is compiled under <dir>/tmp/ and renamed into place, so
 * concurrent runs either see the whole file or none. A per-(key, tier) lock
 * file (flock) makes concurrent runs of the same module compile it once.
 *
 * Tiers: TIER_FAST compiles with tcc (≈50 ms for a 100 KB module, code
 * several times slower); TIER_OPT with gcc -O2 (seconds, near-native code).
 * The optimizing flags keep line tables and inlining records (-g1), the
 * source order of functions, and distinct functions distinct (no
 * identical-code folding), so that a trap can name its wasm function
 * (src/engine/symbolize.c) without costing frame pointers or inlining.
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

#include "codegen.h"
#include "pipeline.h"
#include "stackcheck.h"
#include "../engine/engine.h"
#include "../common/util.h"
#include "../engine/vmctx.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define WISP_ABI_STR STR(WISP_MODULE_ABI)

static const char *tier_name(enum tier t)
{
	return t == TIER_OPT ? "opt" : "fast";
}

static int dir_usable(const char *dir)
{
	int rc = util_mkdir_p(dir);
	if (rc != 0)
		return rc;
	return access(dir, W_OK | X_OK) == 0 ? 0 : -errno;
}

int pipeline_open(struct pipeline *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
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

	char sub[PATH_MAX + 8];
	int rc = -ENOENT;
	if (strlen(p->cache_dir) > PATH_MAX - 256)
		rc = -ENAMETOOLONG;
	else if (p->cache_dir[0]) {
		snprintf(sub, sizeof(sub), "%s/v1", p->cache_dir);
		rc = dir_usable(sub);
		if (rc == 0) {
			snprintf(sub, sizeof(sub), "%s/tmp", p->cache_dir);
			rc = dir_usable(sub);
		}
	}
	if (rc != 0) {
		const char *tmp = getenv("TMPDIR");
		char tmpl[PATH_MAX];
		snprintf(tmpl, sizeof(tmpl), "%s/wisp-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL) {
			snprintf(err, errlen, "no usable cache directory: %s: %s; %s: %s",
			         p->cache_dir[0] ? p->cache_dir : "(none: HOME is not set)",
			         strerror(-rc), tmpl, strerror(errno));
			return -errno;
		}
		fprintf(stderr, "wisp: warning: cache directory %s is not usable (%s); "
		        "compiled code will not be kept after this run (set WISP_CACHE_DIR)\n",
		        p->cache_dir[0] ? p->cache_dir : "(none: HOME is not set)",
		        strerror(-rc));
		snprintf(p->cache_dir, sizeof(p->cache_dir), "%s", tmpl);
		p->cache_is_temp = true;
		snprintf(sub, sizeof(sub), "%s/v1", p->cache_dir);
		util_mkdir_p(sub);
		snprintf(sub, sizeof(sub), "%s/tmp", p->cache_dir);
		util_mkdir_p(sub);
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

int wasm_file_load(struct wasm_file *wf, const char *path, char *err, size_t errlen)
{
	memset(wf, 0, sizeof(*wf));
	snprintf(wf->path, sizeof(wf->path), "%s", path);
	int rc = util_read_file(path, &wf->bytes, &wf->len);
	if (rc != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
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

static void cache_path(const struct pipeline *p, const struct wasm_file *wf,
                       enum tier t, const char *suffix, char *out, size_t outlen)
{
	XXH3_state_t *st = XXH3_createState();
	if (st == NULL) {
		/* No memory for the hash: a path that can never be in the cache,
		 * so the module is compiled (and that fails cleanly if memory
		 * stays short). */
		snprintf(out, outlen, "%s/v1/unhashed-%ld.%s%s", p->cache_dir, (long)getpid(),
		         tier_name(t), suffix);
		return;
	}
	XXH3_128bits_reset(st);
	char head[128];
	int n = snprintf(head, sizeof(head), "wisp %s abi %d tier %s|", WISP_VERSION,
	                 WISP_MODULE_ABI, tier_name(t));
	XXH3_128bits_update(st, head, (size_t)n);
	const char *prelude = codegen_prelude();
	XXH3_128bits_update(st, prelude, strlen(prelude));
	tool_identity(st, "wasm2c");
	tool_identity(st, t == TIER_OPT ? p->opt_cc : p->fast_cc);
	XXH3_128bits_update(st, wf->bytes, wf->len);
	XXH128_hash_t h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	snprintf(out, outlen, "%s/v1/%016llx%016llx.%s%s", p->cache_dir,
	         (unsigned long long)h.high64, (unsigned long long)h.low64,
	         tier_name(t), suffix);
}

bool pipeline_lookup(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, char *so_path, size_t so_len)
{
	cache_path(p, wf, t, ".so", so_path, so_len);
	return access(so_path, R_OK) == 0;
}

struct progress_state {
	const char *name;
	const char *cc;
	bool shown;
};

static void show_progress(void *arg, double secs)
{
	struct progress_state *ps = arg;
	if (secs < 1.0)
		return;
	fprintf(stderr, "\rwisp: compiling %s with %s -O2 ... %.0f s", ps->name, ps->cc, secs);
	ps->shown = true;
}

static int run_compiler(const struct pipeline *p, enum tier t, const char *workdir,
                        const char *tu, const char *out_so, const char *display,
                        char *err, size_t errlen)
{
	char inc[PATH_MAX + 2];
	snprintf(inc, sizeof(inc), "-I%s", workdir);
	/* -lm: generated code calls libm (floor, sqrt, ...), which the host
	 * itself may not link. */
	char *fast[] = { (char *)p->fast_cc, "-shared", "-w", inc, "-o", (char *)out_so,
	                 (char *)tu, "-lm", NULL };
	char *opt[] = { (char *)p->opt_cc, "-O2", "-shared", "-fPIC", "-w",
	                "-fvisibility=hidden", "-g1",
	                "-fno-toplevel-reorder", "-fno-reorder-blocks-and-partition",
	                "-fno-ipa-icf", "-fno-partial-inlining",
	                "-fno-strict-aliasing", "-fstack-usage", inc, "-o", (char *)out_so, (char *)tu,
	                "-lm", NULL };
	char out[8192];
	struct progress_state ps = { display, p->opt_cc, false };
	bool tty = p->progress && t == TIER_OPT && isatty(2);
	int rc = util_run(t == TIER_OPT ? opt : fast, out, sizeof(out),
	                  tty ? show_progress : NULL, &ps);
	if (ps.shown)
		fprintf(stderr, "\r\033[K");
	const char *cc = t == TIER_OPT ? p->opt_cc : p->fast_cc;
	if (rc < 0) {
		snprintf(err, errlen, "cannot run the C compiler '%s': %s", cc, strerror(-rc));
		return rc;
	}
	if (rc != 0) {
		char *nl = strchr(out, '\n');
		if (nl && nl - out > 400)
			*nl = '\0';
		snprintf(err, errlen, "the C compiler '%s' failed (status %d) on generated code:\n%.900s",
		         cc, rc, out);
		return -EIO;
	}
	return 0;
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

int pipeline_compile(const struct pipeline *p, const struct wasm_file *wf,
                     enum tier t, char *so_path, size_t so_len,
                     char *err, size_t errlen)
{
	if (pipeline_lookup(p, wf, t, so_path, so_len))
		return 0;
	char lock_path[PATH_MAX];
	cache_path(p, wf, t, ".lock", lock_path, sizeof(lock_path));
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock >= 0 && flock(lock, LOCK_EX) == 0 && access(so_path, R_OK) == 0) {
		close(lock);         /* another run compiled it while we waited */
		return 0;
	}

	int rc;
	char workdir[PATH_MAX + 32];
	snprintf(workdir, sizeof(workdir), "%s/tmp/build-XXXXXX", p->cache_dir);
	if (mkdtemp(workdir) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a build directory in %s/tmp: %s",
		         p->cache_dir, strerror(errno));
		goto out;
	}
	char tu[PATH_MAX + 16], tmp_so[PATH_MAX + 16];
	rc = codegen_translate(wf->path, &wf->info, workdir, tu, sizeof(tu), err, errlen);
	if (rc == 0) {
		snprintf(tmp_so, sizeof(tmp_so), "%s/module.so", workdir);
		char display[PATH_MAX];
		snprintf(display, sizeof(display), "%s", wf->path);
		rc = run_compiler(p, t, workdir, tu, tmp_so, basename(display), err, errlen);
	}
	if (rc == 0)
		rc = check_compiled(p, t, wf, workdir, tmp_so, err, errlen);
	if (rc == 0 && rename(tmp_so, so_path) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot store %s: %s", so_path, strerror(errno));
	}
	if (getenv("WISP_KEEP_BUILD") == NULL)
		util_rm_rf(workdir);
out:
	if (lock >= 0)
		close(lock);   /* releases the flock */
	return rc;
}

void pipeline_compile_in_background(const struct pipeline *p,
                                    const struct wasm_file *wf)
{
	if (p->cache_is_temp)
		return;       /* nowhere to keep the result */
	char lock_path[PATH_MAX];
	cache_path(p, wf, TIER_OPT, ".lock", lock_path, sizeof(lock_path));
	int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return;
	/* Someone (a foreground compile or another background one) is on it. */
	if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
		close(lock);
		return;
	}
	flock(lock, LOCK_UN);
	close(lock);

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
	setpriority(PRIO_PROCESS, 0, 10);
	setenv("WISP_CACHE_DIR", p->cache_dir, 1);
	char *argv[] = { "wisp", "compile", "--quiet", (char *)wf->path, NULL };
	execv("/proc/self/exe", argv);
	_exit(127);
}
