"""DTensor leaves (FSDP2 `fully_shard`, tensor parallel) of a `cube.Checkpointer` state.

Saving: each rank writes only its local shard (`DTensor.to_local()`) as an ordinary tensor of
its Cube shard; the state tree keeps the global layout next to the reference (global shape and
stride, this shard's offsets in the global tensor, the placements) and the record's `extra`
lists the device meshes once (`shape`, dim names, the global ranks in mesh order). A replicated
placement is written by every rank that holds it: each rank's shard restores on its own, as the
engine's per-rank restore (own L1, a peer's L2, L3) expects.

Restoring: the shard decodes to `SavedDTensor` placeholders; `rebuild_dtensors` turns each back
into a DTensor on the caller's mesh with `DTensor.from_local(..., shape=, stride=,
run_check=False)`, after checking that the mesh has the saved shape, dim names and ranks and
that torch computes the same local shape and offsets for this rank. Any other world size or mesh
is refused (`INFEASIBLE`): a Checkpointer shard holds one rank's slice only, so a different
layout needs DCP's resharding (`cube.dcp.Writer` / `cube.dcp.Reader`).

Nothing here imports `torch.distributed.tensor` unless a DTensor exists: `import cube` keeps
working on a torch without it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from .errors import CheckpointError

_PLACEMENT = re.compile(r"^(?:S\((\d+)\)|_S\((\d+),(\d+)\)|R|P\(([a-z_]+)\))$")
_RESHARD_HINT = (
    "a cube.Checkpointer shard holds one rank's slice of each DTensor and restores only onto the"
    " layout that saved it; to change the world size or the mesh, save with"
    " dcp.save(state, checkpoint_id=step, storage_writer=cube.dcp.Writer()) and load with"
    " dcp.load(state, storage_reader=cube.dcp.Reader()), which reshards"
)


def dtensor_type() -> type | None:
    """The DTensor class when `torch.distributed.tensor` is imported (else no DTensor exists)."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None) if module is not None else None


def describe_mesh(mesh: Any) -> dict[str, Any]:
    """A device mesh as the record keeps it: JSON, the same for every rank of the mesh."""
    names = mesh.mesh_dim_names
    return {
        "device": str(mesh.device_type),
        "shape": [int(d) for d in mesh.mesh.shape],
        "dims": list(names) if names is not None else None,
        "ranks": [int(r) for r in mesh.mesh.flatten().tolist()],
    }


def mesh_text(d: dict[str, Any]) -> str:
    """`(2, 2) dims ('dp', 'tp') ranks [0, 1, 2, 3]`, short enough for an error message."""
    ranks = d.get("ranks") or []
    shown = ranks if len(ranks) <= 16 else [*ranks[:8], "...", *ranks[-4:]]
    dims = tuple(d["dims"]) if d.get("dims") else "unnamed"
    return f"{tuple(d.get('shape') or ())} dims {dims} ranks {shown}"


def encode_placement(p: Any, path: str) -> str:
    """`S(d)` (Shard), `_S(d,f)` (_StridedShard, FSDP2 + TP), `R` (Replicate), `P(op)` (Partial)."""
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    # _StridedShard first: on some torch versions it derives from Shard.
    if isinstance(p, _StridedShard):
        return f"_S({int(p.dim)},{int(p.split_factor)})"
    if isinstance(p, Shard):
        return f"S({int(p.dim)})"
    if isinstance(p, Replicate):
        return "R"
    if type(p) is Partial and re.fullmatch(r"[a-z_]+", str(p.reduce_op)):
        return f"P({p.reduce_op})"
    raise CheckpointError(
        "INVALID_VALUE",
        f"a DTensor placement {p!r} cannot be checkpointed (Shard, _StridedShard, Replicate and"
        " Partial can)",
        {"path": path},
    )


