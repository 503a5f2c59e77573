import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import {
  jobFailureRatePerHour,
  loadPolicyFile,
  resolvePolicy,
  type FailureModel,
} from '../../src/sim/index.ts';
import { quietModel, smallJob } from './helpers.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cube-sim-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// One failure per GPU per 3,200 hours: 32 GPUs fail once per 100 hours.
const model: FailureModel = {
  ...quietModel,
  classes: [
    { cause: 'gpu', scope: 'gpu', detection: 'crash', ratePerUnitHour: 1 / 3200, repairHours: 1 },
  ],
};

describe('policies', () => {
  test('bandwidths become seconds: snapshot, replication, and storage capped by its aggregate', () => {
    // 1 GB per GPU, 8 GB per node, 32 GB in all.
    const p = resolvePolicy(
      {
        name: 'x',
        l1: { snapshotGBs: 4 },
        l2: { gbsPerNode: 2 },
        l3: { gbsPerNode: 8, aggregateGBs: 16, every: 2 },
        spares: { nodes: 3 },
        recovery: { initBaseS: 20, initPerRankS: 0.5 },
      },
      smallJob,
      model,
    );
    assert.equal(p.l1?.stallS, 0.25);
    assert.equal(p.l2?.writeS, 4);
    assert.equal(p.l3.writeS, 2); // 32 GB / 16 GB/s beats 8 GB / 8 GB/s
    assert.equal(p.l3.every, 2);
    assert.equal(p.spareNodes, 3);
    assert.equal(p.recovery.restartS, 20 + 0.5 * 32);
  });

  test('Young-Daly picks sqrt(2 x checkpoint cost x MTBF), rounded to whole steps', () => {
    assert.equal(jobFailureRatePerHour(smallJob, model), 0.01);
    const p = resolvePolicy(
      {
        name: 'yd',
        interval: 'young-daly',
        l1: { enabled: false },
        l2: { enabled: false },
        l3: { gbsPerNode: 1, aggregateGBs: 1000 },
      },
      smallJob,
      model,
    );
    // Synchronous: each checkpoint blocks for 8 GB / 1 GB/s = 8 s; MTBF 100 h = 360,000 s.
    const optimum = Math.sqrt(2 * 8 * 360_000);
    assert.equal(p.l3.blocking, true);
    assert.equal(p.intervalSteps, Math.round(optimum / smallJob.stepTimeS));
    assert.match(p.intervalReason, /Young-Daly/);
  });

  test('without L1 a background L3 write is refused, naming the field', () => {
    const file = join(dir, 'p.yaml');
    writeFileSync(
      file,
      'policies:\n  - name: a\n  - name: b\n    l1: { enabled: false }\n    l3: { blocking: false }\n',
    );
    assert.throws(
      () => loadPolicyFile(file),
      (e: unknown) => e instanceof CubeError && e.where.path === 'policies[1].l3.blocking',
    );
  });

  test('the example policy file loads and resolves', () => {
    const specs = loadPolicyFile(join(root, 'examples/sim/policies.yaml'));
    assert.ok(specs.length >= 3);
    for (const s of specs) resolvePolicy(s, smallJob, model);
  });
});
