import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  listJobs,
  listSteps,
  scanLevelRoot,
  stepStatus,
  type StepStatus,
} from '../../src/ckpt/index.ts';
import { tempDir, writeStep } from './helpers.ts';

const dir = tempDir('scan');
let n = 0;
const freshRoot = (): string => join(dir, `root-${n++}`);
const stepDir = (root: string, step: number): string =>
  join(root, 'job', `step-${String(step).padStart(10, '0')}`);

function assertInvalidNaming(status: StepStatus, file: string, message: RegExp): void {
  assert.equal(status.state, 'invalid');
  assert.equal(status.complete, false);
  assert.deepEqual(status.ranks, []);
  assert.equal(status.manifest, null);
  const problem = status.problems.find((p) => p.file === file);
  assert.ok(problem !== undefined, `a problem names ${file}: ${JSON.stringify(status.problems)}`);
  assert.match(problem.message, message);
  assert.ok(problem.message.includes(file), problem.message);
}

describe('scanning a level root', () => {
  test('a committed step with every rank is complete, with its ranks and bytes', async () => {
    const root = freshRoot();
    const records = await writeStep(root, 'job', 5, { worldSize: 2 });
    const status = await stepStatus(root, 'job', 5, { level: 'L3' });
    assert.equal(status.state, 'complete');
    assert.deepEqual(status.ranks, [0, 1]);
    assert.equal(
      status.bytes,
      records.reduce((a, r) => a + r.bytes, 0),
    );
    assert.deepEqual(status.problems, []);
  });

  test('a truncated manifest is invalid, named in the problem, never trusted', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 2 });
    const file = join(stepDir(root, 5), 'manifest.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.length / 2));
    assertInvalidNaming(
      await stepStatus(root, 'job', 5, { level: 'L3' }),
      file,
      /not valid JSON \(truncated or corrupt\)/,
    );
  });

  test('a non-JSON manifest is invalid, named in the problem', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 2 });
    const file = join(stepDir(root, 5), 'manifest.json');
    writeFileSync(file, 'this is not json\n');
    assertInvalidNaming(await stepStatus(root, 'job', 5, { level: 'L3' }), file, /not valid JSON/);
  });

  test('a manifest that lies about a shard size is invalid, naming the shard file', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 2 });
    const file = join(stepDir(root, 5), 'manifest.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { shards: { bytes: number }[] };
    manifest.shards[1]!.bytes += 8;
    writeFileSync(file, JSON.stringify(manifest));
    const status = await stepStatus(root, 'job', 5, { level: 'L3' });
    assertInvalidNaming(
      status,
      join(stepDir(root, 5), 'rank-00001.safetensors'),
      /rank 1's shard is \d+ bytes, the manifest or record says \d+/,
    );
    assert.equal(status.problems[0]?.kind, 'size-mismatch');
  });

  test('a manifest that does not match its schema is invalid, with the field', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 2 });
    const file = join(stepDir(root, 5), 'manifest.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { shards: { xxh3: string }[] };
    manifest.shards[0]!.xxh3 = 'XYZ';
    writeFileSync(file, JSON.stringify(manifest));
    assertInvalidNaming(
      await stepStatus(root, 'job', 5, { level: 'L3' }),
      file,
      /shards\.0\.xxh3: xxh3 is 16 lowercase hex digits/,
    );
  });

  test('a manifest copied into another step directory is invalid', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 1 });
    mkdirSync(stepDir(root, 6));
    const file = join(stepDir(root, 6), 'manifest.json');
    writeFileSync(file, readFileSync(join(stepDir(root, 5), 'manifest.json')));
    assertInvalidNaming(
      await stepStatus(root, 'job', 6, { level: 'L3' }),
      file,
      /step is 5, its location says 6/,
    );
  });

  test('an L3 manifest that does not list every rank is invalid', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 2 });
    const file = join(stepDir(root, 5), 'manifest.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { shards: unknown[] };
    manifest.shards.pop();
    writeFileSync(file, JSON.stringify(manifest));
    const status = await stepStatus(root, 'job', 5, { level: 'L3' });
    assertInvalidNaming(status, file, /must list every rank; 1 missing \(1\)/);
  });

  test("an L1 manifest of one node's ranks is partial", async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 4, ranks: [0, 1], level: 'L1', slot: 1 });
    const status = await stepStatus(root, 'job', 5, { level: 'L1' });
    assert.equal(status.state, 'partial');
    assert.deepEqual(status.ranks, [0, 1]);
  });

  test('an L1 step whose slot a later save reused is invalid, naming the slot', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 1, level: 'L1', slot: 0 });
    await writeStep(root, 'job', 7, { worldSize: 1, level: 'L1', slot: 0 });
    const status = await stepStatus(root, 'job', 5, { level: 'L1' });
    assertInvalidNaming(
      status,
      join(root, 'job', 'slots', 'rank-00000', 'slot-0.safetensors'),
      /no longer holds step 5 \(it holds step 7\)/,
    );
    assert.equal((await stepStatus(root, 'job', 7, { level: 'L1' })).state, 'complete');
  });

  test('a step without a manifest is uncommitted and counts the recorded shards', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 3, ranks: [0, 2], commit: false });
    const status = await stepStatus(root, 'job', 5, { level: 'L3' });
    assert.equal(status.state, 'uncommitted');
    assert.deepEqual(status.ranks, [0, 2]);
    assert.equal(status.worldSize, 3);
  });

  test('records of one step from two timelines make the step invalid, never committable', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, {
      worldSize: 2,
      commit: false,
      timeline: (rank) => rank,
    });
    const status = await stepStatus(root, 'job', 5, { level: 'L3' });
    assert.equal(status.state, 'invalid');
    assert.deepEqual(status.ranks, []);
    assert.equal(status.timeline, 1);
    const problem = status.problems.find((p) => p.kind === 'timelines-mixed');
    assert.ok(problem !== undefined, JSON.stringify(status.problems));
    assert.match(problem.message, /timelines 0, 1/);
  });

  test('records and manifests written before timelines existed read as timeline 0', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 7, { worldSize: 2, timeline: 0 });
    for (const name of ['manifest.json', 'rank-00000.json', 'rank-00001.json']) {
      const file = join(stepDir(root, 7), name);
      const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      delete json.timeline;
      writeFileSync(file, JSON.stringify(json));
    }
    const status = await stepStatus(root, 'job', 7, { level: 'L3' });
    assert.equal(status.state, 'complete');
    assert.equal(status.timeline, 0);
    assert.equal(status.manifest?.timeline, 0);
  });

  test('listing ignores hidden names, temp files and names that are not jobs or steps', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 5, { worldSize: 1 });
    mkdirSync(join(root, '.trash'));
    mkdirSync(join(root, 'not a job'));
    mkdirSync(join(root, 'job', 'step-12'));
    mkdirSync(join(root, 'job', '.step-0000000009.tmp-1-abc'));
    writeFileSync(join(stepDir(root, 5), '.manifest.json.tmp-1-abc'), '{');
    assert.deepEqual(await listJobs(root), ['job']);
    assert.deepEqual(await listSteps(root, 'job'), [5]);
    const scan = await scanLevelRoot(root, { level: 'L3' });
    assert.equal(scan.jobs[0]?.steps[0]?.state, 'complete');
  });
});
