"""Run one WASI command module under wasmtime (the `wasmtime` package from
PyPI, which carries the real engine: Cranelift, its WASI preview 1), for
bench/run.py's wasmtime column:

    <venv>/bin/python bench/wasmtime_run.py module.wasm [args...]

The guest's stdout and stderr are this process's. The module is compiled
before _start runs, so a kernel's own timing (its `elapsed_ns`) holds only
the code's speed, as under wisp. Exit status: proc_exit's code, 0 if _start
returns, 134 if it traps, with wasmtime's message on stderr. Run by
bench/run.py in the interpreter wasmtime is installed in, so the bench's
own Python needs no wasmtime.
"""
import sys

import wasmtime


def main():
    if len(sys.argv) < 2:
        print("usage: wasmtime_run.py module.wasm [args...]", file=sys.stderr)
        return 2
    path = sys.argv[1]
    cfg = wasmtime.WasiConfig()
    cfg.argv = sys.argv[1:]
    cfg.inherit_stdout()
    cfg.inherit_stderr()
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(cfg)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, path)
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
