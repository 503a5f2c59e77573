"""write_all: every byte lands, in order, whether or not it flushes behind its writes."""

from __future__ import annotations

import os
import tempfile

import pytest

import cube.layout as layout


@pytest.mark.parametrize("flush_behind", [True, False])
def test_write_all_writes_every_byte_in_order(monkeypatch: pytest.MonkeyPatch, flush_behind: bool) -> None:
    calls: list[tuple[int, int, int]] = []
    real = layout._sync_file_range
    if flush_behind:
        if real is None:
            pytest.skip("no sync_file_range on this platform")

        def spy(fd: int, offset: int, nbytes: int, flags: int) -> int:
            calls.append((offset, nbytes, flags))
            return real(fd, offset, nbytes, flags)

        monkeypatch.setattr(layout, "_sync_file_range", spy)
    else:
        monkeypatch.setattr(layout, "_sync_file_range", None)
    # Small chunks so that a few MiB take the flush-behind path (above two chunks).
    monkeypatch.setattr(layout, "_WRITE_CHUNK", 1 << 20)
    data = os.urandom((5 << 20) + 12345)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out")
        layout.atomic_write(layout.Path(path), lambda fd: layout.write_all(fd, data))
        with open(path, "rb") as f:
            assert f.read() == data
    if flush_behind:
        started = [(o, n) for o, n, fl in calls if fl == 2]
        assert [o for o, _ in started] == [i << 20 for i in range(6)]
        assert sum(n for _, n in started) == len(data)
        waited = [o for o, _, fl in calls if fl == 7]
        assert waited == [i << 20 for i in range(5)]
