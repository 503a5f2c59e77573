// The physical floors of bench:ckpt's rows (bench/ckpt/floor.ts): a figure that beats what the
// machine can do in the same run is FLOOR, and the bench fails naming the row and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { row, type Row } from '../../bench/ckpt/common.ts';
import { applyFloor, floorBroken, NOISE_TOLERANCE } from '../../bench/ckpt/floor.ts';

const repoRoot = new URL('../../', import.meta.url).pathname;

function stallRow(metric: string, values: Record<string, unknown>, ratio: number): Row {
  return row({
    bench: 'stall',
    config: '256M x 2',
    metric,
    cube: '-',
    baseline: '-',
    ratio,
    target: '<= 1.20',
    values,
  });
}

test('the daemon stall once recorded at 0.38x a memcpy is FLOOR, not PASS', () => {
  const recorded = stallRow(
    'save() stall with node daemon (lease RPC), steady (median of 9)',
    { cube_s: 0.0418, raw_s: 0.1101 },
    0.38,
  );
  assert.equal(recorded.result, 'PASS'); // what the bench used to report
  const judged = applyFloor(recorded);
  assert.equal(judged.result, 'FLOOR');
  assert.match(judged.note, /^FLOOR \(was PASS\): 0\.38x its floor/);
  assert.match(judged.note, /cannot block for less than a raw copy of the same bytes/);
});

test('a save within the noise tolerance of its memcpy keeps its verdict', () => {
  const steady = stallRow(
    'save() stall, steady (median of 9)',
    { cube_s: 0.085, raw_s: 0.1 },
    0.85,
  );
  assert.equal(floorBroken(steady), null);
  assert.equal(applyFloor(steady), steady);
  const slower = stallRow(
    'save() stall, steady (median of 9)',
    { cube_s: 0.105, raw_s: 0.1 },
    1.05,
  );
  assert.equal(applyFloor(slower).result, 'PASS');
});

test('the tolerance edge: just below 0.8x the floor breaks it, 0.8x does not', () => {
  const at = stallRow('save() stall, steady', { cube_s: NOISE_TOLERANCE * 0.1, raw_s: 0.1 }, 0.8);
  const below = stallRow('save() stall, steady', { cube_s: 0.0799, raw_s: 0.1 }, 0.799);
  assert.equal(floorBroken(at), null);
  assert.notEqual(floorBroken(below), null);
});

test('a save faster than the raw copy into the same tmpfs slot is FLOOR', () => {
  const r = stallRow(
    "save() stall vs the same raw copy into the slot's tmpfs mapping (median of 9)",
    { cube_s: 0.05, slot_raw_s: 0.1, raw_s: 0.04 },
    0.5,
  );
  assert.equal(applyFloor(r).result, 'FLOOR');
});

test('L3 persist may beat dd conv=fsync by overlapping the flush, up to 2x and the noise, not more', () => {
  const persist = (persistS: number[], ddS: number[]): Row =>
    row({
      bench: 'throughput',
      config: '1G x 1',
      metric: 'L3 persist, persistStep tmpfs -> disk, fsync (median of 3)',
      cube: '-',
      baseline: '-',
      ratio: ddS[1]! / persistS[1]!,
      target: '>= 0.90',
      values: { persist_s: persistS, dd_s: ddS, bytes: 2 ** 30 },
    });
  // Medians 1.0 s vs 2.0 s: 2x dd's throughput, what overlap can give.
  assert.equal(applyFloor(persist([0.9, 1.0, 1.1], [1.5, 2.0, 9.0])).result, 'PASS');
  // Medians 1.0 s vs 3.34 s: 3.34x dd, as one run recorded; the baseline was noise.
  const fast = applyFloor(persist([0.9, 1.0, 1.1], [3.0, 3.34, 14.1]));
  assert.equal(fast.result, 'FLOOR');
  assert.match(fast.note, /at most halve/);
});

test('L2 replication to tmpfs cannot beat the raw stream over the same loopback', () => {
  const l2 = (cubeS: number): Row =>
    row({
      bench: 'throughput',
      config: '256M x 1',
      metric: 'L2 replication -> peer daemon, replica on tmpfs (median of 5)',
      cube: '-',
      baseline: '-',
      ratio: 0.2 / cubeS,
      target: '>= 0.70',
      values: { cube_s: [cubeS], raw_s: [0.2], bytes: 2 ** 28 },
    });
  assert.equal(applyFloor(l2(0.22)).result, 'PASS');
  assert.equal(applyFloor(l2(0.12)).result, 'FLOOR');
});

