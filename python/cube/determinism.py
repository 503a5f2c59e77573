"""Determinism helpers: seeding, RNG capture/restore, and a resumable data position.

Everything captured here is plain JSON (floats as `float.hex`, torch states as base64), so it can
go into a checkpoint's state, a log, or any JSON file and come back bit for bit.
"""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

RNG_FORMAT = "cube.rng/1"
_MASK63 = (1 << 63) - 1


def enable_determinism(warn_only: bool = False) -> None:
    """Asks torch for deterministic kernels (cuBLAS workspace, cuDNN, `use_deterministic_algorithms`).

    `CUBLAS_WORKSPACE_CONFIG` only takes effect if set before CUDA initializes; call this first.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seeds Python's `random`, NumPy's global RNG and torch (CPU and every CUDA device).

    With `deterministic`, also calls `enable_determinism()`. PYTHONHASHSEED cannot be changed from
    inside a running interpreter; set it in the launcher if iteration order of sets matters.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        enable_determinism()


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def _capture_python(r: Any) -> dict[str, Any]:
    version, internal, gauss_next = r.getstate()
    return {
        "version": version,
        "state": list(internal),
        "gauss_next": None if gauss_next is None else float.hex(gauss_next),
    }


def _restore_python(r: Any, s: Mapping[str, Any]) -> None:
    gauss = s["gauss_next"]
    r.setstate((s["version"], tuple(s["state"]), None if gauss is None else float.fromhex(gauss)))


def _capture_numpy_global() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "kind": kind,
        "keys": base64.b64encode(np.asarray(keys, dtype="<u4").tobytes()).decode("ascii"),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float.hex(float(cached)),
    }


def _restore_numpy_global(s: Mapping[str, Any]) -> None:
    keys = np.frombuffer(base64.b64decode(s["keys"]), dtype="<u4").astype(np.uint32)
    np.random.set_state((s["kind"], keys, s["pos"], s["has_gauss"], float.fromhex(s["cached_gaussian"])))


def _capture_generator(g: Any) -> dict[str, Any]:
    if isinstance(g, torch.Generator):
        return {"kind": "torch", "state": _b64(g.get_state())}
    if isinstance(g, np.random.Generator):
        # The bit generator's state holds ints wider than a JSON number; keep it as a string.
        return {"kind": "numpy", "state": json.dumps(g.bit_generator.state)}
    if isinstance(g, random.Random):
        return {"kind": "python", "state": _capture_python(g)}
    raise TypeError(f"cannot capture a generator of type {type(g).__name__}")


def _restore_generator(g: Any, s: Mapping[str, Any]) -> None:
    if s["kind"] == "torch":
        g.set_state(_unb64(s["state"]))
    elif s["kind"] == "numpy":
        g.bit_generator.state = json.loads(s["state"])
    elif s["kind"] == "python":
        _restore_python(g, s["state"])
    else:
        raise ValueError(f"unknown generator kind {s['kind']!r}")


def capture_rng(generators: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The state of every global RNG (Python, NumPy, torch CPU, CUDA when initialized) and of
    the named `generators` (torch.Generator, numpy Generator, random.Random) as JSON-able data."""
    state: dict[str, Any] = {
        "format": RNG_FORMAT,
        "python": _capture_python(random),
        "numpy": _capture_numpy_global(),
        "torch": _b64(torch.get_rng_state()),
    }
    # Reading CUDA's state initializes CUDA; only capture it when the trainer already uses CUDA.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    if generators:
        state["generators"] = {name: _capture_generator(g) for name, g in generators.items()}
    return state


def restore_rng(state: Mapping[str, Any], generators: Mapping[str, Any] | None = None) -> None:
    """Restores what `capture_rng` captured, so the next draws of every RNG repeat."""
    if state.get("format") != RNG_FORMAT:
        raise ValueError(f"not a {RNG_FORMAT} RNG state")
    _restore_python(random, state["python"])
    _restore_numpy_global(state["numpy"])
    torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [_unb64(s) for s in state["cuda"]]
        if len(cuda) != torch.cuda.device_count():
            raise ValueError(
                f"the CUDA RNG state covers {len(cuda)} devices, this process sees {torch.cuda.device_count()}"
            )
        torch.cuda.set_rng_state_all(cuda)
    for name, g in (generators or {}).items():
        saved = state.get("generators", {}).get(name)
        if saved is None:
            raise KeyError(f"no captured state for generator {name!r}")
        _restore_generator(g, saved)


def mix_seed(seed: int, epoch: int) -> int:
    """A generator seed derived from (seed, epoch) without the collisions of `seed + epoch`."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & ((1 << 64) - 1)
    x ^= x >> 31
    return x & _MASK63


@dataclass
class DataPosition:
    """Where a trainer is in its data: epoch, samples consumed in that epoch, shuffle seed."""

    epoch: int = 0
    index: int = 0
    seed: int = 0

    def state_dict(self) -> dict[str, int]:
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.index, self.seed = int(state["epoch"]), int(state["index"]), int(state["seed"])


class ShuffledSampler:
    """A resumable, deterministic sampler over `range(n)`, sharded across data-parallel ranks.

    Each epoch's order is a permutation drawn from a private generator seeded with
    `mix_seed(seed, epoch)`, so it depends on nothing but (seed, epoch). `next_batch` hands this
    rank its slice of the next global batch (`batch_size * world_size` samples, the tail of an
    epoch that does not fill a global batch is dropped) and advances the position.
    """

    def __init__(
        self, n: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True
    ) -> None:
        if batch_size * world_size > n:
            raise ValueError(f"a global batch of {batch_size * world_size} exceeds the {n} samples")
        self.n, self.batch_size, self.rank, self.world_size, self.shuffle = (
            n,
            batch_size,
            rank,
            world_size,
            shuffle,
        )
        self.position = DataPosition(seed=seed)
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if self._order is None or self._order_epoch != epoch:
            if self.shuffle:
                g = torch.Generator()
                g.manual_seed(mix_seed(self.position.seed, epoch))
                self._order = torch.randperm(self.n, generator=g)
            else:
                self._order = torch.arange(self.n)
            self._order_epoch = epoch
        return self._order

    def next_batch(self) -> list[int]:
        """This rank's sample indices for the next step."""
        global_batch = self.batch_size * self.world_size
        if self.position.index + global_batch > self.n:
            self.position.epoch += 1
            self.position.index = 0
        order = self._epoch_order(self.position.epoch)
        start = self.position.index + self.rank * self.batch_size
        self.position.index += global_batch
        return order[start : start + self.batch_size].tolist()

    def state_dict(self) -> dict[str, int]:
        return self.position.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.position.load_state_dict(state)
