"""Shared fixtures for the client's tests: temporary level roots and small real states."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import torch

import cube

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the interpreter running the tests (the project's .venv or CUBE_PYTHON)


class LevelsTestCase(unittest.TestCase):
    """Gives each test a fresh L1 root on tmpfs (/dev/shm when present) and an L3 root on disk."""

    def setUp(self) -> None:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.l1 = Path(tempfile.mkdtemp(prefix="cube-test-l1-", dir=shm))
        self.l3 = Path(tempfile.mkdtemp(prefix="cube-test-l3-"))
        self.addCleanup(shutil.rmtree, self.l1, True)
        self.addCleanup(shutil.rmtree, self.l3, True)

    def ckpt(self, **kw: Any) -> cube.Checkpointer:
        opts: dict[str, Any] = {
            "job": "job",
            "rank": 0,
            "world_size": 1,
            "node": "node-a",
            "l1_dir": self.l1,
            "l3_dir": self.l3,
        }
        opts.update(kw)
        c = cube.Checkpointer(**opts)
        self.addCleanup(c.close)
        return c


def small_state(seed: int, step: int = 0) -> dict[str, Any]:
    """A model, an AdamW optimizer after one step, and a few non-tensor leaves."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 8)).pow(2).sum().backward()
    opt.step()
    return {"step": step, "model": model.state_dict(), "optimizer": opt.state_dict(), "note": f"seed {seed}"}


def assert_state_equal(tc: unittest.TestCase, a: Any, b: Any, path: str = "") -> None:
    """Structural equality with bit-exact tensors and exact types."""
    tc.assertIs(type(a), type(b), f"type differs at {path or '/'}: {type(a)} vs {type(b)}")
    if isinstance(a, torch.Tensor):
        tc.assertEqual(a.dtype, b.dtype, path)
        tc.assertEqual(a.shape, b.shape, path)
        tc.assertTrue(
            torch.equal(
                a.reshape(-1).view(torch.uint8) if a.numel() else a,
                b.reshape(-1).view(torch.uint8) if b.numel() else b,
            ),
            f"bytes differ at {path}",
        )
    elif isinstance(a, dict):
        tc.assertEqual(list(a.keys()), list(b.keys()), path)
        for k in a:
            assert_state_equal(tc, a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        tc.assertEqual(len(a), len(b), path)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_state_equal(tc, x, y, f"{path}/{i}")
    elif isinstance(a, float):
        tc.assertEqual(a.hex(), b.hex(), path)
    else:
        tc.assertEqual(a, b, path)


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """A nested state dict flattened to {"/a/b": leaf}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(leaves(v, f"{path}/{k}"))
        return out
    return {path: value}


def assert_saved_states_equal(
    tc: unittest.TestCase, saved: Path, loaded: Path, prefix: str = "", what: str = ""
) -> int:
    """Asserts that two `torch.save`d states hold the same leaves under `prefix`, tensors equal
    byte for byte (dtype and shape too); returns how many tensors were compared."""
    a = {k: v for k, v in leaves(torch.load(saved, weights_only=False)).items() if k.startswith(prefix)}
    b = {k: v for k, v in leaves(torch.load(loaded, weights_only=False)).items() if k.startswith(prefix)}
    tc.assertEqual(sorted(a), sorted(b))
    tensors = 0
    for key, x in a.items():
        y = b[key]
        if isinstance(x, torch.Tensor):
            tensors += 1
            tc.assertEqual((x.dtype, x.shape), (y.dtype, y.shape), key)
            tc.assertTrue(
                torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8)),
                f"{key} differs{what}",
            )
        else:
            tc.assertEqual(x, y, key)
    return tensors


def flip_byte(path: Path, offset_from_end: int = 1) -> None:
    """Flips one bit of a byte near the end of the file (inside the tensor data)."""
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        b = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x01]))


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + str(ROOT / "python" / "tests")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env
