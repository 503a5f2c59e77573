"""CPU priority of the client's background work.

On Linux the nice value belongs to a thread, not to the process, so the background thread can
lower its own priority while the training thread keeps its own: under contention the copy-out,
hash and L3 write then take only CPU time that training leaves idle. Threads it starts inherit
the value. Elsewhere `setpriority(PRIO_PROCESS, ...)` would renice the whole process, so
nothing is changed there.
"""

from __future__ import annotations

import os
import sys
import threading


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
