"""WASI preview 0 (`wasi_unstable`) end to end: modules written by hand in
WAT, so every byte of every structure is the one preview 0's witx defines
(WASI repository, legacy/preview0/witx), run through the real wisp binary.

The main module calls args, environ, clocks, fd_prestat_get/dir_name,
path_open, fd_read/fd_write, fd_filestat_get and path_filestat_get (the
56-byte filestat: a u32 nlink at 20, size at 24; bytes past 56 must stay as
the guest left them), fd_seek with preview 0's whence (CUR 0, END 1, SET 2),
fd_readdir, poll_oneoff with preview 0's clock subscription (an
`identifier` first: 56-byte subscriptions) and fd_fdstat_get (no
sock_accept right), prints what it got, and exits with proc_exit. The
layouts are chosen so the preview 1 reading would print something else: a
garbage identifier where preview 1 has the clock id, a second subscription
at 56 where preview 1 would look at 48, a file whose link count (2) and
size (18) differ.

Bad input: a module importing both namespaces (allowed: one process state
serves both, each call in its own layouts; docs/abi.md says why), preview
0 imports wisp lacks or with a wrong type (refused, naming the import), and
a preview 0 module reaching out of its preopens (refused by the same code
as preview 1: ENOTCAPABLE)."""
import os
import re
import time

import pytest

P0_RIGHTS = (1 << 29) - 1          # every right preview 0 names (bits 0-28)
READ_RIGHTS = 0x2 | 0x4 | 0x20 | 0x200000   # fd_read, fd_seek, fd_tell, fd_filestat_get
DIR_RIGHTS = 0x2000 | 0x4000 | 0x40000      # path_open, fd_readdir, path_filestat_get

# Strings the modules use: `@name` in the WAT is the address of the
# NUL-terminated string (STRINGS.get(name, name)), `%name` its length.
STRINGS = {
    "data": "data.txt", "sub": "sub", "out": "out.txt", "new": "new.txt",
    "ro_file": "r.txt", "parent": "../outside.txt", "absolute": "/etc/passwd",
    "link_out": "link_out", "written": "written by preview 0",
}
STR_BASE = 256


def assemble(template):
    """Give each @name/%name its address/length in one data segment."""
    names = sorted(set(re.findall(r"[@%](\w+)", template)))
    addr, data, segs = {}, b"", []
    for n in names:
        text = STRINGS.get(n, n).encode()
        addr[n] = (STR_BASE + len(data), len(text))
        data += text + b"\0"
    assert STR_BASE + len(data) < 4096
    body = re.sub(r"@(\w+)", lambda m: f"(i32.const {addr[m[1]][0]})", template)
    body = re.sub(r"%(\w+)", lambda m: f"(i32.const {addr[m[1]][1]})", body)
    esc = "".join(f"\\{b:02x}" for b in data)
    segs.append(f'(data (i32.const {STR_BASE}) "{esc}")')
    return body.replace(";;DATA", "\n  ".join(segs))


# Printing helpers, shared by the modules: fd_write to stdout through the
# import $write_fd (either namespace's fd_write).
HELPERS = r"""
  (data (i32.const 240) ": \n")
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write_fd (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))
  (func $puts (param $p i32) (call $write (local.get $p) (call $strlen (local.get $p))))
  (func $label (param $p i32) (call $puts (local.get $p)) (call $write (i32.const 240) (i32.const 2)))
  (func $sp (call $write (i32.const 241) (i32.const 1)))
  (func $nl (call $write (i32.const 242) (i32.const 1)))
  (func $u64 (param $v i64)
    (local $p i32)
    (local.set $p (i32.const 128))
    (loop $l
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (call $write (local.get $p) (i32.sub (i32.const 128) (local.get $p))))
  (func $n (param $v i64) (call $sp) (call $u64 (local.get $v)))
  (func $n32 (param $v i32) (call $n (i64.extend_i32_u (local.get $v))))
  ;; "label: err\n" and "label: err v\n"
  (func $kv0 (param $l i32) (param $err i32)
    (call $label (local.get $l)) (call $u64 (i64.extend_i32_u (local.get $err))) (call $nl))
  (func $kv (param $l i32) (param $err i32) (param $v i64)
    (call $label (local.get $l)) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n (local.get $v)) (call $nl))
  ;; "label: err <bytes>\n"
  (func $ks (param $l i32) (param $err i32) (param $p i32) (param $len i32)
    (call $label (local.get $l)) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $sp) (call $write (local.get $p) (local.get $len)) (call $nl))
  ;; fill [p, p+80) with 0xAA: what a filestat call must not write past its size
  (func $sentinel (param $p i32)
    (local $i i32)
    (loop $l
      (i64.store (i32.add (local.get $p) (local.get $i)) (i64.const 0xAAAAAAAAAAAAAAAA))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 80)))))
"""

