"""Bench 5: Cube and the other checkpointers of the PyTorch world, side by side, in one run.

One configuration = a state size per rank and 1 or 2 rank processes. Every rank joins a gloo
process group on CPU and builds the same FSDP2 model (`fully_shard` per layer, then the root):
bias-free linear layers whose local shard is 4 MiB of float32 on every rank, as many as the
size asks (1 GiB per rank: 256 layers; 2 ranks hold a 2 GiB model). Its state is
`model.state_dict()`: a DTensor per parameter. On that state, each of these peers saves:

- `cube` - `cube.Checkpointer.save(step, {fqn: dtensor.to_local()})`: the flattened local shards,
  one Cube shard per rank, with L3 on the disk at every checkpoint (`l3_every=1`, no daemon: the
  client's background thread writes L3 itself, at Cube's default nice 10);
- `cube-dcp` - `dcp.save(state, checkpoint_id=step, storage_writer=cube.dcp.Writer(...))`: the
  same engine behind DCP's planner (the global metadata in rank 0's shard), L3 at every step;
- `dcp.save` - `dcp.save(state, storage_writer=FileSystemWriter(dir))` to the same disk (DCP's
  defaults: one file per rank, `sync_files=True`);
- `dcp.async_save` - `dcp.async_save(...)` with the same writer, DCP's default thread executor
  and default stager (a fresh staging copy per save);
- `dlrover` - DLRover's flash checkpoint (`FsdpCheckpointEngine.save_to_storage`: a DCP save into
  shared memory, persisted by the saver process it forks when not under `dlrover-run`), when
  `dlrover` imports in this interpreter;
- `torch.save` - `torch.save({fqn: dtensor.to_local()})` to a file per rank + fsync.

For each it measures, with 2 ranks always the slower rank's figure (a data-parallel step waits
for it), the median of repetitions interleaved peer by peer (cube, cube-dcp, dcp.save,
dcp.async_save, dlrover, torch.save, then again), after one unreported warm-up round:

- stall: how long the save call blocks the training thread;
- durable: from the save call until the checkpoint is on disk and fsync'd: Cube, when its L3
  manifest is committed (the rank that completes the set writes it; `wait()` returns after);
  `dcp.save` and `torch.save`, when they return (each fsyncs its files); `dcp.async_save`, when
  its future is done (DCP fsyncs every file and the metadata); DLRover, when its saver commits
  the step (every shard's file written and fsync'd, its done files counted; see `open_dlrover`);
- slowdown: a CPU training loop (N 512x512 float32 matmuls per step, one thread, ~200 ms, as in
  slowdown.py) saving every K steps; a step is busy when it overlaps that rank's background work
  (Cube: its background thread's `_finish`; async_save: call to future done; DLRover: call to
  commit), and the figure is busy steps' mean over idle steps' mean in the same segment. K
  is the same for every peer: from the slowest peer's durable time in the first phase.

Between peers the disk is synced and left to go quiet, and the files of the other peers are
deleted (Cube's L3 keeps its own retention). Targets (issue 15): Cube's stall <= 0.5x that of
`dcp.async_save`, its time to durable <= that of `dcp.save`, its slowdown no worse than
`dcp.async_save`'s. Needs torch >= 2.4 (FSDP2, DCP): the project's environment or `CUBE_PYTHON`.

    PYTHONPATH=python OMP_NUM_THREADS=1 .venv/bin/python bench/ckpt/peers.py --size 256M --ranks 2
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MIB,
    RankContext,
    Ranks,
    Row,
    config_name,
    exit_on_sigterm,
    fits,
    fmt_size,
    median,
    ms,
    parse_size,
    per_rep_max,
    print_table,
    rmtree,
    skip_row,
    write_rows,
)

BENCH = "peers"
MATMUL_N = 512
SHARD_BYTES = 4 * MIB  # one layer's local shard on every rank
ALL_PEERS = ("cube", "cube-dcp", "dcp.save", "dcp.async_save", "dlrover", "torch.save")
LABEL = {
    "cube": "Cube (Checkpointer, local shards)",
    "cube-dcp": "Cube (dcp.save + cube.dcp.Writer)",
    "dcp.save": "dcp.save (FileSystemWriter)",
    "dcp.async_save": "dcp.async_save (thread, FileSystemWriter)",
    "dlrover": "DLRover flash checkpoint",
    "torch.save": "torch.save + fsync",
}
# Peers whose save returns before the checkpoint is durable (their work goes on in the background).
ASYNC = ("cube", "cube-dcp", "dcp.async_save", "dlrover")


def dlrover_missing() -> str | None:
    """None when DLRover's flash checkpoint can be imported here, else why not."""
    try:
        import dlrover  # noqa: F401
    except ImportError as e:
        return (
            f"dlrover is not installed for {sys.executable} ({e}); install `dlrover[torch]` and "
            "`grpcio` (its flash checkpoint imports grpc, which dlrover[torch] does not pull) "
            "into a venv that also sees torch >= 2.4, and run the bench with that interpreter"
        )
    try:
        from dlrover.trainer.torch.flash_checkpoint.fsdp_engine import FsdpCheckpointEngine  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure is the reason for the row
        return f"dlrover's flash checkpoint does not import: {e!r}"
    return None


