"""The checkpointer against real files: L1 slots, L3 copies, manifests, fallbacks, retention."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import torch

import cube
import cube.checkpointer as checkpointer_module
from cube.config import load_config
from cube.layout import LevelPaths
from cube.priority import thread_nice
from cube.retention import collect
from helpers import PYTHON, LevelsTestCase, assert_state_equal, flip_byte, small_state, subprocess_env


def slot_of(l1: Path, step: int, rank: int = 0) -> Path:
    """The slot file the L1 record of `step` names."""
    rec = json.loads((l1 / "job" / f"step-{step:010d}" / f"rank-{rank:05d}.json").read_text())
    return l1 / "job" / rec["file"]


def l3_shard(l3: Path, step: int, rank: int = 0) -> Path:
    return l3 / "job" / f"step-{step:010d}" / f"rank-{rank:05d}.safetensors"


def manifest(root: Path, step: int) -> Path:
    return root / "job" / f"step-{step:010d}" / "manifest.json"


class SaveLoadTest(LevelsTestCase):
    def test_nothing_to_resume_gives_none(self) -> None:
        self.assertIsNone(self.ckpt().load_latest())

    def test_round_trip_from_l1_and_files_follow_the_format(self) -> None:
        c = self.ckpt()
        for step in (1, 2, 3):
            c.save(step, small_state(step, step))
        c.wait()
        self.assertEqual(c.errors(), [])
        back = c.load_latest()
        self.assertEqual(
            back.pop("__cube__"), {"step": 3, "timeline": 0, "level": "L1", "source": str(slot_of(self.l1, 3))}
        )
        assert_state_equal(self, small_state(3, 3), back)
        # L1 holds the two slots' steps; L3 every save (l3_every=1, keep 3).
        self.assertEqual(LevelPaths(self.l1, "job").steps(), [2, 3])
        self.assertEqual(LevelPaths(self.l3, "job").steps(), [1, 2, 3])
        rec = json.loads((self.l1 / "job/step-0000000003/rank-00000.json").read_text())
        self.assertEqual(rec["format"], "cube.shard/1")
        self.assertRegex(rec["file"], r"^slots/rank-00000/slot-[01]\.safetensors$")
        self.assertEqual(rec["bytes"], slot_of(self.l1, 3).stat().st_size)
        m = cube.read_manifest(manifest(self.l3, 3), level="L3")
        self.assertEqual(m["shards"][0]["file"], "step-0000000003/rank-00000.safetensors")
        self.assertEqual(m["shards"][0]["xxh3"], rec["xxh3"])
        self.assertEqual(m["layout"], {"tp": 1, "pp": 1, "dp": 1})

    def test_slots_are_reused_and_resized_only_when_the_layout_changes(self) -> None:
        c = self.ckpt(l3_dir=None)
        c.save(1, {"w": torch.ones(100)})
        c.save(2, {"w": torch.ones(100)})
        c.wait()
        inodes = {p.name: p.stat().st_ino for p in (self.l1 / "job/slots/rank-00000").iterdir()}
        c.save(3, {"w": torch.zeros(100)})
        c.save(4, {"w": torch.zeros(300)})
        c.wait()
        after = {p.name: p.stat().st_ino for p in (self.l1 / "job/slots/rank-00000").iterdir()}
        self.assertEqual(inodes, after)
        self.assertEqual(c.load_latest()["w"].shape, (300,))

    def test_without_the_interval_l3_takes_the_steps_that_are_multiples_of_l3_every(self) -> None:
        c = self.ckpt(l3_every=2)
        for step in range(1, 6):
            c.save(step, {"x": torch.tensor([step])})
        c.wait()
        self.assertEqual(LevelPaths(self.l3, "job").steps(), [2, 4])

    def test_a_restarted_checkpointer_persists_the_same_l3_steps_as_one_that_ran_through(self) -> None:
        # Counting saves made a restarted rank persist other steps than its peers (issue 14):
        # with every_steps=5 and l3_every=2, L3 takes steps 10, 20, 30 whoever saves them.
        first = self.ckpt(l3_every=2, every_steps=5, keep="L3=5")
        for step in (5, 10, 15):
            first.save(step, {"x": torch.tensor([step])})
        first.close()
        again = self.ckpt(l3_every=2, every_steps=5, keep="L3=5")
        for step in (20, 25, 30):
            again.save(step, {"x": torch.tensor([step])})
        again.close()
        self.assertEqual(LevelPaths(self.l3, "job").steps(), [10, 20, 30])

    def test_retention_keeps_the_newest_k_complete_l3_steps(self) -> None:
        c = self.ckpt(keep="L3=2")
        for step in range(1, 6):
            c.save(step, {"x": torch.tensor([step])})
        c.wait()
        self.assertEqual(LevelPaths(self.l3, "job").steps(), [4, 5])

    def test_the_background_thread_runs_at_a_lower_priority_than_training(self) -> None:
        if thread_nice() is None:
            self.skipTest("per-thread nice values exist on Linux only")
        seen: list[int | None] = []
        real_finish = checkpointer_module.Checkpointer._finish

        def finish(c: cube.Checkpointer, job: Any) -> None:
            seen.append(thread_nice())
            real_finish(c, job)

        with mock.patch.object(checkpointer_module.Checkpointer, "_finish", finish):
            for job, kw in (("default", {}), ("same", {"background_nice": 0})):
                c = self.ckpt(job=job, **kw)
                c.save(1, small_state(1))
                c.wait()
                self.assertEqual(c.errors(), [])
        self.assertEqual(seen, [10, 0])
        self.assertEqual(thread_nice(), 0, "the training thread keeps its priority")
        with self.assertRaises(cube.CheckpointError) as cm:
            self.ckpt(background_nice=20)
        self.assertEqual(cm.exception.where["field"], "background_nice")

    def test_the_background_thread_runs_on_its_own_cpus_while_training_keeps_its_own(self) -> None:
        if not hasattr(os, "sched_getaffinity"):
            self.skipTest("per-thread CPU affinity exists on Linux only")
        mine = os.sched_getaffinity(0)
        last = max(mine)
        seen: list[set[int]] = []
        real_finish = checkpointer_module.Checkpointer._finish

        def finish(c: cube.Checkpointer, job: Any) -> None:
            seen.append(os.sched_getaffinity(0))
            real_finish(c, job)

        with mock.patch.object(checkpointer_module.Checkpointer, "_finish", finish):
            with mock.patch.dict(os.environ, {"CUBE_CKPT_CPUS": str(last)}):
                c = self.ckpt(job="env")
            c.save(1, small_state(1))
            c.wait()
            c = self.ckpt(job="unset")
            c.save(1, small_state(1))
            c.wait()
            self.assertEqual(c.errors(), [])
        self.assertEqual(seen, [{last}, mine])
        self.assertEqual(os.sched_getaffinity(0), mine, "the training thread keeps its CPUs")
        for value, message in (
            ("1-a", r"'1-a' in '1-a' is not a CPU number or range"),
            ("3-1", r"the range '3-1' in '3-1' is backwards"),
            (str(os.cpu_count()), rf"CPU {os.cpu_count()} does not exist"),
        ):
            with mock.patch.dict(os.environ, {"CUBE_CKPT_CPUS": value}):
                with self.assertRaisesRegex(cube.CheckpointError, message) as cm:
                    self.ckpt()
            self.assertEqual(cm.exception.where["field"], "CUBE_CKPT_CPUS")
        with self.assertRaisesRegex(cube.CheckpointError, "no CPU given"):
            self.ckpt(background_cpus=[])

    def test_a_failed_l1_write_raises_from_wait(self) -> None:
        c = self.ckpt()
        with mock.patch.object(
            checkpointer_module, "atomic_write_json", side_effect=OSError(28, "No space left")
        ):
            c.save(1, {"x": torch.ones(1)})
            with self.assertRaises(cube.CheckpointError) as cm:
                c.wait()
        self.assertIn("step 1", str(cm.exception))


class FallbackTest(LevelsTestCase):
    def save_steps(self, steps: int = 2) -> None:
        c = self.ckpt()
        for step in range(1, steps + 1):
            c.save(step, small_state(step, step))
        c.close()

    def test_flipped_byte_in_l1_falls_back_to_the_l3_copy_of_the_same_step(self) -> None:
        self.save_steps()
        flip_byte(slot_of(self.l1, 2))
        c = self.ckpt()
        back = c.load_latest()
        self.assertEqual(back["__cube__"]["step"], 2)
        self.assertEqual(back["__cube__"]["level"], "L3")
        assert_state_equal(self, small_state(2, 2)["model"], back["model"])
        self.assertTrue(
            any(str(slot_of(self.l1, 2)) in str(e) and "XXH3" in str(e) for e in c.errors()), c.errors()
        )

    def test_flipped_byte_at_every_level_falls_back_to_the_previous_step(self) -> None:
        self.save_steps()
        flip_byte(slot_of(self.l1, 2))
        flip_byte(l3_shard(self.l3, 2), 100)
        back = self.ckpt().load_latest()
        self.assertEqual(back["__cube__"]["step"], 1)
        assert_state_equal(self, small_state(1, 1)["optimizer"], back["optimizer"])

    def test_truncated_manifests_are_rejected_naming_the_file(self) -> None:
        self.save_steps()
        for root in (self.l1, self.l3):
            path = manifest(root, 2)
            path.write_bytes(path.read_bytes()[:40])
        with self.assertRaises(cube.CheckpointError) as cm:
            cube.read_manifest(manifest(self.l3, 2))
        self.assertEqual(cm.exception.code, "INVALID_FILE")
        self.assertIn(str(manifest(self.l3, 2)), str(cm.exception))
        c = self.ckpt()
        with self.assertWarns(cube.CheckpointWarning):
            back = c.load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["step"], 1)
        text = "\n".join(map(str, c.errors()))
        self.assertIn(str(manifest(self.l1, 2)), text)
        self.assertIn(str(manifest(self.l3, 2)), text)

    def test_a_manifest_lying_about_sizes_is_rejected_naming_the_file(self) -> None:
        self.save_steps()
        for root in (self.l1, self.l3):
            path = manifest(root, 2)
            m = json.loads(path.read_text())
            m["shards"][0]["bytes"] += 64
            path.write_text(json.dumps(m))
        slot = slot_of(self.l1, 2)
        c = self.ckpt()
        back = c.load_latest()
        self.assertEqual(back["__cube__"]["step"], 1)
        text = "\n".join(map(str, c.errors()))
        self.assertIn(str(manifest(self.l3, 2)), text)  # L3: incomplete by the spec's definition
        self.assertIn(str(slot), text)  # L1: the shard's size does not match

    def test_node_loss_restores_from_l3(self) -> None:
        self.save_steps(3)
        shutil.rmtree(self.l1 / "job")
        back = self.ckpt().load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["level"]), (3, "L3"))

    def test_an_abandoned_timeline_is_pruned_so_its_steps_can_be_saved_again(self) -> None:
        self.save_steps(3)
        flip_byte(slot_of(self.l1, 3))
        flip_byte(l3_shard(self.l3, 3))
        c = self.ckpt()
        self.assertEqual(c.load_latest()["__cube__"]["step"], 2)
        self.assertFalse(manifest(self.l1, 3).exists())
        self.assertFalse(manifest(self.l3, 3).exists())
        c.save(3, {"fresh": torch.ones(2)})
        c.wait()
        back = self.ckpt().load_latest()
        self.assertEqual(back["__cube__"]["step"], 3)
        self.assertIn("fresh", back)


class TimelineTest(LevelsTestCase):
    """Issue 13, finding 5: every save carries its run's timeline; records of two never combine."""

    def save_steps(self, steps: int) -> None:
        c = self.ckpt()
        for step in range(1, steps + 1):
            c.save(step, small_state(step, step))
        c.close()

    def record(self, root: Path, step: int, rank: int = 0) -> dict[str, Any]:
        return json.loads((root / "job" / f"step-{step:010d}" / f"rank-{rank:05d}.json").read_text())

    def test_a_fresh_run_saves_the_attempt_as_its_timeline(self) -> None:
        c = self.ckpt(attempt=3)
        c.save(1, {"x": torch.ones(1)})
        c.wait()
        self.assertEqual(self.record(self.l1, 1)["timeline"], 3)
        self.assertEqual(json.loads(manifest(self.l1, 1).read_text())["timeline"], 3)
        self.assertEqual(json.loads(manifest(self.l3, 1).read_text())["timeline"], 3)

    def test_a_plain_resume_keeps_the_restored_timeline(self) -> None:
        c = self.ckpt(attempt=2)
        c.save(1, {"x": torch.ones(1)})
        c.close()
        again = self.ckpt(attempt=0)
        back = again.load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["timeline"]), (1, 2))
        self.assertEqual(again.timeline, 2)

    def test_restarting_from_an_older_step_starts_a_new_timeline_and_prunes_the_newer_steps(self) -> None:
        self.save_steps(3)
        flip_byte(slot_of(self.l1, 3))
        flip_byte(l3_shard(self.l3, 3))
        c = self.ckpt()
        back = c.load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["timeline"]), (2, 0))
        self.assertEqual(c.timeline, 1)
        self.assertFalse((self.l3 / "job" / "step-0000000003").exists())
        c.save(3, {"fresh": torch.ones(2)})
        c.wait()
        self.assertEqual(self.record(self.l1, 3)["timeline"], 1)
        self.assertEqual(json.loads(manifest(self.l3, 3).read_text())["timeline"], 1)
        back = self.ckpt().load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["timeline"]), (3, 1))

    def test_a_fresh_start_beside_older_steps_is_a_new_timeline(self) -> None:
        self.save_steps(2)
        for step in (1, 2):
            flip_byte(slot_of(self.l1, step))
            flip_byte(l3_shard(self.l3, step))
        c = self.ckpt()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cube.CheckpointWarning)
            self.assertIsNone(c.load_latest())
        self.assertEqual(c.timeline, 1)

    def test_records_of_two_timelines_never_make_a_local_manifest(self) -> None:
        opts = {"world_size": 2, "local_ranks": [0, 1], "l3_dir": None}
        old, new = self.ckpt(rank=1, attempt=0, **opts), self.ckpt(rank=0, attempt=1, **opts)
        old.save(5, {"x": torch.tensor([0.0])})
        old.wait()
        new.save(5, {"x": torch.tensor([1.0])})
        new.wait()
        self.assertEqual((self.record(self.l1, 5, 0)["timeline"], self.record(self.l1, 5, 1)["timeline"]), (1, 0))
        self.assertFalse(manifest(self.l1, 5).exists())

    def test_shards_records_manifests_and_slots_are_private_to_the_user(self) -> None:
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        c = self.ckpt()
        c.save(1, {"x": torch.ones(1)})
        c.wait()
        files = [
            self.l1 / "job" / "step-0000000001" / "rank-00000.json",
            manifest(self.l1, 1),
            slot_of(self.l1, 1),
            l3_shard(self.l3, 1),
            self.l3 / "job" / "step-0000000001" / "rank-00000.json",
            manifest(self.l3, 1),
        ]
        for f in files:
            self.assertEqual(os.stat(f).st_mode & 0o777, 0o600, f)
        for d in (self.l1 / "job", self.l1 / "job" / "slots", self.l1 / "job" / "step-0000000001"):
            self.assertEqual(os.stat(d).st_mode & 0o777, 0o700, d)

    def test_an_l1_directory_others_may_write_to_is_refused(self) -> None:
        os.chmod(self.l1, 0o777)
        with self.assertRaises(cube.CheckpointError) as cm:
            self.ckpt()
        self.assertIn("writable by every user", str(cm.exception))
        self.assertEqual(cm.exception.where["file"], str(self.l1))


