"""harness.py -- what the benchmark scripts share (bench/run.py, proc_run.py,
net_run.py, soak.py): running and checking commands (also under a watch that
may stop them), building wisp guests, the OS's figures for a process tree
(RSS, CPU time) and the machine's available memory, waiting for a line of
output, and the table and machine line every report prints.

The scripts import it as a sibling module (`python3 bench/run.py` puts
bench/ on sys.path). Nothing here measures anything by itself.
"""
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLANG = os.environ.get("WISP_CLANG", "clang")
WASI_SYSROOT = os.environ.get("WISP_WASI_SYSROOT", "/usr")
SDK_C = ROOT / "sdk" / "c" / "wisp.c"


class BenchError(Exception):
    """A failure that makes a figure wrong: build, crash, timeout, bad result."""


def tail(text, lines=10):
    """The last `lines` lines of text, indented, for error messages."""
    return "\n".join("    " + l for l in (text or "").strip().splitlines()[-lines:])


# --------------------------------------------------------------------------
# running things

def run(cmd, env=None, cwd=None, timeout=600):
    """Runs cmd to completion, capturing its output as text. Returns the
    CompletedProcess, with `.wall` = its wall-clock seconds. Never raises on
    an exit status; a timeout is a BenchError."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"timed out after {timeout} s: {' '.join(map(str, cmd))}") from e
    proc.wall = time.perf_counter() - t0
    return proc


def run_watched(cmd, watch, env=None, timeout=600, every=0.5):
    """Runs cmd to completion in a session of its own, its output captured
    (as text) in temporary files, calling watch(pid) about every `every`
    seconds; watch stops the run by raising, which kills the whole session
    and passes the exception on. Returns the CompletedProcess with `.wall`;
    a timeout is a BenchError. For programs that may need stopping before
    they harm the machine (see proc_run.py's memory guard)."""
    cmd = [str(c) for c in cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            while True:
                try:
                    proc.wait(timeout=every)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}")
                watch(proc.pid)
        finally:
            stop(proc)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode,
                                           out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))
    done.wall = wall
    return done


def check(cmd, what, lines=10, **kw):
    """run(), and a BenchError naming `what` if cmd exits nonzero."""
    proc = run(cmd, **kw)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{tail(proc.stderr or proc.stdout, lines)}")
    return proc


def stop(proc):
    """Kills a Popen started with start_new_session=True (its whole process
    group), reaps it and closes its pipes."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f:
            f.close()


def read_line_with(proc, needle, timeout, what, watch=None, every=0.5, on_line=None):
    """Reads a Popen's binary stdout until a line containing needle and
    returns that line; a BenchError if the process ends first or timeout
    seconds pass. watch, if given, is called about every `every` seconds
    while waiting; it stops the wait by raising (e.g. a memory guard).
    on_line, if given, gets each line read before that one."""
    buf, deadline = b"", time.monotonic() + timeout
    while True:
        nl = buf.find(b"\n")
        while nl >= 0:
            line, buf = buf[:nl].decode(errors="replace"), buf[nl + 1:]
            if needle in line:
                return line
            if on_line:
                on_line(line)
            nl = buf.find(b"\n")
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"{what}: no `{needle}` after {timeout} s")
        if watch:
            watch()
            left = min(left, every)
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait()
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise BenchError(f"{what} exited {proc.returncode} before `{needle}`:\n"
                                 f"{tail(buf.decode(errors='replace') + err)}")
            buf += chunk


# --------------------------------------------------------------------------
# building

def wisp_env(cache):
    """The environment for running wisp with its own compile cache `cache`
    (created) and no background compiles competing for the CPUs."""
    Path(cache).mkdir(parents=True, exist_ok=True)
    return dict(os.environ, WISP_CACHE_DIR=str(cache), WISP_BACKGROUND_COMPILE="0")


def build_c_guest(sources, wasm, what, includes=(), defines=()):
    """Compiles C sources (with sdk/c/wisp.c) to a wasm32-wasi guest."""
    check([CLANG, "--target=wasm32-wasi", f"--sysroot={WASI_SYSROOT}", "-O2",
           "-I", ROOT / "include", *[a for d in includes for a in ("-I", d)],
           *[f"-D{d}" for d in defines], "-o", wasm, *sources, SDK_C], what)


def wisp_compile(wisp, wasm, env):
    """`wisp compile --tier opt` into env's cache; returns the CompletedProcess."""
    return run([wisp, "compile", "--tier", "opt", "--quiet", wasm], env=env)


def find_go():
    """The go binary ($WISP_GO, /usr/local/go, or on PATH), or None."""
    return next((g for g in [os.environ.get("WISP_GO"), "/usr/local/go/bin/go",
                             shutil.which("go")] if g and Path(g).exists()), None)


def go_build(go, out, pkg, cwd):
    """`go build -o out pkg` in cwd with this machine's Go as it is: no
    toolchain download, no module proxy settings, no cgo (a static binary)."""
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="", CGO_ENABLED="0")
    check([go, "build", "-o", out, pkg], f"go build {pkg}", cwd=cwd, env=env)


class Unavailable(Exception):
    """A column that cannot be measured here (not an error)."""


def build_impls(impls, errors, notes):
    """Build each implementation not already unavailable; one whose build
    raises Unavailable is marked so with its reason, one whose build fails
    is marked unavailable (its error in errors). Every unavailable one gets
    a note. The ones left to measure."""
    for impl in impls:
        if impl.unavailable:
            continue
        try:
            impl.build()
        except Unavailable as e:
            impl.unavailable = str(e)
        except BenchError as e:
            impl.unavailable = "build failed"
            errors.append(str(e))
    for impl in impls:
        if impl.unavailable:
            notes.append(f"{impl.name}: not measured: {impl.unavailable}")
    return [i for i in impls if not i.unavailable]


def erlang_release():
    """OTP's release, e.g. "25"."""
    return run(["erl", "-noshell", "-eval",
                'io:format("~s", [erlang:system_info(otp_release)]), halt().']).stdout.strip()


# --------------------------------------------------------------------------
# the OS's figures for a process and its descendants

def proc_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss_bytes(pid):
    """VmRSS of one process in bytes, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def tree_rss_bytes(pid):
    """VmRSS of pid and all its descendants, in bytes."""
    return sum(rss_bytes(p) or 0 for p in proc_tree(pid))


def mem_available():
    """The kernel's MemAvailable in bytes (0 if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_cpu_s(pid):
    """User + system CPU seconds of pid and its descendants (threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in proc_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            f = stat[stat.rindex(")") + 2:].split()
            total += int(f[11]) + int(f[12])
        except (OSError, ValueError):
            pass
    return total / tick


# --------------------------------------------------------------------------
# reporting

def table(rows, header):
    """Prints rows under header: the first column left-aligned, the rest
    right-aligned, a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def machine_note():
    """CPU model, CPU count, load average and wisp's git revision."""
    cpu = "?"
    try:
        for l in Path("/proc/cpuinfo").read_text().splitlines():
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rev = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip() or "?"
    return f"{cpu}, {os.cpu_count()} cpus, load {load:.2f}, wisp at {rev}"
