"""L1 slots: pre-allocated, pre-touched, memory-mapped shard files on tmpfs, reused across saves."""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path

import torch

from .errors import CheckpointError
from .layout import ensure_dir
from .safetensors_io import ShardLayout

_PAGE = mmap.PAGESIZE


class Slot:
    """One slot file and its shared mapping.

    `step` is the step whose bytes the slot holds (None when it holds nothing restorable);
    `idle` is set while no background work reads or writes the slot.
    """

    def __init__(self, path: Path, index: int) -> None:
        self.path = path
        self.index = index
        self.step: int | None = None
        self.layout: ShardLayout | None = None
        self.idle = threading.Event()
        self.idle.set()
        self._fd: int | None = None
        self._mm: mmap.mmap | None = None
        self.u8: torch.Tensor | None = None  # a uint8 tensor viewing the whole mapping

    @property
    def mm(self) -> mmap.mmap:
        assert self._mm is not None
        return self._mm

    @property
    def size(self) -> int:
        return len(self._mm) if self._mm is not None else -1

    def ensure(self, layout: ShardLayout) -> None:
        """Maps the slot at the layout's size, re-allocating only when the size changes."""
        self.layout = layout
        if self.size == layout.total:
            return
        self.unmap()
        ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # A slot left by an older client may be 0644: the shard bytes are this user's only.
            os.fchmod(fd, 0o600)
            os.ftruncate(fd, layout.total)
            # Reserve the memory now so a full tmpfs fails here, not with SIGBUS in a later copy.
            os.posix_fallocate(fd, 0, layout.total)
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            mm = mmap.mmap(fd, layout.total, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            os.close(fd)
            code = "STORAGE_FAILED"
            raise CheckpointError(
                code,
                f"cannot allocate L1 slot {self.path} ({layout.total} bytes): {e.strerror}",
                {"file": str(self.path), "level": "L1"},
            ) from e
        self._fd, self._mm = fd, mm
        self.u8 = torch.frombuffer(mm, dtype=torch.uint8)
        # Pre-touch: write one byte per page so the page tables exist before the first snapshot.
        self.u8[::_PAGE].zero_()

    def unmap(self) -> None:
        """Releases the mapping (tensor view first: an mmap with live exports cannot close)."""
        self.u8 = None
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
