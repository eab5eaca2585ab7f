#!/usr/bin/env bash
# run.sh SECONDS [TARGET...] — run the module fuzzers (build/fuzz/, built by
# `make fuzz-build`) for SECONDS each, from the seed corpus
# (make_corpus.sh). New inputs go to build/fuzz/work-<target>/, crashes to
# build/fuzz/crash-<target>-*. Exit status: non-zero if a target found a
# crash. Prints libFuzzer's final stats line per target.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} = 0 ] && targets=(fuzz_read fuzz_codegen)
seeds=tests/fuzz/corpus
tests/fuzz/make_corpus.sh "$seeds" >&2
status=0
for t in "${targets[@]}"; do
	work=build/fuzz/work-$t
	mkdir -p "$work"
	log=build/fuzz/$t.log
	extra=()
	# wasm2c per accepted input: keep the inputs small so each costs ms.
	[ "$t" = fuzz_codegen ] && extra=(-max_len=8192 -timeout=20)
	[ "$t" = fuzz_read ] && extra=(-max_len=131072 -timeout=10)
	echo "fuzz: $t for ${secs}s" >&2
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	build/fuzz/$t -max_total_time="$secs" -print_final_stats=1 \
		-dict=tests/fuzz/wasm.dict -rss_limit_mb=1536 -malloc_limit_mb=1024 \
		-artifact_prefix="build/fuzz/crash-$t-" "${extra[@]}" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|reached codegen' "$log" | tail -4 >&2
	grep -E 'DONE|pulse|INITED' "$log" | tail -1 >&2
	if [ $rc != 0 ]; then
		echo "fuzz: $t FAILED (exit $rc); log: $log" >&2
		grep -E 'ERROR|SUMMARY|check failed|Test unit written' "$log" | head -5 >&2
		status=1
	fi
done
exit $status
