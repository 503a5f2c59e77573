import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Event } from '../../src/control/model/index.ts';
import { measureFault, type Injection } from '../../src/cli/chaos/measure.ts';
import {
  campaignViolations,
  compareLosses,
  formatReport,
  summarizeByKind,
} from '../../src/cli/chaos/report.ts';
import { spread } from '../../src/cli/chaos/stats.ts';

const t0 = Date.parse('2026-12-07T00:00:00.000Z');
const at = (s: number): string => new Date(t0 + s * 1000).toISOString();
let nextId = 100;
function ev(s: number, body: Record<string, unknown>): Event {
  nextId += 1;
  return { id: nextId, at: at(s), jobId: 'j-1', ...body } as unknown as Event;
}
const names = new Map([
  ['n-0', 'node-0'],
  ['n-1', 'node-1'],
  ['n-s', 'spare-0'],
]);

function injection(over: Partial<Injection>): Injection {
  return {
    index: 0,
    kind: 'rank-kill',
    victimRank: 1,
    victimNodeId: 'n-1',
    victimNode: 'node-1',
    injectedAtMs: t0,
    attemptBefore: 0,
    lastEventIdBefore: 100,
    windowEndMs: t0 + 60_000,
    trainingAgainAtMs: null,
    timedOut: false,
    newestSurvivingStep: 20,
    corrupted: null,
    corruptionRejectedInLog: null,
    repairs: [],
    note: null,
    ...over,
  };
}

test('the median of an even sample is the mean of the middle two; an empty one has none', () => {
  assert.deepEqual(spread([7.7, 30.1, 10.7]), { n: 3, min: 7.7, median: 10.7, max: 30.1 });
  assert.deepEqual(spread([4, 1, 3, 2]), { n: 4, min: 1, median: 2.5, max: 4 });
  assert.deepEqual(spread([]), { n: 0, min: null, median: null, max: null });
});

test('a killed rank restarted in place is measured from the log: detection, recovery, restore', () => {
  nextId = 100;
  const events = [
    ev(0.2, { kind: 'rank-exited', rank: 1, attempt: 0, data: { signal: 'SIGKILL' } }),
    ev(1.5, {
      kind: 'fault-detected',
      attempt: 0,
      data: {
        cause: 'rank-exit',
        classification: 'application',
        blame: [{ nodeId: 'n-1', node: 'node-1', blamed: false, why: 'heartbeats on time' }],
      },
    }),
    ev(1.6, { kind: 'job-restarting', attempt: 0, data: {} }),
    ev(6, { kind: 'job-restored', rank: 0, attempt: 1, data: { step: 20, level: 'L1' } }),
    ev(6.1, { kind: 'job-restored', rank: 1, attempt: 1, data: { step: 20, level: 'L1' } }),
    ev(7, { kind: 'job-resumed', attempt: 1, data: { step: 21 } }),
  ];
  const m = measureFault(injection({}), events, names);
  assert.equal(m.detectionSeconds, 1.5);
  assert.equal(m.recoverySeconds, 7);
  assert.equal(m.recoveryFrom, 'event-log');
  assert.equal(m.classification, 'application');
  assert.equal(m.restarts, 1);
  assert.deepEqual(m.restoredLevels, { L1: 2 });
  assert.equal(m.restoredStep, 20);
  assert.deepEqual(m.violations, []);
});

test('a cordon after a killed rank is a healthy node cordoned, and a wrong class is named', () => {
  nextId = 100;
  const events = [
    ev(1, {
      kind: 'fault-detected',
      attempt: 0,
      data: { cause: 'rank-exit', classification: 'node' },
    }),
    ev(1.1, { kind: 'node-cordoned', nodeId: 'n-1', data: { by: 'fault' } }),
    ev(1.2, { kind: 'spare-taken', nodeId: 'n-s', data: {} }),
    ev(5, { kind: 'job-resumed', attempt: 1, data: {} }),
  ];
  const m = measureFault(injection({}), events, names);
  assert.deepEqual(m.healthyCordoned, ['node-1']);
  assert.equal(m.sparesTaken, 1);
  assert.deepEqual(m.violations, [
    'classified node, expected application',
    'healthy node cordoned: node-1',
  ]);
});

