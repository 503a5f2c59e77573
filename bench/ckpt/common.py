"""Shared pieces of the checkpoint benchmarks (bench/ckpt/*.py).

Sizes, model-like states, medians, the results table every bench prints, memory checks, rank
processes started together behind a barrier, and real node daemons (`cube ckpt daemon`).

Run the benches with Debian's interpreter and the client on the path:

    PYTHONPATH=python OMP_NUM_THREADS=1 .venv/bin/python bench/ckpt/stall.py --size 1G --ranks 2

or all of them through `npm run bench:ckpt` (bench/ckpt/run.ts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

MIB = 1 << 20
GIB = 1 << 30
TENSOR_BYTES = 4 * MIB  # a model-like state: many 4 MiB float32 tensors


# ---- sizes and numbers -----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """`256M`, `1G`, `4GiB`, `512MiB` or a byte count -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if m is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 256M, 1G, 4G)")
    unit = {"": 1, "K": 1 << 10, "M": MIB, "G": GIB, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * unit)


def fmt_size(n: float) -> str:
    """Bytes as `256 MiB` / `4 GiB`."""
    if n >= GIB and n % GIB == 0:
        return f"{n // GIB:.0f} GiB"
    if n >= GIB:
        return f"{n / GIB:.2f} GiB"
    return f"{n / MIB:.0f} MiB"


def config_name(nbytes: int, ranks: int) -> str:
    """`1 GiB x 2 ranks`: the state size is per rank."""
    return f"{fmt_size(nbytes)} x {ranks} rank{'s' if ranks > 1 else ''}"


def median(xs: Sequence[float]) -> float:
    """The median (NaN for no samples)."""
    return statistics.median(xs) if xs else math.nan


