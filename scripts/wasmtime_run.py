"""Run a WASI command module under wasmtime (the `wasmtime` package from
PyPI, the real engine: Cranelift and its WASI preview 1), with the same
interface as `wisp run`'s file-system options: the reference of
tests/e2e/test_wasi_differential.py and the wasmtime column of
bench/run.py.

    python wasmtime_run.py [--dir HOST::GUEST] [--dir-ro HOST::GUEST]
                           [--env KEY=VALUE] [--stdin F] [--stdout F] [--stderr F]
                           module.wasm [args...]

Stdio not given is this process's. The module is compiled before _start
runs, so a bench kernel's own timing (its `elapsed_ns`) holds only the
code's speed, as under wisp.

argv[0] of the guest is module.wasm as given (as wisp does). The exit status
is the guest's: proc_exit's code, 0 if _start returns, 134 if it traps (as
wisp) or wasmtime ends it for breaking the WASI ABI (an out-of-range enum
value, say), with wasmtime's message on this script's stderr. Run by the test in its own interpreter (the one wasmtime is installed
in), so the suite's Python needs no wasmtime itself.
"""
import argparse
import sys

import wasmtime


def main():
    ap = argparse.ArgumentParser()
    # one list, in command-line order: wisp numbers preopens that way
    ap.add_argument("--dir", dest="dirs", action="append", default=[],
                    type=lambda s: (s, True))
    ap.add_argument("--dir-ro", dest="dirs", action="append",
                    type=lambda s: (s, False))
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--stdin")
    ap.add_argument("--stdout")
    ap.add_argument("--stderr")
    ap.add_argument("module")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    o = ap.parse_args()

    cfg = wasmtime.WasiConfig()
    cfg.argv = [o.module, *o.args]
    cfg.env = [kv.split("=", 1) for kv in o.env]
    if o.stdin is None:
        cfg.inherit_stdin()
    else:
        cfg.stdin_file = o.stdin
    if o.stdout is None:
        cfg.inherit_stdout()
    else:
        cfg.stdout_file = o.stdout
    if o.stderr is None:
        cfg.inherit_stderr()
    else:
        cfg.stderr_file = o.stderr
    for spec, writable in o.dirs:
        host, _, guest = spec.partition("::")
        cfg.preopen_dir(host, guest or host, writable)

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(cfg)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, o.module)
    try:
        linker.instantiate(store, module).exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        print(f"wasmtime: {e}", file=sys.stderr)
        return 134
    return 0


if __name__ == "__main__":
    sys.exit(main())