test('a node kill may cordon its victim but no other node, and must blame the victim', () => {
  nextId = 100;
  const events = [
    ev(5, {
      kind: 'fault-detected',
      attempt: 0,
      data: {
        cause: 'heartbeat-timeout',
        classification: 'node',
        blame: [
          { nodeId: 'n-0', node: 'node-0', blamed: true, why: 'its rank exited first' },
          { nodeId: 'n-1', node: 'node-1', blamed: false, why: '?' },
        ],
      },
    }),
    ev(5.1, { kind: 'node-cordoned', nodeId: 'n-0', data: { by: 'fault' } }),
    ev(12, { kind: 'job-resumed', attempt: 1, data: {} }),
  ];
  const m = measureFault(injection({ kind: 'node-kill' }), events, names);
  assert.deepEqual(m.violations, [
    'blamed node-0, expected only the victim node-1',
    'healthy node cordoned: node-0',
  ]);
});

test('a hang may restart in place unblamed, but blaming another node than the hung one is named', () => {
  nextId = 100;
  const unknown = measureFault(
    injection({ kind: 'hang' }),
    [
      ev(21, {
        kind: 'fault-detected',
        attempt: 0,
        data: { cause: 'hang', classification: 'unknown', blame: [] },
      }),
      ev(30, { kind: 'job-resumed', attempt: 1, data: {} }),
    ],
    names,
  );
  assert.deepEqual(unknown.violations, []);
  nextId = 100;
  const wrong = measureFault(
    injection({ kind: 'hang' }),
    [
      ev(21, {
        kind: 'fault-detected',
        attempt: 0,
        data: {
          cause: 'hang',
          classification: 'node',
          blame: [{ nodeId: 'n-0', node: 'node-0', blamed: true, why: 'behind' }],
        },
      }),
      ev(30, { kind: 'job-resumed', attempt: 1, data: {} }),
    ],
    names,
  );
  assert.deepEqual(wrong.violations, ['blamed node-0, expected only the victim node-1']);
});

test('a corrupted shard restored from L1 at its step was loaded; from L2 it was caught', () => {
  nextId = 100;
  const corrupted = { file: '/dev/shm/x/rank-00001.safetensors', step: 30, rank: 1 };
  const loaded = [
    ev(1, {
      kind: 'fault-detected',
      attempt: 0,
      data: { cause: 'rank-exit', classification: 'application' },
    }),
    ev(6, { kind: 'job-restored', rank: 1, attempt: 1, data: { step: 30, level: 'L1' } }),
    ev(7, { kind: 'job-resumed', attempt: 1, data: {} }),
  ];
  const bad = measureFault(injection({ kind: 'corrupt-shard', corrupted }), loaded, names);
  assert.equal(bad.corruptionCaught, false);
  assert.ok(bad.violations.includes('the corrupted shard was loaded'));
  nextId = 100;
  const caught = [
    ev(1, {
      kind: 'fault-detected',
      attempt: 0,
      data: { cause: 'rank-exit', classification: 'application' },
    }),
    ev(6, { kind: 'job-restored', rank: 1, attempt: 1, data: { step: 30, level: 'L2' } }),
    ev(7, { kind: 'job-resumed', attempt: 1, data: {} }),
  ];
  const good = measureFault(injection({ kind: 'corrupt-shard', corrupted }), caught, names);
  assert.equal(good.corruptionCaught, true);
  assert.deepEqual(good.violations, []);
});

test('a restore older than a checkpoint committed at L2 before the fault is a lost checkpoint', () => {
  nextId = 100;
  const events = [
    ev(1, {
      kind: 'fault-detected',
      attempt: 0,
      data: { cause: 'rank-exit', classification: 'application' },
    }),
    ev(6, { kind: 'job-restored', rank: 0, attempt: 1, data: { step: 10, level: 'L3' } }),
    ev(7, { kind: 'job-resumed', attempt: 1, data: {} }),
  ];
  const m = measureFault(injection({ newestSurvivingStep: 20 }), events, names);
  assert.deepEqual(m.violations, [
    'restored step 10, older than step 20 committed at L2/L3 before the fault',
  ]);
});

test('a control-plane restart that faults the job is a violation; one that does not is no recovery (training goes on)', () => {
  nextId = 100;
  const quiet = measureFault(
    injection({ kind: 'control-plane-kill', trainingAgainAtMs: t0 + 4000 }),
    [],
    names,
  );
  // The harness first looks once the server is back: that time is the server's restart, not a
  // stall of training, which the fault's note measures from rank 0's own log instead.
  assert.equal(quiet.recoverySeconds, null);
  assert.equal(quiet.recoveryFrom, null);
  assert.deepEqual(quiet.violations, []);
  const faulted = measureFault(
    injection({ kind: 'control-plane-kill' }),
    [
      ev(3, {
        kind: 'fault-detected',
        attempt: 0,
        data: { cause: 'heartbeat-timeout', message: 'node-0 missed heartbeats' },
      }),
    ],
    names,
  );
  assert.deepEqual(faulted.violations, [
    'the control-plane restart was taken for a fault of the job: node-0 missed heartbeats',
  ]);
});