# ---- the disk --------------------------------------------------------------------------------


def _disk_activity() -> int:
    """Sectors written + discarded + I/Os in flight over every block device (/proc/diskstats)."""
    total = 0
    with open("/proc/diskstats", encoding="ascii") as f:
        for line in f:
            x = line.split()
            if len(x) > 11 and not x[2].startswith(("loop", "ram")):
                total += int(x[9]) + int(x[11]) + (int(x[16]) if len(x) > 16 else 0)
    return total


def wait_quiet_disk(quiet_s: float = 0.5, timeout_s: float = 5.0) -> float:
    """`sync`, then waits until no sector is written or discarded for `quiet_s` (as
    quiet-disk.ts does between benches), so one peer's writeback and deletes do not land on the
    next peer's figures. Returns the seconds waited."""
    t0 = time.monotonic()
    os.sync()
    last, since = _disk_activity(), time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        time.sleep(0.2)
        now = _disk_activity()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return time.monotonic() - t0


# ---- a rank ----------------------------------------------------------------------------------


def _build_model(ctx: RankContext, nbytes: int) -> Any:
    """The FSDP2 model: layers of [1024 * ranks, 1024] float32 (4 MiB per rank each), built on
    the meta device, sharded, then materialized on CPU, so no rank ever holds the full model."""
    import torch
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    layers = max(1, nbytes // SHARD_BYTES)
    cols = SHARD_BYTES // 4 // 1024
    with torch.device("meta"):
        model = nn.Sequential(*[nn.Linear(1024, cols * ctx.ranks, bias=False) for _ in range(layers)])
    for layer in model:
        fully_shard(layer)
    fully_shard(model)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.to_local().fill_(float(ctx.rank * 100_000 + i) + 0.5)
    return model


class _Peers:
    """One rank's savers: `save(peer, step)` returns when the training thread may go on;
    `durable(peer, step)` returns when that step is on disk; `background` lists each peer's
    background work as (start, end) in monotonic time."""

    def __init__(self, ctx: RankContext, state: dict[str, Any], dirs: dict[str, str], ranks: int) -> None:
        import torch.distributed.checkpoint as dcp

        import cube
        import cube.dcp

        self.ctx, self.state, self.dirs, self.dcp = ctx, state, dirs, dcp
        self.local = {k: v.to_local() for k, v in state.items()}
        who = dict(
            rank=ctx.rank,
            world_size=ranks,
            local_ranks=list(range(ranks)),
            node="bench",
            l1_dir=dirs["l1"],
            l3_dir=dirs["l3"],
            l3_every=1,
        )
        self.ck = cube.Checkpointer(job="peers-cube", **who)
        self.ck_dcp = cube.Checkpointer(job="peers-cube-dcp", **who)
        self.writer_cls = cube.dcp.Writer
        self.background: dict[str, list[tuple[float, float]]] = {p: [] for p in ALL_PEERS}
        for name, engine in (("cube", self.ck), ("cube-dcp", self.ck_dcp)):
            self._time_finish(name, engine)
        self._future: Any = None
        self._dlrover: Any = None

    def _time_finish(self, name: str, engine: Any) -> None:
        finish = engine._finish

        def timed(job: Any, _finish: Callable[[Any], None] = finish) -> None:
            t0 = time.monotonic()
            try:
                _finish(job)
            finally:
                self.background[name].append((t0, time.monotonic()))

        engine._finish = timed  # instrumentation only: when the client's thread works

    def _dcp_dir(self, peer: str, step: int) -> str:
        return os.path.join(self.dirs["disk"], peer, f"step-{step}")

    def open_dlrover(self) -> None:
        """DLRover's FSDP engine, standalone (no `dlrover-run`): local rank 0 forks its saver.

        Its saver makes the step's stage directory of done files, writes each shard (fsync'd;
        the saver of shard 0 also writes DCP's .metadata and, already then, the tracker file),
        and commits once every shard's done file is there (it polls every 5 s): it writes the
        tracker file again and removes the stage directory. So the step is durable and committed
        when the tracker names it and its stage directory is gone (see `durable`).

        DLRover 0.6.1's `FsdpCheckpointEngine.save_to_memory` builds `CheckpointConfig(step=step)`
        and leaves its `rank` at 0 on every rank, so with 2 ranks on a node both shards write the
        done file "0", the saver counts 1 of 2 and never commits (it polls for 600 s, then gives
        up; the next save's event waits behind it). The bench gives the config the rank's real
        rank, the one-line fix, so that the peer can be measured at all; with 1 rank it changes
        nothing."""
        import torch.distributed as dist
        from dlrover.python.common.constants import CheckpointConstant
        from dlrover.python.common.storage import PosixDiskStorage
        from dlrover.python.elastic_agent.torch.ckpt_saver import AsyncCheckpointSaver
        from dlrover.trainer.torch.flash_checkpoint import fsdp_engine
        from dlrover.trainer.torch.flash_checkpoint.fsdp_engine import FsdpCheckpointEngine

        config_cls = fsdp_engine.CheckpointConfig

        def ranked_config(**kw: Any) -> Any:
            kw.setdefault("rank", dist.get_rank())
            return config_cls(**kw)

        fsdp_engine.CheckpointConfig = ranked_config  # type: ignore[attr-defined]

        root = Path(self.dirs["dlrover"])
        self._dlrover_tracker = root / CheckpointConstant.TRACER_FILE_NAME
        self._dlrover_stage = root / AsyncCheckpointSaver._STAGE_DIR
        self._dlrover = FsdpCheckpointEngine(self.dirs["dlrover"], PosixDiskStorage(), "gloo")

    def save(self, peer: str, step: int) -> None:
        """The save call of `peer` for `step` (what blocks the training thread)."""
        import torch

        if peer == "cube":
            self.ck.save(step, {"model": self.local})
        elif peer == "cube-dcp":
            self.dcp.save(
                {"model": self.state},
                checkpoint_id=step,
                storage_writer=self.writer_cls(checkpointer=self.ck_dcp),
            )
        elif peer == "dcp.save":
            path = self._dcp_dir(peer, step)
            self.dcp.save({"model": self.state}, storage_writer=self.dcp.FileSystemWriter(path))
        elif peer == "dcp.async_save":
            path = self._dcp_dir(peer, step)
            self._future = self.dcp.async_save(
                {"model": self.state}, storage_writer=self.dcp.FileSystemWriter(path)
            )
            t_back = time.monotonic()
            self._future.add_done_callback(
                lambda _f, t=t_back: self.background["dcp.async_save"].append((t, time.monotonic()))
            )
        elif peer == "dlrover":
            path = os.path.join(self.dirs["dlrover"], str(step))
            self._dlrover.save_to_storage(step, {"model": self.state}, {"model_states": path})
            self._dlrover_since = (step, time.monotonic())
        elif peer == "torch.save":
            path = os.path.join(self.dirs["disk"], "torch.save", f"rank{self.ctx.rank}-step{step}.pt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                torch.save(self.local, f)
                f.flush()
                os.fsync(f.fileno())
        else:
            raise ValueError(peer)

    def durable(self, peer: str, step: int) -> None:
        """Returns once `peer`'s checkpoint of `step` is durable on disk."""
        if peer == "cube":
            self.ck.wait()
        elif peer == "cube-dcp":
            self.ck_dcp.wait()
        elif peer == "dcp.async_save":
            self._future.result()
        elif peer == "dlrover":
            deadline = time.monotonic() + 900
            done_dir = self._dlrover_stage / f"{step}.done"
            while True:
                try:
                    named = self._dlrover_tracker.read_text().strip() == str(step)
                except OSError:
                    named = False
                if named and not done_dir.exists():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"DLRover did not commit step {step} in 900 s")
                time.sleep(0.005)
            _, t0 = self._dlrover_since
            self.background["dlrover"].append((t0, time.monotonic()))

    def check_durable(self, peer: str, step: int) -> None:
        """Raises unless `step` is complete on disk for `peer` (run after every rank's durable)."""
        if peer in ("cube", "cube-dcp"):
            engine = self.ck if peer == "cube" else self.ck_dcp
            assert engine.l3 is not None
            if not engine.l3.manifest(step).exists():
                raise RuntimeError(f"{peer}: no L3 manifest for step {step}: {engine.errors()}")
            if engine.errors():
                raise RuntimeError(f"{peer}: {engine.errors()}")
        elif peer in ("dcp.save", "dcp.async_save"):
            if not os.path.exists(os.path.join(self._dcp_dir(peer, step), ".metadata")):
                raise RuntimeError(f"{peer}: no .metadata for step {step}")

    def clean(self, peer: str) -> None:
        """Deletes `peer`'s files (rank 0; Cube's L3 keeps its own retention)."""
        if peer in ("dcp.save", "dcp.async_save", "torch.save"):
            rmtree(os.path.join(self.dirs["disk"], peer))
        elif peer == "dlrover":
            for p in Path(self.dirs["dlrover"]).iterdir():
                if p.name.isdigit():  # committed steps (not its stage directory)
                    rmtree(p)

    def close(self) -> None:
        self.ck.close()
        self.ck_dcp.close()


def worker(
    ctx: RankContext, nbytes: int, port: int, dirs: dict[str, str], peers: list[str], matmuls: int
) -> str:
    """A rank: joins the process group, builds the FSDP2 state, then runs the parent's commands."""
    for var in ("CUBE_CKPT_L3", "CUBE_CKPT_SOCKET", "CUBE_CKPT_L1", "CUBE_JOB_ID"):
        os.environ.pop(var, None)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(ctx.rank),
        WORLD_SIZE=str(ctx.ranks),
        LOCAL_RANK=str(ctx.rank),
        LOCAL_WORLD_SIZE=str(ctx.ranks),
        GROUP_RANK="0",
        NODE_RANK="0",
    )
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=ctx.rank, world_size=ctx.ranks)
    model = _build_model(ctx, nbytes)
    state = model.state_dict()
    sv = _Peers(ctx, state, dirs, ctx.ranks)
    if "dlrover" in peers:
        sv.open_dlrover()
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)

    def step() -> tuple[float, float]:
        t0 = time.monotonic()
        for _ in range(matmuls):
            torch.mm(a, b)
        return t0, time.monotonic()

    def _await(peer: str, step_no: int, saved: int) -> None:
        if peer == "dlrover":  # the watcher thread records when the step is committed
            while len(sv.background["dlrover"]) < saved:
                time.sleep(0.01)
        else:
            sv.durable(peer, step_no)

    for _ in range(3):
        step()
    local_bytes = sum(t.numel() * t.element_size() for t in sv.local.values())
    ctx.outbox.put(("done", ctx.rank, {"local_bytes": local_bytes, "tensors": len(sv.local)}))
    while True:
        cmd, *args = ctx.inbox.get()
        if cmd == "exit":
            sv.close()
            dist.destroy_process_group()
            return "bye"
        if cmd == "round":
            # One save of each peer, one after the other: stall and time to durable.
            step_no, order = args
            out: dict[str, Any] = {}
            for k, peer in enumerate(order):
                step_no += 100 * k
                ctx.sync()
                t0 = time.monotonic()
                sv.save(peer, step_no)
                t1 = time.monotonic()
                sv.durable(peer, step_no)
                t2 = time.monotonic()
                ctx.sync()  # every rank durable: the set is complete
                sv.check_durable(peer, step_no)
                out[peer] = {"stall": t1 - t0, "durable": t2 - t0}
                if ctx.rank == 0:
                    sv.clean(peer)
                    out[peer]["quiet_s"] = wait_quiet_disk()
                ctx.sync()
            ctx.outbox.put(("done", ctx.rank, out))
        elif cmd == "train":
            # Steps with a save of `peer` every `every` steps; the background work it leaves.
            peer, n, every, first_step = args
            steps, saves = [], []
            sv.background[peer] = []
            pending: int | None = None
            ctx.sync()
            for i in range(1, n + 1):
                steps.append(step())
                if i % every == 0 and i < n:
                    if pending is not None:  # the previous save must be durable before the next
                        _await(peer, pending, len(saves))
                    t0 = time.monotonic()
                    sv.save(peer, first_step + i)
                    saves.append((t0, time.monotonic()))
                    pending = first_step + i
                    if peer == "dlrover":  # its background ends when the step is committed
                        threading.Thread(target=sv.durable, args=(peer, pending), daemon=True).start()
            if pending is not None:
                _await(peer, pending, len(saves))
            ctx.sync()
            if ctx.rank == 0:
                sv.clean(peer)
                wait_quiet_disk()
            ctx.sync()
            ctx.outbox.put(
                ("done", ctx.rank, {"steps": steps, "saves": saves, "background": list(sv.background[peer])})
            )


