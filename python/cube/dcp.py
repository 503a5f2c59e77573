"""`cube.dcp`: a `torch.distributed.checkpoint` (DCP) storage backend over Cube's levels.

    import torch.distributed.checkpoint as dcp
    import cube.dcp
    dcp.save(state, checkpoint_id=step, storage_writer=cube.dcp.Writer())      # was FileSystemWriter(path)
    dcp.load(state, storage_reader=cube.dcp.Reader())                         # the newest complete step

`Writer` and `Reader` implement DCP's `StorageWriter` / `StorageReader` on the engine of
`cube.Checkpointer`, not beside it: each rank's write items become one Cube shard of that step
(snapshotted into its L1 slot, hashed, recorded and committed by the background thread; persisted
to L3 by the same cadence, or replicated to L2 and L3 by the node daemon under an agent). The
coordinator (rank 0) adds DCP's global `Metadata` (global shapes, each chunk's offsets, where each
chunk lives) to its own shard as one more tensor, so the metadata is checksummed, committed and
replicated with that shard at every level.

Restore picks the newest (step, timeline) that every loading rank can verify: rank 0's shard (the
metadata) and, spread over the loading ranks, every shard the metadata points into, each from
the first source of the engine's restore order (own L1, a peer's L2, L3) whose size and XXH3
match its manifest. DCP's load planner then maps the saved chunks onto the loading ranks' own
layout, so a checkpoint written by N ranks loads on M ranks (resharding); each rank reads the
other ranks' shards it needs from whatever level holds them. The file formats and the layouts
that can be resharded are in docs/checkpoint-format.md ("DCP storage backend").
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed._shard._utils import narrow_tensor_by_index
from torch.distributed.checkpoint.metadata import Metadata, MetadataIndex, StorageMeta
from torch.distributed.checkpoint.planner import (
    LoadItemType,
    LoadPlan,
    LoadPlanner,
    SavePlan,
    SavePlanner,
    WriteItemType,
)
from torch.distributed.checkpoint.storage import StorageReader, StorageWriter, WriteResult
from torch.futures import Future

from .checkpointer import Checkpointer
from .errors import CheckpointError
from .progress import report_restored
from .restore import Catalog, Pair, Shard

log = logging.getLogger("cube.dcp")

# The tensor in the coordinator's shard that holds DCP's pickled global Metadata.
METADATA_TENSOR = "__cube_dcp_metadata__"
# DCP's own format version for the metadata (filesystem.py's CURRENT_DCP_VERSION).
_DCP_VERSION = "1.0.0"
_TRAILING_STEP = re.compile(r"(\d+)$")
_TOP: Pair = (2**62, 0)


@dataclass(frozen=True)
class ChunkLocation:
    """Where one DCP write item lives: the tensor `name` in saving rank `rank`'s shard."""

    rank: int
    name: str


# ---- the engine each Writer and Reader uses ----------------------------------------------------

_engines: dict[tuple[tuple[str, str], ...], Checkpointer] = {}
_engines_lock = threading.Lock()


def shared_checkpointer(**overrides: Any) -> Checkpointer:
    """The process's `Checkpointer` for these options (from the launcher's environment when none).

    A `Writer` and a `Reader` built with the same options share it, so the timeline a restore
    decides (docs/checkpoint-format.md, "Timelines") is the one later saves carry.
    """
    key = tuple(sorted((k, repr(v)) for k, v in overrides.items()))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None or engine._closed:
            engine = Checkpointer(**overrides)
            _engines[key] = engine
        return engine


def parse_step(checkpoint_id: Any, where: str = "checkpoint_id") -> int:
    """A step from DCP's `checkpoint_id`: an int, or a string or path ending in digits
    (`"100"`, `"step-100"`, `"/ckpt/step_100"`), so code that named a directory per step keeps
    its `checkpoint_id`."""
    if isinstance(checkpoint_id, bool):
        raise CheckpointError("INVALID_VALUE", f"{where} {checkpoint_id!r} is not a step", {"field": where})
    if isinstance(checkpoint_id, int):
        step = checkpoint_id
    else:
        text = os.fspath(checkpoint_id) if isinstance(checkpoint_id, os.PathLike) else checkpoint_id
        m = _TRAILING_STEP.search(os.path.basename(str(text).rstrip("/"))) if isinstance(text, str) else None
        if m is None:
            raise CheckpointError(
                "INVALID_VALUE",
                f"{where} {checkpoint_id!r} names no step: give the training step as an int or a"
                " string ending in it (\"step-100\")",
                {"field": where},
            )
        step = int(m.group(1))
    if step < 0:
        raise CheckpointError("INVALID_VALUE", f"{where} step {step} is negative", {"field": where})
    return step


