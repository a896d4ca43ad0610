"""Host memory of CPU training: give freed activation memory back to the OS.

glibc's malloc serves a large block from a fresh mmap and returns it on free, but after
such a free it raises its mmap threshold (up to 32 MB), so later blocks of a step's
activations (a few MB each) come from the heap arenas, where freed memory stays mapped
and fragments. With the `cpu-demo` preset the process then grows step after step
(peak RSS 1.2 GB after 1 step, 1.5 GB after 10, 2.9 GB by the end of `make demo`) while
a step only needs ~0.8 GB. Fixing the threshold (`mallopt(M_MMAP_THRESHOLD, 64 KiB)`,
which also turns the dynamic adjustment off; glibc mallopt(3)) keeps every large
tensor in its own mapping, returned to the OS when freed: the peak stays flat at what a
step needs, at no measurable cost in step time (docs/internals.md, "Memory").
"""
from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3          # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 64 << 10


def return_freed_memory(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set glibc's fixed mmap threshold (bytes) for this process; True when applied,
    False where there is no glibc (macOS, Windows, musl): nothing changes there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1
