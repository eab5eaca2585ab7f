/*
 * log.c — the report log (log.h): records, a rate limit, a queue and a
 * writer thread.
 *
 * Reports are made on scheduler threads (a process's end runs on its
 * fiber), and a crash storm must neither flood the terminal nor slow the
 * node. So:
 *
 * - A token bucket (LOG_DEFAULT_BURST records at once, LOG_DEFAULT_RATE a
 *   second on average) decides in log_begin, before the producer builds
 *   anything: a storm's surplus costs a lock and a counter each. Reports a
 *   guest asks for (log_begin_guest: a supervisor's) draw on a bucket of
 *   their own, so a guest calling its report host call in a loop can
 *   crowd out only such reports, never the host's crash reports. What it
 *   refuses is counted; the count is written as "N more reports
 *   suppressed" before the next record that gets through (each record
 *   carries the count taken when it was admitted, so the line sits where
 *   the reports went missing), or by the writer a second after the
 *   suppressions stopped, or at close.
 * - Records wait in a bounded FIFO under a mutex held only to link or
 *   unlink one; one thread of the log's own writes them, so a slow or
 *   blocked stderr (a full pipe nobody reads) stalls only that thread.
 *   When the queue is full a new record is dropped and counted too.
 * - Each record is written with one write(2) (looping only on a short
 *   write), so lines of one report are never split by another report;
 *   guests' own writes to the same stderr may still land between two
 *   reports, never inside one shorter than PIPE_BUF on a pipe.
 *
 * Rejected: writing on the producer's thread with a non-blocking write
 * (drop and count on EAGAIN). Setting O_NONBLOCK on stderr changes the
 * open file description wisp shares with its invoker (a shell's terminal),
 * and a blocking write on a scheduler thread stops every process queued
 * on it for as long as the terminal is scrolled back.
 *
 * There are no globals: two logs (two runtimes in a test) share nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define NS_PER_S 1000000000ull
/* The writer says how many were suppressed this long after the last. */
#define SUPPRESSED_FLUSH_NS NS_PER_S
/* log_close waits this long for a blocked output. */
#define CLOSE_WAIT_S 3

struct log_rec {
	struct log_rec *next;
	uint64_t suppressed_before;   /* to report before this record */
	enum log_format format;
	bool oom;                     /* a write to it failed: drop it */
	char *buf;
	size_t len, cap;
};

#define RECENT_NAME 64
#define RECENT_TEXT 128

/* One of the last crashes: its JSON object's fields after the pid. */
struct recent {
	uint64_t pid, at_ns;          /* at: mono_ns */
	char fields[1280];            /* "name":...,"reason":...,"text":...: cut
	                               * to RECENT_NAME and RECENT_TEXT bytes,
	                               * 6 bytes each when escaped at most */
};

struct log {
	struct log_config cfg;
	pthread_mutex_t recent_lock;  /* the ring below */
	struct recent recent[LOG_RECENT];
	uint64_t crashes;             /* noted ever: the next goes at % LOG_RECENT */
	pthread_t writer;
	pthread_mutex_t lock;         /* everything below */
	pthread_cond_t cond;          /* the writer waits on it */
	struct log_rec *head, *tail;
	uint32_t queued;
	struct bucket {
		double tokens;
		uint64_t refilled_ns; /* when it was last topped up */
	} buckets[2];                 /* [0] the host's reports, [1] guests' */
	uint64_t suppressed;          /* not yet reported */
	uint64_t suppressed_at;       /* when the last one was (monotonic) */
	bool stopping;
	bool done;                    /* the writer has finished */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_ERROR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_INFO: return "info";
	case LOG_NONE: break;
	}
	return "none";
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (enum log_level l = LOG_NONE; l <= LOG_INFO; l++)
		if (strcmp(s, level_name(l)) == 0) {
			*out = l;
			return 0;
		}
	return -EINVAL;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

/* ---- building a record ---- */

static bool reserve(struct log_rec *r, size_t more)
{
	if (r->oom)
		return false;
	if (r->len + more + 1 <= r->cap)
		return true;
	size_t cap = r->cap ? r->cap : 256;
	while (cap < r->len + more + 1)
		cap *= 2;
	char *b = realloc(r->buf, cap);
	if (b == NULL) {
		r->oom = true;
		return false;
	}
	r->buf = b;
	r->cap = cap;
	return true;
}

