// `cube chaos` end to end (issue 14, "a chaos command for users"): a short seeded campaign
// against a real training job on a cluster of `cube agent` processes and a `cube server` child,
// run as a user runs it, with its report's invariants checked here, not only its shape.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ChaosReport } from '../../src/cli/chaos/report.ts';
import { findRankProcesses } from '../../src/cli/chaos/rank-processes.ts';
import { pythonInterpreter } from '../../src/core/index.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const python = pythonInterpreter();
const hasTorch =
  spawnSync(python, ['-c', 'import torch, numpy, xxhash'], { encoding: 'utf8' }).status === 0;

function campaignDirs(): Set<string> {
  const found = new Set<string>();
  for (const root of [tmpdir(), '/dev/shm'])
    if (existsSync(root))
      for (const name of readdirSync(root))
        if (name.startsWith('cube-chaos-')) found.add(join(root, name));
  return found;
}

test(
  'cube chaos --json runs a seeded campaign of rank kills, control-plane kills and corrupted shards, and every invariant holds',
  { skip: hasTorch ? false : `${python} cannot import torch, numpy and xxhash`, timeout: 900_000 },
  async () => {
    const before = campaignDirs();
    // Seed 10 with these kinds, a 12 s mean interval and 60 s of training between faults plans a
    // corrupted shard, a control-plane kill and a rank kill (the schedule is a function of the
    // seed; recoveries come on top of the 60 s).
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin/cube.js'),
        'chaos',
        '--json',
        '--seed',
        '10',
        '--duration',
        '60s',
        '--nodes',
        '3',
        '--spares',
        '1',
        '--faults',
        'rank-kill,control-plane-kill,corrupt-shard',
        '--mean-interval-s',
        '12',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const report = JSON.parse(stdout) as ChaosReport;
    assert.deepEqual(report.violations, [], `${stdout}\n${stderr}`);
    assert.equal(code, 0, stderr);
    assert.equal(report.ok, true);
    assert.equal(report.seed, 10);
    const kinds = new Set(report.faults.map((f) => f.kind));
    for (const kind of ['rank-kill', 'control-plane-kill', 'corrupt-shard'])
      assert.ok(kinds.has(kind as never), `a ${kind} was injected: ${[...kinds].join(', ')}`);
    for (const f of report.faults) {
      assert.equal(f.timedOut, false);
      if (f.kind === 'control-plane-kill') {
        // Not a recovery: training goes on while the control plane is down and restarting.
        assert.equal(f.recoverySeconds, null, JSON.stringify(f));
        const trained = /rank 0 trained steps (\d+) to (\d+)/.exec(f.note ?? '');
        assert.ok(trained !== null, `fault ${f.index} says how far training got: ${f.note}`);
        assert.ok(Number(trained[2]) > Number(trained[1]), `training went on: ${f.note}`);
      } else assert.notEqual(f.recoverySeconds, null, `fault ${f.index} (${f.kind}) was measured`);
      if (f.kind === 'rank-kill' || f.kind === 'corrupt-shard') {
        // An application failure: detected, classified so, restarted in place.
        assert.equal(f.classification, 'application', JSON.stringify(f));
        assert.deepEqual(f.cordoned, []);
        assert.equal(f.sparesTaken, 0);
        assert.ok(f.restarts >= 1);
      }
      if (f.kind === 'control-plane-kill') assert.equal(f.detected, false, JSON.stringify(f));
    }
    assert.ok(report.corruption.injected >= 1, 'a shard was corrupted');
    assert.equal(report.corruption.caught, report.corruption.injected);
    assert.ok((report.replay.referenceSteps ?? 0) > 0, 'steps were compared with the reference');
    assert.equal(report.replay.referenceDifference, null);
    assert.equal(report.replay.crossAttemptDifference, null);
    assert.ok(report.replay.crossAttemptSteps > 0, 'steps were run again after restores');
    assert.deepEqual(report.checkpoints.lost, []);
    assert.ok(report.checkpoints.l3Checked > 0, 'retained L3 checkpoints were verified');
    // Everything it started is gone: processes of its jobs, its temp and /dev/shm directories.
    assert.deepEqual(findRankProcesses(report.job.id), []);
    assert.deepEqual(
      [...campaignDirs()].filter((d) => !before.has(d)),
      [],
    );
  },
);
