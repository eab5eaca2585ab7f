"""WASI preview 1 end to end: C guests built with wasi-libc, run through the
real wisp binary. Together the guests call every one of the 46
wasi_snapshot_preview1 functions (test_every_wasi_function_is_exercised
checks their imports), including error paths, and the host side of each
test checks what the guest could and could not touch."""
import fcntl
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from conftest import WISP

ALL_WASI = """
args_get args_sizes_get environ_get environ_sizes_get clock_res_get
clock_time_get fd_advise fd_allocate fd_close fd_datasync fd_fdstat_get
fd_fdstat_set_flags fd_fdstat_set_rights fd_filestat_get fd_filestat_set_size
fd_filestat_set_times fd_pread fd_prestat_get fd_prestat_dir_name fd_pwrite
fd_read fd_readdir fd_renumber fd_seek fd_sync fd_tell fd_write
path_create_directory path_filestat_get path_filestat_set_times path_link
path_open path_readlink path_remove_directory path_rename path_symlink
path_unlink_file poll_oneoff proc_exit proc_raise sched_yield random_get
sock_accept sock_recv sock_send sock_shutdown
""".split()

GUESTS = ["wasi_fs.c", "wasi_ro.c", "wasi_misc.c", "wasi_pipe.c", "wasi_stdio_flags.c"]

FS_EXPECTED = """\
fopen_w: ok
fclose: ok
open_rw: ok
read: 6 hello
fstat: ok
size: 6 regular: 1
pwrite: 2
pread: 4 hXYl
lseek_end: 6
lseek_set: 2
fd_tell: 0 2
lseek_neg: -1 EINVAL
ftruncate: ok
size_after_truncate: 3
fallocate: 0
size_after_allocate: 100
fadvise: 0
fadvise_bad: 1
fsync: ok
fdatasync: ok
setfl_sync: 1
setfl_append: ok
getfl_append: 1
size_after_append: 101
futimens: ok
mtime: 200 5 atime: 100
fdstat: 0
set_rights: 0
write_without_right: -1 EBADF
regain_rights: 1
close: ok
close_again: EBADF
mkdir: ok
mkdir_again: EEXIST
setfl_dir: 1
opendir: ok
readdir: 300 entries, 2 dots
readdir_names: ok
seekdir: ok
rewinddir: 302
rmdir_nonempty: ENOTEMPTY
rmdir: ok
rmdir_gone: ENOENT
rmdir_file: ENOTDIR
unlink_dir: EISDIR
rmdir_d2: ok
rename: ok
stat_old: ENOENT
stat_new: ok
symlink: ok
readlink: 5 b.txt
readlink_file: EINVAL
lstat: ok
lstat_is_link: 1
stat_through_link: ok
stat_size: 101
link: ok
linkat_follow: ok
nlink: 3
link_exists: EEXIST
utimensat: ok
utimensat_mtime: 400
utimensat_nofollow: ok
link_mtime: 600
target_mtime: 400
unlink_link: ok
unlink_h: ok
unlink_h2: ok
unlink_missing: ENOENT
open_missing: ENOENT
open_excl: EEXIST
open_dir_as_file_rw: EISDIR
open_notdir: ENOTDIR
open_directory_flag: ENOTDIR
open_directory_rw: EISDIR
open_directory_wronly: EISDIR
open_directory_ro: ok
esc_open_dotdot: ENOTCAPABLE
esc_open_deep: ENOTCAPABLE
esc_open_inside: ok
esc_create: ENOTCAPABLE
esc_stat: ENOTCAPABLE
esc_mkdir: ENOTCAPABLE
esc_rename: ENOTCAPABLE
esc_link_in: ENOTCAPABLE
esc_unlink: ENOTCAPABLE
esc_symlink_abs: ok
esc_symlink_up: ok
esc_follow_abs: ENOTCAPABLE
esc_follow_up: ENOTCAPABLE
esc_follow_stat: ENOTCAPABLE
esc_lstat_ok: ok
esc_link_follow: ENOTCAPABLE
esc_chain: ENOTCAPABLE
esc_trunc_through_link: ENOTCAPABLE
esc_proc: ok
esc_proc_follow: ENOTCAPABLE
esc_unlink_link: ok
done
"""


