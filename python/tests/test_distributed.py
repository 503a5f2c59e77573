"""Two real ranks (gloo): every rank restores the same step, the newest all of them can verify."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import textwrap
import unittest
from pathlib import Path

from helpers import PYTHON, subprocess_env

RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    import cube
    from helpers import flip_byte
    l1, l3 = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    opts = dict(job="job", node="node-a", l1_dir=l1, l3_dir=l3)
    c = cube.Checkpointer(**opts)
    for step in (1, 2, 3):
        c.save(step, {"rank": torch.tensor([rank]), "step": step})
    c.close()

    def corrupt_rank1(level):
        dist.barrier()
        if rank == 1:
            if level == "L1":
                rec = json.load(open(f"{l1}/job/step-0000000003/rank-00001.json"))
                flip_byte(f"{l1}/job/" + rec["file"])
            else:
                flip_byte(f"{l3}/job/step-0000000003/rank-00001.safetensors")
        dist.barrier()

    out = {}
    corrupt_rank1("L1")  # rank 1 falls back to L3 for step 3; rank 0 reads L1
    s = cube.Checkpointer(**opts).load_latest()
    out["a"] = [s["__cube__"]["step"], s["__cube__"]["level"], int(s["rank"].item())]
    corrupt_rank1("L3")  # rank 1 has no good copy of step 3: everyone takes step 2
    s = cube.Checkpointer(**opts).load_latest()
    out["b"] = [s["__cube__"]["step"], s["__cube__"]["level"], int(s["rank"].item())]
    print("RESULT " + json.dumps(out), flush=True)
    dist.destroy_process_group()
    """
)


TIMELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    import cube
    root = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    # One node per rank, no L3: rank 1's node never got step 3.
    opts = dict(job="job", node=f"node-{rank}", l1_dir=f"{root}/node-{rank}", l3_dir=None,
                local_ranks=[rank], attempt=0)
    c = cube.Checkpointer(**opts)
    for step in (1, 2, 3) if rank == 0 else (1, 2):
        c.save(step, {"x": torch.tensor([float(step)])})
    c.close()
    dist.barrier()
    c = cube.Checkpointer(**opts)
    s = c.load_latest()
    c.save(3, {"x": torch.tensor([30.0])})
    c.close()
    rec = json.load(open(f"{root}/node-{rank}/job/step-0000000003/rank-0000{rank}.json"))
    print("RESULT " + json.dumps([s["__cube__"]["step"], s["__cube__"]["timeline"], c.timeline, rec["timeline"]]), flush=True)
    dist.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgreementTest(unittest.TestCase):
    def test_all_ranks_restore_the_same_step(self) -> None:
        l1 = Path(tempfile.mkdtemp(prefix="cube-test-l1-", dir="/dev/shm"))
        l3 = Path(tempfile.mkdtemp(prefix="cube-test-l3-"))
        self.addCleanup(shutil.rmtree, l1, True)
        self.addCleanup(shutil.rmtree, l3, True)
        port = str(free_port())
        procs = []
        for rank in (0, 1):
            env = subprocess_env(
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                RANK=str(rank),
                WORLD_SIZE="2",
                LOCAL_RANK=str(rank),
            )
            procs.append(
                subprocess.Popen(
                    [PYTHON, "-c", RANK_SCRIPT, str(l1), str(l3)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
            self.assertEqual(p.returncode, 0, err)
            line = next(l for l in out.splitlines() if l.startswith("RESULT "))
            results.append(json.loads(line[len("RESULT ") :]))
        self.assertEqual(results[0]["a"], [3, "L1", 0])
        self.assertEqual(results[1]["a"], [3, "L3", 1])
        self.assertEqual(results[0]["b"], [2, "L1", 0])
        self.assertEqual(results[1]["b"], [2, "L1", 1])


    def test_every_rank_takes_the_new_timeline_when_only_one_saw_a_newer_step(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="cube-test-tl-", dir="/dev/shm"))
        self.addCleanup(shutil.rmtree, root, True)
        port = str(free_port())
        procs = []
        for rank in (0, 1):
            env = subprocess_env(
                MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0"
            )
            procs.append(
                subprocess.Popen(
                    [PYTHON, "-c", TIMELINE_SCRIPT, str(root)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                raise
            self.assertEqual(p.returncode, 0, err)
            line = next(l for l in out.splitlines() if l.startswith("RESULT "))
            results.append(json.loads(line[len("RESULT ") :]))
        # Both restore step 2 (timeline 0); rank 0's step 3 is abandoned, so both save timeline 1.
        self.assertEqual(results, [[2, 0, 1, 1], [2, 0, 1, 1]])


if __name__ == "__main__":
    unittest.main()
