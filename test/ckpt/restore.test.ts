import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  holdingsFromStatuses,
  persistStep,
  planRestore,
  scanJob,
  selectRestore,
  sourceLevel,
  type Holding,
  type Level,
  type ManifestShard,
} from '../../src/ckpt/index.ts';
import { flipByte, tempDir, writeStep } from './helpers.ts';

function holding(
  level: Level,
  node: string | null,
  step: number,
  ranks: number[],
  timeline = 0,
): Holding {
  const shards: ManifestShard[] = ranks.map((rank) => ({
    rank,
    file: `step-${step}/rank-${rank}`,
    bytes: 1,
    xxh3: '0000000000000000',
    node: node ?? 'n',
    extra: {},
  }));
  return { level, node, job: 'job', step, timeline, worldSize: 2, shards };
}

describe('planRestore', () => {
  test("each rank's sources are its own L1, then L2 (own node first), then L3", () => {
    const plan = planRestore({
      job: 'job',
      worldSize: 2,
      rankNodes: ['a', 'b'],
      holdings: [
        holding('L3', null, 10, [0, 1]),
        holding('L2', 'c', 10, [0, 1]),
        holding('L2', 'b', 10, [0, 1]),
        holding('L1', 'a', 10, [0]),
        holding('L1', 'c', 10, [1]),
      ],
    });
    const describe = (rank: number): string[] =>
      plan.candidates[0]!.ranks[rank]!.sources.map(
        (s) => `${sourceLevel(s)}${'node' in s ? `@${s.node}` : ''}`,
      );
    assert.deepEqual(describe(0), ['L1@a', 'L2@b', 'L2@c', 'L3']);
    // Rank 1 runs on b: another node's L1 (c) is not a source; b's own replica comes first.
    assert.deepEqual(describe(1), ['L2@b', 'L2@c', 'L3']);
  });

  test('the newest step where every rank has a source is chosen; the others follow newest first', () => {
    const plan = planRestore({
      job: 'job',
      worldSize: 2,
      rankNodes: ['a', 'b'],
      holdings: [
        holding('L3', null, 10, [0, 1]),
        holding('L1', 'a', 30, [0]),
        holding('L1', 'b', 30, [1]),
        holding('L1', 'a', 40, [0]),
        holding('L3', null, 20, [0, 1]),
      ],
    });
    assert.deepEqual(
      plan.candidates.map((c) => c.step),
      [30, 20, 10],
    );
    assert.deepEqual(plan.incomplete, [{ step: 40, timeline: 0, ranks: [1] }]);
  });

  test("an abandoned timeline's replica numbered like a new step is not a source for it", () => {
    // Issue 13, finding 5: rank 0's node holds its own step 30 of timeline 1; rank 1 has only
    // a replica of step 30 from timeline 0 (a run that later restarted from step 20).
    const plan = planRestore({
      job: 'job',
      worldSize: 2,
      rankNodes: ['a', 'b'],
      holdings: [
        holding('L1', 'a', 30, [0], 1),
        holding('L2', 'c', 30, [1], 0),
        holding('L3', null, 20, [0, 1], 1),
        holding('L3', null, 20, [0, 1], 0),
      ],
    });
    assert.deepEqual(
      plan.candidates.map((c) => [c.step, c.timeline]),
      [
        [20, 1],
        [20, 0],
      ],
    );
    assert.deepEqual(
      plan.incomplete.map((c) => [c.step, c.timeline, c.ranks]),
      [
        [30, 1, [1]],
        [30, 0, [0]],
      ],
    );
    for (const rank of plan.candidates[0]!.ranks)
      assert.ok(rank.sources.every((s) => s.timeline === 1 && s.holding.timeline === 1));
  });

  test('of two complete timelines of one step the higher one is chosen', () => {
    const plan = planRestore({
      job: 'job',
      worldSize: 2,
      rankNodes: ['a', 'b'],
      holdings: [holding('L3', null, 30, [0, 1], 0), holding('L3', null, 30, [0, 1], 2)],
    });
    assert.deepEqual(
      plan.candidates.map((c) => [c.step, c.timeline]),
      [
        [30, 2],
        [30, 0],
      ],
    );
  });

  test('holdings of another world size or job are ignored', () => {
    const other = { ...holding('L3', null, 50, [0, 1]), worldSize: 4 };
    const plan = planRestore({
      job: 'job',
      worldSize: 2,
      rankNodes: ['a', 'a'],
      holdings: [
        other,
        { ...holding('L3', null, 60, [0, 1]), job: 'x' },
        holding('L3', null, 5, [0, 1]),
      ],
    });
    assert.deepEqual(
      plan.candidates.map((c) => c.step),
      [5],
    );
  });
});