def sandbox(tmp_path):
    """tmp/outside.txt (never to be touched) and tmp/box (the preopen)."""
    (tmp_path / "outside.txt").write_text("OUTSIDE")
    box = tmp_path / "box"
    box.mkdir()
    return box


def assert_outside_untouched(tmp_path, allowed):
    assert (tmp_path / "outside.txt").read_text() == "OUTSIDE"
    assert (tmp_path / "outside.txt").stat().st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["outside.txt", *allowed])


def wasm_imports(path):
    """Names imported from wasi_snapshot_preview1 (a minimal import-section
    reader, so the test needs no extra tools)."""
    data = Path(path).read_bytes()
    assert data[:4] == b"\0asm"
    pos = 8

    def uleb():
        nonlocal pos
        result = shift = 0
        while True:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    def name():
        nonlocal pos
        n = uleb()
        s = data[pos:pos + n].decode()
        pos += n
        return s

    names = set()
    while pos < len(data):
        sec = data[pos]
        pos += 1
        size = uleb()
        end = pos + size
        if sec == 2:
            for _ in range(uleb()):
                mod, field = name(), name()
                kind = data[pos]
                pos += 1
                if kind == 0:
                    uleb()
                elif kind == 1:
                    pos += 1
                    flags = uleb()
                    uleb()
                    if flags & 1:
                        uleb()
                elif kind == 2:
                    flags = uleb()
                    uleb()
                    if flags & 1:
                        uleb()
                elif kind == 3:
                    pos += 2
                if mod == "wasi_snapshot_preview1":
                    names.add(field)
        pos = end
    return names


def test_every_wasi_function_is_exercised(build_c):
    seen = set()
    for g in GUESTS:
        seen |= wasm_imports(build_c(g))
    assert len(ALL_WASI) == 46
    assert sorted(set(ALL_WASI) - seen) == []


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_filesystem(wisp, build_c, tmp_path, tier):
    box = sandbox(tmp_path)
    m = build_c("wasi_fs.c")
    r = wisp("run", "--tier", tier, "--dir", f"{box}::/sandbox", m, "/sandbox")
    assert r.code == 0, r
    assert r.out.splitlines() == FS_EXPECTED.splitlines()
    assert r.err == ""
    # what the guest left: b.txt with mtime 400 set through the symlink
    assert sorted(p.name for p in box.iterdir()) == ["b.txt"]
    assert (box / "b.txt").stat().st_size == 101
    assert int((box / "b.txt").stat().st_mtime) == 400
    assert_outside_untouched(tmp_path, ["box"])


def test_read_only_preopen(wisp, build_c, tmp_path):
    ro = tmp_path / "ro"
    (ro / "sub").mkdir(parents=True)
    (ro / "data.txt").write_text("readonly")
    rw = tmp_path / "rw"
    rw.mkdir()
    (rw / "mine.txt").write_text("mine")
    before = os.stat(ro / "data.txt")
    m = build_c("wasi_ro.c")
    r = wisp("run", "--dir-ro", f"{ro}::/ro", "--dir", f"{rw}::/rw", m, "/ro", "/rw")
    assert r.code == 0, r
    got = dict(line.split(": ", 1) for line in r.out.splitlines())
    assert got.pop("open_read") == "ok"
    assert got.pop("content") == "readonly"
    assert got.pop("stat") == "ok"
    assert got.pop("readdir") == "4"
    # wasi-libc reports a write on an fd without the write right as EBADF
    assert got.pop("write_on_ro_fd") == "EBADF"
    assert got.pop("regain_write") == "76"
    assert got.pop("rw_create") == "ok"
    assert got.pop("rw_write") == "ok"
    refused = ["ftruncate_ro_fd", "futimens_ro_fd", "fallocate_ro_fd", "open_write",
               "open_rdwr", "open_append", "open_trunc", "create", "fopen_w", "mkdir",
               "rmdir", "unlink", "rename_within", "rename_out", "rename_in", "link_out",
               "symlink", "utimensat", "create_in_subdir"]
    assert {k: got.pop(k) for k in refused} == {k: "ENOTCAPABLE" for k in refused}
    assert got == {}
    # nothing changed below the read-only directory
    assert sorted(p.name for p in ro.iterdir()) == ["data.txt", "sub"]
    assert list((ro / "sub").iterdir()) == []
    after = os.stat(ro / "data.txt")
    assert (after.st_size, after.st_mtime_ns, after.st_nlink) == \
        (before.st_size, before.st_mtime_ns, 1)
    assert sorted(p.name for p in rw.iterdir()) == ["mine.txt", "ok.txt"]


