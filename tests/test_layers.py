"""The layer order (scripts/check-layers): the tree follows it, and an
include against it is caught."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check-layers"


def run(root):
    return subprocess.run([sys.executable, str(CHECK), "--root", str(root)],
                          capture_output=True, text=True, timeout=60)


def test_tree_follows_the_layer_order():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check-layers: ok" in r.stdout


def copy_src(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    return tmp_path


def add_include(root, rel, header):
    f = root / "src" / rel
    text = f.read_text()
    f.write_text(f'#include "{header}"\n' + text)


def test_proc_including_host_is_caught(tmp_path):
    root = copy_src(tmp_path)
    add_include(root, "proc/signal.c", "host/host.h")
    r = run(root)
    assert r.returncode == 1
    assert 'src/proc/signal.c:1: proc includes "host/host.h" of host, a higher layer' in r.stdout


def test_sibling_include_is_caught(tmp_path):
    root = copy_src(tmp_path)
    add_include(root, "compile/codegen.c", "host/host.h")
    add_include(root, "engine/memory.c", "../io/reactor.h")
    r = run(root)
    assert r.returncode == 1
    assert "src/compile/codegen.c:1: compile includes" in r.stdout and "a sibling" in r.stdout
    assert "src/engine/memory.c:1: engine includes" in r.stdout


def test_scheduler_calling_up_into_proc_is_caught(tmp_path):
    root = copy_src(tmp_path)
    add_include(root, "sched/sched.c", "proc/proc_impl.h")
    r = run(root)
    assert r.returncode == 1
    assert "src/sched/sched.c:1: sched includes" in r.stdout


def test_downward_and_public_includes_are_allowed(tmp_path):
    root = copy_src(tmp_path)
    add_include(root, "cli/main.c", "common/util.h")
    add_include(root, "common/util.c", "wisp/guest.h")
    r = run(root)
    assert "cli/main.c:1" not in r.stdout and "common/util.c:1" not in r.stdout
