"""Mistakes a newcomer makes, and what wisp says to them.

Each test is one slip found by following the README as a new user: the
message must name what is wrong and what to type instead.
"""
import os
import re
import subprocess

import pytest

from conftest import ROOT, WISP

HELLO_C = r"""
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
"""


def test_a_module_given_as_the_command_suggests_run(wisp):
    r = wisp("app.wasm")
    assert r.code == 2, r
    assert "unknown command 'app.wasm'" in r.err and "'wisp run app.wasm'" in r.err, r


def test_an_option_before_the_command_says_where_options_go(wisp):
    r = wisp("--dir", "/tmp", "run", "app.wasm")
    assert r.code == 2, r
    assert "options go after the command" in r.err and "wisp run --dir" in r.err, r


def test_a_library_module_is_told_to_build_a_program(wisp, build_wat):
    # What clang -mexec-model=reactor or a Rust cdylib makes: WASI imports,
    # _initialize, no _start.
    m = build_wat("""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "hello")))""", name="reactor")
    r = wisp("run", m)
    assert r.code == 1, r
    assert "no _start" in r.err and "WASI library" in r.err, r
    assert "-mexec-model=reactor" in r.err, r


def test_a_module_for_another_target_is_told_the_wasi_target(wisp, build_wat):
    # What clang --target=wasm32 or wasm32-unknown-unknown makes: nothing
    # from WASI, no _start.
    m = build_wat("""
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))""",
                  name="unknown_target")
    r = wisp("run", m)
    assert r.code == 1, r
    assert "nothing from WASI" in r.err, r
    assert "--target=wasm32-wasi" in r.err and "wasm32-wasip1" in r.err, r


def test_max_memory_below_the_initial_memory_says_how_much_is_needed(wisp, build_c):
    m = build_c(HELLO_C, name="hello_mem")
    r = wisp("run", "--max-memory", "64K", m)
    assert r.code == 1, r
    assert "trap" not in r.err, r
    found = re.search(r"initial memory is (\d+) KiB .*more than --max-memory allows "
                      r"\(64 KiB\).*try --max-memory (\d+M)", r.err)
    assert found, r
    assert int(found.group(1)) > 64, r
    # What it suggests is enough.
    r = wisp("run", "--max-memory", found.group(2), m)
    assert (r.code, r.out) == (0, "hello\n"), r


TABLE_WAT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (table 4096 funcref)
  (func (export "_start") (call $exit (i32.const 0))))