def test_misc(wisp, build_c, tmp_path):
    box = sandbox(tmp_path)
    m = build_c("wasi_misc.c")
    t0 = time.monotonic()
    r = wisp("run", "--dir", f"{box}::/data", "--env", "WISP_T=yes", m, "/data",
             "two words", "", input="ping\n")
    elapsed = time.monotonic() - t0
    assert r.code == 42, r
    assert r.out.splitlines() == [
        "argc: 4", "argv[1]: [/data]", "argv[2]: [two words]", "argv[3]: []",
        "env WISP_T: yes", "environ count: 1",
        "realtime_sane: 1", "monotonic: 1", "process_cputime: 1",
        "thread_cputime: 0 1", "bad_clock: 28", "getres: 0 1", "bad_clock_res: 28",
        "nanosleep_80ms: ok", "poll_abs_realtime: 0 1 7 ok", "poll_zero_subs: 28",
        "poll_stdin: 1 1", "stdin: 5 ping", "poll_eof: 1", "poll_timeout: 0 ok",
        "getentropy: 0", "entropy_nonzero: 1", "random_get_1MiB: 0",
        "sched_yield: 0", "proc_raise: 58",
        "renumber: 0", "renumbered_reads: first", "old_fd_gone: 8",
        "prestat: 0 5", "prestat_name: 0 /data", "prestat_stdout: 8",
        "isatty_stdout: 0",
        "sock_send_pipe: 57", "sock_recv_pipe: 57", "sock_shutdown_pipe: 57",
        "sock_accept_dir: 57", "sock_accept_badf: 8", "sock_send_badf: 8",
        "bye",
    ]
    assert r.err == "write_closed_stdout: -1 EBADF\n"
    assert elapsed >= 0.16  # 80 ms + 50 ms + 30 ms of real sleeping
    assert sorted(p.name for p in box.iterdir()) == ["one.txt", "two.txt"]
    assert_outside_untouched(tmp_path, ["box"])


def test_environment_is_only_what_was_given(wisp, build_c):
    m = build_c(r"""
#include <stdio.h>
extern char **environ;
int main(void) { for (char **e = environ; *e; e++) puts(*e); return 0; }
""", name="envdump")
    r = wisp("run", "--env", "A=1", "--env", "B=two=2", m, env={"SECRET_HOST_VAR": "x"})
    assert r.code == 0, r
    assert r.out == "A=1\nB=two=2\n"


def test_missing_preopen_names_the_directory(wisp, build_c, tmp_path):
    m = build_c("wasi_misc.c")
    missing = tmp_path / "no-such-dir"
    r = wisp("run", "--dir", f"{missing}::/x", m, "/x")
    assert r.code != 0
    assert str(missing) in r.err


