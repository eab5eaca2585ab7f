/*
 * term_copy.c — the C term codec (sdk/c/term.c) against a real erl, driven
 * by tests/e2e/test_term.py. One command per line on stdin, one answer per
 * line on stdout:
 *
 *   copy HEX   the term (with its version byte) travels to this process as
 *              a WISP_TAG_TERM message, is read back by the typed gets and
 *              written again by the puts: "ok HEX" or "error RC"
 *   pid HEX    the term is a pid: "pid N" (the wisp_pid_t) or "error RC"
 *   build      terms made by the encoder: "NAME HEX" lines, then "end"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>
#include <wisp/term.h>

#define CAP (1u << 20)

static uint8_t in[CAP], msg[CAP], out[CAP];
static char line[2 * CAP + 64];

static int copy(struct wisp_term_dec *d, struct wisp_term_enc *e, int depth);

/* n terms in a row. */
static int copy_n(struct wisp_term_dec *d, struct wisp_term_enc *e, int depth, uint64_t n)
{
	int rc = WISP_TERM_OK;
	for (uint64_t i = 0; rc == WISP_TERM_OK && i < n; i++)
		rc = copy(d, e, depth);
	return rc;
}

/* Whatever cannot be read as a value is carried as raw bytes. */
static int copy_raw(struct wisp_term_dec *d, struct wisp_term_enc *e)
{
	const uint8_t *raw;
	size_t len;
	int rc = wisp_term_get_raw(d, &raw, &len);
	if (rc == WISP_TERM_OK)
		wisp_term_put_raw(e, raw, len);
	return rc;
}

/* Reads the next term value by value and writes it again; `depth`
 * containers enclose it. */
static int copy(struct wisp_term_dec *d, struct wisp_term_enc *e, int depth)
{
	int64_t v;
	uint64_t u;
	double f;
	const char *name;
	const uint8_t *data;
	size_t len;
	uint32_t n;
	wisp_pid_t pid;
	int rc, type = wisp_term_peek(d);
	switch (type) {
	case WISP_TERM_INT:
		if ((rc = wisp_term_get_int(d, &v)) == WISP_TERM_OK)
			wisp_term_put_int(e, v);
		else if (rc == WISP_TERM_ERANGE && (rc = wisp_term_get_uint(d, &u)) == WISP_TERM_OK)
			wisp_term_put_uint(e, u);
		else if (rc == WISP_TERM_ERANGE)
			rc = copy_raw(d, e);
		return rc;
	case WISP_TERM_FLOAT:
		if ((rc = wisp_term_get_float(d, &f)) == WISP_TERM_OK)
			wisp_term_put_float(e, f);
		return rc;
	case WISP_TERM_ATOM:
		if ((rc = wisp_term_get_atom(d, &name, &len)) == WISP_TERM_OK)
			wisp_term_put_atom(e, name, len);
		return rc == WISP_TERM_ENODE ? copy_raw(d, e) : rc;
	case WISP_TERM_BINARY:
		if ((rc = wisp_term_get_binary(d, &data, &len)) == WISP_TERM_OK)
			wisp_term_put_binary(e, data, len);
		return rc;
	case WISP_TERM_STRING:
		if ((rc = wisp_term_get_string(d, &data, &len)) == WISP_TERM_OK)
			wisp_term_put_string(e, data, len);
		return rc;
	case WISP_TERM_NIL:
		if ((rc = wisp_term_get_nil(d)) == WISP_TERM_OK)
			wisp_term_put_nil(e);
		return rc;
	case WISP_TERM_PID:
		if ((rc = wisp_term_get_pid(d, &pid)) == WISP_TERM_OK)
			wisp_term_put_pid(e, pid);
		return rc == WISP_TERM_ENODE ? copy_raw(d, e) : rc;
	case WISP_TERM_REF:
	case WISP_TERM_OTHER:
		return copy_raw(d, e);
	case WISP_TERM_TUPLE:
	case WISP_TERM_LIST:
	case WISP_TERM_MAP:
		break;
	default:
		return type;
	}
	if (depth >= WISP_TERM_MAX_DEPTH)
		return WISP_TERM_EDEPTH;
	if (type == WISP_TERM_TUPLE) {
		if ((rc = wisp_term_get_tuple(d, &n)) == WISP_TERM_OK)
			wisp_term_put_tuple(e, n);
		return rc == WISP_TERM_OK ? copy_n(d, e, depth + 1, n) : rc;
	}
	if (type == WISP_TERM_MAP) {
		if ((rc = wisp_term_get_map(d, &n)) == WISP_TERM_OK)
			wisp_term_put_map(e, n);
		return rc == WISP_TERM_OK ? copy_n(d, e, depth + 1, 2 * (uint64_t)n) : rc;
	}
	if ((rc = wisp_term_get_list(d, &n)) == WISP_TERM_OK)
		wisp_term_put_list(e, n);
	return rc == WISP_TERM_OK ? copy_n(d, e, depth + 1, (uint64_t)n + 1) : rc;
}

