// Shard records and manifests (src/ckpt/schemas.ts) against generated and mutated documents:
// generated valid ones survive a JSON round trip unchanged, and mutated ones either parse to
// a document that keeps the schema's promises or fail with a clear error naming the field.
// Parsing never throws, however deep or odd the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CubeError, schemaError } from '../../src/core/index.ts';
import {
  manifestSchema,
  maxExtraDepth,
  maxRank,
  maxStep,
  shardRecordSchema,
} from '../../src/ckpt/schemas.ts';
import { fuzzParams } from './fuzz-config.ts';

const jobArb = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/);
const fileArb = fc
  .array(fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}$/), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join('/'));
const xxh3Arb = fc.stringMatching(/^[0-9a-f]{16}$/);
const isoArb = fc
  .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
  .map((d) => d.toISOString());
const extraArb = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), {
  maxKeys: 4,
  noNullPrototype: true,
});
const timelineArb = fc.option(fc.nat(), { nil: undefined });

const recordArb = fc
  .record({
    job: jobArb,
    step: fc.integer({ min: 0, max: maxStep }),
    worldSize: fc.integer({ min: 1, max: maxRank + 1 }),
    rankSeed: fc.nat(),
    file: fileArb,
    bytes: fc.nat(),
    xxh3: xxh3Arb,
    node: fc.string({ minLength: 1, maxLength: 20 }),
    savedAt: isoArb,
    timeline: timelineArb,
    extra: fc.option(extraArb, { nil: undefined }),
  })
  .map(({ rankSeed, timeline, extra, ...r }) => ({
    format: 'cube.shard/1',
    ...r,
    rank: rankSeed % r.worldSize,
    ...(timeline === undefined ? {} : { timeline }),
    ...(extra === undefined ? {} : { extra }),
  }));

const manifestArb = fc
  .record({
    job: jobArb,
    step: fc.integer({ min: 0, max: maxStep }),
    level: fc.constantFrom('L1', 'L2', 'L3'),
    worldSize: fc.integer({ min: 1, max: 64 }),
    layout: fc.record({ tp: fc.integer({ min: 1, max: 8 }), pp: fc.integer({ min: 1, max: 8 }) }),
    timeline: timelineArb,
    committedAt: isoArb,
    shards: fc.array(
      fc.record({
        file: fileArb,
        bytes: fc.nat(),
        xxh3: xxh3Arb,
        node: fc.string({ minLength: 1 }),
        extra: extraArb,
      }),
      { maxLength: 8 },
    ),
  })
  .map(({ timeline, shards, worldSize, ...m }) => ({
    format: 'cube.manifest/1',
    ...m,
    worldSize: Math.max(worldSize, shards.length),
    layout: { ...m.layout, dp: 1 },
    ...(timeline === undefined ? {} : { timeline }),
    shards: shards.map((s, rank) => ({ rank, ...s })),
  }));

/** One mutation at a path inside a document: delete, replace or add a key. */
type Mutation =
  | { kind: 'delete'; pick: number }
  | { kind: 'replace'; pick: number; value: unknown }
  | { kind: 'add'; pick: number; key: string; value: unknown };

const hostileValueArb = fc.oneof(
  fc.anything(),
  fc.constantFrom(
    -1,
    1.5,
    Number.MAX_SAFE_INTEGER + 2,
    1e308,
    '',
    '..',
    '../x',
    '/etc/passwd',
    '.hidden',
    'a//b',
    'L4',
    '2026-13-45T99:99:99Z',
    'ABCDEF0123456789',
    null,
    [],
    {},
  ),
  fc.nat(200).map((depth) => {
    // Nesting deep enough to overflow a recursive validator without a depth bound.
    let v: unknown = 1;
    for (let i = 0; i < depth * 100; i += 1) v = i % 2 === 0 ? [v] : { k: v };
    return v;
  }),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), pick: fc.nat(), value: hostileValueArb }),
  fc.record({
    kind: fc.constant('add' as const),
    pick: fc.nat(),
    key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor')),
    value: hostileValueArb,
  }),
);

