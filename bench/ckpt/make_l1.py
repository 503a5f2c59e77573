"""Writes one committed L1 step with the real client, for the throughput bench (throughput.ts).

Every rank of the step is saved by this one process (one `Checkpointer` per rank, all sharing
one state, so the memory needed is one state plus the slots). Prints one JSON line:
`{"job", "step", "l1", "ranks", "bytes": [per rank], "files": [slot paths]}`.

    PYTHONPATH=python .venv/bin/python bench/ckpt/make_l1.py --l1 /dev/shm/x --size 1G --ranks 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_state, parse_size  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--l1", required=True, help="L1 level root (tmpfs)")
    p.add_argument("--job", default="tput")
    p.add_argument("--step", type=int, default=1)
    p.add_argument("--size", default="256M", help="state bytes per rank")
    p.add_argument("--ranks", type=int, default=1)
    a = p.parse_args()
    for var in ("CUBE_CKPT_L3", "CUBE_CKPT_SOCKET"):
        os.environ.pop(var, None)
    import cube

    state = make_state(parse_size(a.size))
    files, sizes = [], []
    for rank in range(a.ranks):
        ck = cube.Checkpointer(
            job=a.job,
            rank=rank,
            world_size=a.ranks,
            local_ranks=list(range(a.ranks)),
            node="node-a",
            l1_dir=a.l1,
        )
        ck.save(a.step, state)
        ck.close()
        rec = cube.read_record(Path(a.l1) / a.job / f"step-{a.step:010d}" / f"rank-{rank:05d}.json")
        files.append(str(Path(a.l1) / a.job / rec["file"]))
        sizes.append(rec["bytes"])
    manifest = Path(a.l1) / a.job / f"step-{a.step:010d}" / "manifest.json"
    if not manifest.exists():
        raise SystemExit(f"the L1 step was not committed: {manifest} is missing")
    print(json.dumps({"job": a.job, "step": a.step, "l1": a.l1, "ranks": a.ranks, "bytes": sizes, "files": files}))


if __name__ == "__main__":
    main()
