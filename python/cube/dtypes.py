"""The safetensors dtype names of the format and their torch equivalents."""

from __future__ import annotations

import torch

from .errors import CheckpointError

# Bytes per element of every dtype the format carries, whatever this torch has.
ITEMSIZE: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}

# The position of each dtype in the reference writer's `Dtype` enum (safetensors'
# `tensor.rs`), which is in increasing alignment order: its `serialize` lays tensors out by this
# rank, highest first, then by name, so every tensor is aligned to its element size once the
# data section starts at a multiple of 8. Cube writes the same order to produce the same bytes.
ALIGNMENT_RANK: dict[str, int] = {
    "BOOL": 0,
    "U8": 1,
    "I8": 2,
    "F8_E5M2": 3,
    "F8_E4M3": 4,
    "I16": 5,
    "U16": 6,
    "F16": 7,
    "BF16": 8,
    "I32": 9,
    "U32": 10,
    "F32": 11,
    "F64": 12,
    "I64": 13,
    "U64": 14,
}

# The torch version that first has each dtype that torch 1.x lacks.
_NEEDS: dict[str, tuple[str, str]] = {
    "F8_E4M3": ("float8_e4m3fn", "2.1"),
    "F8_E5M2": ("float8_e5m2", "2.1"),
    "U16": ("uint16", "2.3"),
    "U32": ("uint32", "2.3"),
    "U64": ("uint64", "2.3"),
}

TORCH_TO_ST: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
for _st, (_attr, _) in _NEEDS.items():
    _dt = getattr(torch, _attr, None)
    if isinstance(_dt, torch.dtype):
        TORCH_TO_ST[_dt] = _st
ST_TO_TORCH: dict[str, torch.dtype] = {v: k for k, v in TORCH_TO_ST.items()}


def st_dtype(dtype: torch.dtype, path: str) -> str:
    """The format's dtype name of a torch dtype; raises for dtypes the format does not carry."""
    name = TORCH_TO_ST.get(dtype)
    if name is None:
        raise CheckpointError(
            "INVALID_VALUE",
            f"tensor dtype {dtype} is not one of the shard format's dtypes",
            {"path": path, "allowed": sorted(TORCH_TO_ST.values())},
        )
    return name


def torch_dtype(name: str, path: str, file: str) -> torch.dtype:
    """The torch dtype of a format dtype; raises when this torch is too old to hold it."""
    dtype = ST_TO_TORCH.get(name)
    if dtype is None:
        attr, version = _NEEDS.get(name, (name, "?"))
        raise CheckpointError(
            "INVALID_VALUE",
            f"{file}: tensor {path!r} is {name}, which needs torch >= {version} (torch.{attr});"
            f" this is torch {torch.__version__}",
            {"file": file, "path": path},
        )
    return dtype