# ---- the parent ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _calibrate(step_ms: float) -> int:
    import statistics

    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return max(1, round(step_ms / 1e3 / statistics.median(times)))


def _overlaps(a0: float, a1: float, intervals: list[tuple[float, float]]) -> bool:
    return any(a0 < b1 and b0 < a1 for b0, b1 in intervals)


def _slowdown(res: list[dict[str, Any]]) -> tuple[float, int, int]:
    """Busy steps' mean over idle steps' mean (each rank's steps against its own background)."""
    busy, idle = [], []
    for r in res:
        for t0, t1 in r["steps"]:
            (busy if _overlaps(t0, t1, r["background"]) else idle).append(t1 - t0)
    if not busy or not idle:
        return math.nan, len(busy), len(idle)
    return (sum(busy) / len(busy)) / (sum(idle) / len(idle)), len(busy), len(idle)


def run(
    nbytes: int,
    ranks: int,
    repeats: int,
    shm: str,
    disk: str,
    peers: list[str],
    saves: int = 2,
    step_ms: float = 200,
) -> list[Row]:
    """Runs one configuration; returns its rows."""
    cfg = config_name(nbytes, ranks)
    import torch

    version = tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2])
    if version < (2, 4):
        return [
            skip_row(
                BENCH,
                cfg,
                f"{sys.executable} has torch {torch.__version__}; FSDP2 (fully_shard) and DCP's"
                " async_save need torch >= 2.4: run with the project's .venv or CUBE_PYTHON",
            )
        ]
    # Per rank: the state, two Cube engines of two L1 slots each on tmpfs, a staging copy
    # (async_save, DLRover's shared memory).
    why = fits(ram_bytes=3 * ranks * nbytes, shm_bytes=5 * ranks * nbytes, shm=shm)
    if why:
        return [skip_row(BENCH, cfg, why)]
    rows: list[Row] = []
    if "dlrover" in peers:
        missing = dlrover_missing()
        if missing:
            peers = [p for p in peers if p != "dlrover"]
            rows.append(skip_row(BENCH, cfg, f"{LABEL['dlrover']}: {missing}"))
    work_shm = tempfile.mkdtemp(prefix="cube-bench-peers-", dir=shm)
    work_disk = tempfile.mkdtemp(prefix="cube-bench-peers-", dir=disk)
    dirs = {
        "l1": os.path.join(work_shm, "l1"),
        "l3": os.path.join(work_disk, "l3"),
        "disk": os.path.join(work_disk, "peers"),
        "dlrover": os.path.join(work_disk, "dlrover"),
    }
    for d in ("disk", "dlrover"):
        os.makedirs(dirs[d])
    matmuls = _calibrate(step_ms)
    pool = None
    t_start = time.monotonic()
    load0 = os.getloadavg()
    try:
        pool = Ranks(ranks, worker, nbytes, _free_port(), dirs, peers, matmuls)
        info = pool.gather()
        rounds: list[list[dict[str, Any]]] = []
        for i in range(-1, repeats):
            # i == -1: the warm-up round, in which each Cube engine saves twice (allocating and
            # pre-touching both of its L1 slots, as a run's first two saves do).
            order = [q for p in peers for q in ([p, p] if i < 0 and p in ("cube", "cube-dcp") else [p])]
            pool.send("round", 10_000 * (i + 2), order)
            got = pool.gather()
            if i >= 0:
                rounds.append(got)
            print(f"[{BENCH}] {cfg}: round {i + 1}/{repeats} done", flush=True)
        figures: dict[str, dict[str, float]] = {}
        for peer in peers:
            figures[peer] = {
                key: median(per_rep_max([[rnd[r][peer][key] for rnd in rounds] for r in range(ranks)]))
                for key in ("stall", "durable")
            }
        # The training loop: the same save interval for every peer, from the slowest durable time.
        step_s = step_ms / 1e3
        slowest = max(figures[p]["durable"] for p in peers if p in ASYNC)
        every = max(5, math.ceil(1.25 * slowest / step_s))
        slow: dict[str, tuple[float, int, int]] = {}
        for j, peer in enumerate(p for p in peers if p in ASYNC):
            pool.send("train", peer, (saves + 1) * every, every, 10_000 * (repeats + 5) + 1000 * j)
            slow[peer] = _slowdown(pool.gather())
            print(f"[{BENCH}] {cfg}: training loop with {peer}: busy/idle {slow[peer][0]:.2f}x", flush=True)
        pool.send("exit")
        pool.join()
        pool = None
    finally:
        if pool is not None:
            pool.kill()
        rmtree(work_shm)
        rmtree(work_disk)
    minutes = (time.monotonic() - t_start) / 60
    load1 = os.getloadavg()
    env_note = (
        f"{info[0]['tensors']} DTensors, {fmt_size(info[0]['local_bytes'])} local per rank; {repeats} rounds;"
        f" training loop saves every {every} steps of ~{step_ms:.0f} ms; {minutes:.1f} min;"
        f" load average {load0[0]:.1f} -> {load1[0]:.1f}"
    )

    def fig(peer: str) -> str:
        f = figures[peer]
        s = slow.get(peer)
        tail = f", slowdown {s[0]:.2f}x ({s[1]} busy / {s[2]} idle steps)" if s else ""
        return f"stall {ms(f['stall'])}, durable {ms(f['durable'])}{tail}"

    for peer in peers:
        f = figures[peer]
        s = slow.get(peer)
        rows.append(
            Row(
                BENCH,
                cfg,
                f"{LABEL[peer]}: figures",
                fig(peer),
                "-",
                None,
                "-",
                result="info",
                note="" if s else "synchronous: the save call does all the work, nothing runs in the background",
                values={
                    "peer": peer,
                    "stall_s": f["stall"],
                    "durable_s": f["durable"],
                    "slowdown": s[0] if s else None,
                    "busy_steps": s[1] if s else None,
                    "idle_steps": s[2] if s else None,
                    "every": every,
                },
            )
        )
    for mine in (p for p in ("cube", "cube-dcp") if p in peers):
        for other in (p for p in peers if p not in ("cube", "cube-dcp")):
            fm, fo = figures[mine], figures[other]
            stall_target = "<= 0.50" if other == "dcp.async_save" else "-"
            rows.append(
                Row(
                    BENCH,
                    cfg,
                    f"stall: {LABEL[mine]} / {LABEL[other]}",
                    ms(fm["stall"]),
                    ms(fo["stall"]),
                    fm["stall"] / fo["stall"],
                    stall_target,
                    values={"cube_s": fm["stall"], "peer_s": fo["stall"], "peer": other},
                )
            )
            rows.append(
                Row(
                    BENCH,
                    cfg,
                    f"time to durable: {LABEL[mine]} / {LABEL[other]}",
                    ms(fm["durable"]),
                    ms(fo["durable"]),
                    fm["durable"] / fo["durable"],
                    "<= 1.00" if other == "dcp.save" else "-",
                    values={"cube_s": fm["durable"], "peer_s": fo["durable"], "peer": other},
                )
            )
            if other in slow and mine in slow:
                rows.append(
                    Row(
                        BENCH,
                        cfg,
                        f"step slowdown (busy/idle): {LABEL[mine]} / {LABEL[other]}",
                        f"{slow[mine][0]:.2f}x",
                        f"{slow[other][0]:.2f}x",
                        slow[mine][0] / slow[other][0],
                        "<= 1.00" if other == "dcp.async_save" else "-",
                        values={"cube": slow[mine][0], "peer": other, "peer_slowdown": slow[other][0]},
                    )
                )
    rows.append(Row(BENCH, cfg, "run", "-", "-", None, "-", result="info", note=env_note))
    return rows


