"""A hostile caller of wisp_program_spawn (tests/guests/c/attack_program.c):
what it traps on must not leak the host's fds or memory, and what its
programs hold must leave the runtime its own fds."""
import resource
import shutil
import subprocess

import pytest

from conftest import WISP


def _low_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def _run(build_proc, build_c, tmp_path, *args):
    d = tmp_path / "p"
    d.mkdir(exist_ok=True)
    shutil.copy(build_c("filter.c"), d / "filter.wasm")
    env = {"WISP_BACKGROUND_COMPILE": "0", "WISP_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(WISP), "run", "--dir", f"{d}::/p", str(build_proc("attack_program.c")),
                           "/p/filter.wasm", *args], capture_output=True, text=True,
                          timeout=300, env=env, preexec_fn=_low_fds)


@pytest.mark.parametrize("what", ["module", "args", "env", "mounts", "name"])
def test_a_spawn_that_traps_on_its_spec_leaks_nothing(build_proc, build_c, tmp_path, what):
    """The spec's pointers were checked one by one as the spawn went: a
    mount's name past the end of memory trapped after the three pipes were
    made (six host fds), a capability set derived and the module held; an
    argument pointer after the module was held; the module's after a copy
    of up to 256 MiB was malloc'd. 200 children doing it under
    RLIMIT_NOFILE 256 used up every fd, and the next spawn found no pipe."""
    r = _run(build_proc, build_c, tmp_path, "trap", what, "200")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["after: out: HELLO"], r.stdout


def test_programs_holding_copies_leave_the_runtime_its_fds(build_proc, build_c, tmp_path):
    """A program's stdio copies (WISP_STDIO_FD and INHERIT dups, a pipe's
    end, /dev/null) were host fds no check kept out of the runtime's
    reserve: programs that hold them took every fd the host had, and the
    runtime could no longer compile a module (nor accept, nor open its
    cache). Now a spawn whose fds would lie in the reserve fails (ELIMIT)
    and the runtime still compiles."""
    r = _run(build_proc, build_c, tmp_path, "hold", "1000")
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = r.stdout.splitlines()
    held = [x for x in out if x.startswith("held ")]
    assert len(held) == 1 and held[0].endswith(" 10"), out   # WISP_ELIMIT
    assert out[-1] == "fresh: 0", out
