/*
 * test_dist_xlink.c — one node's links and monitors (src/dist/xlink.c):
 * adding, finding by each key, removing, taking all, and many of them
 * (a peer decides how many: the set grows and stays exact).
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "dist/xlink.h"

static struct etf_ref ref_of(const char *node, uint32_t a, uint32_t b)
{
	struct etf_ref r = { node, strlen(node), 77, 3, { a, b, 9 } };
	return r;
}

static void links_are_found_by_both_ends(void **state)
{
	(void)state;
	struct xset s = { 0 };
	assert_non_null(xset_add(&s, X_LINK, 1, 100, 0, NULL, NULL, 0));
	assert_non_null(xset_add(&s, X_LINK, 2, 100, 0, NULL, NULL, 0));
	assert_non_null(xset_link(&s, 1, 100));
	assert_non_null(xset_link(&s, 2, 100));
	assert_null(xset_link(&s, 100, 1));
	assert_null(xset_link(&s, 1, 101));
	assert_null(xset_mon(&s, X_MON_OUT, 0));
	struct xlink *x = xset_link(&s, 1, 100);
	xset_remove(&s, x);
	free(x);
	assert_null(xset_link(&s, 1, 100));
	assert_non_null(xset_link(&s, 2, 100));
	assert_int_equal(s.n, 1);
	xset_free(&s);
	assert_int_equal(s.n, 0);
}

static void monitors_are_found_by_ref_and_by_the_peers_ref(void **state)
{
	(void)state;
	struct xset s = { 0 };
	char node[] = "peer@host", name[] = "echo";
	struct etf_ref r = ref_of(node, 5, 6);
	struct xlink *x = xset_add(&s, X_MON_IN, 1, 100, 42, &r, name, 4);
	assert_non_null(x);
	memset(node, 'z', 4);   /* the entry keeps copies */
	memset(name, 'z', 4);
	assert_non_null(xset_add(&s, X_MON_OUT, 1, 100, 43, NULL, NULL, 0));
	assert_ptr_equal(xset_mon(&s, X_MON_IN, 42), x);
	assert_null(xset_mon(&s, X_MON_OUT, 42));
	assert_non_null(xset_mon(&s, X_MON_OUT, 43));
	assert_memory_equal(x->eref.node, "peer@host", 9);
	assert_memory_equal(x->name, "echo", 4);
	assert_int_equal(x->namelen, 4);
	struct etf_ref same = ref_of("peer@host", 5, 6);
	assert_ptr_equal(xset_mon_in(&s, 100, &same), x);
	assert_null(xset_mon_in(&s, 101, &same));
	struct etf_ref other = ref_of("peer@host", 5, 7);
	assert_null(xset_mon_in(&s, 100, &other));
	other = ref_of("peer@hosu", 5, 6);
	assert_null(xset_mon_in(&s, 100, &other));
	xset_remove(&s, x);
	free(x);
	assert_null(xset_mon_in(&s, 100, &same));
	assert_null(xset_mon(&s, X_MON_IN, 42));
	xset_free(&s);
}

static void names_longer_than_a_node_name_are_refused(void **state)
{
	(void)state;
	struct xset s = { 0 };
	char big[300];
	memset(big, 'x', sizeof(big));
	struct etf_ref r = { big, sizeof(big), 1, 1, { 1 } };
	assert_null(xset_add(&s, X_MON_IN, 1, 2, 3, &r, NULL, 0));
	assert_null(xset_add(&s, X_MON_IN, 1, 2, 3, NULL, big, 256));
	assert_int_equal(s.n, 0);
	xset_free(&s);
}

static void many_entries_stay_exact(void **state)
{
	(void)state;
	struct xset s = { 0 };
	enum { N = 200000 };
	for (uint64_t k = 1; k <= N; k++) {
		struct etf_ref r = ref_of("p@h", (uint32_t)k, 0);
		assert_non_null(xset_add(&s, X_LINK, k % 7, 1000000 + k, 0, NULL, NULL, 0));
		assert_non_null(xset_add(&s, X_MON_IN, k % 7, 1000000 + k, k, &r, NULL, 0));
	}
	assert_int_equal(s.n, 2 * N);
	/* Remove every other one, by its keys. */
	for (uint64_t k = 1; k <= N; k += 2) {
		struct xlink *x = xset_link(&s, k % 7, 1000000 + k);
		assert_non_null(x);
		xset_remove(&s, x);
		free(x);
		struct etf_ref r = ref_of("p@h", (uint32_t)k, 0);
		x = xset_mon_in(&s, 1000000 + k, &r);
		assert_non_null(x);
		assert_int_equal(x->ref, k);
		xset_remove(&s, x);
		free(x);
	}
	assert_int_equal(s.n, N);
	for (uint64_t k = 1; k <= N; k++) {
		bool kept = k % 2 == 0;
		assert_int_equal(xset_link(&s, k % 7, 1000000 + k) != NULL, kept);
		assert_int_equal(xset_mon(&s, X_MON_IN, k) != NULL, kept);
	}
	/* Forgetting a local pid takes its links and monitors only. */
	xset_forget_local(&s, 3);
	for (uint64_t k = 2; k <= N; k += 2)
		assert_int_equal(xset_link(&s, k % 7, 1000000 + k) != NULL, k % 7 != 3);
	/* Taking all leaves an empty set that works. */
	uint32_t left = s.n, taken = 0;
	struct xlink *all = xset_take(&s);
	while (all != NULL) {
		struct xlink *next = all->chain[0];
		free(all);
		taken++;
		all = next;
	}
	assert_int_equal(taken, left);
	assert_int_equal(s.n, 0);
	assert_null(xset_link(&s, 2 % 7, 1000002));
	assert_non_null(xset_add(&s, X_LINK, 1, 2, 0, NULL, NULL, 0));
	xset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(links_are_found_by_both_ends),
		cmocka_unit_test(monitors_are_found_by_ref_and_by_the_peers_ref),
		cmocka_unit_test(names_longer_than_a_node_name_are_refused),
		cmocka_unit_test(many_entries_stay_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
