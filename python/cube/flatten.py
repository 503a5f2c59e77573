"""Flattening a trainer's state into tensor leaves (for the shard) and a JSON tree (for `extra`).

The tree is the state with every tensor replaced by a reference to its shard name, and every
other leaf encoded so that it comes back exactly, even after a JavaScript program (the engine,
the daemon) parsed and re-serialized the JSON:

| value                         | encoding                                                     |
| ----------------------------- | ------------------------------------------------------------ |
| None, bool, str               | as is                                                        |
| int                           | a number when |x| < 2**53, else `{"$int": "<decimal>"}`      |
| float                         | `{"$float": x}`; NaN, ±inf and -0.0 as `{"$float": "<16 hex digits of the IEEE-754 bits>"}` |
| list                          | an array                                                     |
| tuple, torch.Size             | `{"$tuple": [...]}`, `{"$size": [...]}`                      |
| dict with plain string keys   | an object                                                    |
| any other dict                | `{"$dict": [[key, value], ...]}` (int keys, keys starting with `$` or looking like array indices, which JavaScript would reorder) |
| OrderedDict                   | `{"$odict": [[key, value], ...], "meta": <its _metadata>}`   |
| torch.dtype, torch.device     | `{"$dtype": "float32"}`, `{"$device": "cuda:0"}`             |
| bytes                         | `{"$bytes": "<base64>"}`                                     |
| tensor / numpy array          | `{"$tensor": "<shard name>"}` (+ `"numpy": true`, `"requires_grad": true`) |
| DTensor (FSDP2, TP)           | `{"$dtensor": "<shard name>", "mesh": i, "placements": [...], "shape": [...], "stride": [...], "offset": [...]}` |

A DTensor is stored as this rank's local shard (the tensor `<shard name>`) and its global layout;
`mesh` indexes the record's `extra.meshes` (dtensor_state.py). A state holding DTensors is
written as `cube.state/2` so that a client without DTensor support refuses it rather than
returning the layout as a dict.

Floats are tagged so that an int stays an int and a float a float (JavaScript has one number
type and writes 1.0 as 1); the number itself round-trips exactly through any correct JSON
implementation (shortest round-trip formatting in both languages).
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from .dtensor_state import dtensor_type, saved_dtensor, split_dtensor
from .errors import CheckpointError

STATE_FORMAT = "cube.state/1"
# With DTensors (and `extra.meshes`); the tree encoding is otherwise the same.
SHARDED_STATE_FORMAT = "cube.state/2"
_MAX_SAFE_INT = 2**53 - 1
# Keys JavaScript engines iterate before all other keys (canonical array indices).
_INDEX_LIKE = re.compile(r"^(0|[1-9][0-9]*)$")


@dataclass
class FlatState:
    """A flattened state: tensor leaves in traversal order and the JSON tree of the rest."""

    tensors: list[tuple[str, torch.Tensor]] = field(default_factory=list)
    tree: Any = None
    # The device meshes of the state's DTensors (dtensor_state.describe_mesh), each once.
    meshes: list[dict[str, Any]] = field(default_factory=list)

    def extra(self) -> dict[str, Any]:
        """The shard record's `extra` for this state."""
        if self.meshes:
            return {"format": SHARDED_STATE_FORMAT, "tree": self.tree, "meshes": self.meshes}
        return {"format": STATE_FORMAT, "tree": self.tree}


def _float(x: float) -> dict[str, Any]:
    if math.isfinite(x) and not (x == 0.0 and math.copysign(1.0, x) < 0):
        return {"$float": x}
    return {"$float": struct.pack(">d", x).hex()}


