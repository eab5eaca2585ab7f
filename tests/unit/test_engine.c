/* Unit tests for src/engine: memories, tables, guest pointers, and real
 * compiled modules (through the pipeline) instantiated side by side. */
#include "unit.h"

#include <sys/mman.h>
#include "unit_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine_impl.h"

static void memory_grows_within_declared_max(void **state)
{
	wasm_rt_memory_t m;
	wasm_rt_allocate_memory(&m, 1, 3);
	assert_int_equal(m.size, 65536);
	assert_int_equal(m.pages, 1);
	m.data[65535] = 42;
	assert_int_equal(wasm_rt_grow_memory(&m, 1), 1);
	assert_int_equal(m.size, 2 * 65536);
	assert_int_equal(m.data[65535], 42);        /* contents survive a move */
	assert_int_equal(m.data[2 * 65536 - 1], 0); /* new pages are zero */
	assert_int_equal(wasm_rt_grow_memory(&m, 2), UINT32_MAX);
	assert_int_equal(wasm_rt_grow_memory(&m, 0), 2);
	assert_int_equal(wasm_rt_grow_memory(&m, 1), 2);
	assert_int_equal(wasm_rt_grow_memory(&m, 1), UINT32_MAX);
	wasm_rt_free_memory(&m);
	assert_null(m.data);
}

static void memory_zero_pages_then_grow(void **state)
{
	wasm_rt_memory_t m;
	wasm_rt_allocate_memory(&m, 0, 65536);
	assert_int_equal(m.size, 0);
	assert_int_equal(wasm_rt_grow_memory(&m, 2), 0);
	assert_int_equal(m.size, 2 * 65536);
	m.data[0] = 1;
	/* 65536 pages (4 GiB) cannot be represented in a 32-bit size. */
	assert_int_equal(wasm_rt_grow_memory(&m, 65534), UINT32_MAX);
	wasm_rt_free_memory(&m);
}

static void memory_limit_of_the_current_instance_applies(void **state)
{
	engine_instance fake;
	struct wisp_vmctx ctx;
	memset(&fake, 0, sizeof(fake));
	memset(&ctx, 0, sizeof(ctx));
	fake.vmctx = &ctx;   /* a real instance always has one */
	fake.limits.max_memory = 3 * 65536;
	engine_instance *prev = engine_set_current(&fake);
	wasm_rt_memory_t m;
	wasm_rt_allocate_memory(&m, 1, 65536);
	assert_int_equal(wasm_rt_grow_memory(&m, 2), 1);
	assert_int_equal(wasm_rt_grow_memory(&m, 1), UINT32_MAX);
	wasm_rt_free_memory(&m);
	engine_set_current(prev);
}

static void tables_grow_and_cap(void **state)
{
	wasm_rt_funcref_table_t t;
	wasm_rt_allocate_funcref_table(&t, 2, 4);
	assert_int_equal(t.size, 2);
	assert_null(t.data[1].func);
	wasm_rt_funcref_t init = { 7, (wasm_rt_function_ptr_t)tables_grow_and_cap, &t };
	assert_int_equal(wasm_rt_grow_funcref_table(&t, 2, init), 2);
	assert_int_equal(t.data[3].func_type, 7);
	assert_int_equal(wasm_rt_grow_funcref_table(&t, 1, init), UINT32_MAX);
	wasm_rt_free_funcref_table(&t);

	wasm_rt_externref_table_t e;
	wasm_rt_allocate_externref_table(&e, 0, UINT32_MAX);
	assert_int_equal(wasm_rt_grow_externref_table(&e, 3, &e), 0);
	assert_ptr_equal(e.data[2], &e);
	/* The hard cap keeps a guest from making the host allocate 2^32 slots. */
	assert_int_equal(wasm_rt_grow_externref_table(&e, UINT32_MAX - 3, NULL), UINT32_MAX);
	wasm_rt_free_externref_table(&e);
}

static void guest_pointers_are_bounds_checked(void **state)
{
	uint8_t buf[100];
	wasm_rt_memory_t m = { .data = buf, .pages = 0, .max_pages = 0, .size = 100 };
	assert_ptr_equal(engine_guest_ptr(&m, 0, 100), buf);
	assert_ptr_equal(engine_guest_ptr(&m, 100, 0), buf + 100);
	assert_null(engine_guest_ptr(&m, 100, 1));
	assert_null(engine_guest_ptr(&m, 1, 100));
	assert_null(engine_guest_ptr(&m, UINT32_MAX, 2));       /* no u32 wrap */
	assert_null(engine_guest_ptr(&m, 50, UINT64_MAX));
	assert_null(engine_guest_ptr(NULL, 0, 0));
}

