/*
 * sdk/c/wisp.c — the C helper library for wisp guests (ABI v1).
 *
 * Compile it together with the guest:
 *   clang --target=wasm32-wasi --sysroot=/usr -O2 -I<wisp>/include \
 *         app.c <wisp>/sdk/c/wisp.c -o app.wasm
 *
 * It provides the process entry the host calls in a spawned process
 * (wisp_spawn_entry) and the small helpers declared at the end of
 * include/wisp/guest.h (and the two that send terms, declared in
 * include/wisp/term.h: they read a struct wisp_term_enc's fields and call
 * no function of term.c, so a guest without term.c links). Everything
 * else is a direct host import.
 *
 * Static constructors. A spawned process is a fresh instance of the module
 * in which _start never runs, so whatever _start would have initialised
 * (wasi-libc's constructors: preopens, environ, the guest's own
 * __attribute__((constructor)) functions) must happen some other way.
 * wasm-ld does it for us (checked with Debian's LLD 14.0.6): in a command
 * module (linked with crt1-command.o, i.e. one with main/_start), every
 * function exported with export_name other than _start is exported through
 * a synthesised wrapper, `wisp_spawn_entry.command_export`, that calls
 * __wasm_call_ctors, then the function, then __wasm_call_dtors (which
 * flushes stdio). `wasm-objdump -d` on a module linked by wasm-ld alone
 * shows exactly that; clang -O2 then runs wasm-opt, which inlines the
 * three calls into one exported function. So this entry must NOT call
 * __wasm_call_ctors itself: constructors would run twice. The flip side:
 * a child's buffered stdout is flushed when its function returns, not when
 * it traps or is killed, and not when the runtime stops it because main
 * ended; a child that prints should fflush(stdout) or use write().
 * (A reactor module — -mexec-model=reactor — gets no such wrappers and
 * would need an _initialize call; wisp guests are command modules.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp/guest.h>
#include <wisp/term.h>

/* The host calls this in a new process: fn is the table index of a
 * wisp_fn (a C function pointer on wasm32 is its table index), arg_len the
 * length of the spawn argument. A bad fn traps here, in the child — the
 * call_indirect checks the index and the function's type. When fn returns,
 * the process ends with reason NORMAL. */
__attribute__((export_name("wisp_spawn_entry")))
void wisp_spawn_entry(uint32_t fn, uint32_t arg_len)
{
	/* Small arguments live on the stack: a process that never mallocs
	 * never touches the allocator's state or a heap page, which is most
	 * of what an idle process costs in memory. */
	unsigned char small[256];
	void *buf = arg_len <= sizeof(small) ? small : malloc(arg_len);
	if (!buf)
		__builtin_trap();
	uint32_t full = wisp_spawn_arg(buf, arg_len);
	if (full < arg_len)
		arg_len = full;
	((wisp_fn)(uintptr_t)fn)(buf, arg_len);
	if (buf != small)
		free(buf);
}

static wisp_pid_t spawn_with(wisp_fn fn, const void *arg, uint32_t len,
                             uint32_t flags, uint64_t *ref)
{
	struct wisp_spawned out = { 0, 0 };
	if (wisp_spawn_raw((uint32_t)(uintptr_t)fn, arg, len, flags, &out) != WISP_OK)
		return 0;
	if (ref)
		*ref = out.monitor;
	return out.pid;
}

int32_t wisp_node_spawn(const char *node, wisp_fn fn, const void *arg, uint32_t len,
                        uint32_t flags, struct wisp_spawned *out)
{
	/* A function pointer is its table index (see the top): the same in
	 * every instance of this module, on any node. */
	return wisp_node_spawn_raw(node, (uint32_t)strlen(node), (uint32_t)(uintptr_t)fn, arg, len,
	                           flags, out);
}

int32_t wisp_node_migrate(const char *node, wisp_fn fn, const void *state, uint32_t len)
{
	return wisp_node_migrate_raw(node, (uint32_t)strlen(node), (uint32_t)(uintptr_t)fn, state,
	                             len);
}

wisp_pid_t wisp_spawn(wisp_fn fn, const void *arg, uint32_t len)
{
	return spawn_with(fn, arg, len, 0, NULL);
}

wisp_pid_t wisp_spawn_link(wisp_fn fn, const void *arg, uint32_t len)
{
	return spawn_with(fn, arg, len, WISP_SPAWN_LINK, NULL);
}

wisp_pid_t wisp_spawn_monitor(wisp_fn fn, const void *arg, uint32_t len,
                              uint64_t *ref)
{
	return spawn_with(fn, arg, len, WISP_SPAWN_MONITOR, ref);
}