def _chunk_name(index: MetadataIndex) -> str:
    """The shard tensor name of a write item: its FQN, plus `@offsets` for a chunk not at 0."""
    offsets = tuple(index.offset) if index.offset is not None else ()
    if any(offsets):
        return f"{index.fqn}@{','.join(str(o) for o in offsets)}"
    return index.fqn


def _bytes_tensor(data: io.BytesIO) -> torch.Tensor:
    raw = data.getvalue()
    if not raw:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def _complete(metadata: Metadata, storage: dict[MetadataIndex, Any], meta: StorageMeta | None) -> None:
    """Fills in what the storage adds to DCP's metadata (as FileSystemWriter.finish does)."""
    metadata.version = _DCP_VERSION
    metadata.storage_data = storage
    metadata.storage_meta = meta


def _pickled(metadata: Metadata) -> torch.Tensor:
    return torch.frombuffer(bytearray(pickle.dumps(metadata)), dtype=torch.uint8)


def _dist_group() -> tuple[int, int] | None:
    """(rank, world size) of the default process group, or None when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _reduce(value: int, op: str) -> int:
    if _dist_group() is None:
        return value
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX)
    return int(t.item())


# ---- saving --------------------------------------------------------------------------------------


class Writer(StorageWriter):
    """A DCP `StorageWriter` that saves through Cube's levels.

    The step comes from `dcp.save(..., checkpoint_id=step)` (an int or a string ending in the
    step), else from `Writer(step=...)`. Options: `checkpointer` (an existing `cube.Checkpointer`),
    or keyword options of `cube.Checkpointer` (job, l1_dir, l3_dir, ...; by default the launcher's
    environment). `dcp.save` returns once every rank's snapshot is in its L1 slot; hashing,
    records, the manifest and L3 follow in the background (`wait()` waits for them).
    Requires `use_collectives=True` (DCP's default) and rank 0 as the coordinator.
    """

    def __init__(
        self, step: int | None = None, *, checkpointer: Checkpointer | None = None, **overrides: Any
    ):
        super().__init__()
        self.engine = checkpointer if checkpointer is not None else shared_checkpointer(**overrides)
        self.step = None if step is None else parse_step(step, "step")
        self.save_id = uuid.uuid4().hex
        self._coordinator = False
        self._pending: dict[str, torch.Tensor] | None = None
        self._early: dict[MetadataIndex, Any] | None = None  # what rank 0's shard already says

    # DCP's logging reads this attribute.
    @property
    def checkpoint_id(self) -> str | None:
        return None if self.step is None else f"cube:{self.engine.config.job}/step-{self.step}"

    def reset(self, checkpoint_id: str | os.PathLike[str] | int | None = None) -> None:
        if checkpoint_id is not None:
            self.step = parse_step(checkpoint_id)
        self.save_id = uuid.uuid4().hex
        self._pending = None
        self._early = None

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        c = self.engine.config
        if kwargs.get("use_collectives", True) is False:
            raise CheckpointError(
                "INVALID_VALUE",
                "cube.dcp.Writer needs dcp.save(use_collectives=True): the global metadata is"
                " written once, by the coordinator",
                {"field": "use_collectives", "rank": c.rank},
            )
        if self.step is None:
            raise CheckpointError(
                "INVALID_VALUE",
                "no step for this checkpoint: call dcp.save(..., checkpoint_id=step) or build"
                " cube.dcp.Writer(step=step)",
                {"field": "checkpoint_id", "rank": c.rank},
            )
        group = _dist_group()
        world = group[1] if group else 1
        if world != c.world_size:
            raise CheckpointError(
                "INVALID_VALUE",
                f"torch.distributed has {world} ranks but the checkpointer was configured for"
                f" {c.world_size} (WORLD_SIZE); save through the default process group",
                {"field": "WORLD_SIZE", "rank": c.rank},
            )
        if is_coordinator and c.rank != 0:
            raise CheckpointError(
                "INVALID_VALUE",
                f"the DCP coordinator is rank {c.rank}; cube.dcp keeps the global metadata in rank"
                " 0's shard, so save with coordinator_rank 0 on the default process group",
                {"field": "coordinator_rank", "rank": c.rank},
            )
        self._coordinator = is_coordinator

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        return plan

    def prepare_global_plan(self, plans: list[SavePlan]) -> list[SavePlan]:
        return plans

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> Future[list[WriteResult]]:
        """Resolves this rank's items into one state and snapshots it into the rank's L1 slot.

        The coordinator keeps its items until `finish`, which adds the global metadata to the
        same shard (DCP calls `finish` on the coordinator only after every rank wrote).
        """
        assert self.step is not None
        rank = self.engine.config.rank
        state: dict[str, torch.Tensor] = {}
        results: list[WriteResult] = []
        for item in plan.items:
            data = planner.resolve_data(item)
            name = _chunk_name(item.index)
            if name in state or name == METADATA_TENSOR:
                raise CheckpointError(
                    "INVALID_VALUE",
                    f"two write items of rank {rank} map to the shard tensor {name!r}",
                    {"path": name, "rank": rank},
                )
            if item.type == WriteItemType.BYTE_IO:
                assert isinstance(data, io.BytesIO)
                tensor = _bytes_tensor(data)
            else:
                assert isinstance(data, torch.Tensor)
                tensor = data.detach()
            state[name] = tensor
            nbytes = tensor.numel() * tensor.element_size()
            location = ChunkLocation(rank, name)
            results.append(WriteResult(index=item.index, size_in_bytes=nbytes, storage_data=location))
        if self._coordinator:
            early = self._metadata_now(planner, plan)
            if early is None:
                self._pending = state  # finish() adds the metadata and snapshots
            else:
                state[METADATA_TENSOR] = _pickled(early)
                self._early = dict(early.storage_data)
                self.engine.save(self.step, state)
        else:
            self.engine.save(self.step, state)
        fut: Future[list[WriteResult]] = Future()
        fut.set_result(results)
        return fut

    def finish(self, metadata: Metadata, results: list[list[WriteResult]]) -> None:
        """Coordinator: the global metadata goes into its own shard, already snapshotted with it
        in `write_data` when the planner showed the global plan (DCP's default planner does),
        else snapshotted here with it."""
        assert self.step is not None
        storage = {wr.index: wr.storage_data for rank_results in results for wr in rank_results}
        early, self._early = self._early, None
        if early is not None:
            if early != storage:
                # Never expected: the shard already holds metadata that lies about the chunks.
                raise CheckpointError(
                    "INTERNAL",
                    f"step {self.step}: the chunks the ranks wrote differ from the global plan the"
                    " metadata in rank 0's shard was built from; this step must not be restored",
                    {"step": self.step, "rank": 0},
                )
            _complete(metadata, storage, self.storage_meta())
            return
        _complete(metadata, storage, self.storage_meta())
        state = dict(self._pending or {})
        self._pending = None
        state[METADATA_TENSOR] = _pickled(metadata)
        self.engine.save(self.step, state)

    def _metadata_now(self, planner: SavePlanner, plan: SavePlan) -> Metadata | None:
        """The global metadata while the coordinator writes, from the planner's global plan:
        every rank's items are known once DCP planned, so rank 0 need not snapshot its shard
        after the others (in `finish`), which would add its copy to every rank's stall."""
        assert self.step is not None
        plans = getattr(planner, "global_plan", None)
        metadata = getattr(planner, "metadata", None)
        world = self.engine.config.world_size
        if not isinstance(metadata, Metadata) or not isinstance(plans, list) or len(plans) != world:
            return None
        if [item.index for item in plans[0].items] != [item.index for item in plan.items]:
            return None
        storage = {
            item.index: ChunkLocation(rank, _chunk_name(item.index))
            for rank, rank_plan in enumerate(plans)
            for item in rank_plan.items
        }
        _complete(metadata, storage, self.storage_meta())
        return metadata

    def storage_meta(self) -> StorageMeta | None:
        return StorageMeta(checkpoint_id=self.checkpoint_id, save_id=self.save_id)

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        try:
            parse_step(checkpoint_id)
        except CheckpointError:
            return False
        return True

    def wait(self) -> None:
        """Returns when this rank's part of every save is recorded at L1 (and written to L3 when
        the cadence picks it; the manifest follows the last rank's record); raises the engine's
        L1 failure, if any."""
        self.engine.wait()

    def close(self) -> None:
        """Waits for the background work and closes the engine."""
        self.engine.close()


# ---- restoring -----------------------------------------------------------------------------------


class Reader(StorageReader):
    """A DCP `StorageReader` that restores through Cube's levels and restore order.

    Without a step (`dcp.load(..., checkpoint_id=step)` or `Reader(step=...)`) it loads the newest
    (step, timeline) every loading rank can verify, falling back to older ones; with a step, that
    step or an error naming the files that failed. Options as for `Writer`, plus `prune_newer`
    (default: True when loading the newest step): like `Checkpointer.load_latest`, drop this
    rank's part of steps newer than the restored one so that re-saving them never mixes runs.
    After `dcp.load`, `restored` holds `{"step", "timeline", "level", "source"}` of the metadata's
    shard and `errors` every source rejected on the way.
    """

    def __init__(
        self,
        step: int | None = None,
        *,
        checkpointer: Checkpointer | None = None,
        prune_newer: bool | None = None,
        **overrides: Any,
    ):
        super().__init__()
        self.engine = checkpointer if checkpointer is not None else shared_checkpointer(**overrides)
        self.step = None if step is None else parse_step(step, "step")
        self.prune_newer = prune_newer
        self.load_id = uuid.uuid4().hex
        self.restored: dict[str, Any] | None = None
        self.errors: list[CheckpointError] = []
        self._pair: Pair | None = None
        self._metadata: Metadata | None = None
        self._failure: CheckpointError | None = None
        self._chosen = False  # find() chose; the next read_metadata uses its choice
        self._storage: dict[MetadataIndex, ChunkLocation] = {}
        self._shards: dict[int, Shard] = {}

    @property
    def checkpoint_id(self) -> str | None:
        return None if self.step is None else f"cube:{self.engine.config.job}/step-{self.step}"

    def reset(self, checkpoint_id: str | os.PathLike[str] | int | None = None) -> None:
        if checkpoint_id is not None:
            self.step = parse_step(checkpoint_id)
        self.load_id = uuid.uuid4().hex
        self._shards.clear()
        self._pair = None
        self._chosen = False

    def find(self) -> int | None:
        """The step `dcp.load` with this reader will restore, or None when no checkpoint verifies
        (a fresh start). Collective like `dcp.load`: call it on every rank. The next `dcp.load`
        (without a `checkpoint_id`) uses this choice instead of choosing again."""
        self._choose()
        self._chosen = True
        return None if self._metadata is None or self._pair is None else self._pair[0]

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        """Chooses the step every loading rank restores and returns its DCP metadata.

        Collective when torch.distributed is initialized (DCP calls it on every rank at the same
        point); every rank returns the same metadata or raises the same error.
        """
        if "rank" in kwargs:
            # DCP's fallback to rank-local metadata (saves without collectives): Cube has none.
            raise CheckpointError(
                "FILE_NOT_FOUND", "cube.dcp checkpoints have no rank-local metadata", {"field": "rank"}
            )
        if not self._chosen:
            self._choose()
        self._chosen = False
        if self._failure is not None:
            raise self._failure
        assert self._metadata is not None
        return self._metadata

    def _choose(self) -> None:
        """Agrees on the step to restore, decides the run's timeline, sets `_metadata` (or
        `_failure`)."""
        self._metadata, self._failure, self._pair, self.restored = None, None, None, None
        self.engine.wait()
        self._shards.clear()
        self.errors = []
        catalog = self.engine._catalog(0)
        shard0 = self._agree(catalog)
        self.errors.extend(catalog.rejected)
        for err in self.errors:
            self.engine._report(err, warn=True)
        group = _dist_group()
        if shard0 is None:
            where = f" at step {self.step}" if self.step is not None else ""
            seen = [str(e) for e in self.errors]
            if group is not None:
                # Every rank reached this point (the agreement found nothing for all), so this
                # collective is safe; each rank's error then names every file any rank rejected.
                everyone: list[list[str]] = [[] for _ in range(group[1])]
                dist.all_gather_object(everyone, seen)
                seen = [f"rank {r}: {m}" for r, msgs in enumerate(everyone) for m in msgs]
            rejected = "; ".join(seen[:16]) or "no manifest covers rank 0's shard"
            self._failure = CheckpointError(
                "FILE_NOT_FOUND",
                f"no complete DCP checkpoint of job {self.engine.config.job}{where} that every loading"
                f" rank can verify (L1 {self.engine.l1.job_dir}"
                + (f", L3 {self.engine.l3.job_dir}" if self.engine.l3 is not None else "")
                + f"): {rejected}",
                {"step": self.step} if self.step is not None else {},
            )
        # As Checkpointer.load_latest: later saves carry a timeline no abandoned step has.
        abandons = self.engine._decide_timeline(catalog, shard0)
        restored = shard0.step if shard0 is not None else -1
        prune = self.prune_newer if self.prune_newer is not None else self.step is None
        if prune:
            self.engine._prune_newer(restored)
            if abandons:
                self.engine._prune_replicas(restored)
        if group is not None:
            dist.barrier()
        self.engine._scanned = False  # the slots' steps may have changed; re-read before a save
        if shard0 is None:
            return
        self._pair = (shard0.step, shard0.timeline)
        metadata = self._metadata_of(shard0)
        assert metadata is not None  # _agree verified it
        if metadata.storage_meta is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        self._metadata = metadata
        self.restored = {
            "step": shard0.step,
            "timeline": shard0.timeline,
            "level": shard0.source.level,
            "source": shard0.source.describe,
        }
        log.info(
            "restoring DCP step %d (timeline %d) from %s; saves carry timeline %d",
            shard0.step,
            shard0.timeline,
            shard0.source.describe,
            self.engine.timeline,
        )
        report_restored(shard0.step, shard0.source.level)

    def set_up_storage_reader(
        self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any
    ) -> None:
        self._storage = dict(metadata.storage_data or {})

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: list[LoadPlan]) -> list[LoadPlan]:
        return plans

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future[None]:
        """Reads each saved shard this rank's plan needs (verified, from the nearest source that
        verifies) and copies the requested chunks into the planner's tensors."""
        by_rank: dict[int, list[Any]] = {}
        for req in plan.items:
            loc = self._location(req.storage_index)
            by_rank.setdefault(loc.rank, []).append(req)
        for saved_rank in sorted(by_rank):
            shard = self._shards.pop(saved_rank, None) or self._load(saved_rank)
            for req in by_rank[saved_rank]:
                self._serve(shard, self._location(req.storage_index), req, planner)
            del shard
        self._shards.clear()
        fut: Future[None] = Future()
        fut.set_result(None)
        return fut

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        return Writer.validate_checkpoint_id(checkpoint_id)

    # ---- internals ----------------------------------------------------------------------------

    def _location(self, index: MetadataIndex) -> ChunkLocation:
        loc = self._storage.get(index)
        if not isinstance(loc, ChunkLocation):
            raise CheckpointError(
                "INVALID_FILE",
                f"the DCP metadata of step {self._pair and self._pair[0]} has no location for"
                f" {index.fqn} at offset {list(index.offset or [])}",
                {"path": index.fqn},
            )
        return loc

    def _serve(self, shard: Shard, loc: ChunkLocation, req: Any, planner: LoadPlanner) -> None:
        where = shard.source.describe
        saved = shard.tensors.get(loc.name)
        if saved is None:
            raise CheckpointError(
                "INVALID_FILE",
                f"{where} lacks the tensor {loc.name!r} its DCP metadata names",
                {"file": where},
            )
        if req.type == LoadItemType.BYTE_IO:
            planner.load_bytes(req, io.BytesIO(saved.numpy().tobytes()))
            return
        chunk = narrow_tensor_by_index(saved, req.storage_offsets, req.lengths)
        target = planner.resolve_tensor(req).detach()
        if target.size() != chunk.size() or target.dtype != chunk.dtype:
            raise CheckpointError(
                "INVALID_FILE",
                f"{where}: {loc.name!r} gives a {chunk.dtype} chunk of shape {list(chunk.size())} where"
                f" the load plan wants {target.dtype} {list(target.size())}",
                {"file": where, "path": req.dest_index.fqn},
            )
        target.copy_(chunk)
        planner.commit_tensor(req, target)

    def _verify(self, saved_rank: int, pair: Pair, catalog: Catalog | None = None) -> Shard | None:
        """Saved rank's shard of `pair` from the first source that verifies (None when none)."""
        cat = catalog if catalog is not None else self.engine._catalog(saved_rank)
        shard = self.engine._verify(cat, pair)
        if catalog is None:
            self.errors.extend(cat.rejected)
        return shard

    def _load(self, saved_rank: int) -> Shard:
        """Saved rank's shard of the chosen step, or an error naming every source that failed."""
        assert self._pair is not None
        cat = self.engine._catalog(saved_rank)
        shard = self.engine._verify(cat, self._pair)
        for err in cat.rejected:
            self.errors.append(err)
            self.engine._report(err, warn=True)
        if shard is None:
            step, timeline = self._pair
            tried = "; ".join(str(e) for e in cat.rejected) or "no level lists it"
            raise CheckpointError(
                "INVALID_FILE",
                f"rank {saved_rank}'s shard of step {step} (timeline {timeline}) has no source that"
                f" verifies: {tried}",
                {"step": step, "rank": saved_rank},
            )
        return shard

    def _metadata_of(self, shard: Shard) -> Metadata | None:
        blob = shard.tensors.get(METADATA_TENSOR)
        if blob is None:
            return None
        try:
            metadata = pickle.loads(blob.numpy().tobytes())
        except Exception as e:  # noqa: BLE001 - an unreadable metadata makes the source unusable
            self.errors.append(
                CheckpointError(
                    "INVALID_FILE",
                    f"{shard.source.describe}: the DCP metadata does not unpickle: {e!r}",
                    {"file": shard.source.describe},
                )
            )
            return None
        if not isinstance(metadata, Metadata):
            return None
        return metadata

    def _verify_needed(self, pair: Pair, shard0: Shard, metadata: Metadata) -> bool:
        """Verifies this loading rank's share of the saved shards the metadata points into (rank
        r of M takes saved ranks k with k % M == r). Only saved rank r's shard stays in memory for
        `read_data` (the one a load on the same layout reads); the others are read again there,
        so a rank never holds more than two shards however many it checks."""
        group = _dist_group()
        rank, world = group if group is not None else (0, 1)
        locations = (metadata.storage_data or {}).values()
        needed = sorted({loc.rank for loc in locations if isinstance(loc, ChunkLocation)})
        for k in needed:
            if k % world != rank:
                continue
            shard = shard0 if k == 0 else self._verify(k, pair)
            if shard is None:
                return False
            if k == rank:
                self._shards[k] = shard
        return True

    def _agree(self, catalog: Catalog) -> Shard | None:
        """Rank 0's verified shard of the (step, timeline) every loading rank restores.

        The rounds of `Checkpointer._agree` (docs/checkpoint-format.md, "Restore agreement") on
        rank 0's shard, which holds the metadata; a round succeeds only when, in addition, every
        saved shard the metadata points into verifies on the loading rank that checks it.
        """
        pairs = [p for p in catalog.pairs_desc() if self.step is None or p[0] == self.step]
        cache: dict[Pair, tuple[Shard, Metadata] | None] = {}

        def verified(pair: Pair) -> tuple[Shard, Metadata] | None:
            if pair not in cache:
                cache.clear()  # hold at most one candidate in memory
                shard = self.engine._verify(catalog, pair)
                metadata = self._metadata_of(shard) if shard is not None else None
                if shard is not None and metadata is None:
                    catalog.rejected.append(
                        CheckpointError(
                            "INVALID_FILE",
                            f"{shard.source.describe}: step {pair[0]} has no DCP metadata (not saved"
                            " through cube.dcp.Writer)",
                            {"file": shard.source.describe, "step": pair[0]},
                        )
                    )
                cache[pair] = (shard, metadata) if shard is not None and metadata is not None else None
            return cache[pair]

        def newest(bound: Pair, step: int | None = None) -> tuple[Pair, tuple[Shard, Metadata]] | None:
            for pair in pairs:
                if pair < bound and (step is None or pair[0] == step):
                    got = verified(pair)
                    if got is not None:
                        return pair, got
            return None

        bound = _TOP
        while True:
            self._shards.clear()
            mine = newest(bound)
            step = _reduce(mine[0][0] if mine else -1, "min")
            if step < 0:
                return None
            at_step = mine if mine is not None and mine[0][0] == step else newest(bound, step)
            timeline = _reduce(at_step[0][1] if at_step else -1, "max")
            pair = (step, timeline)
            got = (
                at_step[1]
                if at_step is not None and at_step[0] == pair
                else (verified(pair) if pair in catalog.sources and pair < bound else None)
            )
            ok = got is not None and self._verify_needed(pair, got[0], got[1])
            if _reduce(1 if ok else 0, "min") == 1:
                assert got is not None
                return got[0]
            bound = pair


__all__ = ["ChunkLocation", "METADATA_TENSOR", "Reader", "Writer", "parse_step", "shared_checkpointer"]
