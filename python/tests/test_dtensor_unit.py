"""DTensor leaves of a Checkpointer state in one process (a 1-rank gloo group): the encoding,
the restore onto the given mesh, and the refusals that need no other rank. The multi-rank
behaviour (FSDP2, tensor parallel, other world sizes) is test_dtensor.py's.
"""

from __future__ import annotations

import copy
import unittest

import torch

import cube
from helpers import LevelsTestCase

_VERSION = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
if _VERSION < (2, 4):
    raise unittest.SkipTest(f"DTensor state needs torch >= 2.4, not {torch.__version__}")

import torch.distributed as dist  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor  # noqa: E402


class DTensorStateTest(LevelsTestCase):
    owns_group = False

    @classmethod
    def setUpClass(cls) -> None:
        if not dist.is_initialized():
            dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
            cls.owns_group = True

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.owns_group:
            dist.destroy_process_group()

    def state(self) -> tuple[dict[str, object], object]:
        mesh = init_device_mesh("cpu", (1,), mesh_dim_names=("dp",))
        torch.manual_seed(3)
        return {
            "w": distribute_tensor(torch.randn(5, 3), mesh, [Shard(0)]),
            "r": distribute_tensor(torch.arange(4, dtype=torch.int64), mesh, [Replicate()]),
            "plain": torch.ones(2),
            "step": 7,
        }, mesh

    def test_a_dtensor_state_is_written_as_cube_state_2_with_its_layout_and_mesh(self) -> None:
        state, _ = self.state()
        flat = cube.flatten_state(state)
        extra = flat.extra()
        self.assertEqual(extra["format"], "cube.state/2")
        self.assertEqual(extra["meshes"], [{"device": "cpu", "shape": [1], "dims": ["dp"], "ranks": [0]}])
        self.assertEqual(
            extra["tree"]["w"],
            {
                "$dtensor": "w",
                "mesh": 0,
                "placements": ["S(0)"],
                "shape": [5, 3],
                "stride": [3, 1],
                "offset": [0, 0],
            },
        )
        self.assertEqual(extra["tree"]["plain"], {"$tensor": "plain"})
        names = [(n, type(t).__name__) for n, t in flat.tensors]
        self.assertEqual(names, [("w", "Tensor"), ("r", "Tensor"), ("plain", "Tensor")])

    def test_a_state_without_dtensors_keeps_the_cube_state_1_encoding(self) -> None:
        extra = cube.flatten_state({"plain": torch.ones(2), "n": 1}).extra()
        self.assertEqual(extra, {"format": "cube.state/1", "tree": {"plain": {"$tensor": "plain"}, "n": 1}})

    def test_load_latest_rebuilds_dtensors_on_the_given_mesh(self) -> None:
        state, mesh = self.state()
        c = self.ckpt()
        c.save(1, state)
        c.wait()
        back = self.ckpt().load_latest(device_mesh=mesh)
        for key in ("w", "r"):
            self.assertIsInstance(back[key], DTensor)
            self.assertEqual(back[key].placements, state[key].placements)
            self.assertIs(back[key].device_mesh, mesh)
            self.assertTrue(torch.equal(back[key].full_tensor(), state[key].full_tensor()))
        self.assertNotIsInstance(back["plain"], DTensor)
        self.assertEqual(back["step"], 7)

    def test_load_latest_refuses_a_mesh_with_other_dim_names_or_none(self) -> None:
        state, _ = self.state()
        c = self.ckpt()
        c.save(1, state)
        c.wait()
        other = init_device_mesh("cpu", (1,), mesh_dim_names=("tp",))
        with self.assertRaises(cube.CheckpointError) as cm:
            self.ckpt().load_latest(device_mesh=other)
        self.assertEqual(cm.exception.code, "INFEASIBLE")
        self.assertIn("was saved on mesh (1,) dims ('dp',)", cm.exception.message)
        with self.assertRaises(cube.CheckpointError) as cm:
            self.ckpt().load_latest()
        self.assertEqual(cm.exception.code, "INVALID_VALUE")
        self.assertEqual(cm.exception.where["field"], "device_mesh")

    def test_a_malformed_dtensor_entry_is_an_invalid_file(self) -> None:
        state, _ = self.state()
        flat = cube.flatten_state(state)
        tensors = dict(flat.tensors)
        bad = copy.deepcopy(flat.extra())
        del bad["tree"]["w"]["offset"]
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.unflatten_state(bad, tensors)
        self.assertEqual((cm.exception.code, cm.exception.where), ("INVALID_FILE", {"path": "w"}))
        unknown = copy.deepcopy(flat.extra())
        unknown["tree"]["w"]["placements"] = ["X(0)"]
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.unflatten_state(unknown, tensors)
        self.assertEqual((cm.exception.code, cm.exception.where), ("INVALID_FILE", {"path": "w"}))
        no_meshes = copy.deepcopy(flat.extra())
        del no_meshes["meshes"]
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.unflatten_state(no_meshes, tensors)
        self.assertEqual(cm.exception.code, "INVALID_FILE")


if __name__ == "__main__":
    unittest.main()
