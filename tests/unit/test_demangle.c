/* test_demangle.c — Rust symbol names as backtraces show them
 * (src/engine/demangle.c): legacy and v0 manglings, LLVM's suffixes, and
 * names that are neither (or broken) shown as they are. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"

static void shows(const char *raw, const char *want)
{
	char out[128];
	engine_display_name(raw, out, sizeof(out));
	assert_string_equal(out, want);
}

static void legacy_names(void **state)
{
	(void)state;
	shows("_ZN4wisp5spawn10trampoline17h114a2c160d85eaccE", "wisp::spawn::trampoline");
	shows("_ZN4wisp5spawn10trampoline17h114a2c160d85eaccE.llvm.13797362291850419371",
	      "wisp::spawn::trampoline");
	shows("_ZN4core3ptr42drop_in_place$LT$alloc..string..String$GT$17h0123456789abcdefE",
	      "core::ptr::drop_in_place<alloc::string::String>");
	/* C++'s _ZN names have no hash: not Rust's, shown raw. */
	shows("_ZN3foo3barEv", "_ZN3foo3barEv");
}

static void v0_names(void **state)
{
	(void)state;
	shows("_RNvNtCs4FeGRwF264R_4core9panicking9panic_fmt", "core::panicking::panic_fmt");
	shows("_RNCNvNtCsk6DxXIiz9X2_3std9panicking13panic_handler0B5_",
	      "std::panicking::panic_handler::{closure#0}");
	shows("_RNCNvCs1_3app4mains_0B3_", "app::main::{closure#1}");
	/* Generic arguments are not read: the path up to them. */
	shows("_RINvNtNtCsk6DxXIiz9X2_3std3sys9backtrace26___rust_end_short_backtrace"
	      "NCNvNtB6_9panicking13panic_handler0zEB6_",
	      "std::sys::backtrace::__rust_end_short_backtrace");
	/* Impl paths are not read: raw. */
	shows("_RNvMNtCs1_4core3fmtNtB2_9Formatter3pad", "_RNvMNtCs1_4core3fmtNtB2_9Formatter3pad");
	shows("plain_c_function", "plain_c_function");
}

/* Every prefix of these names, and a name of each byte: an answer, never a
 * read past the NUL (ASan) or a hang. */
static void broken_names_are_shown_raw(void **state)
{
	(void)state;
	static const char *names[] = {
		"_RNCNvNtCsk6DxXIiz9X2_3std9panicking13panic_handler0B5_",
		"_RINvNtNtCsk6DxXIiz9X2_3std3sys9backtrace26___rust_end_short_backtraceB6_",
		"_ZN4wisp5spawn10trampoline17h114a2c160d85eaccE",
		"_RNvB0_3foo", "_RNvB_3foo", "_RNvNvNvNvB2_1a1b1c1d", "_RC999999999999999999999",
	};
	char out[16];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (size_t n = 0; n <= strlen(names[i]); n++) {
			char *cut = strndup(names[i], n);
			assert_non_null(cut);
			engine_display_name(cut, out, sizeof(out));
			assert_true(strlen(out) < sizeof(out));
			free(cut);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(legacy_names),
		cmocka_unit_test(v0_names),
		cmocka_unit_test(broken_names_are_shown_raw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
