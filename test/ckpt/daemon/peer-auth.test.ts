// Issue 13, finding 2: the checkpoint peer port served shards to, and took replicas from,
// anyone who could connect. Each test here replays an attack over a raw TCP connection that
// speaks the frame format, against real daemons writing real files, and asserts it now fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import {
  isCommitted,
  saveShard,
  scanJob,
  shardRecordSchema,
  xxh3Hex,
  type ShardRecord,
} from '../../../src/ckpt/index.ts';
import {
  CheckpointDaemon,
  PeerClient,
  type DaemonLog,
  type PeerAccess,
} from '../../../src/ckpt/daemon/index.ts';
import { FrameReader, sendFrame, type FrameHeader } from '../../../src/ckpt/daemon/frames.ts';
import { helloMac, newNonce } from '../../../src/ckpt/daemon/peer-auth.ts';
import { accessOf, grant, testMaster, type Placement } from './peer-access.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Job 1: node A hosts rank 0 and node X rank 2, both replicating to node B, which hosts rank 1. */
const job1: Placement = {
  job: 'job1',
  attempt: 0,
  nodes: [
    { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
    { node: 'node-b', ranks: [1], replicaPeer: null },
    { node: 'node-x', ranks: [2], replicaPeer: 'node-b' },
  ],
};
/** Job 2: node A hosts its only rank and replicates to node B; node X is not part of it. */
const job2: Placement = {
  job: 'job2',
  attempt: 0,
  nodes: [
    { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
    { node: 'node-b', ranks: [], replicaPeer: null },
  ],
};

function keyOf(placement: Placement, from: string, to: string): string {
  const key = accessOf(testMaster, placement)
    .get(from)
    ?.outgoing.find((o) => o.node === to)?.key;
  assert.ok(key !== undefined, `no key ${from} -> ${to}`);
  return key;
}

interface Cluster {
  readonly dir: string;
  readonly a: CheckpointDaemon;
  readonly b: CheckpointDaemon;
  readonly bL2: string;
  readonly aL1: string;
}

/**
 * Node A and node B (real daemons), with step 10 of job 1 and of job 2 saved on A and
 * replicated to (and committed on) B.
 */
async function cluster(
  t: TestContext,
  peerTimeouts?: { authMs?: number; idleMs?: number },
): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cube-peer-auth-'));
  const aL1 = join(dir, 'a', 'L1');
  const bL2 = join(dir, 'b', 'L2');
  const b = new CheckpointDaemon({
    node: 'node-b',
    l1Root: join(dir, 'b', 'L1'),
    l2Root: bL2,
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
    ...(peerTimeouts === undefined ? {} : { peerTimeouts }),
  });
  await b.start();
  const a = new CheckpointDaemon({
    node: 'node-a',
    l1Root: aL1,
    l2Root: join(dir, 'a', 'L2'),
    listen: { host: '127.0.0.1', port: 0 },
    replicaPeer: { node: 'node-b', ...b.address },
    log: quiet,
  });
  await a.start();
  t.after(async () => {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  grant([a, b], job1);
  grant([a, b], job2);
  a.register('job1', 0, { worldSize: 3, localRanks: [0] });
  a.register('job2', 0, { worldSize: 1, localRanks: [0] });
  await saveOnA({ a, aL1 }, 'job1', 10, 3);
  await saveOnA({ a, aL1 }, 'job2', 10, 1);
  assert.deepEqual(await committed(bL2, 'job1'), [10]);
  assert.deepEqual(await committed(bL2, 'job2'), [10]);
  return { dir, a, b, bL2, aL1 };
}

/** Saves rank 0's shard of `step` on node A, which commits it at L1 and replicates it to B. */
async function saveOnA(
  c: { a: CheckpointDaemon; aL1: string },
  job: string,
  step: number,
  worldSize: number,
): Promise<void> {
  const values = new Float32Array(1024).map((_, i) => step + i);
  const record = await saveShard(c.aL1, {
    job,
    step,
    rank: 0,
    worldSize,
    node: 'node-a',
    tensors: { w: { shape: [values.length], data: values } },
    slot: (step / 10) % 2,
  });
  await c.a.saved(record);
  await c.a.idle(job);
}

async function committed(root: string, job: string): Promise<number[]> {
  return (await scanJob(root, job, { level: 'L2' })).filter(isCommitted).map((s) => s.step);
}

function digest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function manifestOf(c: Cluster, job: string, step: number): string {
  return join(c.bL2, job, `step-${String(step).padStart(10, '0')}`, 'manifest.json');
}

/** Every path under `dir`, relative (what an attack might have left). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

function recordOf(
  data: Buffer,
  where: { job: string; step: number; rank: number; worldSize?: number; timeline?: number },
): ShardRecord {
  return shardRecordSchema.parse({
    format: 'cube.shard/1',
    job: where.job,
    step: where.step,
    rank: where.rank,
    worldSize: where.worldSize ?? 3,
    file: `step-${where.step}/rank-${where.rank}.safetensors`,
    bytes: data.length,
    xxh3: xxh3Hex(data),
    node: 'node-x',
    savedAt: '2026-12-06T00:00:00.000Z',
    timeline: where.timeline ?? 0,
  });
}

/** A raw connection to a peer port, speaking the frame format by hand. */
class Raw {
  readonly socket: Socket;
  readonly reader: FrameReader;
  readonly closed: Promise<void>;
  challenge = '';

  private constructor(socket: Socket) {
    this.socket = socket;
    this.reader = new FrameReader(socket);
    this.closed = once(socket, 'close').then(() => undefined);
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<Raw> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    const raw = new Raw(socket);
    const first = await raw.next();
    assert.equal(first?.op, 'challenge');
    raw.challenge = String(first?.nonce);
    return raw;
  }

  async next(): Promise<FrameHeader | null> {
    const frame = await this.reader.next();
    return frame?.header ?? null;
  }

  async send(header: FrameHeader, payload?: Buffer): Promise<FrameHeader | null> {
    await sendFrame(
      this.socket,
      header,
      payload === undefined
        ? undefined
        : (async function* () {
            yield await Promise.resolve(payload);
          })(),
    );
    return this.next();
  }

  /** The hello a node sends, with a MAC under `key` over this connection's challenge. */
  helloFrame(job: string, from: string, key: string, attempt = 0): FrameHeader {
    const clientNonce = newNonce();
    const mac = helloMac(key, {
      serverNonce: this.challenge,
      clientNonce,
      job,
      attempt,
      from,
      to: 'node-b',
    });
    return { op: 'hello', job, attempt, from, clientNonce, mac };
  }

  /** Authenticates as `from` in `placement`'s attempt with its real key. */
  async login(placement: Placement, from: string): Promise<void> {
    const reply = await this.send(
      this.helloFrame(placement.job, from, keyOf(placement, from, 'node-b')),
    );
    assert.equal(reply?.op, 'welcome', JSON.stringify(reply));
  }

  close(): void {
    this.socket.destroy();
  }
}

test('an unauthenticated client can neither read a shard, nor overwrite a committed step, nor plant a newer step that GC would favour', async (t) => {
  const c = await cluster(t);
  const manifest = manifestOf(c, 'job1', 10);
  const before = digest(manifest);
  const treeBefore = tree(join(c.bL2, 'job1'));

  // Reading another job's shard bytes by naming its id.
  const reader = await Raw.open(c.b.address.port);
  const read = await reader.send({ op: 'get-shard', job: 'job1', step: 10, rank: 0 });
  assert.equal(read?.op, 'error');
  assert.equal(read?.code, 'UNAUTHENTICATED');
  assert.equal(read?.bytes, undefined);
  await reader.closed;

  // Overwriting the committed step 10 with other bytes.
  const evil = randomBytes(4096);
  const writer = await Raw.open(c.b.address.port);
  const wrote = await writer.send(
    {
      op: 'put-shard',
      record: recordOf(evil, { job: 'job1', step: 10, rank: 0 }),
      setRanks: [0],
      bytes: evil.length,
    },
    evil,
  );
  assert.equal(wrote?.code, 'UNAUTHENTICATED');
  await writer.closed;

  // A fake step with a huge number, which would become the newest and make GC drop real ones.
  const planter = await Raw.open(c.b.address.port);
  const planted = await planter.send(
    {
      op: 'put-shard',
      record: recordOf(evil, { job: 'job1', step: 999_999_999, rank: 0 }),
      setRanks: [0],
      bytes: evil.length,
    },
    evil,
  );
  assert.equal(planted?.code, 'UNAUTHENTICATED');
  await planter.closed;

  assert.equal(digest(manifest), before);
  assert.deepEqual(tree(join(c.bL2, 'job1')), treeBefore);
  // Real commits and their GC go on and keep the real steps.
  await saveOnA(c, 'job1', 20, 3);
  assert.deepEqual(await committed(c.bL2, 'job1'), [10, 20]);
});

test('a node holding job 1’s key can neither read job 2 nor authenticate for it', async (t) => {
  const c = await cluster(t);
  const x = await Raw.open(c.b.address.port);
  t.after(() => x.close());
  await x.login(job1, 'node-x');
  for (const request of [
    { op: 'get-shard', job: 'job2', step: 10, rank: 0 },
    { op: 'get-record', job: 'job2', step: 10, rank: 0 },
    { op: 'list', job: 'job2' },
  ]) {
    const reply = await x.send(request);
    assert.equal(reply?.code, 'FORBIDDEN', JSON.stringify(reply));
    assert.equal(reply?.bytes, undefined);
  }
  // Job 1's key presented for job 2 (node X has no access there at all).
  const y = await Raw.open(c.b.address.port);
  const reply = await y.send(y.helloFrame('job2', 'node-x', keyOf(job1, 'node-x', 'node-b')));
  assert.equal(reply?.code, 'UNAUTHENTICATED');
  assert.match(String(reply?.message), /node-x has no peer access for job job2/);
  await y.closed;
  // And node A's key for job 1 does not open job 2 either (keys are per job).
  const z = await Raw.open(c.b.address.port);
  const wrongJob = await z.send(z.helloFrame('job2', 'node-a', keyOf(job1, 'node-a', 'node-b')));
  assert.equal(wrongJob?.code, 'UNAUTHENTICATED');
  assert.match(String(wrongJob?.message), /MAC does not verify/);
});

test('a node may write only the replicas of its own ranks, and read only the ranks it hosts', async (t) => {
  const c = await cluster(t);
  const before = digest(manifestOf(c, 'job1', 10));
  const x = await Raw.open(c.b.address.port);
  t.after(() => x.close());
  await x.login(job1, 'node-x');
  const data = randomBytes(2048);
  for (const request of [
    { op: 'get-shard', job: 'job1', step: 10, rank: 0 },
    { op: 'get-record', job: 'job1', step: 10, rank: 0 },
    {
      op: 'offer-shard',
      record: recordOf(data, { job: 'job1', step: 10, rank: 0 }),
      setRanks: [0],
      port: 1,
      ticket: 'x'.repeat(32),
    },
  ]) {
    const reply = await x.send(request);
    assert.equal(reply?.code, 'FORBIDDEN', JSON.stringify(reply));
  }
  // Its own rank, but naming another node's rank in the set the manifest waits for.
  const mixed = await x.send({
    op: 'offer-shard',
    record: recordOf(data, { job: 'job1', step: 30, rank: 2 }),
    setRanks: [0, 2],
    port: 1,
    ticket: 'x'.repeat(32),
  });
  assert.equal(mixed?.code, 'FORBIDDEN');
  // Writing rank 0 (node A's) closes the connection: its payload is never read.
  const put = await x.send(
    {
      op: 'put-shard',
      record: recordOf(data, { job: 'job1', step: 10, rank: 0 }),
      setRanks: [0],
      bytes: data.length,
    },
    data,
  );
  assert.equal(put?.code, 'FORBIDDEN');
  await x.closed;
  assert.equal(digest(manifestOf(c, 'job1', 10)), before);

  // What the grant does allow: its own rank's replica, then reading it back.
  const own = await Raw.open(c.b.address.port);
  t.after(() => own.close());
  await own.login(job1, 'node-x');
  const stored = await own.send(
    {
      op: 'put-shard',
      record: recordOf(data, { job: 'job1', step: 30, rank: 2 }),
      setRanks: [2],
      bytes: data.length,
    },
    data,
  );
  assert.equal(stored?.op, 'ok', JSON.stringify(stored));
  await own.send({ op: 'get-shard', job: 'job1', step: 30, rank: 2 }).then((h) => {
    assert.equal(h?.op, 'ok');
    assert.equal(h?.bytes, data.length);
  });
});

test('a wrong MAC and a replayed hello are refused', async (t) => {
  const c = await cluster(t);
  const wrong = await Raw.open(c.b.address.port);
  const bad = wrong.helloFrame('job1', 'node-x', randomBytes(32).toString('base64url'));
  const refused = await wrong.send(bad);
  assert.equal(refused?.code, 'UNAUTHENTICATED');
  assert.match(String(refused?.message), /MAC does not verify/);
  assert.doesNotMatch(String(refused?.message), /[A-Za-z0-9_-]{43}/, 'no MAC or key in the reply');
  await wrong.closed;

  // A hello seen on the wire (valid for its connection's challenge), replayed on a new one.
  const first = await Raw.open(c.b.address.port);
  const hello = first.helloFrame('job1', 'node-x', keyOf(job1, 'node-x', 'node-b'));
  assert.equal((await first.send(hello))?.op, 'welcome');
  first.close();
  const replay = await Raw.open(c.b.address.port);
  const replayed = await replay.send(hello);
  assert.equal(replayed?.code, 'UNAUTHENTICATED');
  await replay.closed;

  // A request before any hello.
  const early = await Raw.open(c.b.address.port);
  assert.equal((await early.send({ op: 'list', job: 'job1' }))?.code, 'UNAUTHENTICATED');
  await early.closed;

  // A superseded attempt's key stops working when the next attempt's access arrives.
  const old = await Raw.open(c.b.address.port);
  await old.login(job1, 'node-x');
  grant([c.b], { ...job1, attempt: 1 });
  await old.closed;
  const stale = await Raw.open(c.b.address.port);
  const staleReply = await stale.send(
    stale.helloFrame('job1', 'node-x', keyOf(job1, 'node-x', 'node-b')),
  );
  assert.match(String(staleReply?.message), /attempt 0 is not current here \(attempt 1 is\)/);
});

test('a client detects a peer that does not hold the key (its welcome MAC fails) and sends it nothing', async (t) => {
  const seen: string[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    void (async () => {
      const reader = new FrameReader(socket);
      await sendFrame(socket, { op: 'challenge', nonce: newNonce() });
      for (;;) {
        const frame = await reader.next();
        if (frame === null) return;
        seen.push(frame.header.op);
        if (frame.header.op === 'hello')
          await sendFrame(socket, { op: 'welcome', mac: randomBytes(32).toString('base64url') });
        else await sendFrame(socket, { op: 'ok' });
      }
    })().catch(() => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = new PeerClient(
    { node: 'node-b', host: '127.0.0.1', port },
    { self: 'node-x', credential: () => ({ attempt: 0, key: keyOf(job1, 'node-x', 'node-b') }) },
  );
  t.after(() => client.close());
  const data = randomBytes(1000);
  const payload = (async function* () {
    yield await Promise.resolve(data);
  })();
  await assert.rejects(
    client.putShard(recordOf(data, { job: 'job1', step: 10, rank: 2 }), [2], payload),
    /did not prove it is node-b/,
  );
  await assert.rejects(client.getShard('job1', 10, 2), /did not prove it is node-b/);
  assert.deepEqual(seen, ['hello', 'hello']);
});

test('a payload larger than its record, or than the free space, is refused before any byte is written', async (t) => {
  const c = await cluster(t);
  const treeBefore = tree(c.bL2);
  const data = randomBytes(4096);
  const x = await Raw.open(c.b.address.port);
  await x.login(job1, 'node-x');
  // The frame announces more bytes than the record: the extra would be written unchecked.
  const longer = Buffer.concat([data, randomBytes(1000)]);
  const reply = await x.send(
    {
      op: 'put-shard',
      record: recordOf(data, { job: 'job1', step: 40, rank: 2 }),
      setRanks: [2],
      bytes: longer.length,
    },
    longer,
  );
  assert.equal(reply?.code, 'INVALID_VALUE');
  assert.match(String(reply?.message), /carries 5096 bytes, its record says 4096/);
  await x.closed;

  // A record (and frame) of 1 PiB: refused at once, nothing waits for or writes its bytes.
  const huge = await Raw.open(c.b.address.port);
  await huge.login(job1, 'node-x');
  const bytes = 2 ** 50;
  const started = Date.now();
  const full = await huge.send({
    op: 'put-shard',
    record: { ...recordOf(data, { job: 'job1', step: 41, rank: 2 }), bytes },
    setRanks: [2],
    bytes,
  });
  assert.equal(full?.code, 'STORAGE_FAILED');
  assert.match(String(full?.message), /no room for a replica of 1125899906842624 bytes/);
  assert.ok(Date.now() - started < 5000);
  await huge.closed;
  assert.deepEqual(tree(c.bL2), treeBefore);
});

test('an aborted transfer leaves no file and no directory behind', async (t) => {
  const c = await cluster(t);
  const treeBefore = tree(c.bL2);
  const data = randomBytes(1 << 20);
  const x = await Raw.open(c.b.address.port);
  await x.login(job1, 'node-x');
  await sendFrame(x.socket, {
    op: 'put-shard',
    record: recordOf(data, { job: 'job1', step: 50, rank: 2 }),
    setRanks: [2],
    bytes: data.length,
  });
  await new Promise<void>((resolve) => x.socket.write(data.subarray(0, 300_000), () => resolve()));
  await sleep(200);
  x.close();
  // The server notices the closed connection and removes what the write created.
  for (let i = 0; i < 50 && tree(c.bL2).join() !== treeBefore.join(); i++) await sleep(100);
  assert.deepEqual(tree(c.bL2), treeBefore);
});

test('a connection that does not authenticate in time, or goes idle, is closed', async (t) => {
  const c = await cluster(t, { authMs: 300, idleMs: 400 });
  const silent = await Raw.open(c.b.address.port);
  const reply = await silent.next();
  assert.equal(reply?.code, 'UNAUTHENTICATED');
  assert.match(String(reply?.message), /not authenticated within 300 ms/);
  await silent.closed;

  const idle = await Raw.open(c.b.address.port);
  await idle.login(job1, 'node-x');
  const started = Date.now();
  await idle.closed;
  assert.ok(Date.now() - started >= 300, 'closed for idleness, not at once');
});

test('a committed step is never overwritten by the node that may write it, unless by a newer timeline', async (t) => {
  const c = await cluster(t);
  const manifest = manifestOf(c, 'job1', 10);
  const before = digest(manifest);
  const a = await Raw.open(c.b.address.port);
  t.after(() => a.close());
  await a.login(job1, 'node-a');
  const other = randomBytes(4096);
  const same = await a.send(
    {
      op: 'put-shard',
      record: recordOf(other, { job: 'job1', step: 10, rank: 0 }),
      setRanks: [0],
      bytes: other.length,
    },
    other,
  );
  assert.equal(same?.code, 'INFEASIBLE');
  assert.match(String(same?.message), /already committed .*never overwritten/);
  await a.closed;
  assert.equal(digest(manifest), before);

  // Training restarted from an older step and saved step 10 anew (timeline 1): it supersedes.
  const again = await Raw.open(c.b.address.port);
  t.after(() => again.close());
  await again.login(job1, 'node-a');
  const newer = await again.send(
    {
      op: 'put-shard',
      record: recordOf(other, { job: 'job1', step: 10, rank: 0, timeline: 1 }),
      setRanks: [0],
      bytes: other.length,
    },
    other,
  );
  assert.equal(newer?.op, 'ok', JSON.stringify(newer));
  const written = JSON.parse(readFileSync(manifest, 'utf8')) as {
    timeline: number;
    shards: { xxh3: string }[];
  };
  assert.equal(written.timeline, 1);
  assert.equal(written.shards[0]?.xxh3, xxh3Hex(other));
});

test('peer access names its keys only in the access, never in a reply or the daemon log', async (t) => {
  const lines: string[] = [];
  const capture: DaemonLog = {
    info: (o: unknown, m?: string) => void lines.push(JSON.stringify(o) + String(m)),
    warn: (o: unknown, m?: string) => void lines.push(JSON.stringify(o) + String(m)),
    error: (o: unknown, m?: string) => void lines.push(JSON.stringify(o) + String(m)),
  } as DaemonLog;
  const dir = mkdtempSync(join(tmpdir(), 'cube-peer-auth-'));
  const b = new CheckpointDaemon({
    node: 'node-b',
    l1Root: join(dir, 'L1'),
    l2Root: join(dir, 'L2'),
    listen: { host: '127.0.0.1', port: 0 },
    log: capture,
  });
  await b.start();
  t.after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  grant([b], job1);
  const bad = await Raw.open(b.address.port);
  await bad.send(bad.helloFrame('job1', 'node-x', randomBytes(32).toString('base64url')));
  const good = await Raw.open(b.address.port);
  await good.login(job1, 'node-x');
  good.close();
  const access = accessOf(testMaster, job1).get('node-b') as PeerAccess;
  const keys = [...access.incoming.map((g) => g.key), ...access.outgoing.map((o) => o.key)];
  assert.ok(lines.length > 0);
  for (const key of keys) assert.ok(!lines.some((l) => l.includes(key)), 'a key was logged');
});

test('replicas, their records and manifests are written 0600 in directories of mode 0700', async (t) => {
  const c = await cluster(t);
  const paths = tree(c.bL2).map((p) => join(c.bL2, p));
  assert.ok(paths.some((p) => p.endsWith('.safetensors')));
  assert.ok(paths.some((p) => p.endsWith('manifest.json')));
  for (const path of paths) {
    const st = statSync(path);
    assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, path);
  }
});
