"""Many processes on two wisp nodes playing ping-pong across their one
connection while it dies (tests/guests/c/dist_storm.c, whose header says
what each node does and prints).

A connection is read by whichever scheduler polls, one reader at a time,
and torn down by its last reader or the I/O thread (src/dist/conn.c):
these tests hold that to its promises under load, on both nodes at once —
every pair's numbers arrive in order, none lost or repeated; nothing of a
partner's arrives after its noconnection; every link and monitor across
the connection gets noconnection; and the nodes connect again after.
They assert behaviour, not timing."""
import os
import shutil
import subprocess

import pytest

from test_dist import SANITIZER_REPORT, Cluster, _dist_port, node

pytestmark = pytest.mark.skipif(shutil.which("erl") is None or shutil.which("epmd") is None,
                                reason="needs erlang-nox (erl, epmd)")

K = 40      # pingers per node (and as many workers on the other)
M = 300     # answers each pinger has before the connection dies


@pytest.fixture
def storm(tmp_path, shared_cache, build_proc):
    c = Cluster(tmp_path, shared_cache, build_proc)
    guest = build_proc("dist_storm.c")
    nodes = {}
    for me, peer in (("sta", "stb"), ("stb", "sta")):
        nodes[me] = c.wisp(me, "storm", node(peer), str(K), str(M), guest=guest)
    yield c, nodes
    reports = [line for err in c.close() for line in (err or "").splitlines()
               if SANITIZER_REPORT.search(line)]
    assert not reports, "\n".join(reports[:20])


def _lost_everything_in_order(n):
    assert n.wait_line(r"^pingers ", timeout=60) == f"pingers {K} exit {K} down {K} bad 0"
    assert n.wait_line(r"^workers ", timeout=60) == f"workers {K} exit {K} down {K} bad 0"


def test_a_node_killed_mid_storm(storm):
    """The other node is killed while every pair has messages in flight:
    each of this node's pingers and workers gets its partner's EXIT and
    DOWN with reason noconnection, after every answer that came before
    (in order), and nothing after them."""
    c, nodes = storm
    a, b = nodes["sta"], nodes["stb"]
    a.wait_line(r"^running", timeout=120)
    b.wait_line(r"^running", timeout=120)
    b.proc.kill()
    _lost_everything_in_order(a)
    assert a.proc.poll() is None        # the node lives on


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ss") is None,
                    reason="cutting a connection (ss -K) needs root")
def test_a_connection_cut_mid_storm(storm):
    """The connection is destroyed under both nodes (ss -K: one side's
    socket is aborted, the other gets a reset) while every pair has
    messages in flight: both nodes see it die, each of their pingers and
    workers as above; then they connect again."""
    c, nodes = storm
    a, b = nodes["sta"], nodes["stb"]
    a.wait_line(r"^running", timeout=120)
    b.wait_line(r"^running", timeout=120)
    ports = [_dist_port(c, "sta"), _dist_port(c, "stb")]
    sel = " or ".join(f"sport = :{p} or dport = :{p}" for p in ports)
    r = subprocess.run(["ss", "-K", "state", "established", f"( {sel} )"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"ss -K failed: {r.stderr.strip()}")
    for n in (a, b):
        _lost_everything_in_order(n)
    for n in (a, b):
        assert n.wait_line(r"^reconnected", timeout=60) == "reconnected"
    for n in (a, b):
        n.stop()
    assert all("disconnected" in (n.err or "") for n in (a, b))
