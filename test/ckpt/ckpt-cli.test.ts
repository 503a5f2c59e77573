import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { persistStep } from '../../src/ckpt/index.ts';
import { cube, cubeInProcess as run, flipByte, tempDir, writeStep } from './helpers.ts';

const dir = tempDir('cli');

/**
 * A job directory with three level roots: L1 (one node, both ranks, slots), L2 (replica),
 * L3. Steps: 10 everywhere; 20 at L1 and L2 only; 30 at L3 half-written (no manifest).
 */
let template: string | undefined;
async function jobDir(name: string): Promise<string> {
  if (template === undefined) {
    template = join(dir, 'template');
    const l1 = join(template, 'L1');
    for (const step of [10, 20]) {
      await writeStep(l1, 'gpt', step, { worldSize: 2, level: 'L1', slot: step / 10 - 1 });
      await persistStep(l1, join(template, 'L2'), 'gpt', step, { from: 'L1', to: 'L2' });
    }
    await persistStep(l1, join(template, 'L3'), 'gpt', 10, { from: 'L1', to: 'L3' });
    await writeStep(join(template, 'L3'), 'gpt', 30, { worldSize: 2, ranks: [0], commit: false });
  }
  const base = join(dir, name);
  cpSync(template, base, { recursive: true });
  return base;
}

