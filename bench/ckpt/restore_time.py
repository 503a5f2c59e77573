"""Bench 4: restore time of `Checkpointer.load_latest()` from L1, L2 and L3, and the share of it
spent on checksums.

One configuration = a state size per rank and 1 or 2 rank processes (restoring at the same
time; a repetition's figure is the slower rank's). Three real node daemons: node-a (the ranks'
node: L1 on tmpfs, replicates to node-b, persists to L3 on disk), node-b (keeps the replicas on
disk), node-c (a replacement node with an empty L1 that knows node-b). The ranks save one step
through node-a; once node-a is idle the step is at L1, L2 and L3. Then, per repetition:

- L1: a rank on node-a restores (its own slot on tmpfs, found through the manifest);
- L2: a rank on node-c restores through node-c's daemon, which streams the replica from node-b;
- L3: a rank on node-c without a daemon restores from the L3 directory.

The page cache of the L2 replica and L3 files is dropped for those files (posix_fadvise) before
each repetition: a restore after a node loss reads them cold. Checksum time is measured by
wrapping the `xxhash` module the client's restore code calls (every byte is hashed once, in the
training process). The baseline of L1 and L3 is a plain read of the same shard file into a
fresh buffer (no checksum, no daemon), with the same cache state: the cost of just getting the
bytes off that medium into process memory (L2 has none: its bytes come over the network).

    PYTHONPATH=python OMP_NUM_THREADS=1 .venv/bin/python bench/ckpt/restore_time.py --size 1G
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    GIB,
    MIB,
    Daemon,
    RankContext,
    Ranks,
    Row,
    config_name,
    exit_on_sigterm,
    drop_file_cache,
    fits,
    fmt_size,
    median,
    ms,
    parse_size,
    per_rep_max,
    print_table,
    rmtree,
    skip_row,
    write_rows,
)

BENCH = "restore"
JOB = "restore"
LEVELS = ("L1", "L2", "L3")


class _TimedXXH:
    """Stands in for the `xxhash` module in `cube.restore` and `cube.daemon_client`: same calls,
    timed."""

    def __init__(self) -> None:
        import xxhash

        self._xxhash = xxhash
        self.seconds = 0.0

    def xxh3_64(self, data: Any = None) -> Any:
        outer = self
        t0 = time.perf_counter()
        h = self._xxhash.xxh3_64() if data is None else self._xxhash.xxh3_64(data)
        self.seconds += time.perf_counter() - t0

        class Hasher:
            def update(self, chunk: Any) -> None:
                t = time.perf_counter()
                h.update(chunk)
                outer.seconds += time.perf_counter() - t

            def hexdigest(self) -> str:
                return h.hexdigest()

        return Hasher()


def _read_plain(path: str) -> float:
    """Reads a file into a fresh bytearray the way the client's read_verified does, unhashed."""
    t0 = time.perf_counter()
    size = os.stat(path).st_size
    buf = bytearray(size)
    with open(path, "rb", buffering=0) as f, memoryview(buf) as view:
        done = 0
        while done < size:
            with view[done : done + (16 << 20)] as chunk:
                n = f.readinto(chunk)
            if not n:
                break
            done += n
    seconds = time.perf_counter() - t0
    del buf
    return seconds


def worker(ctx: RankContext, nbytes: int, nodes: dict[str, dict[str, str]], l3: str) -> str:
    """A rank: saves one step through node-a, then restores on command."""
    for var in ("CUBE_CKPT_L3", "CUBE_CKPT_SOCKET"):
        os.environ.pop(var, None)
    import cube
    import cube.daemon_client
    import cube.restore
    from common import make_state

    timed = _TimedXXH()
    # Instrumentation: the restore code's checksum calls (files it reads; shards it downloads).
    cube.restore.xxhash = timed
    cube.daemon_client.xxhash = timed
    who = dict(job=JOB, rank=ctx.rank, world_size=ctx.ranks, local_ranks=list(range(ctx.ranks)))
    a, c = nodes["node-a"], nodes["node-c"]
    state = make_state(nbytes, ctx.rank)
    ck = cube.Checkpointer(node="node-a", l1_dir=a["l1"], socket=a["socket"], **who)
    ck.save(1, state)
    ck.wait()
    ck.close()
    del state, ck
    gc.collect()
    ctx.outbox.put(("done", ctx.rank, "saved"))
    while True:
        cmd, *args = ctx.inbox.get()
        if cmd == "exit":
            return "bye"
        level, plain_file = args
        if level == "L1":
            opts = dict(node="node-a", l1_dir=a["l1"], socket=a["socket"])
        elif level == "L2":
            opts = dict(node="node-c", l1_dir=c["l1"], socket=c["socket"])
        else:
            opts = dict(node="node-c", l1_dir=c["l1"], l3_dir=l3)
        ctx.sync()
        plain = _read_plain(plain_file) if plain_file else float("nan")
        ctx.outbox.put(("done", ctx.rank, "read"))
        ctx.inbox.get()  # the parent drops the caches again before the restore
        ck = cube.Checkpointer(**opts, **who)
        timed.seconds = 0.0
        ctx.sync()
        t0 = time.perf_counter()
        got = ck.load_latest(prune_newer=False)
        seconds = time.perf_counter() - t0
        info = dict(got["__cube__"]) if got is not None else None
        ck.close()
        del got, ck
        gc.collect()
        ctx.outbox.put(
            ("done", ctx.rank, {"seconds": seconds, "hash_s": timed.seconds, "plain_s": plain, "got": info})
        )


