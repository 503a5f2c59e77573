// Issue 13, finding 5: after a restore of an older step, the abandoned steps are removed from
// every peer's L2 too (real daemons, real sockets, real files), and only those: steps at or
// below the restored one, and steps of the new timeline, are never touched.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CheckpointDaemon,
  newMasterKey,
  PeerClient,
  startLocalApi,
  type DaemonLog,
} from '../../src/ckpt/daemon/index.ts';
import { isCommitted, scanJob } from '../../src/ckpt/index.ts';
import { accessOf, grant, testMaster } from './daemon/peer-access.ts';
import { tempDir, writeStep } from './helpers.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function l2Steps(root: string): Promise<[number, number | null][]> {
  return (await scanJob(root, 'job1', { level: 'L2' }))
    .filter(isCommitted)
    .map((s) => [s.step, s.timeline]);
}

/** Node A (ranks 0, 1) replicates to node B; B (rank 2, 3) replicates to A. */
async function twoNodes(dir: string): Promise<{
  a: CheckpointDaemon;
  b: CheckpointDaemon;
  roots: { a: string; b: string };
  stop: () => Promise<void>;
}> {
  const roots = { a: join(dir, 'a', 'L2'), b: join(dir, 'b', 'L2') };
  const b = new CheckpointDaemon({
    node: 'node-b',
    l1Root: join(dir, 'b', 'L1'),
    l2Root: roots.b,
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
  });
  await b.start();
  const a = new CheckpointDaemon({
    node: 'node-a',
    l1Root: join(dir, 'a', 'L1'),
    l2Root: roots.a,
    listen: { host: '127.0.0.1', port: 0 },
    replicaPeer: { node: 'node-b', ...b.address },
    log: quiet,
  });
  await a.start();
  b.setReplicaPeer({ node: 'node-a', ...a.address });
  grant([a, b], {
    job: 'job1',
    attempt: 1,
    nodes: [
      { node: 'node-a', ranks: [0, 1], replicaPeer: 'node-b' },
      { node: 'node-b', ranks: [2, 3], replicaPeer: 'node-a' },
    ],
  });
  return {
    a,
    b,
    roots,
    stop: async () => {
      await a.stop();
      await b.stop();
    },
  };
}

interface PruneReply {
  readonly pruned: { step: number; timeline: number | null }[];
  readonly peers: { node: string; pruned?: { step: number; timeline: number | null }[] }[];
  readonly error: { message: string };
}

function post(
  socket: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: PruneReply }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as PruneReply,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Replica sets as the peers hold them after a run of timeline 0 restarted from step 10. */
async function abandonedReplicas(roots: { a: string; b: string }): Promise<void> {
  const replicas = async (root: string, ranks: number[], step: number, timeline: number) =>
    writeStep(root, 'job1', step, { worldSize: 4, ranks, level: 'L2', timeline });
  for (const step of [10, 20, 30]) await replicas(roots.b, [0, 1], step, 0);
  for (const step of [10, 20]) await replicas(roots.a, [2, 3], step, 0);
  // Node A already holds node B's step 30 of the new timeline (1): it must survive.
  await replicas(roots.a, [2, 3], 30, 1);
}

test("a restore's prune removes the abandoned steps from this node's L2 and every peer's, nothing else", async (t) => {
  const dir = tempDir('prune');
  const { a, roots, stop } = await twoNodes(dir);
  t.after(stop);
  await abandonedReplicas(roots);
  const socket = join(dir, 'a.sock');
  const api = await startLocalApi(a, socket);
  t.after(() => api.close());

  // What the Python client sends after restoring step 10 with its new timeline 1.
  const reply = await post(socket, '/v1/jobs/job1/prune', { afterStep: 10, timeline: 1 });
  assert.equal(reply.status, 200, JSON.stringify(reply.json));
  assert.deepEqual(reply.json.pruned, [{ step: 20, timeline: 0 }]);
  assert.deepEqual(reply.json.peers, [
    {
      node: 'node-b',
      pruned: [
        { step: 20, timeline: 0 },
        { step: 30, timeline: 0 },
      ],
    },
  ]);
  assert.deepEqual(await l2Steps(roots.b), [[10, 0]]);
  assert.deepEqual(await l2Steps(roots.a), [
    [10, 0],
    [30, 1],
  ]);

  // Pruning again finds nothing more; a bad body is refused with the field named.
  const again = await post(socket, '/v1/jobs/job1/prune', { afterStep: 10, timeline: 1 });
  assert.deepEqual([again.json.pruned, again.json.peers[0]?.pruned], [[], []]);
  const bad = await post(socket, '/v1/jobs/job1/prune', { afterStep: 10 });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /timeline/);
});

test('a node without the job attempt key cannot prune a peer: its replicas stay', async (t) => {
  const dir = tempDir('prune-deny');
  const { b, roots, stop } = await twoNodes(dir);
  t.after(stop);
  await abandonedReplicas(roots);
  // The attacker knows the job id and the placement, but not the control plane's master key.
  const forged = accessOf(newMasterKey(), {
    job: 'job1',
    attempt: 1,
    nodes: [
      { node: 'node-a', ranks: [0, 1], replicaPeer: 'node-b' },
      { node: 'node-b', ranks: [2, 3], replicaPeer: 'node-a' },
    ],
  })
    .get('node-a')
    ?.outgoing.find((o) => o.node === 'node-b')?.key;
  assert.ok(forged !== undefined);
  const client = new PeerClient(
    { node: 'node-b', ...b.address },
    { self: 'node-a', credential: () => ({ attempt: 1, key: forged }) },
  );
  t.after(() => client.close());
  await assert.rejects(client.prune('job1', { afterStep: -1, timeline: 99 }));
  assert.deepEqual(await l2Steps(roots.b), [
    [10, 0],
    [20, 0],
    [30, 0],
  ]);
  // With the real key (the same node of the job's current attempt) the same request works.
  const key = accessOf(testMaster, {
    job: 'job1',
    attempt: 1,
    nodes: [
      { node: 'node-a', ranks: [0, 1], replicaPeer: 'node-b' },
      { node: 'node-b', ranks: [2, 3], replicaPeer: 'node-a' },
    ],
  })
    .get('node-a')
    ?.outgoing.find((o) => o.node === 'node-b')?.key;
  assert.ok(key !== undefined);
  const member = new PeerClient(
    { node: 'node-b', ...b.address },
    { self: 'node-a', credential: () => ({ attempt: 1, key }) },
  );
  t.after(() => member.close());
  assert.deepEqual(
    (await member.prune('job1', { afterStep: 20, timeline: 1 })).map((p) => p.step),
    [30],
  );
});