/** Every object or array inside `doc` (including itself), with the key paths to reach it. */
function containers(doc: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (typeof v !== 'object' || v === null || depth > 6) return;
    out.push(v as Record<string, unknown>);
    for (const child of Object.values(v)) walk(child, depth + 1);
  };
  walk(doc, 0);
  return out;
}

function mutate(doc: unknown, mutations: readonly Mutation[]): unknown {
  const copy = structuredClone(doc);
  for (const m of mutations) {
    const targets = containers(copy);
    const target = targets[m.pick % targets.length] as Record<string, unknown>;
    const keys = Object.keys(target);
    const key = keys[m.pick % Math.max(1, keys.length)];
    if (m.kind === 'add')
      Object.defineProperty(target, m.key, {
        value: m.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else if (key === undefined) continue;
    else if (m.kind === 'delete') delete target[key];
    else target[key] = m.value;
  }
  return copy;
}

/** Parses with `schema`: never throws; a failure becomes a CubeError naming a field. */
function parseOrExplain(
  schema: typeof shardRecordSchema | typeof manifestSchema,
  value: unknown,
): { ok: true; data: unknown } | { ok: false; error: CubeError } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, data: parsed.data };
  const error = schemaError(parsed.error, { file: 'fuzz.json' });
  assert.ok(error instanceof CubeError);
  assert.match(error.message, /fuzz\.json is invalid:\n {2}- /);
  assert.equal(typeof error.where.path, 'string');
  return { ok: false, error };
}

test('generated shard records and manifests parse and survive a JSON round trip', () => {
  fc.assert(
    fc.property(recordArb, manifestArb, (record, manifest) => {
      for (const [schema, doc] of [
        [shardRecordSchema, record],
        [manifestSchema, manifest],
      ] as const) {
        const first = schema.parse(doc);
        const again = schema.parse(JSON.parse(JSON.stringify(first)));
        assert.equal(JSON.stringify(again), JSON.stringify(first));
      }
    }),
    fuzzParams(300),
  );
});

test('mutated shard records parse keeping their promises or fail naming the field', () => {
  fc.assert(
    fc.property(recordArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (doc, ms) => {
      const outcome = parseOrExplain(shardRecordSchema, mutate(doc, ms));
      if (!outcome.ok) return;
      const r = outcome.data as { rank: number; worldSize: number; file: string; job: string };
      assert.ok(r.rank < r.worldSize);
      assert.ok(!r.file.split('/').some((p) => p === '' || p.startsWith('.')));
      assert.ok(!r.job.startsWith('.'));
    }),
    fuzzParams(500),
  );
});

test('mutated manifests parse keeping their promises or fail naming the field', () => {
  fc.assert(
    fc.property(manifestArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (doc, ms) => {
      const outcome = parseOrExplain(manifestSchema, mutate(doc, ms));
      if (!outcome.ok) return;
      const m = outcome.data as { worldSize: number; shards: { rank: number }[] };
      const ranks = m.shards.map((s) => s.rank);
      assert.equal(new Set(ranks).size, ranks.length);
      assert.ok(ranks.every((r) => r < m.worldSize));
    }),
    fuzzParams(500),
  );
});

test('extra state nested past the limit is refused with a message, not a stack overflow', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i += 1) deep = [deep];
  const record = fc.sample(recordArb, { numRuns: 1, seed: 1 })[0] as Record<string, unknown>;
  const outcome = parseOrExplain(shardRecordSchema, { ...record, extra: { tree: deep } });
  assert.ok(!outcome.ok);
  assert.match(outcome.error.message, new RegExp(`nested more than ${maxExtraDepth} levels`));
  let fine: unknown = 1;
  for (let i = 0; i < maxExtraDepth - 1; i += 1) fine = [fine];
  assert.ok(parseOrExplain(shardRecordSchema, { ...record, extra: { tree: fine } }).ok);
});
