/*
 * node.c — `wisp run --name/--sname`: the node options and the cookie.
 *
 * The cookie follows erl: --cookie, else the file ~/.erlang.cookie,
 * created (mode 0400, twenty random capital letters) when missing, and
 * refused when others may read it — a cookie others can read is no
 * secret. A node name with :PORT (name@host:9100) listens on that port and
 * does not register with EPMD; peers given as name@host:port are reached
 * without EPMD too (containers without an EPMD).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"
#include "opts.h"

static int bad(const char *fmt, const char *what)
{
	fprintf(stderr, "wisp: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\nrun 'wisp help' for the options\n");
	return 2;
}

int node_parse_opt(int argc, char **argv, int *i, struct node_opts *o)
{
	const char *a = argv[*i], *v;
	if (opt_is(a, "--name") || opt_is(a, "--sname")) {
		bool l = opt_is(a, "--name");
		if ((v = opt_value(argc, argv, i, l ? "--name" : "--sname")) == NULL || *v == '\0')
			return bad("%s needs a node name (NAME or NAME@HOST)", l ? "--name" : "--sname");
		if (o->name != NULL)
			return bad("%s", "give one of --name and --sname, once");
		o->name = v;
		o->longnames = l;
	} else if (opt_is(a, "--cookie")) {
		if ((v = opt_value(argc, argv, i, "--cookie")) == NULL || *v == '\0')
			return bad("%s", "--cookie needs a value");
		o->cookie = v;
	} else if (opt_is(a, "--connect")) {
		if ((v = opt_value(argc, argv, i, "--connect")) == NULL || strchr(v, '@') == NULL)
			return bad("%s", "--connect needs a node name NAME@HOST (or NAME@HOST:PORT)");
		if (o->nconnect == NODE_MAX_CONNECT)
			return bad("%s", "too many --connect options");
		o->connect[o->nconnect++] = v;
	} else if (opt_is(a, "--dist-port")) {
		if ((v = opt_value(argc, argv, i, "--dist-port")) == NULL)
			return bad("%s", "--dist-port needs a port or a range (9100 or 9100-9110)");
		o->ports = v;
	} else if (strcmp(a, "--allow-remote-spawn") == 0) {
		o->allow_remote_spawn = true;
	} else if (strcmp(a, "--allow-code-push") == 0) {
		o->allow_code_push = true;
	} else if (opt_is(a, "--net-ticktime")) {
		if ((v = opt_value(argc, argv, i, "--net-ticktime")) == NULL)
			return bad("%s", "--net-ticktime needs a number of seconds");
		o->ticktime = v;
	} else {
		return 0;
	}
	return 1;
}

static int port_of(const char *s, const char *end, uint16_t *port)
{
	char buf[8];
	size_t n = (size_t)(end - s);
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *e;
	long p = strtol(buf, &e, 10);
	if (*e != '\0' || p < 1 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

/* The cookie in ~/.erlang.cookie, made if missing. 0, or 1 (said why). */
static int home_cookie(char *buf, size_t cap)
{
	const char *home = getenv("HOME");
	if (home == NULL || *home == '\0') {
		fprintf(stderr, "wisp: no --cookie and no HOME to find ~/.erlang.cookie in\n");
		return 1;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/.erlang.cookie", home);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		/* As erl does: twenty random capital letters, readable by the
		 * owner only. */
		unsigned char r[20];
		char c[21];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			fprintf(stderr, "wisp: cannot make a cookie: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < 20; i++)
			c[i] = (char)('A' + r[i] % 26);
		c[20] = '\0';
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
		if (fd < 0 || write(fd, c, 20) != 20) {
			fprintf(stderr, "wisp: cannot create %s: %s\n", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
		close(fd);
		snprintf(buf, cap, "%s", c);
		return 0;
	}
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "wisp: cannot read %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (st.st_mode & 077) {
		fprintf(stderr, "wisp: %s may be read by others: it must be readable by its owner "
		        "only (chmod 400 %s)\n", path, path);
		close(fd);
		return 1;
	}
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "wisp: %s is empty\n", path);
		return 1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (n == 0) {
		fprintf(stderr, "wisp: %s is empty\n", path);
		return 1;
	}
	return 0;
}

int node_check_opts(const struct node_opts *o)
{
	if (o->name == NULL &&
	    (o->cookie || o->nconnect || o->ports || o->ticktime || o->allow_remote_spawn ||
	     o->allow_code_push)) {
		fprintf(stderr, "wisp: --cookie, --connect, --dist-port, --net-ticktime, "
		        "--allow-remote-spawn and --allow-code-push need --name or --sname\n");
		return 2;
	}
	return 0;
}

int node_start(const struct node_opts *o, const void *module, size_t module_len,
               const unsigned char hash[RT_HASH_BYTES], struct dist **out)
{
	*out = NULL;
	if (o->name == NULL)
		return node_check_opts(o);
	struct dist_config cfg = { .longnames = o->longnames, .connect = o->connect,
	                           .nconnect = o->nconnect,
	                           .allow_remote_spawn = o->allow_remote_spawn,
	                           .allow_code_push = o->allow_code_push,
	                           .module_bytes = module, .module_len = module_len };
	memcpy(cfg.module_hash, hash, RT_HASH_BYTES);
	char name[512];
	snprintf(name, sizeof(name), "%s", o->name);
	char *colon = strchr(name, ':');
	if (colon != NULL) {
		/* name@host:port: this port, no EPMD. */
		uint16_t p;
		if (strchr(name, '@') == NULL || port_of(colon + 1, colon + strlen(colon), &p) != 0) {
			fprintf(stderr, "wisp: bad node name '%s': expected NAME@HOST:PORT\n", o->name);
			return 2;
		}
		*colon = '\0';
		cfg.port_min = cfg.port_max = p;
		cfg.no_epmd = true;
	}
	cfg.name = name;
	if (o->ports != NULL) {
		const char *dash = strchr(o->ports, '-');
		const char *end = o->ports + strlen(o->ports);
		if (port_of(o->ports, dash ? dash : end, &cfg.port_min) != 0 ||
		    (dash && port_of(dash + 1, end, &cfg.port_max) != 0) ||
		    (dash && cfg.port_max < cfg.port_min)) {
			fprintf(stderr, "wisp: --dist-port takes a port or a range (9100 or 9100-9110)\n");
			return 2;
		}
		if (!dash)
			cfg.port_max = cfg.port_min;
	}
	if (o->ticktime != NULL) {
		char *e;
		long t = strtol(o->ticktime, &e, 10);
		if (*o->ticktime == '\0' || *e != '\0' || t < 1 || t > 86400) {
			fprintf(stderr, "wisp: --net-ticktime takes seconds, 1 to 86400\n");
			return 2;
		}
		cfg.ticktime_s = (uint32_t)t;
	}
	char cookie[256];
	if (o->cookie != NULL)
		snprintf(cookie, sizeof(cookie), "%s", o->cookie);
	else if (home_cookie(cookie, sizeof(cookie)) != 0)
		return 1;
	cfg.cookie = cookie;
	char err[512];
	if (dist_new(&cfg, out, err, sizeof(err)) != 0) {
		fprintf(stderr, "wisp: cannot start node %s: %s\n", o->name, err);
		return 1;
	}
	return 0;
}