def run(nbytes: int, ranks: int, repeats: int, shm: str, disk: str) -> list[Row]:
    """Runs one configuration; returns its rows."""
    cfg = config_name(nbytes, ranks)
    # Saving: the state and a slot per rank; restoring from L2: the HTTP body and the client's
    # copy of it per rank, with the slots still on tmpfs.
    why = fits(ram_bytes=2 * ranks * nbytes, shm_bytes=ranks * nbytes, shm=shm)
    if why:
        return [skip_row(BENCH, cfg, why)]
    work_shm = tempfile.mkdtemp(prefix="cube-bench-restore-", dir=shm)
    work_disk = tempfile.mkdtemp(prefix="cube-bench-restore-", dir=disk)
    daemons: list[Daemon] = []
    pool = None
    out: dict[str, list[list[dict[str, Any]]]] = {lv: [] for lv in LEVELS}
    try:
        l3 = os.path.join(work_disk, "L3")
        os.makedirs(l3)

        def daemon(node: str, **kw: Any) -> Daemon:
            d = Daemon(
                node,
                os.path.join(work_shm, f"{node}-l1"),
                os.path.join(work_disk, f"{node}-L2"),
                os.path.join(work_disk, f"{node}.sock"),
                work_disk,
                jobs=[JOB],
                **kw,
            )
            daemons.append(d)
            return d

        b = daemon("node-b")
        a = daemon("node-a", l3=l3, replica_peer=b, peers=[b])
        c = daemon("node-c", peers=[b])
        nodes = {d.node: {"l1": d.l1, "socket": d.socket} for d in (a, c)}
        pool = Ranks(ranks, worker, nbytes, nodes, l3)
        pool.gather()
        a.wait_idle()
        newest = a.status()["jobs"][0]["newest"]
        if newest.get("L2") != 1 or newest.get("L3") != 1 or a.errors():
            raise RuntimeError(f"step 1 did not reach L2 and L3: {newest}, errors {a.errors()}")
        files = {
            "L1": sorted(glob.glob(os.path.join(a.l1, JOB, "slots", "rank-*", "slot-0.safetensors"))),
            "L2": sorted(glob.glob(os.path.join(b.l2, JOB, "step-*", "rank-*.safetensors"))),
            "L3": sorted(glob.glob(os.path.join(l3, JOB, "step-*", "rank-*.safetensors"))),
        }
        for level, paths in files.items():
            if len(paths) != ranks:
                raise RuntimeError(f"expected {ranks} shard files at {level}, found {paths}")
        for _ in range(repeats):
            for level in LEVELS:
                for p in files[level] if level != "L1" else []:
                    drop_file_cache(p)
                for r, q in enumerate(pool.inboxes):
                    # no plain-read baseline for L2: the bytes come over the network
                    q.put(("restore", level, files[level][r] if level != "L2" else None))
                pool.gather()
                for p in files[level] if level != "L1" else []:
                    drop_file_cache(p)
                pool.send("go")
                res = pool.gather()
                for r in res:
                    if r["got"] is None or r["got"]["level"] != level:
                        raise RuntimeError(f"restore meant to use {level} got {r['got']}")
                out[level].append(res)
        pool.send("exit")
        pool.join()
        pool = None
    finally:
        if pool is not None:
            pool.kill()
        for d in reversed(daemons):
            d.stop()
        rmtree(work_shm)
        rmtree(work_disk)

    rows: list[Row] = []
    where = {
        "L1": "own L1 slot on tmpfs",
        "L2": "node-b replica via node-c daemon, cold",
        "L3": "L3 directory on disk, cold",
    }
    for level in LEVELS:
        reps = out[level]
        per_rank = lambda key: [[rep[r][key] for rep in reps] for r in range(ranks)]  # noqa: E731
        total = median(per_rep_max(per_rank("seconds")))
        plain = median(per_rep_max(per_rank("plain_s"))) if level != "L2" else float("nan")
        shares = [rep[r]["hash_s"] / rep[r]["seconds"] for rep in reps for r in range(ranks)]
        hash_s = median([rep[r]["hash_s"] for rep in reps for r in range(ranks)])
        rows.append(
            Row(
                BENCH,
                cfg,
                f"load_latest() from {level} ({where[level]}; median of {repeats})",
                f"{ms(total)} ({nbytes / total / GIB:.2f} GiB/s per rank)",
                f"plain read of the file {ms(plain)}" if level != "L2" else "-",
                total / plain if level != "L2" else None,
                "-",
                note=f"checksums (XXH3 in the client) {ms(hash_s)} = {median(shares):.0%} of the restore",
                values={"restore_s": total, "plain_s": plain, "hash_s": hash_s, "hash_share": median(shares)},
            )
        )
    return rows


def main() -> None:
    exit_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="256M", help="state bytes per rank, e.g. 256M, 1G, 4G")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument(
        "--repeats",
        type=int,
        help="default 5 up to 256 MiB of state in all, 3 up to 2 GiB, 1 above (a 4 GiB repetition takes minutes)",
    )
    p.add_argument("--shm", default="/dev/shm", help="tmpfs for L1")
    p.add_argument("--disk", default=tempfile.gettempdir(), help="disk for L2 replicas and L3")
    p.add_argument("--json", help="append the rows as JSON lines to this file")
    a = p.parse_args()
    nbytes = parse_size(a.size)
    total = nbytes * a.ranks
    repeats = a.repeats or (5 if total <= 256 * MIB else 3 if total <= 2 * GIB else 1)
    print(f"[{BENCH}] {config_name(nbytes, a.ranks)}: {fmt_size(nbytes)} per rank, {repeats} repeats", flush=True)
    rows = run(nbytes, a.ranks, repeats, a.shm, a.disk)
    print_table(rows, f"restore time, {config_name(nbytes, a.ranks)}")
    write_rows(rows, a.json)


if __name__ == "__main__":
    main()
