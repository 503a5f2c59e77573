#!/usr/bin/env python3
"""A small byte-level GPT trained on the King James Version, checkpointed with `cube.Checkpointer`.

Runs as one process, or as one process per rank with DistributedDataParallel over gloo when
WORLD_SIZE > 1 (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK set by the launcher).
It resumes by itself from the newest checkpoint every rank can restore, and is deterministic:
the loss of every step is the same bits whether or not the run was killed and resumed.

Prints `step N loss <float.hex()>` per step (rank 0; the mean over ranks), and the same lines to
--loss-log when given.
"""

from __future__ import annotations

import time

# Wall-clock marks of this process's start-up (CUBE_TIMING=1 prints them after the first step):
# where the seconds between a launch and training again go (bench/recovery).
_MARKS: dict[str, float] = {"main": time.time()}

import argparse  # noqa: E402
import collections  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import cube  # noqa: E402
from cube.determinism import ShuffledSampler, capture_rng, restore_rng, seed_everything  # noqa: E402

_MARKS["imports"] = time.time()

DATA = Path(__file__).resolve().parent / "data" / "kjv-genesis-exodus.txt"
VOCAB = 256  # bytes


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention and a GELU MLP."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden)
        self.fc = nn.Linear(hidden, 4 * hidden)
        self.out = nn.Linear(4 * hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=2)
        q, k, v = (z.view(b, t, self.heads, h // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(h // self.heads)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(future, float("-inf")).softmax(dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, h)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class GPT(nn.Module):
    """Token and position embeddings, `layers` blocks, a final norm, a head tied to the embedding."""

    def __init__(self, layers: int, hidden: int, heads: int, seq_len: int, dropout: float) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, hidden)
        self.pos = nn.Embedding(seq_len, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, VOCAB, bias=False)
        self.head.weight = self.tok.weight
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def _process_start_s() -> float | None:
    """When the kernel started this process (exec of the interpreter), in epoch seconds."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        # The start time counts clock ticks since boot (CLOCK_BOOTTIME); /proc/stat's btime is
        # whole seconds and drifts, so measure the age on the same clock instead.
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _print_marks(rank: int) -> None:
    """One line `cube-timing rank R exec=... main=... imports=... ...` of epoch seconds."""
    start = _process_start_s()
    marks = ({"exec": start} if start is not None else {}) | _MARKS
    print(f"cube-timing rank {rank} " + " ".join(f"{k}={v:.3f}" for k, v in marks.items()), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--ckpt-every", type=int, default=int(os.environ.get("CUBE_CKPT_EVERY", "20")))
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=8, help="sequences per rank per step")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--loss-log", type=Path, default=None)
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=os.environ.get("CUBE_DEVICE", "cpu"),
        help="cuda: cuda:LOCAL_RANK, NCCL between ranks",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    # Before CUDA initializes: cuBLAS reads its workspace setting only then.
    seed_everything(args.seed)  # also turns on deterministic algorithms
    device = torch.device("cpu")
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _MARKS["rendezvous"] = time.time()

    model = GPT(args.layers, args.hidden, args.heads, args.seq_len, args.dropout).to(device)
    # Same initial weights on every rank; then a per-rank stream for dropout.
    torch.manual_seed(args.seed + 1 + rank)
    # find_unused_parameters=True keeps DDP from rebuilding its gradient buckets after the first
    # iteration of each process: a rebuild changes where bucket chunks start, hence the order in
    # which gloo's ring sums each element over more than two ranks, so the first step after a
    # restart would round differently from the uninterrupted run's.
    net: nn.Module = (
        nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    )
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    total = args.steps

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        return 0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * min(1.0, (step - args.warmup) / max(1, total - args.warmup)))
        )

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    text = torch.frombuffer(bytearray(args.data.read_bytes()), dtype=torch.uint8).long().to(device)
    n_samples = (text.numel() - 1) // args.seq_len
    sampler = ShuffledSampler(n_samples, args.batch, seed=args.seed, rank=rank, world_size=world)
    offsets = torch.arange(args.seq_len, device=device)

    ckpt = cube.Checkpointer()
    start = 0
    state = ckpt.load_latest()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["data"])
        restore_rng(state["rng"])
        start = state["step"]
        info = state["__cube__"]
        print(
            f"rank {rank} resumed step {start} level {info['level']} source {info['source']}"
            f" timeline {info['timeline']}",
            flush=True,
        )
    _MARKS["restored"] = time.time()
    timing = os.environ.get("CUBE_TIMING") == "1"
    if rank == 0 and start == 0:
        print(f"params {sum(p.numel() for p in model.parameters())}", flush=True)

    def compute_marks() -> list[Any]:
        return [_CudaMark() if device.type == "cuda" else _Mark() for _ in range(4)]

    log_fd = (
        os.open(args.loss_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if args.loss_log and rank == 0
        else None
    )
    compute_s: collections.deque[float] = collections.deque(maxlen=8)
    t0 = time.perf_counter()
    for step in range(start + 1, args.steps + 1):
        idx = torch.tensor(sampler.next_batch(), device=device) * args.seq_len
        pos = idx[:, None] + offsets[None, :]
        x, y = text[pos], text[pos + 1]
        # This rank's own compute time for the straggler detector (`stepTimeS`): forward + loss
        # and clip + optimizer step, which are local. Backward is left out: DDP all-reduces the
        # gradient buckets while it runs and waits for every bucket at its end, so its wall time
        # includes waiting for the slowest rank (as does the loss all-reduce below), and with
        # DDP every rank's wall step time is the same. On CUDA, events time the GPU's work. The
        # mean over the last 8 steps is reported: a pause (a preemption, a SIGSTOP) lands in the
        # timed part of some steps only, and the agent relays one report in 250 ms, so a
        # single step's time would be sampled by chance.
        marks = compute_marks()
        marks[0].record()
        logits = net(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        marks[1].record()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks[2].record()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        marks[3].record()
        mean = loss.detach().clone()
        if world > 1:
            dist.all_reduce(mean)
            mean /= world
        compute_s.append(marks[0].seconds_to(marks[1]) + marks[2].seconds_to(marks[3]))
        if rank == 0:
            line = f"step {step} loss {mean.item().hex()}\n"
            sys.stdout.write(line)
            sys.stdout.flush()
            if log_fd is not None:
                os.write(log_fd, line.encode())  # one write per line: a kill never leaves half a line
        # This rank's own tokens: the control plane sums the ranks' figures for the job's.
        tokens_per_s = (step - start) * args.batch * args.seq_len / (time.perf_counter() - t0)
        cube.report_progress(
            step,
            loss=mean.item(),
            tokens_per_s=tokens_per_s,
            step_time_s=sum(compute_s) / len(compute_s),
        )
        if timing and step == start + 1:
            _MARKS["first_step"] = time.time()
            _print_marks(rank)
        if step % args.ckpt_every == 0:
            ckpt.save(step, snapshot(step, model, opt, sched, sampler))
    elapsed = time.perf_counter() - t0
    ckpt.close()
    if rank == 0 and args.steps > start:
        print(f"step_time_s {elapsed / (args.steps - start):.6f}", flush=True)
    for err in ckpt.errors():
        print(f"rank {rank} checkpoint problem: {err}", file=sys.stderr)
    if log_fd is not None:
        os.close(log_fd)
    if world > 1:
        dist.destroy_process_group()
    return 0


class _Mark:
    """A point in this process's time (CPU: the work is done when the call returns)."""

    def record(self) -> None:
        self.at = time.perf_counter()

    def seconds_to(self, later: _Mark) -> float:
        return later.at - self.at


class _CudaMark:
    """A point in the GPU's stream (its work runs after the call returns): a CUDA event."""

    def __init__(self) -> None:
        self.event = torch.cuda.Event(enable_timing=True)

    def record(self) -> None:
        self.event.record()

    def seconds_to(self, later: _CudaMark) -> float:
        later.event.synchronize()  # the step's own work is queued before it: no extra wait
        return self.event.elapsed_time(later.event) / 1000


def snapshot(
    step: int, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, sampler: ShuffledSampler
) -> dict[str, Any]:
    """The whole training state after `step`."""
    return {
        "step": step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "data": sampler.state_dict(),
        "rng": capture_rng(),
    }


if __name__ == "__main__":
    sys.exit(main())
