import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import {
  defaultFailureModel,
  failureModelToFile,
  llama3Calibration,
  loadFailureModel,
} from '../../src/sim/index.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cube-sim-fm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('failure models', () => {
  test('the default model reproduces the published rates: counts over 54 days of 16,384 GPUs', () => {
    const hours = 54 * 24;
    const gpu = defaultFailureModel.classes.find((c) => c.cause === 'faulty-gpu');
    assert.ok(gpu !== undefined);
    assert.ok(Math.abs(gpu.ratePerUnitHour * 16_384 * hours - 148) < 1e-9);
    const host = defaultFailureModel.classes.find((c) => c.cause === 'power-supply');
    assert.ok(Math.abs((host?.ratePerUnitHour ?? 0) * 2_048 * hours - 3) < 1e-9);
    const total = Object.values(llama3Calibration.counts).reduce((a, b) => a + b, 0);
    assert.equal(total, 466);
  });

  test('examples/sim/failure-model.yaml is the default model, written out', () => {
    const loaded = loadFailureModel(join(root, 'examples/sim/failure-model.yaml'));
    assert.equal(loaded.classes.length, defaultFailureModel.classes.length);
    loaded.classes.forEach((c, i) => {
      const d = defaultFailureModel.classes[i]!;
      assert.equal(c.cause, d.cause);
      assert.equal(c.scope, d.scope);
      assert.equal(c.detection, d.detection);
      assert.ok(Math.abs(c.ratePerUnitHour / d.ratePerUnitHour - 1) < 1e-6, c.cause);
    });
    assert.deepEqual(loaded.detection, defaultFailureModel.detection);
    assert.ok(failureModelToFile(defaultFailureModel).classes.length > 15);
  });

  test('a bad file fails naming the field inside it', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'name: bad',
        'detection: { crashS: 5, heartbeatTimeoutS: 15, hangTimeoutS: 120, probeIntervalS: 30, silentCheckIntervalS: 600 }',
        'classes:',
        '  - { cause: gpu, scope: gpu, detection: crash, mtbfHours: 100000 }',
        '  - { cause: nic, scope: host, detection: crash, mtbfHours: -3 }',
      ].join('\n'),
    );
    assert.throws(
      () => loadFailureModel(file),
      (e: unknown) =>
        e instanceof CubeError &&
        e.code === 'INVALID_FILE' &&
        e.where.path === 'classes[1].mtbfHours' &&
        e.message.includes('classes[1].mtbfHours'),
    );
  });

  test('an unknown scope lists the allowed ones; a duplicate cause is named', () => {
    const file = join(dir, 'scope.json');
    const base = {
      name: 'x',
      detection: {
        crashS: 5,
        heartbeatTimeoutS: 15,
        hangTimeoutS: 120,
        probeIntervalS: 30,
        silentCheckIntervalS: 600,
      },
    };
    writeFileSync(
      file,
      JSON.stringify({
        ...base,
        classes: [{ cause: 'a', scope: 'rack', detection: 'crash', mtbfHours: 1 }],
      }),
    );
    assert.throws(
      () => loadFailureModel(file),
      (e: unknown) =>
        e instanceof CubeError &&
        e.where.path === 'classes[0].scope' &&
        (e.where.allowed ?? []).includes('switch'),
    );
    writeFileSync(
      file,
      JSON.stringify({
        ...base,
        classes: [
          { cause: 'a', scope: 'gpu', detection: 'crash', mtbfHours: 1 },
          { cause: 'a', scope: 'host', detection: 'crash', mtbfHours: 1 },
        ],
      }),
    );
    assert.throws(
      () => loadFailureModel(file),
      (e: unknown) => e instanceof CubeError && e.where.path === 'classes[1].cause',
    );
  });

  test('a missing file is FILE_NOT_FOUND', () => {
    assert.throws(
      () => loadFailureModel(join(dir, 'nope.yaml')),
      (e: unknown) => e instanceof CubeError && e.code === 'FILE_NOT_FOUND',
    );
  });
});
