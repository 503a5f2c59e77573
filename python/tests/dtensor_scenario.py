"""One rank of the DTensor tests of `cube.Checkpointer` (test_dtensor.py launches WORLD of them).

    dtensor_scenario.py PHASE ROOT PORT      (RANK and WORLD_SIZE set by the test)

Phases, each a fresh launch (fresh processes, fresh gloo group, fresh models):
  save      2 ranks: an FSDP2 model + AdamW trains 2 steps; each step saves `get_state_dict(model,
            optimizer)` and tensor-parallel DTensors (Shard(0) uneven, Shard(1), Replicate) with
            `Checkpointer.save`; then trains step 3 without saving.
  refuse    4 ranks: `load_latest` of the 2-rank checkpoint (must refuse on every rank).
  load      2 ranks: other weights; `load_latest()` without a mesh and with a wrong mesh (must
            refuse), then with the meshes, `set_state_dict`, and step 3 trained again.
  save2d    4 ranks: FSDP2 over "dp" + tensor parallel over "tp" on a (2, 2) mesh, 2 steps saved.
  load2d    4 ranks: restored through the root mesh (the DTensors live on its submeshes).

Rank 0 writes ROOT/<name>.pt: the full state (every DTensor gathered with full_tensor) after each
save and after each restore, so the test compares them whole. Every rank writes
ROOT/result-<phase>-<rank>.json: what it saw (errors with their codes, types, local shapes).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

import cube

PHASE, ROOT, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
RANK, WORLD = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
result: dict[str, Any] = {}


class Tiny(torch.nn.Module):
    """Odd sizes: 2 ranks shard 13, 24 and 5 rows unevenly."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(13, 8)
        self.fc1 = torch.nn.Linear(8, 24)
        self.fc2 = torch.nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.embed(x))))


def checkpointer() -> cube.Checkpointer:
    return cube.Checkpointer(
        job="dtensor",
        rank=RANK,
        world_size=WORLD,
        local_ranks=list(range(WORLD)),
        node="node-a",
        l1_dir=os.path.join(ROOT, "L1"),
        l3_dir=os.path.join(ROOT, "L3"),
        l3_every=1,
        every_steps=1,
        background_nice=0,
    )


def build(seed: int, dp_mesh: Any, tp_mesh: Any = None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model: torch.nn.Module = Tiny()
    if tp_mesh is not None:
        parallelize_module(model, tp_mesh, {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()})
    for layer in (model.embed, model.fc1, model.fc2):
        fully_shard(layer, mesh=dp_mesh)
    fully_shard(model, mesh=dp_mesh)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, dp_rank: int) -> None:
    g = torch.Generator().manual_seed(1000 * step + dp_rank)
    x = torch.randint(0, 13, (6, 3), generator=g)
    model(x).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()


def tp_state(mesh: Any) -> dict[str, Any]:
    g = torch.Generator().manual_seed(7)
    rows = torch.randn(5, 3, generator=g)  # 5 rows on 2 ranks: 3 and 2
    cols = torch.randn(4, 7, generator=g, dtype=torch.float64)
    rep = torch.arange(6, dtype=torch.int32)
    return {
        "rows": distribute_tensor(rows, mesh, [Shard(0)]),
        "cols": distribute_tensor(cols, mesh, [Shard(1)]),
        "rep": distribute_tensor(rep, mesh, [Replicate()]),
    }


def full(value: Any) -> Any:
    if isinstance(value, DTensor):
        return value.full_tensor()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: full(v) for k, v in value.items() if k != "__cube__"}
    if isinstance(value, (list, tuple)):
        return type(value)(full(v) for v in value)
    return value


def dump(state: Any, name: str) -> None:
    whole = full(state)
    if RANK == 0:
        torch.save(whole, os.path.join(ROOT, f"{name}.pt"))


def error_of(fn: Any) -> dict[str, Any] | None:
    try:
        fn()
    except cube.CheckpointError as e:
        return {"code": e.code, "message": e.message, "where": e.where}
    return None


def kinds(state: Any) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}/{k}")
        elif isinstance(v, torch.Tensor):
            out[path] = f"{type(v).__name__}{list(v.to_local().shape) if isinstance(v, DTensor) else ''}"

    walk(state, "")
    return out


def save_phase() -> None:
    dp = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("dp",))
    tp = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("tp",))
    model, opt = build(1, dp)
    extra = tp_state(tp)
    with checkpointer() as ckpt:
        for step in (1, 2):
            train_step(model, opt, step, RANK)
            msd, osd = get_state_dict(model, opt)
            state = {"model": msd, "optim": osd, "tp": extra, "step": step}
            ckpt.save(step, state)
            ckpt.wait()
            dump(state, f"saved-{step}")
        result["kinds"] = kinds(state)
    train_step(model, opt, 3, RANK)
    msd, osd = get_state_dict(model, opt)
    dump({"model": msd, "optim": osd}, "saved-after-3")


def refuse_phase() -> None:
    dp = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("dp",))
    with checkpointer() as ckpt:
        result["error"] = error_of(lambda: ckpt.load_latest(device_mesh=dp))


def load_phase() -> None:
    dp = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("dp",))
    tp = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("tp",))
    model, opt = build(2, dp)
    with checkpointer() as ckpt:
        result["no_mesh"] = error_of(lambda: ckpt.load_latest())
        result["wrong_mesh"] = error_of(lambda: ckpt.load_latest(device_mesh=dp))
        state = ckpt.load_latest(device_mesh=[dp, tp])
    result["step"] = state["__cube__"]["step"]
    result["kinds"] = kinds(state)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    msd, osd = get_state_dict(model, opt)
    dump({"model": msd, "optim": osd, "tp": state["tp"], "step": state["step"]}, "loaded")
    train_step(model, opt, 3, RANK)
    msd, osd = get_state_dict(model, opt)
    dump({"model": msd, "optim": osd}, "loaded-after-3")


def save2d_phase() -> None:
    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
    model, opt = build(3, mesh["dp"], mesh["tp"])
    with checkpointer() as ckpt:
        for step in (1, 2):
            train_step(model, opt, step, mesh.get_local_rank("dp"))
            msd, osd = get_state_dict(model, opt)
            ckpt.save(step, {"model": msd, "optim": osd})
            ckpt.wait()
        result["kinds"] = kinds({"model": msd, "optim": osd})
        dump({"model": msd, "optim": osd}, "saved2d")


def load2d_phase() -> None:
    mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
    model, opt = build(4, mesh["dp"], mesh["tp"])
    with checkpointer() as ckpt:
        state = ckpt.load_latest(device_mesh=mesh)
    result["kinds"] = kinds(state)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    msd, osd = get_state_dict(model, opt)
    dump({"model": msd, "optim": osd}, "loaded2d")


PHASES = {
    "save": save_phase,
    "refuse": refuse_phase,
    "load": load_phase,
    "save2d": save2d_phase,
    "load2d": load2d_phase,
}


def main() -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{PORT}", rank=RANK, world_size=WORLD)
    try:
        PHASES[PHASE]()
    except BaseException:  # noqa: BLE001 - reported to the test with its traceback
        result["crash"] = traceback.format_exc()
    finally:
        with open(os.path.join(ROOT, f"result-{PHASE}-{RANK}.json"), "w", encoding="utf-8") as f:
            json.dump(result, f)
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
