/* test_log.c — the report log (src/common/log.c): formats, levels, the
 * rate limit and its count. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* A log writing into a pipe; read what it wrote with drain(). */
struct sink {
	int fd[2];
	struct log *log;
};

static void sink_open(struct sink *s, enum log_level level, enum log_format format,
                      double rate, uint32_t burst)
{
	assert_int_equal(pipe2(s->fd, O_CLOEXEC), 0);
	struct log_config cfg = { .fd = s->fd[1], .level = level, .format = format,
	                          .per_second = rate, .burst = burst };
	assert_int_equal(log_open(&cfg, &s->log), 0);
}

/* Close the log (flushing it) and return everything it wrote. */
static char *drain(struct sink *s)
{
	log_close(s->log);
	close(s->fd[1]);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	ssize_t r;
	while ((r = read(s->fd[0], buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(s->fd[0]);
	return buf;
}

static void text_records_and_the_suppressed_count(void **state)
{
	(void)state;
	struct sink s;
	/* Three at once, and practically none after. */
	sink_open(&s, LOG_WARNING, LOG_TEXT, 1e-6, 3);
	int admitted = 0;
	for (int i = 0; i < 10; i++) {
		struct log_rec *r = log_begin(s.log, LOG_ERROR, "crash");
		if (r == NULL)
			continue;
		assert_false(log_is_json(r));
		log_printf(r, "wisp: report %d: ", i);
		log_text(r, "bell\a and \xe2\x80\xae override");
		log_end(s.log, r);
		admitted++;
	}
	assert_int_equal(admitted, 3);
	/* Below the level: not written, not counted. */
	assert_null(log_begin(s.log, LOG_INFO, "exit"));
	assert_false(log_wants(s.log, LOG_INFO));
	assert_true(log_wants(s.log, LOG_WARNING));
	char *out = drain(&s);
	assert_string_equal(out,
	                    "wisp: report 0: bell\\x07 and \\xe2\\x80\\xae override\n"
	                    "wisp: report 1: bell\\x07 and \\xe2\\x80\\xae override\n"
	                    "wisp: report 2: bell\\x07 and \\xe2\\x80\\xae override\n"
	                    "wisp: 7 more reports suppressed\n");
	free(out);
}

struct hammer {
	struct log *log;
	int admitted;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < 20000; i++) {
		struct log_rec *r = log_begin(h->log, LOG_ERROR, "crash");
		if (r != NULL) {
			h->admitted++;
			log_printf(r, "wisp: one\n");
			log_end(h->log, r);
		}
	}
	return NULL;
}

/* Threads racing for tokens get the bucket's burst and no more. (A clock
 * read before the lock let a thread that lost the race take its earlier
 * time for a refill: the bucket's age went negative, wrapped, and
 * refilled it: 20 to 388 reports got through a storm instead of ~22.) */
static void the_rate_limit_holds_under_contention(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_ERROR, LOG_TEXT, 1e-6, 3);
	pthread_t t[4];
	struct hammer h[4];
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){ s.log, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	int admitted = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		admitted += h[i].admitted;
	}
	assert_int_equal(admitted, 3);
	char *out = drain(&s);
	assert_string_equal(out, "wisp: one\nwisp: one\nwisp: one\nwisp: 79997 more reports suppressed\n");
	free(out);
}

/* A guest asking for reports in a loop (a supervisor's host call) uses up
 * its own bucket only: the host's crash reports still get through. (With
 * one bucket, 3 guest reports left none for the crash.) */
static void guest_reports_cannot_crowd_out_crash_reports(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_ERROR, LOG_TEXT, 1e-6, 3);
	int guest = 0;
	for (int i = 0; i < 100; i++) {
		struct log_rec *r = log_begin_guest(s.log, LOG_ERROR, "supervisor");
		if (r != NULL) {
			guest++;
			log_printf(r, "wisp: supervisor\n");
			log_end(s.log, r);
		}
	}
	assert_int_equal(guest, 3);
	struct log_rec *r = log_begin(s.log, LOG_ERROR, "crash");
	assert_non_null(r);
	log_printf(r, "wisp: crash\n");
	log_end(s.log, r);
	char *out = drain(&s);
	assert_string_equal(out, "wisp: supervisor\nwisp: supervisor\nwisp: supervisor\n"
	                         "wisp: 97 more reports suppressed\nwisp: crash\n");
	free(out);
}

