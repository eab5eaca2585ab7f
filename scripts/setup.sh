#!/usr/bin/env bash
# setup.sh — everything wisp needs on a fresh Debian 12 (or Ubuntu) machine,
# then a build. Run as root or with sudo from anywhere in the repository:
#
#   sudo scripts/setup.sh      (or, as root on a machine without sudo: scripts/setup.sh)
#
# Phases (one line each; details go to a log shown only on failure):
#   1. packages  apt-get update + install of what the build, the tests and the
#                benchmarks need (skipped when all are installed already);
#   2. wasmtime  the reference WASI implementation for the differential
#                test (tests/e2e/test_wasi_differential.py) and make bench's
#                wasmtime column (both run scripts/wasmtime_run.py): the `wasmtime`
#                package from PyPI, pip-installed into a virtual environment
#                ($WISP_WASMTIME_VENV, default /var/cache/wisp/wasmtime-venv)
#                so Debian's Python stays untouched. If PyPI cannot be
#                reached, the reason is written to <venv>.failed and the
#                test skips saying so; the rest of the set-up goes on;
#   3. rust      a Rust toolchain for wasm32-wasip1 guests:
#                - rustup with the wasm32-wasip1 target installed (for the
#                  invoking user under sudo): used as is, nothing is built;
#                - otherwise Debian's rustc-web/cargo-web and a std built from
#                  rust-web-src by scripts/setup-rust-wasm.sh (about a minute,
#                  once per rustc version, into /var/cache/wisp);
#   4. build     `make` (./wisp) and `make -C examples`, as the invoking user
#                under sudo so the tree does not end up owned by root;
#   5. install   `make install` (as root: /usr/local/bin/wisp and the SDKs in
#                /usr/local/share/wisp, where `wisp new` finds them);
#   6. demo      a new project made with `wisp new` is run with plain
#                `cargo run`, as a new user would: a process-based program
#                builds and works.
# Running it again does only what is missing (install and demo always run).
#
# Environment: WISP_RUST_SYSROOT (see setup-rust-wasm.sh), WISP_WASMTIME_VENV,
#              WISP_SETUP_SKIP_BUILD=1 to stop after phase 3,
#              WISP_SETUP_PREFIX (default /usr/local) for phase 5.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log=$(mktemp /tmp/wisp-setup.XXXXXX.log)

die() {
	echo "setup: FAILED: $*" >&2
	echo "setup: full log: $log" >&2
	exit 1
}

# run PHASE CMD...: run CMD with its output in the log; on failure show the
# log's tail and stop.
run() {
	local phase=$1
	shift
	echo "+ $*" >>"$log"
	if ! "$@" >>"$log" 2>&1; then
		echo "---- last lines of $log ----" >&2
		tail -n 30 "$log" >&2
		die "$phase: '$*' exited with an error"
	fi
}

# The user the build runs as: the one who called sudo, else ourselves.
as_user() {
	if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
		local home
		home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
		# sudo's PATH lacks the user's rustup (~/.cargo/bin): put it back.
		sudo -u "$SUDO_USER" -H env PATH="$home/.cargo/bin:$PATH" "$@"
	else
		"$@"
	fi
}

# True when rustup (ours, or the sudo caller's) has the wasm32-wasip1 target.
rustup_has_wasip1() {
	local list=""
	if command -v rustup >/dev/null 2>&1; then
		list=$(rustup target list --installed 2>/dev/null || true)
	fi
	if [ -z "$list" ] && [ -n "${SUDO_USER:-}" ]; then
		local home
		home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
		if [ -x "$home/.cargo/bin/rustup" ]; then
			list=$(sudo -u "$SUDO_USER" -H "$home/.cargo/bin/rustup" target list --installed 2>/dev/null || true)
		fi
	fi
	grep -qx wasm32-wasip1 <<<"$list"
}

# --- 1. packages -------------------------------------------------------------
base_pkgs=(
	build-essential make git ca-certificates
	python3 python3-pytest python3-venv
	python3-prometheus-client                # the metrics tests parse /metrics with it
	clang lld wabt binaryen tcc              # guests, wasm2c, the fast tier
	wasi-libc libclang-rt-dev-wasm32         # C guests
	libxxhash-dev libcmocka-dev              # the runtime and its unit tests
	libdw-dev libelf-dev                     # naming the wasm function of a trap
	libssl-dev                               # SHA-256 (libcrypto, static) for the cache's MAC
	libclang-rt-14-dev                       # libFuzzer for make fuzz (tests/fuzz/)
	erlang-nox golang-go hyperfine           # benchmarks against peers
	valgrind                                 # bench/metrics_run.py: instructions counted
	erlang-dev                               # libei: the distribution tests' node (tests/dist)
	netcat-openbsd                           # nc: talking to the example servers (README)
	iproute2 nftables                        # ip netns + nft: the distribution partition tests
	chromium                                 # a headless browser: the dashboard test (tests/e2e/test_dashboard.py)
	librust-serde-dev librust-serde-derive-dev librust-bincode-dev  # sdk/rust's crates, offline:
	librust-syn-dev librust-quote-dev librust-proc-macro2-dev       #   wisp-macros
	librust-rmp-serde-dev librust-serde-json-dev                    #   codec features
	librust-httparse-dev                                            #   wisp::http (feature http)
)
rust_pkgs=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