class SlotSafetyTest(LevelsTestCase):
    def two_ranks(self, timeout: float) -> tuple[cube.Checkpointer, cube.Checkpointer]:
        opts = {"world_size": 2, "local_ranks": [0, 1], "l3_dir": None, "commit_timeout_s": timeout}
        return self.ckpt(rank=0, **opts), self.ckpt(rank=1, **opts)

    def test_slot_reuse_never_overwrites_the_newest_complete_step(self) -> None:
        r0, r1 = self.two_ranks(timeout=0.3)
        for c in (r0, r1):
            c.save(1, {"x": torch.tensor([1.0])})
            c.wait()
        self.assertTrue(manifest(self.l1, 1).exists())
        r0.save(2, {"x": torch.tensor([2.0])})  # rank 1 never saves step 2
        with self.assertWarns(cube.CheckpointWarning):
            r0.save(3, {"x": torch.tensor([3.0])})
        r0.wait()
        # Step 1 is still complete and verifies; step 2 was given up, not step 1.
        self.assertTrue(manifest(self.l1, 1).exists())
        self.assertTrue(any("L1 step 2" in str(e) for e in r0.errors()))
        fresh = self.ckpt(rank=0, world_size=2, local_ranks=[0, 1], l3_dir=None)
        back = fresh.load_latest(prune_newer=False)
        self.assertEqual((back["__cube__"]["step"], back["x"].item()), (1, 1.0))

    def test_a_save_waits_for_the_other_local_ranks_to_commit_before_reusing_a_slot(self) -> None:
        r0, r1 = self.two_ranks(timeout=30)
        for c in (r0, r1):
            c.save(1, {"x": torch.tensor([1.0])})
            c.wait()
        r0.save(2, {"x": torch.tensor([2.0])})
        late = threading.Timer(0.2, lambda: (r1.save(2, {"x": torch.tensor([2.0])}), r1.wait()))
        late.start()
        t0 = time.monotonic()
        r0.save(3, {"x": torch.tensor([3.0])})
        waited = time.monotonic() - t0
        late.join()
        r0.wait()
        self.assertGreater(waited, 0.1)
        self.assertEqual(r0.errors(), [])
        self.assertFalse(manifest(self.l1, 1).exists(), "step 1's slot was reused after step 2 completed")
        back = self.ckpt(rank=1, world_size=2, local_ranks=[0, 1], l3_dir=None).load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["step"], 2)

    def test_a_restore_on_another_world_size_is_refused_and_keeps_the_checkpoint(self) -> None:
        # Before: the ranks without a shard of their own made every rank start fresh, and
        # prune_newer then deleted the steps saved by the old world size at L1 and L3.
        c = self.ckpt()
        for step in (1, 2):
            c.save(step, {"x": torch.tensor([float(step)])})
        c.wait()
        with self.assertRaises(cube.CheckpointError) as caught:
            self.ckpt(world_size=2, local_ranks=[0]).load_latest()
        self.assertEqual(caught.exception.code, "INFEASIBLE")
        self.assertIn("saved by 1 ranks; this run has 2", str(caught.exception))
        self.assertIn("cube.dcp", str(caught.exception))
        self.assertTrue(manifest(self.l1, 2).exists())
        back = self.ckpt().load_latest()
        self.assertEqual((back["__cube__"]["step"], back["x"].item()), (2, 2.0))

    def test_a_torn_save_leaves_the_previous_complete_step(self) -> None:
        script = textwrap.dedent(
            f"""
            import os, signal
            import cube, cube.checkpointer as cp
            from helpers import small_state
            c = cube.Checkpointer(job="job", rank=0, world_size=1, node="n", l1_dir={str(self.l1)!r}, l3_dir={str(self.l3)!r})
            c.save(1, small_state(1, 1)); c.save(2, small_state(2, 2)); c.wait()
            # Die after the slot holds step 3's bytes, before its record exists.
            cp.atomic_write_json = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
            c.save(3, small_state(3, 3)); c.wait()
            """
        )
        r = subprocess.run(
            [PYTHON, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=60
        )
        self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
        c = self.ckpt()
        back = c.load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["level"]), (2, "L1"))
        assert_state_equal(self, small_state(2, 2)["model"], back["model"])
        # The next save must not take step 2's slot.
        c.save(4, small_state(4, 4))
        c.wait()
        self.assertTrue(manifest(self.l1, 2).exists())
        self.assertEqual(self.ckpt().load_latest()["__cube__"]["step"], 4)


