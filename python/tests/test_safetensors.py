"""The shard file: the reference writer's layout, every dtype, header validation, and the
reference `safetensors` library (when installed) reading Cube's shards and Cube reading its files."""

from __future__ import annotations

import json
import math
import shutil
import struct
import unittest
from pathlib import Path
from typing import Any

import torch
import xxhash

import cube
from cube.dtypes import ALIGNMENT_RANK, ITEMSIZE
from cube.flatten import flatten_state
from cube.safetensors_io import encode_header, parse_header, plan_layout, shard_metadata
from helpers import LevelsTestCase, assert_state_equal

try:
    import safetensors
    from safetensors import safe_open
    from safetensors.torch import load_file, save, save_file
except ImportError:  # the reference library is optional: its tests are skipped without it
    safetensors = None

NEW_DTYPES = ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64")
HAS_NEW_DTYPES = all(isinstance(getattr(torch, n, None), torch.dtype) for n in NEW_DTYPES)
WHY_NO_NEW = f"torch {torch.__version__} lacks fp8 (2.1) or uint16/32/64 (2.3)"
WHY_NO_REFERENCE = "the reference safetensors library is not installed in this interpreter"


def l3_shard(l3: Path, step: int) -> Path:
    return l3 / "job" / f"step-{step:010d}" / "rank-00000.safetensors"


def header_of(raw: bytes) -> dict:
    (n,) = struct.unpack_from("<Q", raw, 0)
    return json.loads(raw[8 : 8 + n])


def bits(t: torch.Tensor) -> bytes:
    """A tensor's raw bytes: equal bits, NaN payloads and -0.0 included."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def classic_tensors() -> list[tuple[str, torch.Tensor]]:
    """One tensor of every dtype torch 1.13 has, plus a scalar, an empty and a strided one."""
    return [
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


def every_dtype() -> dict[str, torch.Tensor]:
    """One tensor of every dtype of the format (torch >= 2.3), names out of data order."""
    g = torch.Generator().manual_seed(15)
    f32 = torch.randn(3, 5, generator=g)
    f32[0, 0] = float("nan")
    f32[0, 1] = -0.0
    return {
        "model/embed.weight": f32,
        "model/head.bias": torch.randn(4, generator=g, dtype=torch.float64),
        "model/norm.weight": torch.randn(6, generator=g).half(),
        "model/bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "model/fp8.e4m3": torch.randn(9, generator=g).to(torch.float8_e4m3fn),
        "model/fp8.e5m2": torch.randn(2, 2, generator=g).to(torch.float8_e5m2),
        "optimizer/step": torch.tensor(2**53 + 1, dtype=torch.int64),
        "data/i32": torch.tensor([-1, 2, 2**31 - 1], dtype=torch.int32),
        "data/i16": torch.tensor([-32768, 7], dtype=torch.int16),
        "data/i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "data/u64": torch.tensor([0, 2**64 - 1], dtype=torch.uint64),
        "data/u32": torch.tensor([2**32 - 1, 5], dtype=torch.uint32),
        "data/u16": torch.tensor([65535, 1, 0], dtype=torch.uint16),
        "data/u8": torch.tensor([0, 255], dtype=torch.uint8),
        "data/mask": torch.tensor([True, False, True]),
        "data/empty": torch.zeros(0, 4),
    }


def encode(tensors: list[tuple[str, torch.Tensor]], metadata: dict[str, str]) -> bytes:
    """A whole file with any metadata, through the writer's own pieces (plan, header, copy)."""
    layout = plan_layout(tensors, metadata)
    out = bytearray(layout.total)
    out[: layout.data_start] = encode_header(layout, metadata)
    for spec, (_, t) in zip(layout.specs, tensors):
        out[layout.data_start + spec.begin : layout.data_start + spec.end] = bits(t)
    return bytes(out)


def old_layout_shard(tensors: list[tuple[str, torch.Tensor]], job: str, step: int, rank: int) -> bytes:
    """A shard as Cube wrote them before the reference order: tensors in the state's order, the
    header padded so the data starts at a 64-byte offset with room reserved for a 20-digit step."""
    header: dict[str, Any] = {"__metadata__": shard_metadata(job, step, rank)}
    longest: dict[str, Any] = {"__metadata__": shard_metadata(job, int("9" * 20), rank)}
    offset = 0
    for name, t in tensors:
        dtype = cube.dtypes.st_dtype(t.dtype, name)
        n = t.numel() * ITEMSIZE[dtype]
        entry = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        header[name] = longest[name] = entry
        offset += n
    body = json.dumps(header, separators=(",", ":")).encode()
    room = len(json.dumps(longest, separators=(",", ":")).encode())
    data_start = (8 + room + 63) // 64 * 64
    out = struct.pack("<Q", data_start - 8) + body + b" " * (data_start - 8 - len(body))
    return out + b"".join(bits(t) for _, t in tensors)


