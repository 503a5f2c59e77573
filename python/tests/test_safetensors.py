"""The shard file: safetensors layout with 64-byte alignment, and header validation."""

from __future__ import annotations

import json
import struct
import unittest

import torch

import cube
from cube.safetensors_io import ALIGN, parse_header


def header_of(raw: bytes) -> dict:
    (n,) = struct.unpack_from("<Q", raw, 0)
    return json.loads(raw[8 : 8 + n])


class SafetensorsTest(unittest.TestCase):
    def test_every_dtype_round_trips_aligned(self) -> None:
        tensors = [
            ("f64", torch.randn(3, dtype=torch.float64)),
            ("f32", torch.randn(2, 3)),
            ("f16", torch.randn(5).half()),
            ("bf16", torch.randn(7).bfloat16()),
            ("i64", torch.arange(3)),
            ("i32", torch.arange(5, dtype=torch.int32)),
            ("i16", torch.arange(3, dtype=torch.int16)),
            ("i8", torch.tensor([-1, 2], dtype=torch.int8)),
            ("u8", torch.tensor([255, 0], dtype=torch.uint8)),
            ("bool", torch.tensor([True, False, True])),
            ("scalar", torch.tensor(1.5)),
            ("empty", torch.zeros(0, 4)),
            ("strided", torch.arange(12.0).reshape(3, 4).t()),
        ]
        raw = cube.encode_shard(tensors, "job", 5, 2)
        (n,) = struct.unpack_from("<Q", raw, 0)
        self.assertEqual(n % 8, 0)
        self.assertEqual((8 + n) % ALIGN, 0, "data starts 64-byte aligned")
        self.assertTrue(
            raw[8 + len(json.dumps(header_of(raw), separators=(",", ":"))) : 8 + n].strip(b" ") == b""
        )
        header = header_of(raw)
        self.assertEqual(
            header["__metadata__"], {"format": "pt", "cube.job": "job", "cube.step": "5", "cube.rank": "2"}
        )
        # Packed as the reference loaders require: each tensor begins where the previous ended.
        spans = sorted(info["data_offsets"] for name, info in header.items() if name != "__metadata__")
        end = 0
        for begin, stop in spans:
            self.assertEqual(begin, end)
            end = stop
        meta, back = cube.decode_shard(bytearray(raw), "mem")
        for name, t in tensors:
            self.assertEqual(back[name].dtype, t.dtype)
            self.assertEqual(back[name].shape, t.shape)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_malformed_headers_are_rejected_naming_the_file(self) -> None:
        raw = cube.encode_shard([("a", torch.ones(4))], "job", 1, 0)
        cases = {
            "short": raw[:4],
            "length": struct.pack("<Q", 1 << 40) + raw[8:],
            "truncated data": raw[:-4],
            "trailing bytes": raw + bytes(8),
        }
        header = header_of(raw)
        header["a"]["data_offsets"] = [0, 12]
        body = json.dumps(header).encode()
        body += b" " * (-len(body) % 8)
        cases["offsets"] = struct.pack("<Q", len(body)) + body + raw[-16:]
        for what, data in cases.items():
            with self.subTest(what), self.assertRaises(cube.CheckpointError) as cm:
                parse_header(bytearray(data), "/x/shard.safetensors")
            self.assertEqual(cm.exception.code, "INVALID_FILE")
            self.assertIn("/x/shard.safetensors", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
