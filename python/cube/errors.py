"""The client's one error family, mirroring `CubeError` of the TypeScript side."""

from __future__ import annotations

from typing import Any, Mapping

# The stable codes of src/core/cube-error.ts. The client raises no other code, so a caller (or the
# agent relaying an error) can map it the same way in both languages.
CODES = frozenset(
    {
        "BAD_FLAG",
        "UNKNOWN_ID",
        "FILE_NOT_FOUND",
        "FILE_UNREADABLE",
        "INVALID_FILE",
        "INVALID_VALUE",
        "INFEASIBLE",
        "STORAGE_FAILED",
        "CORRUPT_DATA",
        "INTERNAL",
    }
)


class CheckpointError(Exception):
    """A checkpoint failure with a stable `code`, a message and a structured `where`.

    `where` names what failed as precisely as is known: `file`, `path` (inside the state or the
    file), `field`, `rank`, `node`, `level`, `step`.
    """

    def __init__(self, code: str, message: str, where: Mapping[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown CheckpointError code {code!r}")
        self.code = code
        self.message = message
        self.where: dict[str, Any] = dict(where or {})
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.where.items())
        return f"{self.code}: {self.message}" + (f" ({where})" if where else "")

    def to_json(self) -> dict[str, Any]:
        """The error as the daemon API and `--json` outputs spell errors."""
        return {"code": self.code, "message": self.message, "where": self.where}


class CheckpointWarning(UserWarning):
    """A checkpoint problem that does not stop training (e.g. L3 unwritable)."""
