import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { saveShard, scanJob, isCommitted, type ShardRecord } from '../../../src/ckpt/index.ts';
import {
  CheckpointDaemon,
  PeerClient,
  createPacer,
  startLocalApi,
  type DaemonLog,
} from '../../../src/ckpt/daemon/index.ts';
import { accessOf, grant, testMaster } from './peer-access.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Node {
  readonly name: string;
  readonly l1: string;
  readonly l2: string;
  daemon: CheckpointDaemon;
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cube-daemon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Two nodes, A pushing its replicas to B; both see a shared L3. */
async function twoNodes(
  dir: string,
  options: { l3?: string | null; bytesPerSecond?: number; leaseTimeoutMs?: number } = {},
): Promise<{ a: Node; b: Node; l3: string | undefined; stop: () => Promise<void> }> {
  const l3 = options.l3 === null ? undefined : (options.l3 ?? join(dir, 'L3'));
  const mk = (name: string): Node => ({
    name,
    l1: join(dir, name, 'L1'),
    l2: join(dir, name, 'L2'),
    daemon: undefined as unknown as CheckpointDaemon,
  });
  const a = mk('node-a');
  const b = mk('node-b');
  b.daemon = new CheckpointDaemon({
    node: b.name,
    l1Root: b.l1,
    l2Root: b.l2,
    ...(l3 === undefined ? {} : { l3Root: l3 }),
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
  });
  await b.daemon.start();
  a.daemon = new CheckpointDaemon({
    node: a.name,
    l1Root: a.l1,
    l2Root: a.l2,
    ...(l3 === undefined ? {} : { l3Root: l3 }),
    listen: { host: '127.0.0.1', port: 0 },
    replicaPeer: { node: b.name, ...b.daemon.address },
    ...(options.bytesPerSecond === undefined
      ? {}
      : { replicationBytesPerSecond: options.bytesPerSecond }),
    ...(options.leaseTimeoutMs === undefined ? {} : { leaseTimeoutMs: options.leaseTimeoutMs }),
    log: quiet,
  });
  await a.daemon.start();
  // Job 1's first attempt: node A hosts ranks 0 and 1 and replicates to node B.
  grant([a.daemon, b.daemon], {
    job: 'job1',
    attempt: 0,
    nodes: [
      { node: a.name, ranks: [0, 1], replicaPeer: b.name },
      { node: b.name, ranks: [], replicaPeer: null },
    ],
  });
  return {
    a,
    b,
    l3,
    stop: async () => {
      await a.daemon.stop();
      await b.daemon.stop();
    },
  };
}

async function saveL1(
  node: Node,
  step: number,
  rank: number,
  options: { worldSize?: number; bytes?: number; slot?: number } = {},
): Promise<ShardRecord> {
  const values = new Float32Array((options.bytes ?? 4096) / 4).map(
    (_, i) => step * 1000 + rank + i,
  );
  return saveShard(node.l1, {
    job: 'job1',
    step,
    rank,
    worldSize: options.worldSize ?? 2,
    node: node.name,
    tensors: { 'model/w': { shape: [values.length], data: values } },
    extra: { step },
    slot: options.slot ?? (step / 10) % 2,
  });
}

async function committedSteps(root: string, level: 'L1' | 'L2' | 'L3'): Promise<number[]> {
  return (await scanJob(root, 'job1', { level })).filter(isCommitted).map((s) => s.step);
}

test('a step saved by both local ranks is committed at L1, replicated to the peer and persisted to L3', async (t) => {
  const dir = tempDir(t);
  const { a, b, l3, stop } = await twoNodes(dir);
  t.after(stop);
  a.daemon.register('job1', 0, { worldSize: 2, localRanks: [0, 1] });
  await a.daemon.saved(await saveL1(a, 10, 0));
  assert.deepEqual(await committedSteps(a.l1, 'L1'), [], 'one rank alone commits nothing');
  await a.daemon.saved(await saveL1(a, 10, 1));
  await a.daemon.idle('job1');
  assert.deepEqual(await committedSteps(a.l1, 'L1'), [10]);
  assert.deepEqual(await committedSteps(b.l2, 'L2'), [10]);
  assert.deepEqual(await committedSteps(l3 ?? '', 'L3'), [10]);
  const replica = readFileSync(join(b.l2, 'job1', 'step-0000000010', 'rank-00001.safetensors'));
  const original = readFileSync(join(a.l1, 'job1', 'slots', 'rank-00001', 'slot-1.safetensors'));
  assert.ok(replica.equals(original), 'the replica is byte-identical to the L1 shard');
  const status = a.daemon.status()[0];
  assert.deepEqual(status?.newest, { L1: 10, L2: 10, L3: 10 });
  const sources = await a.daemon.sources('job1', 1);
  assert.deepEqual(
    sources[0]?.sources.map((s) => [s.level, s.node]),
    [
      ['L1', 'node-a'],
      ['L2', 'node-b'],
      ['L3', 'durable'],
    ],
  );
});

