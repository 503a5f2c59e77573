// Issue 14 follow-ups on the agents' routes, with a real control plane on loopback: a heartbeat
// reads each reported job once (not twice per rank) and still drops ranks placed elsewhere; an
// events batch mixing in-scope and out-of-scope events applies the good ones and refuses the
// others one by one with a reason, and the agent's outbox drops the refused for good instead of
// losing the batch or sending them again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { z } from 'zod';
import { postJson } from '../../src/agent/control-client.ts';
import { Outbox } from '../../src/agent/outbox.ts';

let dataDir: string;
let cp: ControlPlane;
const nodes: Record<string, { id: string; credential: string }> = {};
/** A 4-rank job on node `wide` and a 1-rank job on node `narrow`. */
let wideJob = '';
let narrowJob = '';

function device(index: number) {
  return { index, kind: 'cpu', model: 'cpu', memoryBytes: 2 ** 30, health: 'ok' };
}

async function post(
  name: string,
  route: 'heartbeat' | 'events',
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const node = nodes[name];
  assert.ok(node !== undefined);
  const response = await fetch(`${cp.url}/api/v1/agents/${node.id}/${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${node.credential}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-agent-reports-'));
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000, tickMs: 60_000 });
  for (const [name, devices] of [
    ['wide', 4],
    ['narrow', 1],
  ] as const) {
    const response = await fetch(`${cp.url}/api/v1/agents/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        joinToken: cp.tokens.joinToken,
        name,
        devices: Array.from({ length: devices }, (_, i) => device(i)),
        hostMemoryBytes: 2 ** 34,
      }),
    });
    const joined = (await response.json()) as { nodeId: string; credential: string };
    nodes[name] = { id: joined.nodeId, credential: joined.credential };
  }
  const spec = (name: string, devicesPerNode: number) =>
    ({
      name,
      command: ['.venv/bin/python', '-c', 'pass'],
      ranks: { nodes: 1, devicesPerNode },
      deviceType: 'cpu',
    }) as never;
  wideJob = (await cp.store.createJob(spec('wide', 4))).id;
  await cp.orchestrator.tick();
  narrowJob = (await cp.store.createJob(spec('narrow', 1))).id;
  await cp.orchestrator.tick();
  assert.equal((await cp.store.getJob(wideJob))?.placement?.[0]?.nodeId, nodes['wide']?.id);
  assert.equal((await cp.store.getJob(narrowJob))?.placement?.[0]?.nodeId, nodes['narrow']?.id);
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a heartbeat reporting four ranks of one job reads the job once, and still drops a rank placed on another node', async () => {
  const store = cp.store;
  const reads: string[] = [];
  const getJob = store.getJob.bind(store);
  store.getJob = (id: string) => {
    reads.push(id);
    return getJob(id);
  };
  try {
    const reply = await post('wide', 'heartbeat', {
      ranks: [
        ...[0, 1, 2, 3].map((rank) => ({
          jobId: wideJob,
          attempt: 0,
          rank,
          state: 'running',
          progress: { step: 3 },
        })),
        // Another node's rank, forged: dropped, not taken in as an exit.
        { jobId: narrowJob, attempt: 0, rank: 0, state: 'exited', exitCode: 137 },
      ],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
  } finally {
    store.getJob = getJob;
  }
  // Before, the scope check and the orchestrator each read the job for every rank: 10 reads.
  assert.deepEqual(reads.sort(), [narrowJob, wideJob].sort(), 'one read per job in the heartbeat');
  const narrow = await cp.store.getJob(narrowJob);
  assert.equal(narrow?.attempt, 0);
  assert.equal(narrow?.restarts, 0);
  const kinds = (await cp.store.listEvents({ jobId: narrowJob })).map((e) => e.kind);
  assert.ok(!kinds.includes('rank-exited') && !kinds.includes('fault-detected'), kinds.join(' '));
});

