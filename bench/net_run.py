#!/usr/bin/env python3
"""wisp's networking benchmark: the echo examples against Go and Erlang echo servers, TCP and TLS.

    python3 bench/net_run.py [--quick] [--runs N] [--conns N] [--duration S]
                             [--idle-conns N] [--impls wisp,go,erlang] [--pin]
                             [--suites tcp,tls] [--connect-workers N]

Three TCP echo servers with the same protocol (bytes in, the same bytes out),
all listening on 127.0.0.1 (an ephemeral port each, read back from their
first line, `listening on ADDR:PORT`):

  wisp    examples/echo/echo.c, a wisp process per connection, built like
          `make -C examples echo.wasm` (into a temporary directory), the opt
          tier compiled ahead with `wisp compile` into a private cache, run
          with `wisp run --tier opt`.
  go      bench/net/go/echo: a goroutine per connection, a read/write loop
          with a 4 KiB buffer (Go's defaults: TCP_NODELAY on, GOMAXPROCS =
          cores).
  erlang  bench/net/erlang/netecho.erl: gen_tcp, an Erlang process per
          connection, {active,false} recv/send loop, packet raw, nodelay true;
          `erl -noshell` with the defaults (a scheduler per core, JIT).

The TLS suite runs the same measurements over TLS echo servers (TLS 1.3,
an ECDSA P-256 certificate for localhost made per run with `openssl req`
in the temporary directory):

  wisp    examples/tls-echo/tls_echo.c (a process per connection; the
          certificate and key read by the host from a --dir-ro directory).
  go      bench/net/go/tlsecho: crypto/tls, tls.Listen, a goroutine per
          connection, the same 4 KiB loop.
  erlang  bench/net/erlang/tlsecho.erl: OTP's ssl, a process per
          connection, ssl:handshake then a passive recv/send loop.

and adds one measurement:

  connect  --connect-workers loops (default 32) each doing: connect, TLS
           handshake, one checked 64-byte echo, close; connections
           completed per second in the window (full handshakes: the load
           generator keeps no sessions), and the server's CPU per
           connection.
  resume   the same, each loop resuming with the session ticket of its
           previous connection (TLS 1.3 PSK with a new X25519 exchange), if
           the server sent one.

The load generator's TLS clients (crypto/tls) verify the server's
certificate and offer X25519 only (Go's default also offers
X25519MLKEM768, which OpenSSL 3.0 lacks: a Go server would pick the more
expensive hybrid and do different work).

One load generator for all of them, bench/net/go/loadgen (Go). It opens the
connections and does one checked echo on each first, then:

  load  N connections (default 1,000; --quick 200) each doing closed-loop
        round trips of a 64-byte message for 1 s of warm-up and then the
        measured window (default 10 s; --quick 3 s): requests/s and latency
        p50/p99/max of the round trips completed in the window. Every echo is
        compared with what was sent. The server's CPU time (OS process tree)
        over the run is shown too.
  idle  10,000 connections (--quick: 2,000), each established and echoed once,
        then held idle: (server RSS with them - server RSS just before
        connecting) / N, on a freshly started server. RSS is the OS figure
        (VmRSS, summed over the server's process tree), never a runtime's own
        accounting. wisp is measured twice: as started for the load runs, and
        with `--hibernate-after 200ms` (idle processes keep their stack's
        live part and their memory's differences from the module's image:
        docs/architecture.md, "Density"), as a server holding many idle
        connections would be run; RSS is read 2 s after the last connects.

The machine has few cores (2 on the dev machine) and the load generator runs
on them too, so it competes with the server for CPU: the throughput figures
are for "server + client on one box", the same for all three. --pin puts the
server on CPU 0 and the load generator on the others instead.

Targets (from the networking issue): wisp's throughput >= Go's in the same run;
idle connection cost <= Go's; TLS echo throughput >= Go's crypto/tls.

Exit status: 0 when everything ran, even if targets are missed or a column is
unavailable (a peer not installed: the table says so); 1 on a build failure,
a server that does not start or dies, wrong echo data, or a load generator
error; 2 on bad usage or missing clang/wisp/go.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import (CLANG, ROOT, BenchError, build_c_guest, check, erlang_release, find_go,
                     build_impls, go_build, machine_note, read_line_with, run, stop, table, tail, tree_cpu_s,
                     tree_rss_bytes, wisp_compile, wisp_env)

NET = ROOT / "bench" / "net"
IMPLS = ["wisp", "go", "erlang"]
SUITES = ["tcp", "tls"]
CERT_DIR = "certs"      # in the temporary directory: cert.pem, key.pem
NOFILE = 65536          # RLIMIT_NOFILE wanted for the servers and the load generator
START_TIMEOUT_S = 60    # for a server's `listening on` line
RSS_SETTLE_S = 1.0      # after the idle connections are up, before reading RSS
HIBERNATE = ("--hibernate-after", "200ms")   # wisp's second idle run
HIBERNATE_SETTLE_S = 2.0   # time for the last connections' processes to hibernate
BASE_SETTLE_S = 0.5     # after a server starts, before its baseline RSS


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE (children inherit it) to want, or
    as far as the hard limit allows without privilege; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for lim in (want, hard):
        if lim == resource.RLIM_INFINITY or lim > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (lim, max(lim, hard)))
                return lim
            except (ValueError, OSError):
                continue
    return soft


def cpu_split(ap, pin, ncpu):
    """Where the server and the load generator run: with --pin the server
    on CPU 0 and the generator on the others, else both anywhere (None)."""
    if pin and ncpu < 2:
        ap.error("--pin needs at least 2 CPUs")
    return ({"server": {0}, "client": set(range(1, ncpu))} if pin
            else {"server": None, "client": None})


def preexec(cpus):
    """For children: optionally a CPU set (the fd limit is inherited)."""
    def f():
        if cpus:
            os.sched_setaffinity(0, cpus)
    return f


# --------------------------------------------------------------------------
# the three servers

class Impl:
    name = "?"
    unavailable = None
    env = None

    def cmd(self):
        raise NotImplementedError


class Wisp(Impl):
    name = "wisp"

    def __init__(self, work, wisp):
        self.wisp = wisp
        self.wasm = work / "wisp" / "echo.wasm"
        self.cache = work / "wisp-cache"
        self.env = None

        self.tls_wasm = work / "wisp" / "tls_echo.wasm"
        self.flags = ()   # more `wisp run` options (the hibernating idle run)

    def build(self):
        self.wasm.parent.mkdir()
        self.env = wisp_env(self.cache)
        # the same commands as examples/Makefile's rules
        for src, wasm in ((ROOT / "examples" / "echo" / "echo.c", self.wasm),
                          (ROOT / "examples" / "tls-echo" / "tls_echo.c", self.tls_wasm)):
            build_c_guest([src], wasm, f"wisp {wasm.name}: clang")
            proc = wisp_compile(self.wisp, wasm, self.env)
            if proc.returncode != 0:
                raise BenchError(f"wisp compile {wasm.name} failed (exit {proc.returncode}):\n"
                                 f"{tail(proc.stderr or proc.stdout)}")

    def cmd(self):
        return [self.wisp, "run", *self.flags, "--tier", "opt", "--allow-listen", "127.0.0.1:*",
                self.wasm, "0", "127.0.0.1"]

    def tls_cmd(self, certs):
        return [self.wisp, "run", *self.flags, "--tier", "opt", "--allow-listen", "127.0.0.1:*",
                "--dir-ro", f"{certs}::/certs", self.tls_wasm, "0", "/certs/cert.pem",
                "/certs/key.pem"]


class Go(Impl):
    name = "go"

    def __init__(self, work, go):
        self.go = go
        self.bin = work / "go" / "echo"
        self.tls_bin = work / "go" / "tlsecho"

    def build(self):
        for b in (self.bin, self.tls_bin):
            go_build(self.go, b, f"./{b.name}", NET / "go")

    def cmd(self):
        return [self.bin, "0", "127.0.0.1"]

    def tls_cmd(self, certs):
        return [self.tls_bin, "0", "127.0.0.1", certs / "cert.pem", certs / "key.pem"]


class Erlang(Impl):
    name = "erlang"

    def __init__(self, work):
        self.dir = work / "erlang"
        if not (shutil.which("erlc") and shutil.which("erl")):
            self.unavailable = "erl/erlc not installed"

    def build(self):
        self.dir.mkdir()
        for m in ("netecho", "tlsecho"):
            check(["erlc", "-o", self.dir, NET / "erlang" / f"{m}.erl"], f"erlc {m}.erl")

    def cmd(self):
        return ["erl", "-noshell", "-pa", self.dir, "-run", "netecho", "main", "0", "127.0.0.1"]

    def tls_cmd(self, certs):
        return ["erl", "-noshell", "-pa", self.dir, "-run", "tlsecho", "main", "0",
                "127.0.0.1", certs / "cert.pem", certs / "key.pem"]


class Tls(Impl):
    """impl's TLS echo server, with the certificate in certs."""

    def __init__(self, impl, certs):
        self.impl, self.certs = impl, certs
        self.name, self.env = impl.name, impl.env

    def cmd(self):
        return self.impl.tls_cmd(self.certs)