int32_t wisp_register_name(const char *name, wisp_pid_t pid)
{
	return wisp_register(name, (uint32_t)strlen(name), pid);
}

wisp_pid_t wisp_whereis_name(const char *name)
{
	wisp_pid_t pid = 0;
	if (wisp_whereis(name, (uint32_t)strlen(name), &pid) != WISP_OK)
		return 0;
	return pid;
}

void *wisp_read_file(const char *path, uint32_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	for (size_t got; b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap) {
			char *bigger = n < UINT32_MAX / 2 ? realloc(b, cap *= 2) : NULL;
			if (bigger == NULL)
				free(b);
			b = bigger;
		}
	}
	fclose(f);
	*len = (uint32_t)n;
	return b;
}

int32_t wisp_wait_down(uint64_t monitor, struct wisp_exit_reason *reason, char *text,
                       uint32_t cap)
{
	union { struct wisp_exit_reason r; char b[8 + 256]; } u;
	struct wisp_msg_info info;
	int32_t rc = wisp_receive(&monitor, 1, WISP_INFINITY, u.b, sizeof u.b, &info);
	if (rc != WISP_OK)
		return rc;
	*reason = u.r;
	if (cap > 0) {
		uint32_t n = info.len > 8 ? info.len - 8 : 0;
		if (n > cap - 1)
			n = cap - 1;
		memcpy(text, u.b + 8, n);
		text[n] = '\0';
	}
	return WISP_OK;
}

wisp_pid_t wisp_spawn_without_fs(wisp_fn fn, const void *arg, uint32_t len)
{
	int32_t h;
	if (wisp_caps_new(&h) != WISP_OK)
		return 0;
	struct wisp_spawned out = { 0, 0 };
	int32_t rc = wisp_caps_drop_dir(h, "", 0);
	if (rc == WISP_OK)
		rc = wisp_spawn_with(h, (uint32_t)(uintptr_t)fn, arg, len, 0, &out);
	wisp_caps_free(h);
	return rc == WISP_OK ? out.pid : 0;
}

int32_t wisp_node_connect_name(const char *node)
{
	return wisp_node_connect(node, (uint32_t)strlen(node));
}

int32_t wisp_node_send_name(const char *node, const char *name, uint64_t tag,
                            const void *data, uint32_t len)
{
	return wisp_node_send(node, (uint32_t)strlen(node), name, (uint32_t)strlen(name), tag,
	                      data, len);
}

/* Whether this runtime is a node: fixed for the run. */
static bool runtime_is_node(void)
{
	return wisp_node_name(NULL, 0) != 0;
}

uint32_t wisp_pid_pack(wisp_pid_t pid, void *buf, uint32_t cap)
{
	if (runtime_is_node()) {
		unsigned char b[WISP_PID_PACK_MAX];
		uint32_t n = wisp_node_pid_encode(pid, b, sizeof(b));
		if (n == 0 || n > sizeof(b))
			return 0;
		if (n <= cap)
			memcpy(buf, b, n);
		return n;
	}
	if (pid == 0)
		return 0;
	if (cap >= 8) {
		unsigned char *p = buf;
		for (int i = 0; i < 8; i++)
			p[i] = (unsigned char)(pid >> (8 * i));
	}
	return 8;
}

int32_t wisp_pid_unpack(const void *buf, uint32_t len, wisp_pid_t *pid)
{
	if (runtime_is_node())
		return wisp_node_pid_decode(buf, len, pid);
	if (len != 8)
		return WISP_EINVAL;
	const unsigned char *p = buf;
	wisp_pid_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	if (v == 0)
		return WISP_EINVAL;
	*pid = v;
	return WISP_OK;
}

/* The term e holds, or NULL if it is not whole (overflow, invalid). */
static const void *whole_term(const struct wisp_term_enc *e, uint32_t *len)
{
	if (e->overflow || e->invalid || (uint64_t)e->len > UINT32_MAX)
		return NULL;
	*len = (uint32_t)e->len;
	return e->buf;
}

int32_t wisp_term_send(wisp_pid_t pid, const struct wisp_term_enc *e)
{
	uint32_t len;
	const void *t = whole_term(e, &len);
	return t ? wisp_send(pid, WISP_TAG_TERM, t, len) : WISP_EINVAL;
}

int32_t wisp_term_send_name(const char *node, const char *name, const struct wisp_term_enc *e)
{
	uint32_t len;
	const void *t = whole_term(e, &len);
	return t ? wisp_node_send_name(node, name, WISP_TAG_TERM, t, len) : WISP_EINVAL;
}

/* ---- serving files ---- */

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

