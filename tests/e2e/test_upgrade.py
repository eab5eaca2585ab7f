"""Hot code reload (wisp_code): versions of the main module loaded while it
runs, a server moving onto them between two messages with its state, and
the failures that must leave it running its old version."""
import shutil

import pytest


@pytest.fixture
def versions(build_proc, tmp_path):
    """The upgrade guest built as versions 1..4, copied under tmp_path/v."""
    d = tmp_path / "v"
    d.mkdir()
    for v in (1, 2, 3, 4):
        shutil.copy(build_proc("upgrade.c", f"-DGUEST_VERSION={v}"), d / f"v{v}.wasm")
    return d


def _lines(r):
    return [l for l in r.out.splitlines() if l]


def test_a_server_upgrades_in_place_and_keeps_its_count(wisp, versions):
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm", "/v/v2.wasm")
    assert r.code == 0, r.err
    assert _lines(r) == ["reply 1001 1", "reply 1001 2", "load 0 2",
                         "reply 2002 3", "reply 2002 4", "reply 2002 5",
                         "mine 1 current 2"], r.out


def test_a_refusing_or_trapping_version_rolls_back(wisp, versions):
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm",
             "/v/v2.wasm", "/v/v3.wasm", "/v/v4.wasm")
    assert r.code == 0, r.err
    out = _lines(r)
    # v2 takes over; v3 refuses (-7) and v4 traps: the server goes on as v2,
    # its count intact, and says why.
    assert [l for l in out if l.startswith(("reply", "load"))] == [
        "reply 1001 1", "reply 1001 2", "load 0 2",
        "reply 2002 3", "reply 2002 4", "reply 2002 5", "load 0 3",
        "reply 2002 6", "reply 2002 7", "reply 2002 8", "load 0 4",
        "reply 2002 9", "reply 2002 10", "reply 2002 11"], out
    refused = [l for l in out if l.startswith("refused")]
    assert len(refused) == 2, out
    assert refused[0].startswith("refused 4 ") and "refused the state (-7)" in refused[0], out
    assert refused[1].startswith("refused 4 ") and "trapped: unreachable" in refused[1], out


def test_bad_versions_are_refused_and_nothing_changes(wisp, versions, build_proc, tmp_path):
    plain = build_proc("int main(void) { return 0; }\n", name="plain")
    shutil.copy(plain, versions / "plain.wasm")
    r = wisp("run", "--dir", f"{versions}::/v", versions / "v1.wasm",
             "garbage", "/v/plain.wasm", "/v/v1.wasm", "/v/v2.wasm", "/v/v2.wasm")
    assert r.code == 0, r.err
    loads = [l for l in _lines(r) if l.startswith("load")]
    # not wasm; no wisp_code_change; the running version itself; a good
    # one; the same bytes again.
    assert loads == ["load 4 0", "load 4 0", "load 5 1", "load 0 2", "load 5 2"], r.out
    assert "mine 1 current 2" in r.out