# Memory: 0 write iovec, 8 nwritten, 16 read iovec, 24 nread, 32-63
# results, 64-127 digits, 240 ": \n", 256.. strings, 4096 argv, 4160 argv
# buffer, 5200 environ, 5300 environ buffer, 8192 stat buffer (80 bytes),
# 8448 read buffer, 9000 readdir buffer, 12288 subscriptions (56 bytes
# each), 12800 events (32 each), 13312 prestat, 13320 its name, 13400
# fdstat.
P0_WAT = r"""
(module
  (import "wasi_unstable" "fd_write" (func $write_fd (param i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_unstable" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_unstable" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_unstable" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_tell" (func $fd_tell (param i32 i32) (result i32)))
  (import "wasi_unstable" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_unstable" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_unstable" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;;DATA
""" + HELPERS + r"""
  ;; read up to $len bytes of $fd into 8448: "label: err <bytes>"
  (func $read (param $l i32) (param $fd i32) (param $len i32)
    (local $err i32)
    (i32.store (i32.const 16) (i32.const 8448))
    (i32.store (i32.const 20) (local.get $len))
    (local.set $err (call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $ks (local.get $l) (local.get $err) (i32.const 8448) (i32.load (i32.const 24))))
  ;; a preview 0 filestat at 8192: "label: err dev ino filetype nlink size atim mtim ctim tail"
  (func $filestat (param $l i32) (param $err i32)
    (call $label (local.get $l)) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n (i64.load (i32.const 8192)))                 ;; dev
    (call $n (i64.load (i32.const 8200)))                 ;; ino
    (call $n32 (i32.load8_u (i32.const 8208)))            ;; filetype
    (call $n32 (i32.load16_u (i32.const 8209)))           ;; padding: 0
    (call $n32 (i32.load8_u (i32.const 8211)))            ;; padding: 0
    (call $n32 (i32.load (i32.const 8212)))               ;; nlink (u32)
    (call $n (i64.load (i32.const 8216)))                 ;; size
    (call $n (i64.load (i32.const 8224)))                 ;; atim
    (call $n (i64.load (i32.const 8232)))                 ;; mtim
    (call $n (i64.load (i32.const 8240)))                 ;; ctim
    (call $n (i64.load (i32.const 8248)))                 ;; past the end: untouched
    (call $nl))
  ;; a clock subscription at $p: preview 0's identifier, id, timeout, precision, flags
  (func $clock_sub (param $p i32) (param $ud i64) (param $id i32) (param $timeout i64) (param $flags i32)
    (i64.store (local.get $p) (local.get $ud))
    (i64.store (i32.add (local.get $p) (i32.const 8)) (i64.const 0x5a5a5a5a5a5a5a00))  ;; tag 0, then padding
    (i64.store (i32.add (local.get $p) (i32.const 16)) (i64.const 0xdeadbeefdeadbeef)) ;; identifier
    (i32.store (i32.add (local.get $p) (i32.const 24)) (local.get $id))
    (i64.store (i32.add (local.get $p) (i32.const 32)) (local.get $timeout))
    (i64.store (i32.add (local.get $p) (i32.const 40)) (i64.const 0))                  ;; precision
    (i64.store (i32.add (local.get $p) (i32.const 48)) (i64.extend_i32_u (local.get $flags))))
  ;; the events at 12800: "label: err nevents (userdata error type nbytes)..."
  (func $events (param $l i32) (param $err i32)
    (local $i i32) (local $e i32)
    (call $label (local.get $l)) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n32 (i32.load (i32.const 32)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 32))))
      (local.set $e (i32.add (i32.const 12800) (i32.mul (local.get $i) (i32.const 32))))
      (call $n (i64.load (local.get $e)))
      (call $n32 (i32.load16_u (i32.add (local.get $e) (i32.const 8))))
      (call $n32 (i32.load8_u (i32.add (local.get $e) (i32.const 10))))
      (call $n (i64.load (i32.add (local.get $e) (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $nl))
  (func $open (param $dir i32) (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64) (result i32)
    (call $path_open (local.get $dir) (i32.const 0) (local.get $path) (local.get $len)
      (local.get $oflags) (local.get $rights) (local.get $rights) (i32.const 0) (i32.const 32)))

  (func (export "_start")
    (local $err i32) (local $fd i32) (local $dfd i32) (local $t0 i64) (local $p i32) (local $end i32)
    ;; args and environment
    (local.set $err (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (call $kv @argc (local.get $err) (i64.load32_u (i32.const 32)))
    (local.set $err (call $args_get (i32.const 4096) (i32.const 4160)))
    (call $label @argv1) (call $puts (i32.load (i32.const 4100))) (call $nl)
    (call $label @argv2) (call $puts (i32.load (i32.const 4104))) (call $nl)
    (local.set $err (call $environ_sizes_get (i32.const 32) (i32.const 36)))
    (call $kv @environ (local.get $err) (i64.load32_u (i32.const 32)))
    (local.set $err (call $environ_get (i32.const 5200) (i32.const 5300)))
    (call $label @env0) (call $puts (i32.load (i32.const 5200))) (call $nl)

    ;; clocks
    (local.set $err (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 40)))
    (call $kv @realtime (local.get $err) (i64.load (i32.const 40)))
    (local.set $err (call $clock_res_get (i32.const 1) (i32.const 40)))
    (call $kv @res_monotonic_positive (local.get $err) (i64.extend_i32_u (i64.gt_u (i64.load (i32.const 40)) (i64.const 0))))
    (call $kv0 @bad_clock (call $clock_time_get (i32.const 9) (i64.const 1) (i32.const 40)))

    ;; preopens: /box (3), /ro (4), nothing at 5
    (local.set $err (call $fd_prestat_get (i32.const 3) (i32.const 13312)))
    (call $kv @prestat (local.get $err) (i64.load8_u (i32.const 13312)))
    (local.set $err (call $fd_prestat_dir_name (i32.const 3) (i32.const 13320) (i32.load (i32.const 13316))))
    (call $ks @prestat_name (local.get $err) (i32.const 13320) (i32.load (i32.const 13316)))
    (call $kv0 @prestat_end (call $fd_prestat_get (i32.const 5) (i32.const 13312)))

    ;; open and read a file
    (local.set $err (call $open (i32.const 3) @data %data (i32.const 0) (i64.const """ + str(P0_RIGHTS) + r""")))
    (local.set $fd (i32.load (i32.const 32)))
    (call $kv0 @open (local.get $err))
    (call $read @read (local.get $fd) (i32.const 256))

    ;; its filestat, preview 0's 56 bytes
    (call $sentinel (i32.const 8192))
    (call $filestat @fd_filestat (call $fd_filestat_get (local.get $fd) (i32.const 8192)))

    ;; seeking: SET is 2, CUR 0, END 1
    (local.set $err (call $fd_seek (local.get $fd) (i64.const 6) (i32.const 2) (i32.const 32)))
    (call $kv @seek_set (local.get $err) (i64.load (i32.const 32)))
    (call $read @read_at_6 (local.get $fd) (i32.const 7))
    (local.set $err (call $fd_seek (local.get $fd) (i64.const -7) (i32.const 0) (i32.const 32)))
    (call $kv @seek_cur (local.get $err) (i64.load (i32.const 32)))
    (local.set $err (call $fd_seek (local.get $fd) (i64.const -4) (i32.const 1) (i32.const 32)))
    (call $kv @seek_end (local.get $err) (i64.load (i32.const 32)))
    (call $read @read_at_end (local.get $fd) (i32.const 64))
    (local.set $err (call $fd_tell (local.get $fd) (i32.const 32)))
    (call $kv @tell (local.get $err) (i64.load (i32.const 32)))
    (local.set $err (call $fd_seek (local.get $fd) (i64.const 0) (i32.const 0) (i32.const 32)))
    (call $kv @seek_cur_0 (local.get $err) (i64.load (i32.const 32)))
    (call $kv0 @seek_bad_whence (call $fd_seek (local.get $fd) (i64.const 0) (i32.const 3) (i32.const 32)))

    ;; path_filestat_get, of the file and of a directory
    (call $sentinel (i32.const 8192))
    (call $filestat @path_filestat (call $path_filestat_get (i32.const 3) (i32.const 0) @data %data (i32.const 8192)))
    (call $sentinel (i32.const 8192))
    (call $filestat @path_filestat_dir (call $path_filestat_get (i32.const 3) (i32.const 0) @sub %sub (i32.const 8192)))

    ;; fd_readdir: "dirent: name type" per entry
    (local.set $err (call $open (i32.const 3) @sub %sub (i32.const 2) (i64.const """ + str(DIR_RIGHTS) + r""")))
    (local.set $dfd (i32.load (i32.const 32)))
    (call $kv0 @open_dir (local.get $err))
    (local.set $err (call $fd_readdir (local.get $dfd) (i32.const 9000) (i32.const 1024) (i64.const 0) (i32.const 36)))
    (call $kv0 @readdir (local.get $err))
    (local.set $p (i32.const 9000))
    (local.set $end (i32.add (i32.const 9000) (i32.load (i32.const 36))))
    (block $done (loop $next
      (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 24)) (local.get $end)))
      (call $label @dirent)
      (call $write (i32.add (local.get $p) (i32.const 24)) (i32.load (i32.add (local.get $p) (i32.const 16))))
      (call $n32 (i32.load8_u (i32.add (local.get $p) (i32.const 20))))
      (call $n (i64.load (local.get $p)))
      (call $nl)
      (local.set $p (i32.add (local.get $p) (i32.add (i32.const 24) (i32.load (i32.add (local.get $p) (i32.const 16))))))
      (br $next)))
    (call $kv0 @close_dir (call $fd_close (local.get $dfd)))

    ;; poll_oneoff: a relative monotonic clock of 30 ms behind a garbage
    ;; identifier (preview 1 would read it as the clock id: EINVAL)
    (call $clock_sub (i32.const 12288) (i64.const 4660) (i32.const 1) (i64.const 30000000) (i32.const 0))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 40)))
    (local.set $t0 (i64.load (i32.const 40)))
    (local.set $err (call $poll_oneoff (i32.const 12288) (i32.const 12800) (i32.const 1) (i32.const 32)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 40)))
    (call $events @poll_clock (local.get $err))
    (call $kv @poll_waited_30ms (i32.const 0)
      (i64.extend_i32_u (i64.ge_u (i64.sub (i64.load (i32.const 40)) (local.get $t0)) (i64.const 30000000))))
    ;; a 10 s clock and, 56 bytes on, a read subscription on the file
    ;; (6 bytes in: 12 to read); only the file is ready
    (drop (call $fd_seek (local.get $fd) (i64.const 6) (i32.const 2) (i32.const 32)))
    (call $clock_sub (i32.const 12288) (i64.const 17) (i32.const 1) (i64.const 10000000000) (i32.const 0))
    (i64.store (i32.const 12344) (i64.const 34))
    (i64.store (i32.const 12352) (i64.const 1))                  ;; tag fd_read
    (i64.store (i32.const 12360) (i64.extend_i32_u (local.get $fd)))
    (call $events @poll_fd (call $poll_oneoff (i32.const 12288) (i32.const 12800) (i32.const 2) (i32.const 32)))
    ;; an absolute realtime deadline long past (flags, at 48, = abstime)
    (call $clock_sub (i32.const 12288) (i64.const 51) (i32.const 0) (i64.const 1) (i32.const 1))
    (call $events @poll_abstime (call $poll_oneoff (i32.const 12288) (i32.const 12800) (i32.const 1) (i32.const 32)))

    ;; fd_fdstat_get of the preopen: filetype, and no bit 29 (sock_accept) in
    ;; its inheriting rights
    (local.set $err (call $fd_fdstat_get (i32.const 3) (i32.const 13400)))
    (call $label @fdstat_dir) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n32 (i32.load8_u (i32.const 13400)))
    (call $n (i64.shr_u (i64.load (i32.const 13416)) (i64.const 29)))
    (call $nl)

    ;; create a file and write to it
    (local.set $err (call $open (i32.const 3) @out %out (i32.const 9) (i64.const """ + str(P0_RIGHTS) + r""")))
    (local.set $p (i32.load (i32.const 32)))
    (i32.store (i32.const 16) @written)
    (i32.store (i32.const 20) %written)
    (local.set $err (call $write_fd (local.get $p) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $kv @write_file (local.get $err) (i64.load32_u (i32.const 24)))
    (call $kv0 @close_file (call $fd_close (local.get $p)))

    ;; capabilities: nothing outside the preopens, nothing written below /ro
    (call $kv0 @open_parent (call $open (i32.const 3) @parent %parent (i32.const 0) (i64.const """ + str(READ_RIGHTS) + r""")))
    (call $kv0 @open_absolute (call $open (i32.const 3) @absolute %absolute (i32.const 0) (i64.const """ + str(READ_RIGHTS) + r""")))
    (call $kv0 @open_symlink_out (call $path_open (i32.const 3) (i32.const 1) @link_out %link_out (i32.const 0)
      (i64.const """ + str(READ_RIGHTS) + r""") (i64.const 0) (i32.const 0) (i32.const 32)))
    (call $kv0 @stat_parent (call $path_filestat_get (i32.const 3) (i32.const 0) @parent %parent (i32.const 8192)))
    (call $kv0 @create_ro (call $open (i32.const 4) @new %new (i32.const 1) (i64.const """ + str(P0_RIGHTS) + r""")))
    (call $kv0 @open_ro_for_write (call $open (i32.const 4) @ro_file %ro_file (i32.const 0) (i64.const """ + str(P0_RIGHTS) + r""")))
    (local.set $err (call $open (i32.const 4) @ro_file %ro_file (i32.const 0) (i64.const """ + str(READ_RIGHTS) + r""")))
    (call $read @open_ro_for_read (i32.load (i32.const 32)) (i32.const 64))

    (call $kv0 @close (call $fd_close (local.get $fd)))
    (call $proc_exit (i32.const 7))
    (unreachable)))
"""

