/*
 * test_dist_moved.c — one node's table of processes that moved
 * (src/dist/moved.c): entries found by pid after the table grows, none
 * beyond MOVED_MAX (a peer decides how many it claims), pid 0 refused.
 */
#include "unit.h"

#include "dist/moved.h"

static void entries_are_found_after_growing(void **state)
{
	(void)state;
	struct moved_map m = { 0 };
	assert_null(moved_find(&m, 5));
	for (uint64_t k = 1; k <= 1000; k++) {
		struct moved *e = moved_add(&m, k * 7919, k, k % 2 ? MOVED_MARKED : MOVED_TOLD);
		assert_non_null(e);
		assert_int_equal(e->old, k * 7919);
	}
	for (uint64_t k = 1; k <= 1000; k++) {
		struct moved *e = moved_find(&m, k * 7919);
		assert_non_null(e);
		assert_int_equal(e->now, k);
		assert_int_equal(e->state, k % 2 ? MOVED_MARKED : MOVED_TOLD);
	}
	assert_null(moved_find(&m, 7918));
	assert_int_equal(m.n, 1000);
	moved_free(&m);
	assert_null(moved_find(&m, 7919));
}

static void the_table_is_bounded(void **state)
{
	(void)state;
	struct moved_map m = { 0 };
	uint64_t remote = 1ull << 63;
	for (uint64_t k = 0; k < MOVED_MAX; k++)
		assert_non_null(moved_add(&m, remote | k << 32 | 1, 1, MOVED_ACTIVE));
	assert_null(moved_add(&m, remote | 2, 1, MOVED_ACTIVE));
	assert_int_equal(m.n, MOVED_MAX);
	assert_true(m.cap >= 2 * MOVED_MAX);
	for (uint64_t k = 0; k < MOVED_MAX; k += 97)
		assert_non_null(moved_find(&m, remote | k << 32 | 1));
	moved_free(&m);
}

static void pid_zero_is_no_entry(void **state)
{
	(void)state;
	struct moved_map m = { 0 };
	assert_null(moved_add(&m, 0, 1, MOVED_TOLD));
	assert_non_null(moved_add(&m, 1, 2, MOVED_TOLD));
	assert_null(moved_find(&m, 0));
	moved_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(entries_are_found_after_growing),
		cmocka_unit_test(the_table_is_bounded),
		cmocka_unit_test(pid_zero_is_no_entry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
