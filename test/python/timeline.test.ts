// Issue 13, finding 5, replayed end to end with the example GPT trainer (2 ranks, DDP over gloo,
// one "node" each): rank 0's node holds its own step 16 of the live timeline, rank 1's node holds
// only a step 16 of an abandoned timeline (a run with other data and weights). Restoring must not
// combine the two: both ranks take the newest step of one timeline (12), and the losses after the
// restore equal those of a run that was never interrupted, bit for bit. Before timelines, both
// ranks agreed on "step 16" and rank 1 resumed from the other run's state.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import {
  lossesByStep,
  makeLevels,
  runTrainer,
  type Levels,
  type RunResult,
  tinyModelArgs,
} from './launcher.ts';

const ARGS = ['--ckpt-every', '4', ...tinyModelArgs];
const STEPS = 24;

function explain(r: RunResult): string {
  return r.stderr.map((s, rank) => `--- rank ${rank} stderr ---\n${s.slice(-3000)}`).join('\n');
}

function assertClean(r: RunResult): void {
  assert.deepEqual(
    r.codes,
    r.codes.map(() => 0),
    explain(r),
  );
}

const stepDir = (step: number): string => `step-${String(step).padStart(10, '0')}`;

interface Json {
  readonly timeline?: number;
  readonly file: string;
}

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8')) as Json;
}

describe('restore never combines shards of two timelines (2 ranks on 2 nodes, gloo)', () => {
  let live: Levels;
  let abandoned: Levels;
  const l1 = (levels: Levels, rank: number): string => join(levels.l1, `node-${rank}`);
  // One node per rank: each has its own L1 root; L3 is shared.
  const perNode =
    (levels: Levels, attempt: number) =>
    (rank: number): Record<string, string> => ({
      CUBE_NODE: `node-${rank}`,
      CUBE_CKPT_L1: l1(levels, rank),
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '1',
      CUBE_ATTEMPT: String(attempt),
    });

  before(() => {
    live = makeLevels(`tl-live-${process.pid}`);
    abandoned = makeLevels(`tl-old-${process.pid}`);
    for (const levels of [live, abandoned])
      for (const rank of [0, 1]) mkdirSync(l1(levels, rank), { mode: 0o700 });
  });

  after(() => {
    live.cleanup();
    abandoned.cleanup();
  });

  test('an abandoned-timeline shard numbered like a new step is not restored with it; losses match an uninterrupted run', async () => {
    const baselineLog = join(live.l3, 'baseline.log');
    const baseline = await runTrainer({
      job: 'baseline',
      ranks: 2,
      levels: live,
      lossLog: baselineLog,
      args: [...ARGS, '--steps', String(STEPS), '--seed', '7'],
      rankEnv: perNode(live, 0),
    });
    assertClean(baseline);

    // The abandoned timeline: same job id, other data and weights (seed 8), timeline 0; killed
    // (like the live run below) three steps after its step 16 checkpoint, so that step is saved.
    const old = await runTrainer({
      job: 'mix',
      ranks: 2,
      levels: abandoned,
      lossLog: join(abandoned.l3, 'old.log'),
      args: [...ARGS, '--steps', String(STEPS), '--seed', '8'],
      rankEnv: perNode(abandoned, 0),
      killAtStep: 19,
    });
    assert.ok(old.killed, explain(old));

    // The live timeline (attempt 1) reaches step 16 as well.
    const lossLog = join(live.l3, 'mix.log');
    const first = await runTrainer({
      job: 'mix',
      ranks: 2,
      levels: live,
      lossLog,
      args: [...ARGS, '--steps', String(STEPS), '--seed', '7'],
      rankEnv: perNode(live, 1),
      killAtStep: 19,
    });
    assert.ok(first.killed, explain(first));
    const liveRecord = (rank: number, step: number): Json =>
      readJson(join(l1(live, rank), 'mix', stepDir(step), `rank-0000${rank}.json`));
    assert.equal(liveRecord(0, 16).timeline, 1);

    // Step 16 never reached L3, and node-1 lost its own step 16 but holds the abandoned
    // timeline's (its slot and its node manifest), as a peer that missed a prune would.
    rmSync(join(live.l3, 'mix', stepDir(16)), { recursive: true, force: true });
    const node1 = join(l1(live, 1), 'mix');
    const oldNode1 = join(l1(abandoned, 1), 'mix');
    const oldRecord = readJson(join(oldNode1, stepDir(16), 'rank-00001.json'));
    assert.equal(oldRecord.timeline, 0);
    assert.notEqual(oldRecord.file, liveRecord(1, 12).file, 'the planted slot is not step 12s');
    rmSync(join(node1, stepDir(16)), { recursive: true, force: true });
    cpSync(join(oldNode1, stepDir(16)), join(node1, stepDir(16)), { recursive: true });
    copyFileSync(join(oldNode1, oldRecord.file), join(node1, oldRecord.file));

    const final = await runTrainer({
      job: 'mix',
      ranks: 2,
      levels: live,
      lossLog,
      args: [...ARGS, '--steps', String(STEPS), '--seed', '7'],
      rankEnv: perNode(live, 2),
    });
    assertClean(final);
    const resumed = final.stdout.map((out) =>
      /resumed step (\d+) level (L\d).* timeline (\d+)/.exec(out),
    );
    assert.deepEqual(
      resumed.map((m) => (m === null ? null : [Number(m[1]), Number(m[3])])),
      [
        [12, 1],
        [12, 1],
      ],
      final.stdout.join('\n'),
    );
    assert.deepEqual(lossesByStep(lossLog), lossesByStep(baselineLog));

    // The run restarted from an older step: its saves carry a new timeline, above every one seen.
    for (const step of [16, 24])
      assert.equal(readJson(join(live.l3, 'mix', stepDir(step), 'manifest.json')).timeline, 2);
  });
});
