"""`cube.report_progress`: tells the node agent how far a rank got (docs/control-protocol.md).

The agent listens on the Unix socket `CUBE_AGENT_SOCKET` and relays `POST /v1/progress
{jobId, rank, step, loss, tokensPerS, stepTimeS}` to the control plane, which uses it for the
job's progress, to detect hung ranks and to find stragglers; `report_restored` (`POST
/v1/restored {jobId, rank, step, level}`) tells it where a resumed rank's state came from.
Without the variable (no agent) a report does nothing.
Reporting is cheap (one small request on a kept-alive local connection) and never raises into
training: a failure is logged once and the report is dropped.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
from typing import Any

from .daemon_client import _UnixConnection

log = logging.getLogger("cube.progress")
_TIMEOUT_S = 0.5


class _Reporter:
    """One kept-alive connection to the agent; reconnects once when the agent closed it."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._conn: _UnixConnection | None = None
        self._lock = threading.Lock()

    def send(self, path: str, body: bytes) -> str | None:
        """Posts one report to `path`; returns why it failed, or None."""
        if not self._lock.acquire(timeout=2 * _TIMEOUT_S):
            return None  # another thread holds the connection for too long: drop this report
        try:
            problem: str | None = None
            for _ in range(2):  # a kept-alive connection the agent closed fails once, then reconnects
                try:
                    if self._conn is None:
                        self._conn = _UnixConnection(self.socket_path, _TIMEOUT_S)
                    self._conn.request("POST", path, body=body, headers={"content-type": "application/json"})
                    resp = self._conn.getresponse()
                    data = resp.read()
                    if resp.status >= 400:
                        return f"the agent answered {resp.status}: {data[:200].decode('utf-8', 'replace')}"
                    return None
                except (OSError, http.client.HTTPException) as e:
                    self._close()
                    problem = f"{type(e).__name__}: {e}"
            return problem
        finally:
            self._lock.release()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None


_reporter: _Reporter | None = None
_warned = False


def _number(value: Any) -> float | None:
    """A finite float (from a float, int, NumPy or 0-d torch value), else None (JSON has no NaN)."""
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _post(path: str, fields: dict[str, Any]) -> None:
    """Posts one report to the agent; a no-op without `CUBE_AGENT_SOCKET`; never raises."""
    global _reporter, _warned
    socket_path = os.environ.get("CUBE_AGENT_SOCKET")
    if not socket_path:
        return
    try:
        body = json.dumps(
            {"jobId": os.environ.get("CUBE_JOB_ID") or "local", "rank": int(os.environ.get("RANK") or 0), **fields},
            separators=(",", ":"),
        ).encode("utf-8")
        if _reporter is None or _reporter.socket_path != socket_path:
            _reporter = _Reporter(socket_path)
        problem = _reporter.send(path, body)
    except Exception as e:  # noqa: BLE001 - reports must never break training
        problem = f"{type(e).__name__}: {e}"
    if problem is not None and not _warned:
        _warned = True
        log.warning("cube: progress report to the agent at %s failed (reported once): %s", socket_path, problem)


# The previous report (step, monotonic time), to measure step times when the caller gives none.
_last_report: tuple[int, float] | None = None


def report_progress(step: int, loss: Any = None, tokens_per_s: Any = None, step_time_s: Any = None) -> None:
    """Reports that this rank finished `step` (with its loss and throughput, when known) to the
    node agent. A no-op without `CUBE_AGENT_SOCKET`; never raises.

    `tokens_per_s` is this rank's own throughput (the tokens it processed), not the job's: the
    control plane adds up the ranks' figures. `step_time_s` is the seconds this rank spent per step, for straggler detection. Without it,
    the wall time since the previous report divided by the steps advanced is sent. In a gang that
    synchronizes every step (DDP), wall times are the same on every rank, so a script that wants
    its stragglers found passes the time it spent on its own work, waits on peers excluded."""
    global _last_report
    now = time.monotonic()
    step = int(step)
    measured = _number(step_time_s)
    if measured is None and _last_report is not None and step > _last_report[0]:
        measured = (now - _last_report[1]) / (step - _last_report[0])
    _last_report = (step, now)
    _post(
        "/v1/progress",
        {
            "step": step,
            "loss": _number(loss),
            "tokensPerS": _number(tokens_per_s),
            "stepTimeS": measured if measured is None or measured >= 0 else None,
        },
    )


def report_restored(step: int, level: str) -> None:
    """Reports that this rank resumed from the checkpoint of `step` read from `level` (`L1`,
    `L2` or `L3`): the control plane records it as the job's `job-restored` event. A no-op
    without `CUBE_AGENT_SOCKET`; never raises."""
    _post("/v1/restored", {"step": int(step), "level": str(level)})