def make_certs(d):
    """A self-signed ECDSA P-256 certificate for localhost in d."""
    d.mkdir()
    check(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "2",
           "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
          "openssl req (the TLS suite's certificate)")


# --------------------------------------------------------------------------
# the measurements

class Server:
    """A running echo server: pid, address."""

    def __init__(self, impl, cpus):
        self.impl = impl
        cmd = [str(c) for c in impl.cmd()]
        # stderr to a file: a chatty server must not block on a full pipe
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=impl.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.errf,
                                     preexec_fn=preexec(cpus), start_new_session=True)
        try:
            line = read_line_with(self.proc, "listening on", START_TIMEOUT_S,
                                  f"{impl.name} echo server")
        except BenchError as e:
            self.close()
            raise BenchError(f"{e}{self.stderr_tail()}") from None
        hostport = line.split("listening on", 1)[1].strip()
        self.addr = hostport

    def stderr_tail(self):
        try:
            self.errf.seek(0)
            text = self.errf.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n" + tail(text) if text.strip() else ""

    def alive(self, what):
        if self.proc.poll() is not None:
            raise BenchError(f"{self.impl.name} echo server died (exit {self.proc.returncode})"
                             f" during {what}{self.stderr_tail()}")

    def close(self):
        stop(self.proc)
        self.errf.close()

