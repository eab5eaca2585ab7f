/*
 * new.c — `wisp new [--c] NAME`: a ready project in a new directory NAME.
 *
 * A Rust project builds, runs and tests with plain `cargo build`, `cargo
 * run`, `cargo test`: its .cargo/config.toml names the target, wisp-rustc
 * and wisp-rustdoc as the compilers (rustup's wasm32-wasip1 target when it
 * is there, else Debian's rustc with the std the set-up command built) and
 * this wisp as the runner; its Cargo.toml takes the wisp crate by path. A C
 * project (`--c`) builds with a Makefile against the C SDK.
 *
 * The projects are the template directories <share>/sdk/templates/{rust,c}
 * copied with placeholders filled in (sdk/templates/README.md lists them).
 * Templates are files, not strings in this binary, so they can be read,
 * edited and tested as what they are.
 *
 * <share> is where this wisp's SDKs are, found from the running executable
 * (/proc/self/exe), the first of:
 *   $WISP_SHARE_DIR;
 *   the repository the binary was built in: its directory or one of the
 *   two above it (./wisp, build/<variant>/wisp) holding sdk/rust/wisp;
 *   <prefix>/share/wisp for <prefix>/bin/wisp (`make install`).
 * The project records absolute paths to <share> and to this wisp: it
 * belongs to this machine's wisp, which is what a project made by a tool
 * installed on the machine is. (Alternative rejected: relying on PATH for
 * wisp and a crates.io release of the crate — there is neither here.)
 *
 * Errors: a message on stderr naming what is wrong, exit status 1 (2 for a
 * usage error); a half-written project is removed.
 */
#include "new.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

#define NEW_EXIT_FAIL 1
#define NEW_EXIT_USAGE 2
#define NAME_MAX_LEN 64
#define NAME_MAX_TEXT "64"   /* NAME_MAX_LEN in messages */

static const char new_usage[] =
	"usage: wisp new [--c] NAME\n"
	"\n"
	"Make a new project in the directory NAME:\n"
	"  (default)  a Rust crate using the wisp crate: cargo run, cargo test\n"
	"  --c        a C program using the C SDK: make run, make test\n";

/* What the placeholders of a template become. */
struct new_project {
	const char *name;
	char crate[NAME_MAX_LEN + 1];
	char wisp[PATH_MAX];
	char share[PATH_MAX];
	const char *sources;
};

static const char debian_sources[] =
	"\n"
	"# Crates come from Debian's packaged sources (librust-*-dev packages, which\n"
	"# wisp's set-up command installs): no network needed. To take crates from\n"
	"# crates.io instead, delete the lines below.\n"
	"[source.crates-io]\n"
	"replace-with = \"debian-packages\"\n"
	"\n"
	"[source.debian-packages]\n"
	"directory = \"/usr/share/cargo/registry\"\n";

static const char crates_io_sources[] =
	"\n"
	"# Crates come from crates.io (Debian's packaged crate sources were not\n"
	"# found in /usr/share/cargo/registry when this project was made).\n";

/* Names cargo or Rust would refuse or confuse with the standard library or
 * the wisp crates. */
static bool name_reserved(const char *name)
{
	static const char *const reserved[] = {
		"test", "std", "core", "alloc", "proc_macro", "proc-macro", "wisp",
		"wisp-macros", "wisp_macros", "self", "super", "crate", "Self",
	};
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strcmp(name, reserved[i]) == 0)
			return true;
	return false;
}

/* A project name: a letter, then letters, digits, '-' or '_'; at most 64. */
static bool name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* True if `dir` holds the SDKs (its sdk/rust/wisp crate and templates). */
static bool share_at(const char *dir)
{
	char p[PATH_MAX];
	int n = snprintf(p, sizeof p, "%s/sdk/rust/wisp/Cargo.toml", dir);
	if (n < 0 || (size_t)n >= sizeof p || !is_file(p))
		return false;
	n = snprintf(p, sizeof p, "%s/sdk/templates/rust/Cargo.toml.tmpl", dir);
	return n > 0 && (size_t)n < sizeof p && is_file(p);
}