def decode_placement(text: str, path: str) -> Any:
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    m = _PLACEMENT.match(text) if isinstance(text, str) else None
    if m is None:
        raise CheckpointError("INVALID_FILE", f"unknown DTensor placement {text!r}", {"path": path})
    if m.group(1) is not None:
        return Shard(int(m.group(1)))
    if m.group(2) is not None:
        return _StridedShard(int(m.group(2)), split_factor=int(m.group(3)))
    if m.group(4) is not None:
        return Partial(m.group(4))
    return Replicate()


def _layout_on(
    global_shape: Sequence[int], mesh: Any, placements: Sequence[Any]
) -> tuple[list[int], list[int]]:
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    local_shape, offset = compute_local_shape_and_global_offset(list(global_shape), mesh, list(placements))
    return [int(d) for d in local_shape], [int(o) for o in offset]


def split_dtensor(value: Any, path: str) -> tuple[torch.Tensor, dict[str, Any], dict[str, Any]]:
    """This rank's local shard of `value`, its layout for the state tree and its mesh's record.

    Offsets come from torch's own helper (the one DCP uses); a local tensor whose shape differs
    from what the helper computes would not restore, so it is refused here, at save.
    """
    placements = [encode_placement(p, path) for p in value.placements]
    local = value.to_local()
    wait = getattr(local, "wait", None)
    if callable(wait):
        # An AsyncCollectiveTensor (a redistribute still in flight): its values once it lands.
        local = wait()
    local_shape, offset = _layout_on(value.shape, value.device_mesh, value.placements)
    if local_shape != list(local.shape):
        raise CheckpointError(
            "INVALID_VALUE",
            f"the DTensor's local shard has shape {list(local.shape)}, torch computes {local_shape}"
            f" for placements {placements} of global shape {list(value.shape)}: its layout cannot"
            " be recorded",
            {"path": path},
        )
    layout = {
        "placements": placements,
        "shape": [int(d) for d in value.shape],
        "stride": [int(s) for s in value.stride()],
        "offset": offset,
    }
    return local, layout, describe_mesh(value.device_mesh)


@dataclass
class SavedDTensor:
    """A DTensor leaf read back from a shard, before a mesh is given (see `rebuild_dtensors`)."""

    name: str
    local: torch.Tensor
    mesh: dict[str, Any]
    placements: list[str]
    shape: list[int]
    stride: list[int]
    offset: list[int]
    requires_grad: bool = False

    def describe(self) -> str:
        return (
            f"{self.name}: global shape {self.shape}, offset {self.offset},"
            f" placements {self.placements} on mesh {mesh_text(self.mesh)}"
        )


def saved_dtensor(node: dict[str, Any], local: torch.Tensor, meshes: Sequence[Any]) -> SavedDTensor:
    """Checks and decodes a `$dtensor` node of the state tree (INVALID_FILE when malformed)."""
    name = node.get("$dtensor")
    try:
        mesh = meshes[node["mesh"]]
        out = SavedDTensor(
            name=str(name),
            local=local,
            mesh=mesh,
            placements=[str(p) for p in node["placements"]],
            shape=[int(d) for d in node["shape"]],
            stride=[int(s) for s in node["stride"]],
            offset=[int(o) for o in node["offset"]],
            requires_grad=bool(node.get("requires_grad", False)),
        )
        ok = (
            isinstance(mesh, dict)
            and len(mesh["shape"]) == len(out.placements)
            and all(_PLACEMENT.match(p) for p in out.placements)
            and len(out.shape) == len(out.stride) == len(out.offset) == local.dim()
        )
    except (KeyError, IndexError, TypeError, ValueError):
        ok = False
    if not ok:
        raise CheckpointError(
            "INVALID_FILE", f"the state's DTensor entry {name!r} is malformed", {"path": str(name)}
        )
    return out



def _walk(value: Any) -> Iterable[SavedDTensor]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, SavedDTensor):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


