// Issue 13, finding 3: a node credential speaks only for what is placed on that node. A second
// joined node forging another node's rank exit, logs, progress or checkpoint is refused with
// 403 and changes nothing; and (finding 6) a job id of `..` in the log route writes nothing
// outside `<data>/logs`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { rankLogPath } from '../../src/control/server/app.ts';

let dataDir: string;
let cp: ControlPlane;
const nodes: Record<string, { id: string; credential: string }> = {};
let jobId = '';
let owner = '';
let attacker = '';

async function asNode(
  name: string,
  route: 'heartbeat' | 'events' | 'logs',
  body: unknown,
  options: { as?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const target = nodes[name];
  const credential = nodes[options.as ?? name];
  assert.ok(target !== undefined && credential !== undefined);
  const response = await fetch(`${cp.url}/api/v1/agents/${target.id}/${route}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${credential.credential}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-node-scope-'));
  cp = await ControlPlane.start({
    dataDir,
    heartbeatTimeoutMs: 600_000,
    tickMs: 60_000,
    rankLogMaxBytes: 4096,
  });
  for (const name of ['node-a', 'node-b']) {
    const response = await fetch(`${cp.url}/api/v1/agents/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        joinToken: cp.tokens.joinToken,
        name,
        devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 2 ** 30, health: 'ok' }],
        hostMemoryBytes: 2 ** 34,
      }),
    });
    const joined = (await response.json()) as { nodeId: string; credential: string };
    nodes[name] = { id: joined.nodeId, credential: joined.credential };
  }
  const job = await cp.store.createJob({
    name: 'victim',
    command: ['.venv/bin/python', '-c', 'pass'],
    ranks: { nodes: 1, devicesPerNode: 1 },
    deviceType: 'cpu',
  } as never);
  jobId = job.id;
  await cp.orchestrator.tick();
  const placed = (await cp.store.getJob(jobId))?.placement?.[0]?.nodeId;
  owner = placed === nodes['node-a']?.id ? 'node-a' : 'node-b';
  attacker = owner === 'node-a' ? 'node-b' : 'node-a';
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test("another node's forged rank exit, progress and checkpoint are refused with 403 and change nothing", async () => {
  const before = await cp.store.getJob(jobId);
  assert.equal(before?.attempt, 0);
  for (const event of [
    { kind: 'rank-exited', jobId, attempt: 0, rank: 0, exitCode: 137, signal: null },
    { kind: 'progress', jobId, attempt: 0, rank: 0, step: 5, loss: 0.1, tokensPerS: 1 },
    { kind: 'checkpoint-committed', jobId, level: 'L3', step: 1_000_000 },
    { kind: 'restored', jobId, attempt: 0, rank: 0, step: 1_000_000, level: 'L3' },
  ]) {
    const refused = await asNode(attacker, 'events', { events: [event] });
    assert.equal(refused.status, 403, `${event.kind}: ${JSON.stringify(refused.json)}`);
  }
  // Hidden in a batch with a harmless event: the forged one is refused (with its reason), the
  // harmless one applies (issue 14: a batch no longer loses its good events to a bad one).
  const batch = await asNode(attacker, 'events', {
    events: [
      { kind: 'probe-failed', name: 'nothing', message: '' },
      { kind: 'rank-exited', jobId, attempt: 0, rank: 0, exitCode: 137, signal: null },
    ],
  });
  assert.equal(batch.status, 200);
  assert.deepEqual(
    (batch.json['refused'] as { index: number }[]).map((r) => r.index),
    [1],
  );
  // The same forgery in a heartbeat is dropped.
  const heartbeat = await asNode(attacker, 'heartbeat', {
    ranks: [{ jobId, attempt: 0, rank: 0, state: 'exited', exitCode: 137 }],
  });
  assert.equal(heartbeat.status, 200);
  await cp.orchestrator.tick();

  const after = await cp.store.getJob(jobId);
  assert.equal(after?.state, before?.state);
  assert.equal(after?.restarts, 0);
  assert.equal(after?.attempt, 0);
  assert.deepEqual(await cp.store.listProgress(jobId), []);
  assert.deepEqual(await cp.store.listCheckpoints(jobId), []);
  const kinds = (await cp.store.listEvents({ jobId })).map((e) => e.kind);
  assert.ok(!kinds.includes('rank-exited') && !kinds.includes('job-restored'), kinds.join(' '));
});

