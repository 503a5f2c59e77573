"""Flatten/unflatten: tensor names, exact non-tensor leaves, JSON round trips."""

from __future__ import annotations

import json
import math
import unittest
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

import cube
from helpers import assert_state_equal, small_state


def round_trip(state: Any, through_js: bool = False) -> Any:
    """Flatten, write the shard and the JSON, read both back, unflatten."""
    flat = cube.flatten_state(state)
    raw = bytearray(cube.encode_shard(flat.tensors, "job", 7, 0))
    text = json.dumps(flat.extra())
    extra = json.loads(text)
    if through_js:
        extra = json.loads(js_reserialize(text))
    _, tensors = cube.decode_shard(raw, "mem")
    return cube.unflatten_state(extra, tensors)


def js_reserialize(text: str) -> str:
    """What JSON.parse + JSON.stringify do to numbers: one double type, integral values without
    a fraction, key order with integer-like keys first."""

    def conv(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            f = float(v)
            return int(f) if f.is_integer() and abs(f) < 1e21 else f
        if isinstance(v, list):
            return [conv(x) for x in v]
        idx = sorted((k for k in v if k.isdigit()), key=int)
        rest = [k for k in v if not k.isdigit()]
        return {k: conv(v[k]) for k in idx + rest}

    return json.dumps(conv(json.loads(text)))


class FlattenTest(unittest.TestCase):
    def test_names_follow_the_spec(self) -> None:
        flat = cube.flatten_state(small_state(1))
        names = [n for n, _ in flat.tensors]
        self.assertIn("model/0.weight", names)
        self.assertIn("optimizer/state/0/exp_avg", names)
        self.assertIn("optimizer/state/3/exp_avg_sq", names)

    def test_adamw_state_round_trips_bit_exactly(self) -> None:
        state = small_state(2)
        back = round_trip(state)
        assert_state_equal(self, state, back)
        # int keys of optimizer state stay ints; hyper-parameters keep their types.
        self.assertEqual(sorted(back["optimizer"]["state"]), [0, 1, 2, 3])
        group = back["optimizer"]["param_groups"][0]
        self.assertIsInstance(group["betas"], tuple)
        self.assertIsInstance(group["lr"], float)
        self.assertIsInstance(group["params"][0], int)
        self.assertEqual(back["model"]._metadata, state["model"]._metadata)

    def test_a_restored_optimizer_continues_identically(self) -> None:
        torch.manual_seed(3)
        model = torch.nn.Linear(5, 5)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(2):
            opt.zero_grad()
            model(torch.randn(4, 5)).square().sum().backward()
            opt.step()
        saved = round_trip({"m": model.state_dict(), "o": opt.state_dict()})
        twin = torch.nn.Linear(5, 5)
        twin_opt = torch.optim.AdamW(twin.parameters(), lr=1e-2)
        twin.load_state_dict(saved["m"])
        twin_opt.load_state_dict(saved["o"])
        x = torch.randn(4, 5)
        for m, o in ((model, opt), (twin, twin_opt)):
            o.zero_grad()
            m(x).square().sum().backward()
            o.step()
        self.assertTrue(torch.equal(model.weight, twin.weight))

    def test_non_tensor_leaves_come_back_exactly(self) -> None:
        state = {
            "ints": [0, -1, 2**53 - 1, 2**53, -(2**70)],
            "floats": [
                0.1,
                1.0,
                -0.0,
                math.inf,
                -math.inf,
                1e300,
                5e-324,
                float.fromhex("0x1.fffffffffffffp+1023"),
            ],
            "tuple": (1, (2.5, "x")),
            "size": torch.Size([3, 4]),
            "dtype": torch.bfloat16,
            "device": torch.device("cpu"),
            "none": None,
            "flags": [True, False],
            "bytes": b"\x00\xff",
            "int_keys": {0: "a", 10: "b", 2: "c"},
            "index_like": {"10": 1, "2": 2, "b": 3},
            "dollar": {"$float": 1},
            "od": OrderedDict([("z", 1), ("a", 2)]),
            "nested": [{"t": torch.arange(3)}, (torch.ones(2, dtype=torch.bool),)],
            "np": np.arange(4, dtype=np.int32),
            "empty": torch.zeros(0, 3),
            "scalar": torch.tensor(2.5, dtype=torch.float64),
        }
        for through_js in (False, True):
            back = round_trip(state, through_js)
            for key in (
                "ints",
                "tuple",
                "size",
                "dtype",
                "device",
                "none",
                "flags",
                "bytes",
                "int_keys",
                "index_like",
                "dollar",
                "od",
            ):
                assert_state_equal(self, state[key], back[key], key)
            self.assertEqual([f.hex() for f in state["floats"]], [f.hex() for f in back["floats"]])
            self.assertEqual(list(back["int_keys"]), [0, 10, 2])
            self.assertEqual(list(back["index_like"]), ["10", "2", "b"])
            self.assertTrue(torch.equal(back["nested"][0]["t"], torch.arange(3)))
            self.assertIsInstance(back["nested"][1], tuple)
            self.assertIsInstance(back["np"], np.ndarray)
            self.assertEqual(back["empty"].shape, (0, 3))
            self.assertEqual(back["scalar"].item(), 2.5)

    def test_nan_keeps_its_bits(self) -> None:
        nan = float("nan")
        back = round_trip({"x": nan}, through_js=True)
        self.assertTrue(math.isnan(back["x"]))

    def test_colliding_names_are_refused_with_the_path(self) -> None:
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.flatten_state({"a": {0: torch.ones(1), "0": torch.ones(1)}})
        self.assertEqual(cm.exception.code, "INVALID_VALUE")
        self.assertIn("a/0", str(cm.exception))

    def test_unsupported_values_name_their_path(self) -> None:
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.flatten_state({"a": [1, {"b": object()}]})
        self.assertEqual(cm.exception.where["path"], "a/1/b")
        with self.assertRaises(cube.CheckpointError):
            cube.flatten_state({"c": torch.zeros(2, dtype=torch.complex64)})
        with self.assertRaises(cube.CheckpointError):
            cube.flatten_state(torch.ones(1))


if __name__ == "__main__":
    unittest.main()
