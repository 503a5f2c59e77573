"""RNG capture/restore and the resumable sampler."""

from __future__ import annotations

import json
import random
import unittest

import numpy as np
import torch

from cube.determinism import ShuffledSampler, capture_rng, mix_seed, restore_rng, seed_everything


def draws(gens: dict) -> list:
    return [
        random.random(),
        random.gauss(0, 1),
        np.random.rand(3).tolist(),
        np.random.standard_normal(),
        torch.rand(3).tolist(),
        torch.randn(2, generator=gens["torch"]).tolist(),
        gens["numpy"].random(2).tolist(),
        gens["python"].random(),
        torch.nn.functional.dropout(torch.ones(8), 0.5).tolist(),
    ]


class DeterminismTest(unittest.TestCase):
    def tearDown(self) -> None:
        torch.use_deterministic_algorithms(False)

    def test_restore_reproduces_the_next_draws(self) -> None:
        seed_everything(11)
        gens = {
            "torch": torch.Generator().manual_seed(5),
            "numpy": np.random.default_rng(6),
            "python": random.Random(7),
        }
        random.gauss(0, 1)  # leaves a cached gaussian in Python's state
        np.random.standard_normal()  # and in NumPy's
        state = json.loads(json.dumps(capture_rng(gens)))  # must be plain JSON
        first = draws(gens)
        draws(gens)  # move everything on
        restore_rng(state, gens)
        self.assertEqual(draws(gens), first)

    def test_seed_everything_is_repeatable(self) -> None:
        seed_everything(3)
        a = (random.random(), np.random.rand(), torch.rand(1).item())
        seed_everything(3)
        self.assertEqual(a, (random.random(), np.random.rand(), torch.rand(1).item()))
        self.assertTrue(torch.are_deterministic_algorithms_enabled())

    def test_sampler_resumes_where_it_stopped_and_shards_ranks(self) -> None:
        full = ShuffledSampler(50, 4, seed=9)
        expected = [full.next_batch() for _ in range(30)]  # crosses several epochs
        resumed = ShuffledSampler(50, 4, seed=9)
        got = [resumed.next_batch() for _ in range(13)]
        saved = json.loads(json.dumps(resumed.state_dict()))
        again = ShuffledSampler(50, 4, seed=9)
        again.load_state_dict(saved)
        got += [again.next_batch() for _ in range(17)]
        self.assertEqual(got, expected)
        r0 = ShuffledSampler(50, 2, seed=9, rank=0, world_size=2)
        r1 = ShuffledSampler(50, 2, seed=9, rank=1, world_size=2)
        self.assertEqual(r0.next_batch() + r1.next_batch(), expected[0])

    def test_epoch_seeds_do_not_collide_like_a_sum(self) -> None:
        self.assertNotEqual(mix_seed(1, 0), mix_seed(0, 1))


if __name__ == "__main__":
    unittest.main()
