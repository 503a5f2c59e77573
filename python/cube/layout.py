"""Paths inside a level root and the atomic-write discipline (docs/checkpoint-format.md, "Layout")."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable

from .errors import CheckpointError

_STEP_DIR = re.compile(r"^step-(\d{10,})$")
JOB_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def step_dirname(step: int) -> str:
    """`step-0000000100`."""
    return f"step-{step:010d}"


def rank_name(rank: int) -> str:
    """`rank-00000`."""
    return f"rank-{rank:05d}"


class LevelPaths:
    """Where one job's files live inside one level root."""

    def __init__(self, root: str | os.PathLike[str], job: str) -> None:
        if not JOB_ID.match(job):
            raise CheckpointError(
                "INVALID_VALUE", f"job id {job!r} must match [A-Za-z0-9._-]{{1,64}}", {"field": "job"}
            )
        self.root = Path(root)
        self.job = job
        self.job_dir = self.root / job

    def step_dir(self, step: int) -> Path:
        return self.job_dir / step_dirname(step)

    def manifest(self, step: int) -> Path:
        return self.step_dir(step) / "manifest.json"

    def record(self, step: int, rank: int) -> Path:
        return self.step_dir(step) / f"{rank_name(rank)}.json"

    def shard_rel(self, step: int, rank: int) -> str:
        """The record's `file` of an L2/L3 shard."""
        return f"{step_dirname(step)}/{rank_name(rank)}.safetensors"

    def slot_rel(self, rank: int, slot: int) -> str:
        """The record's `file` of an L1 shard."""
        return f"slots/{rank_name(rank)}/slot-{slot}.safetensors"

    def resolve(self, rel: str, where_file: str) -> Path:
        """The path of a record's `file`; refuses names that leave the job directory."""
        parts = rel.split("/")
        # Same rule as the engine: no empty, hidden, "." or ".." parts, no leading "/".
        if not rel or any(p == "" or p.startswith(".") for p in parts):
            raise CheckpointError(
                "INVALID_FILE",
                f"{where_file}: shard file {rel!r} is not a plain relative path",
                {"file": where_file},
            )
        return self.job_dir.joinpath(*parts)

    def steps(self) -> list[int]:
        """Steps that have a directory, ascending (names starting with '.' are ignored)."""
        try:
            names = os.listdir(self.job_dir)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return []
        out = []
        for name in names:
            m = _STEP_DIR.match(name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Creates `path` and missing parents, fsyncing each parent whose entries changed.

    New directories are 0700: they hold training state only this user may read or change.
    """
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    fsync_dir(path.parent)


def check_private_root(path: str | os.PathLike[str], what: str) -> None:
    """Refuses an existing level root that another user owns or anyone may write to.

    Such a directory (say a predictable name under /dev/shm created by someone else first) would
    let that user read the shards or plant files a restore trusts. A missing root is fine: it is
    created 0700 by `ensure_dir`.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.getuid():
        raise CheckpointError(
            "INVALID_VALUE",
            f"{what} {path} is owned by uid {st.st_uid}, not by this user (uid {os.getuid()}); "
            "choose a directory of your own",
            {"file": str(path)},
        )
    if st.st_mode & 0o002:
        raise CheckpointError(
            "INVALID_VALUE",
            f"{what} {path} is writable by every user (mode {st.st_mode & 0o7777:o}); "
            "make it 0700 (chmod 700) or choose another directory",
            {"file": str(path)},
        )


def atomic_write(path: Path, write: Callable[[int], None]) -> None:
    """Writes a file through a temp name in the same directory: write, fsync, rename, fsync dir.

    `write` gets the open file descriptor. A failure removes the temp file and re-raises. The
    file is 0600 whatever the umask: shards, records and manifests are this user's state.
    """
    ensure_dir(path.parent)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        remove_quiet(tmp)
        raise
    fsync_dir(path.parent)


_WRITE_CHUNK = 64 << 20


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range (Linux), or None where it does not exist."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()
_SFR_WAIT_BEFORE, _SFR_WRITE, _SFR_WAIT_AFTER = 1, 2, 4


def write_all(fd: int, data: Any) -> None:
    """os.write until every byte of a buffer is written.

    A large buffer is flushed behind the writes: each 64 MiB chunk's writeback starts as soon as
    it is written, and the one before it is waited for. The disk then works while the copy goes
    on, the closing fsync has at most two chunks left to do (a plain write-then-fsync leaves the
    whole file to it), and dirty pages stay bounded; the daemon's L3 writes do the same.
    """
    # Release the view before returning: an mmap refuses to close while a view of it exists.
    with memoryview(data) as whole, whole.cast("B") as view:
        done, total = 0, len(view)
        flush_behind = _sync_file_range is not None and total > 2 * _WRITE_CHUNK
        while done < total:
            with view[done : done + _WRITE_CHUNK] as chunk:
                n = os.write(fd, chunk)
            if flush_behind:
                assert _sync_file_range is not None
                # A failure here only loses the overlap: the caller's fsync still makes it durable.
                _sync_file_range(fd, done, n, _SFR_WRITE)
                if done >= _WRITE_CHUNK:
                    _sync_file_range(
                        fd, done - _WRITE_CHUNK, _WRITE_CHUNK, _SFR_WAIT_BEFORE | _SFR_WRITE | _SFR_WAIT_AFTER
                    )
            done += n


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write` of a bytes value."""
    atomic_write(path, lambda fd: write_all(fd, data))


def atomic_write_json(path: Path, value: Any) -> None:
    """`atomic_write` of a JSON document (compact, UTF-8, newline-terminated)."""
    atomic_write_bytes(path, (json.dumps(value, separators=(",", ":")) + "\n").encode("utf-8"))


def remove_quiet(path: str | os.PathLike[str]) -> bool:
    """Removes a file if it exists; True when something was removed."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False


def rmdir_quiet(path: str | os.PathLike[str]) -> None:
    """Removes a directory if it is empty (another rank's files may still be in it)."""
    try:
        os.rmdir(path)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise


def read_json(path: Path) -> Any:
    """Parses a JSON file; raises CheckpointError naming the file when missing or malformed."""
    try:
        text = path.read_bytes()
    except FileNotFoundError as e:
        raise CheckpointError("FILE_NOT_FOUND", f"{path} does not exist", {"file": str(path)}) from e
    except OSError as e:
        raise CheckpointError("FILE_UNREADABLE", f"{path}: {e.strerror}", {"file": str(path)}) from e
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            "INVALID_FILE", f"{path} is not valid JSON (truncated or corrupt): {e}", {"file": str(path)}
        ) from e
