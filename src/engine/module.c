/*
 * module.c — loading a compiled module (a shared object from the compile
 * pipeline) and mapping native code addresses back to wasm functions.
 *
 * The shared object exports one symbol, wisp_module_v<ABI>, describing the
 * module (vmctx.h). It is opened RTLD_LOCAL, so any number of modules with
 * identical internal symbol names coexist. Its undefined symbols (wasm-rt.h's
 * runtime and the guest ABI) resolve against the wisp executable, which
 * exports exactly those (src/engine/exports.list).
 *
 * init_module() runs once per load with the module marked "loading" on this
 * thread, so function types register into this module's own table.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/sysinfo.h>

#include "engine_impl.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define MODULE_SYMBOL "wisp_module_v" STR(WISP_MODULE_ABI)

static _Thread_local engine_module *tl_loading;

/* Generated code is the only caller of these; referencing them here makes
 * any program that can load a module (the CLI, unit tests linking
 * libwisp.a) contain them. */
__attribute__((used)) static void (*const runtime_symbols[])(void) = {
	(void (*)(void))wasm_rt_allocate_memory,
	(void (*)(void))wasm_rt_grow_memory,
	(void (*)(void))wasm_rt_free_memory,
	(void (*)(void))wasm_rt_allocate_funcref_table,
	(void (*)(void))wasm_rt_allocate_externref_table,
	(void (*)(void))wasm_rt_free_funcref_table,
	(void (*)(void))wasm_rt_free_externref_table,
	(void (*)(void))wasm_rt_grow_funcref_table,
	(void (*)(void))wasm_rt_grow_externref_table,
	(void (*)(void))wasm_rt_register_func_type,
	(void (*)(void))wasm_rt_register_tag,
	(void (*)(void))wasm_rt_trap,
	(void (*)(void))wasm_rt_is_initialized,
	(void (*)(void))wisp_hook_slow,
};

engine_module *engine_loading_module(void)
{
	return tl_loading;
}

static int cmp_range(const void *a, const void *b)
{
	const struct fn_range *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

int engine_module_load(const char *so_path, int fd, engine_module **out,
                       char *err, size_t errlen)
{
	*out = NULL;
	/* dlopen takes a name it has loaded already for that object, without
	 * looking at the file: "/proc/self/fd/N" must name one module only, so
	 * the module keeps an fd of its own open (name_fd) while it is loaded.
	 * (With the caller's fd, a second module loaded through the same fd
	 * number ran the first one's code.) */
	char fd_path[64];
	int name_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	if (fd >= 0 && name_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot load compiled module %s: %s", so_path, strerror(e));
		return -e;
	}
	if (name_fd >= 0)
		snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", name_fd);
	void *dl = dlopen(name_fd >= 0 ? fd_path : so_path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		snprintf(err, errlen, "cannot load compiled module %s: %s",
		         so_path, dlerror());
		if (name_fd >= 0)
			close(name_fd);
		return -ENOEXEC;
	}
	const struct wisp_module_abi *abi = dlsym(dl, MODULE_SYMBOL);
	if (abi == NULL || abi->abi != WISP_MODULE_ABI) {
		snprintf(err, errlen, "%s is not a wisp module of ABI %d",
		         so_path, WISP_MODULE_ABI);
		dlclose(dl);
		if (name_fd >= 0)
			close(name_fd);
		return -ENOEXEC;
	}
	engine_module *m = calloc(1, sizeof(*m));
	struct fn_range *fns = calloc(abi->nfns ? abi->nfns : 1, sizeof(*fns));
	if (m == NULL || fns == NULL) {
		free(m);
		free(fns);
		dlclose(dl);
		if (name_fd >= 0)
			close(name_fd);
		snprintf(err, errlen, "out of memory loading %s", so_path);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < abi->nfns; i++) {
		fns[i].start = (uintptr_t)abi->fns[i].addr;
		fns[i].index = abi->fns[i].index;
		fns[i].name = abi->fns[i].name;
		fns[i].line_first = abi->fns[i].line_first;
		fns[i].line_last = abi->fns[i].line_last;
	}
	Dl_info info;
	m->path = strdup(so_path);
	m->sym = symbolizer_new();
	struct sysinfo si;
	m->swap = sysinfo(&si) != 0 || si.totalswap > 0;
	if (dladdr(abi, &info) != 0)
		m->base = (uintptr_t)info.dli_fbase;
	if (m->path == NULL || m->sym == NULL) {
		free(m->path);
		symbolizer_free(m->sym);
		free(m);
		free(fns);
		dlclose(dl);
		if (name_fd >= 0)
			close(name_fd);
		snprintf(err, errlen, "out of memory loading %s", so_path);
		return -ENOMEM;
	}
	qsort(fns, abi->nfns, sizeof(*fns), cmp_range);
	pthread_mutex_init(&m->spare_lock, NULL);
	m->dl = dl;
	m->name_fd = name_fd;
	m->abi = abi;
	m->fns = fns;
	m->nfns = abi->nfns;

	engine_module *prev = tl_loading;
	tl_loading = m;
	abi->init_module();
	tl_loading = prev;
	if (m->oom) {
		snprintf(err, errlen, "out of memory loading %s", so_path);
		engine_module_unload(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* Whether the object dlopen knows as "/proc/self/fd/fd" is still loaded
 * after our dlclose: another load of the same file shared it (dlopen
 * returns the object it has for a file and adds the new name to it).
 * Then the fd stays open, never to be reused while the name stands: a
 * module loaded through the same number would get this object's code.
 * (src/proc/modules.c loads a file once at a time, so this should not
 * happen; an fd left open is the price if it does.) */
static bool still_loaded(int fd)
{
	char name[64];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	void *dl = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
	if (dl != NULL)
		dlclose(dl);
	return dl != NULL;
}

void engine_module_unload(engine_module *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->ntypes; i++)
		free(m->types[i].types);
	free(m->types);
	free(m->fns);
	symbolizer_free(m->sym);
	engine_sources_unref(m->sources);
	engine_image_free(m->image);
	for (uint32_t i = 0; i < m->nspare; i++)
		free(m->spare[i]);
	pthread_mutex_destroy(&m->spare_lock);
	free(m->path);
	dlclose(m->dl);
	if (m->name_fd >= 0 && !still_loaded(m->name_fd))
		close(m->name_fd);   /* (after dlclose: the name is free again) */
	free(m);
}

void engine_module_set_successor(engine_module *m, engine_module *better)
{
	if (better->sources == NULL && m->sources != NULL)
		engine_module_set_sources(better, m->sources);
	atomic_store_explicit(&m->successor, better, memory_order_release);
}

void engine_module_set_sources(engine_module *m, struct engine_sources *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	engine_sources_unref(m->sources);
	m->sources = s;
}

void engine_sources_unref(struct engine_sources *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (uint32_t i = 0; i < s->nfiles; i++)
		free(s->files[i]);
	free(s->files);
	free(s->file);
	free(s->line);
	free(s);
}

engine_module *engine_module_latest(engine_module *m)
{
	for (engine_module *s; (s = atomic_load_explicit(&m->successor, memory_order_acquire)) != NULL;)
		m = s;
	return m;
}

void engine_module_set_owner(engine_module *m, void *owner)
{
	m->owner = owner;
}

void *engine_module_owner(const engine_module *m)
{
	return m->owner;
}

bool engine_module_has_start(const engine_module *m)
{
	return m->abi->start != NULL;
}