test('an events batch applies its in-scope events and refuses the others one by one, with a reason each', async () => {
  const reply = await post('wide', 'events', {
    events: [
      { kind: 'progress', jobId: wideJob, attempt: 0, rank: 0, step: 7, loss: 2.5, tokensPerS: 1 },
      // Another node's rank and another node's job's checkpoint: out of this node's scope.
      { kind: 'rank-exited', jobId: narrowJob, attempt: 0, rank: 0, exitCode: 137, signal: null },
      { kind: 'checkpoint-committed', jobId: narrowJob, level: 'L2', step: 40 },
      { kind: 'progress', jobId: wideJob, attempt: 0, rank: 1, step: 7, loss: 2.5, tokensPerS: 1 },
      // A job that does not exist (deleted, say) while the agent's outbox held the event.
      {
        kind: 'progress',
        jobId: 'j-aaaaaaaa',
        attempt: 0,
        rank: 0,
        step: 1,
        loss: 1,
        tokensPerS: 1,
      },
    ],
  });
  assert.equal(reply.status, 200, JSON.stringify(reply.json));
  assert.equal(reply.json['accepted'], 2);
  const refused = reply.json['refused'] as { index: number; kind: string; message: string }[];
  assert.deepEqual(
    refused.map((r) => [r.index, r.kind]),
    [
      [1, 'rank-exited'],
      [2, 'checkpoint-committed'],
      [4, 'progress'],
    ],
  );
  assert.match(
    refused[0]?.message ?? '',
    /rank 0 of job j-\w+ \(attempt 0\) is not placed on node wide/,
  );
  assert.match(refused[1]?.message ?? '', /job j-\w+ has no rank on node wide/);
  assert.match(refused[2]?.message ?? '', /no job "j-aaaaaaaa"/);
  // The good events were applied; the refused ones not.
  const progress = await cp.store.listProgress(wideJob);
  assert.deepEqual(progress.map((p) => [p.rank, p.step]).sort(), [
    [0, 7],
    [1, 7],
  ]);
  assert.deepEqual(await cp.store.listCheckpoints(narrowJob), []);
  assert.equal((await cp.store.getJob(narrowJob))?.restarts, 0);
});

test('a batch of out-of-scope events only is refused whole with 403', async () => {
  const reply = await post('wide', 'events', {
    events: [
      { kind: 'rank-exited', jobId: narrowJob, attempt: 0, rank: 0, exitCode: 1, signal: null },
      { kind: 'checkpoint-committed', jobId: narrowJob, level: 'L3', step: 9 },
    ],
  });
  assert.equal(reply.status, 403);
  const error = reply.json['error'] as { code: string; message: string };
  assert.equal(error.code, 'FORBIDDEN');
  assert.match(error.message, /^all 2 events refused; events\[0\] \(rank-exited\): rank 0 of job/);
});

test("the agent's outbox drops the refused events of a delivered batch for good and sends nothing again", async () => {
  const node = nodes['wide'];
  assert.ok(node !== undefined);
  type Event = Record<string, unknown>;
  let sends = 0;
  const dropped: { items: readonly Event[]; why: string }[] = [];
  const outbox = new Outbox<Event>({
    send: (batch, signal) => {
      sends += 1;
      return postJson(`${cp.url}/api/v1/agents/${node.id}/events`, { events: batch }, z.unknown(), {
        credential: node.credential,
        signal,
        timeoutMs: 5000,
      });
    },
    maxBatch: 100,
    maxWeight: 1000,
    backoff: { initialMs: 10, maxMs: 20 },
    onDrop: (items, why) => dropped.push({ items, why }),
  });
  const stale = { kind: 'checkpoint-committed', jobId: narrowJob, level: 'L2', step: 50 };
  outbox.push({
    kind: 'progress',
    jobId: wideJob,
    attempt: 0,
    rank: 2,
    step: 9,
    loss: 1,
    tokensPerS: 1,
  });
  outbox.push(stale);
  outbox.push({
    kind: 'progress',
    jobId: wideJob,
    attempt: 0,
    rank: 3,
    step: 9,
    loss: 1,
    tokensPerS: 1,
  });
  try {
    assert.equal(await outbox.flush(5000), true, 'the queue emptied');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sends, 1, 'one delivery, no retry');
    assert.equal(dropped.length, 1);
    assert.deepEqual(dropped[0]?.items, [stale]);
    assert.match(dropped[0]?.why ?? '', /^refused: job j-\w+ has no rank on node wide$/);
    const steps = (await cp.store.listProgress(wideJob)).filter((p) => p.step === 9);
    assert.deepEqual(steps.map((p) => p.rank).sort(), [2, 3]);
  } finally {
    outbox.close();
  }
});
