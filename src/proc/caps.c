/*
 * caps.c — capability sets (see caps.h for the design).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "common/util.h"

struct caps *caps_new(void)
{
	struct caps *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	atomic_init(&c->refs, 1);
	c->max_processes = UINT64_MAX;
	c->max_memory = UINT64_MAX;
	c->max_cpu = UINT64_MAX;
	c->max_message = UINT64_MAX;
	c->max_fds = CAPS_DEFAULT_MAX_FDS;
	c->null_fd = -1;
	c->park_fd[0] = c->park_fd[1] = c->park_fd[2] = -1;
	return c;
}

static char **dup_strings(char *const *v, int n)
{
	char **out = calloc((size_t)n + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	for (int i = 0; i < n; i++)
		if ((out[i] = strdup(v[i])) == NULL)
			return NULL;   /* leaks a few strings on OOM; the caller fails */
	return out;
}

struct caps *caps_derive(struct caps *p)
{
	struct caps *c = caps_new();
	if (c == NULL)
		return NULL;
	caps_ref(p);
	c->parent = p;
	/* The same directory fds: they stay open while the set that owns
	 * them lives, and c holds that set through `parent`. */
	c->dirs = calloc((size_t)p->ndirs + 1, sizeof(*c->dirs));
	for (int i = 0; c->dirs && i < p->ndirs; i++) {
		c->dirs[i] = p->dirs[i];
		c->dirs[i].owned = false;
		c->dirs[i].guest = strdup(p->dirs[i].guest);
		c->dirs[i].host = strdup(p->dirs[i].host);
		c->ndirs++;
		if (c->dirs[i].guest == NULL || c->dirs[i].host == NULL) {
			caps_unref(c);
			return NULL;
		}
	}
	c->env = dup_strings(p->env, p->nenv);
	c->nenv = p->nenv;
	c->args = dup_strings(p->args, p->nargs);
	c->nargs = p->nargs;
	memcpy(c->stdio, p->stdio, sizeof(c->stdio));
	memcpy(c->park_fd, p->park_fd, sizeof(c->park_fd));   /* p's own: shared */
	c->connect = calloc((size_t)p->nconnect + 1, sizeof(*c->connect));
	c->listen = calloc((size_t)p->nlisten + 1, sizeof(*c->listen));
	if (c->connect && p->nconnect > 0)
		memcpy(c->connect, p->connect, (size_t)p->nconnect * sizeof(*c->connect));
	if (c->listen && p->nlisten > 0)
		memcpy(c->listen, p->listen, (size_t)p->nlisten * sizeof(*c->listen));
	c->nconnect = p->nconnect;
	c->nlisten = p->nlisten;
	c->udp = p->udp;
	c->dns = p->dns;
	c->may_spawn = p->may_spawn;
	c->may_create_caps = p->may_create_caps;
	c->may_use_nodes = p->may_use_nodes;
	c->may_load_code = p->may_load_code;
	c->max_memory = p->max_memory;
	c->max_cpu = p->max_cpu;
	c->max_message = p->max_message;
	c->max_fds = p->max_fds;
	c->verbose = p->verbose;
	/* The quota of a narrowed set starts as "no more than the parent's",
	 * which the parent's own counter already enforces. */
	c->max_processes = UINT64_MAX;
	if (c->dirs == NULL || c->env == NULL || c->args == NULL ||
	    c->connect == NULL || c->listen == NULL) {
		caps_unref(c);
		return NULL;
	}
	return c;
}