static void json_strings_are_escaped(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_INFO, LOG_JSON, 0, 0);
	struct log_rec *r = log_begin(s.log, LOG_INFO, "exit");
	assert_non_null(r);
	assert_true(log_is_json(r));
	log_printf(r, ",\"text\":");
	log_json_str(r, "q\"b\\s\nnl\ttab\x01 \xff \xe2\x80\xae \xc3\xa9");
	log_end(s.log, r);
	char *out = drain(&s);
	/* {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ","level":"info","event":"exit","text":...} */
	const char *want_tail = "\",\"level\":\"info\",\"event\":\"exit\",\"text\":"
	                        "\"q\\\"b\\\\s\\nnl\\ttab\\u0001 \\ufffd \\u202e \xc3\xa9\"}\n";
	assert_true(strncmp(out, "{\"time\":\"", 9) == 0);
	assert_int_equal(strlen(out), 9 + 24 + strlen(want_tail));
	assert_string_equal(out + 9 + 24, want_tail);
	assert_int_equal(out[9 + 23], 'Z');
	free(out);
}

static void multi_line_text_is_indented(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_ERROR, LOG_TEXT, 0, 0);
	struct log_rec *r = log_begin(s.log, LOG_ERROR, "crash");
	assert_non_null(r);
	log_printf(r, "wisp: ");
	log_text_lines(r, "left: 1\nright: 2\x1b[2J", "    ");
	log_end(s.log, r);
	char *out = drain(&s);
	assert_string_equal(out, "wisp: left: 1\n    right: 2\\x1b[2J\n");
	free(out);
}

static void level_none_writes_nothing(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_NONE, LOG_TEXT, 0, 0);
	assert_null(log_begin(s.log, LOG_ERROR, "crash"));
	char *out = drain(&s);
	assert_string_equal(out, "");
	free(out);
	/* A NULL log is "no log". */
	assert_null(log_begin(NULL, LOG_ERROR, "crash"));
	log_close(NULL);
}

static void parse_names(void **state)
{
	(void)state;
	enum log_level l;
	enum log_format f;
	assert_int_equal(log_parse_level("warning", &l), 0);
	assert_int_equal(l, LOG_WARNING);
	assert_int_equal(log_parse_level("none", &l), 0);
	assert_int_equal(l, LOG_NONE);
	assert_int_equal(log_parse_level("debug", &l), -EINVAL);
	assert_int_equal(log_parse_format("json", &f), 0);
	assert_int_equal(f, LOG_JSON);
	assert_int_equal(log_parse_format("xml", &f), -EINVAL);
}

/* The ring of the last crashes: newest first, the last LOG_RECENT of
 * however many, names and texts escaped and cut, kept at level none too. */
static void the_last_crashes_are_kept_escaped(void **state)
{
	(void)state;
	struct sink s;
	sink_open(&s, LOG_NONE, LOG_TEXT, 0, 0);
	size_t len;
	char *j = log_recent_json(s.log, &len);
	assert_non_null(j);
	assert_string_equal(j, "{\"total\":0,\"crashes\":[]}\n");
	free(j);
	char long_text[1000];
	memset(long_text, '"', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	for (uint64_t pid = 1; pid <= LOG_RECENT + 3; pid++)
		log_note_crash(s.log, pid, pid == LOG_RECENT + 3 ? "<a>\"\x1b" : "", "trap",
		               long_text);
	j = log_recent_json(s.log, &len);
	assert_non_null(j);
	assert_int_equal(strlen(j), len);
	assert_non_null(strstr(j, "{\"total\":35,\"crashes\":[{\"pid\":\"23\","
	                          "\"name\":\"<a>\\\"\\u001b\",\"reason\":\"trap\","));
	/* 32 kept: pids 35 down to 4 */
	size_t n = 0;
	for (const char *p = j; (p = strstr(p, "\"pid\":")) != NULL; p++)
		n++;
	assert_int_equal(n, LOG_RECENT);
	assert_non_null(strstr(j, "{\"pid\":\"4\","));
	assert_null(strstr(j, "{\"pid\":\"3\","));
	/* the text cut at 128 bytes: 128 escaped quotes */
	char want[2 * 128 + 16];
	strcpy(want, ",\"text\":\"");
	for (int i = 0; i < 128; i++)
		strcat(want, "\\\"");
	strcat(want, "\",");
	assert_non_null(strstr(j, want));
	free(j);
	free(drain(&s));
	log_note_crash(NULL, 1, "", "trap", "");   /* no log: nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_records_and_the_suppressed_count),
		cmocka_unit_test(the_rate_limit_holds_under_contention),
		cmocka_unit_test(guest_reports_cannot_crowd_out_crash_reports),
		cmocka_unit_test(json_strings_are_escaped),
		cmocka_unit_test(multi_line_text_is_indented),
		cmocka_unit_test(level_none_writes_nothing),
		cmocka_unit_test(parse_names),
		cmocka_unit_test(the_last_crashes_are_kept_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
