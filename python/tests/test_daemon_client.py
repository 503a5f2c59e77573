"""The daemon client against a small fake daemon on a Unix socket (the real one is `cube ckpt daemon`)."""

from __future__ import annotations

import json
import shutil
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import torch
import xxhash

import cube
from cube.layout import LevelPaths, atomic_write_json
from cube.manifest import make_manifest
from helpers import LevelsTestCase


class FakeDaemon:
    """Commits L1 like the daemon would, keeps an "L2 replica" of every shard in memory."""

    def __init__(self, sock: str, l1: Path) -> None:
        self.calls: list[tuple[str, str]] = []
        self.records: dict[tuple[int, int], dict[str, Any]] = {}
        self.replicas: dict[tuple[int, int], bytes] = {}
        self.corrupt: set[int] = set()
        # Steps whose shard reply announces more bytes than it sends, then hangs up.
        self.short: set[int] = set()
        # Steps listed with another timeline than their record's (a peer replaced the step).
        self.listed_timeline: dict[int, int] = {}
        self.prunes: list[dict[str, Any]] = []
        self.l1 = l1
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(
                self, status: int, body: Any, raw: bytes | None = None, headers: dict[str, str] | None = None
            ) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                path = urlparse(self.path).path
                daemon.calls.append(("POST", path))
                if path.endswith("/saved"):
                    daemon.on_saved(body)
                    return self.reply(202, {})
                if path.endswith("/register") or path.endswith("/lease"):
                    return self.reply(200, {})
                if path.endswith("/prune"):
                    daemon.prunes.append(body)
                    return self.reply(200, {"node": "node-a", "pruned": [], "peers": []})
                self.reply(
                    404,
                    {"error": {"code": "UNKNOWN_ID", "message": f"no route {path}", "where": {"path": path}}},
                )

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                parts = url.path.strip("/").split("/")
                daemon.calls.append(("GET", url.path))
                if parts[-1] == "sources":
                    rank = int(q["rank"])
                    steps = sorted({s for s, r in daemon.replicas if r == rank}, reverse=True)
                    return self.reply(
                        200,
                        {
                            "steps": [
                                {
                                    "step": s,
                                    "sources": [
                                        {
                                            "level": "L2",
                                            "node": "node-b",
                                            "timeline": daemon.listed_timeline.get(
                                                s, daemon.records[(s, rank)].get("timeline", 0)
                                            ),
                                        }
                                    ],
                                }
                                for s in steps
                            ]
                        },
                    )
                if parts[-1] in ("record", "shard"):
                    step, rank = int(parts[4]), int(parts[6])
                    if parts[-1] == "record":
                        return self.reply(200, daemon.records[(step, rank)])
                    data = bytearray(daemon.replicas[(step, rank)])
                    digest = xxhash.xxh3_64(data).hexdigest()
                    if step in daemon.corrupt:
                        data[-1] ^= 1
                    if step in daemon.short:
                        self.send_response(200)
                        self.send_header("content-length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(bytes(data[: len(data) // 2]))
                        self.close_connection = True
                        return None
                    return self.reply(200, None, raw=bytes(data), headers={"x-cube-xxh3": digest})
                self.reply(404, {"error": {"code": "UNKNOWN_ID", "message": "no such route", "where": {}}})

        self.server = socketserver.ThreadingUnixStreamServer(sock, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on_saved(self, record: dict[str, Any]) -> None:
        key = (record["step"], record["rank"])
        self.records[key] = record
        paths = LevelPaths(self.l1, record["job"])
        self.replicas[key] = (paths.job_dir / record["file"]).read_bytes()
        m = make_manifest(
            job=record["job"], step=record["step"], level="L1", world_size=1, layout={}, records=[record]
        )
        atomic_write_json(paths.manifest(record["step"]), m)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DaemonClientTest(LevelsTestCase):
    def setUp(self) -> None:
        super().setUp()
        d = Path(tempfile.mkdtemp(prefix="cube-test-sock-"))
        self.addCleanup(shutil.rmtree, d, True)
        self.sock = str(d / "daemon.sock")
        self.daemon = FakeDaemon(self.sock, self.l1)
        self.addCleanup(self.daemon.close)

    def test_saves_register_lease_and_report_to_the_daemon(self) -> None:
        c = self.ckpt(socket=self.sock)
        for step in (1, 2, 3):
            c.save(step, {"x": torch.tensor([float(step)])})
        c.wait()
        posts = [p for m, p in self.daemon.calls if m == "POST"]
        self.assertEqual(sum(p.endswith("/register") for p in posts), 1)
        self.assertEqual(sum(p.endswith("/lease") for p in posts), 3)
        self.assertEqual(sum(p.endswith("/saved") for p in posts), 3)
        self.assertFalse((self.l3 / "job").exists(), "with a daemon, L3 is the daemon's job")
        self.assertEqual(c.load_latest()["__cube__"]["level"], "L1")

    def test_restore_reads_a_peer_replica_through_the_daemon_after_node_loss(self) -> None:
        c = self.ckpt(socket=self.sock)
        for step in (1, 2):
            c.save(step, {"x": torch.tensor([float(step)]), "tag": ("t", step)})
        c.close()
        shutil.rmtree(self.l1 / "job")
        back = self.ckpt(socket=self.sock).load_latest()
        self.assertEqual(
            back["__cube__"], {"step": 2, "timeline": 0, "level": "L2", "source": "daemon:L2@node-b"}
        )
        self.assertEqual(back["tag"], ("t", 2))
        self.daemon.corrupt.add(2)
        c = self.ckpt(socket=self.sock)
        with self.assertWarns(cube.CheckpointWarning):
            back = c.load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["step"], 1)
        self.assertTrue(any("daemon:L2@node-b" in str(e) for e in c.errors()))

    def test_a_replica_cut_short_in_transfer_is_never_loaded(self) -> None:
        c = self.ckpt(socket=self.sock)
        for step in (1, 2):
            c.save(step, {"x": torch.full((4096,), float(step))})
        c.close()
        shutil.rmtree(self.l1 / "job")
        client = cube.DaemonClient(self.sock, "job")
        data, header, digest = client.shard(2, 0, "L2", "node-b")
        self.assertEqual(bytes(data), self.daemon.replicas[(2, 0)])
        self.assertEqual(digest, header)
        self.daemon.short.add(2)
        with self.assertRaises(cube.CheckpointError) as cm:
            client.shard(2, 0, "L2", "node-b")
        self.assertEqual(cm.exception.code, "INVALID_FILE")
        self.assertIn("of", str(cm.exception))
        c = self.ckpt(socket=self.sock)
        with self.assertWarns(cube.CheckpointWarning):
            back = c.load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["step"], 1)
        self.assertTrue(torch.equal(back["x"], torch.full((4096,), 1.0)))

    def test_restoring_an_older_step_asks_the_daemon_to_prune_the_abandoned_replicas(self) -> None:
        c = self.ckpt(socket=self.sock)
        for step in (1, 2, 3):
            c.save(step, {"x": torch.tensor([float(step)])})
        c.close()
        shutil.rmtree(self.l1 / "job")
        self.daemon.corrupt.add(3)
        c = self.ckpt(socket=self.sock)
        with self.assertWarns(cube.CheckpointWarning):
            back = c.load_latest()
        self.assertEqual((back["__cube__"]["step"], c.timeline), (2, 1))
        self.assertEqual(self.daemon.prunes, [{"afterStep": 2, "timeline": 1}])
        # A plain resume of the newest step abandons nothing: no prune.
        self.daemon.corrupt.clear()
        self.daemon.prunes.clear()
        self.assertEqual(self.ckpt(socket=self.sock).load_latest()["__cube__"]["step"], 3)
        self.assertEqual(self.daemon.prunes, [])

    def test_a_replica_listed_for_one_timeline_but_recorded_in_another_is_never_loaded(self) -> None:
        c = self.ckpt(socket=self.sock)
        for step in (1, 2):
            c.save(step, {"x": torch.tensor([float(step)])})
        c.close()
        shutil.rmtree(self.l1 / "job")
        self.daemon.listed_timeline[2] = 5
        c = self.ckpt(socket=self.sock)
        with self.assertWarns(cube.CheckpointWarning):
            back = c.load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["step"], 1)
        self.assertTrue(any("timeline 0, expected 5" in str(e) for e in c.errors()), c.errors())

    def test_daemon_errors_keep_their_code(self) -> None:
        client = cube.DaemonClient(self.sock, "job")
        with self.assertRaises(cube.CheckpointError) as cm:
            client._json("POST", "/v1/nowhere", {})
        self.assertEqual(cm.exception.code, "UNKNOWN_ID")
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.DaemonClient(self.sock + ".missing", "job").status()
        self.assertIn("unreachable", str(cm.exception))