def ms(seconds: float) -> str:
    """`12.3 ms`."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.1f} ms"


def mbps(nbytes: float, seconds: float) -> float:
    """Throughput in MB/s (10^6 bytes per second, as dd prints it)."""
    return nbytes / seconds / 1e6 if seconds > 0 else math.nan


# ---- the results table -----------------------------------------------------------------------


@dataclass
class Row:
    """One line of a results table.

    `ratio` is Cube's figure over the baseline's (a time ratio for stalls and step times, a
    throughput ratio for throughputs); `target` is how the ratio must compare (`<= 1.20`,
    `>= 0.90`) or "-" for figures reported without a target.
    """

    bench: str
    config: str
    metric: str
    cube: str
    baseline: str
    ratio: float | None
    target: str
    result: str = ""
    note: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.result:
            self.result = judge(self.ratio, self.target)


def judge(ratio: float | None, target: str) -> str:
    """PASS/MISS for a ratio against `<= x` / `>= x`; `info` without a target."""
    m = re.fullmatch(r"\s*(<=|>=)\s*([\d.]+)\s*", target)
    if m is None or ratio is None or math.isnan(ratio):
        return "info"
    bound = float(m.group(2))
    ok = ratio <= bound if m.group(1) == "<=" else ratio >= bound
    return "PASS" if ok else "MISS"


def skip_row(bench: str, config: str, why: str) -> Row:
    """A configuration that was not run, with the reason."""
    return Row(bench, config, "(skipped)", "-", "-", None, "-", "SKIP", why)


def print_table(rows: Sequence[Row], title: str = "", out: Any = None) -> None:
    """Prints rows as an aligned table: configuration, metric, Cube, baseline, ratio, target, result."""
    out = out or sys.stdout
    head = ["bench", "configuration", "metric", "Cube", "baseline", "ratio", "target", "result"]
    cells = [
        [
            r.bench,
            r.config,
            r.metric,
            r.cube,
            r.baseline,
            "-" if r.ratio is None or math.isnan(r.ratio) else f"{r.ratio:.2f}x",
            r.target,
            r.result,
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
    line = lambda c: "  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip()  # noqa: E731
    if title:
        print(f"\n== {title}", file=out)
    print(line(head), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for r, c in zip(rows, cells):
        print(line(c), file=out)
        if r.note:
            print(f"    note: {r.note}", file=out)
    out.flush()


def write_rows(rows: Sequence[Row], path: str | None) -> None:
    """Appends the rows as JSON lines to `path` (the orchestrator collects them)."""
    if not path:
        return
    load = os.getloadavg()[0]
    with open(path, "a", encoding="utf-8") as f:
        for r in rows:
            r.values.setdefault("loadavg1", load)
            f.write(json.dumps(_finite(asdict(r)), allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """NaN and infinities as None (JSON has no NaN; the orchestrator parses these lines)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so `finally` blocks stop the daemons and remove the files."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# ---- memory ----------------------------------------------------------------------------------


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, bytes."""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def fs_free(path: str) -> int:
    """Free bytes of the filesystem holding `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fits(ram_bytes: int, shm_bytes: int, shm: str) -> str | None:
    """None when `ram_bytes` of process memory plus `shm_bytes` of tmpfs fit, else why not.

    tmpfs pages are RAM too, so both count against MemAvailable; 15% is kept free for the
    daemons, the page cache of the disk writes and the rest of the machine.
    """
    avail, free = mem_available(), fs_free(shm)
    if ram_bytes + shm_bytes > 0.85 * avail:
        return (
            f"needs ~{fmt_size(ram_bytes + shm_bytes)} of memory (states, slots, buffers), "
            f"{fmt_size(avail)} available"
        )
    if shm_bytes > 0.9 * free:
        return f"needs ~{fmt_size(shm_bytes)} of tmpfs at {shm}, {fmt_size(free)} free"
    return None


def drop_file_cache(path: str | os.PathLike[str]) -> None:
    """Evicts one file's clean pages from the page cache (a cold read without dropping the
    whole machine's caches)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def rmtree(path: str | os.PathLike[str]) -> None:
    """Removes a directory tree if it exists."""
    shutil.rmtree(path, ignore_errors=True)


# ---- states ----------------------------------------------------------------------------------


def make_state(nbytes: int, seed: int = 0) -> dict[str, Any]:
    """A model-like state of `nbytes` of float32 tensors (4 MiB each, the last one smaller).

    The values are cheap to produce (a fill per tensor); nothing on the measured paths (memcpy,
    XXH3, TCP, ext4) depends on the values.
    """
    import torch

    tensors: dict[str, torch.Tensor] = {}
    left, i = nbytes, 0
    while left > 0:
        n = min(TENSOR_BYTES, left)
        tensors[f"layer{i:05d}.weight"] = torch.full((n // 4,), float(seed * 100_000 + i) + 0.5)
        left -= n
        i += 1
    return {"model": tensors, "step": 0}


def state_tensors(state: dict[str, Any]) -> list[Any]:
    """The tensors of a `make_state` state, in order."""
    return list(state["model"].values())


# ---- rank processes --------------------------------------------------------------------------


@dataclass
class RankContext:
    """What a rank worker gets: who it is and how to meet the other ranks."""

    rank: int
    ranks: int
    barrier: Any
    inbox: Any  # commands from the parent (a multiprocessing queue), for command-driven workers
    outbox: Any  # results to the parent

    def sync(self) -> None:
        """Waits until every rank arrives (rank processes start measured work together)."""
        self.barrier.wait(timeout=3600)


def _rank_main(fn: Callable[..., Any], ctx: RankContext, args: tuple[Any, ...]) -> None:
    try:
        ctx.outbox.put(("done", ctx.rank, fn(ctx, *args)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        import traceback

        ctx.barrier.abort()
        ctx.outbox.put(("error", ctx.rank, f"{e!r}\n{traceback.format_exc()}"))


class Ranks:
    """`ranks` worker processes running `fn(ctx, *args)` at the same time.

    They are separate processes (like data-parallel ranks), started with `spawn` so each has
    its own interpreter and torch; they meet at `ctx.sync()`. Command-driven workers read
    `ctx.inbox` (one queue per rank, see `send`) and answer on `ctx.outbox`.
    """

    def __init__(self, ranks: int, fn: Callable[..., Any], *args: Any) -> None:
        mpc = mp.get_context("spawn")
        self.barrier = mpc.Barrier(ranks)
        self.outbox = mpc.Queue()
        self.inboxes = [mpc.Queue() for _ in range(ranks)]
        self.procs = [
            mpc.Process(
                target=_rank_main,
                args=(fn, RankContext(r, ranks, self.barrier, self.inboxes[r], self.outbox), args),
                name=f"bench-rank{r}",
            )
            for r in range(ranks)
        ]
        for p in self.procs:
            p.start()

    def send(self, *msg: Any) -> None:
        """Sends one command to every rank."""
        for q in self.inboxes:
            q.put(msg)

    def gather(self, timeout: float = 3600) -> list[Any]:
        """One message per rank (ordered by rank): what each sent with `ctx.outbox.put((tag,
        rank, value))`; raises when a rank failed."""
        got: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                tag, rank, value = self.outbox.get(timeout=1.0)
            except Exception:  # noqa: BLE001 - queue.Empty; check the workers are alive
                dead = [p for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"rank process {dead[0].name} exited {dead[0].exitcode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("rank processes did not answer")
                continue
            if tag == "error":
                self.kill()
                raise RuntimeError(f"rank {rank} failed: {value}")
            got[rank] = value
        return [got[r] for r in range(len(self.procs))]

    def join(self) -> list[Any]:
        """The final results of every rank, then waits for the processes to exit."""
        out = self.gather()
        for p in self.procs:
            p.join(timeout=120)
        return out

    def kill(self) -> None:
        """Stops the workers this object started."""
        for p in self.procs:
            if p.is_alive():
                p.kill()
        for p in self.procs:
            p.join(timeout=10)


def per_rep_max(per_rank: Sequence[Sequence[float]]) -> list[float]:
    """Rep i's figure across ranks: the slowest rank's (a data-parallel step waits for it)."""
    return [max(xs) for xs in zip(*per_rank)]


# ---- node daemons ----------------------------------------------------------------------------


# Checkpoint-peer keys for the bench's daemons (src/ckpt/daemon/peer-auth.ts): what a control
# plane would hand each node, derived the same way. The bench grants every one of its nodes the
# replicas of every rank of its jobs, since its ranks move between nodes between phases.
BENCH_PEER_MASTER = os.urandom(32)
BENCH_NODES = ("node-a", "node-b", "node-c")
BENCH_MAX_RANKS = 256


def _pair_key(job: str, frm: str, to: str) -> str:
    attempt_key = hmac.new(BENCH_PEER_MASTER, f"cube-peer/1\n{job}\n0".encode(), hashlib.sha256).digest()
    mac = hmac.new(attempt_key, f"{frm}\n{to}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def write_peer_access(path: str, node: str, jobs: Sequence[str]) -> str:
    """Writes `node`'s `--peer-access` file (mode 0600) for `jobs` among BENCH_NODES."""
    ranks = list(range(BENCH_MAX_RANKS))
    others = [n for n in BENCH_NODES if n != node]
    access = {
        job: {
            "attempt": 0,
            "outgoing": [{"node": o, "key": _pair_key(job, node, o)} for o in others],
            "incoming": [
                {"node": o, "key": _pair_key(job, o, node), "writeRanks": ranks, "readRanks": ranks}
                for o in others
            ],
        }
        for job in jobs
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(access, f)
    return path


class Daemon:
    """A `cube ckpt daemon` process (node bin/cube.js), started and stopped by the bench."""

    def __init__(
        self,
        node: str,
        l1: str,
        l2: str,
        socket_path: str,
        log_dir: str,
        l3: str | None = None,
        replica_peer: "Daemon | None" = None,
        peers: Sequence["Daemon"] = (),
        bandwidth_mbps: float | None = None,
        l3_every: int | None = None,
        nice: int | None = None,
        cpus: Sequence[int] | None = None,
        jobs: Sequence[str] = (),
    ) -> None:
        for d in (l1, l2):
            os.makedirs(d, exist_ok=True)
        self.node, self.l1, self.l2, self.l3, self.socket = node, l1, l2, l3, socket_path
        args = [
            "node",
            str(REPO / "bin" / "cube.js"),
            "ckpt",
            "daemon",
            "--node",
            node,
            "--l1",
            l1,
            "--l2",
            l2,
            "--socket",
            socket_path,
            "--listen",
            "127.0.0.1:0",
        ]
        if l3 is not None:
            args += ["--l3", l3]
        if replica_peer is not None:
            args += ["--replica-peer", f"{replica_peer.node}=127.0.0.1:{replica_peer.port}"]
        for p in peers:
            args += ["--peer", f"{p.node}=127.0.0.1:{p.port}"]
        if jobs:  # the jobs whose replicas move between this bench's nodes
            args += ["--peer-access", write_peer_access(os.path.join(log_dir, f"{node}-peer-access.json"), node, jobs)]
        if bandwidth_mbps is not None:
            args += ["--bandwidth-mbps", str(bandwidth_mbps)]
        if l3_every is not None:
            args += ["--l3-every", str(l3_every)]
        if cpus is not None:  # the node's housekeeping cores
            args += ["--cpus", ",".join(str(c) for c in cpus)]
        if nice is not None:  # a lower CPU priority than the training processes
            args = ["nice", "-n", str(nice), *args]
        self.log_path = os.path.join(log_dir, f"daemon-{node}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)
        self.port = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon {self.node} exited: {Path(self.log_path).read_text()[-2000:]}")
            for line in Path(self.log_path).read_text(errors="replace").splitlines():
                if '"ready":true' in line:
                    return int(json.loads(line)["peer"]["port"])
            time.sleep(0.05)
        raise TimeoutError(f"daemon {self.node} not ready: {Path(self.log_path).read_text()[-2000:]}")

    def status(self) -> Any:
        """`GET /v1/status`."""
        from cube.daemon_client import DaemonClient

        return DaemonClient(self.socket, "status").status()

    def busy(self) -> bool:
        """True while any job has queued or running replication/persistence."""
        return any(j["inFlight"] for j in self.status()["jobs"])

    def wait_idle(self, timeout: float = 1800, settle: float = 0.0) -> float:
        """Polls until nothing is in flight; returns the monotonic time it saw idle first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy():
                return time.monotonic()
            time.sleep(0.02)
        raise TimeoutError(f"daemon {self.node} still busy: {self.status()}")

    def errors(self) -> list[Any]:
        """The errors the daemon reports per job."""
        return [e for j in self.status()["jobs"] for e in j["errors"]]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class BusyPoller:
    """Samples a daemon's in-flight state every `period` s in a thread: (monotonic time, busy)."""

    def __init__(self, daemon: Daemon, period: float = 0.1) -> None:
        self.daemon, self.period = daemon, period
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                b = self.daemon.busy()
            except Exception:  # noqa: BLE001 - a missed sample is not a measurement error
                b = True
            self.samples.append((t, b))
            self._stop.wait(self.period)

    def stop(self) -> list[tuple[float, float]]:
        """Stops sampling; returns the busy intervals (each sample covers +-period/2)."""
        self._stop.set()
        self._thread.join()
        out: list[tuple[float, float]] = []
        half = self.period / 2 + 0.01
        for t, b in self.samples:
            if not b:
                continue
            if out and t - half <= out[-1][1]:
                out[-1] = (out[-1][0], t + half)
            else:
                out.append((t - half, t + half))
        return out


def overlaps(a0: float, a1: float, intervals: Sequence[tuple[float, float]]) -> bool:
    """True when [a0, a1] overlaps any interval."""
    return any(a0 < b1 and b0 < a1 for b0, b1 in intervals)


def machine_line() -> str:
    """A one-line description of where the numbers come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torch

    return (
        f"{time.strftime('%Y-%m-%d %H:%M')} | {os.cpu_count()} x {cpu} | "
        f"MemAvailable {fmt_size(mem_available())} | torch {torch.__version__} numpy {numpy.__version__} "
        f"| OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
