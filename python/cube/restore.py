"""Restore: which (step, timeline) pairs this rank could resume from, and reading one shard with
verification.

A source is usable only when a manifest covers the shard; its bytes are read once into memory,
hashed while reading, and checked against the manifest's size and XXH3 (and the shard header's
job/step/rank) before any tensor is built from them. A source belongs to one timeline (the run
that wrote it): a shard of the same step number but another timeline is a different candidate,
never a source for this one (docs/checkpoint-format.md, "Timelines").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import xxhash

from .daemon_client import DaemonClient
from .errors import CheckpointError
from .flatten import unflatten_state
from .layout import LevelPaths
from .manifest import check_listed_files, read_manifest, read_record, shard_entry, timeline_of, validate_record
from .safetensors_io import decode_shard

_CHUNK = 16 << 20
LEVEL_ORDER = {"L1": 0, "L2": 1, "L3": 2}


@dataclass
class Source:
    """One place this rank's shard of one step can be read from."""

    level: str
    node: str
    describe: str  # a path, or daemon:LEVEL@NODE
    timeline: int = 0
    # Local sources: the file and the manifest entry (bytes, xxh3, extra).
    path: Path | None = None
    entry: dict[str, Any] | None = None
    # Remote sources: fetch through the daemon.
    fetch: Callable[[], tuple[bytearray, dict[str, Any]]] | None = None


@dataclass
class Shard:
    """A verified shard in memory."""

    step: int
    timeline: int
    source: Source
    buf: bytearray
    extra: dict[str, Any]
    tensors: dict[str, Any] = field(default_factory=dict)
    state: Any = None


def read_verified(path: Path, nbytes: int, xxh3: str) -> bytearray:
    """The whole file, hashed while read; raises INVALID_FILE on a wrong size or checksum."""
    try:
        size = os.stat(path).st_size
    except OSError as e:
        raise CheckpointError("FILE_NOT_FOUND", f"{path}: {e.strerror}", {"file": str(path)}) from e
    if size != nbytes:
        raise CheckpointError(
            "INVALID_FILE", f"{path} has {size} bytes, its manifest says {nbytes}", {"file": str(path)}
        )
    buf = bytearray(nbytes)
    h = xxhash.xxh3_64()
    with open(path, "rb", buffering=0) as f, memoryview(buf) as view:
        done = 0
        while done < nbytes:
            with view[done : done + _CHUNK] as chunk:
                n = f.readinto(chunk)
                if not n:
                    raise CheckpointError(
                        "INVALID_FILE", f"{path} ended after {done} of {nbytes} bytes", {"file": str(path)}
                    )
                with chunk[:n] as got:
                    h.update(got)
                done += n
    digest = h.hexdigest()
    if digest != xxh3:
        raise CheckpointError(
            "INVALID_FILE", f"{path} has XXH3 {digest}, its manifest says {xxh3}", {"file": str(path)}
        )
    return buf


def _check_header(buf: bytearray, describe: str, job: str, step: int, rank: int) -> dict[str, Any]:
    metadata, tensors = decode_shard(buf, describe)
    for key, want in (("cube.job", job), ("cube.step", str(step)), ("cube.rank", str(rank))):
        if metadata.get(key) != want:
            raise CheckpointError(
                "INVALID_FILE",
                f"{describe}: header {key} is {metadata.get(key)!r}, expected {want!r}",
                {"file": describe},
            )
    return tensors


def load_source(src: Source, job: str, step: int, rank: int) -> Shard:
    """Reads and verifies one source; raises CheckpointError when it is unusable."""
    if src.fetch is not None:
        buf, entry = src.fetch()
        if timeline_of(entry) != src.timeline:
            # The daemon's listing and the record it serves disagree (a peer replaced the step
            # between the two): these bytes belong to another run.
            raise CheckpointError(
                "INVALID_FILE",
                f"{src.describe}: step {step} rank {rank} is of timeline {timeline_of(entry)}, "
                f"expected {src.timeline}",
                {"file": src.describe},
            )
    else:
        assert src.path is not None and src.entry is not None
        entry = src.entry
        buf = read_verified(src.path, entry["bytes"], entry["xxh3"])
    tensors = _check_header(buf, src.describe, job, step, rank)
    extra = dict(entry.get("extra") or {})
    # Decode the state now so that a bad `extra` makes this source unusable like a bad checksum.
    state = unflatten_state(extra, tensors)
    return Shard(step, src.timeline, src, buf, extra, tensors, state)


Pair = tuple[int, int]  # (step, timeline)


