/*
 * control.c — a running wisp's control socket, and `wisp reload`.
 *
 * Where. Every `wisp run` listens on a Unix socket in the user's runtime
 * directory: $XDG_RUNTIME_DIR/wisp, else /tmp/wisp-UID; the directory is
 * made 0700 and refused if it is not the user's own with no access for
 * others (a directory someone else made could hold their socket under our
 * name). The socket is "PID.sock", 0600; a node's also answers to
 * "NAME.sock" (a symbolic link). Both go when the run ends. A connection
 * from another user is refused as well (SO_PEERCRED), whatever the
 * permissions say.
 *
 * What. One request per connection, a line and its bytes, one line back:
 *   "reload LEN[ purge][ push]\n" + LEN bytes  -> "ok VSN\n" | "error TEXT\n"
 * Requests are served one at a time by the socket's thread (a reload
 * compiles, which takes seconds: a second one waits for the first).
 * Reading a request has one deadline, CONTROL_IO_TIMEOUT_S for the whole
 * of it (not per read: a client sending a byte now and then would hold
 * the thread, every reload after it, and the end of the run, which waits
 * for the thread, for ever).
 * Observability (issue 16: ps, inspect, kill, stats) will add requests.
 */
#include "control.h"

#include "common/sha256.h"
#include "dist/dist.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_IO_TIMEOUT_S 30

struct control {
	struct proc_control hooks;
	struct rt *rt;
	struct dist *dist;            /* the run's node, or NULL */
	char node[256];               /* "" if the run is no node */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char alias[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	pthread_t thread;
	bool running;
};

/* The runtime directory (made if missing), or -1 with a message. */
static int control_dir(char *out, size_t cap, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg != NULL && xdg[0] == '/')
		snprintf(out, cap, "%s/wisp", xdg);
	else
		snprintf(out, cap, "/tmp/wisp-%u", (unsigned)getuid());
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", out, strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s is not a directory of this user's alone (mode 0700): "
		         "no control socket", out);
		return -1;
	}
	return 0;
}

static bool same_user(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Up to len bytes into buf once fd is readable, before deadline (ms,
 * now_ms's clock; 0: none, for the client): what read returns, or -1
 * when the deadline passed. */
static ssize_t read_by(int fd, void *buf, size_t len, uint64_t deadline)
{
	for (struct pollfd p = { .fd = fd, .events = POLLIN }; deadline != 0;) {
		uint64_t now = now_ms();
		int rc = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
		if (rc > 0)
			break;
		if (rc == 0 || errno != EINTR)
			return -1;
	}
	return read(fd, buf, len);
}

static bool read_all(int fd, void *buf, size_t len, uint64_t deadline)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = read_by(fd, (char *)buf + got, len - got, deadline);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static void write_bytes(int fd, const void *p, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)p + off, len - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void write_all(int fd, const char *s)
{
	write_bytes(fd, s, strlen(s));
}

/* The request line (up to '\n'), or false. deadline: read_by's. */
static bool read_line(int fd, char *line, size_t cap, uint64_t deadline)
{
	for (size_t n = 0; n + 1 < cap; n++) {
		if (read_by(fd, line + n, 1, deadline) != 1)
			return false;
		if (line[n] == '\n') {
			line[n] = '\0';
			return true;
		}
	}
	return false;
}

static void serve_reload(struct control *c, int fd, unsigned long long len, bool purge,
                         bool push, uint64_t deadline)
{
	char reply[700];
	void *bytes = len > 0 && len <= RT_CODE_MAX_BYTES ? malloc(len) : NULL;
	if (bytes == NULL) {
		snprintf(reply, sizeof(reply), "error %s\n", len > RT_CODE_MAX_BYTES
		         ? "the module is too large" : "out of memory");
		write_all(fd, reply);
		return;
	}
	if (!read_all(fd, bytes, len, deadline)) {
		free(bytes);
		return;
	}
	char err[600] = "";
	uint32_t vsn = 0;
	/* (The version it replaces, for --push: peers must run that one.) */
	unsigned char old[RT_HASH_BYTES], hash[RT_HASH_BYTES];
	rt_code_current_hash(c->rt, old);
	int rc = rt_code_load(c->rt, bytes, len, purge, &vsn, err, sizeof(err));
	util_sha256(bytes, len, hash);
	free(bytes);
	int pushed = -1;
	if (rc == 0 && push && c->dist != NULL)
		pushed = dist_push_code(c->dist, old, hash);
	if (rc == 0 && push && pushed < 0)
		snprintf(reply, sizeof(reply), "ok %u (not pushed: %s)\n", vsn,
		         c->dist == NULL ? "this run is no node" : "nothing to push");
	else if (rc == 0 && push)
		snprintf(reply, sizeof(reply), "ok %u (pushed to %d node%s)\n", vsn, pushed,
		         pushed == 1 ? "" : "s");
	else if (rc == 0)
		snprintf(reply, sizeof(reply), "ok %u\n", vsn);
	else
		snprintf(reply, sizeof(reply), "error %s\n", err);
	for (char *p = reply; *p && p[1]; p++)   /* one line */
		if (*p == '\n')
			*p = ' ';
	write_all(fd, reply);
}

/* "reload LEN[ purge][ push]" (each flag at most once, in that order):
 * its length and flags, or false. LEN over what fits is ULLONG_MAX. */
static bool parse_reload(const char *line, unsigned long long *len, bool *purge, bool *push)
{
	if (strncmp(line, "reload ", 7) != 0 || line[7] < '0' || line[7] > '9')
		return false;
	char *end;
	*len = strtoull(line + 7, &end, 10);
	*purge = strncmp(end, " purge", 6) == 0;
	end += *purge ? 6 : 0;
	*push = strncmp(end, " push", 5) == 0;
	end += *push ? 5 : 0;
	return *len > 0 && *end == '\0';
}

static void serve(struct control *c, int fd)
{
	uint64_t deadline = now_ms() + CONTROL_IO_TIMEOUT_S * 1000;
	struct timeval tv = { CONTROL_IO_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!same_user(fd)) {
		write_all(fd, "error not this node's user\n");
		return;
	}
	char line[128];
	if (!read_line(fd, line, sizeof(line), deadline)) {
		write_all(fd, "error a request is one line\n");
		return;
	}
	unsigned long long len;
	bool purge, push;
	if (parse_reload(line, &len, &purge, &push))
		serve_reload(c, fd, len, purge, push, deadline);
	else
		write_all(fd, "error unknown request\n");
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;   /* (shut down: control_detach) */
		}
		serve(c, fd);
		close(fd);
	}
}

