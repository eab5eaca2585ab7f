"""Run a WASI command module under wasmtime (the `wasmtime` package from
PyPI), the reference for tests/e2e/test_wasi_differential.py, with the same
interface as `wisp run`'s file-system options:

    python wasmtime_ref.py [--dir HOST::GUEST] [--dir-ro HOST::GUEST]
                           [--env KEY=VALUE] --stdin F --stdout F --stderr F
                           module.wasm [args...]

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
    ap.add_argument("--stdin", required=True)
    ap.add_argument("--stdout", required=True)
    ap.add_argument("--stderr", required=True)
    ap.add_argument("module")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    o = ap.parse_args()

    cfg = wasmtime.WasiConfig()
    cfg.argv = [o.module, *o.args]
    cfg.env = [kv.split("=", 1) for kv in o.env]
    cfg.stdin_file = o.stdin
    cfg.stdout_file = o.stdout
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
