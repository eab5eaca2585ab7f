/* Unit tests for the runtime as a whole (src/proc over src/sched): real
 * modules run as processes through rt_run_main (each run takes over a
 * module of its own, loaded from one compiled build). Two runtimes live in one
 * OS process at once — the "no globals" rule, tested — and the hard modes
 * (one scheduler, a reduction budget of 1) change nothing but speed. */
#include "unit.h"
#include "unit_module.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "proc/caps.h"
#include "proc/proc.h"

/* _start spawns N children, each given the parent's pid as its argument;
 * every child sends one message back (tag 7) and the parent counts them,
 * then exits with the count. */
static const char fan_wat[] =
	"(module\n"
	"  (type $t (func))\n"
	"  (import \"wisp_process\" \"spawn\" (func $spawn (param i32 i32 i32 i32 i32) (result i32)))\n"
	"  (import \"wisp_process\" \"self\" (func $self (result i64)))\n"
	"  (import \"wisp_process\" \"spawn_arg\" (func $arg (param i32 i32) (result i32)))\n"
	"  (import \"wisp_message\" \"send\" (func $send (param i64 i64 i32 i32) (result i32)))\n"
	"  (import \"wisp_message\" \"receive\" (func $recv (param i32 i32 i64 i32 i32 i32) (result i32)))\n"
	"  (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n"
	"  (memory (export \"memory\") 1)\n"
	"  (table 1 funcref)\n"
	"  (elem (i32.const 0) $child)\n"
	"  (func $child\n"
	"    (drop (call $arg (i32.const 64) (i32.const 8)))\n"
	"    (drop (call $send (i64.load (i32.const 64)) (i64.const 7) (i32.const 0) (i32.const 0))))\n"
	"  (func (export \"wisp_spawn_entry\") (param i32 i32)\n"
	"    (call_indirect (type $t) (local.get 0)))\n"
	"  (func (export \"_start\") (local $i i32) (local $n i32)\n"
	"    (i64.store (i32.const 0) (call $self))\n"
	"    (block $done (loop $l\n"
	"      (br_if $done (i32.ge_u (local.get $i) (i32.const 200)))\n"
	"      (if (call $spawn (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 16))\n"
	"        (then unreachable))\n"
	"      (local.set $i (i32.add (local.get $i) (i32.const 1)))\n"
	"      (br $l)))\n"
	"    (block $got (loop $r\n"
	"      (br_if $got (i32.ge_u (local.get $n) (i32.const 200)))\n"
	"      (if (call $recv (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 32)\n"
	"                      (i32.const 8) (i32.const 128))\n"
	"        (then unreachable))\n"
	"      (local.set $n (i32.add (local.get $n) (i32.const 1)))\n"
	"      (br $r)))\n"
	"    (call $exit (local.get $n))))\n";

static int setup_module(void **state)
{
	*state = unit_module_build(fan_wat);
	return *state ? 0 : -1;
}

static int teardown_module(void **state)
{
	unit_module_free(*state);
	return 0;
}

struct run {
	struct unit_module *f;
	int schedulers;
	int64_t reductions;
	int rc;
	struct engine_result res;
	struct reason why;
	char err[256];
};

static void *run_main(void *arg)
{
	struct run *r = arg;
	struct caps *root = caps_new();
	root->may_spawn = true;
	root->may_create_caps = true;
	if (caps_finish(root) != 0) {
		r->rc = -1;
		return NULL;
	}
	struct rt_config cfg = {
		.schedulers = r->schedulers,
		.reductions = r->reductions,
		.root = root,
		.hooks = &host_proc_hooks,
	};
	engine_module *mod = unit_module_again(r->f);
	r->rc = mod == NULL ? -1 : rt_run_main(mod, &cfg, &r->res, &r->why, r->err, sizeof(r->err));
	caps_unref(root);
	return NULL;
}

static void assert_counted_all(const struct run *r)
{
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->res.outcome, ENGINE_EXITED);
	assert_int_equal(r->res.exit_code, 200);
	assert_int_equal(r->why.kind, WISP_EXIT_CODE);
}

static void one_runtime_runs_processes(void **state)
{
	struct unit_module *f = *state;
	struct run r = { .f = f, .schedulers = 2 };
	run_main(&r);
	assert_counted_all(&r);
}

/* Two runtimes at once in one OS process share nothing: each counts its
 * own children's messages, none strays into the other. */
static void two_runtimes_in_one_process(void **state)
{
	struct unit_module *f = *state;
	struct run a = { .f = f, .schedulers = 2 };
	struct run b = { .f = f, .schedulers = 3 };
	pthread_t ta, tb;
	for (int round = 0; round < 5; round++) {
		pthread_create(&ta, NULL, run_main, &a);
		pthread_create(&tb, NULL, run_main, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		assert_counted_all(&a);
		assert_counted_all(&b);
	}
}

/* Hard modes: one scheduler, and a slice of one reduction. */
static void hard_modes_change_nothing_but_speed(void **state)
{
	struct unit_module *f = *state;
	struct run one = { .f = f, .schedulers = 1 };
	run_main(&one);
	assert_counted_all(&one);
	struct run tiny = { .f = f, .schedulers = 2, .reductions = 1 };
	run_main(&tiny);
	assert_counted_all(&tiny);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_runtime_runs_processes),
		cmocka_unit_test(two_runtimes_in_one_process),
		cmocka_unit_test(hard_modes_change_nothing_but_speed),
	};
	return cmocka_run_group_tests(tests, setup_module, teardown_module);
}