class _Flattener:
    def __init__(self) -> None:
        self.flat = FlatState()
        self.names: set[str] = set()
        self.dtensor = dtensor_type()

    def sharded(self, value: Any, name: str) -> dict[str, Any]:
        local, layout, mesh = split_dtensor(value, name)
        ref = self.tensor(local, name, numpy=False)
        ref.pop("requires_grad", None)
        try:
            index = self.flat.meshes.index(mesh)
        except ValueError:
            index = len(self.flat.meshes)
            self.flat.meshes.append(mesh)
        out: dict[str, Any] = {"$dtensor": ref.pop("$tensor"), "mesh": index, **layout}
        if value.requires_grad:
            out["requires_grad"] = True
        return out

    def tensor(self, t: torch.Tensor, name: str, numpy: bool) -> dict[str, Any]:
        if name in self.names or name == "__metadata__":
            raise CheckpointError(
                "INVALID_VALUE",
                f"two tensors flatten to the same name {name!r} (a key contains '/' or a str key"
                " equals an int key of the same dict)",
                {"path": name},
            )
        if t.is_sparse or t.is_quantized or t.is_complex():
            raise CheckpointError(
                "INVALID_VALUE", "sparse, quantized and complex tensors are not supported", {"path": name}
            )
        self.names.add(name)
        self.flat.tensors.append((name, t))
        ref: dict[str, Any] = {"$tensor": name}
        if numpy:
            ref["numpy"] = True
        if t.requires_grad:
            ref["requires_grad"] = True
        return ref

    def encode(self, value: Any, path: str, in_key: bool = False) -> Any:
        # bool before int: bool is a subclass of int.
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, torch.Tensor):
            if in_key:
                raise CheckpointError("INVALID_VALUE", "a tensor cannot be a dict key", {"path": path})
            if self.dtensor is not None and isinstance(value, self.dtensor):
                return self.sharded(value, path)
            return self.tensor(value, path, numpy=False)
        if isinstance(value, np.ndarray):
            if in_key:
                raise CheckpointError("INVALID_VALUE", "an array cannot be a dict key", {"path": path})
            return self.tensor(torch.from_numpy(np.ascontiguousarray(value)), path, numpy=True)
        if isinstance(value, (int, np.integer)):
            i = int(value)
            return i if abs(i) <= _MAX_SAFE_INT else {"$int": str(i)}
        if isinstance(value, (float, np.floating)):
            return _float(float(value))
        if isinstance(value, torch.Size):
            return {"$size": [int(d) for d in value]}
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, bytes):
            return {"$bytes": base64.b64encode(value).decode("ascii")}
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"$tuple": [self.encode(v, _join(path, str(i)), in_key) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, _join(path, str(i)), in_key) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return self.mapping(value, path)
        raise CheckpointError(
            "INVALID_VALUE",
            f"a value of type {type(value).__name__} cannot be checkpointed"
            " (use tensors, numbers, strings, None, lists, tuples and dicts)",
            {"path": path or "/"},
        )

    def mapping(self, value: Mapping[Any, Any], path: str) -> Any:
        # A key names its subtree by str(key); a collision between two tensor names (a str key
        # "0" next to an int key 0, a key containing "/") is caught in tensor().
        pairs = [
            (k, self.encode(k, path, in_key=True), self.encode(v, _join(path, str(k))))
            for k, v in value.items()
        ]
        if isinstance(value, OrderedDict):
            out: dict[str, Any] = {"$odict": [[ek, ev] for _, ek, ev in pairs]}
            meta = getattr(value, "_metadata", None)
            if meta is not None:
                out["meta"] = self.encode(meta, _join(path, "_metadata"), in_key=True)
            return out
        plain = all(
            isinstance(k, str) and not k.startswith("$") and not _INDEX_LIKE.match(k) for k, _, _ in pairs
        )
        if plain:
            return {k: ev for k, _, ev in pairs}
        return {"$dict": [[ek, ev] for _, ek, ev in pairs]}


def _join(path: str, part: str) -> str:
    return f"{path}/{part}" if path else part


def flatten_state(state: Any) -> FlatState:
    """Splits a nested dict/list state into its tensor leaves and the JSON tree of everything else.

    Tensor names are the `/`-joined paths of the spec (`model/embed.weight`,
    `optimizer/state/0/exp_avg`). Raises `CheckpointError(INVALID_VALUE)` naming the path of a
    value that cannot be checkpointed or of two tensors whose names collide.
    """
    if not isinstance(state, (dict, list)):
        raise CheckpointError("INVALID_VALUE", "the state must be a dict or a list", {"path": "/"})
    f = _Flattener()
    f.flat.tree = f.encode(state, "")
    return f.flat