def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def measure_load(impl, srv, cmd, conns, limit_s, cpus):
    """Run the load generator `cmd` against the started server srv: the
    figures of its RESULT line ({rps, p50_us, p99_us, max_us, ...}) and the
    server's CPU over the run (cpu_cores, cpu_us_per_req)."""
    cpu0 = tree_cpu_s(srv.proc.pid)
    t0 = time.monotonic()
    try:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=limit_s, preexec_fn=preexec(cpus["client"]))
    except subprocess.TimeoutExpired:
        raise BenchError(f"{impl.name}: load generator timed out") from None
    elapsed = time.monotonic() - t0
    cpu = tree_cpu_s(srv.proc.pid) - cpu0
    srv.alive("the load test")
    if proc.returncode != 0:
        raise BenchError(f"{impl.name}: load generator failed (exit {proc.returncode}):\n"
                         f"{tail(proc.stderr + proc.stdout)}{srv.stderr_tail()}")
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if not line:
        raise BenchError(f"{impl.name}: no RESULT from the load generator:\n"
                         f"{tail(proc.stdout + proc.stderr)}")
    f = {k: float(v) for k, v in parse_kv(line).items()}
    if int(f.get("conns", 0)) != conns or f.get("requests", 0) <= 0:
        raise BenchError(f"{impl.name}: load generator result incomplete: {line}")
    f["cpu_cores"] = cpu / elapsed
    f["cpu_us_per_req"] = cpu * 1e6 / max(1, f["rps"] * elapsed)
    return f


def load_test(impl, loadgen, conns, duration, warmup, cpus, extra=(), mode="load"):
    """Returns {rps, p50_us, p99_us, max_us, cpu_cores, ...} for one run
    (extra: the load generator's TLS arguments; mode: load or connect)."""
    srv = Server(impl, cpus["server"])
    try:
        cmd = [loadgen, "-mode", mode, "-addr", srv.addr, "-conns", conns,
               "-duration", f"{duration}s", "-warmup", f"{warmup}s", "-size", "64", *extra]
        return measure_load(impl, srv, cmd, conns, duration + warmup + 120, cpus)
    finally:
        srv.close()