class SafetensorsTest(unittest.TestCase):
    def test_every_dtype_round_trips_packed_in_the_reference_order(self) -> None:
        tensors = classic_tensors()
        raw = cube.encode_shard(tensors, "job", 5, 2)
        (n,) = struct.unpack_from("<Q", raw, 0)
        body = json.dumps(header_of(raw), separators=(",", ":"), ensure_ascii=False).encode()
        self.assertEqual(raw[8 : 8 + len(body)], body)
        self.assertEqual(n, math.ceil(len(body) / 8) * 8, "the header is padded to 8 with spaces, no more")
        self.assertEqual(raw[8 + len(body) : 8 + n].strip(b" "), b"")
        header = header_of(raw)
        self.assertEqual(
            header.pop("__metadata__"), {"format": "pt", "cube.job": "job", "cube.step": "5", "cube.rank": "2"}
        )
        # Header order is data order: larger dtype alignment first, then by name, packed.
        names = list(header)
        self.assertEqual(names, sorted(names, key=lambda k: (-ALIGNMENT_RANK[header[k]["dtype"]], k)))
        self.assertEqual(names[:2], ["i64", "f64"])
        end = 0
        for name in names:
            begin, stop = header[name]["data_offsets"]
            self.assertEqual(begin, end, f"{name} follows the previous tensor with no gap")
            self.assertEqual((8 + n + begin) % ITEMSIZE[header[name]["dtype"]], 0, f"{name} is aligned")
            end = stop
        meta, back = cube.decode_shard(bytearray(raw), "mem")
        for name, t in tensors:
            self.assertEqual(back[name].dtype, t.dtype)
            self.assertEqual(back[name].shape, t.shape)
            self.assertTrue(torch.equal(back[name], t), name)

    @unittest.skipUnless(HAS_NEW_DTYPES, WHY_NO_NEW)
    def test_fp8_and_unsigned_dtypes_round_trip_bit_for_bit(self) -> None:
        tensors = list(every_dtype().items())
        raw = cube.encode_shard(tensors, "job", 7, 0)
        header = header_of(raw)
        for name, st in [("model/fp8.e4m3", "F8_E4M3"), ("model/fp8.e5m2", "F8_E5M2"), ("data/u64", "U64"),
                         ("data/u32", "U32"), ("data/u16", "U16")]:
            self.assertEqual(header[name]["dtype"], st, name)
        _, back = cube.decode_shard(bytearray(raw), "mem")
        for name, t in tensors:
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(back[name].shape, t.shape, name)
            self.assertEqual(bits(back[name]), bits(t), name)
        self.assertEqual(bits(back["data/u64"]), bytes(8) + b"\xff" * 8, "2**64 - 1 survives")

    @unittest.skipIf(HAS_NEW_DTYPES, "this torch has every dtype of the format")
    def test_a_dtype_this_torch_lacks_is_refused_naming_the_tensor_and_the_torch_needed(self) -> None:
        body = json.dumps({"data/u16": {"dtype": "U16", "shape": [2], "data_offsets": [0, 4]}}).encode()
        body += b" " * (-len(body) % 8)
        raw = bytearray(struct.pack("<Q", len(body)) + body + bytes(4))
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.decode_shard(raw, "/x/shard.safetensors")
        self.assertEqual(cm.exception.code, "INVALID_VALUE")
        self.assertIn("'data/u16' is U16, which needs torch >= 2.3", str(cm.exception))
        self.assertIn("/x/shard.safetensors", str(cm.exception))

    def test_a_shard_in_the_old_layout_still_decodes(self) -> None:
        # Before the reference order, tensors were in the state's order (an I8 before an F32,
        # misaligning it) and the data started at a 64-byte offset. Readers never depended on
        # either, so checkpoints of that time restore.
        tensors = [("w", torch.randn(3, 2)), ("i8", torch.tensor([1, -2, 3], dtype=torch.int8)),
                   ("b", torch.randn(3)), ("step", torch.tensor(9))]
        raw = old_layout_shard(tensors, "job", 5, 0)
        self.assertEqual(list(header_of(raw))[1:], ["w", "i8", "b", "step"])
        meta, back = cube.decode_shard(bytearray(raw), "old")
        self.assertEqual(meta["cube.step"], "5")
        for name, t in tensors:
            self.assertEqual(bits(back[name]), bits(t), name)

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