static void put(struct log_rec *r, const char *s, size_t n)
{
	if (!reserve(r, n))
		return;
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

void log_printf(struct log_rec *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(r, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(r->buf + r->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->len += (size_t)n;
}

void log_text(struct log_rec *r, const char *s)
{
	/* util_printable writes at most 4 bytes per input byte. */
	size_t cap = 4 * strlen(s) + 1;
	if (!reserve(r, cap))
		return;
	util_printable(r->buf + r->len, cap, s);
	r->len += strlen(r->buf + r->len);
}

void log_text_lines(struct log_rec *r, const char *s, const char *indent)
{
	char *copy = strdup(s);
	if (copy == NULL) {
		r->oom = true;
		return;
	}
	char *line = copy;
	for (;;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		log_text(r, line);
		if (nl == NULL)
			break;
		log_printf(r, "\n%s", indent);
		line = nl + 1;
	}
	free(copy);
}

void log_json_str(struct log_rec *r, const char *s)
{
	put(r, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t c = 0;
		size_t len = util_utf8_seq(p, &c);
		char esc[8];
		if (len == 0) {
			put(r, "\\ufffd", 6);      /* not UTF-8: not representable */
			p++;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(r, esc, 2);
		} else if (c == '\n') {
			put(r, "\\n", 2);
		} else if (c == '\t') {
			put(r, "\\t", 2);
		} else if (util_unprintable(c)) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)c);
			put(r, esc, 6);
		} else {
			put(r, (const char *)p, len);
		}
		p += len;
	}
	put(r, "\"", 1);
}

bool log_is_json(const struct log_rec *r)
{
	return r->format == LOG_JSON;
}

/* {"time":"2025-01-31T12:00:00.123Z","level":...,"event":... */
static void json_head(struct log_rec *r, enum log_level level, const char *event)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	log_printf(r, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
	           "\"event\":", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	           tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_name(level));
	log_json_str(r, event);
}

/* ---- admission ---- */

bool log_wants(const struct log *l, enum log_level level)
{
	return l != NULL && level != LOG_NONE && level <= l->cfg.level;
}

/* Take a token (l->lock held); false if the bucket is empty. now is read
 * under the lock by every caller, so it never goes back: a time read
 * before another thread's refill would count as an age of tokens. */
static bool take_token(struct log *l, struct bucket *b, uint64_t now)
{
	if (now < b->refilled_ns)
		now = b->refilled_ns;
	double add = (double)(now - b->refilled_ns) * l->cfg.per_second / (double)NS_PER_S;
	b->refilled_ns = now;
	b->tokens += add;
	if (b->tokens > l->cfg.burst)
		b->tokens = l->cfg.burst;
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

static void count_suppressed(struct log *l, uint64_t now)
{
	l->suppressed++;
	l->suppressed_at = now;
}

static struct log_rec *begin(struct log *l, enum log_level level, const char *event,
                             bool guest)
{
	if (!log_wants(l, level))
		return NULL;
	pthread_mutex_lock(&l->lock);
	uint64_t now = mono_ns();
	bool ok = take_token(l, &l->buckets[guest], now);
	uint64_t before = 0;
	if (!ok)
		count_suppressed(l, now);
	else {
		before = l->suppressed;
		l->suppressed = 0;
	}
	pthread_mutex_unlock(&l->lock);
	if (!ok)
		return NULL;
	struct log_rec *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		pthread_mutex_lock(&l->lock);
		l->suppressed += before + 1;
		l->suppressed_at = now;
		pthread_mutex_unlock(&l->lock);
		return NULL;
	}
	r->format = l->cfg.format;
	r->suppressed_before = before;
	if (r->format == LOG_JSON)
		json_head(r, level, event);
	return r;
}

struct log_rec *log_begin(struct log *l, enum log_level level, const char *event)
{
	return begin(l, level, event, false);
}

struct log_rec *log_begin_guest(struct log *l, enum log_level level, const char *event)
{
	return begin(l, level, event, true);
}

static void rec_free(struct log_rec *r)
{
	free(r->buf);
	free(r);
}

void log_end(struct log *l, struct log_rec *r)
{
	if (r == NULL)
		return;
	if (r->format == LOG_JSON)
		put(r, "}", 1);
	if (r->len == 0 || r->buf[r->len - 1] != '\n')
		put(r, "\n", 1);
	pthread_mutex_lock(&l->lock);
	if (r->oom || l->queued >= l->cfg.max_queued || l->stopping) {
		/* Its own count travels on: it is not lost with it. */
		l->suppressed += r->suppressed_before + 1;
		l->suppressed_at = mono_ns();
		pthread_mutex_unlock(&l->lock);
		rec_free(r);
		return;
	}
	if (l->tail != NULL)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->queued++;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* ---- the writer ---- */

/* Write it all, waiting on an fd someone made non-blocking; an output
 * that fails (closed, EPIPE) drops the rest. */
static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, 1000);
			continue;
		}
		return;
	}
}

static void write_suppressed(struct log *l, uint64_t n)
{
	struct log_rec r = { .format = l->cfg.format };
	if (r.format == LOG_JSON) {
		json_head(&r, LOG_WARNING, "suppressed");
		log_printf(&r, ",\"count\":%llu}\n", (unsigned long long)n);
	} else {
		log_printf(&r, "wisp: %llu more report%s suppressed\n", (unsigned long long)n,
		           n == 1 ? "" : "s");
	}
	if (!r.oom)
		write_all(l->cfg.fd, r.buf, r.len);
	free(r.buf);
}

static void wait_until(struct log *l, uint64_t deadline_mono)
{
	/* The condition variable waits on CLOCK_MONOTONIC (log_open). */
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_mono / NS_PER_S),
		.tv_nsec = (long)(deadline_mono % NS_PER_S),
	};
	pthread_cond_timedwait(&l->cond, &l->lock, &ts);
}