class L3FailureTest(LevelsTestCase):
    def test_an_unwritable_l3_is_reported_and_l1_keeps_working(self) -> None:
        blocker = self.l3 / "a-file"
        blocker.write_text("not a directory")
        c = self.ckpt(l3_dir=blocker / "l3")
        with self.assertWarns(cube.CheckpointWarning):
            for step in (1, 2):
                c.save(step, {"x": torch.tensor([float(step)])})
            c.wait()  # does not raise
        errs = [e for e in c.errors() if e.where.get("level") == "L3"]
        self.assertEqual(len(errs), 2)
        self.assertIn(str(blocker), str(errs[0]))
        back = c.load_latest()
        self.assertEqual((back["__cube__"]["step"], back["__cube__"]["level"]), (2, "L1"))

    def test_a_full_l3_keeps_earlier_checkpoints_intact(self) -> None:
        mnt = Path(tempfile.mkdtemp(prefix="cube-test-tmpfs-"))
        self.addCleanup(shutil.rmtree, mnt, True)
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
        )
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        self.addCleanup(subprocess.run, ["umount", str(mnt)], capture_output=True)
        c = self.ckpt(l3_dir=mnt)
        with self.assertWarns(cube.CheckpointWarning):
            for step in (1, 2, 3, 4):
                c.save(step, {"w": torch.full((20000,), float(step))})  # 80 KB per shard
            c.wait()
        self.assertTrue(any("L3" == e.where.get("level") for e in c.errors()))
        left = [p.name for p in (mnt / "job").rglob(".*")]
        self.assertEqual(left, [], "no temp files stay behind")
        shutil.rmtree(self.l1 / "job")
        back = self.ckpt(l3_dir=mnt).load_latest(prune_newer=False)
        self.assertEqual(back["__cube__"]["level"], "L3")
        self.assertIn(back["__cube__"]["step"], (2, 3))
        self.assertEqual(back["w"][0].item(), float(back["__cube__"]["step"]))


