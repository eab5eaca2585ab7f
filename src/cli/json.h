/*
 * json.h — reading the JSON a wisp node writes (json.c): its listings'
 * flat objects a member at a time, without allocating (a million lines),
 * and a detail's object as a small tree.
 */
#ifndef WISP_CLI_JSON_H
#define WISP_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json {
	enum json_type type;
	char *str;               /* STRING: unescaped, NUL-terminated */
	int64_t num;             /* NUMBER: integers only (what wisp writes) */
	struct json *items;      /* ARRAY, OBJECT: n values */
	char **keys;             /* OBJECT: their keys */
	size_t n;
};

/* The value of text (one JSON value, nothing but blanks after it), or
 * NULL if it is malformed, nested more than 32 deep, or memory ran out.
 * Free with json_free. */
struct json *json_parse(const char *text);
void json_free(struct json *v);
/* Member key of object o, or NULL. */
const struct json *json_get(const struct json *o, const char *key);
/* Its string ("" if absent or not one) / integer (def if absent). */
const char *json_str(const struct json *o, const char *key);
int64_t json_num(const struct json *o, const char *key, int64_t def);
bool json_bool(const struct json *o, const char *key);

/* A flat object's members one at a time: calls each(key, value, ctx)
 * with the key unescaped and value a parsed scalar (a string, a number,
 * true/false/null; nested values are skipped). Strings over 1 KiB are
 * cut. False if text is not an object. */
bool json_each(const char *text, void (*each)(const char *key, const struct json *value, void *ctx),
               void *ctx);

#endif
