/*
 * listen.c — the TCP listening sockets of the CLI's servers: `wisp serve
 * --listen` and `--metrics` read ADDRESS:PORT, listen and say where the
 * same way (they once did it with two copies of this code).
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool listen_form_ok(const char *opt, const char *example, const char *spec, char *why,
                    size_t whylen)
{
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0' ||
	    (size_t)(colon - spec) >= LISTEN_MAX_HOST) {
		snprintf(why, whylen, "%s wants ADDRESS:PORT (e.g. %s)", opt, example);
		return false;
	}
	const char *port = colon + 1;
	char *end;
	errno = 0;
	unsigned long p = strtoul(port, &end, 10);
	if (*end != '\0' || *port < '0' || *port > '9' || errno != 0 || p > 65535) {
		snprintf(why, whylen, "%s: the port must be a number from 0 to 65535 (0: any)", opt);
		return false;
	}
	return true;
}

int listen_tcp(const char *spec, int backlog, int extra_flags, const char *prefix, char *err,
               size_t errlen)
{
	char host[LISTEN_MAX_HOST];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "%scannot listen on %s: not ADDRESS:PORT", prefix, spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	                          .ai_socktype = SOCK_STREAM }, *ai;
	int gai = getaddrinfo(host, colon + 1, &hints, &ai);
	if (gai != 0) {
		snprintf(err, errlen, "%scannot listen on %s: %s", prefix, spec, gai_strerror(gai));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | extra_flags, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		snprintf(err, errlen, "%scannot listen on %s: %s", prefix, spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

void listen_where(int fd, char *buf, size_t cap)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
		if (a.ss_family == AF_INET6) {
			const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a;
			inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
			port = ntohs(v6->sin6_port);
		} else {
			const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a;
			inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
			port = ntohs(v4->sin_port);
		}
	}
	snprintf(buf, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}
