"""The compile cache loads only files it can trust (src/compile/cache.c).

Each case is an attack seen in review: a guest given the cache directory
swapped a cached module for its own code, a file planted by another user in a
shared cache was loaded by root, a poisoned entry was never rebuilt. "Another
user" is made with chown, which needs root: run as anyone else (a newcomer's
`make test`), those two tests skip.
"""
import os
import shutil
import stat

import pytest

HELLO_C = r"""
#include <stdio.h>
int main(void) { printf("%s\n", MESSAGE); return 0; }
"""


def build_pair(build_c):
    good = build_c(HELLO_C, '-DMESSAGE="genuine"', name="genuine")
    evil = build_c(HELLO_C, '-DMESSAGE="PWNED"', name="pwned")
    return good, evil


needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="giving a file to another user (chown) needs root")


def cached(cache_dir, tier="fast"):
    return sorted(cache_dir.rglob(f"*.{tier}.so"))


def test_swapped_cached_module_is_not_loaded_and_is_rebuilt(wisp, build_c, cache_dir):
    good, evil = build_pair(build_c)
    assert wisp("run", "--tier", "fast", evil, cache=cache_dir).out == "PWNED\n"
    evil_so = cached(cache_dir)
    assert len(evil_so) == 1
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert r.out == "genuine\n", r
    good_so = [p for p in cached(cache_dir) if p not in evil_so][0]
    # What a guest with write access to the cache did: its own compiled
    # code in place of the genuine module's.
    shutil.copyfile(evil_so[0], good_so)
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert (r.code, r.out) == (0, "genuine\n"), r
    assert "PWNED" not in r.out
    assert "not loading the cached module" in r.err and "integrity check" in r.err, r
    # ... and it was rebuilt: the next run is clean.
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert (r.code, r.out, r.err) == (0, "genuine\n", ""), r


def test_flipped_byte_in_a_cached_module_is_caught(wisp, build_c, cache_dir):
    good, _ = build_pair(build_c)
    assert wisp("run", "--tier", "opt", good, cache=cache_dir).code == 0
    so = cached(cache_dir, "opt")[0]
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0x01
    so.write_bytes(data)
    r = wisp("run", "--tier", "opt", good, cache=cache_dir)
    assert (r.code, r.out) == (0, "genuine\n"), r
    assert "integrity check" in r.err, r
    assert so.read_bytes() != bytes(data)     # replaced by a fresh build


@needs_root
def test_cached_module_owned_by_another_user_is_not_loaded(wisp, build_c, cache_dir):
    good, _ = build_pair(build_c)
    assert wisp("run", "--tier", "fast", good, cache=cache_dir).code == 0
    so = cached(cache_dir)[0]
    os.chown(so, 4242, 4242)                  # its MAC is still valid
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert (r.code, r.out) == (0, "genuine\n"), r
    assert "owned by uid 4242" in r.err, r
    assert so.stat().st_uid == os.geteuid()   # rebuilt by this user


def test_group_writable_cached_module_is_not_loaded(wisp, build_c, cache_dir):
    good, _ = build_pair(build_c)
    assert wisp("run", "--tier", "fast", good, cache=cache_dir).code == 0
    so = cached(cache_dir)[0]
    so.chmod(0o660)
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert r.out == "genuine\n", r
    assert "writable by other users" in r.err, r


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_cache_directory_writable_by_others_is_not_used(wisp, build_c, tmp_path, mode):
    # A shared WISP_CACHE_DIR: anyone could plant a module there.
    good, evil = build_pair(build_c)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    r = wisp("run", "--tier", "fast", good, cache=shared)
    assert (r.code, r.out) == (0, "genuine\n"), r
    assert "cache directory" in r.err and "writable by other users" in r.err, r
    assert cached(shared) == []               # nothing kept there, nothing read


@needs_root
def test_cache_directory_of_another_user_is_not_used(wisp, build_c, tmp_path):
    good, _ = build_pair(build_c)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 4242, 4242)
    r = wisp("run", "--tier", "fast", good, cache=theirs)
    assert (r.code, r.out) == (0, "genuine\n"), r
    assert "owned by uid 4242" in r.err, r


def test_exposed_cache_key_is_replaced(wisp, build_c, cache_dir):
    good, _ = build_pair(build_c)
    assert wisp("run", "--tier", "fast", good, cache=cache_dir).code == 0
    key = cache_dir / "key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    r = wisp("run", "--tier", "fast", good, cache=cache_dir)
    assert r.out == "genuine\n", r
    assert "cache key" in r.err and "replacing it" in r.err, r
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("how", ["parent", "itself", "inside", "inside-ro"])
def test_preopening_the_cache_is_refused_without_the_flag(wisp, build_c, tmp_path, how):
    good, _ = build_pair(build_c)
    cache = tmp_path / "home" / ".cache" / "wisp"
    cache.mkdir(parents=True)
    assert wisp("run", "--tier", "fast", good, cache=cache).code == 0   # creates v2/
    flag, d = {"parent": ("--dir", tmp_path / "home"),
               "itself": ("--dir", cache),
               "inside": ("--dir", cache / "v2"),
               "inside-ro": ("--dir-ro", cache / "v2")}[how]
    r = wisp("run", "--tier", "fast", flag, d, good, cache=cache)
    assert r.code == 2, r
    assert "refusing to give the guest" in r.err and "--allow-cache-dir" in r.err, r
    assert r.out == ""
    r = wisp("run", "--tier", "fast", "--allow-cache-dir", flag, d, good, cache=cache)
    assert (r.code, r.out) == (0, "genuine\n"), r


def test_preopen_through_a_symlink_to_the_cache_is_refused(wisp, build_c, tmp_path):
    good, _ = build_pair(build_c)
    cache = tmp_path / "c"
    cache.mkdir()
    link = tmp_path / "innocent"
    link.symlink_to(tmp_path)
    r = wisp("run", "--tier", "fast", "--dir", link, good, cache=cache)
    assert r.code == 2 and "--allow-cache-dir" in r.err, r


def test_unrelated_directory_is_fine(wisp, build_c, tmp_path):
    good, _ = build_pair(build_c)
    cache = tmp_path / "c"
    cache.mkdir()
    other = tmp_path / "data"
    other.mkdir()
    r = wisp("run", "--tier", "fast", "--dir", other, good, cache=cache)
    assert (r.code, r.out, r.err) == (0, "genuine\n", ""), r