describe('timelines in cube ckpt', () => {
  test('ls, verify and inspect show each step timeline, per level where they differ', async () => {
    const base = join(dir, 'timelines');
    // Step 40 of timeline 2 at L1; at L3 an abandoned run's step 40 (timeline 1) is still there.
    await writeStep(join(base, 'L1'), 'gpt', 40, {
      worldSize: 2,
      level: 'L1',
      slot: 0,
      timeline: 2,
    });
    await writeStep(join(base, 'L3'), 'gpt', 40, { worldSize: 2, timeline: 1 });
    const ls = await run('ckpt', 'ls', base, '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const row = (JSON.parse(ls.stdout) as { steps: Record<string, unknown>[] }).steps[0];
    assert.deepEqual([row?.['timeline'], row?.['timelines']], [2, { L1: 2, L2: null, L3: 1 }]);
    const table = await run('ckpt', 'ls', base);
    assert.match(table.stdout, /40\s+2\/1\s+2\/2 complete/);
    const verify = await run('ckpt', 'verify', base);
    assert.match(verify.stdout, /step 40 L1 timeline 2: ok/);
    assert.match(verify.stdout, /restore would choose step 40 timeline 2 \(rank 0 from L1/);
    const inspect = await run('ckpt', 'inspect', base, '--step', '40', '--json');
    const report = JSON.parse(inspect.stdout) as {
      timeline: number;
      shards: { timeline: number }[];
    };
    assert.deepEqual([report.timeline, report.shards.map((s) => s.timeline)], [2, [2, 2]]);
  });
});

describe('cube ckpt ls', () => {
  let base = '';
  before(async () => {
    base = await jobDir('ls');
  });

  test('--json prints {steps: [{step, levels, complete, bytes}]}, extended by the timeline', async () => {
    // As automation runs it: a real `cube` process.
    const r = await cube('ckpt', 'ls', base, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { steps: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(out), ['steps']);
    for (const row of out.steps) {
      assert.deepEqual(Object.keys(row), [
        'step',
        'levels',
        'complete',
        'bytes',
        'timeline',
        'timelines',
      ]);
      assert.equal(row['timeline'], 0);
      assert.deepEqual(Object.keys(row['timelines'] as object), ['L1', 'L2', 'L3']);
      assert.deepEqual(Object.keys(row['levels'] as object), ['L1', 'L2', 'L3']);
      assert.deepEqual(Object.keys(row['complete'] as object), ['L1', 'L2', 'L3']);
      assert.equal(typeof row['bytes'], 'number');
    }
    const one = out.steps.map((s) => ({
      step: s['step'],
      levels: s['levels'],
      complete: s['complete'],
    }));
    assert.deepEqual(one, [
      { step: 10, levels: { L1: 2, L2: 2, L3: 2 }, complete: { L1: true, L2: true, L3: true } },
      { step: 20, levels: { L1: 2, L2: 2, L3: 0 }, complete: { L1: true, L2: true, L3: false } },
      { step: 30, levels: { L1: 0, L2: 0, L3: 1 }, complete: { L1: false, L2: false, L3: false } },
    ]);
    const shard = readFileSync(
      join(base, 'L3', 'gpt', 'step-0000000010', 'rank-00000.safetensors'),
    );
    assert.equal(out.steps[0]!['bytes'], 2 * shard.byteLength);
  });

  test('the table shows each level as shards/world size and state', async () => {
    const r = await run('ckpt', 'ls', base);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /job gpt/);
    assert.match(r.stdout, /10\s+0\s+2\/2 complete\s+2\/2 complete\s+2\/2 complete/);
    assert.match(r.stdout, /30\s+0\s+-\s+-\s+1\/2 no manifest/);
  });

  test('a single level root and a single job directory are understood too', async () => {
    const root = await run('ckpt', 'ls', join(base, 'L3'), '--json');
    assert.equal(root.code, 0, root.stderr);
    const steps = (JSON.parse(root.stdout) as { steps: { step: number }[] }).steps;
    assert.deepEqual(
      steps.map((s) => s.step),
      [10, 30],
    );
    const job = await run('ckpt', 'ls', join(base, 'L2', 'gpt'), '--json');
    assert.equal(job.code, 0, job.stderr);
    const rows = (JSON.parse(job.stdout) as { steps: { complete: { L2: boolean } }[] }).steps;
    assert.deepEqual(
      rows.map((s) => s.complete.L2),
      [true, true],
    );
  });

  test('several jobs need --job; an unknown job exits 2 with the nearest one', async () => {
    const base2 = await jobDir('two-jobs');
    await writeStep(join(base2, 'L3'), 'bert', 1, { worldSize: 1 });
    const ambiguous = await run('ckpt', 'ls', base2);
    assert.equal(ambiguous.code, 2);
    assert.match(ambiguous.stderr, /holds 2 jobs \(bert, gpt\); choose one with --job/);
    const chosen = await run('ckpt', 'ls', base2, '--job', 'bert', '--json');
    assert.equal(chosen.code, 0, chosen.stderr);
    const unknown = await run('ckpt', 'ls', base2, '--job', 'gtp');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown job "gtp"[\s\S]*gpt/);
  });

  test('a missing directory, a file, and an unrecognisable directory exit 2 saying what is wrong', async () => {
    const missing = await run('ckpt', 'ls', join(dir, 'nope'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /checkpoint directory not found: .*nope/);
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const notDir = await run('ckpt', 'ls', file);
    assert.equal(notDir.code, 2);
    assert.match(notDir.stderr, /a-file is a file; expected a checkpoint directory/);
    const nothing = join(dir, 'nothing');
    mkdirSync(join(nothing, 'some-dir'), { recursive: true });
    const empty = await run('ckpt', 'ls', nothing);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /holds no checkpoints/);
    const badLevel = await run('ckpt', 'ls', base, '--level', 'L4');
    assert.equal(badLevel.code, 2);
    assert.match(badLevel.stderr, /--level must be L1, L2 or L3/);
  });
});

describe('cube ckpt verify', () => {
  test('intact checkpoints exit 0 and name the step a restore would choose', async () => {
    const base = await jobDir('verify-ok');
    const r = await run('ckpt', 'verify', base);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /step 10 L3 timeline 0: ok \(2 shards\)/);
    assert.match(
      r.stdout,
      /step 30 L3 timeline 0: ok \(1 shard, no manifest: not a checkpoint yet\)/,
    );
    assert.match(
      r.stdout,
      /restore would choose step 20 timeline 0 \(rank 0 from L1, rank 1 from L1\)/,
    );
  });

  test('a flipped byte exits 1, naming the file, and the restore falls back', async () => {
    const base = await jobDir('verify-bad');
    const slot = join(base, 'L1', 'gpt', 'slots', 'rank-00001', 'slot-1.safetensors');
    flipByte(slot);
    const r = await cube('ckpt', 'verify', base, '--json');
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(slot), r.stderr);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      checked: {
        step: number;
        level: string;
        ok: boolean;
        shards: { file: string; result: string }[];
      }[];
      restore: { step: number; timeline: number; sources: { rank: number; level: string }[] };
    };
    assert.equal(out.ok, false);
    const bad = out.checked.find((c) => !c.ok);
    assert.deepEqual([bad?.step, bad?.level], [20, 'L1']);
    assert.deepEqual(
      bad?.shards.map((s) => s.result),
      ['ok', 'checksum-mismatch'],
    );
    assert.deepEqual(out.restore, {
      step: 20,
      timeline: 0,
      sources: [
        { rank: 0, level: 'L1' },
        { rank: 1, level: 'L2' },
      ],
    });
  });

  test('a truncated manifest exits 1 naming the manifest', async () => {
    const base = await jobDir('verify-truncated');
    const manifest = join(base, 'L3', 'gpt', 'step-0000000010', 'manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').slice(0, 30));
    const r = await run('ckpt', 'verify', base, '--step', '10');
    assert.equal(r.code, 1);
    assert.ok(r.stdout.includes(manifest) && r.stderr.includes(manifest), r.stdout + r.stderr);
    assert.match(r.stdout, /step 10 L3: BAD/);
  });

  test('an unknown or malformed --step exits 2', async () => {
    const base = await jobDir('verify-step');
    const unknown = await run('ckpt', 'verify', base, '--step', '11');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown step "11"/);
    const malformed = await run('ckpt', 'verify', base, '--step', 'ten');
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--step must be a non-negative integer, got "ten"/);
  });
});