class RetentionTest(LevelsTestCase):
    def test_gc_never_removes_the_newest_complete_step(self) -> None:
        c = self.ckpt(keep="L3=4")
        for step in (1, 2, 3, 4):
            c.save(step, {"x": torch.tensor([step])})
        c.close()
        paths = LevelPaths(self.l3, "job")
        manifest(self.l3, 4).unlink()  # step 4: torn (no manifest), newer than the newest complete
        flip = manifest(self.l3, 3)
        m = json.loads(flip.read_text())
        m["shards"][0]["bytes"] = 1
        flip.write_text(json.dumps(m))  # step 3: lying, so not complete
        self.assertEqual(collect(paths, "L3", keep=1), [1])
        self.assertEqual(paths.steps(), [2, 3, 4])
        self.assertEqual(collect(paths, "L3", keep=1), [])


class ConfigTest(unittest.TestCase):
    def test_environment_contract(self) -> None:
        env = {
            "CUBE_JOB_ID": "gpt-small",
            "RANK": "3",
            "WORLD_SIZE": "4",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "CUBE_NODE": "node-b",
            "CUBE_CKPT_L1": "/dev/shm/x",
            "CUBE_CKPT_L3": "/mnt/l3",
            "CUBE_CKPT_L3_EVERY": "5",
            "CUBE_CKPT_KEEP": "L1=3,L3=4",
            "CUBE_CKPT_EVERY": "20",
        }
        with mock.patch.dict(os.environ, env, clear=True):
            c = load_config()
            self.assertEqual(c.every_steps, 20)
            self.assertEqual(
                (c.job, c.rank, c.world_size, c.local_ranks, c.node), ("gpt-small", 3, 4, [2, 3], "node-b")
            )
            self.assertEqual(
                (c.l1_dir, c.l3_dir, c.l3_every, c.keep, c.slots),
                ("/dev/shm/x", "/mnt/l3", 5, {"L1": 3, "L2": 2, "L3": 4}, 3),
            )
            self.assertEqual(load_config(rank=2, l3_dir="/other").l3_dir, "/other")
        with mock.patch.dict(os.environ, {}, clear=True):
            c = load_config()
            self.assertEqual(
                (c.job, c.rank, c.world_size, c.l1_dir, c.l3_dir, c.socket),
                ("local", 0, 1, "/dev/shm/cube", None, None),
            )
            self.assertIsNone(c.every_steps)
        with mock.patch.dict(os.environ, {"CUBE_CKPT_KEEP": "L3=0"}, clear=True), self.assertRaises(
            cube.CheckpointError
        ):
            load_config()
        with mock.patch.dict(os.environ, {"WORLD_SIZE": "two"}, clear=True), self.assertRaises(
            cube.CheckpointError
        ) as cm:
            load_config()
        self.assertEqual(cm.exception.where["field"], "WORLD_SIZE")


if __name__ == "__main__":
    unittest.main()
