// The optional TLS of the checkpoint peer port (--ckpt-tls-cert, --ckpt-tls-key, --ckpt-ca):
// mutual TLS against the cluster's CA, with the MAC handshake still inside.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { isCommitted, saveShard, scanJob } from '../../../src/ckpt/index.ts';
import {
  CheckpointDaemon,
  PeerClient,
  readPeerTls,
  type DaemonLog,
  type PeerTls,
} from '../../../src/ckpt/daemon/index.ts';
import { FrameReader, sendFrame } from '../../../src/ckpt/daemon/frames.ts';
import { accessOf, grant, testMaster, type Placement } from './peer-access.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

const job: Placement = {
  job: 'job1',
  attempt: 0,
  nodes: [
    { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
    { node: 'node-b', ranks: [], replicaPeer: null },
  ],
};

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A CA and, per node, a key and a certificate it signed for 127.0.0.1 (openssl). */
function pki(dir: string, ca: string, nodes: readonly string[]): Map<string, PeerTls> {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${ca}.key`,
    '-out',
    `${ca}.pem`,
    '-days',
    '1',
    '-subj',
    `/CN=${ca}`,
  );
  const out = new Map<string, PeerTls>();
  for (const node of nodes) {
    const name = `${ca}-${node}`;
    writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1\n');
    openssl(
      dir,
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${node}`,
    );
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
    execFileSync('chmod', ['600', join(dir, `${name}.key`)]);
    out.set(
      node,
      readPeerTls({
        certFile: join(dir, `${name}.pem`),
        keyFile: join(dir, `${name}.key`),
        caFile: join(dir, `${ca}.pem`),
      }),
    );
  }
  return out;
}

interface Setup {
  readonly dir: string;
  readonly good: Map<string, PeerTls>;
  readonly rogue: Map<string, PeerTls>;
  readonly a: CheckpointDaemon;
  readonly b: CheckpointDaemon;
}

async function setup(t: TestContext): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'cube-peer-tls-'));
  const good = pki(dir, 'cluster-ca', ['node-a', 'node-b']);
  const rogue = pki(dir, 'rogue-ca', ['node-a', 'node-b']);
  const daemon = (node: string, extra: object = {}): CheckpointDaemon =>
    new CheckpointDaemon({
      node,
      l1Root: join(dir, node, 'L1'),
      l2Root: join(dir, node, 'L2'),
      listen: { host: '127.0.0.1', port: 0 },
      log: quiet,
      tls: good.get(node),
      ...extra,
    });
  const b = daemon('node-b');
  await b.start();
  const a = daemon('node-a', { replicaPeer: { node: 'node-b', ...b.address } });
  await a.start();
  t.after(async () => {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  grant([a, b], job);
  return { dir, good, rogue, a, b };
}

function clientOf(s: Setup, tls: PeerTls | undefined): PeerClient {
  const key = accessOf(testMaster, job)
    .get('node-a')
    ?.outgoing.find((o) => o.node === 'node-b')?.key as string;
  return new PeerClient(
    { node: 'node-b', ...s.b.address },
    {
      self: 'node-a',
      credential: () => ({ attempt: 0, key }),
      ...(tls === undefined ? {} : { tls }),
      behindWaitMs: 0,
      handshakeTimeoutMs: 1000,
    },
  );
}

test('with TLS a replica travels to the peer and is read back byte for byte, the MAC handshake inside', async (t) => {
  const s = await setup(t);
  s.a.register('job1', 0, { worldSize: 1, localRanks: [0] });
  const values = new Float32Array(4096).map((_, i) => i);
  const record = await saveShard(join(s.dir, 'node-a', 'L1'), {
    job: 'job1',
    step: 10,
    rank: 0,
    worldSize: 1,
    node: 'node-a',
    tensors: { w: { shape: [values.length], data: values } },
    slot: 0,
  });
  await s.a.saved(record);
  await s.a.idle('job1');
  const l2 = await scanJob(join(s.dir, 'node-b', 'L2'), 'job1', { level: 'L2' });
  assert.deepEqual(
    l2.filter(isCommitted).map((x) => x.step),
    [10],
  );
  assert.equal(s.a.status()[0]?.errors.length, 0);
  const client = clientOf(s, s.good.get('node-a'));
  t.after(() => client.close());
  const shard = await client.getShard('job1', 10, 0);
  const got: Buffer[] = [];
  for await (const piece of shard.payload) got.push(Buffer.from(piece));
  const original = readFileSync(join(s.dir, 'node-a', 'L1', 'job1', record.file));
  assert.ok(Buffer.concat(got).equals(original));
});

test('a TLS peer port gives a plain TCP client nothing, not even a challenge', async (t) => {
  const s = await setup(t);
  const socket = connect({ host: '127.0.0.1', port: s.b.address.port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const reader = new FrameReader(socket);
  await sendFrame(socket, { op: 'get-shard', job: 'job1', step: 10, rank: 0 }).catch(
    () => undefined,
  );
  const first = await reader.next().catch(() => null);
  assert.equal(first, null);
  socket.destroy();
});

test('a client with a certificate of another CA is refused, and a client refuses a peer whose certificate another CA signed', async (t) => {
  const s = await setup(t);
  const rogueClient = clientOf(s, s.rogue.get('node-a'));
  t.after(() => rogueClient.close());
  await assert.rejects(rogueClient.list('job1'), /peer node-b|certificate|alert|socket|closed/i);
  const plain = clientOf(s, undefined);
  t.after(() => plain.close());
  await assert.rejects(plain.list('job1'));

  // A fake node-b with the rogue CA's certificate: the real node-a's client will not talk to it.
  const fake = new CheckpointDaemon({
    node: 'node-b',
    l1Root: join(s.dir, 'fake', 'L1'),
    l2Root: join(s.dir, 'fake', 'L2'),
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
    tls: s.rogue.get('node-b'),
  });
  await fake.start();
  t.after(() => fake.stop());
  const key = accessOf(testMaster, job)
    .get('node-a')
    ?.outgoing.find((o) => o.node === 'node-b')?.key as string;
  const toFake = new PeerClient(
    { node: 'node-b', ...fake.address },
    { self: 'node-a', credential: () => ({ attempt: 0, key }), tls: s.good.get('node-a') },
  );
  t.after(() => toFake.close());
  await assert.rejects(toFake.list('job1'), /certificate|self[- ]signed|verify/i);
});
