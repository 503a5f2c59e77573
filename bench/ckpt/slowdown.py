"""Bench 2: how much a training step slows down while checkpoints replicate (L2) and persist (L3)
in the background.

One configuration = a state size per rank and 1 or 2 rank processes. Each rank runs a CPU
"training step" (a fixed number of 512x512 float32 matmuls, calibrated to ~200 ms, one thread)
in a loop. The run, in one go:

1. baseline: steps with no checkpointing (no node daemon running);
2. for each variant: a node daemon (node-a) that replicates every L1 step to a peer daemon
   (node-b, replicas on disk) and persists every step to L3 (disk); the ranks save through it
   every K steps. K is chosen from a warm-up save so that the background work (client hashing,
   L2 replication, L3 persistence) takes ~80% of the interval: the measured steps mostly run
   while it is going on. Variants: `plain` (no cap, everything at the training processes'
   priority), `cap` (`--bandwidth-mbps` on replication; L3 persistence has no cap), `default`
   (what Cube ships: the client's background thread at nice 10, `CUBE_CKPT_NICE`, and the
   daemons at nice 10, as the node agent starts its daemon, `--ckpt-nice`), `nice` (the same at
   nice 19: how much of the slowdown is CPU share), `pinned` (the defaults, and each rank on a
   CPU of its own while the client threads and both daemons share the CPUs left over, as
   `cube agent --ckpt-cpus` sets them apart; skipped when no CPU is left over);
3. the baseline again (the machine drifts: both baseline segments are reported).

A step is "busy" when it overlaps background work: the client's background thread (hash,
record; timed by wrapping its `_finish`) or the daemon having work in flight (polled every
100 ms over its socket); the other steps of the same run are "idle". Target: busy steps no
more than 5% slower than the idle steps of the same run (interleaved in time with them, so the
machine's drift cancels); the no-checkpoint segments are reported next to it.

On a 2-core machine the daemons (L2 sender, L2 receiver, L3 writer, each hashing) run on the
same cores as the training processes: with 1 rank there is one spare core, with 2 ranks none.

    PYTHONPATH=python OMP_NUM_THREADS=1 .venv/bin/python bench/ckpt/slowdown.py --size 1G --ranks 1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    GIB,
    BusyPoller,
    Daemon,
    RankContext,
    Ranks,
    Row,
    config_name,
    exit_on_sigterm,
    fits,
    fmt_size,
    median,
    ms,
    overlaps,
    parse_size,
    print_table,
    rmtree,
    skip_row,
    write_rows,
)

BENCH = "slowdown"
MATMUL_N = 512


def calibrate(step_ms: float) -> int:
    """How many 512x512 matmuls make one step of ~step_ms on one thread here."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return max(1, round(step_ms / 1e3 / statistics.median(times)))