class OldLayoutRestoreTest(LevelsTestCase):
    def test_a_checkpoint_whose_shard_has_the_old_layout_restores(self) -> None:
        torch.manual_seed(3)
        state = {"model": {"w": torch.randn(4, 3), "mask": torch.tensor([True, False])},
                 "opt": {"step": torch.tensor(12), "m": torch.randn(5).half()}, "note": "old"}
        c = self.ckpt()
        c.save(5, state)
        c.close()
        # Rewrite the L3 shard as the old writer laid it out, with its record and manifest.
        step_dir = self.l3 / "job" / "step-0000000005"
        raw = old_layout_shard(flatten_state(state).tensors, "job", 5, 0)
        (step_dir / "rank-00000.safetensors").write_bytes(raw)
        for name in ("rank-00000.json", "manifest.json"):
            doc = json.loads((step_dir / name).read_text())
            entry = doc["shards"][0] if name == "manifest.json" else doc
            entry["bytes"], entry["xxh3"] = len(raw), xxhash.xxh3_64(raw).hexdigest()
            (step_dir / name).write_text(json.dumps(doc))
        shutil.rmtree(self.l1 / "job")
        back = self.ckpt().load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["level"]), (5, "L3"))
        back.pop("__cube__")
        assert_state_equal(self, state, back)


@unittest.skipUnless(safetensors is not None, WHY_NO_REFERENCE)
@unittest.skipUnless(HAS_NEW_DTYPES, WHY_NO_NEW)
class ReferenceLibraryTest(LevelsTestCase):
    """Against Hugging Face's safetensors (Rust core): `save`/`save_file` and `safe_open`/`load_file`."""

    def assert_reference_loads(self, path: Path, expected: dict[str, torch.Tensor], step: int) -> None:
        loaded = load_file(str(path))  # the whole-file loader: checks packing, offsets and the end
        self.assertEqual(sorted(loaded), sorted(expected), path)
        with safe_open(str(path), framework="pt") as f:
            self.assertEqual(f.metadata(), shard_metadata("job", step, 0))
            for name, t in expected.items():
                for got in (loaded[name], f.get_tensor(name)):
                    self.assertEqual(got.dtype, t.dtype, f"{path}: {name}")
                    self.assertEqual(got.shape, t.shape, f"{path}: {name}")
                    self.assertEqual(bits(got), bits(t), f"{path}: {name}")

    def test_shard_bytes_equal_the_reference_writers_for_the_same_tensors_and_metadata(self) -> None:
        tensors = every_dtype()
        metadata = shard_metadata("job", 100, 0)
        theirs = save(tensors, metadata=metadata)
        # The reference writes `__metadata__` from a Rust HashMap, in an order that changes from
        # run to run (JSON key order carries no meaning): compare with ours in the order it chose.
        (n,) = struct.unpack_from("<Q", theirs, 0)
        their_order = json.loads(theirs[8 : 8 + n], object_pairs_hook=list)[0][1]
        self.assertEqual(dict(their_order), metadata)
        self.assertEqual(encode(list(tensors.items()), dict(their_order)), theirs)
        # Cube's own encoder: the same header length, tensor entries and data.
        ours = cube.encode_shard(list(tensors.items()), "job", 100, 0)
        self.assertEqual(len(ours), len(theirs))
        mine, their_header = header_of(ours), header_of(theirs)
        self.assertEqual(list(mine)[1:], list(their_header)[1:], "the same tensor order")
        self.assertEqual(mine, their_header)
        self.assertEqual(ours[8 + n :], theirs[8 + n :])

    def test_checkpointer_shards_load_in_the_reference_library_bit_for_bit(self) -> None:
        tensors = every_dtype()
        c = self.ckpt(keep="L3=5")
        # The header (and slot) size follows the step's digit count: for these tensors it is
        # 1160 bytes up to step 9999 and 1168 from 10000 on, so the last save needs a new layout.
        steps = (9, 10, 10000)
        for step in steps:
            c.save(step, tensors)
            c.wait()
            self.assertEqual(c.errors(), [])
            l1_rec = json.loads((self.l1 / "job" / f"step-{step:010d}" / "rank-00000.json").read_text())
            self.assert_reference_loads(self.l1 / "job" / l1_rec["file"], tensors, step)
            self.assert_reference_loads(l3_shard(self.l3, step), tensors, step)
        sizes = [struct.unpack_from("<Q", l3_shard(self.l3, s).read_bytes())[0] for s in steps]
        self.assertEqual(sizes, [1160, 1160, 1168])
        back = c.load_latest()
        self.assertEqual(back.pop("__cube__")["step"], 10000)
        assert_state_equal(self, tensors, back)

    def test_files_the_reference_library_writes_decode_in_cube_bit_for_bit(self) -> None:
        tensors = every_dtype()
        path = self.l3 / "reference.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt", "source": "reference"})
        meta, back = cube.decode_shard(bytearray(path.read_bytes()), str(path))
        self.assertEqual(meta, {"format": "pt", "source": "reference"})
        self.assertEqual(sorted(back), sorted(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(back[name].shape, t.shape, name)
            self.assertEqual(bits(back[name]), bits(t), name)


if __name__ == "__main__":
    unittest.main()