test('restore faster than a plain read is FLOOR; the L2 row without a plain read has no floor', () => {
  const restore = (level: string, restoreS: number, plainS: number): Row =>
    row({
      bench: 'restore',
      config: '256M x 1',
      metric: `load_latest() from ${level} (median of 5)`,
      cube: '-',
      baseline: '-',
      ratio: restoreS / plainS,
      target: '-',
      values: { restore_s: restoreS, plain_s: plainS, hash_s: 0.01 },
    });
  assert.equal(applyFloor(restore('L3', 0.9, 1.0)).result, 'info');
  assert.equal(applyFloor(restore('L1', 0.5, 1.0)).result, 'FLOOR');
  assert.equal(applyFloor(restore('L2', 0.1, Number.NaN)).result, 'info');
});

test('training steps cannot speed up while a checkpoint runs beside them', () => {
  const slowdown = (busy: number, idle: number, idleSteps: number, base: number): Row =>
    row({
      bench: 'slowdown',
      config: '256M x 1',
      metric: "step time while L2/L3 run (Cube's defaults, save every 10 steps)",
      cube: '-',
      baseline: '-',
      ratio: busy / idle,
      target: '<= 1.05',
      values: {
        busy_mean_s: busy,
        idle_mean_s: idle,
        base_mean_s: base,
        idle_steps: idleSteps,
        busy_steps: 10,
      },
    });
  assert.equal(applyFloor(slowdown(0.21, 0.2, 30, 0.2)).result, 'PASS');
  assert.equal(applyFloor(slowdown(0.15, 0.2, 30, 0.2)).result, 'FLOOR');
  // Fewer than 5 idle steps: the bench compares with the no-checkpoint segments instead.
  assert.equal(applyFloor(slowdown(0.15, 0.2, 3, 0.15)).result, 'PASS');
});

test("a peer's busy/idle slowdown below 1 is FLOOR; a synchronous peer has none to judge", () => {
  const figures = (slowdown: number | null): Row =>
    row({
      bench: 'peers',
      config: '1G x 2',
      metric: 'dcp.async_save (thread, FileSystemWriter): figures',
      cube: '-',
      baseline: '-',
      ratio: null,
      target: '-',
      result: 'info',
      values: { stall_s: 1, durable_s: 5, slowdown },
    });
  assert.equal(applyFloor(figures(1.02)).result, 'info');
  assert.equal(applyFloor(figures(0.7)).result, 'FLOOR');
  assert.equal(applyFloor(figures(null)).result, 'info');
});

test('rows without a floor or without figures are left alone', () => {
  const torch = stallRow(
    'save() stall vs torch.save+fsync (median of 5)',
    { cube_s: 0.1, torch_s: 5 },
    0.02,
  );
  assert.equal(applyFloor(torch), torch);
  const skipped = row({
    bench: 'stall',
    config: '4G x 2',
    metric: '(skipped)',
    cube: '-',
    baseline: '-',
    ratio: null,
    target: '-',
    result: 'SKIP',
  });
  assert.equal(applyFloor(skipped), skipped);
  const noValues = stallRow('save() stall, steady', {}, 0.1);
  assert.equal(applyFloor(noValues).result, 'PASS');
});

test('bench:ckpt --check exits 1 and names a row that beats its floor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-floor-'));
  try {
    const file = join(dir, 'rows.jsonl');
    const good = stallRow('save() stall, steady (median of 9)', { cube_s: 0.11, raw_s: 0.1 }, 1.1);
    const bad = stallRow(
      'save() stall with node daemon (lease RPC), steady (median of 9)',
      { cube_s: 0.038, raw_s: 0.1 },
      0.38,
    );
    writeFileSync(file, `${JSON.stringify(good)}\n${JSON.stringify(bad)}\n`);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/ckpt/run.ts', '--check', file],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /1 row\(s\) beat their physical floor/);
    assert.match(
      r.stdout,
      /stall 256M x 2 "save\(\) stall with node daemon \(lease RPC\), steady \(median of 9\)": FLOOR/,
    );
    assert.doesNotMatch(r.stdout, /"save\(\) stall, steady \(median of 9\)": FLOOR/);

    writeFileSync(file, `${JSON.stringify(good)}\n`);
    const ok = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/ckpt/run.ts', '--check', file],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