test('losses are compared with the reference and across attempts, bit for bit as text', () => {
  const a0 = new Map([
    [1, '0x1.8p+1'],
    [2, '0x1.4p+1'],
    [3, '0x1.2p+1'],
  ]);
  const a1 = new Map([
    [3, '0x1.2p+1'],
    [4, '0x1.1p+1'],
  ]);
  const reference = new Map([...a0, [4, '0x1.1p+1'], [5, '0x1.0p+1']]);
  assert.deepEqual(compareLosses([a0, a1], reference), {
    referenceSteps: 4,
    referenceDifference: null,
    crossAttemptSteps: 1,
    crossAttemptDifference: null,
  });
  const a1bad = new Map([[3, '0x1.2000000000001p+1']]);
  const r = compareLosses([a0, a1bad], reference);
  assert.deepEqual(r.crossAttemptDifference, {
    step: 3,
    first: '0x1.2p+1',
    other: '0x1.2000000000001p+1',
  });
  assert.deepEqual(r.referenceDifference, {
    step: 3,
    campaign: '0x1.2000000000001p+1',
    reference: '0x1.2p+1',
  });
  assert.equal(compareLosses([a0], null).referenceSteps, null);
});

test('the campaign fails on a differing loss, a lost checkpoint, a failed job or nothing compared', () => {
  const clean = compareLosses([new Map([[1, 'a']])], new Map([[1, 'a']]));
  assert.deepEqual(campaignViolations([], clean, { l3Checked: 3, lost: [] }, 'cancelled'), []);
  const none = compareLosses([new Map([[1, 'a']])], new Map([[2, 'b']]));
  assert.deepEqual(
    campaignViolations([], none, { l3Checked: 1, lost: [{ step: 90, why: 'missing' }] }, 'failed'),
    [
      'no step could be compared with the reference run',
      'L3 checkpoint of step 90 lost: missing',
      'the job failed',
    ],
  );
});

test('faults are summed up by kind with recovery spreads, and the table names the seed', () => {
  nextId = 100;
  const events = [
    ev(1, {
      kind: 'fault-detected',
      attempt: 0,
      data: { cause: 'rank-exit', classification: 'application' },
    }),
    ev(3, { kind: 'job-resumed', attempt: 1, data: {} }),
    ev(11, {
      kind: 'fault-detected',
      attempt: 1,
      data: { cause: 'rank-exit', classification: 'application' },
    }),
    ev(16, { kind: 'job-resumed', attempt: 2, data: {} }),
  ];
  const first = measureFault(injection({ windowEndMs: t0 + 4000 }), events, names);
  const second = measureFault(
    injection({ index: 1, injectedAtMs: t0 + 10_000, attemptBefore: 1, lastEventIdBefore: 102 }),
    events,
    names,
  );
  const [summary] = summarizeByKind([first, second]);
  assert.equal(summary?.count, 2);
  assert.deepEqual(summary?.classifications, { application: 2 });
  assert.deepEqual(summary?.recoverySeconds, { n: 2, min: 3, median: 4.5, max: 6 });
  assert.deepEqual(summary?.detectionSeconds, { n: 2, min: 1, median: 1, max: 1 });
  const replay = compareLosses([new Map([[1, 'a']])], new Map([[1, 'a']]));
  const checkpoints = { l3Checked: 2, lost: [] };
  const text = formatReport({
    seed: 7,
    durationSeconds: 80,
    job: { id: 'j-1', state: 'cancelled', restarts: 2, lastStep: 40 },
    faults: [first, second],
    byKind: summarizeByKind([first, second]),
    recoverySeconds: spread([3, 6]),
    corruption: { caught: 0, injected: 0, rejectedInLog: 0 },
    stragglers: { injected: 0, detected: 0 },
    replay,
    checkpoints,
    violations: campaignViolations([first, second], replay, checkpoints, 'cancelled'),
    ok: true,
  });
  assert.match(text, /seed 7: 2 faults/);
  assert.match(
    text,
    /\| rank-kill +\| 2 +\| 2\/2 +\| application 2 +\| 1\.0 \/ 1\.0 \/ 1\.0 +\| 3\.0 \/ 4\.5 \/ 6\.0 /,
  );
  assert.match(text, /identical bit for bit \(1 step compared\)/);
  assert.match(text, /invariants: all held/);
});
