"""The client's configuration: the launcher's environment contract, overridable by keyword."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import CheckpointError
from .layout import JOB_ID
from .priority import parse_cpu_list

DEFAULT_KEEP = {"L1": 2, "L2": 2, "L3": 3}


def parse_keep(value: Any, where: str = "CUBE_CKPT_KEEP") -> dict[str, int]:
    """Retention per level from `"L1=2,L3=3"`, a dict, or an int (the L3 count)."""
    keep = dict(DEFAULT_KEEP)
    if value is None or value == "":
        return keep
    if isinstance(value, int) and not isinstance(value, bool):
        items: list[tuple[str, Any]] = [("L3", value)]
    elif isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            level, sep, n = part.strip().partition("=")
            if not sep:
                raise CheckpointError("INVALID_VALUE", f"{where}: {part!r} is not LEVEL=N", {"field": where})
            items.append((level.strip(), n.strip()))
    else:
        raise CheckpointError("INVALID_VALUE", f"{where}: cannot read {value!r}", {"field": where})
    for level, n in items:
        if level not in keep:
            raise CheckpointError(
                "INVALID_VALUE",
                f"{where}: unknown level {level!r}",
                {"field": where, "allowed": sorted(keep)},
            )
        try:
            count = int(n)
        except (TypeError, ValueError) as e:
            raise CheckpointError(
                "INVALID_VALUE", f"{where}: {level}={n!r} is not an integer", {"field": where}
            ) from e
        if count < 1:
            # Retention 0 would delete the newest complete step, which GC must never do.
            raise CheckpointError(
                "INVALID_VALUE", f"{where}: {level} must keep at least 1 step", {"field": where}
            )
        keep[level] = count
    return keep


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise CheckpointError(
            "INVALID_VALUE", f"environment variable {name}={raw!r} is not an integer", {"field": name}
        ) from e
    if value < minimum:
        raise CheckpointError(
            "INVALID_VALUE", f"environment variable {name}={value} is below {minimum}", {"field": name}
        )
    return value


@dataclass
class Config:
    """Who this rank is and where its checkpoints go."""

    job: str
    rank: int
    world_size: int
    local_rank: int
    local_ranks: list[int]
    node: str
    l1_dir: str
    l3_dir: str | None
    l3_every: int
    keep: dict[str, int]
    socket: str | None
    slots: int
    layout: dict[str, int] = field(default_factory=dict)
    # How long a save waits for the other local ranks to complete the previous step before giving
    # that step up (so the slot holding the newest complete step is never overwritten).
    commit_timeout_s: float = 120.0
    # The nice value of the background thread (copy-out, hash, record, L3 write), so that on a
    # busy node it takes only CPU time training leaves idle. 0 keeps the training thread's priority.
    background_nice: int = 10
    # The CPUs the background thread runs on (the node's housekeeping cores), or None to leave
    # it where the scheduler puts it.
    background_cpus: frozenset[int] | None = None
    # The launcher's attempt number (CUBE_ATTEMPT): the lowest timeline this run's saves carry.
    attempt: int = 0
    # The job's checkpoint interval in steps (CUBE_CKPT_EVERY), or None when unknown: with
    # l3_every it fixes which steps go to L3, the same on every node (cadence.py).
    every_steps: int | None = None


def load_config(**overrides: Any) -> Config:
    """Reads the environment contract of docs/checkpoint-format.md; keyword arguments win.

    Keywords: job, rank, world_size, local_rank, local_ranks, node, l1_dir, l3_dir, l3_every, keep,
    socket, slots, layout, commit_timeout_s, background_nice, background_cpus, attempt, every_steps.
    Ranks on this node default to the contiguous block `RANK - LOCAL_RANK .. + LOCAL_WORLD_SIZE`
    (torch's launch order); LOCAL_WORLD_SIZE defaults to WORLD_SIZE (one node).
    """
    unknown = set(overrides) - set(Config.__dataclass_fields__)
    if unknown:
        raise CheckpointError(
            "INVALID_VALUE",
            f"unknown Checkpointer option(s): {sorted(unknown)}",
            {"field": sorted(unknown)[0]},
        )
    o = {k: v for k, v in overrides.items() if v is not None}
    job = o.get("job", os.environ.get("CUBE_JOB_ID") or "local")
    if not JOB_ID.match(job):
        raise CheckpointError(
            "INVALID_VALUE", f"job id {job!r} must match [A-Za-z0-9._-]{{1,64}}", {"field": "CUBE_JOB_ID"}
        )
    world = int(o.get("world_size", _env_int("WORLD_SIZE", 1, 1)))
    rank = int(o.get("rank", _env_int("RANK", 0)))
    local_world = _env_int("LOCAL_WORLD_SIZE", world, 1)
    # Without LOCAL_RANK, assume torch's contiguous launch order.
    local_rank = int(o.get("local_rank", _env_int("LOCAL_RANK", rank % local_world)))
    if not 0 <= rank < world:
        raise CheckpointError(
            "INVALID_VALUE", f"rank {rank} is outside world size {world}", {"field": "RANK"}
        )
    if "local_ranks" in o:
        local_ranks = sorted(int(r) for r in o["local_ranks"])
    else:
        first = rank - local_rank
        local_ranks = list(range(first, first + local_world))
    if rank not in local_ranks or any(not 0 <= r < world for r in local_ranks):
        raise CheckpointError(
            "INVALID_VALUE",
            f"ranks on this node {local_ranks} must include rank {rank} and lie in 0..{world - 1}",
            {"field": "LOCAL_WORLD_SIZE"},
        )
    keep = parse_keep(
        o.get("keep", os.environ.get("CUBE_CKPT_KEEP")), "keep" if "keep" in o else "CUBE_CKPT_KEEP"
    )
    slots = int(o.get("slots", max(2, keep["L1"])))
    if slots < 2:
        raise CheckpointError(
            "INVALID_VALUE", "at least 2 L1 slots are needed (double buffering)", {"field": "slots"}
        )
    l3_every = int(o.get("l3_every", _env_int("CUBE_CKPT_L3_EVERY", 1, 1)))
    if l3_every < 1:
        raise CheckpointError("INVALID_VALUE", "l3_every must be at least 1", {"field": "l3_every"})
    # CUBE_CKPT_EVERY unset: the interval is unknown, and l3_every counts steps (cadence.py).
    every_steps: int | None = int(o["every_steps"]) if "every_steps" in o else _env_int("CUBE_CKPT_EVERY", 0)
    if every_steps is not None and every_steps < 1:
        if "every_steps" in o:
            raise CheckpointError("INVALID_VALUE", "every_steps must be at least 1", {"field": "every_steps"})
        every_steps = None
    background_nice = int(o.get("background_nice", _env_int("CUBE_CKPT_NICE", 10)))
    if not 0 <= background_nice <= 19:
        raise CheckpointError(
            "INVALID_VALUE",
            f"background_nice {background_nice} must lie in 0..19",
            {"field": "background_nice" if "background_nice" in o else "CUBE_CKPT_NICE"},
        )
    background_cpus = _background_cpus(o)
    return Config(
        job=job,
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        local_ranks=local_ranks,
        node=o.get("node", os.environ.get("CUBE_NODE") or socket.gethostname()),
        l1_dir=str(o.get("l1_dir", os.environ.get("CUBE_CKPT_L1") or "/dev/shm/cube")),
        l3_dir=str(o["l3_dir"]) if "l3_dir" in o else (os.environ.get("CUBE_CKPT_L3") or None),
        l3_every=l3_every,
        keep=keep,
        socket=o.get("socket", os.environ.get("CUBE_CKPT_SOCKET") or None),
        slots=slots,
        layout=dict(o.get("layout", {"tp": 1, "pp": 1, "dp": world})),
        commit_timeout_s=float(o.get("commit_timeout_s", 120.0)),
        background_nice=background_nice,
        background_cpus=background_cpus,
        attempt=int(o.get("attempt", _env_int("CUBE_ATTEMPT", 0))),
        every_steps=every_steps,
    )


def _background_cpus(o: Mapping[str, Any]) -> frozenset[int] | None:
    """`background_cpus` (a CPU list string or numbers) or `CUBE_CKPT_CPUS`, checked against the
    CPUs this machine has."""
    where = "background_cpus" if "background_cpus" in o else "CUBE_CKPT_CPUS"
    raw = o["background_cpus"] if "background_cpus" in o else (os.environ.get("CUBE_CKPT_CPUS") or None)
    if raw is None:
        return None
    if isinstance(raw, str):
        cpus = parse_cpu_list(raw, where)
    else:
        try:
            cpus = frozenset(int(c) for c in raw)
        except (TypeError, ValueError) as e:
            raise CheckpointError("INVALID_VALUE", f"{where}: cannot read {raw!r} as CPUs", {"field": where}) from e
    if not cpus:
        raise CheckpointError("INVALID_VALUE", f"{where}: no CPU given", {"field": where})
    present = os.cpu_count() or 1
    missing = sorted(c for c in cpus if not 0 <= c < present)
    if missing:
        raise CheckpointError(
            "INVALID_VALUE",
            f"{where}: CPU {missing[0]} does not exist (this machine has CPUs 0-{present - 1})",
            {"field": where},
        )
    return cpus