"""


def test_tables_over_max_memory_get_the_same_advice(wisp, build_wat):
    # The memory alone fits (128 KiB); its 4096-entry table does not: the
    # engine refuses the instance, and the CLI adds what to do.
    m = build_wat(TABLE_WAT, name="big_table")
    r = wisp("run", "--max-memory", "128K", m)
    assert r.code == 134, r
    assert "in <instantiation>" in r.err, r
    found = re.search(r"initial memory and tables need more than --max-memory gives: "
                      r"try --max-memory (\d+M)", r.err)
    assert found, r
    r = wisp("run", "--max-memory", found.group(1), m)
    assert (r.code, r.err) == (0, ""), r


@pytest.mark.parametrize("grace", ["2", "2s", "500ms", "0.5"])
def test_shutdown_grace_takes_a_time_like_hibernate_after(wisp, build_c, grace):
    r = wisp("run", "--shutdown-grace", grace, build_c(HELLO_C, name="hello_mem"))
    assert (r.code, r.out) == (0, "hello\n"), r


@pytest.mark.parametrize("grace", ["0", "x", "2h", "-1"])
def test_a_bad_shutdown_grace_names_the_flag(wisp, grace):
    r = wisp("run", "--shutdown-grace", grace, "x.wasm")
    assert r.code == 2, r
    assert "--shutdown-grace takes a time above 0" in r.err, r


@pytest.mark.parametrize("args,flag", [
    (["run", "--max-cpu", "1e6"], "--max-cpu"),
    (["run", "--max-processes", "many"], "--max-processes"),
    (["run", "--max-fds", "-1"], "--max-fds"),
    (["run", "--schedulers", "0"], "--schedulers"),
    (["run", "--reductions", "lots"], "--reductions"),
    (["run", "--compile-max-functions", "lots"], "--compile-max-functions"),
    (["compile", "--compile-max-cpu", "10s"], "--compile-max-cpu"),
])
def test_a_bad_number_names_its_flag(wisp, args, flag):
    r = wisp(*args, "x.wasm")
    assert r.code == 2, r
    assert f"bad number '{args[-1]}' for {flag}" in r.err, r


def test_help_gives_the_exit_status_of_a_stopped_run(wisp):
    r = wisp("help")
    assert "130 (SIGINT, Ctrl-C) or 143 (SIGTERM)" in r.out, r
    assert "--shutdown-grace TIME" in r.out, r


@pytest.mark.parametrize("name,why", [
    ("apps/mine", "it is a path"),
    ("std", "it is the name of one of Rust's or wisp's own crates"),
    ("9lives", "use a letter"),
])
def test_wisp_new_says_why_a_name_is_refused(tmp_path, name, why):
    r = subprocess.run([str(WISP), "new", name], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2, r
    assert f"'{name}' cannot name a project: {why}" in r.stderr, r
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def examples():
    r = subprocess.run(["make", "-C", str(ROOT / "examples"), "c"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return ROOT / "examples"


@pytest.mark.parametrize("example", ["echo", "chat"])
def test_an_example_server_without_allow_listen_says_which_flag(wisp, examples, example):
    # The README's commands with the capability forgotten.
    r = wisp("run", examples / f"{example}.wasm", "0")
    assert r.code == 1, r
    assert "cannot listen" in r.err and "--allow-listen" in r.err, r
    assert "errno" not in r.err, r


def test_setup_installs_nc_which_the_readme_uses():
    readme = (ROOT / "README.md").read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "`nc 127.0.0.1" in readme
    assert re.search(r"^\s+netcat-openbsd\b", setup, re.M), "setup.sh does not install nc"


def test_the_c_projects_make_test_fails_when_the_program_fails(tmp_path, shared_cache):
    # `make test` of a `wisp new --c` project: a program that prints the
    # greeting and then traps must fail it (it passed: only the output was
    # checked, through a pipe).
    r = subprocess.run([str(WISP), "new", "--c", "hi"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache),
               WISP_BACKGROUND_COMPILE="0")
    r = subprocess.run(["make", "-s", "test"], cwd=tmp_path / "hi", env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "test: ok" in r.stdout, r
    main = tmp_path / "hi" / "src" / "main.c"
    text = main.read_text()
    assert '\tprintf("%s\\n", text);\n' in text
    main.write_text(text.replace('\tprintf("%s\\n", text);\n',
                                 '\tprintf("%s\\n", text);\n\tfflush(stdout);\n\t__builtin_trap();\n'))
    r = subprocess.run(["make", "-s", "test"], cwd=tmp_path / "hi", env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0, r
    assert "test: FAILED: wisp run exited with status 134" in r.stdout, r


LS_C = r"""
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
int main(int argc, char **argv)
{
	struct stat st;
	if (stat(argv[1], &st) != 0) { perror(argv[1]); return 3; }
	DIR *d = opendir(argv[1]);
	if (d == NULL) { perror(argv[1]); return 3; }
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	printf("%s: a directory of %d\n", argv[1], n);
	return 0;
}
"""


@pytest.mark.parametrize("spec,path", [("data/", "data"), ("./data//", "data"),
                                       ("{d}/", "{d}"), ("{d}::/files/", "/files")])
def test_a_dir_given_with_a_trailing_slash_is_the_directory_itself(
        wisp, build_c, tmp_path, spec, path):
    """Shell completion writes `--dir data/`: the guest must then reach
    data itself (stat, opendir), not only the files below it."""
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.txt").write_text("a\n")
    m = build_c(LS_C, name="ls_dir")
    spec, path = spec.format(d=d), path.format(d=d)
    r = wisp("run", "--dir", spec, m, path, cwd=tmp_path)
    assert r.code == 0 and r.out == f"{path}: a directory of 1\n", r