static int control_attach(void *ctx, struct rt *rt, char *err, size_t errlen)
{
	struct control *c = ctx;
	char dir[PATH_MAX - 64];
	c->rt = rt;
	if (control_dir(dir, sizeof(dir), err, errlen) != 0) {
		fprintf(stderr, "wisp: %s\n", err);   /* (the run goes on without) */
		return 0;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(c->path, sizeof(c->path), "%s/%d.sock", dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		fprintf(stderr, "wisp: the runtime directory's path is too long: no control socket\n");
		c->path[0] = '\0';
		return 0;
	}
	memcpy(a.sun_path, c->path, (size_t)n + 1);
	unlink(c->path);   /* (a pid's socket left by a run that was killed) */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	bool ok = c->fd >= 0 && bind(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	umask(old);
	if (!ok || chmod(c->path, 0600) != 0 || listen(c->fd, 8) != 0 ||
	    pthread_create(&c->thread, NULL, control_main, c) != 0) {
		fprintf(stderr, "wisp: no control socket at %s: %s\n", c->path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		unlink(c->path);
		c->path[0] = '\0';
		return 0;
	}
	c->running = true;
	if (c->node[0] != '\0') {
		n = snprintf(c->alias, sizeof(c->alias), "%s/%s.sock", dir, c->node);
		unlink(c->alias);
		if (n < 0 || (size_t)n >= sizeof(c->alias) || symlink(c->path, c->alias) != 0)
			c->alias[0] = '\0';
	}
	return 0;
}

static void control_detach(void *ctx)
{
	struct control *c = ctx;
	if (!c->running)
		return;
	shutdown(c->fd, SHUT_RDWR);   /* (accept returns: the thread ends) */
	pthread_join(c->thread, NULL);
	close(c->fd);
	c->fd = -1;
	c->running = false;
	unlink(c->path);
	if (c->alias[0] != '\0')
		unlink(c->alias);
}

struct control *control_new(const char *node_name, struct dist *dist)
{
	struct control *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->dist = dist;
	if (node_name != NULL)
		snprintf(c->node, sizeof(c->node), "%s", node_name);
	/* (No '/' may reach a file name.) */
	for (char *p = c->node; *p; p++)
		if (*p == '/')
			*p = '_';
	c->hooks = (struct proc_control){ control_attach, control_detach, c };
	return c;
}

const struct proc_control *control_hooks(struct control *c)
{
	return c != NULL ? &c->hooks : NULL;
}

void control_free(struct control *c)
{
	if (c != NULL)
		control_detach(c);
	free(c);
}

/* ---- the client side ---- */

/* The socket of the run named by target (a node's name or a pid; NULL:
 * the only run), into path; false with a message on stderr. Sockets of
 * runs that were killed (their pid is gone) are removed on the way. */
static bool find_socket(const char *target, char *path, size_t cap)
{
	char dir[PATH_MAX - 64], err[PATH_MAX + 100];
	if (control_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: %s\n", err);
		return false;
	}
	if (target != NULL) {
		snprintf(path, cap, "%s/%s.sock", dir, target);
		if (access(path, F_OK) != 0) {
			fprintf(stderr, "wisp: no running wisp is named %s (no %s)\n", target, path);
			return false;
		}
		return true;
	}
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "wisp: cannot read %s: %s\n", dir, strerror(errno));
		return false;
	}
	int found = 0;
	char pids[256] = "";
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (end == e->d_name || strcmp(end, ".sock") != 0 || pid <= 0)
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			unlink(p);   /* a killed run's */
			continue;
		}
		if (found++ == 0)
			snprintf(path, cap, "%s", p);
		size_t used = strlen(pids);
		snprintf(pids + used, sizeof(pids) - used, " %ld", pid);
	}
	closedir(d);
	if (found == 1)
		return true;
	if (found == 0)
		fprintf(stderr, "wisp: no wisp is running (no control socket in %s)\n", dir);
	else
		fprintf(stderr, "wisp: %d wisps are running (pids%s): say which with --pid PID or "
		        "--node NAME\n", found, pids);
	return false;
}