class Catalog:
    """The (step, timeline) pairs this rank could restore, each with its sources in restore order.

    Also what this rank saw at all, restorable or not: the newest step number (any step
    directory, with or without a manifest) and the highest timeline, which decide the timeline
    of the run that resumes (see `Checkpointer.load_latest`).
    """

    def __init__(self, job: str, rank: int, node: str) -> None:
        self.job, self.rank, self.node = job, rank, node
        self.sources: dict[Pair, list[Source]] = {}
        self.rejected: list[CheckpointError] = []
        self.newest_step_seen = -1
        self.highest_timeline_seen = -1

    def saw(self, step: int, timeline: int | None = None) -> None:
        self.newest_step_seen = max(self.newest_step_seen, step)
        if timeline is not None:
            self.highest_timeline_seen = max(self.highest_timeline_seen, timeline)

    def add(self, step: int, src: Source) -> None:
        self.saw(step, src.timeline)
        self.sources.setdefault((step, src.timeline), []).append(src)

    def pairs_desc(self) -> list[Pair]:
        """Newest step first, then the highest timeline."""
        return sorted(self.sources, reverse=True)

    def ordered(self, pair: Pair) -> list[Source]:
        return sorted(self.sources.get(pair, []), key=lambda s: LEVEL_ORDER[s.level])

    def scan_local(self, paths: LevelPaths, level: str) -> None:
        """Adds the steps whose manifest at this level root covers this rank.

        At L3 the manifest must also be complete (every rank listed, every file present with its
        size); a manifest that fails is rejected with an error naming it.
        """
        try:
            steps = paths.steps()
        except OSError as e:
            # An unreachable level is one unusable source, never an exception on one rank only
            # (the others would wait for it in the agreement's collectives).
            self.rejected.append(
                CheckpointError(
                    "FILE_UNREADABLE",
                    f"{paths.job_dir}: {e.strerror}",
                    {"file": str(paths.job_dir), "level": level},
                )
            )
            return
        for step in steps:
            self.saw(step)
            mpath = paths.manifest(step)
            try:
                if not mpath.exists():
                    self._saw_record(paths, step)
                    continue
                m = read_manifest(mpath, job=self.job, step=step, level=level)
                self.saw(step, timeline_of(m))
                if level == "L3":
                    check_listed_files(m, paths, mpath)
                entry = shard_entry(m, self.rank)
                if entry is None:
                    continue
                path = paths.resolve(entry["file"], str(mpath))
            except OSError as e:
                self.rejected.append(
                    CheckpointError(
                        "FILE_UNREADABLE", f"{mpath}: {e.strerror}", {"file": str(mpath), "level": level}
                    )
                )
                continue
            except CheckpointError as e:
                e.where.setdefault("level", level)
                e.where.setdefault("step", step)
                self.rejected.append(e)
                continue
            self.add(
                step,
                Source(
                    level, entry.get("node", self.node), str(path), timeline_of(m), path=path, entry=entry
                ),
            )

    def _saw_record(self, paths: LevelPaths, step: int) -> None:
        """The timeline of this rank's record in a step without a manifest (a save cut short):
        a resumed run must not reuse the timeline of records it abandons."""
        try:
            self.saw(step, timeline_of(read_record(paths.record(step, self.rank))))
        except (CheckpointError, OSError, ValueError, TypeError):
            pass

    def scan_daemon(self, daemon: DaemonClient, skip_local: set[str]) -> None:
        """Adds the sources the daemon knows (L2 replicas, remote L3), read through the daemon."""
        try:
            steps = daemon.sources(self.rank)
        except CheckpointError as e:
            self.rejected.append(e)
            return
        for item in steps:
            try:
                step = int(item["step"])
                entries = list(item["sources"])
            except (KeyError, TypeError, ValueError):
                continue
            self.saw(step)
            for s in entries:
                level, node = s.get("level"), s.get("node")
                timeline = s.get("timeline", 0)
                if not isinstance(timeline, int) or isinstance(timeline, bool) or timeline < 0:
                    continue
                if (
                    level not in LEVEL_ORDER
                    or not isinstance(node, str)
                    or level in skip_local
                    and node == self.node
                ):
                    continue
                self.add(
                    step,
                    Source(
                        level,
                        node,
                        f"daemon:{level}@{node}",
                        timeline,
                        fetch=_daemon_fetch(daemon, step, self.rank, level, node),
                    ),
                )


def _daemon_fetch(
    daemon: DaemonClient, step: int, rank: int, level: str, node: str
) -> Callable[[], tuple[bytearray, dict[str, Any]]]:
    def fetch() -> tuple[bytearray, dict[str, Any]]:
        where = f"daemon:{level}@{node} step {step} rank {rank}"
        record = validate_record(daemon.record(step, rank, level, node), where, step=step, rank=rank)
        buf, header_xxh3, digest = daemon.shard(step, rank, level, node)
        if len(buf) != record["bytes"] or digest != record["xxh3"] or (header_xxh3 and header_xxh3 != digest):
            raise CheckpointError(
                "INVALID_FILE",
                f"{where}: got {len(buf)} bytes with XXH3 {digest}, the record says {record['bytes']} bytes, {record['xxh3']}",
                {"file": where},
            )
        return buf, record

    return fetch