class _MeshResolver:
    """Maps each saved mesh record onto the caller's meshes: the same mesh, or a submesh sliced
    from one by the saved dim names (FSDP2 + TP keep their DTensors on `mesh["dp"]`, `mesh["tp"]`)."""

    def __init__(self, meshes: Sequence[Any]) -> None:
        self.meshes = list(meshes)
        self.cache: dict[str, Any] = {}

    def resolve(self, saved: dict[str, Any]) -> Any | None:
        key = repr((saved.get("shape"), saved.get("dims"), saved.get("ranks")))
        if key not in self.cache:
            self.cache[key] = self._find(saved)
        return self.cache[key]

    def _find(self, saved: dict[str, Any]) -> Any | None:
        for mesh in self.meshes:
            if _same_mesh(describe_mesh(mesh), saved):
                return mesh
            dims, names = saved.get("dims"), mesh.mesh_dim_names
            if dims and names and set(dims) <= set(names):
                try:
                    sub = mesh[tuple(dims)] if len(dims) > 1 else mesh[dims[0]]
                except (KeyError, IndexError, RuntimeError, ValueError):
                    continue
                if _same_mesh(describe_mesh(sub), saved):
                    return sub
        return None


def _same_mesh(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # The device type may differ (saved on GPUs, inspected on a CPU mesh): from_local moves it.
    return (a["shape"], a["dims"], a["ranks"]) == (b.get("shape"), b.get("dims"), b.get("ranks"))


def _meshes_arg(device_mesh: Any) -> list[Any]:
    if device_mesh is None:
        return []
    if isinstance(device_mesh, (list, tuple)):
        return list(device_mesh)
    return [device_mesh]


def rebuild_dtensors(state: Any, device_mesh: Any, world_size: int) -> tuple[Any, CheckpointError | None]:
    """`state` with every `SavedDTensor` rebuilt as a DTensor on `device_mesh` (a DeviceMesh, or a
    list of them), in place for dicts and lists; or the error that refuses the restore.

    Never raises for a layout problem: the caller agrees with the other ranks first, so that every
    rank raises together rather than one rank leaving the others waiting in a collective.
    """
    saved = list(_walk(state))
    if not saved:
        return state, None
    if device_mesh is None:
        first = saved[0]
        return state, CheckpointError(
            "INVALID_VALUE",
            f"the restored state holds {len(saved)} DTensors ({first.describe()}, ...): pass the"
            " device mesh they live on, load_latest(device_mesh=mesh)",
            {"path": first.name, "field": "device_mesh"},
        )
    resolver = _MeshResolver(_meshes_arg(device_mesh))
    from torch.distributed.tensor import DTensor

    rebuilt: dict[int, Any] = {}
    for s in saved:
        mesh = resolver.resolve(s.mesh)
        if mesh is None:
            given = "; ".join(mesh_text(describe_mesh(m)) for m in resolver.meshes)
            return state, CheckpointError(
                "INFEASIBLE",
                f"{s.name} (global shape {s.shape}, placements {s.placements}) was saved on mesh"
                f" {mesh_text(s.mesh)}, which the given meshes ({given}; world size {world_size})"
                f" neither are nor contain: {_RESHARD_HINT}",
                {"path": s.name, "field": "device_mesh"},
            )
        try:
            placements = [decode_placement(p, s.name) for p in s.placements]
            local_shape, offset = _layout_on(s.shape, mesh, placements)
        except (CheckpointError, RuntimeError, ValueError, IndexError) as e:
            err = e if isinstance(e, CheckpointError) else None
            return state, err or CheckpointError(
                "INFEASIBLE",
                f"{s.describe()}: torch cannot lay it out on the given mesh ({e}): {_RESHARD_HINT}",
                {"path": s.name, "field": "device_mesh"},
            )
        if local_shape != list(s.local.shape) or offset != s.offset:
            return state, CheckpointError(
                "INFEASIBLE",
                f"{s.describe()} has local shape {list(s.local.shape)}; on this rank's mesh"
                f" coordinate torch computes shape {local_shape} at offset {offset}: {_RESHARD_HINT}",
                {"path": s.name, "field": "device_mesh"},
            )
        d = DTensor.from_local(
            s.local,
            mesh,
            placements,
            run_check=False,
            shape=torch.Size(s.shape),
            stride=tuple(s.stride),
        )
        if s.requires_grad:
            d.requires_grad_(True)
        rebuilt[id(s)] = d
    return _replace(state, rebuilt), None


def _replace(value: Any, rebuilt: dict[int, Any]) -> Any:
    if isinstance(value, SavedDTensor):
        return rebuilt[id(value)]
    if isinstance(value, dict):
        # In place: keeps the mapping's type, order and an OrderedDict's _metadata.
        for k in list(value.keys()):
            value[k] = _replace(value[k], rebuilt)
        return value
    if isinstance(value, list):
        value[:] = [_replace(v, rebuilt) for v in value]
        return value
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, tuple):
        return tuple(_replace(v, rebuilt) for v in value)
    return value