def idle_test(impl, loadgen, n, cpus, extra=(), settle=None):
    """Bytes of server RSS per idle established connection (RSS read
    `settle` seconds after the last connection is up)."""
    srv = Server(impl, cpus["server"])
    gen = None
    try:
        time.sleep(BASE_SETTLE_S)
        srv.alive("start-up")
        base = tree_rss_bytes(srv.proc.pid)
        cmd = [loadgen, "-mode", "idle", "-addr", srv.addr, "-conns", n, "-size", "64", *extra]
        gen = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=preexec(cpus["client"]), start_new_session=True)
        try:
            line = read_line_with(gen, "READY", 300, f"{impl.name}: idle load generator")
        except BenchError as e:
            srv.alive("the idle connections' set-up")
            raise BenchError(f"{e}{srv.stderr_tail()}") from None
        if int(parse_kv(line).get("n", -1)) != n:
            raise BenchError(f"{impl.name}: idle: {line}")
        time.sleep(RSS_SETTLE_S if settle is None else settle)
        srv.alive("the idle test")
        if gen.poll() is not None:
            raise BenchError(f"{impl.name}: idle load generator exited {gen.returncode}")
        full = tree_rss_bytes(srv.proc.pid)
        return {"idle_bytes": (full - base) / n, "base_rss": base, "full_rss": full}
    finally:
        if gen:
            stop(gen)
        srv.close()


# --------------------------------------------------------------------------
# reporting

def fmt(x, unit):
    if x is None:
        return "-"
    if unit in ("req/s", "conn/s", "bytes", "us", "us/conn"):
        return f"{x:,.0f}"
    return f"{x:.2f}"


