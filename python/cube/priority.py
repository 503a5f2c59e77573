"""CPU priority and placement of the client's background work.

On Linux the nice value belongs to a thread, not to the process, so the background thread can
lower its own priority while the training thread keeps its own: under contention the copy-out,
hash and L3 write then take only CPU time that training leaves idle. Threads it starts inherit
the value. Elsewhere `setpriority(PRIO_PROCESS, ...)` would renice the whole process, so
nothing is changed there. CPU affinity is per thread on Linux too: the background thread can be
kept on the node's housekeeping cores (`CUBE_CKPT_CPUS`) while the training thread keeps its own.
"""

from __future__ import annotations

import os
import re
import sys
import threading

from .errors import CheckpointError


def thread_nice() -> int | None:
    """The calling thread's nice value on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def lower_thread_priority(nice: int) -> int | None:
    """Raises the calling thread's nice value to `nice` if it is lower (an unprivileged thread
    can only lower its priority); returns the value now in effect, None where it cannot be set."""
    current = thread_nice()
    if current is None:
        return None
    if current >= nice:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        return current
    return nice


def parse_cpu_list(value: str, where: str) -> frozenset[int]:
    """CPU numbers from a Linux CPU list such as `"3"`, `"2,5"` or `"0-3,8-11"` (as `taskset -c`
    and cpusets write them)."""
    cpus: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", part, re.ASCII)
        if m is None:
            raise CheckpointError(
                "INVALID_VALUE",
                f"{where}: {part!r} in {value!r} is not a CPU number or range (e.g. 3 or 2-5)",
                {"field": where},
            )
        first = int(m[1])
        last = first if m[2] is None else int(m[2])
        if last < first:
            raise CheckpointError(
                "INVALID_VALUE", f"{where}: the range {part!r} in {value!r} is backwards", {"field": where}
            )
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def pin_thread(cpus: frozenset[int]) -> None:
    """Keeps the calling thread on `cpus` (Linux only; threads it starts inherit them). Raises
    OSError when none of them may be used (outside the process's cpuset, or offline)."""
    if sys.platform.startswith("linux"):
        os.sched_setaffinity(threading.get_native_id(), cpus)