/* The whole file, or NULL with a message. */
static void *read_file(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	if (f == NULL) {
		fprintf(stderr, "wisp: cannot read %s: %s\n", file, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	unsigned char *b = malloc(cap);
	for (size_t got; b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap && n < RT_CODE_MAX_BYTES) {
			unsigned char *nb = realloc(b, cap *= 2);
			if (nb == NULL)
				free(b);
			b = nb;
		} else if (n == cap) {
			break;
		}
	}
	fclose(f);
	if (b == NULL || n >= RT_CODE_MAX_BYTES) {
		fprintf(stderr, "wisp: %s: %s\n", file, b ? "too large" : "out of memory");
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

int cli_reload(int argc, char **argv)
{
	static const char usage[] =
		"usage: wisp reload [--node NAME | --pid PID] [--purge] [--push] MODULE.wasm\n";
	const char *target = NULL, *file = NULL;
	bool purge = false, push = false;
	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "--node") == 0 || strcmp(argv[i], "--pid") == 0) && i + 1 < argc) {
			target = argv[++i];
		} else if (strcmp(argv[i], "--purge") == 0) {
			purge = true;
		} else if (strcmp(argv[i], "--push") == 0) {
			push = true;
		} else if (argv[i][0] == '-' || file != NULL) {
			fputs(usage, stderr);
			return 2;
		} else {
			file = argv[i];
		}
	}
	if (file == NULL || (target != NULL && (strchr(target, '/') || target[0] == '.'))) {
		fputs(usage, stderr);
		return 2;
	}
	char path[PATH_MAX];
	size_t len;
	void *bytes;
	if (!find_socket(target, path, sizeof(path)) || (bytes = read_file(file, &len)) == NULL)
		return 1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(path) >= sizeof(a.sun_path) || fd < 0 ||
	    (memcpy(a.sun_path, path, strlen(path) + 1),
	     connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)) {
		fprintf(stderr, "wisp: cannot reach the running wisp at %s: %s\n", path,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		free(bytes);
		return 1;
	}
	char head[64], reply[800];
	snprintf(head, sizeof(head), "reload %zu%s%s\n", len, purge ? " purge" : "",
	         push ? " push" : "");
	write_all(fd, head);
	write_bytes(fd, bytes, len);
	free(bytes);
	bool got = read_line(fd, reply, sizeof(reply), 0);
	close(fd);
	if (!got) {
		fprintf(stderr, "wisp: the running wisp gave no answer\n");
		return 1;
	}
	if (strncmp(reply, "ok ", 3) == 0) {
		printf("wisp: %s is version %s of the running module, now current\n", file, reply + 3);
		return 0;
	}
	fprintf(stderr, "wisp: reload refused: %s\n",
	        strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
	return 1;
}