def ratio(a, b):
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="200 connections for 3 s; 2,000 idle connections")
    ap.add_argument("--runs", type=int, default=1,
                    help="load runs per server, interleaved; the best is kept (default 1)")
    ap.add_argument("--conns", type=int, help="concurrent connections (default 1000)")
    ap.add_argument("--duration", type=float, help="measured seconds per load run (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    ap.add_argument("--idle-conns", type=int, help="idle connections (default 10000)")
    ap.add_argument("--impls", default=",".join(IMPLS),
                    help="comma-separated columns to run (default: wisp,go,erlang)")
    ap.add_argument("--pin", action="store_true",
                    help="server on CPU 0, load generator on the other CPUs")
    ap.add_argument("--suites", default=",".join(SUITES),
                    help="comma-separated: tcp (plain echo), tls (TLS echo); default both")
    ap.add_argument("--connect-workers", type=int, default=32,
                    help="TLS suite: concurrent connect-handshake-echo-close loops")
    ap.add_argument("--wisp", default=os.environ.get("WISP_BIN", str(ROOT / "wisp")))
    args = ap.parse_args()
    conns = args.conns or (200 if args.quick else 1000)
    duration = args.duration or (3.0 if args.quick else 10.0)
    idle_n = args.idle_conns or (2000 if args.quick else 10000)
    if args.runs < 1 or conns < 1 or idle_n < 1 or duration <= 0:
        ap.error("--runs, --conns, --idle-conns and --duration must be positive")
    suites = [x for x in SUITES if x in args.suites.split(",")]
    if set(args.suites.split(",")) - set(SUITES) or args.connect_workers < 1:
        ap.error(f"--suites: choose from {','.join(SUITES)}; --connect-workers: positive")
    wanted = args.impls.split(",")
    if set(wanted) - set(IMPLS):
        ap.error(f"--impls: choose from {','.join(IMPLS)}")
    ncpu = os.cpu_count() or 1
    cpus = cpu_split(ap, args.pin, ncpu)
    args.wisp = str(Path(args.wisp).resolve())
    go = find_go()
    missing = []
    if not go:
        missing.append("go (the load generator is Go)")
    if "wisp" in wanted:
        if not shutil.which(CLANG):
            missing.append(CLANG)
        if not Path(args.wisp).exists():
            missing.append(f"{args.wisp} (run `make`)")
    if "tls" in suites and not shutil.which("openssl"):
        missing.append("openssl (the TLS suite's certificate)")
    if missing:
        print("bench/net_run.py: missing: " + ", ".join(missing), file=sys.stderr)
        return 2

    nofile = raise_nofile(NOFILE)
    if nofile < idle_n + 64 or nofile < conns + 64:
        print(f"bench/net_run.py: RLIMIT_NOFILE is {nofile} and cannot be raised to "
              f"{NOFILE}; need more than {max(idle_n, conns) + 64} (lower --idle-conns)",
              file=sys.stderr)
        return 2
    print(f"wisp network bench -- {machine_note()}")
    errors, notes = [], []
    with tempfile.TemporaryDirectory(prefix="wisp-netbench-") as tmp:
        work = Path(tmp)
        loadgen = work / "loadgen"
        all_impls = {"wisp": Wisp(work, args.wisp), "go": Go(work, go), "erlang": Erlang(work)}
        impls = [all_impls[n] for n in IMPLS if n in wanted]
        print("building: loadgen, " + ", ".join(i.name for i in impls if not i.unavailable)
              + " ...", flush=True)
        try:
            go_build(go, loadgen, "./loadgen", NET / "go")
        except BenchError as e:
            print(f"ERROR: {e}", file=sys.stderr)
            return 1
        live = build_impls(impls, errors, notes)
        vers = [run([go, "version"]).stdout.strip()]
        if any(i.name == "erlang" for i in live):
            vers.append(f"Erlang/OTP {erlang_release()}")
        print(f"peers: {', '.join(vers)}")
        where = ("server pinned to CPU 0, load generator to CPU "
                 + ",".join(map(str, sorted(cpus["client"]))) if args.pin else
                 f"server and load generator share all {ncpu} CPUs")
        print(f"{where}; RLIMIT_NOFILE {nofile} for both")

        if "tls" in suites:
            try:
                make_certs(work / CERT_DIR)
            except BenchError as e:
                print(f"ERROR: {e}", file=sys.stderr)
                return 1
        results = {}
        for suite in suites:
            if suite == "tcp":
                results[suite] = run_suite(suite, live, loadgen, args, conns, duration, idle_n,
                                           cpus, (), errors)
            else:
                certs = work / CERT_DIR
                extra = ("-tls", "-ca", certs / "cert.pem")
                results[suite] = run_suite(suite, [Tls(i, certs) for i in live], loadgen, args,
                                           conns, duration, idle_n, cpus, extra, errors)

    stat = f"best of {args.runs}" if args.runs > 1 else "one run"
    for suite in suites:
        print()
        print_table(suite, results[suite], conns, idle_n, args.connect_workers, stat)
    print("throughput: round trips completed in the measured window / its length; latency: "
          "write to full echo, per round trip.")
    print("idle connection = (server RSS with N idle echoed connections - RSS before "
          "connecting) / N, OS RSS of the server's process tree.")
    if "tls" in suites:
        print(f"TLS connects: {args.connect_workers} workers each connecting, handshaking "
              "(TLS 1.3, X25519, ECDSA P-256), echoing 64 bytes once and closing; server CPU "
              "per connection over that run. Resumed: the same with each worker offering the "
              "session ticket of its previous connection (a server that sends none: full "
              "handshakes; OTP's ssl sends none by default).")
    if not args.pin:
        print(f"note: the load generator runs on the same {ncpu} CPUs and competes with the "
              "server for them; a server that needs less CPU per request leaves more to the "
              "generator (see 'server CPU per request').")
    for n in notes:
        print(f"note: {n}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s): the figures above are incomplete or wrong")
    return 1 if errors else 0


def run_suite(suite, impls, loadgen, args, conns, duration, idle_n, cpus, extra, errors):
    """The load runs (interleaved), the connect runs (TLS) and the idle
    runs of one suite: {"load": {name: figures}, "connect": .., "idle": ..}."""
    load, connect, resume, failed = {}, {}, {}, set()
    kinds = [("load", conns, load, ())]
    if suite == "tls":
        kinds.append(("connect", args.connect_workers, connect, ()))
        kinds.append(("resume", args.connect_workers, resume, ("-resume",)))
    for r in range(args.runs):
        for kind, n, into, more in kinds:
            mode = "load" if kind == "load" else "connect"
            for impl in impls:
                if impl.name in failed:
                    continue
                print(f"  {suite} {kind} {r + 1}/{args.runs}: {impl.name}, {n} "
                      f"{'connections' if mode == 'load' else 'workers'}, {duration:g} s ...",
                      end="", flush=True)
                try:
                    f = load_test(impl, loadgen, n, duration, args.warmup, cpus,
                                  (*extra, *more), mode)
                except BenchError as e:
                    failed.add(impl.name)
                    errors.append(f"{suite}: {e}")
                    print(" ERROR", flush=True)
                    continue
                print(f" {f['rps']:,.0f} {'req' if mode == 'load' else 'conn'}/s, p99 "
                      f"{f['p99_us']:,.0f} us, server CPU {f['cpu_cores']:.2f} cores"
                      + (f", {f.get('resumed', 0):,.0f} handshakes resumed"
                         if kind == "resume" else ""), flush=True)
                if impl.name not in into or f["rps"] > into[impl.name]["rps"]:
                    into[impl.name] = f
    idle = {}
    for impl in impls:
        if impl.name in failed:
            continue
        print(f"  {suite} idle: {impl.name}, {idle_n} connections ...", end="", flush=True)
        try:
            f = idle_test(impl, loadgen, idle_n, cpus, extra)
        except BenchError as e:
            errors.append(f"{suite}: {e}")
            print(" ERROR", flush=True)
            continue
        idle[impl.name] = f
        print(f" {f['idle_bytes']:,.0f} bytes/connection (RSS {f['base_rss'] / 2**20:.1f}"
              f" -> {f['full_rss'] / 2**20:.1f} MiB)", flush=True)
    # wisp again with idle processes hibernating, as a server holding many
    # idle connections would run (BEAM's erlang:hibernate/3 does the same
    # for a process that asks)
    hib = {}
    for impl in impls:
        base = getattr(impl, "impl", impl)
        if impl.name != "wisp" or impl.name in failed:
            continue
        print(f"  {suite} idle: wisp {' '.join(HIBERNATE)}, {idle_n} connections ...",
              end="", flush=True)
        base.flags = HIBERNATE
        try:
            f = idle_test(impl, loadgen, idle_n, cpus, extra, settle=HIBERNATE_SETTLE_S)
        except BenchError as e:
            errors.append(f"{suite} (hibernating): {e}")
            print(" ERROR", flush=True)
            continue
        finally:
            base.flags = ()
        hib["wisp"] = f
        print(f" {f['idle_bytes']:,.0f} bytes/connection (RSS {f['base_rss'] / 2**20:.1f}"
              f" -> {f['full_rss'] / 2**20:.1f} MiB)", flush=True)
    return {"load": load, "connect": connect, "resume": resume, "idle": idle,
            "idle_hib": hib}


def row(label, unit, src, key, target=None, higher_better=False):
    v = {n: src.get(n, {}).get(key) for n in IMPLS}
    status = ""
    if target == "go":
        w, g = v["wisp"], v["go"]
        if w is not None and g is not None:
            status = "met" if (w >= g if higher_better else w <= g) else "MISSED"
        else:
            status = "-"
    tgt = ("" if not target else (">= go" if higher_better else "<= go"))
    return [label, unit, fmt(v["wisp"], unit), fmt(v["go"], unit), fmt(v["erlang"], unit),
            ratio(v["wisp"], v["go"]), ratio(v["wisp"], v["erlang"]), tgt, status]


def print_table(suite, res, conns, idle_n, workers, stat):
    load, connect, idle = res["load"], res["connect"], res["idle"]
    what = "echo" if suite == "tcp" else "TLS echo"
    rows = [
        row(f"{what} throughput ({conns} conns)", "req/s", load, "rps", "go", True),
        row("latency p50", "us", load, "p50_us"),
        row("latency p99", "us", load, "p99_us"),
        row("latency max", "us", load, "max_us"),
        row("server CPU during load", "cores", load, "cpu_cores"),
        row("server CPU per request", "us/req", load, "cpu_us_per_req"),
    ]
    if suite == "tls":
        rows += [
            row(f"TLS connects ({workers} workers)", "conn/s", connect, "rps", "go", True),
            row("connect latency p99", "us", connect, "p99_us"),
            row("server CPU per connect", "us/conn", connect, "cpu_us_per_req"),
            row(f"resumed connects ({workers} workers)", "conn/s", res["resume"], "rps"),
            row("server CPU per resumed connect", "us/conn", res["resume"], "cpu_us_per_req"),
        ]
    n = f"{idle_n // 1000}k" if idle_n % 1000 == 0 else f"{idle_n:,}"
    rows.append(row(f"idle {'TLS ' if suite == 'tls' else ''}connection ({n})", "bytes", idle,
                    "idle_bytes", "go"))
    if res["idle_hib"]:
        rows.append(row(f"  wisp {' '.join(HIBERNATE)}", "bytes",
                        {**idle, "wisp": res["idle_hib"]["wisp"]}, "idle_bytes", "go"))
    print(f"{'TLS echo' if suite == 'tls' else 'Echo'} servers: wisp vs Go vs Erlang "
          f"(64-byte round trips, {stat}; one load generator)")
    table(rows, ["metric", "unit", "wisp", "go", "erlang", "wisp/go", "wisp/erlang",
                 "target", ""])


if __name__ == "__main__":
    sys.exit(main())
