/*
 * log.h — wisp's report log: crash reports and supervisor reports, one
 * record each, on stderr, as plain text or JSON lines (log.c says how it
 * keeps a crash storm from flooding the terminal or slowing the node).
 *
 * A producer asks for a record (log_begin: NULL when its level is off or
 * the rate limit says no, which is counted), writes its fields into it
 * with the helpers below, whichever format log_is_json says, and hands it
 * over (log_end). Nothing here blocks on the output: records go to a
 * bounded queue that a thread of the log's own writes out.
 *
 * Error convention: 0 or a negative errno (log_open); the rest cannot
 * fail visibly (a record that cannot be built or queued is counted as
 * suppressed).
 */
#ifndef WISP_LOG_H
#define WISP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Levels, most severe first: a log at level L writes records of level L
 * and above (LOG_NONE: nothing). */
enum log_level { LOG_NONE = 0, LOG_ERROR, LOG_WARNING, LOG_INFO };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/* Records a second the token bucket allows on average, and at once. */
#define LOG_DEFAULT_RATE 20
#define LOG_DEFAULT_BURST 20
/* Records that may wait for the writer; beyond, new ones are dropped
 * (and counted). */
#define LOG_DEFAULT_QUEUE 256

struct log_config {
	int fd;                   /* where records go (stderr: 2); not closed */
	enum log_level level;
	enum log_format format;
	double per_second;        /* 0: LOG_DEFAULT_RATE */
	uint32_t burst;           /* 0: LOG_DEFAULT_BURST */
	uint32_t max_queued;      /* 0: LOG_DEFAULT_QUEUE */
};

struct log;
struct log_rec;

/* A log and its writer thread: 0, -ENOMEM, or pthread_create's error. */
int log_open(const struct log_config *cfg, struct log **out);
/* Write what is queued (and the count of what was suppressed), stop the
 * writer and free the log. Waits at most a few seconds for a blocked
 * output: a writer still stuck then is left behind with its log (leaked),
 * so that the caller can exit. NULL is fine. */
void log_close(struct log *l);

/* "error", "warning", "info", "none" / "text", "json": 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);

/* Whether records of level would be written at all (cheap; l may be
 * NULL): a producer can skip preparing one. */
bool log_wants(const struct log *l, enum log_level level);

/* A new record of level, named event ("crash", "supervisor"), or NULL:
 * l is NULL, the level is off, or the rate limit is reached (counted, and
 * reported as "N more reports suppressed" before the next record written
 * or within a second). In JSON the record holds
 * {"time":"<RFC 3339 UTC>","level":"<level>","event":"<event>" already;
 * in text it is empty. Any thread; never blocks on the output. */
struct log_rec *log_begin(struct log *l, enum log_level level, const char *event);
/* The same for a report a guest asks for (a supervisor's): its rate limit
 * is a bucket of its own, so such reports never use up the host's. */
struct log_rec *log_begin_guest(struct log *l, enum log_level level, const char *event);
bool log_is_json(const struct log_rec *r);
/* Append formatted bytes as they are (the caller's own text). */
__attribute__((format(printf, 2, 3)))
void log_printf(struct log_rec *r, const char *fmt, ...);
/* Append text that came from a guest (NUL-terminated), escaped for a
 * terminal as util_printable does. */
void log_text(struct log_rec *r, const char *s);
/* The same, each newline of s starting a new line of the record, indented
 * by indent (a multi-line panic message stays readable). */
void log_text_lines(struct log_rec *r, const char *s, const char *indent);
/* Append s (NUL-terminated) as a JSON string literal: quotes, backslashes
 * and controls escaped, bytes outside well-formed UTF-8 as U+FFFD, and
 * the code points util_printable escapes as \uXXXX (so a JSON line shown
 * on a terminal cannot move its cursor or reorder its text either). */
void log_json_str(struct log_rec *r, const char *s);
/* Queue r (consumed): a JSON record is closed with "}", and either ends
 * with a newline. Dropped and counted if the queue is full. */
void log_end(struct log *l, struct log_rec *r);

/* The last LOG_RECENT crashes, for a dashboard: kept whatever the level
 * and the rate limit say (a crash storm's newest show, a quiet log's
 * too), at the cost of a lock and a copy of a few hundred bytes each. */
#define LOG_RECENT 32
/* Note a crash: pid, its first registered name ("" for none), the reason
 * ("trap", "panic", "killed", "limit", ...) and its text (guest text:
 * escaped here). Any thread; l may be NULL. */
void log_note_crash(struct log *l, uint64_t pid, const char *name, const char *reason,
                    const char *text);
/* {"total":N,"crashes":[the last LOG_RECENT, newest first]} (each
 * {"pid":"<hex>","name":...,"reason":...,"text":...,"ago_ms":M}),
 * malloc'd, *len bytes; NULL if out of memory. Any thread. */
char *log_recent_json(struct log *l, size_t *len);

#endif