def saved_world_mismatch(paths: Iterable[Any], job: str, world_size: int) -> str | None:
    """Why the newest committed step at these local level roots cannot restore on `world_size`
    ranks, or None: it was saved by another number of ranks (DTensor state or not).

    Looked at before the restore agreement, so that a relaunch on more ranks (whose new ranks
    find no shard of their own and would start fresh, pruning the others' newer steps) is
    refused while the checkpoint is intact.
    """
    from .manifest import read_manifest

    newest: tuple[int, Path] | None = None
    for p in paths:
        try:
            for step in p.steps():
                mpath = p.manifest(step)
                if mpath.exists() and (newest is None or step > newest[0]):
                    newest = (step, mpath)
        except OSError:
            continue  # the restore reports an unreachable level itself
    if newest is None:
        return None
    step, mpath = newest
    try:
        m = read_manifest(mpath, job=job, step=step)
    except (CheckpointError, OSError):
        return None  # the restore reports an unreadable manifest itself
    saved_world = m.get("worldSize")
    if saved_world == world_size:
        return None
    if not isinstance(saved_world, int):
        return None  # the restore judges a malformed manifest itself
    for entry in m.get("shards") or []:
        meshes = (entry.get("extra") or {}).get("meshes")
        if meshes:
            return (
                f"step {step} ({mpath}) holds DTensors saved by {saved_world} ranks on mesh"
                f" {mesh_text(meshes[0])}; this run has {world_size} ranks: {_RESHARD_HINT}"
            )
    # A plain state too: the ranks without a shard of their own would make every rank start
    # fresh and prune the steps that are safe now.
    return (
        f"step {step} ({mpath}) was saved by {saved_world} ranks; this run has {world_size}:"
        " cube.Checkpointer restores onto the world size that saved it (the checkpoint is kept);"
        " to change the world size, save and load through torch.distributed.checkpoint with"
        " cube.dcp.Writer() / cube.dcp.Reader(), which reshard, or run under a new job id"
    )


def refuse_together(err: CheckpointError | None, world_size: int) -> None:
    """Raises `err` here and an error naming it on every other rank of the default group.

    Collective when torch.distributed is initialized: one rank refusing alone would leave the
    others waiting in their next collective. Costs one all_reduce when nobody refuses.
    """
    import torch.distributed as dist

    if world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        if err is not None:
            raise err
        return
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    flag = torch.tensor([0 if err is None else 1], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if int(flag.item()) == 0:
        return
    mine = None if err is None else (err.code, err.message, err.where)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    if err is not None:
        raise err
    rank, (code, message, where) = next((r, e) for r, e in enumerate(gathered) if e is not None)
    raise CheckpointError(code, f"rank {rank} refused the restore: {message}", {**where, "rank": rank})


__all__ = [
    "SavedDTensor",
    "dtensor_type",
    "rebuild_dtensors",
    "refuse_together",
    "saved_world_mismatch",
    "split_dtensor",
]