def worker(ctx: RankContext, nbytes: int, matmuls: int) -> str:
    """A rank: builds its state, then runs the commands the parent sends."""
    for var in ("CUBE_CKPT_L3", "CUBE_CKPT_SOCKET"):
        os.environ.pop(var, None)
    import torch

    import cube
    from common import make_state

    torch.set_num_threads(1)
    torch.manual_seed(ctx.rank)
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    state = make_state(nbytes, ctx.rank)

    def step() -> tuple[float, float]:
        t0 = time.monotonic()
        for _ in range(matmuls):
            torch.mm(a, b)
        return t0, time.monotonic()

    for _ in range(3):
        step()
    ckpt: Any = None
    background: list[tuple[float, float]] = []
    ctx.outbox.put(("done", ctx.rank, "ready"))
    while True:
        cmd, *args = ctx.inbox.get()
        if cmd == "exit":
            return "bye"
        if cmd == "base":
            (n,) = args
            ctx.sync()
            ctx.outbox.put(("done", ctx.rank, [step() for _ in range(n)]))
        elif cmd == "open":
            socket, l1, job, client_nice, pin = args
            if pin is not None:  # this rank's training thread on its own core
                os.sched_setaffinity(0, {pin["rank_cpus"][ctx.rank]})
            ckpt = cube.Checkpointer(
                background_nice=client_nice,
                background_cpus=None if pin is None else pin["ckpt_cpus"],
                job=job,
                rank=ctx.rank,
                world_size=ctx.ranks,
                local_ranks=list(range(ctx.ranks)),
                node="node-a",
                l1_dir=l1,
                socket=socket,
            )
            background = []
            finish = ckpt._finish

            def timed_finish(job: Any, _finish: Any = finish) -> None:
                t0 = time.monotonic()
                try:
                    _finish(job)
                finally:
                    background.append((t0, time.monotonic()))

            ckpt._finish = timed_finish  # instrumentation only: when the client's thread works
            ctx.sync()
            t0 = time.monotonic()
            ckpt.save(0, state)
            t1 = time.monotonic()
            ckpt.wait()  # the client's background part: hash, record, `saved` to the daemon
            ctx.outbox.put(("done", ctx.rank, {"stall": t1 - t0, "client_s": time.monotonic() - t1}))
        elif cmd == "run":
            n, every = args
            steps, saves = [], []
            ctx.sync()
            for i in range(1, n + 1):
                steps.append(step())
                if i % every == 0 and i < n:
                    t0 = time.monotonic()
                    ckpt.save(i, state)
                    saves.append((t0, time.monotonic()))
            ckpt.wait()
            ctx.outbox.put(("done", ctx.rank, {"steps": steps, "saves": saves, "background": list(background)}))
        elif cmd == "close":
            ckpt.close()
            ckpt = None
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
            ctx.outbox.put(("done", ctx.rank, "closed"))


