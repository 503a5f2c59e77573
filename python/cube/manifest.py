"""Shard records and manifests: building them and validating what is read back."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import CheckpointError
from .layout import LevelPaths, read_json

RECORD_FORMAT = "cube.shard/1"
MANIFEST_FORMAT = "cube.manifest/1"
LEVELS = ("L1", "L2", "L3")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def now_iso() -> str:
    """UTC time as the format writes it: `2026-11-29T20:00:00.000Z`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_record(
    *,
    job: str,
    step: int,
    rank: int,
    world_size: int,
    file: str,
    nbytes: int,
    xxh3: str,
    node: str,
    extra: Mapping[str, Any],
    saved_at: str | None = None,
    timeline: int = 0,
) -> dict[str, Any]:
    """A shard record `rank-RRRRR.json`."""
    return {
        "format": RECORD_FORMAT,
        "job": job,
        "step": step,
        "rank": rank,
        "worldSize": world_size,
        "file": file,
        "bytes": nbytes,
        "xxh3": xxh3,
        "node": node,
        "savedAt": saved_at or now_iso(),
        "timeline": timeline,
        "extra": dict(extra),
    }


def make_manifest(
    *,
    job: str,
    step: int,
    level: str,
    world_size: int,
    layout: Mapping[str, int],
    records: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """A manifest listing `records`' shards, ordered by rank.

    `committedAt` is the newest `savedAt` of the records, so that two ranks committing the same set
    concurrently write byte-identical manifests (the spec lets both rename over the final name).
    Records of two timelines never make a manifest: raises INVALID_VALUE (see `timeline_of`).
    """
    recs = sorted(records, key=lambda r: r["rank"])
    timelines = sorted({timeline_of(r) for r in recs})
    if len(timelines) > 1:
        raise CheckpointError(
            "INVALID_VALUE",
            f"step {step} of {job}: the shard records come from timelines {timelines}; "
            "records of different timelines never make one checkpoint",
            {"step": step, "level": level},
        )
    return {
        "format": MANIFEST_FORMAT,
        "job": job,
        "step": step,
        "level": level,
        "worldSize": world_size,
        "layout": dict(layout),
        "timeline": timelines[0] if timelines else 0,
        "shards": [
            {
                "rank": r["rank"],
                "file": r["file"],
                "bytes": r["bytes"],
                "xxh3": r["xxh3"],
                "node": r["node"],
                "extra": r["extra"],
            }
            for r in recs
        ],
        "committedAt": max((r["savedAt"] for r in recs), default=now_iso()),
    }


def timeline_of(doc: Mapping[str, Any]) -> int:
    """A record's or manifest's timeline; files written before timelines existed read as 0."""
    return int(doc.get("timeline", 0))


def _check_timeline(doc: Mapping[str, Any], path: Path | str, what: str) -> None:
    if "timeline" in doc and not _int(doc["timeline"]):
        raise _bad(path, f"{what} timeline {doc['timeline']!r} is not a non-negative integer")


def _bad(path: Path | str, message: str) -> CheckpointError:
    return CheckpointError("INVALID_FILE", f"{path}: {message}", {"file": str(path)})


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_shard_fields(entry: Any, path: Path | str, what: str) -> None:
    if not isinstance(entry, dict):
        raise _bad(path, f"{what} is not an object")
    if not _int(entry.get("rank")):
        raise _bad(path, f"{what} has no valid rank")
    if not isinstance(entry.get("file"), str) or not entry["file"]:
        raise _bad(path, f"{what} has no file")
    if not _int(entry.get("bytes")):
        raise _bad(path, f"{what} has no valid bytes")
    if not isinstance(entry.get("xxh3"), str) or not _HEX16.match(entry["xxh3"]):
        raise _bad(path, f"{what} has no valid xxh3 (16 lowercase hex digits)")
    if "extra" in entry and not isinstance(entry["extra"], dict):
        raise _bad(path, f"{what} has a non-object extra")


def validate_record(
    rec: Any, path: Path | str, *, job: str | None = None, step: int | None = None, rank: int | None = None
) -> dict[str, Any]:
    """Checks a parsed shard record; raises CheckpointError(INVALID_FILE) naming `path`."""
    if not isinstance(rec, dict) or rec.get("format") != RECORD_FORMAT:
        raise _bad(path, f"not a {RECORD_FORMAT} record")
    _check_shard_fields(rec, path, "the record")
    for key, want in (("job", job), ("step", step), ("rank", rank)):
        if want is not None and rec.get(key) != want:
            raise _bad(path, f"record {key} is {rec.get(key)!r}, expected {want!r}")
    if not _int(rec.get("worldSize")) or rec["rank"] >= rec["worldSize"]:
        raise _bad(path, "record worldSize is missing or not above its rank")
    _check_timeline(rec, path, "record")
    return rec


def read_record(
    path: Path, *, job: str | None = None, step: int | None = None, rank: int | None = None
) -> dict[str, Any]:
    """Reads and validates a shard record."""
    return validate_record(read_json(path), path, job=job, step=step, rank=rank)


def validate_manifest(
    m: Any,
    path: Path | str,
    *,
    job: str | None = None,
    step: int | None = None,
    level: str | None = None,
) -> dict[str, Any]:
    """Checks a parsed manifest's structure; raises CheckpointError(INVALID_FILE) naming `path`.

    At L3 the manifest must list every rank `0..worldSize-1` exactly once (the spec's
    completeness); at L1/L2 it lists a subset, each rank at most once.
    """
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise _bad(path, f"not a {MANIFEST_FORMAT} manifest")
    for key, want in (("job", job), ("step", step), ("level", level)):
        if want is not None and m.get(key) != want:
            raise _bad(path, f"manifest {key} is {m.get(key)!r}, expected {want!r}")
    if m.get("level") not in LEVELS:
        raise _bad(path, f"manifest level {m.get('level')!r} is not one of {', '.join(LEVELS)}")
    _check_timeline(m, path, "manifest")
    world = m.get("worldSize")
    if not _int(world) or world == 0:
        raise _bad(path, "manifest worldSize is missing or not positive")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        raise _bad(path, "manifest lists no shards")
    seen: set[int] = set()
    for i, entry in enumerate(shards):
        _check_shard_fields(entry, path, f"shards[{i}]")
        r = entry["rank"]
        if r >= world or r in seen:
            raise _bad(path, f"shards[{i}] rank {r} is out of range or listed twice")
        seen.add(r)
    if m["level"] == "L3" and len(seen) != world:
        missing = sorted(set(range(world)) - seen)
        raise _bad(path, f"L3 manifest does not list ranks {missing[:8]}")
    return m


def read_manifest(
    path: str | os.PathLike[str], *, job: str | None = None, step: int | None = None, level: str | None = None
) -> dict[str, Any]:
    """Reads and validates a manifest; raises CheckpointError naming the file (truncated JSON,
    wrong format, missing ranks)."""
    p = Path(path)
    return validate_manifest(read_json(p), p, job=job, step=step, level=level)


def check_listed_files(m: Mapping[str, Any], paths: LevelPaths, path: Path | str) -> None:
    """Every listed file exists with the listed size; raises naming the manifest and the shard."""
    for entry in m["shards"]:
        shard = paths.resolve(entry["file"], str(path))
        try:
            size = os.stat(shard).st_size
        except OSError as e:
            raise _bad(
                path, f"lists {entry['file']} (rank {entry['rank']}), which is missing: {e.strerror}"
            ) from e
        if size != entry["bytes"]:
            raise _bad(
                path,
                f"lists {entry['file']} (rank {entry['rank']}) with {entry['bytes']} bytes, but the file has {size}",
            )


def shard_entry(m: Mapping[str, Any], rank: int) -> dict[str, Any] | None:
    """The manifest's entry for `rank`, or None when it does not cover that rank."""
    for entry in m["shards"]:
        if entry["rank"] == rank:
            return dict(entry)
    return None