static void *writer_main(void *arg)
{
	struct log *l = arg;
	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct log_rec *r = l->head;
		if (r != NULL) {
			l->head = r->next;
			if (l->head == NULL)
				l->tail = NULL;
			l->queued--;
			pthread_mutex_unlock(&l->lock);
			if (r->suppressed_before > 0)
				write_suppressed(l, r->suppressed_before);
			write_all(l->cfg.fd, r->buf, r->len);
			rec_free(r);
			pthread_mutex_lock(&l->lock);
			continue;
		}
		uint64_t due = l->suppressed_at + SUPPRESSED_FLUSH_NS;
		if (l->suppressed > 0 && (l->stopping || mono_ns() >= due)) {
			uint64_t n = l->suppressed;
			l->suppressed = 0;
			pthread_mutex_unlock(&l->lock);
			write_suppressed(l, n);
			pthread_mutex_lock(&l->lock);
			continue;
		}
		if (l->stopping)
			break;
		if (l->suppressed > 0)
			wait_until(l, due);
		else
			pthread_cond_wait(&l->cond, &l->lock);
	}
	l->done = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int log_open(const struct log_config *cfg, struct log **out)
{
	struct log *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->cfg = *cfg;
	if (!(l->cfg.per_second > 0))
		l->cfg.per_second = LOG_DEFAULT_RATE;
	if (l->cfg.burst == 0)
		l->cfg.burst = LOG_DEFAULT_BURST;
	if (l->cfg.max_queued == 0)
		l->cfg.max_queued = LOG_DEFAULT_QUEUE;
	for (int i = 0; i < 2; i++)
		l->buckets[i] = (struct bucket){ l->cfg.burst, mono_ns() };
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->recent_lock, NULL);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&l->writer, NULL, writer_main, l);
	if (rc != 0) {
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->recent_lock);
		free(l);
		return -rc;
	}
	*out = l;
	return 0;
}

void log_close(struct log *l)
{
	if (l == NULL)
		return;
	uint64_t deadline = mono_ns() + CLOSE_WAIT_S * NS_PER_S;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->cond);
	while (!l->done && mono_ns() < deadline)
		wait_until(l, deadline);
	bool done = l->done;
	pthread_mutex_unlock(&l->lock);
	if (!done) {
		/* Stuck in a write: leave it (and the log it uses) behind. */
		pthread_detach(l->writer);
		return;
	}
	pthread_join(l->writer, NULL);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->recent_lock);
	free(l);
}

/* ---- the last crashes ---- */

/* s cut to at most n bytes, into buf (n + 1 bytes). */
static const char *cut(char *buf, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

void log_note_crash(struct log *l, uint64_t pid, const char *name, const char *reason,
                    const char *text)
{
	if (l == NULL)
		return;
	char nbuf[RECENT_NAME + 1], tbuf[RECENT_TEXT + 1];
	struct log_rec r = { .format = LOG_JSON };
	put(&r, "\"name\":", 7);
	log_json_str(&r, cut(nbuf, name, RECENT_NAME));
	put(&r, ",\"reason\":", 10);
	log_json_str(&r, reason);
	put(&r, ",\"text\":", 8);
	log_json_str(&r, cut(tbuf, text, RECENT_TEXT));
	if (r.oom || r.len >= sizeof(l->recent[0].fields)) {
		free(r.buf);
		return;
	}
	pthread_mutex_lock(&l->recent_lock);
	struct recent *e = &l->recent[l->crashes++ % LOG_RECENT];
	e->pid = pid;
	e->at_ns = mono_ns();
	memcpy(e->fields, r.buf, r.len);
	e->fields[r.len] = '\0';
	pthread_mutex_unlock(&l->recent_lock);
	free(r.buf);
}

char *log_recent_json(struct log *l, size_t *len)
{
	struct log_rec r = { .format = LOG_JSON };
	char line[96];
	pthread_mutex_lock(&l->recent_lock);
	uint64_t now = mono_ns(), n = l->crashes;
	snprintf(line, sizeof(line), "{\"total\":%llu,\"crashes\":[", (unsigned long long)n);
	put(&r, line, strlen(line));
	for (uint64_t i = n; i > 0 && i + LOG_RECENT > n; i--) {
		const struct recent *e = &l->recent[(i - 1) % LOG_RECENT];
		snprintf(line, sizeof(line), "%s{\"pid\":\"%llx\",", i == n ? "" : ",",
		         (unsigned long long)e->pid);
		put(&r, line, strlen(line));
		put(&r, e->fields, strlen(e->fields));
		snprintf(line, sizeof(line), ",\"ago_ms\":%llu}",
		         (unsigned long long)((now - e->at_ns) / 1000000));
		put(&r, line, strlen(line));
	}
	pthread_mutex_unlock(&l->recent_lock);
	put(&r, "]}\n", 3);
	if (r.oom) {
		free(r.buf);
		return NULL;
	}
	*len = r.len;
	return r.buf;
}