void caps_ref(struct caps *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void caps_unref(struct caps *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (int i = 0; i < c->ndirs; i++) {
		if (c->dirs[i].owned)
			close(c->dirs[i].fd);
		free(c->dirs[i].guest);
		free(c->dirs[i].host);
	}
	free(c->dirs);
	for (int i = 0; c->env && i < c->nenv; i++)
		free(c->env[i]);
	free(c->env);
	for (int i = 0; c->args && i < c->nargs; i++)
		free(c->args[i]);
	free(c->args);
	free(c->connect);
	free(c->listen);
	if (c->null_fd >= 0)
		close(c->null_fd);
	for (int i = 0; c->park_owned && i < 3; i++)
		if (c->park_fd[i] >= 0)
			close(c->park_fd[i]);
	struct caps *parent = c->parent;
	free(c);
	caps_unref(parent);
}

/* A private non-blocking reopening of stdio fd i if it is a pipe, FIFO or
 * terminal (see park_fd), else -1. Without /proc, or for a FIFO with no
 * reader, there is none and fd i is used as it is. */
static int reopen_nonblocking(int i)
{
	struct stat st;
	if (fstat(i, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)))
		return -1;
	int fl = fcntl(i, F_GETFL);
	if (fl < 0)
		return -1;
	int mode = (fl & O_ACCMODE) == O_RDWR ? (i == 0 ? O_RDONLY : O_WRONLY) : (fl & O_ACCMODE);
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
	return open(path, mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

int caps_finish(struct caps *c)
{
	for (int i = 0; i < 3; i++) {
		if (c->stdio[i] == CAP_STDIO_NULL && c->null_fd < 0) {
			c->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (c->null_fd < 0)
				return -errno;
		}
	}
	if (c->parent == NULL && !c->park_owned) {
		for (int i = 0; i < 3; i++)
			c->park_fd[i] = c->stdio[i] == CAP_STDIO_INHERIT ? reopen_nonblocking(i) : -1;
		c->park_owned = true;
	}
	return 0;
}

int caps_stdio_fd(const struct caps *c, int i, const int *inherit, bool *parks)
{
	*parks = false;
	switch (c->stdio[i]) {
	case CAP_STDIO_INHERIT:
		if (inherit != NULL)
			return inherit[i];
		*parks = c->park_fd[i] >= 0;
		return *parks ? c->park_fd[i] : i;
	case CAP_STDIO_NULL:
		return c->null_fd;
	default:
		return -1;
	}
}

int caps_add_dir(struct caps *c, const char *host, const char *guest, bool ro)
{
	struct cap_dir *d = realloc(c->dirs, ((size_t)c->ndirs + 1) * sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	c->dirs = d;
	int fd = open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENOTDIR;
	}
	size_t glen = caps_dir_name_len(guest, strlen(guest));
	struct cap_dir n = { .fd = fd, .guest = strndup(guest, glen),
	                     .host = strdup(host), .read_only = ro, .owned = true };
	if (n.guest == NULL || n.host == NULL) {
		close(fd);
		free(n.guest);
		free(n.host);
		return -ENOMEM;
	}
	d[c->ndirs++] = n;
	return 0;
}

size_t caps_dir_name_len(const char *name, size_t len)
{
	while (len > 1 && name[len - 1] == '/')
		len--;
	return len;
}

void caps_drop_dir(struct caps *c, int i)
{
	if (c->dirs[i].owned)
		close(c->dirs[i].fd);
	free(c->dirs[i].guest);
	free(c->dirs[i].host);
	memmove(&c->dirs[i], &c->dirs[i + 1],
	        (size_t)(c->ndirs - i - 1) * sizeof(c->dirs[0]));
	c->ndirs--;
}

int caps_add_env(struct caps *c, const char *kv)
{
	char **e = realloc(c->env, ((size_t)c->nenv + 2) * sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	c->env = e;
	e[c->nenv++] = strdup(kv);
	e[c->nenv] = NULL;
	return 0;
}

int caps_set_args(struct caps *c, int argc, const char *const *argv)
{
	c->args = dup_strings((char *const *)argv, argc);
	c->nargs = argc;
	return c->args ? 0 : -ENOMEM;
}

/* "HOST:PORT", "[V6]:PORT", "PORT" (listen), with "*" for either part. */
int caps_add_rule(struct caps *c, bool listen, const char *spec)
{
	struct net_rule r = { "*", 0 };
	const char *colon = strrchr(spec, ':');
	const char *port = spec;
	if (colon != NULL) {
		size_t hl = (size_t)(colon - spec);
		const char *h = spec;
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl == 0 || hl >= sizeof(r.host))
			return -EINVAL;
		memcpy(r.host, h, hl);
		r.host[hl] = '\0';
		port = colon + 1;
	} else if (!listen) {
		return -EINVAL;      /* connect rules need a host */
	}
	if (strcmp(port, "*") != 0) {
		char *end;
		long p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
			return -EINVAL;
		r.port = (uint16_t)p;
	}
	struct net_rule **arr = listen ? &c->listen : &c->connect;
	int *n = listen ? &c->nlisten : &c->nconnect;
	struct net_rule *a = realloc(*arr, ((size_t)*n + 1) * sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a[(*n)++] = r;
	*arr = a;
	return 0;
}

static bool rule_match(const struct net_rule *r, int n, const char *host, unsigned port)
{
	for (int i = 0; i < n; i++) {
		bool h = strcmp(r[i].host, "*") == 0 || strcmp(r[i].host, host) == 0;
		bool p = r[i].port == 0 || r[i].port == port;
		if (h && p)
			return true;
	}
	return false;
}

bool caps_may_connect(const struct caps *c, const char *host, unsigned port)
{
	return rule_match(c->connect, c->nconnect, host, port);
}

bool caps_may_listen(const struct caps *c, const char *host, unsigned port)
{
	return rule_match(c->listen, c->nlisten, host, port);
}

bool caps_charge(struct caps *c)
{
	struct caps *k;
	for (k = c; k != NULL; k = k->parent) {
		uint64_t n = atomic_fetch_add(&k->live, 1);
		if (k->max_processes != UINT64_MAX && n >= k->max_processes)
			break;
	}
	if (k == NULL)
		return true;
	/* Undo what was counted, including the full one. */
	for (struct caps *u = c; u != k->parent; u = u->parent)
		atomic_fetch_sub(&u->live, 1);
	return false;
}

void caps_uncharge(struct caps *c)
{
	for (struct caps *k = c; k != NULL; k = k->parent)
		atomic_fetch_sub(&k->live, 1);
}

void caps_log_denied(const struct caps *c, uint64_t pid, const char *fmt, ...)
{
	if (!c->verbose)
		return;
	char msg[512], shown[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The message may quote the guest (a DNS name is any bytes it likes):
	 * no escape sequence or newline of its reaches the terminal. */
	util_printable(shown, sizeof(shown), msg);
	fprintf(stderr, "wisp: denied: process %llx: %s\n", (unsigned long long)pid, shown);
}