def _decode_float(v: Any) -> float:
    if isinstance(v, str):
        return struct.unpack(">d", bytes.fromhex(v))[0]
    return float(v)


def _decode(node: Any, tensors: Mapping[str, torch.Tensor], meshes: list[Any]) -> Any:
    if node is None or isinstance(node, (bool, str)):
        return node
    if isinstance(node, int):
        return node
    if isinstance(node, float):
        # A JSON implementation wrote an integer-valued number as 1.0; the encoder never does.
        return int(node) if node.is_integer() else node
    if isinstance(node, list):
        return [_decode(v, tensors, meshes) for v in node]
    if not isinstance(node, dict):
        raise CheckpointError("INVALID_FILE", f"unexpected JSON value {node!r} in the state tree")
    tag = next(iter(node), None)
    if tag == "$tensor":
        name = node["$tensor"]
        if name not in tensors:
            raise CheckpointError(
                "INVALID_FILE", f"the state refers to tensor {name!r} the shard lacks", {"path": name}
            )
        t = tensors[name]
        if node.get("numpy"):
            return t.numpy()
        if node.get("requires_grad"):
            t.requires_grad_(True)
        return t
    if tag == "$dtensor" and meshes:
        name = node["$dtensor"]
        if not isinstance(name, str) or name not in tensors:
            raise CheckpointError(
                "INVALID_FILE", f"the state refers to tensor {name!r} the shard lacks", {"path": str(name)}
            )
        # A placeholder until load_latest knows the mesh (dtensor_state.rebuild_dtensors).
        return saved_dtensor(node, tensors[name], meshes)
    if tag == "$float":
        return _decode_float(node["$float"])
    if tag == "$int":
        return int(node["$int"])
    if tag == "$tuple":
        return tuple(_decode(v, tensors, meshes) for v in node["$tuple"])
    if tag == "$size":
        return torch.Size(int(d) for d in node["$size"])
    if tag == "$dtype":
        return getattr(torch, node["$dtype"])
    if tag == "$device":
        return torch.device(node["$device"])
    if tag == "$bytes":
        return base64.b64decode(node["$bytes"])
    if tag == "$dict":
        return {_decode(k, tensors, meshes): _decode(v, tensors, meshes) for k, v in node["$dict"]}
    if tag == "$odict":
        od: OrderedDict[Any, Any] = OrderedDict(
            (_decode(k, tensors, meshes), _decode(v, tensors, meshes)) for k, v in node["$odict"]
        )
        if "meta" in node:
            od._metadata = _decode(node["meta"], tensors, meshes)  # type: ignore[attr-defined]
        return od
    return {k: _decode(v, tensors, meshes) for k, v in node.items()}


def unflatten_state(extra: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Any:
    """Rebuilds the state from a record's `extra` and the shard's tensors by name.

    A DTensor leaf comes back as a `dtensor_state.SavedDTensor` (its local shard and layout):
    only the caller knows the mesh to rebuild it on (`Checkpointer.load_latest(device_mesh=)`).
    """
    fmt = extra.get("format")
    if fmt not in (STATE_FORMAT, SHARDED_STATE_FORMAT) or "tree" not in extra:
        raise CheckpointError(
            "INVALID_FILE", f"the record's extra is not a {STATE_FORMAT} state", {"field": "extra.format"}
        )
    meshes = extra.get("meshes") if fmt == SHARDED_STATE_FORMAT else []
    if not isinstance(meshes, list) or (fmt == SHARDED_STATE_FORMAT and not meshes):
        raise CheckpointError(
            "INVALID_FILE", f"a {SHARDED_STATE_FORMAT} state without its meshes", {"field": "extra.meshes"}
        )
    return _decode(extra["tree"], tensors, meshes)
