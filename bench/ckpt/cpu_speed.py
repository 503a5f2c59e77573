"""How fast each CPU of this machine runs the same work right now.

On a virtual machine a vCPU runs only when the host gives it a physical core, and a guest sees
no steal time when the host does not report it: the only sign is that the same work takes
longer. This probe pins itself to each CPU in turn and times the slowdown bench's training step
unit (a 512x512 float32 matmul on one thread, 45-85 ms here), a few rounds per CPU, interleaved
(about 2.5 s in all on 2 CPUs). `bench:ckpt`
runs it before and after every bench, so a table shows how far the machine's CPUs drifted while
it was measured: on this 2-vCPU VM one vCPU was at times 1.9x slower than the other, and which
one changed from one minute to the next.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ckpt/cpu_speed.py [--rounds 5] [--matmuls 4]

Prints one JSON line: {"ms_per_matmul": {"0": ..., "1": ...}, "spread": slowest / fastest}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def probe(rounds: int = 5, matmuls: int = 4) -> dict[int, float]:
    """The median time of one 512x512 matmul on each CPU this process may use, in ms."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    mine = sorted(os.sched_getaffinity(0))
    times: dict[int, list[float]] = {cpu: [] for cpu in mine}
    try:
        for _ in range(rounds):
            for cpu in mine:
                os.sched_setaffinity(0, {cpu})
                torch.mm(a, b)  # warm the core's caches after the move
                t0 = time.perf_counter()
                for _ in range(matmuls):
                    torch.mm(a, b)
                times[cpu].append((time.perf_counter() - t0) * 1e3 / matmuls)
    finally:
        os.sched_setaffinity(0, mine)
    return {cpu: statistics.median(ts) for cpu, ts in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--matmuls", type=int, default=4)
    a = p.parse_args()
    speed = probe(a.rounds, a.matmuls)
    spread = max(speed.values()) / min(speed.values())
    print(json.dumps({"ms_per_matmul": {str(c): round(ms, 3) for c, ms in speed.items()}, "spread": round(spread, 3)}))


if __name__ == "__main__":
    main()
