"""Quick measurement: the training-thread stall of `Checkpointer.save()` for a state of N MiB,
against a raw NumPy copy into a pre-touched buffer and against `torch.save` + fsync.

    PYTHONPATH=python OMP_NUM_THREADS=1 .venv/bin/python python/tests/bench_snapshot.py --mib 256

Not a unittest (the name does not start with test_); the proper benchmark lives in bench/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch

import cube


def state_of(mib: int) -> dict:
    # A model-like state: many tensors of mixed sizes, float32.
    torch.manual_seed(0)
    per = 4 << 20  # 4 MiB tensors
    n = mib * (1 << 20) // per
    return {"model": {f"layer{i}.weight": torch.randn(per // 4) for i in range(n)}, "step": 0}


def median_of(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--l1", default="/dev/shm")
    p.add_argument("--disk", default=tempfile.gettempdir())
    args = p.parse_args()
    state = state_of(args.mib)
    tensors = list(state["model"].values())
    total = sum(t.numel() * 4 for t in tensors)

    # Baseline 1: raw numpy copy of every tensor into one pre-touched buffer.
    buf = np.empty(total, dtype=np.uint8)
    buf[:] = 1

    def raw_copy(_: int) -> None:
        off = 0
        for t in tensors:
            a = t.numpy().view(np.uint8)
            buf[off : off + a.size] = a
            off += a.size

    raw_copy(0)
    raw = median_of(raw_copy, args.repeats)

    # Baseline 2: torch.save to disk + fsync.
    disk = tempfile.mkdtemp(dir=args.disk)

    def torch_save(i: int) -> None:
        path = os.path.join(disk, f"s{i}.pt")
        with open(path, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())

    ts = median_of(torch_save, args.repeats)
    shutil.rmtree(disk)

    # Cube: the save() stall (the background hash/record/commit is excluded but awaited between
    # saves so every save pays only its own snapshot).
    l1 = tempfile.mkdtemp(dir=args.l1)
    ckpt = cube.Checkpointer(job="bench", rank=0, world_size=1, l1_dir=l1, l3_dir=None)
    ckpt.save(0, state)  # allocates and pre-touches slot 0
    ckpt.save(1, state)  # and slot 1
    ckpt.wait()
    stalls = []
    for i in range(args.repeats):
        ckpt.save(2 + i, state)
        stalls.append(ckpt.last_snapshot_s)
        ckpt.wait()
    ckpt.close()
    shutil.rmtree(l1)
    cube_stall = statistics.median(stalls)
    gib = total / 2**30
    print(f"state {total / 2**20:.0f} MiB in {len(tensors)} tensors, median of {args.repeats}")
    print(f"raw numpy copy into pre-touched buffer: {raw * 1e3:8.1f} ms  ({gib / raw:5.1f} GiB/s)")
    print(
        f"cube save() stall:                      {cube_stall * 1e3:8.1f} ms  ({gib / cube_stall:5.1f} GiB/s)  {cube_stall / raw:.2f}x raw"
    )
    print(
        f"torch.save + fsync ({args.disk}):          {ts * 1e3:8.1f} ms  ({gib / ts:5.1f} GiB/s)  {ts / cube_stall:.1f}x cube"
    )


if __name__ == "__main__":
    main()
