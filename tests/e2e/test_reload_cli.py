"""`wisp reload` as a newcomer meets it: what it says when a command is
wrong (an option, the file, the run), how it finds the run it is meant for,
and what a load that is refused or that purges says. Every message here was
unclear or wrong before (a walk through the docs as a new user, issue 14).
Each test runs the real binary against real runs of tests/guests/c/upgrade.c,
with a runtime directory of its own (XDG_RUNTIME_DIR), so that runs of other
tests or users are not found."""
import os
import shutil
import socket
import subprocess

from conftest import WISP

import pytest


@pytest.fixture
def versions(build_proc, tmp_path):
    """The upgrade guest as versions 1, 2, 3 (3 refuses to take a state)
    and 5 (a good one), under tmp_path/v."""
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2, 3, 5):
        shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    return d


@pytest.fixture
def env(control_env):
    return control_env


@pytest.fixture
def runs(env):
    """start(*run_args) -> a `wisp run` of upgrade.c's "steps" mode, which
    waits on stdin (so it runs until the test ends it), once it has
    started and its control socket is up."""
    started = []

    def start(*args):
        p = subprocess.Popen([str(WISP), "run", *args, "steps", "wait"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        started.append(p)
        assert p.stdout.readline() == "reply 1001 1\n", p.stderr.read()
        assert p.stdout.readline() == "started\n"
        return p

    yield start
    for p in started:
        p.kill()
        p.wait()


def reload(env, *args):
    return subprocess.run([str(WISP), "reload", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_help_and_usage_errors_say_what_was_wrong(env):
    """--help explains (exit 0); each usage error names its problem (before,
    all of them printed the same usage line, and --help was an error)."""
    r = reload(env, "--help")
    assert r.returncode == 0 and r.stderr == "", r
    assert "--purge" in r.stdout and "wisp_code_change" in r.stdout and \
        "--sname NAME" in r.stdout, r.stdout
    r = subprocess.run([str(WISP), "help"], capture_output=True, text=True, timeout=60)
    assert "reload options:" in r.stdout and "wisp reload --help" in r.stdout, r.stdout
    for args, said in [
        (["--purg", "x.wasm"], "unknown option '--purg'"),
        (["a.wasm", "b.wasm"], "one module at a time: 'a.wasm' and 'b.wasm'"),
        (["x.wasm", "--pid"], "--pid needs the process id of a 'wisp run'"),
        (["--pid", "abc", "x.wasm"], "--pid takes the process id of a 'wisp run', not 'abc'"),
        (["--pid", "a@host", "x.wasm"],
         "--pid takes the process id of a 'wisp run', not 'a@host' (a node: --node)"),
        (["--pid", "1", "--node", "a", "x.wasm"], "give one of --pid and --node"),
        (["--purge"], "which module?"),
    ]:
        r = reload(env, *args)
        assert r.returncode == 2 and r.stdout == "", (args, r)
        assert r.stderr.startswith(f"wisp reload: {said}"), (args, r.stderr)
        assert "usage: wisp reload" in r.stderr and "--help" in r.stderr, r.stderr


def test_a_bad_file_is_named_before_the_run_is_looked_for(env, tmp_path, versions):
    """With no run, a missing file, a directory and an empty file are what
    is said (before: "no wisp is running" for the first two, and "unknown
    request" from a run for the last two); a good file with no run says
    where runs are looked for."""
    (tmp_path / "empty.wasm").write_bytes(b"")
    for f, said in [(tmp_path / "nosuch.wasm", "cannot read "),
                    (tmp_path, " is a directory: give the new version's .wasm file"),
                    (tmp_path / "empty.wasm", "empty.wasm is empty: not a module")]:
        r = reload(env, f)
        assert r.returncode == 1 and said in r.stderr, (f, r)
        assert "running" not in r.stderr, r.stderr
    r = reload(env, versions / "v2.wasm")
    assert r.returncode == 1, r
    assert "no wisp is running" in r.stderr and "XDG_RUNTIME_DIR" in r.stderr, r.stderr


def test_runs_are_found_by_their_socket_and_listed_when_ambiguous(env, runs, versions):
    """A socket left by a run that was killed, whose pid another process
    has now (here: this test's), is no run: the only real run is found
    without --pid (before: "2 wisps are running"). With two runs, and for a
    pid that runs no wisp, the message lists the runs with their command
    lines."""
    first = runs(versions / "v1.wasm")
    sock = os.path.join(env["XDG_RUNTIME_DIR"], "wisp", f"{os.getpid()}.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(sock)   # (closed: nobody listens there)
    r = reload(env, versions / "v2.wasm")
    assert r.returncode == 0 and "is version 2 of the running module" in r.stdout, r

    second = runs("--schedulers", "1", versions / "v1.wasm")
    r = reload(env, versions / "v5.wasm")
    assert r.returncode == 1, r
    lines = r.stderr.splitlines()
    assert lines[0] == "wisp reload: 2 wisps are running: say which with --pid PID " \
                       "(or --node NAME)", r.stderr
    assert any(l.startswith(f"  --pid {first.pid} ") and "v1.wasm steps wait   in " in l and
               l.endswith(os.getcwd()) for l in lines), r.stderr
    assert any(f"--pid {second.pid} " in l and "--schedulers 1" in l for l in lines), r.stderr
    assert str(os.getpid()) not in r.stderr

    r = reload(env, "--pid", "2147483647", versions / "v5.wasm")
    assert r.returncode == 1, r
    assert r.stderr.startswith("wisp reload: no wisp runs as pid 2147483647"), r.stderr
    assert f"--pid {first.pid} " in r.stderr and f"--pid {second.pid} " in r.stderr, r.stderr
    r = reload(env, "--pid", second.pid, versions / "v2.wasm")
    assert r.returncode == 0 and "is version 2" in r.stdout, r


def test_a_node_is_found_by_the_name_it_was_given(env, runs, versions):
    """--node takes the name as --name was given it (NAME@HOST:PORT) or
    just NAME (before: only NAME@HOST, the socket's own name, worked); an
    unknown name lists the runs."""
    from test_dist import free_port
    port = free_port()
    p = runs("--name", f"rq@127.0.0.1:{port}", versions / "v1.wasm")
    r = reload(env, "--node", "rq", versions / "v2.wasm")
    assert r.returncode == 0 and "is version 2" in r.stdout, r
    r = reload(env, "--node", f"rq@127.0.0.1:{port}", versions / "v5.wasm")
    assert r.returncode == 0 and "is version 3" in r.stdout, r
    r = reload(env, "--node", "rx", versions / "v5.wasm")
    assert r.returncode == 1, r
    assert r.stderr.startswith("wisp reload: no wisp node is named rx\n"), r.stderr
    assert any(l.startswith(f"  --pid {p.pid} ") and "(--node rq@127.0.0.1) " in l
               for l in r.stderr.splitlines()), r.stderr


def test_refusals_say_what_to_do_and_a_purge_says_whom_it_killed(env, versions, build_proc):
    """Upgrade.c's supervisor moves onto every version, its worker never
    does. A module without wisp_code_change is refused saying how to
    export one; bytes that are a version already say whether that is the
    current one or an older one, which cannot come back as it is; a
    purge says how many processes it killed (before, none of this was
    said)."""
    shutil.copy(build_proc("int main(void) { return 0; }\n", name="plain"),
                versions / "plain.wasm")
    p = subprocess.Popen([str(WISP), "run", versions / "v1.wasm", "sup"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        p.stdin.write("?\n")
        p.stdin.flush()
        assert p.stdout.readline() == "sup 1 worker 1\n"
        r = reload(env, versions / "plain.wasm")
        assert r.returncode == 1, r
        assert "exports no wisp_code_change" in r.stderr and \
            "(C: export one, sdk/c/README.md; Rust: wisp::upgradable!)" in r.stderr, r.stderr
        r = reload(env, versions / "v1.wasm")
        assert r.returncode == 1, r
        assert "those bytes are version 1 already, the current one: nothing changed" \
            in r.stderr, r.stderr
        r = reload(env, versions / "v2.wasm")
        assert r.returncode == 0 and r.stdout.endswith("is version 2 of the running module, "
                                                       "now current\n"), r
        r = reload(env, versions / "v1.wasm")
        assert r.returncode == 1, r
        assert "those bytes are version 1 already (version 2 is current): a version loads " \
               "once; to run its code again, load a build that differs from it" in r.stderr, r
        r = reload(env, versions / "v5.wasm")
        assert r.returncode == 1 and "1 process still runs version 1" in r.stderr, r
        r = reload(env, "--purge", versions / "v5.wasm")
        assert r.returncode == 0, r
        assert r.stdout.endswith("is version 3 of the running module, now current (purged 1 "
                                 "process still on version 1 or older)\n"), r.stdout
    finally:
        p.kill()
        p.wait()


def test_the_c_sdk_readme_example_moves_as_it_says(env, build_proc, tmp_path):
    """sdk/c/README.md's counter, built as versions 1 and 2 as the README
    says, run, and reloaded from "another terminal": the server goes on in
    version 2 with its count, as the README shows."""
    import re
    from conftest import ROOT
    readme = (ROOT / "sdk" / "c" / "README.md").read_text()
    section = readme[readme.index("## Hot code reload"):]
    code = re.search(r"```c\n(.*?)```", section, re.S).group(1)
    v1 = build_proc(code, name="counter")
    v2 = tmp_path / "v2.wasm"
    shutil.copy(build_proc(code, "-DAPP_VERSION=2", name="counter"), v2)
    p = subprocess.Popen([str(WISP), "run", v1], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "v1: tick 1\n", p.stderr.read() if p.poll() else ""
        r = reload(env, v2)
        assert r.returncode == 0, r
        assert r.stdout == f"wisp: {v2} is version 2 of the running module, now current\n"
        lines = [p.stdout.readline() for _ in range(3)]
        took = [l for l in lines if l.startswith("v2: took over")]
        assert len(took) == 1, lines
        count = int(took[0].split()[-1])
        assert lines[lines.index(took[0]) + 1:][:1] in ([], [f"v2: tick {count + 1}\n"]), lines
        assert all(l.startswith("v1: tick ") for l in lines[:lines.index(took[0])]), lines
    finally:
        p.kill()
        p.wait()


LINKED = r"""
#include <stdio.h>
#include <wisp/guest.h>

static void rest(void)
{
	for (;;)
		wisp_sleep(1000000000);
}

__attribute__((export_name("wisp_code_change")))
int32_t wisp_code_change(uint32_t old_vsn, uint32_t len)
{
	(void)old_vsn;
	(void)len;
	return WISP_CODE_RESUME_WITH(rest);
}

static void worker(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	rest();
}

int main(void)
{
	wisp_spawn_link(worker, NULL, 0);
	printf("started %d\n", V);
	fflush(stdout);
	rest();
}
"""


def test_a_main_linked_to_a_purged_process_says_why_it_was_killed(env, build_proc, tmp_path):
    """main is linked to a worker that never moves; --purge of the third
    version kills the worker, and main with it (a link): the run says
    so, with the purge's reason (before: "the main process was killed",
    and main is never purged itself)."""
    v = {}
    for n in (1, 2, 3):
        v[n] = tmp_path / f"v{n}.wasm"
        shutil.copy(build_proc(LINKED, f"-DV={n}", name="linked"), v[n])
    p = subprocess.Popen([str(WISP), "run", v[1]], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "started 1\n"
        assert reload(env, v[2]).returncode == 0
        r = reload(env, v[3])
        assert r.returncode == 1 and "1 process still runs version 1" in r.stderr, r
        r = reload(env, "--purge", v[3])
        assert r.returncode == 0 and r.stdout.endswith(
            "now current (purged 1 process still on version 1 or older)\n"), r
        out, err = p.communicate(timeout=60)
        assert p.returncode == 137, (out, err)
        assert err.endswith("wisp: the main process was killed, through a link: purged: its "
                            "code (version 1 or older) was replaced twice\n"), err
    finally:
        p.kill()
        p.wait()


def test_a_program_numbered_with_dversion_builds_with_the_sdk(build_proc, wisp):
    """-DVERSION=2 is how a newcomer numbers the builds of a program; the
    SDK's term.c named a constant VERSION, so such a build did not
    compile (it is ETF_VERSION now)."""
    m = build_proc('#include <stdio.h>\nint main(void) { printf("v%d\\n", VERSION); return 0; }\n',
                   "-DVERSION=2", name="numbered")
    r = wisp("run", m)
    assert r.code == 0 and r.out == "v2\n", r
