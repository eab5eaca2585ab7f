#!/usr/bin/env bash
# make_corpus.sh [DIR] — seed corpus for the module fuzzers (default
# tests/fuzz/corpus/): real modules built from the test guests (C with the
# SDK, the examples) and small WAT modules covering every section kind.
# Nothing here is committed; it is rebuilt when missing. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$root/tests/fuzz/corpus}
mkdir -p "$out"
clang=${WISP_CLANG:-clang}
sysroot=${WISP_WASI_SYSROOT:-/usr}

for src in "$root"/tests/guests/c/*.c; do
	name=$(basename "$src" .c)
	[ -s "$out/c_$name.wasm" ] && continue
	# -Os and stripped debug info: small seeds mutate better.
	"$clang" --target=wasm32-wasi --sysroot="$sysroot" -Os -I "$root/include" \
		-Wl,--strip-debug -o "$out/c_$name.wasm" "$src" "$root/sdk/c/wisp.c" 2>/dev/null ||
		echo "make_corpus: skipped $name (does not build)" >&2
done
[ -s "$root/examples/hello.wasm" ] && cp -f "$root/examples/hello.wasm" "$out/example_hello.wasm"

wat() { # wat NAME TEXT
	[ -s "$out/wat_$1.wasm" ] && return 0
	local tmp
	tmp=$(mktemp --suffix=.wat)
	printf '%s\n' "$2" >"$tmp"
	wat2wasm --debug-names "$tmp" -o "$out/wat_$1.wasm" ||
		echo "make_corpus: wat $1 failed" >&2
	rm -f "$tmp"
}

wat hello '(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "\10\00\00\00\06\00\00\00hello\n")
  (func (export "_start") (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))))'
wat empty '(module)'
wat start_only '(module (func $main) (export "_start" (func $main)))'
wat everything '(module
  (type $t (func (param i32) (result i32)))
  (import "wisp_process" "self" (func $self (result i64)))
  (import "wisp_message" "send" (func $send (param i64 i64 i32 i32) (result i32)))
  (import "wisp_timer" "sleep" (func $sleep (param i64)))
  (import "wisp_registry" "whereis" (func $whereis (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1 2)
  (table $tab 4 funcref)
  (global $g (mut i32) (i32.const 7))
  (global $c i64 (i64.const -1))
  (elem (table $tab) (i32.const 0) func $id $loop)
  (data (i32.const 0) "wisp")
  (data $passive "abc")
  (func $id (type $t) (local.get 0))
  (func $loop (type $t) (local i64 f32 f64)
    (block $out (loop $l
      (br_if $out (i32.eqz (local.get 0)))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (br $l)))
    (memory.init $passive (i32.const 100) (i32.const 0) (i32.const 3))
    (call_indirect (type $t) (global.get $g) (i32.const 0)))
  (func $main
    (drop (call $loop (i32.const 10)))
    (drop (call $send (call $self) (i64.const 1) (i32.const 0) (i32.const 4)))
    (call $sleep (i64.const 0))
    (drop (call $whereis (i32.const 0) (i32.const 4) (i32.const 16))))
  (func (export "wisp_spawn_entry") (param i32 i32))
  (start $id_start)
  (func $id_start)
  (export "_start" (func $main)))'
wat multi '(module
  (func $pair (result i32 i64) (i32.const 1) (i64.const 2))
  (func (export "_start") (call $pair) (drop) (drop)
    (v128.const i32x4 1 2 3 4) (drop)
    (ref.null extern) (drop))
  (table 1 externref))'
wat trap '(module (memory 1) (func (export "_start") (drop (i32.load (i32.const 70000))) unreachable))'
echo "make_corpus: $(ls "$out" | wc -l) seeds in $out ($(du -sh "$out" | cut -f1))"