int32_t wisp_file_decode(const void *msg, const struct wisp_msg_info *info,
                         struct wisp_file_request *req)
{
	const uint8_t *m = msg;
	if (info->kind != WISP_MSG_DATA || info->tag != WISP_TAG_FILE ||
	    info->len < WISP_FILE_REQUEST_SIZE)
		return WISP_EINVAL;
	req->op = ld32(m);
	req->flags = ld32(m + 4);
	req->handle = ld64(m + 8);
	req->offset = ld64(m + 16);
	req->len = ld32(m + 24);
	req->rights = ld32(m + 28);
	req->data = m + WISP_FILE_REQUEST_SIZE;
	req->data_len = info->len - WISP_FILE_REQUEST_SIZE;
	req->from = info->from;
	req->ref = info->ref;
	return WISP_OK;
}

int32_t wisp_file_reply(const struct wisp_file_request *req, uint16_t error, uint8_t filetype,
                        uint64_t value, const void *data, uint32_t len)
{
	if (req->ref == 0)
		return WISP_OK;
	uint8_t *b = malloc(WISP_FILE_REPLY_SIZE + (size_t)len);
	if (b == NULL)
		return WISP_ENOMEM;
	memset(b, 0, WISP_FILE_REPLY_SIZE);
	memcpy(b, &error, 2);
	b[2] = filetype;
	memcpy(b + 4, &len, 4);
	memcpy(b + 8, &value, 8);
	if (len > 0)
		memcpy(b + WISP_FILE_REPLY_SIZE, data, len);
	int32_t rc = wisp_send(req->from, req->ref, b, WISP_FILE_REPLY_SIZE + len);
	free(b);
	return rc;
}

void wisp_file_stat(void *out, uint64_t ino, uint8_t filetype, uint64_t size)
{
	uint8_t *o = out;
	uint64_t nlink = 1;
	memset(o, 0, WISP_FILE_STAT_SIZE);
	memcpy(o + 8, &ino, 8);
	o[16] = filetype;
	memcpy(o + 24, &nlink, 8);
	memcpy(o + 32, &size, 8);
}

uint32_t wisp_file_dirent(void *buf, uint32_t room, uint64_t next, uint64_t ino, uint8_t type,
                          const char *name, uint32_t namelen)
{
	uint8_t hdr[WISP_FILE_DIRENT_SIZE] = { 0 };
	memcpy(hdr, &next, 8);
	memcpy(hdr + 8, &ino, 8);
	memcpy(hdr + 16, &namelen, 4);
	hdr[20] = type;
	uint32_t n = room < WISP_FILE_DIRENT_SIZE ? room : WISP_FILE_DIRENT_SIZE;
	memcpy(buf, hdr, n);
	uint32_t k = room - n < namelen ? room - n : namelen;
	memcpy((uint8_t *)buf + n, name, k);
	return n + k;
}

/* ---- TLS ---- */

static uint32_t text_len(const char *s)
{
	return s ? (uint32_t)strlen(s) : 0;
}

int32_t wisp_tls_client(int32_t fd, const char *server_name, const char *alpn,
                        const char *ca_file, uint32_t flags, int64_t timeout_ns)
{
	struct wisp_tls_options o = {
		.flags = flags,
		.server_name = server_name, .server_name_len = text_len(server_name),
		.alpn = alpn, .alpn_len = text_len(alpn),
		.ca_file = ca_file, .ca_file_len = text_len(ca_file),
	};
	return wisp_tls_connect(fd, &o, sizeof(o), timeout_ns);
}

int32_t wisp_tls_server(int32_t fd, const char *cert_file, const char *key_file,
                        const char *alpn, int64_t timeout_ns)
{
	struct wisp_tls_options o = {
		.alpn = alpn, .alpn_len = text_len(alpn),
		.cert_file = cert_file, .cert_file_len = text_len(cert_file),
		.key_file = key_file, .key_file_len = text_len(key_file),
	};
	return wisp_tls_accept(fd, &o, sizeof(o), timeout_ns);
}

int32_t wisp_tls_dial(const char *addr, uint32_t port, const char *server_name,
                      int64_t timeout_ns, int32_t *fd)
{
	int32_t rc = wisp_tcp_connect(addr, text_len(addr), port, timeout_ns, fd);
	if (rc != 0)
		return rc;
	if ((rc = wisp_tls_client(*fd, server_name, NULL, NULL, 0, timeout_ns)) != 0)
		close(*fd);
	return rc;
}

const char *wisp_tls_error(char *buf, uint32_t cap)
{
	char text[512];     /* the host keeps at most 400 bytes */
	uint32_t len = 0;
	if (cap == 0)
		return buf;
	if (wisp_tls_last_error(text, sizeof(text), &len) != 0)
		len = 0;
	if (len > cap - 1)
		len = cap - 1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	return buf;
}