static size_t unhex(const char *s, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	unsigned byte;
	while (n < cap && sscanf(s + 2 * n, "%2x", &byte) == 1)
		buf[n++] = (uint8_t)byte;
	return n;
}

static void print_hex(const char *what, const uint8_t *b, size_t n)
{
	printf("%s ", what);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

/* The term arrives as a message, as it would from Erlang. */
static int via_mailbox(const uint8_t *term, size_t len, size_t *got)
{
	uint64_t tag = WISP_TAG_TERM;
	struct wisp_msg_info info;
	if (wisp_send(wisp_self(), WISP_TAG_TERM, term, (uint32_t)len) != WISP_OK ||
	    wisp_receive(&tag, 1, WISP_INFINITY, msg, sizeof msg, &info) != WISP_OK ||
	    info.tag != WISP_TAG_TERM)
		abort();
	*got = info.len;
	return 0;
}

static void do_copy(const uint8_t *term, size_t len)
{
	struct wisp_term_dec d;
	struct wisp_term_enc e;
	size_t got;
	via_mailbox(term, len, &got);
	int rc = wisp_term_dec_init(&d, msg, got);
	wisp_term_enc_init(&e, out, sizeof out);
	if (rc == WISP_TERM_OK)
		rc = copy(&d, &e, 0);
	if (rc == WISP_TERM_OK && !wisp_term_dec_done(&d))
		rc = WISP_TERM_EBAD;
	if (rc == WISP_TERM_OK && wisp_term_enc_len(&e) < 0)
		rc = (int)wisp_term_enc_len(&e);
	if (rc == WISP_TERM_OK)
		print_hex("ok", out, e.len);
	else
		printf("error %d\n", rc);
}

static void do_pid(const uint8_t *term, size_t len)
{
	struct wisp_term_dec d;
	wisp_pid_t pid;
	int rc = wisp_term_dec_init(&d, term, len);
	if (rc == WISP_TERM_OK)
		rc = wisp_term_get_pid(&d, &pid);
	if (rc == WISP_TERM_OK)
		printf("pid %llu\n", (unsigned long long)pid);
	else
		printf("error %d\n", rc);
}

static void emit(const char *name, struct wisp_term_enc *e)
{
	if (wisp_term_enc_len(e) < 0)
		printf("%s error %d\n", name, (int)wisp_term_enc_len(e));
	else
		print_hex(name, e->buf, e->len);
}

#define BUILD(name, ...)                                 \
	do {                                             \
		struct wisp_term_enc e_;                 \
		struct wisp_term_enc *e = &e_;           \
		wisp_term_enc_init(e, out, sizeof out);  \
		__VA_ARGS__;                             \
		emit(name, e);                           \
	} while (0)

/* Names match test_term.py's table of what erl must read from each. */
static void do_build(void)
{
	static const int64_t ints[] = { 0, 127, 128, 255, 256, -1, -128, INT32_MAX, INT32_MIN,
	                                (int64_t)INT32_MAX + 1, (int64_t)INT32_MIN - 1,
	                                INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		char name[32];
		snprintf(name, sizeof name, "int:%lld", (long long)ints[i]);
		BUILD(name, wisp_term_put_int(e, ints[i]));
	}
	BUILD("uint_max", wisp_term_put_uint(e, UINT64_MAX));
	BUILD("float", wisp_term_put_float(e, 1.5));
	BUILD("float_tiny", wisp_term_put_float(e, 5e-324));
	BUILD("float_neg", wisp_term_put_float(e, -1e300));
	BUILD("atom", wisp_term_put_atom(e, "ok", 2));
	BUILD("atom_empty", wisp_term_put_atom(e, "", 0));
	BUILD("atom_utf8", wisp_term_put_atom(e, "h\xc3\xa9llo \xe2\x82\xac", 10));
	static char long_atom[255 * 3];
	for (int i = 0; i < 255; i++)
		memcpy(long_atom + 3 * i, "\xe2\x82\xac", 3);
	BUILD("atom_long", wisp_term_put_atom(e, long_atom, sizeof long_atom));
	BUILD("binary", wisp_term_put_binary(e, "\0\1\2\377", 4));
	BUILD("binary_empty", wisp_term_put_binary(e, "", 0));
	BUILD("string", wisp_term_put_string(e, "abc", 3));
	BUILD("string_empty", wisp_term_put_string(e, "", 0));
	static uint8_t long_string[70000];
	for (size_t i = 0; i < sizeof long_string; i++)
		long_string[i] = (uint8_t)('a' + i % 26);
	BUILD("string_long", wisp_term_put_string(e, long_string, sizeof long_string));
	BUILD("tuple", wisp_term_put_tuple(e, 2); wisp_term_put_atom(e, "ok", 2); wisp_term_put_int(e, 1));
	BUILD("tuple_empty", wisp_term_put_tuple(e, 0));
	BUILD("tuple_large", wisp_term_put_tuple(e, 300);
	      for (int i = 1; i <= 300; i++) wisp_term_put_int(e, i));
	BUILD("list", wisp_term_put_list(e, 2); wisp_term_put_int(e, 1); wisp_term_put_int(e, 1000);
	      wisp_term_put_nil(e));
	BUILD("list_improper", wisp_term_put_list(e, 1); wisp_term_put_atom(e, "a", 1);
	      wisp_term_put_atom(e, "b", 1));
	BUILD("map", wisp_term_put_map(e, 2); wisp_term_put_atom(e, "a", 1); wisp_term_put_int(e, 1);
	      wisp_term_put_atom(e, "b", 1); wisp_term_put_list(e, 1); wisp_term_put_atom(e, "x", 1);
	      wisp_term_put_nil(e));
	BUILD("map_empty", wisp_term_put_map(e, 0));
	BUILD("pid", wisp_term_put_pid(e, (wisp_pid_t)5 << 32 | 7));
	BUILD("pid_max", wisp_term_put_pid(e, UINT64_MAX));
	BUILD("nested", wisp_term_put_tuple(e, 3); wisp_term_put_atom(e, "reply", 5);
	      wisp_term_put_pid(e, 42); wisp_term_put_map(e, 1); wisp_term_put_binary(e, "k", 1);
	      wisp_term_put_list(e, 2); wisp_term_put_float(e, 0.25); wisp_term_put_string(e, "hi", 2);
	      wisp_term_put_nil(e));
	printf("end\n");
}

int main(void)
{
	while (fgets(line, sizeof line, stdin)) {
		char *arg = strchr(line, ' ');
		size_t len = arg ? unhex(arg + 1, in, sizeof in) : 0;
		if (strncmp(line, "copy ", 5) == 0)
			do_copy(in, len);
		else if (strncmp(line, "pid ", 4) == 0)
			do_pid(in, len);
		else if (strncmp(line, "build", 5) == 0)
			do_build();
		else
			printf("unknown command\n");
	}
	return 0;
}