/* Fill pr->wisp (this executable) and pr->share; 0 or -ENOENT. */
static int find_share(struct new_project *pr)
{
	if (!realpath("/proc/self/exe", pr->wisp))
		return -errno;
	const char *env = getenv("WISP_SHARE_DIR");
	if (env && *env) {
		if (!realpath(env, pr->share) || !share_at(pr->share))
			return -ENOENT;
		return 0;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", pr->wisp);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	/* The repository: the binary's directory or up to two above it. */
	char cand[PATH_MAX];
	snprintf(cand, sizeof cand, "%s", dir);
	for (int up = 0; up < 3; up++) {
		if (share_at(cand) && realpath(cand, pr->share))
			return 0;
		size_t len = strlen(cand);
		if (len + 4 >= sizeof cand)
			break;
		memcpy(cand + len, "/..", 4);
	}
	/* make install: <prefix>/bin/wisp and <prefix>/share/wisp. */
	int n = snprintf(cand, sizeof cand, "%s/../share/wisp", dir);
	if (n > 0 && (size_t)n < sizeof cand && share_at(cand) && realpath(cand, pr->share))
		return 0;
	return -ENOENT;
}

/* True when Debian's packaged crate sources the wisp crate needs are there. */
static bool debian_crates_present(void)
{
	static const char *const needed[] = {
		"/usr/share/cargo/registry/serde-1.*",
		"/usr/share/cargo/registry/serde_derive-1.*",
		"/usr/share/cargo/registry/bincode-1.*",
		"/usr/share/cargo/registry/syn-1.*",
	};
	for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
		glob_t g;
		int rc = glob(needed[i], GLOB_NOSORT, NULL, &g);
		globfree(&g);
		if (rc != 0)
			return false;
	}
	return true;
}

/* The value of placeholder `key` (len bytes), or NULL if there is none. */
static const char *placeholder(const struct new_project *pr, const char *key, size_t len)
{
	struct {
		const char *key;
		const char *value;
	} table[] = {
		{ "name", pr->name }, { "crate", pr->crate }, { "wisp", pr->wisp },
		{ "share", pr->share }, { "sources", pr->sources },
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strlen(table[i].key) == len && memcmp(table[i].key, key, len) == 0)
			return table[i].value;
	return NULL;
}

/* Write `text` with its placeholders filled in to `out`; 0, or -EINVAL for
 * an unknown or unclosed placeholder (a bug of the template: named on
 * stderr), or -errno of the write. */
static int fill(const struct new_project *pr, const char *tmpl_path, const char *text, FILE *out)
{
	const char *p = text;
	for (;;) {
		const char *open = strstr(p, "{{");
		if (!open) {
			fputs(p, out);
			break;
		}
		fwrite(p, 1, (size_t)(open - p), out);
		const char *close = strstr(open + 2, "}}");
		const char *value = close ? placeholder(pr, open + 2, (size_t)(close - open - 2)) : NULL;
		if (!value) {
			fprintf(stderr, "wisp new: %s: unknown placeholder at '%.20s'\n", tmpl_path, open);
			return -EINVAL;
		}
		fputs(value, out);
		p = close + 2;
	}
	return ferror(out) ? -EIO : 0;
}

/* The name a template entry gets in the project: "dot-x" -> ".x", and
 * "x.tmpl" -> "x" for files. 0, or -ENAMETOOLONG. */
