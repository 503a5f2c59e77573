"""The client with state on a CUDA GPU: snapshot semantics, round trips, and bit-exact resume of
the example trainer. Skipped where torch sees no CUDA device."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import torch

from helpers import ROOT, LevelsTestCase, assert_state_equal

CUDA = torch.cuda.is_available()


def cuda_state(seed: int, step: int) -> dict[str, Any]:
    """A model and an AdamW optimizer on the GPU after one step, plus a CPU tensor."""
    torch.manual_seed(seed)
    dev = torch.device("cuda", 0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 8)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(5, 64, device=dev)).pow(2).sum().backward()
    opt.step()
    return {
        "step": step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "cpu_buffer": torch.arange(10, dtype=torch.int64),
        "half": torch.randn(33, device=dev).to(torch.bfloat16),
    }


def to_cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, dict):
        return {k: to_cpu(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_cpu(v) for v in x]
    if isinstance(x, tuple):
        return tuple(to_cpu(v) for v in x)
    return x


@unittest.skipUnless(CUDA, "torch sees no CUDA device")
class CudaStateTest(LevelsTestCase):
    def test_gpu_state_round_trips_bit_exact_to_cpu_and_back_to_the_gpu(self) -> None:
        c = self.ckpt()
        states = [cuda_state(seed, seed) for seed in (1, 2, 3)]
        for s in states:
            c.save(s["step"], s)  # back to back: the staging buffer is reused
        c.wait()
        self.assertEqual(c.errors(), [])
        back = c.load_latest()
        back.pop("__cube__")
        assert_state_equal(self, to_cpu(states[2]), back)
        on_gpu = c.load_latest(map_location="cuda:0")
        on_gpu.pop("__cube__")
        self.assertEqual(on_gpu["model"]["0.weight"].device.type, "cuda")
        assert_state_equal(self, to_cpu(states[2]), to_cpu(on_gpu))

    def test_save_keeps_the_values_at_the_time_of_the_call(self) -> None:
        c = self.ckpt()
        s = cuda_state(7, 1)
        expected = to_cpu(s)
        c.save(1, s)
        # Training goes on at once and changes the weights in place on the GPU.
        for t in s["model"].values():
            t.add_(1.0)
        c.wait()
        back = c.load_latest()
        back.pop("__cube__")
        assert_state_equal(self, expected, back)


def run_trainer(env: dict[str, str], steps: int, kill_after: int | None) -> list[str]:
    """Runs the example trainer on the GPU; with `kill_after`, SIGKILLs it once it printed that step.
    Returns the `step N loss HEX` lines it printed."""
    cmd = [sys.executable, str(ROOT / "examples/gpt/train.py"), "--device", "cuda", "--steps", str(steps),
           "--ckpt-every", "4", "--layers", "2", "--hidden", "64", "--heads", "4", "--seq-len", "64",
           "--batch", "4"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        if line.startswith("step ") and " loss " in line:
            lines.append(line.strip())
            if kill_after is not None and int(line.split()[1]) >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=300)
    err = proc.stderr.read() if proc.stderr else ""
    if kill_after is None and proc.returncode != 0:
        raise AssertionError(f"trainer exited {proc.returncode}: {err[-3000:]}")
    return lines


@unittest.skipUnless(CUDA, "torch sees no CUDA device")
class CudaResumeTest(unittest.TestCase):
    def test_killed_gpu_training_resumes_with_the_same_losses_bit_for_bit(self) -> None:
        steps = 22
        work = Path(tempfile.mkdtemp(prefix="cube-cuda-resume-"))
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", str(work)]))

        def env_for(name: str) -> dict[str, str]:
            e = dict(os.environ)
            e.update(
                PYTHONPATH=str(ROOT / "python"),
                OMP_NUM_THREADS="1",
                CUBE_JOB_ID=name,
                CUBE_CKPT_L1=str(work / "l1"),
                CUBE_CKPT_L3=str(work / "l3"),
            )
            return e

        clean = run_trainer(env_for("clean"), steps, None)
        self.assertEqual(len(clean), steps)
        rng = random.Random(int(os.environ.get("CUBE_TEST_SEED", "5")))
        printed: list[str] = []
        for kill_at in sorted(rng.sample(range(5, steps - 2), 2)):
            printed += run_trainer(env_for("killed"), steps, kill_at)
        printed += run_trainer(env_for("killed"), steps, None)
        # Every step printed by any attempt (replayed ones included) has the uninterrupted loss.
        for line in printed:
            self.assertEqual(line, clean[int(line.split()[1]) - 1])
        self.assertEqual({int(line.split()[1]) for line in printed}, set(range(1, steps + 1)))


if __name__ == "__main__":
    unittest.main()
