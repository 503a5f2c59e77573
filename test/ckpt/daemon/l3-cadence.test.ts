// Which steps go to L3 is a function of the step, agreed by every node's daemon: a restarted
// daemon or a spare, which has seen fewer commits than the others, persists the same steps, so
// L3 steps keep completing after ranks move (issue 14: by counting commits, no step had every
// rank at L3 through 10 relaunches).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import {
  isCommitted,
  l3PeriodSteps,
  persistsToL3,
  saveShard,
  scanJob,
} from '../../../src/ckpt/index.ts';
import { CheckpointDaemon, startLocalApi, type DaemonLog } from '../../../src/ckpt/daemon/index.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A node's daemon behind its local API, as a rank reaches it. */
interface NodeDaemon {
  readonly daemon: CheckpointDaemon;
  readonly socket: string;
  readonly stop: () => Promise<void>;
}

async function startNode(dir: string, name: string, l3: string): Promise<NodeDaemon> {
  const daemon = new CheckpointDaemon({
    node: name,
    l1Root: join(dir, name, 'L1'),
    l2Root: join(dir, name, 'L2'),
    l3Root: l3,
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
  });
  await daemon.start();
  const socket = join(dir, `${name}.sock`);
  const api: FastifyInstance = await startLocalApi(daemon, socket);
  return {
    daemon,
    socket,
    stop: async () => {
      await api.close();
      await daemon.stop();
    },
  };
}

function post(socket: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Rank `rank` of a two-rank job registers with its node's daemon, as the Python client does. */
async function register(node: NodeDaemon, rank: number): Promise<void> {
  const status = await post(node.socket, `/v1/jobs/job1/ranks/${rank}/register`, {
    worldSize: 2,
    localRanks: [rank],
    l3Every: 2,
    everySteps: 10,
    keep: { L3: 10 },
  });
  assert.equal(status, 200);
}

/** Rank `rank` saves `step` to its node's L1 and tells the daemon; waits for L3. */
async function save(node: NodeDaemon, dir: string, name: string, rank: number, step: number) {
  const record = await saveShard(join(dir, name, 'L1'), {
    job: 'job1',
    step,
    rank,
    worldSize: 2,
    node: name,
    tensors: { w: { shape: [256], data: new Float32Array(256).fill(step + rank) } },
    extra: { step },
    slot: (step / 10) % 2,
  });
  assert.equal(await post(node.socket, '/v1/jobs/job1/saved', record), 202);
  await node.daemon.idle('job1');
}

async function l3Steps(l3: string): Promise<{ complete: number[]; pending: number[] }> {
  const statuses = await scanJob(l3, 'job1', { level: 'L3' });
  return {
    complete: statuses.filter((s) => s.complete).map((s) => s.step),
    pending: statuses.filter((s) => !isCommitted(s)).map((s) => s.step),
  };
}

test('the L3 cadence is a pure function of the step and the job settings', () => {
  const cadence = { l3Every: 4, everySteps: 5 };
  assert.equal(l3PeriodSteps(cadence), 20);
  assert.deepEqual(
    [5, 10, 15, 20, 25, 40, 60, 65].filter((s) => persistsToL3(s, cadence)),
    [20, 40, 60],
  );
  // Without the interval, l3Every counts steps.
  assert.deepEqual(
    [1, 2, 3, 4, 6, 9].filter((s) => persistsToL3(s, { l3Every: 3 })),
    [3, 6, 9],
  );
  assert.ok([1, 7, 13].every((s) => persistsToL3(s, { l3Every: 1, everySteps: null })));
});

test('a restarted daemon persists the same steps as the daemon that ran through, so every L3 step completes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-l3-cadence-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const l3 = join(dir, 'L3');
  const a = await startNode(dir, 'node-a', l3);
  let b = await startNode(dir, 'node-b', l3);
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  await register(a, 0);
  await register(b, 1);
  for (const step of [10, 20, 30]) {
    await save(a, dir, 'node-a', 0, step);
    await save(b, dir, 'node-b', 1, step);
  }
  assert.deepEqual(await l3Steps(l3), { complete: [20], pending: [] });

  // Node B's daemon restarts (a spare joining is the same: a daemon that counts from zero).
  await b.stop();
  b = await startNode(dir, 'node-b', l3);
  await register(b, 1);
  for (const step of [40, 50, 60, 70, 80]) {
    await save(a, dir, 'node-a', 0, step);
    await save(b, dir, 'node-b', 1, step);
  }
  // Counting commits, node A persisted 40, 60, 80 and node B 50, 70: none of them complete.
  assert.deepEqual(await l3Steps(l3), { complete: [20, 40, 60, 80], pending: [] });
});
