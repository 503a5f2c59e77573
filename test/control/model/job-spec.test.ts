import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CubeError } from '../../../src/core/index.ts';
import { parseJobSpec, validateJobSpec, worldSizeOf } from '../../../src/control/model/index.ts';

const minimal = `
name: gpt-small
command: ['.venv/bin/python', 'examples/gpt/train.py', '--steps', '200']
ranks: { nodes: 2, devicesPerNode: 2 }
deviceType: cpu
`;

/** Asserts an INVALID_FILE error at `path` whose message matches `message`. */
function invalidAt(path: string, message: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof CubeError, String(e));
    assert.equal(e.code, 'INVALID_FILE', e.message);
    assert.equal(e.where.path, path, e.message);
    assert.match(e.message, message);
    return true;
  };
}

describe('parseJobSpec', () => {
  test('a minimal YAML spec parses with every default filled in', () => {
    const spec = parseJobSpec(minimal, { format: 'yaml' });
    assert.deepEqual(spec, {
      name: 'gpt-small',
      command: ['.venv/bin/python', 'examples/gpt/train.py', '--steps', '200'],
      workingDir: '.',
      env: {},
      ranks: { nodes: 2, devicesPerNode: 2 },
      deviceType: 'cpu',
      priority: 0,
      checkpoint: { everySteps: 10, l3Every: 1, keep: { L1: 2, L2: 2, L3: 3 } },
      restart: { maxRestarts: 3, backoffSeconds: 1 },
      faults: { heartbeatTimeoutSeconds: 5, hangTimeoutSeconds: 120 },
    });
    assert.equal(worldSizeOf(spec), 4);
  });

  test('the full example of the protocol parses, keeping what it sets', () => {
    const spec = parseJobSpec(
      `${minimal}
workingDir: examples
env: { OMP_NUM_THREADS: '1' }
priority: 5
layout: { tp: 1, pp: 2, dp: 2 }
checkpoint:
  everySteps: 20
  l3Every: 5
  l3Path: /var/lib/cube/l3
  keep: { L1: 1 }
restart: { maxRestarts: 0, backoffSeconds: 0.5 }
faults: { heartbeatTimeoutSeconds: 2 }
`,
      { format: 'yaml', file: 'job.yaml' },
    );
    assert.deepEqual(spec.layout, { tp: 1, pp: 2, dp: 2 });
    assert.deepEqual(spec.env, { OMP_NUM_THREADS: '1' });
    assert.deepEqual(spec.checkpoint, {
      everySteps: 20,
      l3Every: 5,
      l3Path: '/var/lib/cube/l3',
      keep: { L1: 1, L2: 2, L3: 3 },
    });
    assert.deepEqual(spec.restart, { maxRestarts: 0, backoffSeconds: 0.5 });
    assert.deepEqual(spec.faults, { heartbeatTimeoutSeconds: 2, hangTimeoutSeconds: 120 });
  });

  test('a JSON spec parses to the same spec as its YAML', () => {
    const json = JSON.stringify({
      name: 'gpt-small',
      command: ['.venv/bin/python', 'examples/gpt/train.py', '--steps', '200'],
      ranks: { nodes: 2, devicesPerNode: 2 },
      deviceType: 'cpu',
    });
    assert.deepEqual(
      parseJobSpec(json, { format: 'json' }),
      parseJobSpec(minimal, { format: 'yaml' }),
    );
  });

  test('an unknown key fails naming the key and the nearest known one', () => {
    assert.throws(
      () => parseJobSpec(`${minimal}priorty: 3\n`, { format: 'yaml', file: 'job.yaml' }),
      (e: unknown) => {
        invalidAt('priorty', /unknown key "priorty" \(did you mean "priority"\?\)/)(e);
        assert.equal((e as CubeError).where.file, 'job.yaml');
        assert.match((e as CubeError).message, /^job\.yaml is invalid/);
        return true;
      },
    );
  });

  test('an unknown key inside a section is named with its full path', () => {
    assert.throws(
      () => parseJobSpec(`${minimal}checkpoint: { evrySteps: 5 }\n`, { format: 'yaml' }),
      invalidAt('checkpoint.evrySteps', /did you mean "everySteps"/),
    );
  });

  test('a wrong type is named with its path', () => {
    assert.throws(
      () => parseJobSpec(minimal.replace('nodes: 2', 'nodes: two'), { format: 'yaml' }),
      invalidAt('ranks.nodes', /ranks\.nodes: .*expected number/),
    );
    assert.throws(
      () => parseJobSpec(minimal.replace('nodes: 2', 'nodes: 0'), { format: 'yaml' }),
      invalidAt('ranks.nodes', /ranks\.nodes/),
    );
    assert.throws(
      () => parseJobSpec(minimal.replace('deviceType: cpu', 'deviceType: tpu'), { format: 'yaml' }),
      (e: unknown) => {
        invalidAt('deviceType', /deviceType/)(e);
        assert.deepEqual((e as CubeError).where.allowed, ['cpu', 'nvidia', 'amd']);
        return true;
      },
    );
  });

  test('a layout whose product is not the world size fails naming layout', () => {
    assert.throws(
      () => parseJobSpec(`${minimal}layout: { tp: 2, pp: 2, dp: 2 }\n`, { format: 'yaml' }),
      invalidAt('layout', /tp\*pp\*dp = 2\*2\*2 = 8 must equal the world size .* = 4/),
    );
  });

  test('missing required fields and a bad name are named', () => {
    assert.throws(
      () =>
        validateJobSpec({ name: 'x', ranks: { nodes: 1, devicesPerNode: 1 }, deviceType: 'cpu' }),
      invalidAt('command', /command/),
    );
    assert.throws(
      () => parseJobSpec(minimal.replace('name: gpt-small', 'name: GPT_small'), { format: 'yaml' }),
      invalidAt('name', /a-z, 0-9 and -/),
    );
    assert.throws(() => parseJobSpec('', { format: 'yaml' }), invalidAt('', /expected object/));
  });

  test('text that is not YAML or JSON fails with FILE_UNREADABLE', () => {
    assert.throws(
      () => parseJobSpec('name: [unclosed\n', { format: 'yaml', file: 'bad.yaml' }),
      (e: unknown) => {
        assert.ok(e instanceof CubeError);
        assert.equal(e.code, 'FILE_UNREADABLE');
        assert.equal(e.where.file, 'bad.yaml');
        assert.match(e.message, /bad\.yaml is not valid YAML/);
        return true;
      },
    );
    assert.throws(
      () => parseJobSpec('{"name": ', { format: 'json' }),
      (e: unknown) => e instanceof CubeError && e.code === 'FILE_UNREADABLE',
    );
  });
});
