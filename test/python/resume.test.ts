// End to end: the example GPT trainer, killed with SIGKILL at random steps and relaunched, ends
// with exactly the per-step losses (bit for bit) of a run that was never interrupted; also when
// the node's L1 is lost and the restore comes from L3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  lossesByStep,
  makeLevels,
  runTrainer,
  seededRandom,
  type Levels,
  type RunResult,
  tinyModelArgs,
} from './launcher.ts';

const STEPS = 40;
// Tiny config: 2 layers x 64 hidden, sequence 32, batch 4 per rank; a checkpoint every 4 steps.
const ARGS = ['--steps', String(STEPS), '--ckpt-every', '4', ...tinyModelArgs, '--seed', '7'];

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

function resumedLevels(runs: RunResult[]): string[] {
  return runs.flatMap((r) =>
    r.stdout.flatMap((out) =>
      [...out.matchAll(/resumed step \d+ level (L\d)/g)].map((m) => m[1] ?? ''),
    ),
  );
}

for (const ranks of [1, 2]) {
  describe(`resume with ${ranks} rank${ranks > 1 ? 's (DDP over gloo)' : ''}`, () => {
    let levels: Levels;
    let baseline: Map<number, string>;

    before(async () => {
      levels = makeLevels(`r${ranks}-${process.pid}`);
      const lossLog = join(levels.l3, 'baseline.log');
      const r = await runTrainer({ job: 'baseline', ranks, levels, lossLog, args: ARGS });
      assertClean(r);
      assert.deepEqual(resumedLevels([r]), [], 'the uninterrupted run starts fresh');
      baseline = lossesByStep(lossLog);
      assert.equal(baseline.size, STEPS);
    });

    after(() => levels.cleanup());

    test('SIGKILL of every rank at random steps, relaunched each time: identical losses', async (t) => {
      const lossLog = join(levels.l3, 'killed.log');
      const random = seededRandom(1000 + ranks);
      const runs: RunResult[] = [];
      let last = 0;
      for (let kill = 0; kill < 3; kill++) {
        // The first kill comes after the first checkpoint (step 4) had time to commit.
        const target = Math.min(STEPS - 3, Math.max(6, last + 3 + Math.floor(random() * 9)));
        const r = await runTrainer({
          job: 'killed',
          ranks,
          levels,
          lossLog,
          args: ARGS,
          killAtStep: target,
        });
        assert.ok(r.killed, `run ${kill} ended before step ${target}\n${explain(r)}`);
        assert.ok(
          r.signals.every((s) => s === 'SIGKILL'),
          explain(r),
        );
        runs.push(r);
        last = r.lastStep;
        t.diagnostic(`run ${kill}: SIGKILL after step ${r.lastStep} (target ${target})`);
      }
      const final = await runTrainer({ job: 'killed', ranks, levels, lossLog, args: ARGS });
      assertClean(final);
      runs.push(final);
      assert.deepEqual(lossesByStep(lossLog), baseline);
      const resumed = resumedLevels(runs);
      // The first kill may land before the first checkpoint committed; the later ones cannot.
      assert.ok(resumed.length >= 2 * ranks, `relaunches resumed: ${resumed.join(',')}`);
      assert.ok(resumed.includes('L1'), `restores came from L1: ${resumed.join(',')}`);
    });

    test('node loss at L1: restore from L3, identical losses', async () => {
      const lossLog = join(levels.l3, 'node-loss.log');
      const random = seededRandom(2000 + ranks);
      const target = 10 + Math.floor(random() * 20);
      const first = await runTrainer({
        job: 'node-loss',
        ranks,
        levels,
        lossLog,
        args: ARGS,
        killAtStep: target,
      });
      assert.ok(first.killed, explain(first));
      rmSync(join(levels.l1, 'node-loss'), { recursive: true, force: true });
      const second = await runTrainer({ job: 'node-loss', ranks, levels, lossLog, args: ARGS });
      assertClean(second);
      assert.deepEqual(
        resumedLevels([second]),
        Array.from({ length: ranks }, () => 'L3'),
      );
      assert.deepEqual(lossesByStep(lossLog), baseline);
    });
  });
}