def main() -> None:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256M", help="state bytes per rank, e.g. 256M, 1G")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5, help="measured rounds of every peer")
    p.add_argument("--saves", type=int, help="saves per peer in the training loop (default 2; 1 above 1 GiB in all)")
    p.add_argument("--step-ms", type=float, default=200, help="target duration of one training step")
    p.add_argument("--peers", default=",".join(ALL_PEERS), help=f"any of {', '.join(ALL_PEERS)}")
    p.add_argument("--shm", default="/dev/shm", help="tmpfs for Cube's L1")
    p.add_argument("--disk", default=tempfile.gettempdir(), help="the disk every peer writes to (not tmpfs)")
    p.add_argument("--json", help="append the rows as JSON lines to this file")
    a = p.parse_args()
    nbytes = parse_size(a.size)
    peers = [x.strip() for x in a.peers.split(",") if x.strip()]
    for x in peers:
        if x not in ALL_PEERS:
            p.error(f"unknown peer {x!r} (choose from {', '.join(ALL_PEERS)})")
    print(f"[{BENCH}] {config_name(nbytes, a.ranks)}: {fmt_size(nbytes)} per rank, {a.repeats} rounds", flush=True)
    saves = a.saves or (2 if nbytes * a.ranks <= 1 << 30 else 1)
    rows = run(nbytes, a.ranks, a.repeats, a.shm, a.disk, peers, saves, a.step_ms)
    print_table(rows, f"Cube and its peers, {config_name(nbytes, a.ranks)}")
    write_rows(rows, a.json)


if __name__ == "__main__":
    main()
