"""Retention and garbage collection of a level root (docs/checkpoint-format.md, "Retention").

Deletion order is always manifest first (the step stops existing for readers), then records and
shard files, then the directory.
"""

from __future__ import annotations

import os

from .errors import CheckpointError
from .layout import LevelPaths, remove_quiet, rmdir_quiet
from .manifest import check_listed_files, read_manifest


def is_complete(paths: LevelPaths, step: int, level: str) -> bool:
    """The manifest parses, covers what the level requires, and every listed file has its size."""
    mpath = paths.manifest(step)
    if not mpath.exists():
        return False
    try:
        m = read_manifest(mpath, job=paths.job, step=step, level=level)
        check_listed_files(m, paths, mpath)
    except CheckpointError:
        return False
    return True


def delete_step(paths: LevelPaths, step: int) -> None:
    """Removes a whole step directory: manifest first, then everything else."""
    d = paths.step_dir(step)
    remove_quiet(paths.manifest(step))
    try:
        names = os.listdir(d)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        remove_quiet(d / name)
    rmdir_quiet(d)


def drop_rank_step(paths: LevelPaths, step: int, rank: int, shard_too: bool) -> None:
    """Invalidates one rank's part of a step: the manifest (which can no longer be trusted for
    this rank), then the rank's record, then (L2/L3) its shard file; the directory goes when empty."""
    remove_quiet(paths.manifest(step))
    remove_quiet(paths.record(step, rank))
    if shard_too:
        remove_quiet(paths.job_dir / paths.shard_rel(step, rank))
    rmdir_quiet(paths.step_dir(step))


def collect(paths: LevelPaths, level: str, keep: int) -> list[int]:
    """Keeps the newest `keep` complete steps; deletes older steps (complete or torn).

    Never deletes the newest complete step, nor any step newer than it (it may be in flight).
    Returns the deleted steps.
    """
    keep = max(1, keep)
    steps = paths.steps()
    complete = [s for s in steps if is_complete(paths, s, level)]
    if not complete:
        return []
    newest = complete[-1]
    kept = set(complete[-keep:])
    deleted = []
    for s in steps:
        if s >= newest or s in kept:
            continue
        delete_step(paths, s)
        deleted.append(s)
    return deleted
