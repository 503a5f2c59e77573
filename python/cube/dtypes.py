"""The safetensors dtype names of the format and their torch equivalents."""

from __future__ import annotations

import torch

from .errors import CheckpointError

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
ST_TO_TORCH: dict[str, torch.dtype] = {v: k for k, v in TORCH_TO_ST.items()}
ITEMSIZE: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


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
