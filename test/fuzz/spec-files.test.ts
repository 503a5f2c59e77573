// Job spec files (parseJobSpec, YAML and JSON) and cluster files (loadClusterFile,
// clusterFromDescription) against generated and mutated input: each gives a value or a
// CubeError whose `where` names the file, never another exception, a hang or a memory blow-up.
// YAML tricks are included: alias bombs, deep nesting, tags, merge keys, huge numbers.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify } from 'yaml';
import { CubeError, maxYamlAliasCount } from '../../src/core/index.ts';
import { parseJobSpec, validateJobSpec } from '../../src/control/model/job-spec.ts';
import { clusterFromDescription, loadClusterFile } from '../../src/hardware/index.ts';
import { fuzzParams } from './fuzz-config.ts';
import { yamlAliasBomb } from './yaml-bomb.ts';

const dir = mkdtempSync(join(tmpdir(), 'cube-fuzz-spec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const repoRoot = new URL('../..', import.meta.url).pathname;

/** Runs `parse` and checks the outcome: a value, or a CubeError whose where names `file`. */
function valueOrCubeError<T>(file: string, parse: () => T): T | CubeError {
  const started = performance.now();
  try {
    return parse();
  } catch (error) {
    assert.ok(error instanceof CubeError, `not a CubeError: ${String((error as Error)?.stack)}`);
    assert.equal(error.where.file, file, `where does not name the file: ${error.message}`);
    assert.ok(error.message.length > 0);
    return error;
  } finally {
    // A parser that expands or loops on hostile input shows here long before memory runs out.
    assert.ok(performance.now() - started < 2000, 'parsing took over 2 s');
  }
}

const specArb = fc.record(
  {
    name: fc.stringMatching(/^[a-z0-9-]{1,63}$/),
    command: fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
    workingDir: fc.string({ minLength: 1, maxLength: 12 }),
    env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string(), {
      maxKeys: 3,
      noNullPrototype: true,
    }),
    ranks: fc.record({
      nodes: fc.integer({ min: 1, max: 64 }),
      devicesPerNode: fc.integer({ min: 1, max: 8 }),
    }),
    deviceType: fc.constantFrom('cpu', 'nvidia', 'amd'),
    priority: fc.integer({ min: -100, max: 100 }),
    checkpoint: fc.record(
      {
        everySteps: fc.integer({ min: 1, max: 1000 }),
        l3Every: fc.integer({ min: 1, max: 10 }),
        keep: fc.record(
          {
            L1: fc.integer({ min: 1, max: 9 }),
            L2: fc.integer({ min: 1, max: 9 }),
            L3: fc.integer({ min: 1, max: 9 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    ),
    restart: fc.record(
      { maxRestarts: fc.nat(10), backoffSeconds: fc.double({ min: 0, max: 60, noNaN: true }) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['name', 'command', 'ranks', 'deviceType'] },
);

test('generated job specs read the same from YAML, JSON and as a value', () => {
  fc.assert(
    fc.property(specArb, (spec) => {
      const expected = validateJobSpec(spec);
      const fromYaml = parseJobSpec(stringify(spec), { format: 'yaml', file: 'job.yaml' });
      const fromJson = parseJobSpec(JSON.stringify(spec), { format: 'json', file: 'job.json' });
      assert.deepEqual(fromYaml, expected);
      assert.deepEqual(fromJson, expected);
    }),
    fuzzParams(200),
  );
});

/** YAML fragments that have broken or blown up YAML readers. */
const yamlTrickArb = fc.oneof(
  fc.constantFrom(
    yamlAliasBomb(),
    yamlAliasBomb(20, 2),
    `a: &a [1]\nb: &b [*a, *a]\nname: *b\n`,
    '!!js/function "function(){}"',
    '!!binary aGVsbG8=',
    '!!set {a, b}',
    '!!omap [a: 1]',
    '!<tag:yaml.org,2002:str> x',
    '<<: {name: x}\ncommand: [a]',
    'name: 1e99999\n',
    'ranks: {nodes: 123456789012345678901234567890, devicesPerNode: 1}\n',
    '? [a, b]\n: c\n',
    '%YAML 1.1\n---\nname: x\n',
    '---\na: 1\n---\nb: 2\n',
    'a: *undefined\n',
    '\u0000\uFFFE',
    `${'['.repeat(5000)}${']'.repeat(5000)}`,
    `${'{a: '.repeat(3000)}1${'}'.repeat(3000)}`,
    `${'- '.repeat(3000)}x`,
    'x'.repeat(200_000),
  ),
  fc.nat(30).map((n) => yamlAliasBomb(n, 2 + (n % 8))),
);

/** Text edits of a valid document: insert, delete or replace a few characters. */
const editsArb = fc.array(
  fc.record({
    at: fc.nat(),
    remove: fc.nat(4),
    insert: fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.constantFrom('&a ', '*a', '!!', ': ', '\n', '  ', '- ', '[', '{', '"', "'", '#', '|', '>'),
    ),
  }),
  { minLength: 1, maxLength: 5 },
);

function applyEdits(
  text: string,
  edits: readonly { at: number; remove: number; insert: string }[],
) {
  let out = text;
  for (const e of edits) {
    const at = e.at % (out.length + 1);
    out = out.slice(0, at) + e.insert + out.slice(at + e.remove);
  }
  return out;
}

test('mutated job spec files give a spec or a CubeError naming the file', () => {
  fc.assert(
    fc.property(
      specArb,
      editsArb,
      fc.constantFrom('yaml' as const, 'json' as const),
      (spec, edits, format) => {
        const text = format === 'yaml' ? stringify(spec) : JSON.stringify(spec, null, 1);
        const file = `job.${format}`;
        valueOrCubeError(file, () => parseJobSpec(applyEdits(text, edits), { format, file }));
      },
    ),
    fuzzParams(500),
  );
});

test('YAML tricks in job specs give a spec or a CubeError naming the file, quickly', () => {
  fc.assert(
    fc.property(yamlTrickArb, fc.boolean(), (trick, appended) => {
      const text = appended ? `${stringify({ name: 'x', command: ['a'] })}${trick}` : trick;
      valueOrCubeError('job.yaml', () => parseJobSpec(text, { format: 'yaml', file: 'job.yaml' }));
    }),
    fuzzParams(100, 0.1),
  );
});

test('a YAML alias bomb is refused as an alias bomb, not expanded', () => {
  const before = process.memoryUsage().heapUsed;
  const error = valueOrCubeError('bomb.yaml', () =>
    parseJobSpec(yamlAliasBomb(), { format: 'yaml', file: 'bomb.yaml' }),
  );
  assert.ok(error instanceof CubeError);
  assert.equal(error.code, 'INVALID_FILE');
  assert.match(error.message, new RegExp(`aliases more than ${maxYamlAliasCount} times`));
  // 9^9 strings expanded would take gigabytes; refusing it takes next to nothing.
  assert.ok(process.memoryUsage().heapUsed - before < 256 * 1024 * 1024);
});

const exampleClusters = ['lab-hetero.yaml', 'supernode-1024.yaml', 'h100-16k-rail.yaml'].map(
  (name) => readFileSync(join(repoRoot, 'examples/clusters', name), 'utf8'),
);

test('mutated cluster files give a cluster or a CubeError naming the file', () => {
  let i = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...exampleClusters),
      editsArb,
      fc.option(yamlTrickArb, { nil: undefined, freq: 10 }),
      (example, edits, trick) => {
        const file = join(dir, `cluster-${(i += 1)}.yaml`);
        writeFileSync(file, trick ?? applyEdits(example, edits));
        try {
          valueOrCubeError(file, () => loadClusterFile(file));
        } finally {
          rmSync(file, { force: true });
        }
      },
    ),
    fuzzParams(300, 0.2),
  );
});

/** Structural mutations of a parsed cluster description: a value replaced at some path. */
const hostileNumberArb = fc.constantFrom(
  0,
  -1,
  0.5,
  1e9,
  2 ** 31,
  Number.MAX_SAFE_INTEGER,
  1e308,
  Number.NaN,
  Number.POSITIVE_INFINITY,
);

test('cluster descriptions with hostile values give a cluster or a CubeError quickly', () => {
  const examples = exampleClusters.map((text) => parseYaml(text) as Record<string, unknown>);
  fc.assert(
    fc.property(
      fc.constantFrom(...examples),
      fc.array(fc.tuple(fc.nat(), fc.oneof(hostileNumberArb, fc.anything())), {
        minLength: 1,
        maxLength: 3,
      }),
      (example, replacements) => {
        const doc = structuredClone(example);
        for (const [pick, value] of replacements) replaceAt(doc, pick, value);
        valueOrCubeError('fuzz-cluster', () =>
          clusterFromDescription(doc, { file: 'fuzz-cluster' }),
        );
      },
    ),
    fuzzParams(300),
  );
});

/** Replaces the `pick`-th leaf (in walk order) of `doc` with `value`. */
function replaceAt(doc: unknown, pick: number, value: unknown): void {
  const leaves: [Record<string, unknown>, string][] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    for (const [k, child] of Object.entries(v)) {
      leaves.push([v as Record<string, unknown>, k]);
      walk(child);
    }
  };
  walk(doc);
  const leaf = leaves[pick % Math.max(1, leaves.length)];
  if (leaf !== undefined) leaf[0][leaf[1]] = value;
}

test('a cluster file with a billion super-nodes or servers is refused at once, not built', () => {
  const supernodes = join(dir, 'huge-supernodes.yaml');
  writeFileSync(
    supernodes,
    (exampleClusters[1] as string).replace('- count: 4 # sn0 .. sn3', '- count: 1000000000'),
  );
  const servers = join(dir, 'huge-servers.yaml');
  writeFileSync(
    servers,
    (exampleClusters[0] as string).replace('count: 4', 'count: 1000000000000'),
  );
  for (const [file, what] of [
    [supernodes, /super-nodes is more than the 65536 allowed/],
    [servers, /servers is more than the 1048576 allowed/],
  ] as const) {
    const error = valueOrCubeError(file, () => loadClusterFile(file));
    assert.ok(error instanceof CubeError);
    assert.equal(error.code, 'INVALID_FILE');
    assert.match(error.message, what);
  }
});

test('a job spec with a NUL byte in its command, directory or environment is refused at parse', () => {
  // exec(2) cannot take a NUL: such a spec used to be accepted and then fail at every launch.
  const base = { name: 'nul', command: ['/bin/true'], ranks: { nodes: 1, devicesPerNode: 1 } };
  for (const [extra, path] of [
    [{ command: ['/bin/echo', 'a\0b'] }, 'command[1]'],
    [{ workingDir: '/tmp\0x' }, 'workingDir'],
    [{ env: { PATH: '/bin\0' } }, 'env.PATH'],
  ] as const) {
    const text = JSON.stringify({ ...base, deviceType: 'cpu', ...extra });
    const error = valueOrCubeError('nul.json', () =>
      parseJobSpec(text, { format: 'json', file: 'nul.json' }),
    );
    assert.ok(error instanceof CubeError);
    assert.equal(error.where.path, path);
    assert.match(error.message, /NUL byte/);
  }
});