def test_write_to_closed_pipe_is_epipe_not_sigpipe(build_c, shared_cache):
    m = build_c("wasi_pipe.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.Popen([str(WISP), "run", str(m)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    assert len(p.stdout.read(65536)) == 65536
    p.stdout.close()
    err = p.stderr.read().decode()
    code = p.wait(timeout=60)
    assert code == 3, (code, err)
    assert err == "write failed: EPIPE\n"


# ---- stdio flags are the guest's own (issue 12.7) ----

def run_with_fds(build_c, shared_cache, args, stdin, stdout, stderr):
    m = build_c("wasi_stdio_flags.c")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.Popen([str(WISP), "run", "--tier", "fast", str(m), *args],
                         stdin=stdin, stdout=stdout, stderr=stderr, env=env)
    return p


def test_guest_stdio_flags_never_reach_the_host(build_c, shared_cache, tmp_path):
    log = tmp_path / "log"
    log.write_text("EXISTING\n")
    out = os.open(log, os.O_WRONLY | os.O_APPEND)      # as a shell's `>>`
    in_r, in_w = os.pipe()                               # stays empty and open
    err_r, err_w = os.pipe()
    try:
        p = run_with_fds(build_c, shared_cache, ["flags"], in_r, out, err_w)
        code = p.wait(timeout=120)
        os.close(err_w)
        err = os.read(err_r, 65536).decode()
        assert code == 0, err
        assert err.splitlines() == [
            "stdout append at start: 1", "stdin nonblock at start: 0",
            "set stdin nonblock: ok",
            "stdin read: EAGAIN",          # emulated: the host fd stays blocking
            "stdin nonblock now: 1",
            "set stdout nonblock, no append: ok", "stdout append now: 0",
            "seek stdout: ok", "write stdout: ok",
            "set stderr nonblock: ok", "stderr still writes: ok",
        ], err
        # the open file descriptions we share with the guest are unchanged
        assert os.get_blocking(in_r) and os.get_blocking(out)
        assert fcntl.fcntl(out, fcntl.F_GETFL) & os.O_APPEND
        # and the log was appended to, not overwritten
        assert log.read_text() == "EXISTING\nGUEST\n"
    finally:
        for fd in (out, in_r, in_w, err_r):
            os.close(fd)


def test_blocking_guest_read_on_a_nonblocking_stdin_waits(build_c, shared_cache):
    in_r, in_w = os.pipe()
    os.set_blocking(in_r, False)        # left so by an earlier program
    try:
        p = run_with_fds(build_c, shared_cache, ["blockread"], in_r, None,
                         subprocess.PIPE)
        # the guest reads before or after this write: either way it must
        # get the data, never EAGAIN
        time.sleep(0.5)
        os.write(in_w, b"late\n")
        os.close(in_w)
        in_w = -1
        err = p.stderr.read().decode()
        assert p.wait(timeout=120) == 0, err
        assert err.splitlines() == ["stdin nonblock: 0", "read: late"], err
        assert not os.get_blocking(in_r)  # still as its owner left it
    finally:
        os.close(in_r)
        if in_w >= 0:
            os.close(in_w)


# ---- named pipes: a blocking open or read parks the process, not a thread ----

def first_line(p, timeout=60):
    """p's first line of output, or fail after `timeout` s (a node whose
    only scheduler is stuck prints nothing)."""
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    assert ready, "no output: the node is stuck"
    return p.stdout.readline()


def fifo_run(build_proc, shared_cache, tmp_path, mode):
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "fifo")
    env = dict(os.environ, WISP_CACHE_DIR=str(shared_cache), WISP_BACKGROUND_COMPILE="0")
    p = subprocess.Popen([str(WISP), "run", "--schedulers", "1", "--dir", f"{d}::/d",
                          str(build_proc("wasi_fifo.c")), mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return d / "fifo", p


def test_a_blocking_fifo_open_for_reading_parks_only_its_process(build_proc, shared_cache,
                                                                  tmp_path):
    """open(O_RDONLY) of a FIFO waits for a writer. It used to do so on the
    scheduler thread: with one scheduler the whole node stopped, and the
    main process never printed its line."""
    fifo, p = fifo_run(build_proc, shared_cache, tmp_path, "read")
    try:
        assert first_line(p) == "main runs while the child waits\n"
        with open(fifo, "w") as w:
            w.write("hello from the test\n")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert (p.returncode, out, err) == (0, "child read: hello from the test\n", "")


def test_a_blocking_fifo_open_for_writing_parks_only_its_process(build_proc, shared_cache,
                                                                  tmp_path):
    """open(O_WRONLY) of a FIFO waits for a reader (the host's non-blocking
    open says ENXIO until one comes; the process sleeps between tries)."""
    fifo, p = fifo_run(build_proc, shared_cache, tmp_path, "write")
    try:
        assert first_line(p) == "main runs while the child waits\n"
        with open(fifo) as r:
            got = r.read()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert got == "hello from the guest\n"
    assert (p.returncode, out, err) == (0, "child wrote: 21\n", "")


def test_a_nonblocking_fifo_open_without_reader_is_enxio(build_proc, shared_cache, tmp_path):
    _, p = fifo_run(build_proc, shared_cache, tmp_path, "nonblock")
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (0, "nonblocking open: -1 No such device or address\n", "")