test("another node's log lines are refused and written nowhere; the placed node's are kept", async () => {
  const refused = await asNode(attacker, 'logs', {
    jobId,
    attempt: 0,
    rank: 0,
    stream: 'stdout',
    text: 'forged line\n',
  });
  assert.equal(refused.status, 403);
  assert.equal(existsSync(rankLogPath(dataDir, jobId, 0, 0)), false);
  const kept = await asNode(owner, 'logs', {
    jobId,
    attempt: 0,
    rank: 0,
    stream: 'stdout',
    text: 'real line\n',
  });
  assert.equal(kept.status, 200);
  const log = await fetch(`${cp.url}/api/v1/jobs/${jobId}/logs?rank=0`, {
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  });
  assert.equal(await log.text(), 'real line\n');
});

test("the server keeps at most the cap of a rank's log, and reads go on from the oldest kept byte", async () => {
  for (let i = 0; i < 20; i += 1) {
    const reply = await asNode(owner, 'logs', {
      jobId,
      attempt: 0,
      rank: 1,
      stream: 'stdout',
      text: `${String(i).padStart(4, '0')}${'.'.repeat(995)}\n`,
    });
    assert.equal(reply.status, 403, 'rank 1 is not placed anywhere');
  }
  for (let i = 0; i < 20; i += 1)
    await asNode(owner, 'logs', {
      jobId,
      attempt: 0,
      rank: 0,
      stream: 'stdout',
      text: `${String(i).padStart(4, '0')}${'.'.repeat(995)}\n`,
    });
  const dir = dirname(rankLogPath(dataDir, jobId, 0, 0));
  const onDisk = readdirSync(dir)
    .filter((f) => !f.endsWith('.base'))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  assert.ok(onDisk <= 4096, `${onDisk} bytes on disk`);
  const log = await fetch(`${cp.url}/api/v1/jobs/${jobId}/logs?rank=0`, {
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  });
  const text = await log.text();
  assert.ok(Number(log.headers.get('x-cube-log-start')) > 0);
  assert.equal(Number(log.headers.get('x-cube-log-size')), 'real line\n'.length + 20 * 1000);
  assert.ok(text.endsWith(`0019${'.'.repeat(995)}\n`));
});

test('the placed node may report its own rank', async () => {
  const ok = await asNode(owner, 'events', {
    events: [{ kind: 'progress', jobId, attempt: 0, rank: 0, step: 1, loss: 1, tokensPerS: 1 }],
  });
  assert.equal(ok.status, 200);
  assert.equal((await cp.store.listProgress(jobId)).length, 1);
});

test("a node cannot post on another node's routes", async () => {
  const response = await asNode(
    owner,
    'events',
    { events: [{ kind: 'probe-failed', name: 'gpu', message: 'forged' }] },
    { as: attacker },
  );
  assert.equal(response.status, 401);
  assert.equal((await cp.store.getNode(nodes[owner]?.id ?? ''))?.state, 'ready');
});

test('a job id of .. in the log route is refused with 400 and nothing is written outside logs/', async () => {
  const before = readdirSync(dataDir).sort();
  for (const bad of ['..', '../..', 'j-aaaaaaaa/../..', '.']) {
    const response = await asNode(owner, 'logs', {
      jobId: bad,
      attempt: 0,
      rank: 0,
      stream: 'stdout',
      text: 'escaped\n',
    });
    assert.equal(response.status, 400, bad);
  }
  assert.deepEqual(readdirSync(dataDir).sort(), before);
  assert.equal(existsSync(join(dataDir, '0')), false);
  assert.equal(existsSync(join(dataDir, 'logs', '0')), false);
});
