"""write_all: every byte lands, in order, whether or not it flushes behind its writes."""

from __future__ import annotations

import os
import tempfile
import unittest
from unittest import mock

import cube.layout as layout


class WriteAllTest(unittest.TestCase):
    def _write(self, data: bytes) -> bytes:
        with tempfile.TemporaryDirectory() as d:
            path = layout.Path(d) / "out"
            layout.atomic_write(path, lambda fd: layout.write_all(fd, data))
            return path.read_bytes()

    def test_flush_behind_writes_every_byte_and_starts_writeback_chunk_by_chunk(self) -> None:
        real = layout._sync_file_range
        if real is None:
            self.skipTest("no sync_file_range on this platform")
        calls: list[tuple[int, int, int]] = []

        def spy(fd: int, offset: int, nbytes: int, flags: int) -> int:
            calls.append((offset, nbytes, flags))
            return real(fd, offset, nbytes, flags)

        data = os.urandom((5 << 20) + 12345)
        # Small chunks so that a few MiB take the flush-behind path (above two chunks).
        with mock.patch.object(layout, "_sync_file_range", spy), mock.patch.object(layout, "_WRITE_CHUNK", 1 << 20):
            self.assertEqual(self._write(data), data)
        started = [(o, n) for o, n, fl in calls if fl == 2]
        self.assertEqual([o for o, _ in started], [i << 20 for i in range(6)])
        self.assertEqual(sum(n for _, n in started), len(data))
        self.assertEqual([o for o, _, fl in calls if fl == 7], [i << 20 for i in range(5)])

    def test_without_sync_file_range_every_byte_lands_too(self) -> None:
        data = os.urandom((3 << 20) + 7)
        with mock.patch.object(layout, "_sync_file_range", None), mock.patch.object(layout, "_WRITE_CHUNK", 1 << 20):
            self.assertEqual(self._write(data), data)


if __name__ == "__main__":
    unittest.main()