def _durations(steps: list[tuple[float, float]]) -> list[float]:
    return [t1 - t0 for t0, t1 in steps]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def run(
    nbytes: int,
    ranks: int,
    shm: str,
    disk: str,
    variants: list[tuple[str, float | None, int | None, int, bool]],
    saves: int = 2,
    step_ms: float = 200,
    base_steps: int = 20,
) -> list[Row]:
    """Runs one configuration with the given variants (label, replication cap in MB/s, the
    daemons' nice level, the client thread's nice level, whether training and checkpoint work
    get cores of their own); returns its rows."""
    cfg = config_name(nbytes, ranks)
    why = fits(ram_bytes=ranks * nbytes, shm_bytes=2 * ranks * nbytes, shm=shm)
    if why:
        return [skip_row(BENCH, cfg, why)]
    matmuls = calibrate(step_ms)
    work_shm = tempfile.mkdtemp(prefix="cube-bench-slowdown-", dir=shm)
    work_disk = tempfile.mkdtemp(prefix="cube-bench-slowdown-", dir=disk)
    rows: list[Row] = []
    peer = node = pool = None
    try:
        l3 = os.path.join(work_disk, "L3")
        os.makedirs(l3)
        pool = Ranks(ranks, worker, nbytes, matmuls)
        pool.gather()

        def base() -> list[float]:
            pool.send("base", base_steps)
            return [d for r in pool.gather() for d in _durations(r)]

        base1 = base()
        results = []
        for vi, (label, cap, nice, client_nice, pinned) in enumerate(variants):
            job = f"slowdown{vi}"
            pin = None
            if pinned:
                cpus = sorted(os.sched_getaffinity(0))
                if len(cpus) <= ranks:
                    rows.append(
                        skip_row(
                            BENCH,
                            cfg,
                            f"{label}: {len(cpus)} CPUs leave none for checkpoint work beside {ranks} rank(s)",
                        )
                    )
                    continue
                pin = {"rank_cpus": cpus[:ranks], "ckpt_cpus": cpus[ranks:]}
            l1 = os.path.join(work_shm, "a-l1")
            peer = Daemon(
                "node-b",
                os.path.join(work_shm, "b-l1"),
                os.path.join(work_disk, "b-L2"),
                os.path.join(work_disk, "b.sock"),
                work_disk,
                nice=nice,
                cpus=None if pin is None else pin["ckpt_cpus"],
                jobs=[job],
            )
            node = Daemon(
                "node-a",
                l1,
                os.path.join(work_disk, "a-L2"),
                os.path.join(work_disk, "a.sock"),
                work_disk,
                l3=l3,
                replica_peer=peer,
                bandwidth_mbps=cap,
                nice=nice,
                cpus=None if pin is None else pin["ckpt_cpus"],
                jobs=[job],
            )
            # Warm-up save (allocates slot 0): how long its background work takes sets K.
            pool.send("open", node.socket, l1, job, client_nice, pin)
            warm = pool.gather()
            t_client = time.monotonic()
            node.wait_idle()
            background_s = max(w["client_s"] for w in warm) + (time.monotonic() - t_client)
            every = max(5, math.ceil(1.25 * background_s / _mean(base1)))
            poller = BusyPoller(node)
            pool.send("run", (saves + 1) * every, every)
            res = pool.gather()
            busy_daemon = poller.stop()
            node.wait_idle()
            errors = node.errors()
            pool.send("close")
            pool.gather()
            for d in (node, peer):
                d.stop()
            node = peer = None
            for d in (os.path.join(l1, job), os.path.join(work_disk, "b-L2", job), os.path.join(l3, job)):
                rmtree(d)
            results.append((label, cap, every, background_s, res, busy_daemon, errors))
        base2 = base()
        pool.send("exit")
        pool.join()
        pool = None
    finally:
        if pool is not None:
            pool.kill()
        for d in (node, peer):
            if d is not None:
                d.stop()
        rmtree(work_shm)
        rmtree(work_disk)

    baseline = base1 + base2
    bmean, b1, b2 = _mean(baseline), _mean(base1), _mean(base2)
    base_txt = f"{ms(bmean)} (segments {ms(b1)} / {ms(b2)})"
    for label, cap, every, background_s, res, busy_daemon, errors in results:
        busy_steps, idle_steps, all_steps, stalls = [], [], [], []
        wall, span_steps = 0.0, 0
        busy_time = 0.0
        for r in res:
            intervals = busy_daemon + r["background"]
            for t0, t1 in r["steps"]:
                (busy_steps if overlaps(t0, t1, intervals) else idle_steps).append(t1 - t0)
                all_steps.append(t1 - t0)
            # the first measured save allocates slot 1 (page faults): not a steady stall, left
            # out unless it is the only one
            stalls += [t1 - t0 for t0, t1 in (r["saves"][1:] or r["saves"])]
            wall = max(wall, r["steps"][-1][1] - r["steps"][0][0])
            span_steps = len(r["steps"])
        start = min(r["steps"][0][0] for r in res)
        end = max(r["steps"][-1][1] for r in res)
        for b0, b1_ in busy_daemon:
            busy_time += max(0.0, min(b1_, end) - max(b0, start))
        variant = f"{label}, save every {every} steps"
        busy_mean, idle_mean = _mean(busy_steps), _mean(idle_steps)
        # Idle steps of the same run (no background work during them) are interleaved in time
        # with the busy ones, so the machine's drift hits both alike; the no-checkpoint segments
        # before and after are the second baseline.
        same_run = len(idle_steps) >= 5
        ref = idle_mean if same_run else bmean
        note = (
            f"{len(busy_steps)} busy / {len(idle_steps)} idle steps; daemon busy {busy_time / (end - start):.0%} "
            f"of the run; background work per save {background_s:.1f} s; vs no-ckpt segments "
            f"{ms(b1)} / {ms(b2)}: {busy_mean / bmean:.2f}x"
        )
        if errors:
            note += f"; daemon errors: {errors[:2]}"
        rows.append(
            Row(
                BENCH,
                cfg,
                f"step time while L2/L3 run ({variant})",
                f"{ms(busy_mean)} mean of busy steps",
                f"idle steps, same run {ms(idle_mean)}" if same_run else f"no ckpt {base_txt}",
                busy_mean / ref,
                "<= 1.05",
                note=note,
                values={
                    "busy_mean_s": busy_mean,
                    "idle_mean_s": idle_mean,
                    "base_mean_s": bmean,
                    "base1_mean_s": b1,
                    "base2_mean_s": b2,
                    "busy_steps": len(busy_steps),
                    "idle_steps": len(idle_steps),
                    "every": every,
                    "background_s": background_s,
                    "cap_mbps": cap,
                },
            )
        )
        expected = span_steps * ref
        rows.append(
            Row(
                BENCH,
                cfg,
                f"whole run incl. save() stalls ({variant})",
                f"{wall:.1f} s for {span_steps} steps",
                f"{expected:.1f} s at the {'idle' if same_run else 'no-ckpt'} step time",
                wall / expected,
                "-",
                note=f"save() stall with the daemon: median {ms(median(stalls))}, max {ms(max(stalls, default=math.nan))}"
                + (
                    " (the first measured save, which allocates slot 1, left out)"
                    if saves > 1
                    else " (the only measured save: it allocates slot 1)"
                ),
                values={"wall_s": wall, "expected_s": expected, "stall_median_s": median(stalls)},
            )
        )
    return rows