use_rustup=0
if [ -z "${WISP_RUST_SYSROOT:-}" ] && rustup_has_wasip1; then
	use_rustup=1
fi
pkgs=("${base_pkgs[@]}")
[ "$use_rustup" = 1 ] || pkgs+=("${rust_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done
if [ "${#missing[@]}" = 0 ]; then
	echo "setup: packages: all ${#pkgs[@]} installed"
else
	[ "$(id -u)" = 0 ] || die "packages: ${missing[*]} missing; run this as root: sudo $0 (or, without sudo, as root: su -c $0)"
	command -v apt-get >/dev/null || die "packages: apt-get not found (wisp's set-up supports Debian 12 and Ubuntu)"
	echo "setup: packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	run packages apt-get update -q
	# On distributions without rustc-web (e.g. Ubuntu), say what to do instead.
	for p in "${missing[@]}"; do
		if ! apt-cache show "$p" >/dev/null 2>&1; then
			case " ${rust_pkgs[*]} " in
			*" $p "*) die "packages: $p is not available here; install rustup, run 'rustup target add wasm32-wasip1' as your user, then run this script again" ;;
			*) die "packages: $p is not available from this machine's package sources" ;;
			esac
		fi
	done
	# rustc-web replaces Debian's older rustc/cargo packages; apt removes them.
	run packages apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. wasmtime -------------------------------------------------------------
venv=${WISP_WASMTIME_VENV:-/var/cache/wisp/wasmtime-venv}
if "$venv/bin/python" -c 'import wasmtime' >/dev/null 2>&1; then
	echo "setup: wasmtime: ready in $venv"
elif ! mkdir -p "$(dirname "$venv")" 2>/dev/null || [ ! -w "$(dirname "$venv")" ]; then
	die "wasmtime: cannot create $venv; run as root (sudo $0) or set WISP_WASMTIME_VENV"
else
	rm -f "$venv.failed"
	if /usr/bin/python3 -m venv "$venv" >>"$log" 2>&1 &&
	   "$venv/bin/python" -m pip install -q wasmtime >>"$log" 2>&1; then
		echo "setup: wasmtime: installed into $venv"
	else
		tail -n 5 "$log" >"$venv.failed"
		echo "setup: wasmtime: WARNING: pip could not install it (see $venv.failed);" \
		     "the differential WASI test will skip" >&2
	fi
fi

# --- 3. rust -----------------------------------------------------------------
if [ "$use_rustup" = 1 ]; then
	echo "setup: rust: using rustup's wasm32-wasip1 target"
else
	start=$(date +%s)
	run rust "$root/scripts/setup-rust-wasm.sh"
	sysroot=$("$root/scripts/setup-rust-wasm.sh" --print-sysroot)
	echo "setup: rust: wasm32-wasip1 std ready at $sysroot ($(( $(date +%s) - start )) s)"
fi

# --- 4. build ----------------------------------------------------------------
if [ -n "${WISP_SETUP_SKIP_BUILD:-}" ]; then
	echo "setup: build: skipped (WISP_SETUP_SKIP_BUILD)"
	exit 0
fi
run build as_user make -C "$root" -j"$(nproc)"
run build as_user make -C "$root/examples"
echo "setup: build: ./wisp and examples/*.wasm ready"

# --- 5. install --------------------------------------------------------------
prefix=${WISP_SETUP_PREFIX:-/usr/local}
if [ -w "$prefix" ] || [ "$(id -u)" = 0 ]; then
	run install make -C "$root" -s install PREFIX="$prefix"
	echo "setup: install: $prefix/bin/wisp, SDKs in $prefix/share/wisp"
	wisp=$prefix/bin/wisp
else
	echo "setup: install: skipped ($prefix is not writable; run as root to install); using $root/wisp"
	wisp=$root/wisp
fi

# --- 6. demo -----------------------------------------------------------------
# A new user's first project, built and run by plain cargo.
demo=$(as_user mktemp -d /tmp/wisp-demo.XXXXXX)
cargo=cargo
as_user sh -c 'command -v cargo && cargo --version' >/dev/null 2>&1 || cargo=/usr/bin/cargo
run demo as_user sh -c "cd '$demo' && '$wisp' new hello"
if ! out=$(as_user sh -c "cd '$demo/hello' && '$cargo' run --quiet" 2>>"$log"); then
	tail -n 30 "$log" >&2
	die "demo: 'cargo run' of a new project failed"
fi
rm -rf "$demo"
echo "setup: demo: 'wisp new hello && cd hello && cargo run' printed: $out"
# Name the wisp to try by its path unless PATH finds that same one.
try=wisp
[ "$(command -v wisp 2>/dev/null)" = "$wisp" ] || try=$wisp
echo "setup: ready. Try: $try new myapp && cd myapp && cargo run   (or: $try run $root/examples/hello.wasm)"
rm -f "$log"