describe('cube ckpt inspect', () => {
  let base = '';
  before(async () => {
    base = await jobDir('inspect');
  });

  test('shows tensors, shapes, dtypes, bytes and the extra state keys', async () => {
    const r = await run('ckpt', 'inspect', base, '--step', '10', '--rank', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      level: string;
      state: string;
      shards: {
        rank: number;
        metadata: Record<string, string>;
        tensors: { name: string; dtype: string; shape: number[]; bytes: number }[];
        extraKeys: string[];
      }[];
    };
    assert.equal(out.level, 'L1');
    assert.equal(out.state, 'complete');
    assert.equal(out.shards.length, 1);
    const shard = out.shards[0]!;
    assert.equal(shard.rank, 1);
    assert.equal(shard.metadata['cube.step'], '10');
    // In file order, which is the reference writer's: larger dtypes first.
    assert.deepEqual(shard.tensors, [
      { name: 'optimizer/step', dtype: 'I64', shape: [], bytes: 8 },
      { name: 'model/w', dtype: 'F32', shape: [8, 8], bytes: 256 },
      { name: 'model/b', dtype: 'BF16', shape: [3], bytes: 6 },
    ]);
    assert.deepEqual(shard.extraKeys, ['rng', 'data']);
    const text = await run('ckpt', 'inspect', base, '--step', '10', '--level', 'L3');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /gpt step 10 at L3: complete/);
    assert.match(text.stdout, /model\/w\s+F32\s+\[8, 8\]\s+256/);
    assert.match(text.stdout, /extra state keys: rng, data/);
  });

  test('an unknown rank or step, or a missing --step, exits 2', async () => {
    const rank = await run('ckpt', 'inspect', base, '--step', '10', '--rank', '5');
    assert.equal(rank.code, 2);
    assert.match(rank.stderr, /unknown rank "5"/);
    const step = await run('ckpt', 'inspect', base, '--step', '99');
    assert.equal(step.code, 2);
    assert.match(step.stderr, /unknown step "99"/);
    const none = await run('ckpt', 'inspect', base);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--step/);
  });
});