ATIME, MTIME = 1_000_000_001_000_000_123, 1_200_000_002_000_000_456


def box_and_ro(tmp_path):
    (tmp_path / "outside.txt").write_text("OUTSIDE")
    box = tmp_path / "box"
    (box / "sub" / "deeper").mkdir(parents=True)
    data = box / "data.txt"
    data.write_text("hello preview zero")
    os.link(data, box / "hardlink.txt")     # nlink 2
    os.utime(data, ns=(ATIME, MTIME))
    (box / "sub" / "one").write_text("1")
    (box / "sub" / "two").write_text("22")
    os.symlink(tmp_path / "outside.txt", box / "link_out")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "r.txt").write_text("read only")
    return box, ro


@pytest.mark.parametrize("tier", ["fast", "opt"])
def test_a_preview0_module_runs_with_preview0_layouts(wisp, build_wat, tmp_path, tier):
    box, ro = box_and_ro(tmp_path)
    m = build_wat(assemble(P0_WAT), "wasi_unstable")
    before = time.time_ns()
    r = wisp("run", "--tier", tier, "--dir", f"{box}::/box", "--dir-ro", f"{ro}::/ro",
             "--env", "P0=zero", m, "alpha", "two words")
    after = time.time_ns()
    assert (r.code, r.err) == (7, ""), r
    lines = r.out.splitlines()
    got = {}
    for line in lines:
        key, _, value = line.partition(": ")
        if key != "dirent":
            assert key not in got, line
            got[key] = value
    st = os.stat(box / "data.txt")
    sub = os.stat(box / "sub")
    tail = str(0xAAAAAAAAAAAAAAAA)      # the bytes after the 56 of a filestat
    assert got.pop("argc") == "0 3"
    assert got.pop("argv1") == "alpha"
    assert got.pop("argv2") == "two words"
    assert got.pop("environ") == "0 1"
    assert got.pop("env0") == "P0=zero"
    err, now = got.pop("realtime").split()
    assert err == "0" and before - 10**9 <= int(now) <= after + 10**9
    assert got.pop("res_monotonic_positive") == "0 1"
    assert got.pop("bad_clock") == "28"
    assert got.pop("prestat") == "0 0"
    assert got.pop("prestat_name") == "0 /box"
    assert got.pop("prestat_end") == "8"
    assert got.pop("open") == "0"
    assert got.pop("read") == "0 hello preview zero"
    # dev ino filetype pad pad nlink size atim mtim ctim tail; reading the
    # file may have moved its atime on since (relatime), never back
    f = got.pop("fd_filestat").split()
    assert ATIME <= int(f[8]) <= st.st_atime_ns
    assert f[:8] + f[9:] == ["0", str(st.st_dev), str(st.st_ino), "4", "0", "0", "2", "18",
                             str(MTIME), str(st.st_ctime_ns), tail]
    assert got.pop("seek_set") == "0 6"
    assert got.pop("read_at_6") == "0 preview"
    assert got.pop("seek_cur") == "0 6"
    assert got.pop("seek_end") == "0 14"
    assert got.pop("read_at_end") == "0 zero"
    assert got.pop("tell") == "0 18"
    assert got.pop("seek_cur_0") == "0 18"
    assert got.pop("seek_bad_whence") == "28"
    assert got.pop("path_filestat").split() == [
        "0", str(st.st_dev), str(st.st_ino), "4", "0", "0", "2", "18",
        str(st.st_atime_ns), str(MTIME), str(st.st_ctime_ns), tail]
    d = got.pop("path_filestat_dir").split()
    assert d[:4] == ["0", str(sub.st_dev), str(sub.st_ino), "3"]
    assert d[6] == str(sub.st_nlink) and d[-1] == tail
    assert got.pop("open_dir") == "0"
    assert got.pop("readdir") == "0"
    dirents = sorted(l.split(": ", 1)[1].rsplit(" ", 1)[0] for l in lines if l.startswith("dirent: "))
    cookies = [int(l.rsplit(" ", 1)[1]) for l in lines if l.startswith("dirent: ")]
    assert [e for e in dirents if e.split()[0] not in (".", "..")] == ["deeper 3", "one 4", "two 4"]
    assert cookies == list(range(1, len(cookies) + 1))
    assert got.pop("close_dir") == "0"
    # userdata 4660, no error, type clock; after at least its 30 ms
    assert got.pop("poll_clock") == "0 1 4660 0 0 0"
    assert got.pop("poll_waited_30ms") == "0 1"
    # only the read subscription (userdata 34, type fd_read, 12 bytes left)
    assert got.pop("poll_fd") == "0 1 34 0 1 12"
    assert got.pop("poll_abstime") == "0 1 51 0 0 0"
    assert got.pop("fdstat_dir") == "0 3 0"
    assert got.pop("write_file") == "0 20"
    assert got.pop("close_file") == "0"
    refused = ["open_parent", "open_absolute", "open_symlink_out", "stat_parent",
               "create_ro", "open_ro_for_write"]
    assert {k: got.pop(k) for k in refused} == {k: "76" for k in refused}   # ENOTCAPABLE
    assert got.pop("open_ro_for_read") == "0 read only"
    assert got.pop("close") == "0"
    assert got == {}
    assert (box / "out.txt").read_text() == "written by preview 0"
    assert (tmp_path / "outside.txt").read_text() == "OUTSIDE"
    assert sorted(p.name for p in ro.iterdir()) == ["r.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "outside.txt", "ro"]


# Both namespaces in one module: an fd opened through preview 0 is read and
# seeked through preview 1 too, and each call answers in its own layout.
MIXED_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write_fd (param i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_seek" (func $seek0 (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek1 (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_filestat_get" (func $stat0 (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $stat1 (param i32 i32) (result i32)))
  (import "wasi_unstable" "fd_fdstat_get" (func $fdstat0 (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat1 (param i32 i32) (result i32)))
  (import "wasi_unstable" "fd_fdstat_set_rights" (func $set_rights0 (param i32 i64 i64) (result i32)))
  (memory (export "memory") 1)
  ;;DATA
""" + HELPERS + r"""
  (func $bit29 (param $p i32) (call $n (i64.and (i64.shr_u (i64.load (i32.add (local.get $p) (i32.const 16))) (i64.const 29)) (i64.const 1))))
  (func (export "_start")
    (local $fd i32) (local $err i32)
    (local.set $err (call $path_open (i32.const 3) (i32.const 0) @data %data (i32.const 0)
      (i64.const """ + str(P0_RIGHTS) + r""") (i64.const 0) (i32.const 0) (i32.const 32)))
    (local.set $fd (i32.load (i32.const 32)))
    (call $kv0 @p0_open (local.get $err))
    ;; SET is 0 in preview 1 and 2 in preview 0; the position is the fd's
    (local.set $err (call $seek1 (local.get $fd) (i64.const 6) (i32.const 0) (i32.const 32)))
    (call $kv @p1_seek_set (local.get $err) (i64.load (i32.const 32)))
    (local.set $err (call $seek0 (local.get $fd) (i64.const 2) (i32.const 2) (i32.const 32)))
    (call $kv @p0_seek_set (local.get $err) (i64.load (i32.const 32)))
    (local.set $err (call $seek1 (local.get $fd) (i64.const 0) (i32.const 1) (i32.const 32)))
    (call $kv @p1_seek_cur (local.get $err) (i64.load (i32.const 32)))
    (i32.store (i32.const 16) (i32.const 8448))
    (i32.store (i32.const 20) (i32.const 3))
    (local.set $err (call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $ks @p1_read (local.get $err) (i32.const 8448) (i32.load (i32.const 24)))
    ;; filestat: nlink u32 at 20 and size at 24 (56 bytes), or nlink u64 at
    ;; 24 and size at 32 (64 bytes)
    (call $sentinel (i32.const 8192))
    (local.set $err (call $stat0 (local.get $fd) (i32.const 8192)))
    (call $label @p0_stat) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n32 (i32.load (i32.const 8212))) (call $n (i64.load (i32.const 8216)))
    (call $n (i64.load (i32.const 8248))) (call $nl)
    (call $sentinel (i32.const 8192))
    (local.set $err (call $stat1 (local.get $fd) (i32.const 8192)))
    (call $label @p1_stat) (call $u64 (i64.extend_i32_u (local.get $err)))
    (call $n (i64.load (i32.const 8216))) (call $n (i64.load (i32.const 8224)))
    (call $n (i64.load (i32.const 8256))) (call $nl)
    ;; the preopen's inheriting rights: preview 0 has no bit 29; writing back
    ;; what it read keeps the bit for preview 1
    (call $label @rights)
    (call $u64 (i64.extend_i32_u (call $fdstat0 (i32.const 3) (i32.const 13400))))
    (call $bit29 (i32.const 13400))
    (call $n32 (call $set_rights0 (i32.const 3) (i64.load (i32.const 13408)) (i64.load (i32.const 13416))))
    (call $n32 (call $fdstat1 (i32.const 3) (i32.const 13400)))
    (call $bit29 (i32.const 13400))
    (call $nl)))
"""


def test_a_module_may_import_both_namespaces(wisp, build_wat, tmp_path):
    box, _ = box_and_ro(tmp_path)
    m = build_wat(assemble(MIXED_WAT), "wasi_mixed")
    r = wisp("run", "--dir", f"{box}::/box", m)
    assert (r.code, r.err) == (0, ""), r
    tail = str(0xAAAAAAAAAAAAAAAA)
    assert r.out.splitlines() == [
        "p0_open: 0",
        "p1_seek_set: 0 6",
        "p0_seek_set: 0 2",
        "p1_seek_cur: 0 2",
        "p1_read: 0 llo",
        f"p0_stat: 0 2 18 {tail}",
        f"p1_stat: 0 2 18 {tail}",
        "rights: 0 0 0 0 1",
    ]


def test_a_preview0_import_wisp_lacks_is_named(wisp, build_wat):
    """sock_accept came with preview 1: preview 0 has none to import."""
    m = build_wat("""
(module
  (import "wasi_unstable" "sock_accept" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))""", "p0_sock_accept")
    r = wisp("run", m)
    assert r.code == 1, r
    assert 'module imports function "wasi_unstable"."sock_accept", which wisp does not provide' in r.err, r


def test_a_preview0_import_with_another_type_is_named(wisp, build_wat):
    m = build_wat("""
(module
  (import "wasi_unstable" "fd_seek" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))""", "p0_badsig")
    r = wisp("run", m)
    assert r.code == 1, r
    assert ('import "wasi_unstable"."fd_seek" has type (i32, i32, i32, i32) -> (i32) '
            'but wisp provides (i32, i64, i32, i32) -> (i32)') in r.err, r


def test_a_preview0_library_is_called_one(wisp, build_wat):
    """No _start: wisp says it looks like a WASI library, as for preview 1."""
    m = build_wat("""
(module
  (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_initialize_not")))""", "p0_library")
    r = wisp("run", m)
    assert r.code != 0, r
    assert "looks like a WASI library" in r.err, r
