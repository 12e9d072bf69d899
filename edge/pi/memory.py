"""The memory edge.pi.serve's requests may hold at once: a pool of bytes, and freed memory given back.

    pool = MemoryPool(200 << 20)
    with pool.hold(needed, wait=2.0):     # PoolBusy after `wait` seconds without room
        ...                               # allocate up to `needed` bytes

A request takes its share (its body, its image's decoding from the header, its reading) before it
allocates and gives it back after, so the requests in progress never hold more than the pool
however many arrive; one that finds no room within `wait` seconds is refused. Linux only for the
resident-memory figures (/proc); elsewhere they read 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from pathlib import Path
from typing import Iterator

MIB = 1 << 20
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large get their own mapping, unmapped when freed


class PoolBusy(Exception):
    """No room in the pool within the wait."""


class MemoryPool:
    """A byte count shared by threads: hold(n) waits until n bytes are free, then takes them."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.free = capacity
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, size: int, wait: float) -> Iterator[None]:
        if size > self.capacity:
            raise ValueError(f"{size:,} bytes can never fit a pool of {self.capacity:,}")
        with self._changed:
            if not self._changed.wait_for(lambda: self.free >= size, timeout=wait):
                raise PoolBusy(f"no room for {size / MIB:.1f} MiB within {wait:g}s")
            self.free -= size
        try:
            yield
        finally:
            with self._changed:
                self.free += size
                self._changed.notify_all()


def release_freed_memory() -> bool:
    """Make glibc give large freed blocks back to the system at once.

    By default glibc raises its mmap threshold up to 32 MiB as large blocks are freed, after which
    such blocks come from per-thread arenas and stay resident once freed: a threaded server's peak
    memory then grows towards the sum of every thread's largest request rather than what is held at
    once. A fixed threshold keeps each large block (an image, an array) mapped on its own. True
    where it took effect (glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return False


def status_kib(field: str, pid: int | str = "self") -> int:
    """A /proc/PID/status figure in KiB (VmRSS: resident now; VmHWM: the peak); 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
