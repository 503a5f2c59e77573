#!/usr/bin/env python3
"""The GPT example sharded with FSDP2 and checkpointed through torch.distributed.checkpoint (DCP),
with Cube as DCP's storage: `storage_writer=cube.dcp.Writer()` where a DCP trainer had
`FileSystemWriter(path)`, and `storage_reader=cube.dcp.Reader()` for the restore.

Runs as one process per rank over gloo on CPU (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
LOCAL_RANK set by the launcher; one process works too). It resumes by itself from the newest
checkpoint every rank can verify and is deterministic: the loss of every step is the same bits
whether or not the run was killed and resumed. The model, data and schedule are those of
examples/gpt/train.py (same flags). Prints `step N loss <float.hex()>` per step (rank 0; the
mean over ranks), and the same lines to --loss-log when given.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.checkpoint.stateful import Stateful
from torch.distributed.fsdp import fully_shard

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "python"))
import cube  # noqa: E402
import cube.dcp  # noqa: E402
from cube.determinism import ShuffledSampler, capture_rng, restore_rng, seed_everything  # noqa: E402

# The DDP example's model, data and flags, unchanged.
_spec = importlib.util.spec_from_file_location("gpt_example", HERE.parent / "gpt" / "train.py")
assert _spec is not None and _spec.loader is not None
gpt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpt)


class TrainState(Stateful):
    """Everything a bit-exact resume needs, in DCP's shape: the sharded model and optimizer
    (get_state_dict: DTensors, each rank saves its shards) plus this rank's data position and
    RNG streams under a per-rank key (DCP keeps one copy of equal keys)."""

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        sched: Any,
        sampler: ShuffledSampler,
        rank: int,
    ) -> None:
        self.model, self.opt, self.sched, self.sampler, self.rank = model, opt, sched, sampler, rank
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        msd, osd = get_state_dict(self.model, self.opt)
        mine = json.dumps({"data": self.sampler.state_dict(), "rng": capture_rng()})
        return {
            "model": msd,
            "optim": osd,
            "sched": self.sched.state_dict(),
            "step": self.step,
            f"rank{self.rank}": mine,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_state_dict(self.model, self.opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.step = int(state["step"])
        mine = json.loads(state[f"rank{self.rank}"])
        self.sampler.load_state_dict(mine["data"])
        restore_rng(mine["rng"])


def main(argv: list[str] | None = None) -> int:
    args = gpt.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    seed_everything(args.seed)  # also turns on deterministic algorithms
    # FSDP2 needs a process group even for one rank.
    dist.init_process_group(
        "gloo",
        **(
            {}
            if "MASTER_ADDR" in os.environ
            else {"init_method": "tcp://127.0.0.1:0", "rank": 0, "world_size": 1}
        ),
    )

    model = gpt.GPT(args.layers, args.hidden, args.heads, args.seq_len, args.dropout)
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)  # embeddings, final norm and the tied head
    torch.manual_seed(args.seed + 1 + rank)  # a per-rank stream for dropout
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    total = args.steps

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        return 0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * min(1.0, (step - args.warmup) / max(1, total - args.warmup)))
        )

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    text = torch.frombuffer(bytearray(args.data.read_bytes()), dtype=torch.uint8).long()
    n_samples = (text.numel() - 1) // args.seq_len
    sampler = ShuffledSampler(n_samples, args.batch, seed=args.seed, rank=rank, world_size=world)
    offsets = torch.arange(args.seq_len)
    app = TrainState(model, opt, sched, sampler, rank)

    reader = cube.dcp.Reader()
    if reader.find() is not None:  # the newest step every rank verifies, or None on a fresh start
        dcp.load({"app": app}, storage_reader=reader)
        info = reader.restored or {}
        print(
            f"rank {rank} resumed step {app.step} level {info.get('level')}"
            f" source {info.get('source')}",
            flush=True,
        )
    start = app.step
    if rank == 0 and start == 0:
        print(f"params {sum(p.numel() for p in model.parameters())}", flush=True)

    log_fd = (
        os.open(args.loss_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if args.loss_log and rank == 0
        else None
    )
    writer = cube.dcp.Writer()
    t0 = time.perf_counter()
    for step in range(start + 1, args.steps + 1):
        idx = torch.tensor(sampler.next_batch()) * args.seq_len
        pos = idx[:, None] + offsets[None, :]
        x, y = text[pos], text[pos + 1]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, gpt.VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        mean = loss.detach().clone()
        if world > 1:
            dist.all_reduce(mean)
            mean /= world
        if rank == 0:
            line = f"step {step} loss {mean.item().hex()}\n"
            sys.stdout.write(line)
            sys.stdout.flush()
            if log_fd is not None:
                os.write(log_fd, line.encode())  # one write per line: a kill never leaves half a line
        cube.report_progress(step, loss=mean.item())
        if step % args.ckpt_every == 0:
            app.step = step
            # The one-line change: this was storage_writer=FileSystemWriter(f"{dir}/step-{step}").
            dcp.save({"app": app}, checkpoint_id=step, storage_writer=writer)
    elapsed = time.perf_counter() - t0
    writer.close()
    if rank == 0 and args.steps > start:
        print(f"step_time_s {elapsed / (args.steps - start):.6f}", flush=True)
    for err in writer.engine.errors():
        print(f"rank {rank} checkpoint problem: {err}", file=sys.stderr)
    if log_fd is not None:
        os.close(log_fd)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