static int project_name(const char *entry, bool is_dir, char *out, size_t outlen)
{
	const char *base = entry;
	const char *prefix = "";
	if (strncmp(entry, "dot-", 4) == 0) {
		base = entry + 4;
		prefix = ".";
	}
	size_t len = strlen(base);
	if (!is_dir && len > 5 && strcmp(base + len - 5, ".tmpl") == 0)
		len -= 5;
	int n = snprintf(out, outlen, "%s%.*s", prefix, (int)len, base);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int copy_file(const struct new_project *pr, const char *src, const char *dst)
{
	uint8_t *text;
	size_t len;
	int rc = util_read_file(src, &text, &len);
	if (rc < 0) {
		fprintf(stderr, "wisp new: cannot read %s: %s\n", src, strerror(-rc));
		return rc;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!out) {
		rc = -errno;
		fprintf(stderr, "wisp new: cannot create %s: %s\n", dst, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(text);
		return rc;
	}
	rc = fill(pr, src, (const char *)text, out);
	if (fclose(out) != 0 && rc == 0)
		rc = -errno;
	if (rc == -EIO)
		fprintf(stderr, "wisp new: cannot write %s\n", dst);
	free(text);
	return rc;
}

/* Copy the template directory `src` into the existing directory `dst`. */
static int copy_tree(const struct new_project *pr, const char *src, const char *dst)
{
	DIR *d = opendir(src);
	if (!d) {
		fprintf(stderr, "wisp new: cannot read %s: %s\n", src, strerror(errno));
		return -errno;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char from[PATH_MAX], name[NAME_MAX + 1], to[PATH_MAX];
		struct stat st;
		int n = snprintf(from, sizeof from, "%s/%s", src, e->d_name);
		if (n < 0 || (size_t)n >= sizeof from || stat(from, &st) != 0) {
			rc = -ENAMETOOLONG;
			break;
		}
		bool dir = S_ISDIR(st.st_mode);
		rc = project_name(e->d_name, dir, name, sizeof name);
		n = snprintf(to, sizeof to, "%s/%s", dst, name);
		if (rc == 0 && (n < 0 || (size_t)n >= sizeof to))
			rc = -ENAMETOOLONG;
		if (rc != 0)
			break;
		if (!dir) {
			rc = copy_file(pr, from, to);
		} else if (mkdir(to, 0777) != 0) {
			rc = -errno;
			fprintf(stderr, "wisp new: cannot create %s: %s\n", to, strerror(errno));
		} else {
			rc = copy_tree(pr, from, to);
		}
	}
	closedir(d);
	return rc;
}

int cli_new(int argc, char **argv)
{
	bool c = false;
	const char *name = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--c") == 0) {
			c = true;
		} else if (strcmp(argv[i], "--rust") == 0) {
			c = false;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(new_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-' || name) {
			fprintf(stderr, "wisp new: unexpected argument '%s'\n\n%s", argv[i], new_usage);
			return NEW_EXIT_USAGE;
		} else {
			name = argv[i];
		}
	}
	if (!name) {
		fprintf(stderr, "wisp new: missing NAME\n\n%s", new_usage);
		return NEW_EXIT_USAGE;
	}
	const char *why = strchr(name, '/') != NULL ?
	                  "it is a path, and NAME is the name of the new directory, made in the "
	                  "current directory (cd to where it should go first)" :
	                  name_reserved(name) ? "it is the name of one of Rust's or wisp's own crates" :
	                  !name_valid(name) ? "use a letter, then letters, digits, '-' or '_' (at most "
	                                      NAME_MAX_TEXT ")" : NULL;
	if (why != NULL) {
		fprintf(stderr, "wisp new: '%s' cannot name a project: %s\n", name, why);
		return NEW_EXIT_USAGE;
	}

	struct new_project pr = { .name = name };
	for (size_t i = 0; name[i]; i++)
		pr.crate[i] = name[i] == '-' ? '_' : name[i];
	if (find_share(&pr) < 0) {
		fprintf(stderr, "wisp new: cannot find wisp's SDKs (sdk/rust/wisp, sdk/templates) in the "
		        "repository of %s or in its installed share directory; set WISP_SHARE_DIR\n",
		        pr.wisp[0] ? pr.wisp : "this wisp");
		return NEW_EXIT_FAIL;
	}
	pr.sources = debian_crates_present() ? debian_sources : crates_io_sources;

	char tmpl[PATH_MAX];
	snprintf(tmpl, sizeof tmpl, "%s/sdk/templates/%s", pr.share, c ? "c" : "rust");
	if (mkdir(name, 0777) != 0) {
		fprintf(stderr, "wisp new: cannot create the directory '%s': %s\n", name,
		        errno == EEXIST ? "it exists already" : strerror(errno));
		return NEW_EXIT_FAIL;
	}
	if (copy_tree(&pr, tmpl, name) != 0) {
		util_rm_rf(name);
		return NEW_EXIT_FAIL;
	}
	if (c)
		printf("Created the C project '%s'. Try: cd %s && make run\n", name, name);
	else
		printf("Created the Rust project '%s'. Try: cd %s && cargo run\n", name, name);
	return 0;
}
