"""The live dashboard that `--metrics ADDR:PORT` serves beside /metrics:
the page at / (src/cli/dashboard.{html,css,js}, embedded in the binary)
and the JSON it reads (/api/processes, /api/tree: src/cli/dashboard.c).

The guest (tests/guests/c/metrics_load.c, case "dash") registers a process
as "<script>alert(1)</script>" and has a worker trap. The API is checked
directly (JSON parses, the name comes back as the same text, bad queries
get 400); the page is loaded in a real headless browser (Debian's
chromium, which runs its script), and its DOM must show the process by
name as text, never as an element, and count the crash."""
import html
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import WISP
from test_metrics import Run

NAME = "<script>alert(1)</script>"
WORKER = "<img src=x onerror=alert(2)>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def env(shared_cache, tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    return dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0",
                XDG_RUNTIME_DIR=str(run))


@pytest.fixture
def dash(build_proc, env):
    """The dash case running, its endpoint up: (run, sink pid, main pid),
    and the worker that trapped as run.worker."""
    r = Run(build_proc("metrics_load.c"), "dash", env=env)
    m = re.fullmatch(r"dash sink=([0-9a-f]+) main=([0-9a-f]+) worker=([0-9a-f]+)\n", r.first)
    assert m, r.first
    r.worker = int(m.group(3), 16)
    yield r, int(m.group(1), 16), int(m.group(2), 16)
    _, err = r.stop()
    assert "Sanitizer" not in err, err


def get(r, path):
    """(status, headers, body text) by urllib, as a browser's fetch would."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{r.port}{path}", timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_api_processes_lists_the_guests_processes_with_names_as_data(dash):
    r, sink, main = dash
    status, headers, body = get(r, "/api/processes?sort=pid&limit=1000")
    assert status == 200 and headers["Content-Type"] == "application/json", (status, headers)
    doc = json.loads(body)
    assert doc["node"] is None and doc["sort"] == "pid"
    rows = {int(p["pid"], 16): p for p in doc["processes"]}
    assert sink in rows and main in rows, rows
    assert rows[sink]["name"] == NAME
    assert int(rows[sink]["parent"], 16) == main
    assert doc["alive"] >= len(doc["processes"]) >= 2
    pids = [int(p["pid"], 16) for p in doc["processes"]]
    assert pids == sorted(pids)
    # limit cuts, the default sort is reductions (busiest first)
    doc = json.loads(get(r, "/api/processes?limit=1")[2])
    assert len(doc["processes"]) == 1 and doc["sort"] == "reductions"
    doc = json.loads(get(r, "/api/processes")[2])
    reds = [p["reductions"] for p in doc["processes"]]
    assert reds == sorted(reds, reverse=True) and len(reds) >= 2


def test_api_tree_lists_the_oldest_with_their_parents(dash):
    r, sink, main = dash
    status, _, body = get(r, "/api/tree?limit=10")
    assert status == 200
    doc = json.loads(body)
    assert doc["sort"] == "age"
    rows = [(int(p["pid"], 16), p["parent"]) for p in doc["processes"]]
    assert rows[0] == (main, ""), rows          # main is the oldest, a root
    assert (sink, format(main, "x")) in rows, rows
    doc = json.loads(get(r, "/api/tree?limit=1")[2])
    assert [int(p["pid"], 16) for p in doc["processes"]] == [main]


def test_api_crashes_keeps_the_last_crashes_with_names_as_data(dash):
    r, _, _ = dash
    status, headers, body = get(r, "/api/crashes")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["total"] == 1 and len(doc["crashes"]) == 1, doc
    c = doc["crashes"][0]
    assert int(c["pid"], 16) == r.worker and c["name"] == WORKER, c
    assert c["reason"] == "trap" and c["text"] and c["ago_ms"] >= 0, c


@pytest.mark.parametrize("query", [
    "/api/processes?sort=name", "/api/processes?sort=", "/api/processes?limit=0",
    "/api/processes?limit=1001", "/api/processes?limit=-1", "/api/processes?limit=5x",
    "/api/processes?limit=99999999999999999999", "/api/processes?bogus=1",
    "/api/processes?sort", "/api/tree?sort=pid", "/api/tree?limit=abc",
    "/api/processes?" + "a" * 600, "/api/crashes?limit=1",
])
def test_bad_queries_get_400_and_the_node_serves_on(dash, query):
    r, _, _ = dash
    status, headers, body = get(r, query)
    assert status == 400, (query, status, body)
    assert headers["Content-Type"].startswith("text/plain") and body.endswith("\n")
    assert get(r, "/api/processes?limit=2")[0] == 200


def test_the_page_and_its_files_are_served_with_a_strict_policy(dash):
    r, _, _ = dash
    status, headers, page = get(r, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    # no inline script for the policy to have to allow; nothing from elsewhere
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/dashboard.js">']
    assert "http://" not in page and "https://" not in page
    for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
        status, headers, text = get(r, path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and text
        assert "innerHTML" not in text and "http" not in text.replace("http://www.w3.org", "")
    assert get(r, "/nope")[0] == 404


def dump_dom(port):
    """The page's DOM after its script ran for a few (virtual) seconds."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--virtual-time-budget=4000", "--dump-dom", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(scripts/setup.sh installs it): the dashboard's browser test needs it")