def main() -> None:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256M", help="state bytes per rank, e.g. 256M, 1G, 4G")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--saves", type=int, help="measured saves per variant (default 2; 1 above 1 GiB in all)")
    p.add_argument("--step-ms", type=float, default=200, help="target duration of one training step")
    p.add_argument("--base-steps", type=int, default=20, help="steps per baseline segment")
    p.add_argument("--bandwidth-mbps", type=float, default=100, help="replication cap of the capped variant")
    p.add_argument(
        "--variants",
        default="plain,default,nice",
        help="variants: plain (no cap, no priorities), cap (--bandwidth-mbps), default (client thread"
        " and daemons at nice 10, as Cube ships), nice (the same at nice 19), pinned (the defaults,"
        " ranks on CPUs of their own, checkpoint work on the rest)",
    )
    p.add_argument("--shm", default="/dev/shm", help="tmpfs for L1")
    p.add_argument("--disk", default=tempfile.gettempdir(), help="disk for L2 replicas and L3")
    p.add_argument("--json", help="append the rows as JSON lines to this file")
    a = p.parse_args()
    nbytes = parse_size(a.size)
    known: dict[str, tuple[str, float | None, int | None, int, bool]] = {
        "plain": ("no cap, no priorities", None, None, 0, False),
        "cap": (f"L2 cap {a.bandwidth_mbps:g} MB/s, no priorities", a.bandwidth_mbps, None, 0, False),
        "default": ("Cube's defaults: client thread and daemons at nice 10", None, 10, 10, False),
        "nice": ("client thread and daemons at nice 19", None, 19, 19, False),
        "pinned": (
            "Cube's defaults, ranks and checkpoint work (client thread, daemons) on separate cores",
            None,
            10,
            10,
            True,
        ),
    }
    variants = [known[v.strip()] for v in a.variants.split(",") if v.strip()]
    saves = a.saves or (2 if nbytes * a.ranks <= GIB else 1)
    print(f"[{BENCH}] {config_name(nbytes, a.ranks)}: {fmt_size(nbytes)} per rank", flush=True)
    rows = run(nbytes, a.ranks, a.shm, a.disk, variants, saves, a.step_ms, a.base_steps)
    print_table(rows, f"step-time slowdown, {config_name(nbytes, a.ranks)}")
    write_rows(rows, a.json)


if __name__ == "__main__":
    main()
