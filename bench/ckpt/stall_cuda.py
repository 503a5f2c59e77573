"""The training-visible stall of `Checkpointer.save()` for a state that lives on a CUDA GPU.

    PYTHONPATH=python .venv/bin/python bench/ckpt/stall_cuda.py --sizes 256M,1G,4G

On a GPU the snapshot is the device-to-host copy: `save()` copies every tensor into one pinned
staging buffer (asynchronous copies, one synchronize) and returns; the copy from the staging
buffer into the L1 slot, the hash and the commit run in the background. Per size it measures,
interleaved repetition by repetition so that drift hits both:

- Cube: `save()` (then an untimed `wait()`, so each save finds the staging buffer free);
- (b) raw: the same tensors copied into a pre-allocated pinned host buffer with
  `copy_(non_blocking=True)` and one synchronize: the physical limit of the snapshot;
- (a) `torch.save` of the GPU state + fsync to a disk directory (fewer repetitions);
- the first save apart (it allocates and pins the staging buffer and pre-touches two slots).

Target: steady stall <= 1.2x the raw copy. Needs torch with CUDA and a GPU; exits 0 with a
SKIP row when there is none.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    GIB,
    Row,
    fmt_size,
    median,
    ms,
    parse_size,
    print_table,
    rmtree,
    skip_row,
    write_rows,
)

BENCH = "stall-cuda"


def gpu_state(nbytes: int, device: Any) -> dict[str, Any]:
    """`make_state`'s shape (4 MiB float32 tensors) allocated on the GPU."""
    import torch

    tensors: dict[str, Any] = {}
    left, i = nbytes, 0
    while left > 0:
        n = min(4 << 20, left)
        tensors[f"layer{i:05d}.weight"] = torch.full((n // 4,), float(i) + 0.5, device=device)
        left -= n
        i += 1
    return {"model": tensors, "step": 0}


def run_size(nbytes: int, repeats: int, torch_repeats: int, shm: str, disk: str) -> list[Row]:
    import torch

    import cube

    device = torch.device("cuda", 0)
    cfg = f"{fmt_size(nbytes)} x 1 rank (cuda)"
    state = gpu_state(nbytes, device)
    tensors = list(state["model"].values())
    pinned = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    pinned.fill_(0)  # pre-touched

    def raw_copy() -> float:
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        off = 0
        for t in tensors:
            n = t.numel() * t.element_size()
            pinned[off : off + n].copy_(t.view(torch.uint8), non_blocking=True)
            off += n
        torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    l1 = tempfile.mkdtemp(prefix="cube-bench-stall-cuda-", dir=shm)
    ck = cube.Checkpointer(job="stall-cuda", rank=0, world_size=1, node="bench", l1_dir=l1)
    raws: list[float] = []
    saves: list[float] = []
    firsts: list[float] = []
    try:
        for step in (1, 2):  # the first save of each slot: allocation, pinning, page faults
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            ck.save(step, state)
            firsts.append(time.perf_counter() - t0)
            ck.wait()
        raw_copy()  # warm-up
        for i in range(repeats):
            # A B, then B A: neither always takes the place right after the other's background
            # work (or the warm-up), and the medians of each are compared.
            if i % 2 == 0:
                raws.append(raw_copy())
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            ck.save(3 + i, state)
            saves.append(time.perf_counter() - t0)
            ck.wait()
            if i % 2 == 1:
                raws.append(raw_copy())
        errors = ck.errors()
    finally:
        ck.close()
        rmtree(l1)

    tfile = os.path.join(disk, "cube-bench-stall-cuda.pt")
    tsaves: list[float] = []
    try:
        for _ in range(torch_repeats):
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            with open(tfile, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            tsaves.append(time.perf_counter() - t0)
            os.unlink(tfile)
    finally:
        if os.path.exists(tfile):
            os.unlink(tfile)

    raw, cube_s, tsave = median(raws), median(saves), median(tsaves)
    gibps = nbytes / GIB / raw
    note = f"raw device-to-host {gibps:.1f} GiB/s into pinned memory"
    if errors:
        note += f"; checkpoint errors: {errors}"
    return [
        Row(
            BENCH,
            cfg,
            f"save() stall vs raw copy to pinned memory, steady (median of {repeats})",
            ms(cube_s),
            f"raw {ms(raw)}",
            cube_s / raw,
            "<= 1.20",
            note=note,
            values={"cube_s": cube_s, "raw_s": raw, "repeats": repeats},
        ),
        Row(
            BENCH,
            cfg,
            f"save() stall vs torch.save + fsync (median of {torch_repeats})",
            ms(cube_s),
            f"torch.save {ms(tsave)}",
            cube_s / tsave,
            "-",
            note=f"Cube blocks training {tsave / cube_s:.1f}x less than torch.save + fsync",
            values={"cube_s": cube_s, "torch_s": tsave},
        ),
        Row(
            BENCH,
            cfg,
            "first two saves (allocate + pin the staging buffer, pre-touch the slots)",
            f"{ms(firsts[0])}, {ms(firsts[1])}",
            f"raw {ms(raw)}",
            firsts[0] / raw,
            "-",
            values={"first_s": firsts, "raw_s": raw},
        ),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256M,1G,4G", help="state bytes, e.g. 256M,1G,4G")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--torch-repeats", type=int, default=3)
    p.add_argument("--shm", default="/dev/shm", help="tmpfs for L1")
    p.add_argument("--disk", default=tempfile.gettempdir(), help="a disk directory (not tmpfs)")
    p.add_argument("--json", help="append the rows as JSON lines to this file")
    a = p.parse_args()
    import torch

    rows: list[Row] = []
    if not torch.cuda.is_available():
        rows.append(skip_row(BENCH, "-", "torch sees no CUDA device"))
    else:
        print(f"[{BENCH}] {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
        for size in a.sizes.split(","):
            nbytes = parse_size(size)
            print(f"[{BENCH}] {fmt_size(nbytes)}", flush=True)
            rows += run_size(nbytes, a.repeats, a.torch_repeats, a.shm, a.disk)
            torch.cuda.empty_cache()
    print_table(rows, "save() stall, state on the GPU")
    write_rows(rows, a.json)


if __name__ == "__main__":
    main()
