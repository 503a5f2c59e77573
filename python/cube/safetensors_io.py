"""The shard file: safetensors, laid out byte for byte as the reference writer lays it out.

The reference `safetensors` writer (`serialize` in its `tensor.rs`, behind
`safetensors.torch.save_file`) puts the tensors in descending dtype alignment order, then by
name, packed with no gap, after a JSON header padded with spaces to a multiple of 8; Cube does
the same (docs/checkpoint-format.md, "Shard file"), so its shards load in the reference library
and every tensor is aligned to its element size in a mapping.

Writing is split in two so a slot can be reused: `plan_layout` computes where every tensor goes
(once per state layout and header size) and `encode_header` renders the header for one save; the
tensor bytes are copied by the snapshot code straight into the mapped slot.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch

from .dtypes import ALIGNMENT_RANK, ITEMSIZE, st_dtype, torch_dtype
from .errors import CheckpointError

# The JSON header is padded with spaces to a multiple of this (the format's rule, and all the
# reference writer pads): with the largest dtypes first, every tensor is then aligned.
HEADER_ALIGN = 8
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorSpec:
    """Where one tensor lives: offsets are relative to the data start, as in the header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class ShardLayout:
    """The byte layout of a shard for one state layout (names, dtypes, shapes) and header size.

    `specs[i]` places the i-th tensor given to `plan_layout` (so callers zip specs with their
    tensors); `order` lists the spec indices in data order, the order of the header too.
    """

    specs: tuple[TensorSpec, ...]
    order: tuple[int, ...]
    data_start: int
    data_len: int

    @property
    def total(self) -> int:
        """The file size."""
        return self.data_start + self.data_len

    @property
    def signature(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """What must stay equal for a slot to be reused as is."""
        return tuple((s.name, s.dtype, s.shape) for s in self.specs)


def _header_json(specs: Iterable[TensorSpec], metadata: Mapping[str, str]) -> bytes:
    # The reference writer's JSON exactly: `__metadata__` first, then the tensors in data order,
    # compact, non-ASCII characters as UTF-8 (serde_json does not escape them).
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    for s in specs:
        header[s.name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [s.begin, s.end]}
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _padded(n: int) -> int:
    return (n + HEADER_ALIGN - 1) // HEADER_ALIGN * HEADER_ALIGN


def shard_metadata(job: str, step: int, rank: int) -> dict[str, str]:
    """The `__metadata__` the format requires."""
    return {"format": "pt", "cube.job": job, "cube.step": str(step), "cube.rank": str(rank)}


def plan_layout(tensors: Sequence[tuple[str, torch.Tensor]], metadata: Mapping[str, str]) -> ShardLayout:
    """Lays the tensors out in the reference order (largest dtype alignment first, then name),
    packed, after a header holding `metadata` (a later header must have the same padded size:
    for Cube's metadata, a step with as many digits)."""
    dtypes = [st_dtype(t.dtype, name) for name, t in tensors]
    order = sorted(range(len(tensors)), key=lambda i: (-ALIGNMENT_RANK[dtypes[i]], tensors[i][0]))
    placed: dict[int, TensorSpec] = {}
    offset = 0
    for i in order:
        name, t = tensors[i]
        nbytes = t.numel() * ITEMSIZE[dtypes[i]]
        placed[i] = TensorSpec(name, dtypes[i], tuple(int(d) for d in t.shape), offset, offset + nbytes)
        offset += nbytes
    specs = tuple(placed[i] for i in range(len(tensors)))
    body = _header_json((specs[i] for i in order), metadata)
    return ShardLayout(specs, tuple(order), 8 + _padded(len(body)), offset)


def encode_header(layout: ShardLayout, metadata: Mapping[str, str]) -> bytes:
    """The first `layout.data_start` bytes of the file: length prefix and space-padded JSON."""
    body = _header_json((layout.specs[i] for i in layout.order), metadata)
    n = layout.data_start - 8
    if _padded(len(body)) != n:
        raise CheckpointError("INTERNAL", "the shard header does not fit the planned layout; plan it again")
    return struct.pack("<Q", n) + body + b" " * (n - len(body))


def encode_shard(tensors: Sequence[tuple[str, torch.Tensor]], job: str, step: int, rank: int) -> bytes:
    """A whole shard file in memory (for tools and tests; saves write slots instead)."""
    metadata = shard_metadata(job, step, rank)
    layout = plan_layout(tensors, metadata)
    out = bytearray(layout.total)
    out[: layout.data_start] = encode_header(layout, metadata)
    for spec, (_, t) in zip(layout.specs, tensors):
        raw = t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        out[layout.data_start + spec.begin : layout.data_start + spec.end] = raw
    return bytes(out)


def _bad(file: str, message: str) -> CheckpointError:
    return CheckpointError("INVALID_FILE", f"{file}: {message}", {"file": file})


def parse_header(buf: Any, file: str) -> tuple[dict[str, str], list[TensorSpec], int]:
    """Validates a shard's header; returns (metadata, tensor specs, data start).

    Raises `CheckpointError(INVALID_FILE)` naming `file` when the header is malformed, when a
    tensor's offsets disagree with its dtype and shape, or when tensors overlap or run past the end.
    """
    size = len(buf)
    if size < 8:
        raise _bad(file, f"shard is {size} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", buf, 0)
    if n > MAX_HEADER or 8 + n > size:
        raise _bad(file, f"header length {n} does not fit the {size}-byte file")
    try:
        header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(file, f"header is not JSON: {e}") from e
    if not isinstance(header, dict):
        raise _bad(file, "header is not a JSON object")
    data_start = 8 + n
    data_len = size - data_start
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(file, "__metadata__ must map names to strings")
    specs: list[TensorSpec] = []
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
        except (KeyError, TypeError, ValueError) as e:
            raise _bad(file, f"tensor {name!r} lacks dtype, shape or data_offsets") from e
        if dtype not in ITEMSIZE:
            raise _bad(file, f"tensor {name!r} has unknown dtype {dtype!r}")
        if not all(isinstance(d, int) and d >= 0 for d in shape) or not all(
            isinstance(o, int) for o in (begin, end)
        ):
            raise _bad(file, f"tensor {name!r} has a malformed shape or offsets")
        expected = math.prod(shape) * ITEMSIZE[dtype]
        if not 0 <= begin <= end <= data_len or end - begin != expected:
            raise _bad(
                file,
                f"tensor {name!r} offsets [{begin}, {end}] do not hold {expected} bytes inside the"
                f" {data_len}-byte data",
            )
        specs.append(TensorSpec(name, dtype, shape, begin, end))
    # Empty tensors occupy no bytes and cannot overlap anything (the engine's rule too).
    ordered = sorted((s for s in specs if s.end > s.begin), key=lambda s: (s.begin, s.end))
    for a, b in zip(ordered, ordered[1:]):
        if b.begin < a.end:
            raise _bad(file, f"tensors {a.name!r} and {b.name!r} overlap")
    data_end = max((s.end for s in specs), default=0)
    if data_end != data_len:
        raise _bad(
            file,
            f"the tensors end at data byte {data_end} but the data has {data_len} bytes (trailing bytes)",
        )
    return metadata, specs, data_start


def tensors_from_buffer(
    buf: bytearray, specs: Sequence[TensorSpec], data_start: int, file: str = "<memory>"
) -> dict[str, torch.Tensor]:
    """Tensors viewing `buf` (no copy); they keep `buf` alive. Raises `INVALID_VALUE` for a dtype
    this torch lacks (fp8 before 2.1, U16/U32/U64 before 2.3)."""
    out: dict[str, torch.Tensor] = {}
    for s in specs:
        dtype = torch_dtype(s.dtype, s.name, file)
        count = s.end - s.begin
        if count == 0:
            out[s.name] = torch.empty(s.shape, dtype=dtype)
            continue
        flat = torch.frombuffer(
            buf, dtype=dtype, count=count // ITEMSIZE[s.dtype], offset=data_start + s.begin
        )
        out[s.name] = flat.view(s.shape)
    return out


def decode_shard(buf: bytearray, file: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Parses a whole shard held in memory: (metadata, tensors by name)."""
    metadata, specs, data_start = parse_header(buf, file)
    return metadata, tensors_from_buffer(buf, specs, data_start, file)
