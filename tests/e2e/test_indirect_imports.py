"""Host functions called through a table (call_indirect of an imported
function that an element segment put there).

wasm2c 1.0.32 gives such a table entry the address of the instance's
field that holds the import's instance, not its value: the host function
got a pointer into the guest's instance as its process state, and wisp
crashed (SIGSEGV) or, in a spawned process, used another one's state
(a Rust debug build's `TcpListener::local_addr()` said "Not a socket").
src/compile/codegen.c rewrites those entries. Both tiers compile the same
C, so both are run."""
import pytest

# fd_write(1, iov at 0 -> "<text>\n") called through table slot 1, the
# slot filled by an active element segment, or by a passive one with
# table.init; slot 0 holds a defined function, called too.
WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (type $fw (func (param i32 i32 i32 i32) (result i32)))
  (type $v (func (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "through the table\\n")
  (table 4 funcref)
  (func $seven (result i32) (i32.const 7))
  %s
  (func (export "_start")
    %s
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 18))
    ;; a defined function through the table still gets its own instance
    (if (i32.ne (call_indirect (type $v) (i32.const 0)) (i32.const 7)) (then unreachable))
    (if (i32.ne (call_indirect (type $fw) (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)
                               (i32.const 1))
                (i32.const 0))
      (then unreachable))))
"""

SEGMENTS = {
    "active": ("(elem (i32.const 0) $seven $fd_write)", ""),
    "passive": ("(elem $e func $seven $fd_write)", "(table.init $e (i32.const 0) (i32.const 0) (i32.const 2))"),
}


@pytest.mark.parametrize("tier", ["fast", "opt"])
@pytest.mark.parametrize("segment", sorted(SEGMENTS))
def test_a_wasi_function_called_through_the_table_gets_its_process(wisp, build_wat, segment, tier):
    elem, init = SEGMENTS[segment]
    m = build_wat(WAT % (elem, init), name=f"indirect_import_{segment}")
    r = wisp("run", "--tier", tier, m)
    assert (r.code, r.out) == (0, "through the table\n"), r
    assert r.err == "", r