describe('restoring from real level roots', () => {
  const dir = tempDir('restore');
  let n = 0;

  const templates = new Map<string, string>();

  /**
   * Node `a` runs ranks 0 and 1: its L1 slots and its L2 replicas hold both, and so does L3.
   * Each layout is built once and copied for every test that damages it.
   */
  async function layout(steps: number[]): Promise<{ l1: string; l2: string; l3: string }> {
    const name = steps.join('-');
    let template = templates.get(name);
    if (template === undefined) {
      template = join(dir, `template-${name}`);
      for (const step of steps) {
        const l1 = join(template, 'L1');
        await writeStep(l1, 'job', step, { worldSize: 2, level: 'L1', slot: step % 2 });
        await persistStep(l1, join(template, 'L2'), 'job', step, { from: 'L1', to: 'L2' });
        await persistStep(l1, join(template, 'L3'), 'job', step, { from: 'L1', to: 'L3' });
      }
      templates.set(name, template);
    }
    const base = join(dir, `case-${n++}`);
    cpSync(template, base, { recursive: true });
    return { l1: join(base, 'L1'), l2: join(base, 'L2'), l3: join(base, 'L3') };
  }

  async function plan(roots: { l1: string; l2: string; l3: string }) {
    const holdings = [
      ...holdingsFromStatuses(await scanJob(roots.l1, 'job', { level: 'L1' }), {
        node: 'a',
        root: roots.l1,
      }),
      ...holdingsFromStatuses(await scanJob(roots.l2, 'job', { level: 'L2' }), {
        node: 'a',
        root: roots.l2,
      }),
      ...holdingsFromStatuses(await scanJob(roots.l3, 'job', { level: 'L3' }), {
        node: null,
        root: roots.l3,
      }),
    ];
    return planRestore({ job: 'job', worldSize: 2, rankNodes: ['a', 'a'], holdings });
  }
  const shard = (root: string, step: number, rank: number): string =>
    root.endsWith('L1')
      ? join(root, 'job', 'slots', `rank-0000${rank}`, `slot-${step % 2}.safetensors`)
      : join(root, 'job', `step-${String(step).padStart(10, '0')}`, `rank-0000${rank}.safetensors`);

  test('with everything intact every rank restores the newest step from its own L1', async () => {
    const roots = await layout([1, 2]);
    const selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind, 'selected');
    if (selection.kind !== 'selected') return;
    assert.equal(selection.step, 2);
    assert.deepEqual(
      selection.ranks.map((r) => sourceLevel(r.source)),
      ['L1', 'L1'],
    );
  });

  test('a corrupt L1 shard falls back to the L2 replica, then to L3', async () => {
    const roots = await layout([1, 2]);
    flipByte(shard(roots.l1, 2, 1));
    let selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind === 'selected' && selection.step, 2);
    if (selection.kind !== 'selected') return;
    assert.deepEqual(
      selection.ranks.map((r) => sourceLevel(r.source)),
      ['L1', 'L2'],
    );
    assert.ok(
      selection.attempts.some(
        (a) => a.rank === 1 && a.level === 'L1' && a.check.kind === 'checksum-mismatch',
      ),
    );

    flipByte(shard(roots.l2, 2, 1));
    selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind === 'selected' && selection.step, 2);
    if (selection.kind === 'selected') assert.equal(sourceLevel(selection.ranks[1]!.source), 'L3');
  });

  test('when no source of a rank verifies, every rank falls back to the next newest step', async () => {
    const roots = await layout([1, 2]);
    for (const root of [roots.l1, roots.l2, roots.l3]) flipByte(shard(root, 2, 0));
    const selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind, 'selected');
    if (selection.kind !== 'selected') return;
    assert.equal(selection.step, 1);
    assert.equal(
      selection.attempts.filter((a) => a.step === 2 && a.rank === 0 && a.check.kind !== 'ok')
        .length,
      3,
    );
  });

  test('a newer step without a manifest is never chosen', async () => {
    const roots = await layout([1]);
    await writeStep(roots.l3, 'job', 2, { worldSize: 2, commit: false });
    await writeStep(roots.l1, 'job', 2, { worldSize: 2, commit: false, level: 'L1', slot: 0 });
    const selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind === 'selected' && selection.step, 1);
  });

  test('steps with truncated, non-JSON or lying manifests are skipped by restore planning', async () => {
    const roots = await layout([1, 2, 3, 4]);
    const manifest = (root: string, step: number): string =>
      join(root, 'job', `step-000000000${step}`, 'manifest.json');
    for (const root of [roots.l1, roots.l2, roots.l3]) {
      const text = readFileSync(manifest(root, 4), 'utf8');
      writeFileSync(manifest(root, 4), text.slice(0, 40));
      writeFileSync(manifest(root, 3), 'not json');
      const lying = JSON.parse(readFileSync(manifest(root, 2), 'utf8')) as {
        shards: { bytes: number }[];
      };
      lying.shards[0]!.bytes -= 1;
      writeFileSync(manifest(root, 2), JSON.stringify(lying));
    }
    const p = await plan(roots);
    assert.deepEqual(
      p.candidates.map((c) => c.step),
      [1],
    );
    const selection = await selectRestore(p);
    assert.equal(selection.kind === 'selected' && selection.step, 1);
  });

  test('with nothing verifiable the driver says so', async () => {
    const roots = await layout([1]);
    for (const root of [roots.l1, roots.l2, roots.l3]) flipByte(shard(root, 1, 1));
    const selection = await selectRestore(await plan(roots));
    assert.equal(selection.kind, 'none');
    if (selection.kind === 'none') assert.match(selection.reason, /without a verified shard/);
  });
});
