import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lossesByStep, replayFromLogs } from '../../src/cli/replay-check.ts';

const log = (steps: [number, string][]): string =>
  ['loading the corpus', ...steps.map(([s, l]) => `step ${s} loss ${l}`), ''].join('\n');

test('the loss lines of a trainer log are read by step, other output ignored', () => {
  const losses = lossesByStep(
    `${log([
      [1, '0x1.8p+1'],
      [2, '0x1.4p+1'],
    ])}Traceback ...\nstep 3 lo`,
  );
  assert.deepEqual(
    [...losses],
    [
      [1, '0x1.8p+1'],
      [2, '0x1.4p+1'],
    ],
  );
});

test('steps run again after a restore are compared with the run before the fault', () => {
  const before = log([
    [29, '0x1.1p+1'],
    [30, '0x1.0p+1'],
    [31, '0x1.fp+0'],
    [32, '0x1.ep+0'],
  ]);
  const after = log([
    [31, '0x1.fp+0'],
    [32, '0x1.ep+0'],
    [33, '0x1.dp+0'],
  ]);
  assert.deepEqual(replayFromLogs(before, [after]), {
    lastStepBeforeFault: 32,
    replayedSteps: 2,
    firstDifference: null,
  });
});

test('a replayed loss that differs in its last bit is reported with both values', () => {
  const before = log([
    [31, '0x1.f000000000000p+0'],
    [32, '0x1.e000000000000p+0'],
  ]);
  const after = log([
    [31, '0x1.f000000000000p+0'],
    [32, '0x1.e000000000001p+0'],
  ]);
  assert.deepEqual(replayFromLogs(before, [after]).firstDifference, {
    step: 32,
    before: '0x1.e000000000000p+0',
    after: '0x1.e000000000001p+0',
  });
});

test('a restore to the step of the fault replays nothing', () => {
  const r = replayFromLogs(log([[30, '0x1p+0']]), [log([[31, '0x1p-1']])]);
  assert.equal(r.replayedSteps, 0);
  assert.equal(r.lastStepBeforeFault, 30);
  assert.equal(replayFromLogs('', []).lastStepBeforeFault, null);
});