test('a replica whose bytes do not match its record is rejected and never committed, and the connection stays usable', async (t) => {
  const dir = tempDir(t);
  const { a, b, stop } = await twoNodes(dir, { l3: null });
  t.after(stop);
  const record = await saveL1(a, 10, 0, { worldSize: 1, slot: 0 });
  const bytes = readFileSync(join(a.l1, 'job1', record.file));
  const corrupt = Buffer.from(bytes);
  corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] ?? 0) ^ 0xff;
  const key = accessOf(testMaster, {
    job: 'job1',
    attempt: 0,
    nodes: [
      { node: a.name, ranks: [0, 1], replicaPeer: b.name },
      { node: b.name, ranks: [], replicaPeer: null },
    ],
  })
    .get(a.name)
    ?.outgoing.find((o) => o.node === b.name)?.key;
  assert.ok(key !== undefined);
  const client = new PeerClient(
    { node: b.name, ...b.daemon.address },
    { self: a.name, credential: () => ({ attempt: 0, key }) },
  );
  t.after(() => client.close());
  const once = (buf: Buffer): AsyncIterable<Buffer> => Readable.from([buf]);
  await assert.rejects(client.putShard(record, [0], once(corrupt)), /xxh3|checksum|content/i);
  assert.deepEqual(await committedSteps(b.l2, 'L2'), []);
  await client.putShard(record, [0], once(bytes));
  assert.deepEqual(await committedSteps(b.l2, 'L2'), [10]);
});

test('an unwritable L3 is reported while L1 and L2 keep working', async (t) => {
  const dir = tempDir(t);
  const blocker = join(dir, 'not-a-dir');
  writeFileSync(blocker, 'a file where the L3 root should be');
  const { a, b, stop } = await twoNodes(dir, { l3: join(blocker, 'L3') });
  t.after(stop);
  a.daemon.register('job1', 0, { worldSize: 1, localRanks: [0] });
  await a.daemon.saved(await saveL1(a, 10, 0, { worldSize: 1 }));
  await a.daemon.idle('job1');
  await a.daemon.saved(await saveL1(a, 20, 0, { worldSize: 1 }));
  await a.daemon.idle('job1');
  assert.deepEqual(await committedSteps(a.l1, 'L1'), [10, 20]);
  assert.deepEqual(await committedSteps(b.l2, 'L2'), [10, 20]);
  const status = a.daemon.status()[0];
  assert.equal(status?.newest.L3, null);
  assert.ok((status?.errors ?? []).some((e) => e.level === 'L3' && e.step === 20));
});

