"""The mltop process caps glibc's malloc arenas, so idle threads do not each keep freed memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mltop.core.common.malloc import is_glibc

pytestmark = pytest.mark.skipif(not is_glibc(), reason="the arena cap is a glibc setting")

# Starts six threads that each allocate through malloc (blocks above pymalloc's 512 bytes) and
# stay alive, then counts the heaps glibc's malloc_info reports (one <heap> per arena).
PROBE = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from mltop.core.common.malloc import limit_malloc_arenas
    capped = limit_malloc_arenas() if sys.argv[1] == "cap" else False
    ready, done, held = threading.Barrier(7), threading.Event(), []
    def work():
        held.append([bytearray(64 * 1024) for _ in range(4)])
        ready.wait()
        done.wait()
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    ready.wait()
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    path = os.path.join(tempfile.mkdtemp(), "malloc.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    done.set()
    for t in threads:
        t.join()
    print(capped, open(path).read().count("<heap nr="))
    """
)


def _probe(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return out[0], int(out[1])


def test_threads_of_a_capped_process_share_two_arenas() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    capped, heaps = _probe("cap", env)
    assert capped == "True" and heaps <= 2
    uncapped, heaps_by_default = _probe("default", env)
    assert uncapped == "False" and heaps_by_default > 2  # the probe can tell the difference


def test_a_users_malloc_arena_max_is_left_alone() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    capped, heaps = _probe("cap", env)
    assert capped == "False" and heaps <= 4
