#!/usr/bin/env bash
# setup-rust-wasm.sh — prepare a Rust standard library for wasm32-wasip1
# without rustup and without crates.io.
#
# Debian 12 packages a modern Rust (rustc-web, cargo-web) and std's source
# with its dependencies vendored (rust-web-src), but no prebuilt std for
# wasm32-wasip1. We build one, once per rustc version:
#
#   1. a throwaway #![no_std] crate is built with
#      `-Zbuild-std=std,panic_abort --target wasm32-wasip1`, with crates-io
#      replaced by the vendored sources and cargo offline;
#   2. the std rlibs it produced become <sysroot>/lib/rustlib/wasm32-wasip1/lib;
#   3. wasi-libc's crt1*.o and lib*.a (Debian's wasi-libc) become its
#      self-contained/ directory, which rustc links into every wasip1 binary;
#   4. Debian's 2022 wasi-libc has no pthread_*, yet std references
#      pthread_create & co. as soon as a program mentions std::thread. Stubs
#      that fail with ENOTSUP (pthread_stubs.c beside this script) are added to
#      the sysroot's copy of libc.a, so thread::Builder::spawn returns Err
#      instead of the link failing;
#   5. the host target's directory is a symlink to Debian's, so build scripts
#      and proc-macros still find the host std.
#
# The sysroot is complete when its stamp file records the same inputs (rustc,
# wasi-libc, this script's recipe); then the script does nothing. It is built
# in a temporary directory next to its final place and renamed into place, so
# an interrupted run never leaves a half sysroot behind.
#
# Usage: scripts/setup-rust-wasm.sh [--print-sysroot]
# Environment: WISP_RUST_SYSROOT (default /var/cache/wisp/rust-sysroot-<ver>),
#              WISP_RUSTC, WISP_CARGO (default /usr/bin/rustc, /usr/bin/cargo).
# Users with rustup do not need any of this: `rustup target add wasm32-wasip1`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rustc=${WISP_RUSTC:-/usr/bin/rustc}
cargo=${WISP_CARGO:-/usr/bin/cargo}
target=wasm32-wasip1
host=x86_64-unknown-linux-gnu
wasi_libc=${WISP_WASI_LIBDIR:-/usr/lib/wasm32-wasi}
# Bump when the recipe changes, so existing sysroots are rebuilt.
recipe=3

die() { echo "setup-rust-wasm: error: $*" >&2; exit 1; }

[ -x "$rustc" ] || die "$rustc not found (Debian: apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22)"
[ -x "$cargo" ] || die "$cargo not found (Debian: apt-get install cargo-web)"
version=$("$rustc" --version | awk '{print $2}')
sysroot=${WISP_RUST_SYSROOT:-/var/cache/wisp/rust-sysroot-$version}

if [ "${1:-}" = "--print-sysroot" ]; then
	echo "$sysroot"
	exit 0
fi

host_sysroot=$("$rustc" --print sysroot)
library=$host_sysroot/lib/rustlib/src/rust/library
[ -f "$library/Cargo.lock" ] || die "std source not found at $library (Debian: apt-get install rust-web-src)"
[ -d "$library/vendor" ] || die "std's vendored dependencies not found at $library/vendor"
[ -f "$wasi_libc/libc.a" ] || die "wasi-libc not found at $wasi_libc (Debian: apt-get install wasi-libc)"
command -v clang >/dev/null || die "clang not found (needed for the pthread stubs)"
command -v llvm-ar-22 >/dev/null || command -v llvm-ar >/dev/null || command -v ar >/dev/null \
	|| die "no archiver (llvm-ar or ar) found"

wasi_libc_ver=$(dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null || sha256sum "$wasi_libc/libc.a" | cut -c1-16)
stamp_text="recipe $recipe
$("$rustc" -vV)
wasi-libc $wasi_libc_ver
stubs $(sha256sum "$here/pthread_stubs.c" | cut -c1-16)"
stamp=$sysroot/.wisp-sysroot-complete

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ]; then
	echo "rust-wasm: sysroot $sysroot is up to date"
	exit 0
fi

parent=$(dirname "$sysroot")
mkdir -p "$parent" || die "cannot create $parent (run as root, or set WISP_RUST_SYSROOT)"
work=$(mktemp -d "$parent/.rust-sysroot-build.XXXXXX") || die "cannot write to $parent"
trap 'rm -rf "$work"' EXIT

# 1. The throwaway crate and an isolated, offline cargo home.
crate=$work/crate
mkdir -p "$crate/src" "$crate/.cargo" "$work/cargo-home"
cat >"$crate/Cargo.toml" <<'EOF'
[package]
name = "wisp_std_build"
version = "0.0.0"
edition = "2021"

[lib]
path = "src/lib.rs"

[workspace]
EOF
echo '#![no_std]' >"$crate/src/lib.rs"
cat >"$crate/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "vendored-std-deps"

[source.vendored-std-deps]
directory = "$library/vendor"

[net]
offline = true
EOF

echo "rust-wasm: building std $version for $target from $library (about a minute)"
start=$(date +%s)
log=$work/build.log
if ! (cd "$crate" &&
	env -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
		CARGO_HOME="$work/cargo-home" RUSTC="$rustc" RUSTC_BOOTSTRAP=1 \
		"$cargo" build --release --target "$target" \
		-Zbuild-std=std,panic_abort,test >"$log" 2>&1); then
	tail -n 40 "$log" >&2
	die "building std failed (log above)"
fi
echo "rust-wasm: std built in $(( $(date +%s) - start )) s"

# 2. The target's std rlibs (not the throwaway crate).
stage=$work/sysroot
lib=$stage/lib/rustlib/$target/lib
mkdir -p "$lib/self-contained"
deps=$crate/target/$target/release/deps
n=0
for f in "$deps"/*.rlib; do
	case $(basename "$f") in libwisp_std_build-*) continue ;; esac
	cp "$f" "$lib/"
	n=$((n + 1))
done
[ "$n" -gt 5 ] || die "only $n rlibs were built; expected std and its dependencies"

# 3. wasi-libc, self-contained.
cp "$wasi_libc"/*.o "$wasi_libc"/*.a "$lib/self-contained/"

# 4. The pthread stubs, added to the sysroot's copy of libc.a.
ar=$(command -v llvm-ar-22 || command -v llvm-ar || command -v ar)
clang --target=wasm32-wasi --sysroot=/usr -O2 -c "$here/pthread_stubs.c" \
	-o "$work/wisp_pthread_stubs.o" || die "compiling the pthread stubs failed"
"$ar" rs "$lib/self-contained/libc.a" "$work/wisp_pthread_stubs.o" >/dev/null \
	|| die "adding the pthread stubs to libc.a failed"

# 5. The host target, shared with Debian's.
ln -s "$host_sysroot/lib/rustlib/$host" "$stage/lib/rustlib/$host"
printf '%s\n' "$stamp_text" >"$stage/.wisp-sysroot-complete"
chmod -R a+rX "$stage"

# Into place (replacing an outdated or incomplete one).
rm -rf "$sysroot"
mv "$stage" "$sysroot"
echo "rust-wasm: sysroot ready at $sysroot ($(du -sh "$sysroot" | cut -f1))"