def test_the_page_in_a_browser_shows_the_process_as_text_and_the_crash(dash):
    r, sink, _ = dash
    dom = dump_dom(r.port)
    assert "node unreachable" not in dom, dom
    assert re.search(r'id="status"[^>]*>updated ', dom), dom
    # the registered name is shown, escaped: text, never an element
    escaped = html.escape(NAME, quote=False)
    assert escaped in dom, dom
    assert "<script>alert" not in dom
    assert dom.count("<script") == 1, dom        # the page's own script only
    # in the top table (with its pid) and in the tree
    top = dom[dom.index('id="top"'):dom.index("Supervision tree")]
    assert f"<td>{sink:x}</td><td>{escaped}</td>" in top, top
    tree = dom[dom.index('id="tree"'):]
    assert f"{sink:x} {escaped}" in tree, tree
    # the crash: the worker trapped (main, the sink and the worker spawned,
    # two alive)
    cards = dict(re.findall(r'id="card-([a-z-]+)">[^<]*<b>([^<]*)</b>', dom))
    assert cards["crashed"] == "1" and cards["spawned"] == "3", cards
    assert cards["processes"] == "2", cards
    # the crash's line, its name as text too
    crashes = dom[dom.index('id="crashes"'):]
    escaped_worker = html.escape(WORKER, quote=False)
    assert f"{r.worker:x} {escaped_worker} — trap: " in crashes, crashes
    assert "<img" not in dom
    # the rate charts were drawn (two samples at least: one line each)
    assert dom.count("<polyline") == 3, dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(scripts/setup.sh installs it): the dashboard's browser test needs it")
def test_the_crashed_card_counts_what_the_crash_list_shows(dash, env):
    """`wisp kill PID boom` ends the sink with an Erlang reason: a crash
    in the list (reason term), so in the card too (it counted exits by
    trap, killed and limit only: 1 crashed beside two crashes listed)."""
    r, sink, _ = dash
    k = subprocess.run([str(WISP), "kill", "--pid",
                        str(r.p.pid), format(sink, "x"), "boom"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert k.returncode == 0, k
    dom = dump_dom(r.port)
    crashes = dom[dom.index('id="crashes"'):]
    assert f"{sink:x} {html.escape(NAME, quote=False)} — term: boom" in crashes, crashes
    cards = dict(re.findall(r'id="card-([a-z-]+)">[^<]*<b>([^<]*)</b>', dom))
    assert cards["crashed"] == "2", cards
