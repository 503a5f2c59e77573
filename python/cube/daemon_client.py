"""A client of the node checkpoint daemon's local API (HTTP/1.1 over a Unix socket).

See docs/checkpoint-format.md, "Daemon local API". The checkpointer uses it only when
`CUBE_CKPT_SOCKET` is set; everything works without a daemon.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any, Mapping
from urllib.parse import quote, urlencode

import xxhash

from .errors import CODES, CheckpointError

# Bytes a shard download reads and hashes at a time.
_READ_CHUNK = 16 << 20


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class DaemonClient:
    """Calls the daemon for one job. Each call opens its own connection (the calls are rare and
    this keeps the client safe to use from the training thread and the background thread)."""

    def __init__(self, socket_path: str, job: str, timeout_s: float = 30.0) -> None:
        self.socket_path = socket_path
        self.job = job
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        conn = _UnixConnection(self.socket_path, self.timeout_s)
        try:
            payload = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers = {"content-type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, resp_headers = resp.status, {k.lower(): v for k, v in resp.getheaders()}
        except OSError as e:
            raise CheckpointError(
                "INFEASIBLE",
                f"checkpoint daemon at {self.socket_path} is unreachable: {e}",
                {"file": self.socket_path},
            ) from e
        finally:
            conn.close()
        if status >= 400:
            raise self._error(method, path, status, data)
        return status, resp_headers, data

    def _error(self, method: str, path: str, status: int, data: bytes) -> CheckpointError:
        try:
            err = json.loads(data.decode("utf-8"))["error"]
            code = err.get("code") if err.get("code") in CODES else "INTERNAL"
            where = dict(err.get("where") or {})
            message = str(err.get("message"))
        except (ValueError, KeyError, TypeError, AttributeError):
            code, where, message = "INTERNAL", {}, data[:200].decode("utf-8", "replace")
        where.setdefault("daemon", f"{method} {path} -> {status}")
        return CheckpointError(code, f"checkpoint daemon: {message}", where)

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        _, _, data = self._request(method, path, body)
        return json.loads(data.decode("utf-8")) if data else None

    def _job(self) -> str:
        return f"/v1/jobs/{quote(self.job, safe='')}"

    def register(
        self,
        rank: int,
        world_size: int,
        local_ranks: list[int],
        l3_every: int,
        keep: Mapping[str, int],
        every_steps: int | None = None,
    ) -> None:
        """`POST /v1/jobs/{job}/ranks/{rank}/register`. `every_steps` (the job's checkpoint
        interval) lets the daemon pick the L3 steps by step number (cadence.py)."""
        body: dict[str, Any] = {
            "worldSize": world_size,
            "localRanks": list(local_ranks),
            "l3Every": l3_every,
            "keep": dict(keep),
        }
        if every_steps is not None:
            body["everySteps"] = every_steps
        self._json("POST", f"{self._job()}/ranks/{rank}/register", body)

    def lease(self, rank: int, slot: int) -> None:
        """`POST .../slots/{slot}/lease`: returns once the daemon no longer reads the slot."""
        self._json("POST", f"{self._job()}/ranks/{rank}/slots/{slot}/lease", {})

    def saved(self, record: Mapping[str, Any]) -> None:
        """`POST /v1/jobs/{job}/saved` with the L1 shard record."""
        self._json("POST", f"{self._job()}/saved", dict(record))

    def prune(self, after_step: int, timeline: int) -> dict[str, Any]:
        """`POST /v1/jobs/{job}/prune`: the daemon, and through it every peer, removes its L2
        replicas of this job's steps newer than `after_step` whose timeline is below `timeline`
        (a run that restarted from an older step abandoned them). Returns the daemon's summary."""
        body = self._json("POST", f"{self._job()}/prune", {"afterStep": after_step, "timeline": timeline})
        return body if isinstance(body, dict) else {}

    def sources(self, rank: int) -> list[dict[str, Any]]:
        """`GET .../sources?rank=R`: `[{step, sources: [{level, node, timeline, path?}]}]`, newest
        first (a daemon that predates timelines leaves `timeline` out: it reads as 0)."""
        body = self._json("GET", f"{self._job()}/sources?{urlencode({'rank': rank})}")
        steps = body.get("steps") if isinstance(body, dict) else None
        if not isinstance(steps, list):
            raise CheckpointError(
                "INVALID_FILE",
                "checkpoint daemon: sources reply has no steps list",
                {"daemon": self.socket_path},
            )
        return steps

    def record(self, step: int, rank: int, level: str, node: str) -> dict[str, Any]:
        """`GET .../steps/{step}/ranks/{rank}/record?level=L&node=N`: the shard record (with its
        `extra`) as the manifest of that level lists it."""
        query = urlencode({"level": level, "node": node})
        rec = self._json("GET", f"{self._job()}/steps/{step}/ranks/{rank}/record?{query}")
        if not isinstance(rec, dict):
            raise CheckpointError(
                "INVALID_FILE",
                "checkpoint daemon: record reply is not an object",
                {"daemon": self.socket_path},
            )
        return rec

    def shard(self, step: int, rank: int, level: str, node: str) -> tuple[bytearray, str | None, str]:
        """`GET .../steps/{step}/ranks/{rank}/shard?level=L&node=N`: (bytes, x-cube-xxh3 header,
        XXH3 of the bytes received).

        The body is read straight into one buffer of its announced length and hashed as it
        arrives: no intermediate copies, each of which would cost a fresh allocation's page faults
        (several times the network time for a large shard)."""
        query = urlencode({"level": level, "node": node})
        path = f"{self._job()}/steps/{step}/ranks/{rank}/shard?{query}"
        where: dict[str, Any] = {"step": step, "rank": rank, "daemon": self.socket_path}
        conn = _UnixConnection(self.socket_path, self.timeout_s)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            if resp.status >= 400:
                raise self._error("GET", path, resp.status, resp.read())
            length = resp.getheader("content-length")
            if length is None or not length.isdigit():
                raise CheckpointError(
                    "INVALID_FILE", f"checkpoint daemon sent a shard without a valid content-length ({length!r})", where
                )
            total = int(length)
            buf = bytearray(total)
            h = xxhash.xxh3_64()
            done = 0
            with memoryview(buf) as view:
                while done < total:
                    with view[done : done + _READ_CHUNK] as chunk:
                        n = resp.readinto(chunk)
                        if not n:
                            raise CheckpointError(
                                "INVALID_FILE", f"checkpoint daemon sent {done} of {total} shard bytes", where
                            )
                        with chunk[:n] as got:
                            h.update(got)
                    done += n
            return buf, resp.getheader("x-cube-xxh3"), h.hexdigest()
        except OSError as e:
            raise CheckpointError(
                "INFEASIBLE", f"checkpoint daemon at {self.socket_path} is unreachable: {e}", {"file": self.socket_path}
            ) from e
        finally:
            conn.close()

    def status(self) -> Any:
        """`GET /v1/status`."""
        return self._json("GET", "/v1/status")
