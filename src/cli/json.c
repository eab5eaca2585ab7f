/*
 * json.c — a small reader for the JSON wisp's own node writes (listing.c,
 * observe.c): objects, arrays, strings, integers, true, false, null.
 *
 * Recursive descent over a NUL-terminated line, bounded in depth. It
 * accepts what RFC 8259 accepts except fractions and exponents (wisp
 * writes integers only); \u escapes become UTF-8 (a lone surrogate
 * becomes U+FFFD). What it reads still comes from another process: the
 * caller escapes strings again before a terminal sees them.
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH 32
#define FLAT_STRING_MAX 2048

struct cursor {
	const char *p;
	int depth;
};

static void blanks(struct cursor *c)
{
	while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
		c->p++;
}

static int hexval(char h)
{
	return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
	       h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

static size_t utf8(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* The string at c (at its quote) unescaped into out (cap bytes: longer
 * ones are cut, NUL-terminated); c moves past it. False if malformed. */
static bool string_into(struct cursor *c, char *out, size_t cap)
{
	if (*c->p != '"')
		return false;
	c->p++;
	size_t n = 0;
	while (*c->p != '"') {
		char ch = *c->p++;
		char buf[4];
		size_t len = 1;
		buf[0] = ch;
		if (ch == '\0' || (unsigned char)ch < 0x20)
			return false;
		if (ch == '\\') {
			char e = *c->p++;
			const char *simple = e != '\0' ? strchr("\"\\/bfnrt", e) : NULL;
			if (simple != NULL) {
				buf[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
			} else if (e == 'u') {
				uint32_t cp = 0;
				for (int i = 0; i < 4; i++) {
					int h = hexval(c->p[i]);
					if (h < 0)
						return false;
					cp = cp << 4 | (uint32_t)h;
				}
				c->p += 4;
				if (cp >= 0xd800 && cp < 0xe000)
					cp = 0xfffd;
				len = utf8(cp, buf);
			} else {
				return false;
			}
		}
		if (n + len < cap) {
			memcpy(out + n, buf, len);
			n += len;
		}
	}
	c->p++;
	out[n] = '\0';
	return true;
}

/* The string at c in a new buffer, or NULL. */
static char *string(struct cursor *c)
{
	size_t len = 0;
	for (const char *q = c->p + 1; *q != '"' && *q != '\0'; q++, len++)
		if (*q == '\\' && q[1] != '\0')
			q++;
	char *out = malloc(3 * len + 1);
	if (out != NULL && !string_into(c, out, 3 * len + 1)) {
		free(out);
		out = NULL;
	}
	return out;
}

static bool number(struct cursor *c, struct json *v)
{
	const char *s = c->p;
	bool neg = *s == '-';
	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long u = strtoull(s, &end, 10);
	if (errno != 0 || *end == '.' || *end == 'e' || *end == 'E' ||
	    u > (neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX))
		return false;
	v->type = JSON_NUMBER;
	v->num = neg ? (int64_t)(0 - u) : (int64_t)u;
	c->p = end;
	return true;
}

static bool literal(struct cursor *c, struct json *v)
{
	static const struct { const char *word; enum json_type type; } lits[] = {
		{ "true", JSON_TRUE }, { "false", JSON_FALSE }, { "null", JSON_NULL },
	};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(lits[i].word);
		if (strncmp(c->p, lits[i].word, n) == 0) {
			v->type = lits[i].type;
			c->p += n;
			return true;
		}
	}
	return false;
}

static bool value(struct cursor *c, struct json *v);

/* Members or items up to the closing bracket (c at the opening one). */
static bool aggregate(struct cursor *c, struct json *v, bool object)
{
	if (++c->depth > JSON_DEPTH)
		return false;
	v->type = object ? JSON_OBJECT : JSON_ARRAY;
	c->p++;
	blanks(c);
	size_t cap = 0;
	for (bool first = true; *c->p != (object ? '}' : ']'); first = false) {
		if (!first) {
			if (*c->p != ',')
				return false;
			c->p++;
			blanks(c);
		}
		if (v->n == cap) {
			cap = cap ? 2 * cap : 8;
			struct json *items = realloc(v->items, cap * sizeof(*items));
			if (items == NULL)
				return false;
			v->items = items;
			if (object) {
				char **keys = realloc(v->keys, cap * sizeof(*keys));
				if (keys == NULL)
					return false;
				v->keys = keys;
			}
		}
		char *key = NULL;
		if (object) {
			if ((key = string(c)) == NULL)
				return false;
			blanks(c);
			if (*c->p != ':') {
				free(key);
				return false;
			}
			c->p++;
			blanks(c);
			v->keys[v->n] = key;
		}
		memset(&v->items[v->n], 0, sizeof(v->items[v->n]));
		v->n++;   /* (counted before it is read: freed on failure) */
		if (!value(c, &v->items[v->n - 1]))
			return false;
		blanks(c);
	}
	c->p++;
	c->depth--;
	return true;
}

static bool value(struct cursor *c, struct json *v)
{
	blanks(c);
	switch (*c->p) {
	case '{': return aggregate(c, v, true);
	case '[': return aggregate(c, v, false);
	case '"':
		v->type = JSON_STRING;
		return (v->str = string(c)) != NULL;
	default:
		return number(c, v) || literal(c, v);
	}
}

static void release(struct json *v)
{
	for (size_t i = 0; i < v->n; i++) {
		release(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
}

struct json *json_parse(const char *text)
{
	struct json *v = calloc(1, sizeof(*v));
	struct cursor c = { text, 0 };
	if (v == NULL)
		return NULL;
	bool ok = value(&c, v);
	blanks(&c);
	if (!ok || *c.p != '\0') {
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json *v)
{
	if (v == NULL)
		return;
	release(v);
	free(v);
}

const struct json *json_get(const struct json *o, const char *key)
{
	if (o == NULL || o->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

const char *json_str(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);
	return v != NULL && v->type == JSON_STRING ? v->str : "";
}

int64_t json_num(const struct json *o, const char *key, int64_t def)
{
	const struct json *v = json_get(o, key);
	return v != NULL && v->type == JSON_NUMBER ? v->num : def;
}

bool json_bool(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);
	return v != NULL && v->type == JSON_TRUE;
}

/* Skip a nested value (c at its bracket). */
static bool skip(struct cursor *c)
{
	struct json v = { 0 };
	bool ok = value(c, &v);
	release(&v);
	return ok;
}

bool json_each(const char *text, void (*each)(const char *key, const struct json *value, void *ctx),
               void *ctx)
{
	struct cursor c = { text, 0 };
	char key[128], str[FLAT_STRING_MAX];
	blanks(&c);
	if (*c.p != '{')
		return false;
	c.p++;
	blanks(&c);
	for (bool first = true; *c.p != '}'; first = false) {
		if (!first) {
			if (*c.p != ',')
				return false;
			c.p++;
			blanks(&c);
		}
		if (!string_into(&c, key, sizeof(key)))
			return false;
		blanks(&c);
		if (*c.p != ':')
			return false;
		c.p++;
		blanks(&c);
		struct json v = { 0 };
		if (*c.p == '{' || *c.p == '[') {
			if (!skip(&c))
				return false;
		} else if (*c.p == '"') {
			v.type = JSON_STRING;
			v.str = str;
			if (!string_into(&c, str, sizeof(str)))
				return false;
			each(key, &v, ctx);
		} else {
			if (!number(&c, &v) && !literal(&c, &v))
				return false;
			each(key, &v, ctx);
		}
		blanks(&c);
	}
	return true;
}
