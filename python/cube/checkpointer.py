"""`cube.Checkpointer`: asynchronous multi-level checkpoints for a training script.

The training thread only takes the snapshot (tensor bytes into an L1 slot, or into pinned host
memory for CUDA tensors); a background thread hashes the slot, writes the shard record, commits
the L1 manifest, copies the steps the L3 cadence picks (cadence.py: every `l3_every`-th
checkpoint interval, by step number) to L3 and collects garbage. See
docs/checkpoint-format.md for the files, and `load_latest` for restore.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import xxhash

from .cadence import persists_to_l3
from .config import Config, load_config
from .daemon_client import DaemonClient
from .progress import report_restored
from .errors import CheckpointError, CheckpointWarning
from .dtensor_state import rebuild_dtensors, refuse_together, saved_world_mismatch
from .flatten import flatten_state, unflatten_state
from .layout import (
    LevelPaths,
    atomic_write,
    atomic_write_json,
    check_private_root,
    rank_name,
    remove_quiet,
    write_all,
)
from .priority import lower_thread_priority, pin_thread
from .manifest import check_listed_files, make_manifest, make_record, read_record, timeline_of
from .restore import Catalog, Pair, Shard, load_source
from .retention import collect, drop_rank_step
from .safetensors_io import ShardLayout, encode_header, plan_layout, shard_metadata
from .slots import Slot

log = logging.getLogger("cube.ckpt")
_HASH_CHUNK = 64 << 20
_MAX_ERRORS = 1000


@dataclass
class _SaveJob:
    step: int
    slot: Slot
    layout: ShardLayout
    extra: dict[str, Any]
    timeline: int
    to_l3: bool
    staged: list[tuple[int, int]]  # (begin, end) data ranges waiting in the CUDA staging buffer


class Checkpointer:
    """Saves and restores one rank's training state at L1 (node memory) and L3 (durable storage).

    Configuration comes from the launcher's environment (`CUBE_JOB_ID`, `RANK`, `WORLD_SIZE`,
    `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `CUBE_NODE`, `CUBE_CKPT_L1`, `CUBE_CKPT_L3`,
    `CUBE_CKPT_L3_EVERY`, `CUBE_CKPT_EVERY`, `CUBE_CKPT_KEEP`, `CUBE_CKPT_SOCKET`, `CUBE_CKPT_NICE`,
    `CUBE_CKPT_CPUS`); keyword arguments override it: job, rank, world_size, local_rank,
    local_ranks, node, l1_dir, l3_dir, l3_every, every_steps, keep, socket, slots (default 2),
    layout, commit_timeout_s, background_nice, background_cpus.
    """

    def __init__(self, **overrides: Any) -> None:
        self.config: Config = load_config(**overrides)
        c = self.config
        check_private_root(c.l1_dir, "the L1 directory")
        self.l1 = LevelPaths(c.l1_dir, c.job)
        # The timeline every save carries (docs/checkpoint-format.md, "Timelines"): the launcher's
        # attempt until `load_latest` decides, from what it restores and what it abandons.
        self.timeline = c.attempt
        self.l3 = LevelPaths(c.l3_dir, c.job) if c.l3_dir else None
        self.daemon = DaemonClient(c.socket, c.job) if c.socket else None
        slot_dir = self.l1.job_dir / "slots" / rank_name(c.rank)
        self._slots = [Slot(slot_dir / f"slot-{k}.safetensors", k) for k in range(c.slots)]
        self._scanned = False
        self._registered = False
        self._saves = 0
        self._layout: ShardLayout | None = None
        self._layout_sig: tuple[Any, ...] = ()
        self._staging: torch.Tensor | None = None
        self._staging_free = threading.Event()
        self._staging_free.set()
        self._queue: queue.Queue[_SaveJob | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._errors: list[CheckpointError] = []
        self._failure: CheckpointError | None = None
        self._closed = False
        self.last_snapshot_s = math.nan
        # A script that ends without close() still gets its last save written out.
        atexit.register(_close_at_exit, weakref.ref(self))

    # ---- public API ---------------------------------------------------------------------------

    def save(self, step: int, state: Any) -> None:
        """Snapshots `state` for `step` and returns; the rest runs in the background.

        Blocks only to copy the tensor bytes (and, with double buffering, while the slot it needs
        is still being written out by the previous save). Raises the failure of an earlier
        save's L1 work, if any.
        """
        if self._closed:
            raise CheckpointError("INVALID_VALUE", "save() after close()", {"rank": self.config.rank})
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise CheckpointError(
                "INVALID_VALUE", f"step must be a non-negative int, got {step!r}", {"field": "step"}
            )
        self._raise_failure()
        t0 = time.perf_counter()
        flat = flatten_state(state)
        layout = self._plan(flat.tensors, step)
        self._scan_slots()
        self._register()
        slot = self._choose_slot()
        self._take_slot(slot, step)
        slot.ensure(layout)
        staged = self._snapshot(slot, layout, flat.tensors, step)
        slot.step = step
        slot.idle.clear()
        self._saves += 1
        # By step, not by count of saves: a restarted rank picks the same steps as the others.
        to_l3 = (
            self.l3 is not None
            and self.daemon is None
            and persists_to_l3(step, self.config.l3_every, self.config.every_steps)
        )
        self._start_worker()
        self._queue.put(_SaveJob(step, slot, layout, flat.extra(), self.timeline, to_l3, staged))
        self.last_snapshot_s = time.perf_counter() - t0

    def wait(self) -> None:
        """Returns when every save of this rank has finished its background work; raises
        CheckpointError if that work failed at L1 (L3 failures are only reported by `errors()`)."""
        self._queue.join()
        self._raise_failure()

    def errors(self) -> list[CheckpointError]:
        """Every problem seen so far that did not raise: L3 write failures, L1 commits given up,
        manifests and shards rejected during restore. Each names its file and level."""
        with self._lock:
            return list(self._errors)

    def load_latest(
        self,
        map_location: str | torch.device | None = None,
        prune_newer: bool = True,
        device_mesh: Any = None,
    ) -> Any:
        """The newest state every rank can restore, or None when there is nothing to resume.

        Returns the saved structure with tensors restored (on CPU, or `map_location`) plus
        `state["__cube__"] = {"step", "timeline", "level", "source"}`.

        Candidates are the (step, timeline) pairs whose L1 manifest (this node), L3 manifest, or
        daemon-listed source covers this rank; a shard of the same step but another timeline is
        not a source for a pair. For each, the sources are tried in the order own L1, L2, L3; a
        source is used only after its size and XXH3 match the manifest. When torch.distributed
        is initialized all ranks agree on one pair (see `_agree`).

        The run's timeline (carried by every later save) is then decided, the same on every
        rank: when any rank saw a step newer than the restored one at any level (or saw steps
        while nothing is restored), training restarts from an older step, and the timeline
        becomes one above the highest any rank saw (at least the attempt, `CUBE_ATTEMPT`);
        otherwise it is the restored step's (at least the attempt). With `prune_newer`, steps
        newer than the restored one (an abandoned timeline) lose this rank's records and their
        manifests at L1 and L3, and, through the node daemon, every peer's L2 replicas of them,
        so that re-saving those steps never mixes old and new shards.

        DTensors (FSDP2, tensor parallel) come back as DTensors on `device_mesh` (the DeviceMesh
        they were saved on, or a mesh it is a named submesh of; a list of meshes is searched in
        order), so that `set_state_dict(model, optimizer, ...)` takes the result as it is. They
        restore only onto the world size and mesh that saved them: anything else raises
        INFEASIBLE on every rank, naming both layouts (cube.dcp reshards; dtensor_state.py).
        """
        self.wait()
        c = self.config
        # Before the agreement and any pruning: on more ranks, the new ones find no shard and
        # everyone would start fresh, dropping the steps the refusal keeps intact.
        levels = [self.l1] + ([self.l3] if self.l3 is not None else [])
        other_world = saved_world_mismatch(levels, c.job, c.world_size)
        refuse_together(
            None
            if other_world is None
            else CheckpointError("INFEASIBLE", other_world, {"rank": c.rank, "field": "world_size"}),
            c.world_size,
        )
        catalog = self._catalog()
        shard = self._agree(catalog)
        for err in catalog.rejected:
            self._report(err, warn=True)
        restored = shard.step if shard else -1
        abandons = self._decide_timeline(catalog, shard)
        if prune_newer:
            self._prune_newer(restored)
            if abandons:
                self._prune_replicas(restored)
        if _dist_active(self.config.world_size):
            import torch.distributed as dist

            dist.barrier()
        self._scanned = False  # the slots' steps may have changed; re-read before the next save
        if shard is None:
            return None
        state = shard.state
        if map_location is not None:
            state = unflatten_state(shard.extra, {k: v.to(map_location) for k, v in shard.tensors.items()})
        state, refusal = rebuild_dtensors(state, device_mesh, c.world_size)
        refuse_together(refusal, c.world_size)
        if isinstance(state, dict):
            state["__cube__"] = {
                "step": shard.step,
                "timeline": shard.timeline,
                "level": shard.source.level,
                "source": shard.source.describe,
            }
        log.info(
            "restored step %d (timeline %d) from %s (%s); saves carry timeline %d",
            shard.step,
            shard.timeline,
            shard.source.level,
            shard.source.describe,
            self.timeline,
        )
        # Under a Cube agent the restore becomes the job's `job-restored` event (no-op otherwise).
        report_restored(shard.step, shard.source.level)
        return state

    def close(self) -> None:
        """Waits for background work, stops the worker and unmaps the slots."""
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._closed = True
            if self._worker is not None:
                self._queue.put(None)
                self._worker.join()
            for s in self._slots:
                s.unmap()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- saving: training thread --------------------------------------------------------------

    def _plan(self, tensors: list[tuple[str, torch.Tensor]], step: int) -> ShardLayout:
        # The header is padded as the reference writer pads it (to 8, not to room for any step),
        # so its size follows the step's digit count: a new layout (and slot size) only when that
        # count changes, a handful of times in a run.
        sig = (tuple((n, t.dtype, tuple(t.shape)) for n, t in tensors), len(str(step)))
        if self._layout is None or self._layout_sig != sig:
            c = self.config
            self._layout = plan_layout(tensors, shard_metadata(c.job, step, c.rank))
            self._layout_sig = sig
        return self._layout

    def _register(self) -> None:
        if self.daemon is None or self._registered:
            return
        c = self.config
        self.daemon.register(c.rank, c.world_size, c.local_ranks, c.l3_every, c.keep, c.every_steps)
        self._registered = True

    def _scan_slots(self) -> None:
        """Learns which step each slot holds from this rank's L1 records (after a restart)."""
        if self._scanned:
            return
        self._scanned = True
        rank = self.config.rank
        for s in self._slots:
            s.step = None
        by_slot: dict[int, list[int]] = {}
        for step in self.l1.steps():
            path = self.l1.record(step, rank)
            if not path.exists():
                continue
            try:
                rec = read_record(path, job=self.config.job, step=step, rank=rank)
            except CheckpointError:
                drop_rank_step(self.l1, step, rank, shard_too=False)
                continue
            for s in self._slots:
                if rec["file"] == self.l1.slot_rel(rank, s.index):
                    by_slot.setdefault(s.index, []).append(step)
        for index, steps in by_slot.items():
            steps.sort()
            # Only the newest record naming a slot can match its bytes; older ones are stale.
            for stale in steps[:-1]:
                drop_rank_step(self.l1, stale, rank, shard_too=False)
            self._slots[index].step = steps[-1]

    def _l1_complete(self, step: int) -> bool:
        return self.l1.manifest(step).exists()

    def _choose_slot(self) -> Slot:
        """The slot to overwrite: never the one holding this node's newest complete L1 step.

        Preference: an empty slot, else the oldest slot older than the newest complete step. When
        every other slot holds a newer step still waiting for the other local ranks' records, wait
        for that commit up to `commit_timeout_s`; past it, that pending step is given up (its slot
        is reused) and the problem is reported.
        """
        free = [s for s in self._slots if s.step is None]
        if free:
            return free[0]
        deadline = time.monotonic() + self.config.commit_timeout_s
        while True:
            held = sorted(((s.step, s) for s in self._slots if s.step is not None), key=lambda p: p[0])
            complete = [step for step, _ in held if self._l1_complete(step)]
            if not complete:
                return held[0][1]
            protected = max(complete)
            older = [slot for step, slot in held if step < protected]
            if older:
                return older[0]
            pending_step, pending = next((step, slot) for step, slot in held if step > protected)
            # Our own background work for it must finish first; then the other local ranks'.
            pending.idle.wait()
            self._raise_failure()
            if self._l1_complete(pending_step):
                continue
            own_record = self.l1.record(pending_step, self.config.rank).exists()
            if own_record and time.monotonic() < deadline:
                time.sleep(0.002)
                continue
            self._report(
                CheckpointError(
                    "INFEASIBLE",
                    f"L1 step {pending_step} was not committed by all local ranks within "
                    f"{self.config.commit_timeout_s:g}s; giving it up to keep step {protected}",
                    {"level": "L1", "step": pending_step, "rank": self.config.rank, "node": self.config.node},
                ),
                warn=True,
            )
            return pending

    def _take_slot(self, slot: Slot, step: int) -> None:
        """Waits until nobody reads the slot, then invalidates the step it held (manifest first)."""
        slot.idle.wait()
        self._raise_failure()
        if self.daemon is not None:
            self.daemon.lease(self.config.rank, slot.index)
        for other in self._slots:
            if other is not slot and other.step == step:
                # Saving a step again: the other slot's copy keeps matching the old record and
                # manifest until the background work replaces both.
                other.step = None
        if slot.step is not None:
            drop_rank_step(self.l1, slot.step, self.config.rank, shard_too=False)
            slot.step = None

    def _snapshot(
        self, slot: Slot, layout: ShardLayout, tensors: list[tuple[str, torch.Tensor]], step: int
    ) -> list[tuple[int, int]]:
        """Copies the tensor bytes: CPU tensors straight into the mapped slot, CUDA tensors into a
        pinned staging buffer (synchronized here, copied into the slot in the background)."""
        c = self.config
        slot.mm[: layout.data_start] = encode_header(layout, shard_metadata(c.job, step, c.rank))
        assert slot.u8 is not None
        data = slot.u8[layout.data_start :]
        staged: list[tuple[int, int]] = []
        devices: set[torch.device] = set()
        for spec, (_, t) in zip(layout.specs, tensors):
            if spec.end == spec.begin:
                continue
            src = t.detach()
            if not src.is_contiguous():
                src = src.contiguous()
            raw = src.reshape(-1).view(torch.uint8)
            if src.device.type == "cpu":
                data[spec.begin : spec.end].copy_(raw)
            elif src.device.type != "cuda":
                data[spec.begin : spec.end].copy_(raw.cpu())
            else:
                staging = self._staging_for(layout)
                staging[spec.begin : spec.end].copy_(raw, non_blocking=True)
                staged.append((spec.begin, spec.end))
                devices.add(src.device)
        for d in devices:
            torch.cuda.current_stream(d).synchronize()
        if staged:
            self._staging_free.clear()
        return staged

    def _staging_for(self, layout: ShardLayout) -> torch.Tensor:
        # One pinned buffer; the previous save's background copy-out must be done with it.
        self._staging_free.wait()
        if self._staging is None or self._staging.numel() < layout.data_len:
            self._staging = torch.empty(layout.data_len, dtype=torch.uint8, pin_memory=True)
        return self._staging

    # ---- saving: background thread ------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._run, name=f"cube-ckpt-rank{self.config.rank}", daemon=True
            )
            self._worker.start()

    def _run(self) -> None:
        lower_thread_priority(self.config.background_nice)
        cpus = self.config.background_cpus
        if cpus is not None:
            try:
                pin_thread(cpus)
            except OSError as e:  # a placement hint: the checkpoints are as safe without it
                self._report(
                    CheckpointError(
                        "INFEASIBLE",
                        f"cannot keep the background thread on CPUs {sorted(cpus)} ({e.strerror});"
                        " it runs wherever the scheduler puts it",
                        {"field": "CUBE_CKPT_CPUS"},
                    ),
                    warn=True,
                )
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._finish(job)
            finally:
                self._queue.task_done()

    def _finish(self, job: _SaveJob) -> None:
        c, slot = self.config, job.slot
        try:
            try:
                if job.staged:
                    assert self._staging is not None and slot.u8 is not None
                    data = slot.u8[job.layout.data_start :]
                    for begin, end in job.staged:
                        data[begin:end].copy_(self._staging[begin:end])
            finally:
                self._staging_free.set()
            h = xxhash.xxh3_64()
            with memoryview(slot.mm) as view:
                for off in range(0, len(view), _HASH_CHUNK):
                    with view[off : off + _HASH_CHUNK] as chunk:
                        h.update(chunk)
            record = make_record(
                job=c.job,
                step=job.step,
                rank=c.rank,
                world_size=c.world_size,
                file=self.l1.slot_rel(c.rank, slot.index),
                nbytes=job.layout.total,
                xxh3=h.hexdigest(),
                node=c.node,
                extra=job.extra,
                timeline=job.timeline,
            )
            # A manifest of this step from an abandoned timeline must not survive our new record.
            remove_quiet(self.l1.manifest(job.step))
            atomic_write_json(self.l1.record(job.step, c.rank), record)
            if self.daemon is not None:
                self.daemon.saved(record)
            else:
                self._commit(self.l1, "L1", job.step, c.local_ranks)
        except BaseException as e:  # noqa: BLE001 - reported to the training thread
            if isinstance(e, CheckpointError):
                err = e
            else:
                where: dict[str, Any] = {"level": "L1", "step": job.step, "rank": c.rank}
                if isinstance(e, OSError) and e.filename:
                    where["file"] = str(e.filename)
                # A write that failed (ENOSPC, EIO) is a run-time condition; anything else a bug.
                code = "STORAGE_FAILED" if isinstance(e, OSError) else "INTERNAL"
                err = CheckpointError(code, f"L1 save of step {job.step} failed: {e}", where)
            with self._lock:
                self._failure = err
            self._report(err, warn=False)
            slot.idle.set()
            return
        if job.to_l3:
            try:
                self._persist_l3(job, record)
            except Exception as e:  # noqa: BLE001 - L3 trouble never stops training
                assert self.l3 is not None
                err = (
                    e
                    if isinstance(e, CheckpointError)
                    else CheckpointError(
                        "STORAGE_FAILED",
                        f"L3 write of step {job.step} to {self.l3.job_dir} failed: {e}",
                        {
                            "level": "L3",
                            "step": job.step,
                            "rank": c.rank,
                            "file": str(getattr(e, "filename", None) or self.l3.job_dir),
                        },
                    )
                )
                self._report(err, warn=True)
        slot.idle.set()

    def _commit(self, paths: LevelPaths, level: str, step: int, ranks: list[int]) -> bool:
        """Writes the manifest when every rank in `ranks` has a record for `step` (the rank whose
        record completes the set commits; concurrent committers write identical bytes)."""
        c = self.config
        records = []
        for r in ranks:
            p = paths.record(step, r)
            if not p.exists():
                return False
            try:
                rec = read_record(p, job=c.job, step=step, rank=r)
            except CheckpointError:
                return False
            if rec["worldSize"] != c.world_size:
                return False
            records.append(rec)
        timelines = {timeline_of(r) for r in records}
        if len(timelines) > 1:
            # A leftover record of an abandoned run (its prune failed): never one manifest with it.
            log.warning(
                "not committing step %d at %s: its records come from timelines %s",
                step,
                level,
                sorted(timelines),
            )
            return False
        m = make_manifest(
            job=c.job, step=step, level=level, world_size=c.world_size, layout=c.layout, records=records
        )
        mpath = paths.manifest(step)
        try:
            check_listed_files(m, paths, mpath)
        except CheckpointError as e:
            # A peer moved on and reused its slot between its record and our check: the step can
            # no longer be complete, which is not this rank's failure.
            log.info("not committing %s: %s", mpath, e)
            return False
        atomic_write_json(mpath, m)
        return True

    def _check_fence(self, step: int, timeline: int) -> None:
        """Raises INFEASIBLE when the job's L3 fence (`<L3>/<job>/fence.json`, raised by the node
        agent at each launch; docs/checkpoint-format.md, "Fencing") names a newer attempt than
        `timeline`: this rank belongs to a replaced attempt and may not commit at L3."""
        assert self.l3 is not None
        path = self.l3.job_dir / "fence.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            attempt = json.loads(text)["attempt"]
            if not isinstance(attempt, int):
                raise TypeError("attempt is not an integer")
        except (ValueError, KeyError, TypeError) as e:
            # Guessing "no fence" could let a replaced attempt commit.
            raise CheckpointError(
                "CORRUPT_DATA", f"the fence {path} is unreadable: {e}", {"file": str(path)}
            ) from e
        if timeline < attempt:
            raise CheckpointError(
                "INFEASIBLE",
                f"step {step} of {self.config.job} (timeline {timeline}) is fenced at {path}: "
                f"attempt {attempt} was launched since, so an older attempt may not commit",
                {"level": "L3", "step": step, "file": str(path), "field": "fence"},
            )

    def _persist_l3(self, job: _SaveJob, l1_record: dict[str, Any]) -> None:
        assert self.l3 is not None
        c = self.config
        # Fenced: write nothing, the shard's name is the newer attempt's shard's name too.
        self._check_fence(job.step, job.timeline)
        remove_quiet(self.l3.manifest(job.step))
        rel = self.l3.shard_rel(job.step, c.rank)
        atomic_write(self.l3.job_dir / rel, lambda fd: write_all(fd, job.slot.mm))
        record = dict(l1_record, file=rel)
        record_path = self.l3.record(job.step, c.rank)
        atomic_write_json(record_path, record)
        try:
            # Again just before the manifest: the fence may have risen while this rank wrote.
            self._check_fence(job.step, job.timeline)
        except CheckpointError:
            # Take back what this rank wrote, unless a newer attempt's record replaced it since.
            try:
                held = read_record(record_path, job=c.job, step=job.step, rank=c.rank)
                ours = timeline_of(held) == job.timeline
            except (CheckpointError, OSError):
                ours = True
            if ours:
                remove_quiet(record_path)
                remove_quiet(self.l3.job_dir / rel)
            raise
        if self._commit(self.l3, "L3", job.step, list(range(c.world_size))):
            collect(self.l3, "L3", c.keep["L3"])

    def _report(self, err: CheckpointError, warn: bool) -> None:
        with self._lock:
            self._errors.append(err)
            # A persistent problem (L3 down for days) must not grow memory without bound.
            del self._errors[:-_MAX_ERRORS]
        if warn:
            warnings.warn(str(err), CheckpointWarning, stacklevel=3)
        else:
            log.warning("%s", err)

    def _raise_failure(self) -> None:
        with self._lock:
            err, self._failure = self._failure, None
        if err is not None:
            raise err

    # ---- restoring ----------------------------------------------------------------------------

    def _catalog(self, rank: int | None = None) -> Catalog:
        """The sources of `rank`'s shard (default this rank's; cube.dcp reads other ranks' too)."""
        c = self.config
        catalog = Catalog(c.job, c.rank if rank is None else rank, c.node)
        catalog.scan_local(self.l1, "L1")
        if self.l3 is not None:
            catalog.scan_local(self.l3, "L3")
        if self.daemon is not None:
            catalog.scan_daemon(self.daemon, skip_local={"L1"} | ({"L3"} if self.l3 is not None else set()))
        return catalog

    def _verify(self, catalog: Catalog, pair: Pair) -> Shard | None:
        """The catalog's rank's shard of the (step, timeline) pair from the first source that
        verifies (this rank's, unless cube.dcp built the catalog for another rank)."""
        c = self.config
        step = pair[0]
        for src in catalog.ordered(pair):
            try:
                return load_source(src, c.job, step, catalog.rank)
            except Exception as e:  # noqa: BLE001 - any unusable source falls back, on every rank alike
                err = (
                    e
                    if isinstance(e, CheckpointError)
                    else CheckpointError(
                        "INVALID_FILE",
                        f"{src.describe}: cannot restore from it: {e!r}",
                        {"file": src.describe},
                    )
                )
                err.where.setdefault("level", src.level)
                err.where.setdefault("step", step)
                catalog.rejected.append(err)
        return None

    def _agree(self, catalog: Catalog) -> Shard | None:
        """The shard of the (step, timeline) pair every rank restores.

        Pairs are ordered newest step first, then highest timeline. Alone: the first pair with a
        verified source. With torch.distributed, rounds of (`bound` excludes it and every pair
        above it):
          1. each rank proposes p_r, its newest verified pair below the bound (-1 if none);
          2. s = all_reduce(MIN, step of p_r); s == -1 means some rank has nothing: all start fresh;
          3. each rank offers its highest verified timeline at step s below the bound (-1 if none);
             t = all_reduce(MAX); so the ranks agree on the pair, not on a step number only;
          4. each rank verifies (s, t) (already done when p_r is it); ok = all_reduce(MIN, verified);
          5. all ok: restore (s, t); else bound = (s, t) and repeat.
        The bound strictly decreases, so this ends; every rank leaves with the same answer, and
        every rank's shard has the same timeline.
        """
        pairs = catalog.pairs_desc()
        cache: dict[Pair, Shard | None] = {}

        def verified(pair: Pair) -> Shard | None:
            if pair not in cache:
                cache.clear()  # hold at most one shard in memory
                cache[pair] = self._verify(catalog, pair)
            return cache[pair]

        def newest(bound: Pair, step: int | None = None) -> Shard | None:
            for pair in pairs:
                if pair < bound and (step is None or pair[0] == step):
                    shard = verified(pair)
                    if shard is not None:
                        return shard
            return None

        top: Pair = (2**62, 0)
        if not _dist_active(self.config.world_size):
            return newest(top)
        bound = top
        while True:
            mine = newest(bound)
            step = _all_reduce(mine.step if mine else -1, "min")
            if step < 0:
                return None
            at_step = mine if mine is not None and mine.step == step else newest(bound, step)
            timeline = _all_reduce(at_step.timeline if at_step else -1, "max")
            pair = (step, timeline)
            shard = (
                at_step
                if at_step is not None and at_step.timeline == timeline
                else (verified(pair) if pair in catalog.sources and pair < bound else None)
            )
            if _all_reduce(1 if shard is not None else 0, "min") == 1:
                return shard
            bound = pair

    def _decide_timeline(self, catalog: Catalog, shard: Shard | None) -> bool:
        """Sets `self.timeline` after a restore of `shard` (or of nothing), the same on every
        rank; returns True when the run abandons newer steps (restarts from an older step)."""
        restored = shard.step if shard else -1
        newest_seen, highest_seen = catalog.newest_step_seen, catalog.highest_timeline_seen
        if _dist_active(self.config.world_size):
            newest_seen = _all_reduce(newest_seen, "max")
            highest_seen = _all_reduce(highest_seen, "max")
        abandons = newest_seen > restored
        if abandons:
            timeline = max(self.config.attempt, highest_seen + 1)
        else:
            timeline = max(self.config.attempt, shard.timeline if shard else 0)
        if _dist_active(self.config.world_size):
            timeline = _all_reduce(timeline, "max")
        self.timeline = timeline
        return abandons

    def _prune_replicas(self, step: int) -> None:
        """Asks the node daemon to remove the L2 replicas of steps newer than `step` from older
        timelines, its own and its peers' (one rank per node asks; failures only warn: restore
        never combines timelines, the prune keeps peers from serving or mixing dead steps)."""
        c = self.config
        if self.daemon is None or c.rank != min(c.local_ranks):
            return
        try:
            self.daemon.prune(step, self.timeline)
        except CheckpointError as e:
            e.where.setdefault("level", "L2")
            self._report(e, warn=True)

    def _prune_newer(self, step: int) -> None:
        """Drops this rank's part (and the manifest) of every step newer than `step`."""
        rank = self.config.rank
        for s in self.l1.steps():
            if s > step:
                drop_rank_step(self.l1, s, rank, shard_too=False)
        if self.l3 is not None:
            try:
                for s in self.l3.steps():
                    if s > step:
                        drop_rank_step(self.l3, s, rank, shard_too=True)
            except OSError as e:
                self._report(
                    CheckpointError(
                        "STORAGE_FAILED",
                        f"cannot prune L3 steps after {step}: {e}",
                        {"level": "L3", "file": str(self.l3.job_dir)},
                    ),
                    warn=True,
                )


def _close_at_exit(ref: "weakref.ref[Checkpointer]") -> None:
    ckpt = ref()
    if ckpt is not None and not ckpt._closed:
        try:
            ckpt.close()
        except Exception as e:  # noqa: BLE001 - the interpreter is exiting; say what was lost
            log.error("checkpoint work at exit failed: %s", e)


def _dist_active(world_size: int) -> bool:
    if world_size <= 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _all_reduce(value: int, op: str) -> int:
    import torch.distributed as dist

    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX)
    return int(t.item())


__all__ = ["Checkpointer"]
