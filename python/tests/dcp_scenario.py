"""The ranks of the cube.dcp tests: one launch of 4 processes runs every phase in order.

    dcp_scenario.py ROOT PORTS         (RANK set by the test; PORTS: one free port per phase)

Each phase is a fresh gloo process group of its own world size (ranks above it sit the phase
out), fresh models and fresh cube.dcp Writers/Readers, so a checkpoint saved by the 2-rank group
of one phase is loaded by the 4-rank group of another, as after a relaunch on more nodes; one
launch keeps the tests' torch start-up cost to one. Rank 0 writes ROOT/results.json
({phase: {restored, warnings, error}}) and the full state of every save and load to
ROOT/<name>.pt, reassembled from the shards (DTensor.full_tensor) so that states saved on N ranks
and loaded on M compare whole. Files are corrupted between phases by rank 0 (flip_byte).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

import cube.dcp
from helpers import flip_byte

ROOT = sys.argv[1]
PORTS = [int(p) for p in sys.argv[2].split(",")]
RANK = int(os.environ["RANK"])
L1 = os.path.join(ROOT, "l1")
L3 = os.path.join(ROOT, "l3")
results: dict[str, Any] = {}


class Tiny(torch.nn.Module):
    """Odd sizes on purpose: 2 and 4 ranks shard 13, 24 and 5 rows unevenly (4 ranks split
    fc2's 5 rows 2, 2, 1, 0: one rank saves nothing of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(13, 8)
        self.fc1 = torch.nn.Linear(8, 24)
        self.fc2 = torch.nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.embed(x))))


def build(kind: str, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model: torch.nn.Module = Tiny()
    if kind == "fsdp":
        for layer in (model.embed, model.fc1, model.fc2):
            fully_shard(layer)
        fully_shard(model)
    else:
        model = DistributedDataParallel(model)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    g = torch.Generator().manual_seed(1000 * step + dist.get_rank())
    x = torch.randint(0, 13, (6, 3), generator=g)
    model(x).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()


def full(value: Any) -> Any:
    """The state with every DTensor gathered into its full tensor (collective on every rank)."""
    if isinstance(value, DTensor):
        return value.full_tensor()
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: full(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(full(v) for v in value)
    return value


def dump(model: torch.nn.Module, opt: torch.optim.Optimizer, name: str) -> None:
    msd, osd = get_state_dict(model, opt)
    state = full({"model": msd, "optim": osd})
    if dist.get_rank() == 0:
        torch.save(state, os.path.join(ROOT, f"{name}.pt"))


def opts(job: str, world: int) -> dict[str, Any]:
    return {
        "job": job,
        "node": "node-a",
        "l1_dir": L1,
        "l3_dir": L3,
        "rank": RANK,
        "world_size": world,
        "local_ranks": list(range(world)),
    }


def save(kind: str, job: str) -> Callable[[int], dict[str, Any]]:
    """Trains 2 steps; step 1 saved with dcp.save, step 2 with dcp.async_save."""

    def run(world: int) -> dict[str, Any]:
        model, opt = build(kind, seed=1)
        writer = cube.dcp.Writer(**opts(job, world))
        for step in (1, 2):
            train_step(model, opt, step)
            msd, osd = get_state_dict(model, opt)
            state = {"model": msd, "optim": osd}
            if step == 1:
                dcp.save(state, checkpoint_id=step, storage_writer=writer)
            else:
                dcp.async_save(state, checkpoint_id=f"step-{step}", storage_writer=writer).result()
            writer.wait()
            dump(model, opt, f"{job}-saved-{step}")
        writer.close()
        return {}

    return run


def load(kind: str, job: str, name: str, step: int | None = None) -> Callable[[int], dict[str, Any]]:
    """Builds the model afresh (other weights) and loads through cube.dcp.Reader."""

    def run(world: int) -> dict[str, Any]:
        model, opt = build(kind, seed=2)
        msd, osd = get_state_dict(model, opt)
        state = {"model": msd, "optim": osd}
        reader = cube.dcp.Reader(step, **opts(job, world))
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                dcp.load(state, storage_reader=reader)
            # DCP wraps every rank's error in a CheckpointException, a BaseException.
            except BaseException as e:  # noqa: BLE001
                error = str(e)
        seen = [str(w.message) for w in caught if isinstance(w.message, cube.CheckpointWarning)]
        everyone: list[Any] = [None] * world
        dist.all_gather_object(everyone, {"warnings": seen, "error": error})
        if error is None:
            set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
            dump(model, opt, name)
        reader.engine.close()
        return {
            "restored": reader.restored,
            "warnings": [w for r in everyone for w in r["warnings"]],
            "errors": [r["error"] for r in everyone if r["error"] is not None],
        }

    return run


def corrupt(job: str, step: int, rank: int, level: str) -> Callable[[int], dict[str, Any]]:
    """Flips one byte of `rank`'s shard of `step` at `level` (rank 0 of a 1-rank phase)."""

    def run(world: int) -> dict[str, Any]:
        if level == "L1":
            with open(os.path.join(L1, job, f"step-{step:010d}", f"rank-{rank:05d}.json")) as f:
                path = os.path.join(L1, job, json.load(f)["file"])
        else:
            path = os.path.join(L3, job, f"step-{step:010d}", f"rank-{rank:05d}.safetensors")
        flip_byte(path)
        return {"file": path}

    return run


PHASES: list[tuple[str, int, Callable[[int], dict[str, Any]]]] = [
    ("save fsdp on 2", 2, save("fsdp", "f2")),
    ("load fsdp 2 -> 4", 4, load("fsdp", "f2", "f2-on-4")),
    ("load fsdp 2 -> 2", 2, load("fsdp", "f2", "f2-on-2")),
    ("save fsdp on 4", 4, save("fsdp", "f4")),
    ("load fsdp 4 -> 2", 2, load("fsdp", "f4", "f4-on-2")),
    ("save ddp on 2", 2, save("ddp", "d2")),
    ("load ddp 2 -> 1", 1, load("ddp", "d2", "d2-on-1")),
    ("load ddp 2 -> 4", 4, load("ddp", "d2", "d2-on-4")),
    ("load ddp 2 -> fsdp 4", 4, load("fsdp", "d2", "d2-as-fsdp-on-4")),
    ("load fsdp 4 -> ddp 2", 2, load("ddp", "f4", "f4-as-ddp-on-2")),
    ("corrupt f2 L1 rank 1 step 2", 1, corrupt("f2", 2, 1, "L1")),
    ("load f2 with L1 corrupt", 2, load("fsdp", "f2", "f2-l1-corrupt")),
    ("corrupt f2 L3 rank 1 step 2", 1, corrupt("f2", 2, 1, "L3")),
    ("load f2 step 2 with every copy corrupt", 2, load("fsdp", "f2", "f2-step-2", step=2)),
    ("load f2 newest with step 2 corrupt", 2, load("fsdp", "f2", "f2-fallback")),
]


def main() -> None:
    for (name, world, run), port in zip(PHASES, PORTS, strict=True):
        if RANK >= world:
            continue  # the next phase's rendezvous waits for the ranks of this one
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=RANK, world_size=world
        )
        try:
            out = run(world)
        except BaseException:
            out = {"crash": traceback.format_exc()}
            print(f"phase {name!r} failed on rank {RANK}:\n{out['crash']}", file=sys.stderr, flush=True)
        dist.destroy_process_group()
        if RANK == 0:
            results[name] = out
            print(f"phase {name!r} done", flush=True)
    if RANK == 0:
        with open(os.path.join(ROOT, "results.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