test('a shard held by the peer is fetched through the local API byte for byte', async (t) => {
  const dir = tempDir(t);
  const { a, b, stop } = await twoNodes(dir, { l3: null });
  t.after(stop);
  a.daemon.register('job1', 0, { worldSize: 1, localRanks: [0] });
  await a.daemon.saved(await saveL1(a, 10, 0, { worldSize: 1, bytes: 1 << 20 }));
  await a.daemon.idle('job1');
  // Node A is replaced: a fresh daemon on a new node asks for its rank's sources.
  const c = new CheckpointDaemon({
    node: 'node-c',
    l1Root: join(dir, 'node-c', 'L1'),
    l2Root: join(dir, 'node-c', 'L2'),
    listen: { host: '127.0.0.1', port: 0 },
    peers: [{ node: b.name, ...b.daemon.address }],
    log: quiet,
  });
  await c.start();
  // The restart's attempt: rank 0 now runs on node C, which may read its replica on node B.
  grant([b.daemon, c], {
    job: 'job1',
    attempt: 1,
    nodes: [
      { node: 'node-c', ranks: [0], replicaPeer: b.name },
      { node: b.name, ranks: [], replicaPeer: null },
    ],
  });
  const socket = join(dir, 'c.sock');
  const api: FastifyInstance = await startLocalApi(c, socket);
  t.after(async () => {
    await api.close();
    await c.stop();
  });
  const get = (
    path: string,
  ): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: socket, path, method: 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks),
            headers: res.headers,
          }),
        );
      });
      req.on('error', reject);
      req.end();
    });
  const sources = await get('/v1/jobs/job1/sources?rank=0');
  const parsed = JSON.parse(sources.body.toString()) as {
    steps: { step: number; sources: { level: string; node: string }[] }[];
  };
  assert.deepEqual(parsed.steps, [
    { step: 10, sources: [{ level: 'L2', node: 'node-b', bytes: -1, xxh3: '', timeline: 0 }] },
  ]);
  const shard = await get('/v1/jobs/job1/steps/10/ranks/0/shard?level=L2&node=node-b');
  assert.equal(shard.status, 200);
  const original = readFileSync(join(a.l1, 'job1', 'slots', 'rank-00000', 'slot-1.safetensors'));
  assert.ok(shard.body.equals(original));
  const record = await get('/v1/jobs/job1/steps/10/ranks/0/record?level=L2&node=node-b');
  const parsedRecord = JSON.parse(record.body.toString()) as {
    xxh3: string;
    extra: unknown;
    bytes: number;
  };
  assert.equal(parsedRecord.bytes, original.length);
  assert.deepEqual(parsedRecord.extra, { step: 10 });
  assert.equal(parsedRecord.xxh3, shard.headers['x-cube-xxh3']);
  const missing = await get('/v1/jobs/job1/steps/99/ranks/0/shard?level=L2&node=node-b');
  assert.equal(missing.status, 400);
  assert.match(missing.body.toString(), /no committed replica of rank 0 step 99/);
});

test('reusing a slot waits for the replication reading it, then cancels it after the lease timeout', async (t) => {
  const dir = tempDir(t);
  // 2 MiB at 1 MB/s takes about 2 s: longer than the 300 ms lease timeout.
  const { a, stop } = await twoNodes(dir, { l3: null, bytesPerSecond: 1e6, leaseTimeoutMs: 300 });
  t.after(stop);
  a.daemon.register('job1', 0, { worldSize: 1, localRanks: [0] });
  const record = await saveL1(a, 10, 0, { worldSize: 1, bytes: 2 << 20, slot: 0 });
  await a.daemon.saved(record);
  const started = performance.now();
  await a.daemon.leaseSlot('job1', 0, record.file);
  const waitedMs = performance.now() - started;
  assert.ok(waitedMs >= 250 && waitedMs < 1500, `waited ${waitedMs} ms`);
  assert.deepEqual(a.daemon.status()[0]?.dropped, [10]);
});

test('the pacer holds a sender to its bandwidth cap', async () => {
  let now = 0;
  const pace = createPacer({
    bytesPerSecond: 10e6,
    burstBytes: 1e6,
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 50; i += 1) await pace(1e6);
  // 50 MB at 10 MB/s with a 1 MB burst: (50 - 1) / 10 = 4.9 s of virtual time.
  assert.ok(Math.abs(now - 4900) < 1, `took ${now} ms`);
});

test('a step whose slot a rank that ran ahead is already rewriting is never committed at L1', async (t) => {
  const dir = tempDir(t);
  const { a, stop } = await twoNodes(dir, { l3: null });
  t.after(stop);
  a.daemon.register('job1', 0, { worldSize: 2, localRanks: [0, 1] });
  // Rank 1 saved step 10 into its slot 1, then saved step 20 ... and now leases slot 1 again
  // for step 30, while rank 0's background work for step 10 is only arriving now.
  const rank1Step10 = await saveL1(a, 10, 1, { slot: 1 });
  await a.daemon.saved(rank1Step10);
  await a.daemon.leaseSlot('job1', 1, rank1Step10.file);
  await a.daemon.saved(await saveL1(a, 10, 0, { slot: 1 }));
  await a.daemon.idle('job1');
  assert.deepEqual(
    await committedSteps(a.l1, 'L1'),
    [],
    'no manifest names a slot being rewritten',
  );
  assert.equal(a.daemon.status()[0]?.newest.L1, null);
});