static void trap_names_are_distinct(void **state)
{
	wasm_rt_trap_t kinds[] = {
		WASM_RT_TRAP_OOB, WASM_RT_TRAP_INT_OVERFLOW, WASM_RT_TRAP_DIV_BY_ZERO,
		WASM_RT_TRAP_INVALID_CONVERSION, WASM_RT_TRAP_UNREACHABLE,
		WASM_RT_TRAP_CALL_INDIRECT, WASM_RT_TRAP_EXHAUSTION,
	};
	size_t n = sizeof(kinds) / sizeof(kinds[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(engine_trap_name(kinds[i]), engine_trap_name(kinds[j]));
}

/* A module whose _start adds 1 to the i32 at address 0, then traps if the
 * i32 at address 4 is nonzero. */
static const char counter_wat[] =
	"(module\n"
	"  (memory (export \"memory\") 1)\n"
	"  (func $boom unreachable)\n"
	"  (func (export \"_start\")\n"
	"    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))\n"
	"    (if (i32.load (i32.const 4)) (then (call $boom)))))\n";

static int setup_module(void **state)
{
	*state = unit_module_build(counter_wat);
	return *state ? 0 : -1;
}

static int teardown_module(void **state)
{
	unit_module_free(*state);
	return 0;
}

static uint32_t word(engine_instance *in, uint32_t addr)
{
	uint32_t v;
	memcpy(&v, engine_instance_memory(in)->data + addr, 4);
	return v;
}

static void instances_share_nothing(void **state)
{
	struct unit_module *f = *state;
	struct engine_result r;
	engine_instance *a = engine_instance_new(f->mod, NULL, NULL, &r);
	engine_instance *b = engine_instance_new(f->mod, NULL, NULL, &r);
	assert_non_null(a);
	assert_non_null(b);
	engine_instance_run_start(a, &r);
	assert_int_equal(r.outcome, ENGINE_RETURNED);
	engine_instance_run_start(a, &r);
	engine_instance_run_start(b, &r);
	assert_int_equal(word(a, 0), 2);
	assert_int_equal(word(b, 0), 1);
	engine_instance_free(a);
	engine_instance_free(b);
}

/* A slot left in the pool gives its pages back at the second trim (the
 * first notes it idle), and the next memory from that slot starts from
 * zero as any other: _start counts 1, not 2. */
static void the_pool_gives_idle_slots_back(void **state)
{
	struct unit_module *f = *state;
	struct engine_result r;
	struct engine_limits lim = { 0 };
	lim.mem_pool = engine_mem_pool_new(1024);
	assert_non_null(lim.mem_pool);
	engine_instance *a = engine_instance_new(f->mod, NULL, &lim, &r);
	assert_non_null(a);
	engine_instance_run_start(a, &r);
	assert_int_equal(word(a, 0), 1);
	unsigned char *page = engine_instance_memory(a)->data;
	engine_instance_free(a);        /* its slot: dirty, resident */
	unsigned char v = 0;
	assert_int_equal(mincore(page, 4096, &v), 0);
	assert_true(v & 1);
	assert_int_equal(engine_mem_pool_trim(lim.mem_pool), 0);   /* noted */
	assert_true(engine_mem_pool_trim(lim.mem_pool) >= 1);      /* given back */
	assert_int_equal(mincore(page, 4096, &v), 0);
	assert_false(v & 1);
	engine_instance *b = engine_instance_new(f->mod, NULL, &lim, &r);
	assert_non_null(b);
	engine_instance_run_start(b, &r);
	assert_int_equal(word(b, 0), 1);
	engine_instance_free(b);
	engine_mem_pool_free(lim.mem_pool);
}

static void a_trap_ends_only_its_call(void **state)
{
	struct unit_module *f = *state;
	struct engine_result r;
	engine_instance *a = engine_instance_new(f->mod, NULL, NULL, &r);
	engine_instance *b = engine_instance_new(f->mod, NULL, NULL, &r);
	uint32_t one = 1;
	memcpy(engine_instance_memory(a)->data + 4, &one, 4);
	engine_instance_run_start(a, &r);
	assert_int_equal(r.outcome, ENGINE_TRAPPED);
	assert_int_equal(r.trap, WASM_RT_TRAP_UNREACHABLE);
	assert_string_equal(r.function, "boom");
	assert_null(engine_current());
	engine_instance_run_start(b, &r);
	assert_int_equal(r.outcome, ENGINE_RETURNED);
	assert_int_equal(word(b, 0), 1);
	/* The trapped instance can be entered again (its state is as the trap
	 * left it: the increment before the trap happened). */
	engine_instance_run_start(a, &r);
	assert_int_equal(r.outcome, ENGINE_TRAPPED);
	assert_int_equal(word(a, 0), 2);
	engine_instance_free(a);
	engine_instance_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memory_grows_within_declared_max),
		cmocka_unit_test(memory_zero_pages_then_grow),
		cmocka_unit_test(memory_limit_of_the_current_instance_applies),
		cmocka_unit_test(tables_grow_and_cap),
		cmocka_unit_test(guest_pointers_are_bounds_checked),
		cmocka_unit_test(trap_names_are_distinct),
	};
	const struct CMUnitTest module_tests[] = {
		cmocka_unit_test(instances_share_nothing),
		cmocka_unit_test(the_pool_gives_idle_slots_back),
		cmocka_unit_test(a_trap_ends_only_its_call),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	failed += cmocka_run_group_tests(module_tests, setup_module, teardown_module);
	return failed != 0;
}
